package main

import (
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
)

func newCatCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "cat REV PATH...",
		Short: "Print the contents of files in a commit",
		Args:  cobra.MinimumNArgs(2),
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
			cm, err := r.LoadCommit(c)
			if err != nil {
				return err
			}
			for _, p := range args[1:] {
				sum, err := lookupFile(r, cm.RootTree, p)
				if err != nil {
					return err
				}
				obj, err := r.OpenContent(sum)
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

// lookupFile finds the content object of a file path in a tree.
func lookupFile(r *ostree.Repo, tree ostree.Checksum, p string) (ostree.Checksum, error) {
	clean := strings.TrimPrefix(path.Clean("/"+p), "/")
	if clean == "" {
		return ostree.Checksum{}, fmt.Errorf("%s is a directory", p)
	}
	parts := strings.Split(clean, "/")
	for i, name := range parts {
		dt, err := r.LoadDirTree(tree)
		if err != nil {
			return ostree.Checksum{}, err
		}
		if i == len(parts)-1 {
			for _, f := range dt.Files {
				if f.Name == name {
					return f.Checksum, nil
				}
			}
			for _, d := range dt.Dirs {
				if d.Name == name {
					return ostree.Checksum{}, fmt.Errorf("%s is a directory", p)
				}
			}
			break
		}
		found := false
		for _, d := range dt.Dirs {
			if d.Name == name {
				tree, found = d.Tree, true
			}
		}
		if !found {
			break
		}
	}
	return ostree.Checksum{}, fmt.Errorf("no such file or directory: %s", p)
}
