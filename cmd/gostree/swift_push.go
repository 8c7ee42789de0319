package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/swift"
)

func newSwiftPushCommand(g *globalOptions, f *swiftFlags) *cobra.Command {
	var (
		public    bool
		depth     int
		jobs      int
		noSummary bool
	)
	cmd := &cobra.Command{
		Use:   "push --container C [--prefix P] [REF...]",
		Short: "Upload refs (default: all) with the objects the container lacks; the summary last",
		Long: `Upload what the container lacks of the objects the refs need (concurrently,
each verified by its MD5 ETag), then static deltas, then config and refs, and
the summary (+ summary.sig) last, so a client never sees a ref whose objects
are missing. An interrupted push is resumed by running it again. The local
summary is published when it lists the refs at their commits; otherwise it is
regenerated first (refused for a signed summary: run "gostree summary -u" with
the key).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			st, _, limits, err := f.open(ctx)
			if err != nil {
				return err
			}
			if err := st.CreateContainer(ctx); err != nil {
				return err
			}
			res, err := swift.Push(ctx, r, st, swift.PushOptions{Refs: args, Depth: depth, Jobs: jobs, Limits: &limits, NoSummary: noSummary})
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("public") {
				if err := st.SetPublic(ctx, public); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%d of %d objects uploaded, %d delta files, %d bytes\n", res.Uploaded, res.Objects, res.DeltaFiles, res.Bytes)
			for _, name := range ostree.SortedRefNames(res.Refs) {
				fmt.Fprintf(out, "%s => %s\n", name, res.Refs[name])
			}
			what := "summary"
			if noSummary {
				what = "no summary (--no-summary)"
			}
			if res.SummarySig {
				what += " and summary.sig"
			}
			if res.Regenerated {
				what += " (regenerated)"
			}
			fmt.Fprintf(out, "published %s\n", what)
			if public {
				fmt.Fprintf(out, "public URL: %s\n", strings.TrimSuffix(st.URL(), "/"))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&public, "public", false, "make the container publicly readable (ACL "+swift.PublicRead+") for stock ostree pull over HTTP; --public=false makes it private")
	cmd.Flags().IntVar(&depth, "depth", 0, "parent commits to publish too (-1: all)")
	cmd.Flags().IntVar(&jobs, "jobs", 8, "concurrent uploads")
	cmd.Flags().BoolVar(&noSummary, "no-summary", false, "publish objects and refs but leave the container's summary as it is")
	return cmd
}
