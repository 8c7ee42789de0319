package main

import (
	"github.com/spf13/cobra"
)

func newAdminUndeployCommand(a *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "undeploy INDEX",
		Short: "Remove the deployment at INDEX",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			i, err := parseIndex(args[0])
			if err != nil {
				return err
			}
			s, err := a.open(true)
			if err != nil {
				return err
			}
			defer s.Close()
			d, w, err := s.Undeploy(cmd.Context(), i)
			if err != nil {
				return err
			}
			a.printWrite(w)
			a.printf("Deleted deployment %s\n", d.Name())
			return nil
		},
	}
}
