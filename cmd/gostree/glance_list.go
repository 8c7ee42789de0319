package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/glance"
)

func newGlanceListCommand(g *globalOptions, f *osFlags) *cobra.Command {
	var o glance.ListOptions
	cmd := &cobra.Command{
		Use:   "list [--ref R] [--osname O] [--tag T]...",
		Short: "List the published versions (images tagged ostree), newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			gc, _, err := f.glance(ctx)
			if err != nil {
				return err
			}
			vs, err := gc.List(ctx, o)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tNAME\tVERSION\tREF\tCOMMIT\tCREATED\tSOURCE")
			for _, v := range vs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ImageID, v.Name, dash(v.Version), dash(v.Ref),
					v.Commit, v.Created.UTC().Format(time.RFC3339), v.Source)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&o.Ref, "ref", "", "only versions of this ref")
	cmd.Flags().StringVar(&o.OSName, "osname", "", "only versions of this OS name")
	cmd.Flags().StringArrayVar(&o.Tags, "tag", nil, "only images with this tag too (repeatable)")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
