package etcmerge

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Options controls Merge.
type Options struct {
	// OstreeCompat reproduces ostree 2022.7 exactly, including the two
	// cases where it silently drops a change (see the package doc).
	OstreeCompat bool
}

// NoteKind classifies a Note.
type NoteKind string

// Note kinds.
const (
	// KeptFileMode: a mode/owner-only local change was applied to the
	// new default content (ostree would have kept the old content).
	KeptFileMode NoteKind = "kept-file-mode"
	// KeptDirMode: a local directory mode/owner change was kept (ostree
	// would have reset it to the new default).
	KeptDirMode NoteKind = "kept-dir-mode"
	// SkippedSpecial: a fifo, socket or device node was not copied, as
	// in ostree.
	SkippedSpecial NoteKind = "skipped-special"
)

// Note reports something the merge did that the user should know about.
type Note struct {
	Path    string
	Kind    NoteKind
	Message string
}

func (n Note) String() string { return n.Path + ": " + n.Message }

// Result is what Merge did.
type Result struct {
	// Diff holds the local changes that were replayed (nil when there
	// was nothing to merge from).
	Diff  *Diff
	Notes []Note
}

// ErrNewlyDirectory is wrapped by the error returned when a locally
// modified non-directory is a directory in the new defaults.
var ErrNewlyDirectory = errors.New("modified config file newly defaults to directory")

// Merge builds dest (which must not exist) as a copy of newDefaults with
// the local changes of current against oldDefaults replayed onto it. When
// oldDefaults or current is "", dest is a plain copy of newDefaults. On
// error dest is removed.
func Merge(oldDefaults, current, newDefaults, dest string, o Options) (res *Result, err error) {
	if _, err := os.Lstat(dest); err == nil {
		return nil, fmt.Errorf("merging configuration: %s already exists", dest)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dest)
		}
	}()
	st, err := os.Lstat(newDefaults)
	if err != nil {
		return nil, fmt.Errorf("merging configuration: new defaults: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("merging configuration: new defaults %s is not a directory", newDefaults)
	}
	res = &Result{}
	if err := copyItem(newDefaults, dest, st, "", res); err != nil {
		return nil, err
	}
	if oldDefaults == "" || current == "" {
		return res, nil
	}
	d, err := DiffDirs(oldDefaults, current)
	if err != nil {
		return nil, err
	}
	res.Diff = d
	if err := Apply(d, oldDefaults, current, dest, o, res); err != nil {
		return nil, err
	}
	return res, nil
}

// Apply replays the diff d (of current against oldDefaults) onto dest, a
// copy of the new defaults, recording notes in res.
func Apply(d *Diff, oldDefaults, current, dest string, o Options, res *Result) error {
	for _, p := range d.Removed {
		if err := checkParents(dest, p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return err
		}
		if err := os.RemoveAll(filepath.Join(dest, p)); err != nil {
			return fmt.Errorf("merging configuration: removing %s: %w", p, err)
		}
	}
	for i, p := range append(append([]string(nil), d.Modified...), d.Added...) {
		modified := i < len(d.Modified)
		if err := applyOne(oldDefaults, current, dest, p, modified, o, res); err != nil {
			return err
		}
	}
	return nil
}

func applyOne(oldDefaults, current, dest, p string, modified bool, o Options, res *Result) error {
	src := filepath.Join(current, p)
	sl, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("merging configuration: %w", err)
	}
	if err := ensureParents(dest, current, p); err != nil {
		return err
	}
	dst := filepath.Join(dest, p)
	dl, err := os.Lstat(dst)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("merging configuration: %w", err)
	}
	exists := err == nil
	if exists && dl.IsDir() {
		if !sl.IsDir() {
			return fmt.Errorf("%w '%s', cannot merge", ErrNewlyDirectory, p)
		}
		if modified && !o.OstreeCompat {
			ss, ds := sl.Sys().(*syscall.Stat_t), dl.Sys().(*syscall.Stat_t)
			if ss.Uid != ds.Uid || ss.Gid != ds.Gid || ss.Mode != ds.Mode {
				if err := setOwnerMode(dst, ss); err != nil {
					return err
				}
				res.Notes = append(res.Notes, Note{p, KeptDirMode, fmt.Sprintf(
					"kept the local directory mode %04o (owner %d:%d); ostree would reset it to the default", ss.Mode&0o7777, ss.Uid, ss.Gid)})
			}
		}
		return nil
	}
	if modified && !o.OstreeCompat && exists && sl.Mode().IsRegular() && dl.Mode().IsRegular() {
		old := filepath.Join(oldDefaults, p)
		if ol, err := os.Lstat(old); err == nil && ol.Mode().IsRegular() && ol.Size() == sl.Size() {
			same, err := sameContent(old, src)
			if err != nil {
				return err
			}
			if same {
				// Only mode/owner changed locally: keep the new default
				// content with the local mode and owner.
				ss := sl.Sys().(*syscall.Stat_t)
				if err := setOwnerMode(dst, ss); err != nil {
					return err
				}
				res.Notes = append(res.Notes, Note{p, KeptFileMode, fmt.Sprintf(
					"only its mode/owner was changed locally: new default content kept with the local mode %04o (owner %d:%d); ostree would keep the old content", ss.Mode&0o7777, ss.Uid, ss.Gid)})
				return nil
			}
		}
	}
	if exists {
		if err := os.RemoveAll(dst); err != nil {
			return fmt.Errorf("merging configuration: replacing %s: %w", p, err)
		}
	}
	return copyItem(src, dst, sl, p, res)
}

func setOwnerMode(p string, st *syscall.Stat_t) error {
	if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("merging configuration: %w", err)
	}
	if err := unix.Chmod(p, st.Mode&0o7777); err != nil {
		return fmt.Errorf("merging configuration: %w", err)
	}
	return nil
}

// checkParents verifies the parents of rel inside root are real
// directories (never symlinks), so nothing is written outside root.
func checkParents(root, rel string) error {
	parts := strings.Split(rel, "/")
	cur := root
	for _, c := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, c)
		st, err := os.Lstat(cur)
		if err != nil {
			return fmt.Errorf("merging configuration: %w", err)
		}
		if !st.IsDir() {
			return fmt.Errorf("merging configuration: %s: a parent is not a directory in the new configuration", rel)
		}
	}
	return nil
}

// ensureParents creates the missing parents of rel in dest with the mode,
// owner and xattrs of the same directories in the template tree.
func ensureParents(dest, template, rel string) error {
	parts := strings.Split(rel, "/")
	cur, tcur := dest, template
	for _, c := range parts[:len(parts)-1] {
		cur, tcur = filepath.Join(cur, c), filepath.Join(tcur, c)
		st, err := os.Lstat(cur)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("merging configuration: %s: parent %s is not a directory in the new configuration", rel, strings.TrimPrefix(cur, dest+"/"))
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("merging configuration: %w", err)
		}
		ts, err := os.Lstat(tcur)
		if err != nil {
			return fmt.Errorf("merging configuration: %w", err)
		}
		if err := os.Mkdir(cur, 0o700); err != nil {
			return fmt.Errorf("merging configuration: %w", err)
		}
		if err := copyMeta(tcur, cur, ts); err != nil {
			return err
		}
	}
	return nil
}

// copyItem copies src to dst (which must not exist): directories
// recursively, regular files and symlinks with owner, mode, xattrs and
// times. Other file types are skipped with a note.
func copyItem(src, dst string, st os.FileInfo, rel string, res *Result) error {
	switch {
	case st.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil {
			return fmt.Errorf("merging configuration: %w", err)
		}
		names, err := readNames(src)
		if err != nil {
			return err
		}
		for _, n := range names {
			cs, err := os.Lstat(filepath.Join(src, n))
			if err != nil {
				return fmt.Errorf("merging configuration: %w", err)
			}
			if err := copyItem(filepath.Join(src, n), filepath.Join(dst, n), cs, join(rel, n), res); err != nil {
				return err
			}
		}
		return copyMeta(src, dst, st)
	case st.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return fmt.Errorf("merging configuration: %w", err)
		}
		if err := os.Symlink(target, dst); err != nil {
			return fmt.Errorf("merging configuration: %w", err)
		}
		return copyMeta(src, dst, st)
	case st.Mode().IsRegular():
		in, err := os.Open(src)
		if err != nil {
			return fmt.Errorf("merging configuration: %w", err)
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("merging configuration: %w", err)
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return fmt.Errorf("merging configuration: copying %s: %w", rel, err)
		}
		if err := out.Close(); err != nil {
			return fmt.Errorf("merging configuration: copying %s: %w", rel, err)
		}
		return copyMeta(src, dst, st)
	default:
		res.Notes = append(res.Notes, Note{rel, SkippedSpecial, fmt.Sprintf("not copied: %s (only regular files, symlinks and directories are merged)", typeName(st.Mode()))})
		return nil
	}
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device node"
	}
	return "special file"
}

// copyMeta applies src's owner, mode, xattrs and times to dst (not
// following symlinks).
func copyMeta(src, dst string, st os.FileInfo) error {
	s := st.Sys().(*syscall.Stat_t)
	if err := os.Lchown(dst, int(s.Uid), int(s.Gid)); err != nil {
		return fmt.Errorf("merging configuration: %w", err)
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	if st.Mode()&fs.ModeSymlink == 0 {
		if err := unix.Chmod(dst, s.Mode&0o7777); err != nil {
			return fmt.Errorf("merging configuration: %w", err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(s.Atim.Nano()), unix.NsecToTimespec(s.Mtim.Nano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("merging configuration: %w", err)
	}
	return nil
}

func copyXattrs(src, dst string) error {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(src, buf)
	if errors.Is(err, unix.ERANGE) {
		sz, err2 := unix.Llistxattr(src, nil)
		if err2 != nil {
			return fmt.Errorf("merging configuration: listing xattrs of %s: %w", src, err2)
		}
		buf = make([]byte, sz)
		n, err = unix.Llistxattr(src, buf)
	}
	if errors.Is(err, unix.ENOTSUP) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("merging configuration: listing xattrs of %s: %w", src, err)
	}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		sz, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			return fmt.Errorf("merging configuration: reading xattr %s of %s: %w", name, src, err)
		}
		val := make([]byte, sz)
		if sz > 0 {
			if sz, err = unix.Lgetxattr(src, name, val); err != nil {
				return fmt.Errorf("merging configuration: reading xattr %s of %s: %w", name, src, err)
			}
			val = val[:sz]
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("merging configuration: setting xattr %s on %s: %w", name, dst, err)
		}
	}
	return nil
}
