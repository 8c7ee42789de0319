package ostree

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// makeTreeA creates tree A of testdata/vectors/README.md.
func makeTreeA(t testing.TB, dir string) {
	t.Helper()
	mk := func(p string, mode os.FileMode, content string) {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(full, mode)
	}
	mk("bin/script.sh", 0o755, "#!/bin/sh\necho hi\n")
	os.MkdirAll(filepath.Join(dir, "empty"), 0o755)
	mk("empty.txt", 0o644, "")
	mk("hello.txt", 0o644, "hello world\n")
	os.Symlink("hello.txt", filepath.Join(dir, "link"))
	mk("sub/private", 0o600, "secret\n")
	mk("sub/deeper/B", 0o644, "B\n")
	mk("sub/deeper/a", 0o644, "a\n")
	for _, d := range []string{"", "bin", "empty", "sub", "sub/deeper"} {
		os.Chmod(filepath.Join(dir, d), 0o755)
	}
}

func commitDir(t testing.TB, r *Repo, dir string, o CommitOptions, ref string) Checksum {
	t.Helper()
	c, err := commitDirErr(r, dir, o, ref)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// commitDirErr commits dir as owner 0:0; safe to call from goroutines.
func commitDirErr(r *Repo, dir string, o CommitOptions, ref string) (Checksum, error) {
	ctx := context.Background()
	tx, err := r.Begin(ctx)
	if err != nil {
		return Checksum{}, err
	}
	defer tx.Abort()
	io := DefaultImportOptions()
	io.OwnerUID, io.OwnerGID = 0, 0
	mt := NewMutableTree(DirMeta{})
	if err := mt.Import(dir, io); err != nil {
		return Checksum{}, err
	}
	tree, meta, err := tx.WriteTree(ctx, mt, 0)
	if err != nil {
		return Checksum{}, err
	}
	c, err := tx.WriteCommit(tree, meta, o)
	if err != nil {
		return Checksum{}, err
	}
	if ref != "" {
		if err := tx.SetRef(Refspec{Ref: ref}, c); err != nil {
			return Checksum{}, err
		}
	}
	return c, tx.Commit()
}

func TestCommitTreeAEveryMode(t *testing.T) {
	src := t.TempDir()
	makeTreeA(t, src)
	for _, mode := range []RepoMode{ModeArchive, ModeBare, ModeBareUser, ModeBareUserOnly} {
		t.Run(mode.String(), func(t *testing.T) {
			if mode == ModeBare && os.Geteuid() != 0 {
				t.Skip("bare mode needs root")
			}
			r, err := Init(filepath.Join(t.TempDir(), "repo"), mode, InitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			r.SetFsync(false)
			c := commitDir(t, r, src, CommitOptions{Subject: "Test subject", Body: "Test body", Timestamp: time.Unix(1577836800, 0)}, "main")
			if c.String() != "51005217f27bcba5bf8fe61d8e9e5c4320be286d68fbac6164262f4a141e70fe" {
				t.Fatalf("commit = %s", c)
			}
			got, err := r.ResolveRev("main")
			if err != nil || got != c {
				t.Fatalf("ResolveRev = %s, %v", got, err)
			}
			// Recommitting writes no new content.
			dst := filepath.Join(t.TempDir(), "co")
			if err := r.Checkout(context.Background(), c, dst, CheckoutOptions{Hardlink: true}); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dst, "sub/deeper/B")); err != nil || string(b) != "B\n" {
				t.Fatalf("checkout: %q %v", b, err)
			}
			if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "hello.txt" {
				t.Fatalf("link: %q %v", l, err)
			}
			st, _ := os.Stat(filepath.Join(dst, "sub/private"))
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v", st.Mode())
			}
		})
	}
}

// Concurrent writers share the repository; an exclusive lock (prune)
// waits for them and times out with a clear error.
func TestConcurrentWritersAndLocking(t *testing.T) {
	dir := t.TempDir()
	r, err := Init(filepath.Join(dir, "repo"), ModeArchive, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.SetFsync(false)
	src := filepath.Join(dir, "tree")
	makeTreeA(t, src)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func(i int) {
			// Separate Repo values behave like separate processes.
			r2, err := Open(r.Path())
			if err != nil {
				errs <- err
				return
			}
			defer r2.Close()
			r2.SetFsync(false)
			_, err = commitDirErr(r2, src, CommitOptions{Subject: fmt.Sprint(i), Timestamp: time.Unix(int64(i), 0)}, fmt.Sprintf("b%d", i))
			errs <- err
		}(i)
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	refs, err := r.ListRefs("", false)
	if err != nil || len(refs) != 4 {
		t.Fatalf("refs = %v, %v", refs, err)
	}
	res, err := r.Fsck(context.Background(), FsckOptions{All: true})
	if err != nil || !res.OK() {
		t.Fatalf("fsck: %v %v", err, res.Err())
	}

	// While a transaction holds the shared lock, an exclusive lock from
	// another Repo value times out.
	tx, err := r.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	other, err := Open(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.lockTimeout = 200 * time.Millisecond
	if _, err := other.Lock(context.Background(), LockExclusive); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("exclusive lock while a transaction is open: %v", err)
	}
	tx.Abort()
	unlock, err := other.Lock(context.Background(), LockExclusive)
	if err != nil {
		t.Fatalf("exclusive lock after the transaction ended: %v", err)
	}
	unlock()
}

func TestDeleteNestedRef(t *testing.T) {
	r, err := Init(filepath.Join(t.TempDir(), "repo"), ModeArchive, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var c Checksum
	c[0] = 1
	if err := r.SetRef(Refspec{Ref: "os/x86_64/stable"}, c); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRef(Refspec{Ref: "os/x86_64/stable"}, Checksum{}); err != nil {
		t.Fatalf("deleting a ref whose directories become empty: %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.Path(), "refs/heads/os")); !os.IsNotExist(err) {
		t.Errorf("empty ref directories left behind: %v", err)
	}
	if err := r.SetRef(Refspec{Remote: "origin", Ref: "a/b"}, c); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRef(Refspec{Remote: "origin", Ref: "a/b"}, Checksum{}); err != nil {
		t.Fatalf("deleting a remote ref: %v", err)
	}
}
