package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gostree/gostree/ostree"
)

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// A tree holding something OSTree cannot store fails with an error naming
// the path, and leaves no object, staging directory or ref behind.
func TestCommitRejectsSpecialFiles(t *testing.T) {
	cases := map[string]func(p string) error{
		"fifo":   func(p string) error { return unix.Mkfifo(p, 0o644) },
		"socket": func(p string) error { return unix.Mknod(p, unix.S_IFSOCK|0o644, 0) },
		"chardev": func(p string) error {
			if os.Geteuid() != 0 {
				t.Skip("mknod of a device needs root")
			}
			return unix.Mknod(p, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3)))
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tree := filepath.Join(dir, "tree")
			os.MkdirAll(filepath.Join(tree, "dev"), 0o755)
			os.WriteFile(filepath.Join(tree, "ok.txt"), []byte("ok"), 0o644)
			bad := filepath.Join(tree, "dev", "thing")
			if err := mk(bad); err != nil {
				t.Skipf("cannot create a %s here: %v", name, err)
			}
			repo := filepath.Join(dir, "repo")
			gostree(t, "--repo="+repo, "init", "--mode=archive")
			msg := gostreeFails(t, "--repo="+repo, "commit", "-b", "main", tree)
			if !strings.Contains(msg, bad) || !strings.Contains(msg, "unsupported file type") {
				t.Errorf("error does not name the path and the problem: %s", msg)
			}
			if n := countFiles(t, filepath.Join(repo, "objects")); n != 0 {
				t.Errorf("%d objects left in the repository", n)
			}
			if ents, _ := os.ReadDir(filepath.Join(repo, "tmp")); len(ents) != 1 { // tmp/cache only
				t.Errorf("tmp not cleaned: %v", ents)
			}
			if refs := gostree(t, "--repo="+repo, "refs"); refs != "" {
				t.Errorf("refs created: %q", refs)
			}
		})
	}
}

func TestCommitRejectsBadNamesAndMetadata(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	gostree(t, "--repo="+repo, "init", "--mode=archive")
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "ok"), []byte("x"), 0o644)

	msg := gostreeFails(t, "--repo="+repo, "commit", "-b", "main", "--add-metadata-string==FOO", tree)
	if !strings.Contains(msg, "empty metadata key") {
		t.Errorf("empty key: %s", msg)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "invalid")
	msg = gostreeFails(t, "--repo="+repo, "commit", "-b", "main", tree)
	if !strings.Contains(msg, "SOURCE_DATE_EPOCH") {
		t.Errorf("bad SOURCE_DATE_EPOCH: %s", msg)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1600000000")
	gostree(t, "--repo="+repo, "commit", "-b", "main", tree)
	if out := gostree(t, "--repo="+repo, "log", "main"); !strings.Contains(out, "2020-09-13 12:26:40 +0000") {
		t.Errorf("SOURCE_DATE_EPOCH not used: %s", out)
	}
	for _, ref := range []string{".a", "-a", "a//b", "/a", "a b", "a/../b"} {
		msg := gostreeFails(t, "--repo="+repo, "commit", "-b", ref, tree)
		if !strings.Contains(msg, "invalid ref name") {
			t.Errorf("ref %q: %s", ref, msg)
		}
	}
	bad := filepath.Join(tree, "bad\x80name")
	if err := os.WriteFile(bad, nil, 0o644); err == nil {
		msg := gostreeFails(t, "--repo="+repo, "commit", "-b", "main", tree)
		if !strings.Contains(msg, "invalid UTF-8") {
			t.Errorf("non-UTF-8 name: %s", msg)
		}
		os.Remove(bad)
	}
}

// A checkout with --union onto a destination where a directory of the tree
// is a symlink must not follow it out of the destination.
func TestCheckoutNeverFollowsSymlinks(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	gostree(t, "--repo="+repo, "init", "--mode=archive")
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	os.WriteFile(filepath.Join(tree, "etc", "passwd"), []byte("evil\n"), 0o644)
	gostree(t, "--repo="+repo, "commit", "-b", "main", tree)

	outside := filepath.Join(dir, "outside")
	os.MkdirAll(outside, 0o755)
	dest := filepath.Join(dir, "dest")
	os.MkdirAll(dest, 0o755)
	os.Symlink(outside, filepath.Join(dest, "etc"))
	msg := gostreeFails(t, "--repo="+repo, "checkout", "--union", "main", dest)
	if !strings.Contains(msg, "etc") {
		t.Errorf("error does not name the path: %s", msg)
	}
	if _, err := os.Stat(filepath.Join(outside, "passwd")); err == nil {
		t.Fatal("checkout wrote through a symlink outside its destination")
	}

	// A non-empty destination without --union is refused.
	msg = gostreeFails(t, "--repo="+repo, "checkout", "main", dest)
	if !strings.Contains(msg, "not empty") {
		t.Errorf("non-empty destination: %s", msg)
	}
}

func TestErrorsForMissingThings(t *testing.T) {
	dir := t.TempDir()
	msg := gostreeFails(t, "--repo="+filepath.Join(dir, "nope"), "refs")
	if !strings.Contains(msg, "not an ostree repository") {
		t.Errorf("missing repo: %s", msg)
	}
	repo := filepath.Join(dir, "repo")
	gostree(t, "--repo="+repo, "init", "--mode=bare-user")
	msg = gostreeFails(t, "--repo="+repo, "log", "nosuchref")
	if !strings.Contains(msg, "nosuchref") || !strings.Contains(msg, "not found") {
		t.Errorf("missing ref: %s", msg)
	}
	msg = gostreeFails(t, "--repo="+repo, "init", "--mode=weird")
	if !strings.Contains(msg, "invalid repository mode") {
		t.Errorf("bad mode: %s", msg)
	}
}

// fsck names every bad object and exits non-zero; the commit is marked
// partial, as ostree does.
func TestFsckNamesEveryBadObject(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	gostree(t, "--repo="+repo, "init", "--mode=archive")
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "d"), 0o755)
	os.WriteFile(filepath.Join(tree, "a"), []byte("aaaa\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "d", "b"), []byte("bbbb\n"), 0o644)
	c := strings.TrimSpace(gostree(t, "--repo="+repo, "commit", "-b", "main", tree))
	ls := gostree(t, "--repo="+repo, "ls", "-R", "-C", "main")
	var sumA, sumB string
	for _, l := range strings.Split(ls, "\n") {
		f := strings.Fields(l)
		if len(f) == 6 && f[5] == "/a" {
			sumA = f[4]
		}
		if len(f) == 6 && f[5] == "/d/b" {
			sumB = f[4]
		}
	}
	if sumA == "" || sumB == "" {
		t.Fatalf("checksums not found in:\n%s", ls)
	}
	obj := func(s string) string { return filepath.Join(repo, "objects", s[:2], s[2:]+".filez") }
	// Corrupt one object's content, delete another.
	other := filepath.Join(dir, "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "a"), []byte("different\n"), 0o644)
	r2 := filepath.Join(dir, "r2")
	gostree(t, "--repo="+r2, "init", "--mode=archive")
	gostree(t, "--repo="+r2, "commit", "-b", "x", other)
	ls2 := gostree(t, "--repo="+r2, "ls", "-C", "x", "/a")
	swap := strings.Fields(ls2)[4]
	data, _ := os.ReadFile(filepath.Join(r2, "objects", swap[:2], swap[2:]+".filez"))
	os.Chmod(obj(sumA), 0o644)
	if err := os.WriteFile(obj(sumA), data, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(obj(sumB))

	var out, errb strings.Builder
	code := run(t.Context(), []string{"--repo=" + repo, "fsck"}, &out, &errb)
	if code == 0 {
		t.Fatalf("fsck succeeded on a corrupted repository:\n%s", out.String())
	}
	msg := errb.String()
	for _, want := range []string{sumA, sumB, "corrupt", "missing", "Marking commit as partial: " + c} {
		if !strings.Contains(strings.ToLower(msg), strings.ToLower(want)) {
			t.Errorf("fsck output lacks %q:\n%s", want, msg)
		}
	}
	if _, err := os.Stat(filepath.Join(repo, "state", c+".commitpartial")); err != nil {
		t.Errorf("commit not marked partial: %v", err)
	}
}

// A repository whose dirtree names "../afile" (ostree's
// ostree-path-traverse fixture, rebuilt here) is refused by checkout and
// reported by fsck, and nothing is written outside the destination.
func TestPathTraversalDirtree(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	gostree(t, "--repo="+repo, "init", "--mode=archive")
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "sub"), 0o755)
	os.WriteFile(filepath.Join(tree, "sub", "afile"), []byte("x\n"), 0o644)
	gostree(t, "--repo="+repo, "commit", "-b", "main", tree)
	r, err := ostree.Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.ResolveRev("main")
	cm, _ := r.LoadCommit(c)
	root, _ := r.LoadDirTree(cm.RootTree)
	sub, _ := r.LoadDirTree(root.Dirs[0].Tree)
	// The evil subtree: its file is named "../afile".
	evil := &ostree.DirTree{Files: []ostree.TreeFile{{Name: "../afile", Checksum: sub.Files[0].Checksum}}}
	evilBytes := evil.Encode()
	evilSum := ostree.SumBytes(evilBytes)
	writeObj := func(sum ostree.Checksum, ext string, b []byte) {
		p := filepath.Join(repo, "objects", sum.String()[:2], sum.String()[2:]+"."+ext)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeObj(evilSum, "dirtree", evilBytes)
	newRoot := &ostree.DirTree{Dirs: []ostree.TreeDir{{Name: "sub", Tree: evilSum, Meta: root.Dirs[0].Meta}}}
	rootBytes := newRoot.Encode()
	writeObj(ostree.SumBytes(rootBytes), "dirtree", rootBytes)
	ec := *cm
	ec.RootTree = ostree.SumBytes(rootBytes)
	ec.Parent = ostree.Checksum{}
	cb, err := ec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	writeObj(ostree.SumBytes(cb), "commit", cb)
	os.WriteFile(filepath.Join(repo, "refs", "heads", "evil"), []byte(ostree.SumBytes(cb).String()+"\n"), 0o644)

	dest := filepath.Join(dir, "dest", "co")
	msg := gostreeFails(t, "--repo="+repo, "checkout", "evil", dest)
	if !strings.Contains(msg, "../afile") || !strings.Contains(msg, evilSum.String()) {
		t.Errorf("checkout error does not name the bad name and object: %s", msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "dest", "afile")); err == nil {
		t.Fatal("checkout wrote outside its destination")
	}
	if _, err := os.Stat(dest); err == nil {
		t.Error("a failed checkout left its half-written destination behind")
	}
	var out, errb strings.Builder
	if code := run(t.Context(), []string{"--repo=" + repo, "fsck"}, &out, &errb); code == 0 {
		t.Fatal("fsck accepted a dirtree with ../afile")
	}
	if !strings.Contains(errb.String(), evilSum.String()) {
		t.Errorf("fsck does not name the dirtree: %s", errb.String())
	}
	if _, err := exec.LookPath("ostree"); err == nil {
		// The real ostree agrees that this repository is broken.
		if err := exec.Command("ostree", "--repo="+repo, "fsck").Run(); err == nil {
			t.Error("ostree fsck accepted the repository: the fixture is not what it should be")
		}
	}
}
