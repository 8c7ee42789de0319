package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
)

func newStaticDeltaGenerateCommand(g *globalOptions) *cobra.Command {
	var from, to string
	var empty, inline, ifNotExists, disableBsdiff bool
	var maxChunk, minFallback int64
	var jobs int
	cmd := &cobra.Command{
		Use:   "generate [--from=REV | --empty] --to=REV [OPTIONS]",
		Short: "Generate static delta files",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if to != "" {
					return errUsage("give TO either as --to or as an argument, not both")
				}
				to = args[0]
			}
			if to == "" {
				return errUsage("--to=REV is required")
			}
			if empty == (from != "") {
				return errUsage("give exactly one of --from=REV and --empty")
			}
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			o := ostree.DeltaGenerateOptions{Inline: inline, MaxChunkSize: maxChunk << 20, Jobs: jobs}
			if cmd.Flags().Changed("min-fallback-size") {
				o.MinFallbackSize = minFallback << 20
				if minFallback == 0 {
					o.MinFallbackSize = -1
				}
			}
			if o.To, err = r.ResolveRev(to); err != nil {
				return err
			}
			if !empty {
				if o.From, err = r.ResolveRev(from); err != nil {
					return err
				}
			}
			if ifNotExists {
				if _, err := r.ReadStaticDelta(o.From, o.To); err == nil {
					fmt.Fprintf(g.stdout, "Delta %s exists\n", ostree.StaticDeltaName(o.From, o.To))
					return nil
				}
			}
			fmt.Fprintf(g.stdout, "Generating static delta:\n")
			if empty {
				fmt.Fprintf(g.stdout, "  From: empty\n")
			} else {
				fmt.Fprintf(g.stdout, "  From: %s\n", o.From)
			}
			fmt.Fprintf(g.stdout, "  To:   %s\n", o.To)
			_, st, err := r.GenerateStaticDelta(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "parts: %d, objects: %d, fallbacks: %d, uncompressed: %s, compressed: %s\n",
				st.Parts, st.Objects, st.Fallbacks, formatGSize(st.Uncompressed), formatGSize(st.Compressed))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "create the delta from revision REV")
	f.BoolVar(&empty, "empty", false, "create a delta from scratch")
	f.StringVar(&to, "to", "", "create the delta to revision REV")
	f.BoolVar(&inline, "inline", false, "inline the parts into the superblock")
	f.BoolVarP(&ifNotExists, "if-not-exists", "n", false, "only generate if the delta does not exist")
	f.Int64Var(&maxChunk, "max-chunk-size", 4, "maximum uncompressed size of a part in megabytes")
	f.Int64Var(&minFallback, "min-fallback-size", 4, "minimum uncompressed size in megabytes of an object fetched plainly (0: never)")
	f.IntVar(&jobs, "jobs", 0, "parts compressed in parallel (default: number of CPUs)")
	f.BoolVar(&disableBsdiff, "disable-bsdiff", false, "accepted for compatibility: gostree sends new objects whole and never uses bsdiff")
	return cmd
}
