package ostree

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gostree/gostree/ostree/gvariant"
	"golang.org/x/sys/unix"
)

// Checksums of tree A objects (testdata/vectors/README.md).
const (
	sumSubDeeperA = "e000a47a36168c51fe11770372f3f0f4edacb46eb349d9be2aae027ea0a045f8" // shared by A and B
	sumHelloA     = "81381808c56d4f3d643ec12f6a18fcf2993af8daba7c2a1b2cbfc315b39424c6" // only in A
	sumDirMetaA   = "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488"
)

func testModes(t *testing.T) []RepoMode {
	modes := []RepoMode{ModeArchive, ModeBareUser, ModeBareUserOnly}
	if os.Geteuid() == 0 {
		modes = append(modes, ModeBare)
	}
	return modes
}

// makeHistoryRepo makes a repository with commit A (tree A) and its child
// B (hello.txt changed, new.txt added); ref main points at B.
func makeHistoryRepo(t *testing.T, mode RepoMode) (r *Repo, a, b Checksum) {
	t.Helper()
	src := t.TempDir()
	makeTreeA(t, src)
	r, err := Init(filepath.Join(t.TempDir(), "repo"), mode, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.SetFsync(false)
	a = commitDir(t, r, src, CommitOptions{Subject: "A", Timestamp: time.Unix(1577836800, 0)}, "main")
	if err := os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello world v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "new.txt"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b = commitDir(t, r, src, CommitOptions{Subject: "B", Parent: a, Timestamp: time.Unix(1577923200, 0)}, "main")
	return r, a, b
}

func runFsck(t *testing.T, r *Repo, o FsckOptions) *FsckResult {
	t.Helper()
	res, err := r.Fsck(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// findError returns the error about object n (or path p).
func findError(res *FsckResult, n ObjectName, p string) *FsckError {
	for i := range res.Errors {
		e := &res.Errors[i]
		if p != "" && e.Path == p || p == "" && e.Path == "" && e.Object == n {
			return e
		}
	}
	return nil
}

func isPartial(r *Repo, c Checksum) (bool, string) {
	b, err := os.ReadFile(filepath.Join(r.Path(), "state", c.String()+".commitpartial"))
	return err == nil, string(b)
}

func TestFsckClean(t *testing.T) {
	for _, mode := range testModes(t) {
		t.Run(mode.String(), func(t *testing.T) {
			r, _, _ := makeHistoryRepo(t, mode)
			res := runFsck(t, r, FsckOptions{})
			if !res.OK() || res.Err() != nil {
				t.Fatalf("errors in a clean repo: %v", res.Errors)
			}
			// A and B: 5 + 1 (new root) dirtrees, one dirmeta, 7 + 2 files.
			if res.Commits != 2 || res.DirTrees != 6 || res.DirMetas != 1 || res.ContentObjects != 9 || res.Refs != 1 {
				t.Fatalf("counts: %+v", res)
			}
			if len(res.MarkedPartial) != 0 {
				t.Fatalf("marked partial: %v", res.MarkedPartial)
			}
			if _, err := os.Stat(filepath.Join(r.Path(), "state")); err == nil {
				ents, _ := os.ReadDir(filepath.Join(r.Path(), "state"))
				if len(ents) != 0 {
					t.Fatalf("state/ not empty: %v", ents)
				}
			}
			if _, err := ostreeCmdIfPresent(t, "fsck", "--repo="+r.Path()); err != nil {
				t.Fatalf("ostree fsck rejects our repository: %v", err)
			}
		})
	}
}

// ostreeCmdIfPresent runs ostree when it is installed (and returns nil
// otherwise, or fails when CI=true).
func ostreeCmdIfPresent(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if !haveOstree() {
		return "", nil
	}
	out, err := ostreeCmd(t, args...)
	if err != nil {
		return out, errors.New(err.Error() + ": " + out)
	}
	return out, nil
}

func TestFsckCorruptContent(t *testing.T) {
	for _, mode := range testModes(t) {
		t.Run(mode.String(), func(t *testing.T) {
			r, a, b := makeHistoryRepo(t, mode)
			n := ObjectName{mustChecksum(t, sumSubDeeperA), ObjFile}
			p := r.objectPath(n)
			if mode == ModeArchive {
				// Same header and length, other compressed content.
				fi, content, err := DecodeArchiveObject(mustReadFile(t, p))
				if err != nil {
					t.Fatal(err)
				}
				content[0] ^= 1
				writeArchiveObject(t, p, fi, content)
			} else {
				os.Chmod(p, 0o644)
				f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString("corrupted\n")
				f.Close()
			}
			if _, err := ostreeCmdIfPresent(t, "fsck", "--repo="+r.Path()); err == nil && haveOstree() {
				t.Fatalf("ostree fsck accepted the corrupted repository")
			}
			res := runFsck(t, r, FsckOptions{})
			e := findError(res, n, "")
			if e == nil || !errors.Is(e.Err, ErrCorrupt) || e.Missing || len(res.Errors) != 1 {
				t.Fatalf("errors: %v", res.Errors)
			}
			if !strings.Contains(e.Error(), n.Checksum.String()) {
				t.Fatalf("message does not name the object: %s", e.Error())
			}
			if len(e.Commits) != 2 || len(res.MarkedPartial) != 2 {
				t.Fatalf("commits %v, marked %v", e.Commits, res.MarkedPartial)
			}
			for _, c := range []Checksum{a, b} {
				if ok, content := isPartial(r, c); !ok || content != "f" {
					t.Fatalf("commit %s not marked partial (%v %q)", c, ok, content)
				}
			}
			// Delete removes the object; fsck then reports it missing.
			res = runFsck(t, r, FsckOptions{Delete: true})
			if len(res.Deleted) != 1 || res.Deleted[0] != n {
				t.Fatalf("deleted %v", res.Deleted)
			}
			if ok, _ := r.HasObject(n); ok {
				t.Fatal("corrupted object still present")
			}
			res = runFsck(t, r, FsckOptions{})
			if e := findError(res, n, ""); e == nil || !e.Missing || !errors.Is(e.Err, ErrNotFound) {
				t.Fatalf("after delete: %v", res.Errors)
			}
		})
	}
}

func writeArchiveObject(t testing.TB, p string, fi *FileInfo, content []byte) {
	t.Helper()
	r, err := Init(filepath.Join(t.TempDir(), "scratch"), ModeArchive, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.SetFsync(false)
	tx, err := r.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	x := *fi
	x.Size = int64(len(content))
	sum, err := tx.WriteContent(&x, strings.NewReader(string(content)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, mustReadFile(t, r.objectPath(ObjectName{sum, ObjFile})), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFsckMissingObject(t *testing.T) {
	r, a, b := makeHistoryRepo(t, ModeArchive)
	hello := ObjectName{mustChecksum(t, sumHelloA), ObjFile}
	if err := os.Remove(r.objectPath(hello)); err != nil {
		t.Fatal(err)
	}
	res := runFsck(t, r, FsckOptions{NoPartialMarker: true})
	e := findError(res, hello, "")
	if e == nil || !e.Missing || !errors.Is(e.Err, ErrNotFound) || len(res.Errors) != 1 {
		t.Fatalf("errors: %v", res.Errors)
	}
	if !strings.Contains(e.Error(), "object missing") || len(e.Commits) != 1 || e.Commits[0] != a {
		t.Fatalf("error %q commits %v", e.Error(), e.Commits)
	}
	if ok, _ := isPartial(r, a); ok {
		t.Fatal("NoPartialMarker: commit marked partial")
	}
	res = runFsck(t, r, FsckOptions{})
	if len(res.MarkedPartial) != 1 || res.MarkedPartial[0] != a {
		t.Fatalf("marked %v", res.MarkedPartial)
	}
	if ok, content := isPartial(r, a); !ok || content != "f" {
		t.Fatalf("commit A not marked partial by fsck")
	}
	if ok, _ := isPartial(r, b); ok {
		t.Fatal("commit B does not contain the object but was marked partial")
	}
	// A commit marked partial by fsck is still verified: the problem stays.
	if res := runFsck(t, r, FsckOptions{}); findError(res, hello, "") == nil {
		t.Fatalf("second run: %v", res.Errors)
	}
	if haveOstree() {
		if _, err := ostreeCmdIfPresent(t, "fsck", "--repo="+r.Path()); err == nil {
			t.Fatal("ostree fsck accepts a commit we marked partial after corruption")
		}
	}
	// A commit marked partial by a pull may lack objects.
	os.WriteFile(filepath.Join(r.Path(), "state", a.String()+".commitpartial"), nil, 0o644)
	res = runFsck(t, r, FsckOptions{})
	if !res.OK() || res.PartialCommits != 1 {
		t.Fatalf("pull-partial commit: %v (partial %d)", res.Errors, res.PartialCommits)
	}
}

func TestFsckParents(t *testing.T) {
	r, a, _ := makeHistoryRepo(t, ModeArchive)
	// A missing parent is a partial history, not an error.
	keep := mustReadFile(t, r.objectPath(ObjectName{a, ObjCommit}))
	os.Remove(r.objectPath(ObjectName{a, ObjCommit}))
	if res := runFsck(t, r, FsckOptions{}); !res.OK() || res.Commits != 1 {
		t.Fatalf("missing parent: %v %+v", res.Errors, res)
	}
	// A corrupted parent is found although no ref names it.
	keep[len(keep)-1] ^= 0xff
	os.WriteFile(r.objectPath(ObjectName{a, ObjCommit}), keep, 0o644)
	res := runFsck(t, r, FsckOptions{})
	if e := findError(res, ObjectName{a, ObjCommit}, ""); e == nil || !errors.Is(e.Err, ErrCorrupt) {
		t.Fatalf("corrupted parent: %v", res.Errors)
	}
}

func TestFsckCommitUnderWrongName(t *testing.T) {
	r, _, b := makeHistoryRepo(t, ModeArchive)
	data := mustReadFile(t, r.objectPath(ObjectName{b, ObjCommit}))
	wrong := SumBytes([]byte(b.String() + " hello"))
	wn := ObjectName{wrong, ObjCommit}
	os.MkdirAll(filepath.Dir(r.objectPath(wn)), 0o755)
	if err := os.WriteFile(r.objectPath(wn), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRef(Refspec{Ref: "wrong"}, wrong); err != nil {
		t.Fatal(err)
	}
	res := runFsck(t, r, FsckOptions{})
	e := findError(res, wn, "")
	if e == nil || !errors.Is(e.Err, ErrCorrupt) || e.Ref != "wrong" || len(res.Errors) != 1 {
		t.Fatalf("errors: %v", res.Errors)
	}
	if !strings.Contains(e.Error(), "checksum expected='"+wrong.String()+"'") {
		t.Fatalf("message: %s", e.Error())
	}
	res = runFsck(t, r, FsckOptions{Delete: true})
	if len(res.Deleted) != 1 || res.Deleted[0] != wn {
		t.Fatalf("deleted %v", res.Deleted)
	}
}

// writeRawObject stores metadata bytes under their checksum, bypassing
// every validation.
func writeRawObject(t testing.TB, r *Repo, typ ObjectType, data []byte) Checksum {
	t.Helper()
	sum := SumBytes(data)
	p := r.objectPath(ObjectName{sum, typ})
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestFsckDirtreeBadName(t *testing.T) {
	for _, bad := range []string{"../afile", "a/b", "..", "."} {
		t.Run(bad, func(t *testing.T) {
			r, _, _ := makeHistoryRepo(t, ModeArchive)
			hello := mustChecksum(t, sumHelloA)
			dt := gvariant.MustMarshal(typeDirTree, []any{[]any{[]any{bad, hello[:]}}, []any{}})
			tree := writeRawObject(t, r, ObjDirTree, dt)
			cm := &Commit{Subject: "evil", RootTree: tree, RootMeta: mustChecksum(t, sumDirMetaA), Timestamp: 1}
			cb, err := cm.Encode()
			if err != nil {
				t.Fatal(err)
			}
			c := writeRawObject(t, r, ObjCommit, cb)
			r.SetRef(Refspec{Ref: "evil"}, c)
			res := runFsck(t, r, FsckOptions{})
			tn := ObjectName{tree, ObjDirTree}
			e := findError(res, tn, "")
			if e == nil || !errors.Is(e.Err, ErrCorrupt) || len(res.Errors) != 1 {
				t.Fatalf("errors: %v", res.Errors)
			}
			if !strings.Contains(e.Error(), tree.String()+".dirtree") || len(e.Commits) != 1 || e.Commits[0] != c {
				t.Fatalf("error %q", e.Error())
			}
			if ok, _ := isPartial(r, c); !ok {
				t.Fatal("commit with a bad tree not marked partial")
			}
		})
	}
}

func TestFsckChmodObject(t *testing.T) {
	modes := []RepoMode{ModeBareUserOnly}
	if os.Geteuid() == 0 {
		modes = append(modes, ModeBare)
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			r, _, _ := makeHistoryRepo(t, mode)
			n := ObjectName{mustChecksum(t, sumSubDeeperA), ObjFile}
			// Through a hard-linked checkout, as ostree's test does.
			co := filepath.Join(t.TempDir(), "co")
			c, _ := r.ReadRef(Refspec{Ref: "main"})
			if err := r.Checkout(context.Background(), c, co, CheckoutOptions{Hardlink: true, UserMode: mode != ModeBare}); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(co, "sub/deeper/a"), 0o645); err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(r.objectPath(n))
			if st.Mode().Perm() != 0o645 {
				t.Skipf("checkout did not hard-link (mode %v)", st.Mode())
			}
			res := runFsck(t, r, FsckOptions{})
			if e := findError(res, n, ""); e == nil || !errors.Is(e.Err, ErrCorrupt) || len(res.Errors) != 1 {
				t.Fatalf("errors: %v", res.Errors)
			}
		})
	}
}

func TestFsckRefs(t *testing.T) {
	r, _, _ := makeHistoryRepo(t, ModeArchive)
	html := filepath.Join(r.Path(), "refs/heads/html")
	os.WriteFile(html, []byte(strings.Repeat("<html>lots of html here</html>\n", 20)), 0o644)
	missing := SumBytes([]byte("nothing"))
	r.SetRef(Refspec{Ref: "gone"}, missing)
	r.SetRef(Refspec{Remote: "origin", Ref: "also/gone"}, missing)
	os.WriteFile(filepath.Join(r.Path(), "refs/heads/.hidden"), []byte("junk"), 0o644)
	res := runFsck(t, r, FsckOptions{})
	if e := findError(res, ObjectName{}, "refs/heads/html"); e == nil || !strings.Contains(e.Error(), "invalid rev") {
		t.Fatalf("html ref: %v", res.Errors)
	}
	e := findError(res, ObjectName{missing, ObjCommit}, "")
	if e == nil || !e.Missing || (e.Ref != "gone" && e.Ref != "origin:also/gone") {
		t.Fatalf("missing commit: %v", res.Errors)
	}
	if len(res.Errors) != 2 || res.Refs != 4 {
		t.Fatalf("errors %v refs %d", res.Errors, res.Refs)
	}
}

func TestFsckStrayFiles(t *testing.T) {
	r, _, _ := makeHistoryRepo(t, ModeArchive)
	hello := mustChecksum(t, sumHelloA).String()
	stray := map[string]string{
		"objects/" + hello[:2] + "/" + hello[2:] + ".file":  "uncompressed content object in an archive repository",
		"objects/" + hello[:2] + "/garbage.txt":             "not a valid object file name",
		"objects/" + hello[:2] + "/" + hello[2:] + ".bogus": "unknown object type",
		"objects/zz/x": "", // reported as the directory objects/zz
	}
	for p := range stray {
		full := filepath.Join(r.Path(), p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.WriteFile(full, []byte("x"), 0o644)
	}
	res := runFsck(t, r, FsckOptions{})
	if len(res.Errors) != 4 {
		t.Fatalf("errors: %v", res.Errors)
	}
	for p, why := range stray {
		if why == "" {
			p = "objects/zz"
		}
		if e := findError(res, ObjectName{}, p); e == nil || !strings.Contains(e.Error(), why) {
			t.Errorf("%s: %v", p, res.Errors)
		}
	}
}

func TestFsckAll(t *testing.T) {
	r, _, b := makeHistoryRepo(t, ModeArchive)
	// An orphan commit whose root dirmeta is corrupted (mode not a dir).
	dm := (&DirMeta{Mode: 0o100644}).Encode()
	meta := writeRawObject(t, r, ObjDirMeta, dm)
	cm := &Commit{Subject: "orphan", RootTree: SumBytes((&DirTree{}).Encode()), RootMeta: meta, Timestamp: 1}
	cb, _ := cm.Encode()
	writeRawObject(t, r, ObjDirTree, (&DirTree{}).Encode())
	orphan := writeRawObject(t, r, ObjCommit, cb)
	if res := runFsck(t, r, FsckOptions{}); !res.OK() {
		t.Fatalf("without All: %v", res.Errors)
	}
	res := runFsck(t, r, FsckOptions{All: true, NoPartialMarker: true})
	e := findError(res, ObjectName{meta, ObjDirMeta}, "")
	if e == nil || len(e.Commits) != 1 || e.Commits[0] != orphan || res.Commits != 3 {
		t.Fatalf("with All: %v (%d commits)", res.Errors, res.Commits)
	}
	_ = b
}

func TestFsckCancel(t *testing.T) {
	r, _, _ := makeHistoryRepo(t, ModeArchive)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Fsck(ctx, FsckOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// BenchmarkFsck verifies the repository named by GOSTREE_BENCH_REPO (e.g.
// a bare repository of a real root filesystem; compare with
// `ostree fsck --repo=…`).
func BenchmarkFsck(b *testing.B) {
	p := os.Getenv("GOSTREE_BENCH_REPO")
	if p == "" {
		b.Skip("set GOSTREE_BENCH_REPO to a repository")
	}
	r, err := Open(p)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		res, err := r.Fsck(context.Background(), FsckOptions{NoPartialMarker: true})
		if err != nil {
			b.Fatal(err)
		}
		if !res.OK() {
			b.Fatal(res.Err())
		}
	}
}

// TestFsckReadOnlyRepo: fsck (a reader) works on a repository mounted
// read-only, with or without a .lock file in it, and a writer is refused
// with an error saying why.
func TestFsckReadOnlyRepo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a read-only bind mount")
	}
	for _, withLock := range []bool{true, false} {
		name := "lockfile"
		if !withLock {
			name = "no-lockfile"
		}
		t.Run(name, func(t *testing.T) {
			w, _, _ := makeHistoryRepo(t, ModeArchive)
			lock := filepath.Join(w.Path(), ".lock")
			if withLock {
				if err := os.WriteFile(lock, nil, 0o640); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Remove(lock); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			w.Close()
			ro := filepath.Join(t.TempDir(), "ro")
			if err := os.Mkdir(ro, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount(w.Path(), ro, "", unix.MS_BIND, ""); err != nil {
				t.Skipf("bind mount: %v", err)
			}
			t.Cleanup(func() { unix.Unmount(ro, unix.MNT_DETACH) })
			if err := unix.Mount("", ro, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
				t.Fatalf("remount read-only: %v", err)
			}
			r, err := Open(ro)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			res := runFsck(t, r, FsckOptions{})
			if !res.OK() || res.Commits != 2 {
				t.Fatalf("fsck of a read-only repo: %+v", res)
			}
			if _, err := r.Lock(context.Background(), LockExclusive); err == nil || !strings.Contains(err.Error(), "read-only") {
				t.Fatalf("exclusive lock on a read-only repo: %v", err)
			}
		})
	}
}
