package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/swift"
)

func newSwiftPruneCommand(g *globalOptions, f *swiftFlags) *cobra.Command {
	var (
		keep   time.Duration
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "prune --container C [--prefix P]",
		Short: "Delete objects in the container that no ref or summary entry reaches",
		Long: `Delete objects of the published repository that no ref (refs/...) nor summary
entry reaches, following parent commits that are present. Objects younger than
--keep-younger-than are kept: a push in progress uploads objects before the
refs naming them. Metadata is verified before it is trusted; anything missing
or corrupt stops the prune before it deletes anything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, _, _, err := f.open(ctx)
			if err != nil {
				return err
			}
			if keep == 0 {
				keep = -1 // "0s" means no grace period
			}
			res, err := swift.Prune(ctx, st, swift.PruneOptions{KeepYoungerThan: keep, DryRun: dryRun})
			if err != nil {
				return err
			}
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d commits referenced, %d objects reachable; %s %d objects (%d bytes); kept %d recent unreferenced objects\n",
				res.Roots, res.Reachable, verb, res.Deleted, res.DeletedSize, res.KeptYoung)
			return nil
		},
	}
	cmd.Flags().DurationVar(&keep, "keep-younger-than", time.Hour, "keep unreferenced objects modified more recently than this (0: none)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only report what would be deleted")
	return cmd
}
