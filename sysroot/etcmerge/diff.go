package etcmerge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"
)

// Diff is the set of local changes of a configuration tree against its
// defaults. Paths are relative to the tree root, '/'-separated. Modified
// and Removed follow the readdir order of the defaults, Added that of the
// current tree; an added directory is followed by everything below it.
type Diff struct {
	Modified []string
	Removed  []string
	Added    []string
}

// Lines renders the diff as `ostree admin config-diff` prints it: all
// modified (M), then removed (D), then added (A), each as the letter, four
// spaces and the path.
func (d *Diff) Lines() []string {
	var out []string
	for _, p := range d.Modified {
		out = append(out, "M    "+p)
	}
	for _, p := range d.Removed {
		out = append(out, "D    "+p)
	}
	for _, p := range d.Added {
		out = append(out, "A    "+p)
	}
	return out
}

// Empty reports whether there are no local changes.
func (d *Diff) Empty() bool { return len(d.Modified)+len(d.Removed)+len(d.Added) == 0 }

// DiffDirs compares the defaults tree a with the current tree b as ostree
// does: an entry present in both is modified when its type differs or, for
// the same type, when its ostree checksum ignoring xattrs differs (owner,
// mode, symlink target, content; for directories owner and mode).
// Directories present in both are compared recursively. The roots
// themselves are not compared.
func DiffDirs(a, b string) (*Diff, error) {
	d := &Diff{}
	for _, root := range []string{a, b} {
		st, err := os.Lstat(root)
		if err != nil {
			return nil, fmt.Errorf("diffing configuration: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("diffing configuration: %s is not a directory", root)
		}
	}
	if err := diffRecurse(a, b, "", d); err != nil {
		return nil, err
	}
	return d, nil
}

func join(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

func diffRecurse(a, b, rel string, d *Diff) error {
	da, db := filepath.Join(a, rel), filepath.Join(b, rel)
	names, err := readNames(da)
	if err != nil {
		return err
	}
	for _, name := range names {
		p := join(rel, name)
		sa, err := os.Lstat(filepath.Join(a, p))
		if err != nil {
			return fmt.Errorf("diffing configuration: %w", err)
		}
		sb, err := os.Lstat(filepath.Join(b, p))
		if errors.Is(err, fs.ErrNotExist) {
			d.Removed = append(d.Removed, p)
			continue
		}
		if err != nil {
			return fmt.Errorf("diffing configuration: %w", err)
		}
		if sa.Mode().Type() != sb.Mode().Type() {
			d.Modified = append(d.Modified, p)
			continue
		}
		same, err := sameItem(filepath.Join(a, p), filepath.Join(b, p), sa, sb)
		if err != nil {
			return err
		}
		if !same {
			d.Modified = append(d.Modified, p)
		}
		if sa.IsDir() {
			if err := diffRecurse(a, b, p, d); err != nil {
				return err
			}
		}
	}
	names, err = readNames(db)
	if err != nil {
		return err
	}
	for _, name := range names {
		p := join(rel, name)
		if _, err := os.Lstat(filepath.Join(a, p)); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("diffing configuration: %w", err)
		}
		d.Added = append(d.Added, p)
		st, err := os.Lstat(filepath.Join(b, p))
		if err != nil {
			return fmt.Errorf("diffing configuration: %w", err)
		}
		if st.IsDir() {
			if err := addRecurse(b, p, d); err != nil {
				return err
			}
		}
	}
	return nil
}

func addRecurse(b, rel string, d *Diff) error {
	names, err := readNames(filepath.Join(b, rel))
	if err != nil {
		return err
	}
	for _, name := range names {
		p := join(rel, name)
		d.Added = append(d.Added, p)
		st, err := os.Lstat(filepath.Join(b, p))
		if err != nil {
			return fmt.Errorf("diffing configuration: %w", err)
		}
		if st.IsDir() {
			if err := addRecurse(b, p, d); err != nil {
				return err
			}
		}
	}
	return nil
}

// readNames lists a directory the way GLib's local file enumerator hands
// entries to ostree: read in chunks of 1000 and each chunk sorted by inode
// number.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	defer f.Close()
	type ent struct {
		name string
		ino  uint64
	}
	var out []string
	buf := make([]byte, 64<<10)
	var chunk []ent
	flush := func() {
		sort.SliceStable(chunk, func(i, j int) bool { return chunk[i].ino < chunk[j].ino })
		for _, e := range chunk {
			out = append(out, e.name)
		}
		chunk = chunk[:0]
	}
	for {
		n, err := unix.Getdents(int(f.Fd()), buf)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", dir, err)
		}
		if n <= 0 {
			break
		}
		b := buf[:n]
		for len(b) > 0 {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name
			ino := binary.NativeEndian.Uint64(b[0:8])
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			b = b[reclen:]
			if s := string(name); s != "." && s != ".." {
				chunk = append(chunk, ent{s, ino})
				if len(chunk) == 1000 {
					flush()
				}
			}
		}
	}
	flush()
	return out, nil
}

// sameItem compares two entries of the same type as ostree's checksums
// without xattrs would.
func sameItem(pa, pb string, sa, sb os.FileInfo) (bool, error) {
	ua, ub := sa.Sys().(*syscall.Stat_t), sb.Sys().(*syscall.Stat_t)
	if ua.Uid != ub.Uid || ua.Gid != ub.Gid {
		return false, nil
	}
	switch {
	case sa.Mode()&fs.ModeSymlink != 0:
		ta, err := os.Readlink(pa)
		if err != nil {
			return false, fmt.Errorf("diffing configuration: %w", err)
		}
		tb, err := os.Readlink(pb)
		if err != nil {
			return false, fmt.Errorf("diffing configuration: %w", err)
		}
		return ta == tb, nil
	case sa.IsDir():
		return ua.Mode == ub.Mode, nil
	case sa.Mode().IsRegular():
		if ua.Mode != ub.Mode || ua.Size != ub.Size {
			return false, nil
		}
		if ua.Dev == ub.Dev && ua.Ino == ub.Ino {
			return true, nil
		}
		return sameContent(pa, pb)
	default:
		// Devices, fifos, sockets: ostree cannot checksum them; compare
		// what identifies them.
		return ua.Mode == ub.Mode && ua.Rdev == ub.Rdev, nil
	}
}

func sameContent(pa, pb string) (bool, error) {
	fa, err := os.Open(pa)
	if err != nil {
		return false, fmt.Errorf("diffing configuration: %w", err)
	}
	defer fa.Close()
	fb, err := os.Open(pb)
	if err != nil {
		return false, fmt.Errorf("diffing configuration: %w", err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 32<<10), make([]byte, 32<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, fmt.Errorf("diffing configuration: %w", ea)
		}
		if eb != nil {
			return false, fmt.Errorf("diffing configuration: %w", eb)
		}
	}
}
