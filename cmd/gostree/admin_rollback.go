package main

import (
	"github.com/spf13/cobra"
)

func newAdminRollbackCommand(a *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback",
		Short: "Make the previous deployment the default (as rpm-ostree rollback)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.open(true)
			if err != nil {
				return err
			}
			defer s.Close()
			d, w, err := s.Rollback(cmd.Context())
			if err != nil {
				return err
			}
			a.printWrite(w)
			a.printf("Moving '%s' to be first deployment\n", d.Name())
			return nil
		},
	}
}
