package main

import (
	"github.com/spf13/cobra"

	"github.com/gostree/gostree/sysroot"
)

func newAdminCleanupCommand(a *adminOptions) *cobra.Command {
	var noPrune bool
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Delete what no deployment uses (old boot entries, deployments, kernels, leftovers of a crash) and prune the repo",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.open(true)
			if err != nil {
				return err
			}
			defer s.Close()
			r, err := s.Cleanup(cmd.Context(), sysroot.CleanupOptions{NoPrune: noPrune})
			if err != nil {
				return err
			}
			for _, d := range r.DeletedDeployments {
				a.printf("Deleted deployment %s\n", d)
			}
			if r.Prune != nil && r.Prune.FreedBytes > 0 {
				a.printf("Freed objects: %s\n", adminFormatSize(r.Prune.FreedBytes))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "do not prune the repository")
	return cmd
}
