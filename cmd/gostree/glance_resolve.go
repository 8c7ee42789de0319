package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newGlanceResolveCommand(g *globalOptions, f *osFlags) *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:   "resolve IMAGE-ID|NAME",
		Short: "Print the commit an image records and where to pull it from",
		Long: `Print the commit, ref, version, OS name and source an image records. With
--check, also make sure the source has that commit. The properties are not
trusted for authenticity: verify the commit's signature after pulling.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			gc, c, err := f.glance(ctx)
			if err != nil {
				return err
			}
			v, err := gc.Resolve(ctx, args[0])
			if err != nil {
				return err
			}
			if check {
				st, err := sourceStore(ctx, c, v.Source)
				if err != nil {
					return err
				}
				if err := checkSource(ctx, st, v.Source, v.Commit); err != nil {
					return fmt.Errorf("image %s: %w", v.ImageID, err)
				}
			}
			printVersion(cmd.OutOrStdout(), v)
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "check that the source has the commit")
	return cmd
}
