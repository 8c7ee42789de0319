package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
)

func newLogCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "log REV",
		Short: "Show the history of a commit",
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
			for {
				cm, err := r.LoadCommit(c)
				if errors.Is(err, ostree.ErrNotFound) {
					fmt.Fprintln(g.stdout, "<< History beyond this commit not fetched >>")
					return nil
				}
				if err != nil {
					return err
				}
				printCommit(g.stdout, c, cm)
				if !cm.HasParent() {
					return nil
				}
				c = cm.Parent
			}
		},
	}
	return cmd
}

// printCommit writes a commit in the format of `ostree log` / `ostree show`.
func printCommit(w io.Writer, c ostree.Checksum, cm *ostree.Commit) {
	fmt.Fprintf(w, "commit %s\n", c)
	if cm.HasParent() {
		fmt.Fprintf(w, "Parent:  %s\n", cm.Parent)
	}
	fmt.Fprintf(w, "ContentChecksum:  %s\n", cm.ContentChecksum())
	fmt.Fprintf(w, "Date:  %s\n", formatTimestamp(cm.Timestamp))
	if v := cm.Version(); v != "" {
		fmt.Fprintf(w, "Version: %s\n", v)
	}
	fmt.Fprintln(w)
	if cm.Subject != "" {
		fmt.Fprintf(w, "    %s\n\n", cm.Subject)
	}
	if cm.Body != "" {
		for _, l := range strings.Split(cm.Body, "\n") {
			fmt.Fprintf(w, "    %s\n", l)
		}
		fmt.Fprintln(w)
	}
}
