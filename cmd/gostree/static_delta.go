package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
)

func newStaticDeltaCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "static-delta COMMAND",
		Short: "Manage static delta files",
	}
	cmd.AddCommand(
		newStaticDeltaListCommand(g),
		newStaticDeltaShowCommand(g),
		newStaticDeltaDeleteCommand(g),
		newStaticDeltaGenerateCommand(g),
		newStaticDeltaApplyOfflineCommand(g),
	)
	return cmd
}

func newStaticDeltaListCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List static delta files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			ds, err := r.ListStaticDeltas()
			if err != nil {
				return err
			}
			if len(ds) == 0 {
				fmt.Fprintln(g.stdout, "(No static deltas)")
			}
			for _, d := range ds {
				fmt.Fprintln(g.stdout, d.Name)
			}
			return nil
		},
	}
}

// parseDeltaArg parses a delta name given on the command line.
func parseDeltaArg(name string) (from, to ostree.Checksum, err error) {
	from, to, err = ostree.ParseStaticDeltaName(name)
	if err != nil {
		return from, to, errUsage("%v (want TO or FROM-TO, as `static-delta list` prints)", err)
	}
	return from, to, nil
}

// formatGSize formats a byte count as GLib's g_format_size (SI units,
// a no-break space before the unit).
func formatGSize(n uint64) string {
	if n < 1000 {
		if n == 1 {
			return "1 byte"
		}
		return fmt.Sprintf("%d bytes", n)
	}
	f := float64(n)
	for _, u := range []string{"kB", "MB", "GB", "TB", "PB"} {
		f /= 1000
		if f < 1000 {
			return fmt.Sprintf("%.1f\u00a0%s", f, u)
		}
	}
	return fmt.Sprintf("%.1f\u00a0EB", f/1000)
}
