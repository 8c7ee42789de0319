package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree/gvariant"
)

func newShowCommand(g *globalOptions) *cobra.Command {
	var key, detachedKey string
	cmd := &cobra.Command{
		Use:   "show [OPTIONS] REV",
		Short: "Show a commit",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, c, cm, err := g.openCommit(args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			switch {
			case key != "":
				v, ok := cm.Metadata.Lookup(key)
				if !ok {
					return fmt.Errorf("no such metadata key '%s'", key)
				}
				fmt.Fprintln(g.stdout, gvariant.Print(v.Type, v.Value))
			case detachedKey != "":
				dm, err := r.LoadCommitMeta(c)
				if err != nil {
					return err
				}
				v, ok := dm.Lookup(detachedKey)
				if !ok {
					return fmt.Errorf("no such detached metadata key '%s'", detachedKey)
				}
				fmt.Fprintln(g.stdout, gvariant.Print(v.Type, v.Value))
			default:
				printCommit(g.stdout, c, cm)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "print-metadata-key", "", "print the value of a metadata KEY")
	cmd.Flags().StringVar(&detachedKey, "print-detached-metadata-key", "", "print the value of a detached metadata KEY")
	return cmd
}
