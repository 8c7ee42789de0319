package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// etcTree builds a tree whose usr/etc exercises the merge corner cases.
// v2 changes the defaults under the local edits of etcEdits.
func etcTree(t *testing.T, dir string, v int) {
	t.Helper()
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	writeFile(t, filepath.Join(dir, "usr/lib/modules/6.1.0-x/vmlinuz"), "K\n", 0o644)
	writeFile(t, filepath.Join(dir, "usr/lib/modules/6.1.0-x/initramfs.img"), "I\n", 0o644)
	writeFile(t, filepath.Join(dir, "usr/lib/os-release"), "ID=etctest\n", 0o644)
	etc := filepath.Join(dir, "usr/etc")
	w := func(rel, content string) { writeFile(t, filepath.Join(etc, rel), content, 0o644) }
	for i := 0; i < 60; i++ {
		w(fmt.Sprintf("many/f%02d.conf", i), fmt.Sprintf("f%d v%d\n", i, v))
	}
	w("modified.conf", fmt.Sprintf("default v%d\n", v))
	w("modeonly.conf", fmt.Sprintf("modeonly v%d\n", v))
	w("owneronly.conf", fmt.Sprintf("owneronly v%d\n", v))
	w("deleted.conf", fmt.Sprintf("deleted v%d\n", v))
	w("tolink.conf", "becomes a symlink\n")
	w("todir.conf", "becomes a directory\n")
	w("permdir/inner.conf", "inner\n")
	w("removeddir/inner.conf", "removed locally\n")
	os.Symlink("modified.conf", filepath.Join(etc, "link"))
	if v == 1 {
		w("gone-in-v2/keep.conf", "parent removed from v2 defaults\n")
		w("willbedir.conf", "file in v1, directory in v2 (untouched locally)\n")
	} else {
		w("emptydir-new/.keep", "")
		os.Remove(filepath.Join(etc, "emptydir-new/.keep"))
		w("willbedir.conf/now-a-dir.conf", "dir in v2\n")
		w("new-in-v2.conf", "new\n")
	}
}

// etcEdits makes the local changes in a deployed /etc.
func etcEdits(t *testing.T, etc string) {
	t.Helper()
	w := func(rel, content string, mode os.FileMode) { writeFile(t, filepath.Join(etc, rel), content, mode) }
	w("modified.conf", "local\n", 0o644)
	must(t, os.Chmod(filepath.Join(etc, "modeonly.conf"), 0o600))
	must(t, os.Chown(filepath.Join(etc, "owneronly.conf"), 1000, 1000))
	must(t, os.Remove(filepath.Join(etc, "deleted.conf")))
	must(t, os.Remove(filepath.Join(etc, "tolink.conf")))
	must(t, os.Symlink("/nonexistent/target", filepath.Join(etc, "tolink.conf")))
	must(t, os.Remove(filepath.Join(etc, "todir.conf")))
	w("todir.conf/x", "x\n", 0o644)
	must(t, os.Chmod(filepath.Join(etc, "permdir"), 0o700))
	must(t, os.RemoveAll(filepath.Join(etc, "removeddir")))
	must(t, os.Remove(filepath.Join(etc, "link")))
	must(t, os.Symlink("other.conf", filepath.Join(etc, "link")))
	for _, m := range []struct {
		p    string
		mode os.FileMode
	}{{"chain", 0o700}, {"chain/b", 0o770}, {"chain/b/c", 0o777}, {"chain/b/c/d", 0o707}} {
		must(t, os.Mkdir(filepath.Join(etc, m.p), 0o755))
		must(t, os.Chmod(filepath.Join(etc, m.p), m.mode))
	}
	w("chain/b/c/d/file", "deep\n", 0o640)
	must(t, os.Mkdir(filepath.Join(etc, "newdir"), 0o750))
	w("newdir/deep/z", "z\n", 0o644)
	must(t, os.Symlink("../nowhere", filepath.Join(etc, "dangling")))
	w("gone-in-v2/local-added.conf", "local file whose parent v2 drops\n", 0o644)
	for _, i := range []int{3, 41, 17, 58, 0} {
		w(fmt.Sprintf("many/f%02d.conf", i), "local edit\n", 0o644)
	}
	if err := syscall.Mkfifo(filepath.Join(etc, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fullEtc lists a tree with type, mode, owner and content.
func fullEtc(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st, _ := os.Lstat(p)
		sys := st.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%o %d:%d", sys.Mode, sys.Uid, sys.Gid)
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			tgt, _ := os.Readlink(p)
			desc += " -> " + tgt
		case st.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			desc += " " + string(b)
		}
		out[rel] = desc
		return nil
	})
	return out
}

func diffMaps(a, b map[string]string) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if a[k] != b[k] {
			out = append(out, fmt.Sprintf("%s: ostree %q, gostree %q", k, a[k], b[k]))
		}
	}
	sort.Strings(out)
	return out
}

func setupEtcSysroot(t *testing.T, tool string, trees [3]string) (string, string) {
	sr := filepath.Join(t.TempDir(), "sysroot")
	must(t, os.Mkdir(sr, 0o755))
	admin(t, tool, sr, "init-fs")
	admin(t, tool, sr, "os-init", "etctest")
	ostreeCmd(t, "--repo="+sr+"/ostree/repo", "commit", "-b", "etc", "--owner-uid=0", "--owner-gid=0", "--timestamp=2020-01-01 00:00:00 +0000", trees[1])
	admin(t, tool, sr, "deploy", "--os=etctest", "etc")
	dirs, _ := filepath.Glob(filepath.Join(sr, "ostree/deploy/etctest/deploy/*.0"))
	if len(dirs) != 1 {
		t.Fatalf("deployments: %v", dirs)
	}
	etcEdits(t, filepath.Join(dirs[0], "etc"))
	ostreeCmd(t, "--repo="+sr+"/ostree/repo", "commit", "-b", "etc", "--owner-uid=0", "--owner-gid=0", "--timestamp=2020-01-02 00:00:00 +0000", trees[2])
	return sr, dirs[0]
}

// TestAdminEtcMergeCornerCases compares gostree's /etc merge and
// config-diff with ostree's on the corner cases of ostree's
// test-admin-deploy-etcmerge-cornercases.sh and more. In compat mode the
// result is identical; by default only the two chosen cases differ.
func TestAdminEtcMergeCornerCases(t *testing.T) {
	requireSysrootTests(t)
	base := t.TempDir()
	var trees [3]string
	for v := 1; v <= 2; v++ {
		trees[v] = filepath.Join(base, fmt.Sprintf("v%d", v))
		etcTree(t, trees[v], v)
	}
	osr, odep := setupEtcSysroot(t, "ostree", trees)
	// config-diff: both tools on the same (ostree-made) sysroot.
	want := admin(t, "ostree", osr, "config-diff", "--os=etctest")
	got := admin(t, "gostree", osr, "config-diff", "--os=etctest")
	if want != got {
		t.Fatalf("config-diff differs:\nostree:\n%s\ngostree:\n%s", want, got)
	}
	for _, l := range []string{"M    modeonly.conf", "M    permdir", "D    removeddir", "A    chain/b/c/d/file", "A    fifo", "M    many/f41.conf"} {
		if !strings.Contains(got, l+"\n") {
			t.Errorf("config-diff lacks %q:\n%s", l, got)
		}
	}
	admin(t, "ostree", osr, "deploy", "--os=etctest", "etc")
	wantEtc := fullEtc(t, filepath.Join(newestDeployment(t, osr, odep), "etc"))
	if _, ok := wantEtc["fifo"]; ok {
		t.Fatal("ostree copied the fifo")
	}
	for _, mode := range []string{"compat", "default"} {
		t.Run(mode, func(t *testing.T) {
			gsr, gdep := setupEtcSysroot(t, "gostree", trees)
			// Same sysroot: identical output, order included (readdir
			// order depends on the filesystem's inode allocation, so
			// across sysroots only the sets can be compared).
			d := admin(t, "gostree", gsr, "config-diff", "--os=etctest")
			if o := admin(t, "ostree", gsr, "config-diff", "--os=etctest"); d != o {
				t.Errorf("config-diff on gostree's sysroot differs:\nostree:\n%s\ngostree:\n%s", o, d)
			}
			if sortedLines(d) != sortedLines(want) {
				t.Errorf("config-diff sets differ:\nostree:\n%s\ngostree:\n%s", want, d)
			}
			args := []string{"deploy", "--os=etctest", "etc"}
			if mode == "compat" {
				args = append(args, "--etc-ostree-compat")
			}
			out := admin(t, "gostree", gsr, args...)
			gotEtc := fullEtc(t, filepath.Join(newestDeployment(t, gsr, gdep), "etc"))
			diffs := diffMaps(wantEtc, gotEtc)
			if mode == "compat" {
				if len(diffs) > 0 {
					t.Errorf("merged /etc differs from ostree's:\n%s", strings.Join(diffs, "\n"))
				}
				return
			}
			wantDiffs := []string{
				`modeonly.conf: ostree "100600 0:0 modeonly v1\n", gostree "100600 0:0 modeonly v2\n"`,
				`owneronly.conf: ostree "100644 1000:1000 owneronly v1\n", gostree "100644 1000:1000 owneronly v2\n"`,
				`permdir: ostree "40755 0:0", gostree "40700 0:0"`,
			}
			if strings.Join(diffs, "\n") != strings.Join(wantDiffs, "\n") {
				t.Errorf("differences from ostree:\n%s\nwant exactly:\n%s", strings.Join(diffs, "\n"), strings.Join(wantDiffs, "\n"))
			}
			for _, n := range []string{"note: /etc/modeonly.conf:", "note: /etc/owneronly.conf:", "note: /etc/permdir:", "note: /etc/fifo: not copied: fifo"} {
				if !strings.Contains(out, n) {
					t.Errorf("deploy output lacks %q:\n%s", n, out)
				}
			}
		})
	}
}

func newestDeployment(t *testing.T, sr, old string) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(sr, "ostree/deploy/*/deploy/*"))
	for _, d := range dirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() && d != old {
			return d
		}
	}
	t.Fatalf("no new deployment in %v", dirs)
	return ""
}

// TestAdminEtcNewlyDirectory: a locally modified file whose new default is
// a directory makes both tools refuse the deploy, leaving the current
// default deployment untouched.
func TestAdminEtcNewlyDirectory(t *testing.T) {
	requireSysrootTests(t)
	base := t.TempDir()
	var trees [3]string
	for v := 1; v <= 2; v++ {
		trees[v] = filepath.Join(base, fmt.Sprintf("v%d", v))
		etcTree(t, trees[v], v)
	}
	for _, tool := range []string{"ostree", "gostree"} {
		t.Run(tool, func(t *testing.T) {
			sr, dep := setupEtcSysroot(t, tool, trees)
			writeFile(t, filepath.Join(dep, "etc/willbedir.conf"), "locally modified\n", 0o644)
			before := snapshot(t, sr)
			var msg string
			if tool == "ostree" {
				msg = ostreeFails(t, "admin", "deploy", "--sysroot="+sr, "--os=etctest", "etc")
			} else {
				msg = gostreeFails(t, "admin", "deploy", "--sysroot="+sr, "--os=etctest", "etc")
			}
			if !strings.Contains(strings.ToLower(msg), "modified config file newly defaults to directory") {
				t.Errorf("error = %q", msg)
			}
			after := snapshot(t, sr)
			if tool == "gostree" {
				compareStates(t, "after the failed deploy", before, after)
			}
			if got := defaultDeployment(t, sr); got != dep {
				t.Errorf("default deployment changed to %s", got)
			}
		})
	}
}

func sortedLines(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}
