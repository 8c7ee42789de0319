package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRevParseCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rev-parse REV",
		Short: "Print the commit checksum a revision resolves to",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			c, err := r.ResolveRev(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, c)
			return nil
		},
	}
}
