package main

import (
	"github.com/spf13/cobra"
)

func newAdminOSInitCommand(a *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "os-init OSNAME",
		Short: "Create a stateroot (ostree/deploy/OSNAME with its shared /var)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.open(true)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.InitOS(args[0]); err != nil {
				return err
			}
			a.printf("ostree/deploy/%s initialized as OSTree root\n", args[0])
			return nil
		},
	}
}
