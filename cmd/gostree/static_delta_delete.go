package main

import (
	"github.com/spf13/cobra"
)

func newStaticDeltaDeleteCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "delete DELTA",
		Short: "Delete a static delta",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, to, err := parseDeltaArg(args[0])
			if err != nil {
				return err
			}
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			return r.DeleteStaticDelta(cmd.Context(), from, to)
		},
	}
}
