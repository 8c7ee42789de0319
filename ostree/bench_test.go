package ostree

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchTree returns the tree to commit in benchmarks: $GOSTREE_BENCH_TREE
// (e.g. _build/trees/tree-v1 from scripts/make-trees.sh) or a synthetic
// tree of 2,000 files (about 40 MB, half compressible).
func benchTree(b *testing.B) string {
	if p := os.Getenv("GOSTREE_BENCH_TREE"); p != "" {
		return p
	}
	dir := b.TempDir()
	text := make([]byte, 0, 64<<10)
	for len(text) < 32<<10 {
		text = append(text, fmt.Sprintf("line %d of some compressible configuration text\n", len(text))...)
	}
	for i := 0; i < 2000; i++ {
		d := filepath.Join(dir, fmt.Sprintf("d%02d", i%50))
		os.MkdirAll(d, 0o755)
		data := text
		if i%2 == 0 {
			data = make([]byte, 8<<10+i*7)
			rand.Read(data)
		}
		os.WriteFile(filepath.Join(d, fmt.Sprintf("f%04d", i)), data, 0o644)
	}
	return dir
}

func benchCommit(b *testing.B, mode RepoMode, recommit bool) {
	tree := benchTree(b)
	if mode == ModeBare && os.Geteuid() != 0 {
		b.Skip("bare needs root")
	}
	ctx := context.Background()
	var repo *Repo
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if repo == nil || !recommit {
			var err error
			repo, err = Init(filepath.Join(b.TempDir(), "repo"), mode, InitOptions{})
			if err != nil {
				b.Fatal(err)
			}
			repo.SetFsync(false)
			if recommit {
				commitDir(b, repo, tree, CommitOptions{Timestamp: time.Unix(1, 0)}, "")
			}
		}
		b.StartTimer()
		tx, err := repo.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		io := DefaultImportOptions()
		mt := NewMutableTree(DirMeta{})
		if err := mt.Import(tree, io); err != nil {
			b.Fatal(err)
		}
		tr, mt2, err := tx.WriteTree(ctx, mt, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.WriteCommit(tr, mt2, CommitOptions{Timestamp: time.Unix(2, 0)}); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCommitArchive(b *testing.B)   { benchCommit(b, ModeArchive, false) }
func BenchmarkRecommitArchive(b *testing.B) { benchCommit(b, ModeArchive, true) }
func BenchmarkCommitBareUser(b *testing.B)  { benchCommit(b, ModeBareUser, false) }
func BenchmarkCommitBare(b *testing.B)      { benchCommit(b, ModeBare, false) }
