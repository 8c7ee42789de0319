package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newCatCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "cat REV PATH...",
		Short: "Print the contents of files in a commit",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, _, cm, err := g.openCommit(args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			for _, p := range args[1:] {
				e, err := r.ResolvePath(cm.RootTree, cm.RootMeta, p)
				if err != nil {
					return err
				}
				if e.IsDir {
					return fmt.Errorf("%s is a directory", p)
				}
				obj, err := r.OpenContent(e.File)
				if err != nil {
					return err
				}
				if obj.Info.IsSymlink() {
					obj.Close()
					return fmt.Errorf("%s is a symbolic link to %s", p, obj.Info.SymlinkTarget)
				}
				_, err = io.Copy(g.stdout, obj.Content)
				obj.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
			}
			return nil
		},
	}
}
