package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
)

func newPruneCommand(g *globalOptions) *cobra.Command {
	o := ostree.DefaultPruneOptions()
	var keepYounger string
	var retain []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Delete objects that no ref or commit needs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			if keepYounger != "" {
				t, err := parseAge(keepYounger)
				if err != nil {
					return err
				}
				o.KeepYoungerThan = t
			}
			for _, rb := range retain {
				ref, d, ok := strings.Cut(rb, "=")
				n, err := strconv.Atoi(d)
				if !ok || err != nil {
					return fmt.Errorf("invalid --retain-branch-depth=%s: want BRANCH=DEPTH", rb)
				}
				if o.RetainBranchDepth == nil {
					o.RetainBranchDepth = map[string]int{}
				}
				o.RetainBranchDepth[ref] = n
			}
			res, err := r.Prune(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprint(g.stdout, res.String())
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.RefsOnly, "refs-only", false, "only keep what refs reach (default: every commit is kept)")
	f.IntVar(&o.Depth, "depth", -1, "keep only this many parents of each ref (-1: all)")
	f.StringVar(&keepYounger, "keep-younger-than", "", "keep commits newer than this (e.g. '2 weeks ago', '2020-01-01')")
	f.StringArrayVar(&retain, "retain-branch-depth", nil, "BRANCH=DEPTH: keep this many parents of BRANCH")
	f.StringArrayVar(&o.OnlyBranches, "only-branch", nil, "prune only this branch (repeatable)")
	f.BoolVar(&o.NoPrune, "no-prune", false, "only report what would be deleted")
	return cmd
}

// parseAge accepts an absolute date or "N unit(s) ago" as ostree's
// --keep-younger-than does.
func parseAge(s string) (time.Time, error) {
	f := strings.Fields(strings.TrimSpace(s))
	if len(f) == 3 && f[2] == "ago" {
		n, err := strconv.Atoi(f[0])
		if err == nil && n >= 0 {
			unit := strings.TrimSuffix(f[1], "s")
			d := map[string]time.Duration{"second": time.Second, "minute": time.Minute, "hour": time.Hour,
				"day": 24 * time.Hour, "week": 7 * 24 * time.Hour, "month": 30 * 24 * time.Hour, "year": 365 * 24 * time.Hour}[unit]
			if d != 0 {
				return time.Now().Add(-time.Duration(n) * d), nil
			}
		}
	}
	if t, err := parseTimestamp(s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("invalid --keep-younger-than %q: want a date or 'N days ago'", s)
}
