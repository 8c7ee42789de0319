package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
)

func newStaticDeltaApplyOfflineCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "apply-offline PATH",
		Short: "Apply a static delta file (a delta directory or its superblock)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			dir := args[0]
			if st, err := os.Stat(dir); err != nil {
				return err
			} else if !st.IsDir() {
				dir = filepath.Dir(dir)
			}
			b, err := os.ReadFile(filepath.Join(dir, "superblock"))
			if err != nil {
				return err
			}
			d, err := ostree.ParseStaticDelta(b)
			if err != nil {
				return fmt.Errorf("%s: %w", dir, err)
			}
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			tx, err := r.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Abort()
			if err := tx.ApplyStaticDeltaSuperblock(ctx, d, offlineFetch(dir, d), ostree.DeltaApplyOptions{}); err != nil {
				return err
			}
			return tx.Commit()
		},
	}
}

// offlineFetch serves the parts of the delta in dir. Fallback objects are
// read from the repository that holds dir (dir is REPO/deltas/XX/REST),
// if there is one.
func offlineFetch(dir string, d *ostree.StaticDelta) ostree.DeltaFetchFunc {
	prefix := ostree.StaticDeltaDir(d.From, d.To) + "/"
	repo := filepath.Join(dir, "..", "..", "..")
	return func(ctx context.Context, p string) (io.ReadCloser, error) {
		if rest, ok := strings.CutPrefix(p, prefix); ok && !strings.Contains(rest, "/") {
			return os.Open(filepath.Join(dir, rest))
		}
		if strings.HasPrefix(p, "objects/") {
			if _, err := os.Stat(filepath.Join(repo, "config")); err == nil {
				return os.Open(filepath.Join(repo, filepath.FromSlash(p)))
			}
			return nil, fmt.Errorf("the delta needs fallback object %s, which apply-offline cannot fetch: %w", p, os.ErrNotExist)
		}
		return nil, fmt.Errorf("unexpected delta file %s: %w", p, os.ErrNotExist)
	}
}
