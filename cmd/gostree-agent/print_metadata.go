package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/agent"
	"github.com/gostree/gostree/heatmeta"
)

func newPrintMetadataCommand(g *globals) *cobra.Command {
	var raw bool
	cmd := &cobra.Command{
		Use:   "print-metadata",
		Short: "Poll the metadata sources and print the merged document (secrets redacted)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAgent(cmd.Context(), false, func(ctx context.Context, a *agent.Agent, _ *agent.Config) error {
				c, err := a.Collector().Collect(ctx)
				if err != nil {
					return err
				}
				for _, e := range c.Errors {
					fmt.Fprintln(g.stderr, "gostree-agent: source failed:", e)
				}
				doc := c.Merged
				if !raw {
					if doc, err = heatmeta.Redact(doc); err != nil {
						return err
					}
				}
				fmt.Fprintln(g.stdout, string(doc))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&raw, "show-secrets", false, "do not redact signal URLs, passwords and keys")
	return cmd
}
