package main

import (
	"github.com/spf13/cobra"
)

func newAdminPinCommand(a *adminOptions) *cobra.Command {
	var unpin bool
	cmd := &cobra.Command{
		Use:   "pin INDEX...",
		Short: "Keep a deployment from being garbage-collected (--unpin to undo)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.open(true)
			if err != nil {
				return err
			}
			defer s.Close()
			for _, arg := range args {
				i, err := parseIndex(arg)
				if err != nil {
					return err
				}
				d, err := s.Get(i)
				if err != nil {
					return err
				}
				if d.Pinned() == !unpin {
					if unpin {
						a.printf("Deployment %d is already unpinned\n", i)
					} else {
						a.printf("Deployment %d is already pinned\n", i)
					}
					continue
				}
				if _, err := s.SetPinned(i, !unpin); err != nil {
					return err
				}
				if unpin {
					a.printf("Deployment %d is now unpinned\n", i)
				} else {
					a.printf("Deployment %d is now pinned\n", i)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&unpin, "unpin", "u", false, "unpin instead")
	return cmd
}
