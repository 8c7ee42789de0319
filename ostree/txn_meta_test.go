package ostree

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Bare objects get the owner, mode and zero mtime of their file whether
// the transaction sets them with fchown/fchmod or creates the object with
// them already (skipping calls that would change nothing), under any umask.
func TestBareObjectOwnerAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bare repositories with other owners need root")
	}
	modes := []uint32{0o644, 0o755, 0o777, 0o600, 0o664, 0o4755, 0o2711, 0o1755, 0o000}
	owners := [][2]uint32{{0, 0}, {1000, 1001}, {0, 1002}}
	for _, umask := range []int{0o022, 0o077, 0o000} {
		t.Run(fmt.Sprintf("umask%03o", umask), func(t *testing.T) {
			old := syscall.Umask(umask)
			defer syscall.Umask(old)
			src := t.TempDir()
			want := map[string][3]uint32{}
			for _, m := range modes {
				for _, o := range owners {
					name := fmt.Sprintf("f%04o-%d-%d", m, o[0], o[1])
					p := filepath.Join(src, name)
					// Distinct content per file, so each is its own object.
					if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
						t.Fatal(err)
					}
					if err := os.Chown(p, int(o[0]), int(o[1])); err != nil {
						t.Fatal(err)
					}
					if err := unix.Chmod(p, m); err != nil {
						t.Fatal(err)
					}
					want[name] = [3]uint32{m, o[0], o[1]}
				}
			}
			r, err := Init(filepath.Join(t.TempDir(), "repo"), ModeBare, InitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tx, err := r.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Abort()
			mt := NewMutableTree(DirMeta{})
			if err := mt.Import(src, DefaultImportOptions()); err != nil {
				t.Fatal(err)
			}
			tree, _, err := tx.WriteTree(t.Context(), mt, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			dt, err := r.LoadDirTree(tree)
			if err != nil {
				t.Fatal(err)
			}
			if len(dt.Files) != len(want) {
				t.Fatalf("%d files in the tree, want %d", len(dt.Files), len(want))
			}
			for _, f := range dt.Files {
				var st unix.Stat_t
				if err := unix.Lstat(r.objectPath(ObjectName{f.Checksum, ObjFile}), &st); err != nil {
					t.Fatal(err)
				}
				w := want[f.Name]
				if st.Mode&0o7777 != w[0] || st.Uid != w[1] || st.Gid != w[2] || st.Mtim.Sec != 0 || st.Mtim.Nsec != 0 {
					t.Errorf("%s: object has mode %04o owner %d:%d mtime %d.%09d, want %04o %d:%d mtime 0",
						f.Name, st.Mode&0o7777, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec, w[0], w[1], w[2])
				}
			}
		})
	}
}
