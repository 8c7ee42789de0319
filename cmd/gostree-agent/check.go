package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/agent"
)

func newCheckCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Dry run: poll metadata and say what would change, changing nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAgent(cmd.Context(), false, func(ctx context.Context, a *agent.Agent, _ *agent.Config) error {
				p, err := a.Check(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					b, err := json.MarshalIndent(p, "", "  ")
					if err != nil {
						return err
					}
					fmt.Fprintln(g.stdout, string(b))
					return nil
				}
				fmt.Fprintf(g.stdout, "running: %s\n", orNone(p.Running.String(), p.Running.IsZero()))
				if p.Target != nil {
					fmt.Fprintf(g.stdout, "wanted:  %s (%s)\n", p.Target.Commit, p.Request)
				}
				if p.Source != "" {
					fmt.Fprintf(g.stdout, "source:  %s\n", p.Source)
				}
				fmt.Fprintf(g.stdout, "action:  %s: %s\n", p.Action, p.Reason)
				for _, e := range p.Errors {
					fmt.Fprintf(g.stdout, "problem: %s\n", e)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func orNone(s string, none bool) string {
	if none {
		return "(none)"
	}
	return s
}
