package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
)

func newFsckCommand(g *globalOptions) *cobra.Command {
	var o ostree.FsckOptions
	var quiet, refsOnly bool
	cmd := &cobra.Command{
		Use:   "fsck [OPTIONS]",
		Short: "Check the repository for consistency",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			o.All = !refsOnly
			if !quiet {
				fmt.Fprintln(g.stdout, "Validating refs...")
				fmt.Fprintln(g.stdout, "Enumerating commits...")
			}
			res, err := r.Fsck(cmd.Context(), o)
			if err != nil {
				return err
			}
			for i := range res.Errors {
				fmt.Fprintf(g.stderr, "error: %v\n", &res.Errors[i])
			}
			for _, c := range res.MarkedPartial {
				fmt.Fprintf(g.stderr, "Marking commit as partial: %s\n", c)
			}
			for _, n := range res.Deleted {
				fmt.Fprintf(g.stderr, "Deleted corrupted object: %s\n", n)
			}
			if !res.OK() {
				return exitError{code: 1, msg: fmt.Sprintf("%d problem(s) found in %d commit(s); repository corruption encountered", len(res.Errors), res.Commits)}
			}
			if !quiet {
				fmt.Fprintf(g.stdout, "object fsck of %d commits completed successfully - no errors found.\n", res.Commits)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "print only errors")
	f.BoolVar(&o.Delete, "delete", false, "remove corrupted objects")
	f.BoolVar(&refsOnly, "refs-only", false, "check only the commits that refs point to (and their history), not every commit object")
	f.IntVar(&o.Jobs, "jobs", 0, "parallel verification jobs (default: number of CPUs)")
	return cmd
}
