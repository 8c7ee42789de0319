// Package storetest is the conformance suite every store.Store
// implementation runs: exact bytes for small, empty and large files,
// fs.ErrNotExist for missing files, Stat, paths that try to leave the
// store, concurrent reads and cancellation.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gostree/gostree/ostree/store"
)

// Factory returns a store serving the files under dir (a directory the
// suite fills before calling it).
type Factory func(t *testing.T, dir string) store.Store

// Files are the files the suite puts in the store's directory.
func Files() map[string][]byte {
	big := make([]byte, 3<<20+17)
	rand.Read(big)
	return map[string][]byte{
		"config":                            []byte("[core]\nrepo_version=1\nmode=archive-z2\n"),
		"empty":                             {},
		"objects/ab/cdef.dirtree":           {0},
		"objects/12/big.filez":              big,
		"refs/heads/a/b":                    []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"),
		"deltas/UQ/BSF_J7y+6W-x/superblock": []byte("super"),
	}
}

// WriteFiles writes Files() under dir.
func WriteFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := Files()
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A file outside the store's directory, next to it.
	if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "outside"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	return files
}

// Run runs the suite. The factory is called once per subtest with a
// fresh directory holding Files().
func Run(t *testing.T, newStore Factory) {
	setup := func(t *testing.T) (store.Store, map[string][]byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "repo")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		files := WriteFiles(t, dir)
		return newStore(t, dir), files
	}
	ctx := context.Background()

	t.Run("OpenReadsExactBytes", func(t *testing.T) {
		s, files := setup(t)
		for p, want := range files {
			got, err := ReadAll(ctx, s, p)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: got %d bytes, want %d (content differs)", p, len(got), len(want))
			}
		}
	})
	t.Run("OpenMissingIsNotExist", func(t *testing.T) {
		s, _ := setup(t)
		for _, p := range []string{"summary", "objects/00/missing.commit", "refs/heads/a/b/c", "nodir/x"} {
			_, err := s.Open(ctx, p)
			if !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Open(%s): got %v, want fs.ErrNotExist", p, err)
			}
			if store.IsRetryable(err) {
				t.Fatalf("Open(%s): a missing file must not be retryable: %v", p, err)
			}
		}
	})
	t.Run("Stat", func(t *testing.T) {
		s, files := setup(t)
		for p, b := range files {
			info, err := s.Stat(ctx, p)
			if err != nil {
				t.Fatalf("Stat(%s): %v", p, err)
			}
			if info.Size != int64(len(b)) {
				t.Fatalf("Stat(%s): size %d, want %d", p, info.Size, len(b))
			}
		}
		if _, err := s.Stat(ctx, "objects/00/missing.commit"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Stat(missing): got %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("PathsStayInside", func(t *testing.T) {
		s, _ := setup(t)
		for _, p := range []string{"../outside", "/etc/passwd", "objects/../../outside", "", "a//b", "./config"} {
			rc, err := s.Open(ctx, p)
			if err == nil {
				b, _ := io.ReadAll(rc)
				rc.Close()
				t.Fatalf("Open(%q) succeeded (%q)", p, b)
			}
			if _, err := s.Stat(ctx, p); err == nil {
				t.Fatalf("Stat(%q) succeeded", p)
			}
		}
	})
	t.Run("DirectoryIsNotAFile", func(t *testing.T) {
		s, _ := setup(t)
		rc, err := s.Open(ctx, "objects/ab")
		if err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			t.Fatalf("Open(directory) gave %d bytes", len(b))
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s, files := setup(t)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := 0; i < 32; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p, want := range files {
					got, err := ReadAll(ctx, s, p)
					if err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(got, want) {
						errs <- fmt.Errorf("%s: content differs", p)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		s, _ := setup(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := ReadAll(cctx, s, "config"); err == nil {
			t.Fatal("Open with a cancelled context succeeded")
		}
		if _, err := s.Stat(cctx, "config"); err == nil {
			t.Fatal("Stat with a cancelled context succeeded")
		}
	})
}

// ReadAll opens p and reads it whole.
func ReadAll(ctx context.Context, s store.Store, p string) ([]byte, error) {
	rc, err := s.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
