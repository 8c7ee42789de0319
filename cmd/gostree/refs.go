package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
)

func newRefsCommand(g *globalOptions) *cobra.Command {
	var create string
	var del, force bool
	cmd := &cobra.Command{
		Use:   "refs [OPTIONS] [PREFIX | --create=REF COMMIT | --delete REF...]",
		Short: "List, create or delete refs",
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			switch {
			case create != "":
				if len(args) != 1 {
					return errUsage("--create=REF needs exactly one COMMIT argument")
				}
				rs, err := ostree.ParseRefspec(create)
				if err != nil {
					return err
				}
				if _, err := r.ReadRef(rs); err == nil && !force {
					return fmt.Errorf("ref %s already exists (use --force to overwrite)", rs)
				}
				c, err := r.ResolveRev(args[0])
				if err != nil {
					return err
				}
				if _, err := r.LoadCommit(c); err != nil {
					return fmt.Errorf("cannot create ref %s: %w", rs, err)
				}
				return r.SetRef(rs, c)
			case del:
				if len(args) == 0 {
					return errUsage("--delete needs at least one REF")
				}
				for _, a := range args {
					rs, err := ostree.ParseRefspec(a)
					if err != nil {
						return err
					}
					if err := r.SetRef(rs, ostree.Checksum{}); err != nil {
						if errors.Is(err, ostree.ErrNotFound) {
							return fmt.Errorf("ref %s does not exist", rs)
						}
						return err
					}
				}
				return nil
			}
			if len(args) > 1 {
				return errUsage("at most one PREFIX")
			}
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			refs, err := r.ListRefs(prefix, true)
			if err != nil {
				return err
			}
			for _, n := range ostree.SortedRefNames(refs) {
				fmt.Fprintln(g.stdout, n)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&create, "create", "", "create REF pointing at COMMIT")
	cmd.Flags().BoolVar(&del, "delete", false, "delete the given refs")
	cmd.Flags().BoolVar(&force, "force", false, "with --create, overwrite an existing ref")
	return cmd
}
