package etcmerge

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

func write(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// copyTree is a test helper: dst becomes a copy of src.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	st, err := os.Lstat(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := copyItem(src, dst, st, "", &Result{}); err != nil {
		t.Fatal(err)
	}
}

type fixture struct{ oldDef, cur, newDef, dest string }

func newFixture(t *testing.T) fixture {
	base := t.TempDir()
	f := fixture{filepath.Join(base, "old"), filepath.Join(base, "cur"), filepath.Join(base, "new"), filepath.Join(base, "dest")}
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	write(t, filepath.Join(f.oldDef, "a.conf"), "a1\n", 0o644)
	write(t, filepath.Join(f.oldDef, "b.conf"), "b1\n", 0o644)
	write(t, filepath.Join(f.oldDef, "c.conf"), "c1\n", 0o644)
	write(t, filepath.Join(f.oldDef, "sub/x.conf"), "x\n", 0o644)
	write(t, filepath.Join(f.oldDef, "same.conf"), "same\n", 0o644)
	os.Symlink("a.conf", filepath.Join(f.oldDef, "link"))
	copyTree(t, f.oldDef, f.cur)
	write(t, filepath.Join(f.newDef, "a.conf"), "a2\n", 0o644)
	write(t, filepath.Join(f.newDef, "b.conf"), "b2\n", 0o644)
	write(t, filepath.Join(f.newDef, "c.conf"), "c2\n", 0o644)
	write(t, filepath.Join(f.newDef, "d.conf"), "d2\n", 0o644)
	write(t, filepath.Join(f.newDef, "sub/x.conf"), "x\n", 0o644)
	os.Symlink("a.conf", filepath.Join(f.newDef, "link"))
	// Local changes.
	write(t, filepath.Join(f.cur, "a.conf"), "local\n", 0o644)
	os.Remove(filepath.Join(f.cur, "b.conf"))
	os.Chmod(filepath.Join(f.cur, "c.conf"), 0o600)
	os.Chmod(filepath.Join(f.cur, "sub"), 0o700)
	write(t, filepath.Join(f.cur, "added/deep/y"), "y\n", 0o640)
	os.Remove(filepath.Join(f.cur, "link"))
	os.Symlink("nowhere", filepath.Join(f.cur, "link"))
	return f
}

func sorted(l []string) string {
	l = append([]string(nil), l...)
	sort.Strings(l)
	return strings.Join(l, ",")
}

func TestDiffDirs(t *testing.T) {
	f := newFixture(t)
	d, err := DiffDirs(f.oldDef, f.cur)
	if err != nil {
		t.Fatal(err)
	}
	if got := sorted(d.Modified); got != "a.conf,c.conf,link,sub" {
		t.Errorf("modified: %s", got)
	}
	if got := sorted(d.Removed); got != "b.conf" {
		t.Errorf("removed: %s", got)
	}
	if got := strings.Join(d.Added, ","); got != "added,added/deep,added/deep/y" {
		t.Errorf("added (a directory is followed by its contents): %s", got)
	}
	lines := d.Lines()
	if len(lines) != 8 || !strings.HasPrefix(lines[4], "D    b.conf") || lines[5] != "A    added" {
		t.Errorf("lines: %q", lines)
	}
}

func readEntry(t *testing.T, p string) string {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		return "absent"
	}
	if st.Mode()&os.ModeSymlink != 0 {
		tgt, _ := os.Readlink(p)
		return "-> " + tgt
	}
	if st.IsDir() {
		return "dir " + st.Mode().Perm().String()
	}
	b, _ := os.ReadFile(p)
	return st.Mode().Perm().String() + " " + strings.TrimSpace(string(b))
}

func TestMerge(t *testing.T) {
	for _, compat := range []bool{true, false} {
		f := newFixture(t)
		res, err := Merge(f.oldDef, f.cur, f.newDef, f.dest, Options{OstreeCompat: compat})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"a.conf":       "-rw-r--r-- local",
			"b.conf":       "absent",
			"d.conf":       "-rw-r--r-- d2",
			"same.conf":    "absent", // removed from the new defaults, untouched locally
			"link":         "-> nowhere",
			"added/deep/y": "-rw-r----- y",
			"sub/x.conf":   "-rw-r--r-- x",
			"c.conf":       "-rw------- c2",
			"sub":          "dir -rwx------",
			"added":        "dir -rwxr-xr-x",
			"added/deep":   "dir -rwxr-xr-x",
		}
		if compat {
			want["c.conf"] = "-rw------- c1" // ostree: a mode-only change pins the old file
			want["sub"] = "dir -rwxr-xr-x"   // ostree: directory mode change lost
		}
		for p, w := range want {
			if got := readEntry(t, filepath.Join(f.dest, p)); got != w {
				t.Errorf("compat=%v: %s = %q, want %q", compat, p, got, w)
			}
		}
		var kinds []string
		for _, n := range res.Notes {
			kinds = append(kinds, n.Path+":"+string(n.Kind))
		}
		wantNotes := "c.conf:kept-file-mode,sub:kept-dir-mode"
		if compat {
			wantNotes = ""
		}
		if sorted(kinds) != wantNotes {
			t.Errorf("compat=%v: notes %v", compat, kinds)
		}
	}
}

func TestMergeNewlyDirectory(t *testing.T) {
	f := newFixture(t)
	os.Remove(filepath.Join(f.newDef, "a.conf"))
	write(t, filepath.Join(f.newDef, "a.conf/inner"), "now a dir\n", 0o644)
	_, err := Merge(f.oldDef, f.cur, f.newDef, f.dest, Options{})
	if !errors.Is(err, ErrNewlyDirectory) || !strings.Contains(err.Error(), "'a.conf'") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Lstat(f.dest); err == nil {
		t.Error("destination left behind after an error")
	}
}

func TestMergeSkipsSpecialFiles(t *testing.T) {
	f := newFixture(t)
	if err := syscall.Mkfifo(filepath.Join(f.cur, "fifo"), 0o644); err != nil {
		t.Skip("cannot make a fifo:", err)
	}
	res, err := Merge(f.oldDef, f.cur, f.newDef, f.dest, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(f.dest, "fifo")); err == nil {
		t.Error("fifo copied")
	}
	found := false
	for _, n := range res.Notes {
		found = found || (n.Path == "fifo" && n.Kind == SkippedSpecial)
	}
	if !found {
		t.Errorf("no note for the fifo: %v", res.Notes)
	}
}

func TestMergePlainCopy(t *testing.T) {
	f := newFixture(t)
	res, err := Merge("", "", f.newDef, f.dest, Options{})
	if err != nil || res.Diff != nil {
		t.Fatal(res, err)
	}
	if got := readEntry(t, filepath.Join(f.dest, "a.conf")); got != "-rw-r--r-- a2" {
		t.Errorf("a.conf = %s", got)
	}
	if _, err := Merge("", "", f.newDef, f.dest, Options{}); err == nil {
		t.Error("merging into an existing destination succeeded")
	}
}
