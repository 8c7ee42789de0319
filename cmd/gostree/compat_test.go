package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// requireOstree returns the path of the real ostree CLI. Without it the
// compatibility tests skip, except in CI where they must run.
func requireOstree(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ostree")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ostree is not installed; run `make deps`")
		}
		t.Skip("ostree is not installed; run `make deps`")
	}
	return p
}

// gostree runs the CLI in-process and returns its stdout.
func gostree(t testing.TB, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("gostree %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

// gostreeFails runs the CLI expecting failure and returns stderr.
func gostreeFails(t testing.TB, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code == 0 {
		t.Fatalf("gostree %s: succeeded, expected an error", strings.Join(args, " "))
	}
	return errb.String()
}

func ostreeCmd(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(requireOstree(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("ostree %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func xattrsSupported(dir string) bool {
	p := filepath.Join(dir, ".xattr-probe")
	os.WriteFile(p, nil, 0o644)
	defer os.Remove(p)
	return unix.Setxattr(p, "user.probe", []byte("1"), 0) == nil
}

// makeRichTree builds a tree exercising what OSTree records: modes incl.
// setuid/setgid/sticky, symlinks (relative, absolute, dangling), empty
// directories, hard links, xattrs, owners, non-ASCII names, small, empty
// and large files.
func makeRichTree(t testing.TB, dir string, owners bool) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	file := func(p string, mode os.FileMode, data []byte) {
		full := filepath.Join(dir, p)
		must(os.MkdirAll(filepath.Dir(full), 0o755))
		must(os.WriteFile(full, data, 0o600))
		must(os.Chmod(full, mode))
	}
	big := make([]byte, 5<<20+123)
	rand.Read(big)
	mid := bytes.Repeat([]byte("compressible text line\n"), 40000)
	file("usr/bin/tool", 0o755, []byte("#!/bin/sh\necho tool\n"))
	file("usr/bin/su", 0o4755|os.ModeSetuid, []byte("setuid binary"))
	must(os.Chmod(filepath.Join(dir, "usr/bin/su"), 0o755|os.ModeSetuid))
	file("usr/bin/wall", 0o755, []byte("setgid binary"))
	must(os.Chmod(filepath.Join(dir, "usr/bin/wall"), 0o755|os.ModeSetgid))
	file("usr/lib/big.bin", 0o644, big)
	file("usr/lib/mid.txt", 0o644, mid)
	file("usr/lib/empty", 0o644, nil)
	file("usr/share/doc/héllo wörld.txt", 0o644, []byte("unicode name\n"))
	file("usr/etc/shadow", 0o600, []byte("root:*:1::::::\n"))
	file("usr/etc/hosts", 0o644, []byte("127.0.0.1 localhost\n"))
	must(os.Link(filepath.Join(dir, "usr/etc/hosts"), filepath.Join(dir, "usr/etc/hosts.hardlink")))
	must(os.Symlink("../lib/mid.txt", filepath.Join(dir, "usr/bin/rel-link")))
	must(os.Symlink("/usr/lib/empty", filepath.Join(dir, "usr/bin/abs-link")))
	must(os.Symlink("does-not-exist", filepath.Join(dir, "usr/bin/dangling")))
	must(os.MkdirAll(filepath.Join(dir, "usr/share/empty-dir"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "tmp"), 0o755))
	must(os.Chmod(filepath.Join(dir, "tmp"), 0o777|os.ModeSticky))
	must(os.MkdirAll(filepath.Join(dir, "usr/private"), 0o700))
	must(os.Chmod(filepath.Join(dir, "usr/private"), 0o700))
	if xattrsSupported(dir) {
		must(unix.Lsetxattr(filepath.Join(dir, "usr/lib/mid.txt"), "user.b", []byte("2"), 0))
		must(unix.Lsetxattr(filepath.Join(dir, "usr/lib/mid.txt"), "user.a", []byte("1"), 0))
		must(unix.Lsetxattr(filepath.Join(dir, "usr/share"), "user.dir", []byte("d"), 0))
	}
	if owners {
		must(os.Lchown(filepath.Join(dir, "usr/etc/shadow"), 0, 42))
		must(os.Lchown(filepath.Join(dir, "usr/private"), 1000, 1000))
		must(os.Lchown(filepath.Join(dir, "usr/bin/dangling"), 1000, 1000))
	}
}

type entry struct {
	mode     uint32
	uid, gid uint32
	target   string
	content  string
	xattrs   string
}

// snapshotTree records what a checkout must reproduce; timestamps are not
// part of OSTree's model.
func snapshotTree(t testing.TB, dir string, owners, xattrs bool) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := entry{mode: st.Mode}
		if owners {
			e.uid, e.gid = st.Uid, st.Gid
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			e.target, _ = os.Readlink(p)
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.content = fmt.Sprintf("%x", b)
		}
		if xattrs && st.Mode&unix.S_IFMT != unix.S_IFLNK {
			sz, _ := unix.Llistxattr(p, make([]byte, 4096))
			buf := make([]byte, 4096)
			sz, _ = unix.Llistxattr(p, buf)
			var names []string
			for _, n := range strings.Split(string(buf[:max(sz, 0)]), "\x00") {
				if strings.HasPrefix(n, "user.") {
					v := make([]byte, 256)
					vn, _ := unix.Lgetxattr(p, n, v)
					names = append(names, n+"="+string(v[:max(vn, 0)]))
				}
			}
			sort.Strings(names)
			e.xattrs = strings.Join(names, ",")
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTrees(t testing.TB, want, got map[string]entry) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing from checkout", p)
			continue
		}
		if g != w {
			t.Errorf("%s: got %+v\nwant %+v", p, short(g), short(w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected in checkout", p)
		}
	}
}

func short(e entry) entry {
	if len(e.content) > 40 {
		e.content = e.content[:40] + "…"
	}
	return e
}

var allModes = []string{"archive", "bare", "bare-user", "bare-user-only"}

func isRoot() bool { return os.Geteuid() == 0 }

// TestCompatCommitChecksums: the same tree and metadata give the same
// commit checksum in gostree and ostree, in every mode; ostree fsck
// accepts gostree's repositories; and each tool checks out the other's
// commit to the input tree.
func TestCompatCommitChecksums(t *testing.T) {
	requireOstree(t)
	if !isRoot() {
		t.Skip("needs root (bare mode and ownership)")
	}
	work := t.TempDir()
	tree := filepath.Join(work, "tree")
	makeRichTree(t, tree, true)
	hasX := xattrsSupported(work)
	for _, mode := range allModes {
		t.Run(mode, func(t *testing.T) {
			gr, or := filepath.Join(work, "g-"+mode), filepath.Join(work, "o-"+mode)
			gostree(t, "--repo="+gr, "init", "--mode="+mode)
			ostreeCmd(t, "--repo="+or, "init", "--mode="+mode)
			args := []string{"commit", "-b", "main", "--timestamp=2021-03-04 05:06:07 +0000", "-s", "subject", "--body=body\nline 2",
				"--add-metadata-string=version=1.2.3", "--add-metadata-string=ostree.source-title=test"}
			gsum := strings.TrimSpace(gostree(t, append([]string{"--repo=" + gr}, append(args, tree)...)...))
			osum := strings.TrimSpace(ostreeCmd(t, append([]string{"--repo=" + or}, append(args, tree)...)...))
			if gsum != osum {
				t.Fatalf("commit checksum: gostree %s, ostree %s", gsum, osum)
			}
			owners := mode == "bare" || mode == "bare-user" || mode == "archive"
			xattrs := hasX && mode != "bare-user-only"
			want := snapshotTree(t, tree, owners, xattrs)
			if mode == "bare-user-only" {
				want = canonicalize(want)
			}
			// A second commit on top (parent from the branch).
			os.WriteFile(filepath.Join(tree, "usr/lib/new"), []byte("new\n"), 0o644)
			defer os.Remove(filepath.Join(tree, "usr/lib/new"))
			args2 := []string{"commit", "-b", "main", "--timestamp=2021-03-05 00:00:00 +0000", "-s", "second"}
			g2 := strings.TrimSpace(gostree(t, append([]string{"--repo=" + gr}, append(args2, tree)...)...))
			o2 := strings.TrimSpace(ostreeCmd(t, append([]string{"--repo=" + or}, append(args2, tree)...)...))
			if g2 != o2 {
				t.Fatalf("second commit: gostree %s, ostree %s", g2, o2)
			}
			ostreeCmd(t, "--repo="+gr, "fsck")
			gostree(t, "--repo="+or, "fsck")
			gostree(t, "--repo="+or, "summary", "-u")
			ostreeCmd(t, "--repo="+or, "summary", "--view")

			// Listings and logs agree on both repositories.
			for _, repo := range []string{gr, or} {
				for _, args := range [][]string{{"ls", "-R", "-C", "main"}, {"log", "main"}, {"show", "main^"},
					{"cat", "main", "/usr/etc/hosts"}, {"ls", "main", "/usr/bin"}, {"refs"}, {"rev-parse", "main"},
					{"show", "--print-metadata-key=version", "main^"}, {"show", "--print-metadata-key=ostree.ref-binding", "main"}} {
					want := ostreeCmd(t, append([]string{"--repo=" + repo}, args...)...)
					got := gostree(t, append([]string{"--repo=" + repo}, args...)...)
					if got != want {
						t.Errorf("%s on %s:\ngostree:\n%s\nostree:\n%s", strings.Join(args, " "), filepath.Base(repo), got, want)
					}
				}
			}

			// ostree checks out gostree's commit; gostree checks out ostree's.
			oco := filepath.Join(work, "oco-"+mode)
			ostreeCmd(t, "--repo="+gr, "checkout", gsum, oco)
			compareTrees(t, want, canonicalIf(mode, snapshotTree(t, oco, owners, xattrs)))
			gco := filepath.Join(work, "gco-"+mode)
			gostree(t, "--repo="+or, "checkout", osum, gco)
			compareTrees(t, want, canonicalIf(mode, snapshotTree(t, gco, owners, xattrs)))
			// And gostree's own round trip, with hard links where possible.
			gco2 := filepath.Join(work, "gco2-"+mode)
			gostree(t, "--repo="+gr, "checkout", gsum, gco2)
			compareTrees(t, want, canonicalIf(mode, snapshotTree(t, gco2, owners, xattrs)))
		})
	}
}

func canonicalIf(mode string, m map[string]entry) map[string]entry {
	if mode == "bare-user-only" {
		return canonicalize(m)
	}
	return m
}

// canonicalize maps a tree to what bare-user-only records: owner 0 and
// modes masked with 0755.
func canonicalize(m map[string]entry) map[string]entry {
	out := map[string]entry{}
	for p, e := range m {
		e.uid, e.gid, e.xattrs = 0, 0, ""
		if e.mode&unix.S_IFMT != unix.S_IFLNK {
			e.mode = e.mode&unix.S_IFMT | e.mode&0o755
		}
		out[p] = e
	}
	return out
}
