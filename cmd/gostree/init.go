package main

import (
	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
)

func newInitCommand(g *globalOptions) *cobra.Command {
	var mode, collectionID string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Initialize a new empty repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := ostree.ParseRepoMode(mode)
			if err != nil {
				return err
			}
			path := g.repo
			if path == "" {
				return errUsage("init needs --repo=PATH")
			}
			r, err := ostree.Init(path, m, ostree.InitOptions{CollectionID: collectionID})
			if err != nil {
				return err
			}
			return r.Close()
		},
	}
	cmd.Flags().StringVar(&mode, "mode", "bare", "repository mode: bare, bare-user, bare-user-only or archive")
	cmd.Flags().StringVar(&collectionID, "collection-id", "", "globally unique ID for this repository's collection of refs")
	return cmd
}
