package ostree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// CheckoutOptions controls Checkout.
type CheckoutOptions struct {
	// UserMode (-U) does not apply ownership, and drops setuid/setgid
	// bits and xattrs, as `ostree checkout -U`.
	UserMode bool
	// Hardlink (-H) hard-links files from the repository instead of
	// copying; it is possible for bare repositories (and for bare-user and
	// bare-user-only ones in user mode). Where it is not possible the
	// files are copied.
	RequireHardlinks bool
	Hardlink         bool
	// Union overwrites existing files in the destination instead of
	// failing.
	Union bool
	// Subpath checks out only this path of the commit ("/" = all).
	Subpath string
	// Jobs bounds concurrency; 0 means 4.
	Jobs int
}

// Checkout writes the tree of commit c into dest (created if missing; it
// must be empty unless Union is set). All operations are relative to
// directory file descriptors opened without following symlinks, so a
// symlink in the tree or in the destination can never redirect a write
// outside dest.
func (r *Repo) Checkout(ctx context.Context, c Checksum, dest string, o CheckoutOptions) error {
	cm, err := r.LoadCommit(c)
	if err != nil {
		return err
	}
	return r.CheckoutTree(ctx, cm.RootTree, cm.RootMeta, dest, o)
}

// CheckoutTree is Checkout for a dirtree/dirmeta pair.
func (r *Repo) CheckoutTree(ctx context.Context, tree, meta Checksum, dest string, o CheckoutOptions) error {
	co := &checkout{repo: r, o: o, metas: map[Checksum]*DirMeta{}}
	if o.Hardlink || o.RequireHardlinks {
		co.hardlink = r.mode == ModeBare && !o.UserMode ||
			(r.mode == ModeBareUserOnly || r.mode == ModeBareUser) && o.UserMode
		if !co.hardlink && o.RequireHardlinks {
			return fmt.Errorf("cannot hardlink from a %s repository%s", r.mode, map[bool]string{true: "", false: " without -U"}[o.UserMode])
		}
	}
	// Resolve the subpath inside the tree.
	var fileName string
	var fileSum Checksum
	if sub := strings.Trim(path.Clean("/"+o.Subpath), "/"); sub != "" {
		e, err := r.ResolvePath(tree, meta, sub)
		if err != nil {
			return fmt.Errorf("subpath: %w", err)
		}
		if e.IsDir {
			tree, meta = e.Tree, e.Meta
		} else {
			fileName, fileSum = path.Base(sub), e.File
		}
	}
	if fileName != "" {
		// Checking out a single file: dest is the directory to put it in.
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return err
		}
		dfd, err := openDirNoFollow(unix.AT_FDCWD, dest)
		if err != nil {
			return err
		}
		defer unix.Close(dfd)
		return co.file(dfd, fileName, fileSum, dest+"/"+fileName)
	}
	dm, err := co.meta(meta)
	if err != nil {
		return err
	}
	// Create the destination with its final mode only once it is filled.
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("creating parent of %s: %w", dest, err)
	}
	created := false
	if err := unix.Mkdir(dest, 0o700); err == nil {
		created = true
	} else if !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("creating %s: %w", dest, err)
	}
	dfd, err := openDirNoFollow(unix.AT_FDCWD, dest)
	if err != nil {
		return err
	}
	if !created && !o.Union {
		if empty, err := dirIsEmpty(dfd); err != nil || !empty {
			unix.Close(dfd)
			if err == nil {
				err = fmt.Errorf("destination %s exists and is not empty (use --union to overwrite)", dest)
			}
			return err
		}
	}
	co.sem = make(chan struct{}, max(o.Jobs, 4))
	g, gctx := errgroup.WithContext(ctx)
	co.g, co.ctx = g, gctx
	g.Go(func() error { return co.dir(dfd, tree, dest) })
	err = g.Wait()
	if err == nil {
		err = co.applyDirMeta(dfd, dm, dest)
	}
	unix.Close(dfd)
	if err != nil && created {
		// Leave nothing half-written behind in a directory we made.
		os.RemoveAll(dest)
	}
	return err
}

type checkout struct {
	repo     *Repo
	o        CheckoutOptions
	hardlink bool
	mu       sync.Mutex
	metas    map[Checksum]*DirMeta
	g        *errgroup.Group
	ctx      context.Context
	sem      chan struct{}
}

func (co *checkout) meta(c Checksum) (*DirMeta, error) {
	co.mu.Lock()
	m := co.metas[c]
	co.mu.Unlock()
	if m != nil {
		return m, nil
	}
	m, err := co.repo.LoadDirMeta(c)
	if err != nil {
		return nil, err
	}
	co.mu.Lock()
	co.metas[c] = m
	co.mu.Unlock()
	return m, nil
}

func openDirNoFollow(dirfd int, name string) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, fmt.Errorf("opening directory %s: exists and is not a directory (a symlink is never followed): %w", name, err)
		}
		return -1, fmt.Errorf("opening directory %s: %w", name, err)
	}
	return fd, nil
}

func dirIsEmpty(fd int) (bool, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return false, err
	}
	df := os.NewFile(uintptr(dup), "dir")
	defer df.Close()
	names, err := df.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return len(names) == 0, err
}

// dir checks out the entries of a dirtree into the open directory dfd.
func (co *checkout) dir(dfd int, tree Checksum, where string) error {
	dt, err := co.repo.LoadDirTree(tree)
	if err != nil {
		return err
	}
	for _, f := range dt.Files {
		if err := co.ctx.Err(); err != nil {
			return err
		}
		if err := co.file(dfd, f.Name, f.Checksum, where+"/"+f.Name); err != nil {
			return err
		}
	}
	for _, d := range dt.Dirs {
		d := d
		dm, err := co.meta(d.Meta)
		if err != nil {
			return err
		}
		p := where + "/" + d.Name
		err = unix.Mkdirat(dfd, d.Name, 0o700)
		if err != nil && !(co.o.Union && errors.Is(err, unix.EEXIST)) {
			return fmt.Errorf("creating %s: %w", p, err)
		}
		sfd, err := openDirNoFollow(dfd, d.Name)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		work := func() error {
			defer unix.Close(sfd)
			if err := co.dir(sfd, d.Tree, p); err != nil {
				return err
			}
			return co.applyDirMeta(sfd, dm, p)
		}
		select {
		case co.sem <- struct{}{}:
			co.g.Go(func() error {
				defer func() { <-co.sem }()
				return work()
			})
		default:
			if err := work(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (co *checkout) applyDirMeta(fd int, dm *DirMeta, where string) error {
	mode := dm.Mode & 0o7777
	if !co.o.UserMode {
		if err := unix.Fchown(fd, int(dm.UID), int(dm.GID)); err != nil {
			return fmt.Errorf("setting owner of %s: %w", where, err)
		}
		for _, x := range dm.Xattrs {
			if err := unix.Fsetxattr(fd, x.Name, x.Value, 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
				return fmt.Errorf("setting xattr %s on %s: %w", x.Name, where, err)
			}
		}
	} else {
		mode &= 0o1777
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("setting mode of %s: %w", where, err)
	}
	return nil
}

// file checks out one content object as name in dfd.
func (co *checkout) file(dfd int, name string, sum Checksum, where string) error {
	if co.o.Union {
		if err := unix.Unlinkat(dfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			if errors.Is(err, unix.EISDIR) {
				return fmt.Errorf("checking out %s: a directory is in the way", where)
			}
			return fmt.Errorf("checking out %s: %w", where, err)
		}
	}
	if co.hardlink && co.repo.mode == ModeBareUser {
		// bare-user stores symlinks as regular files: only regular
		// files can be linked.
		obj, err := co.repo.OpenContent(sum)
		if err != nil {
			return fmt.Errorf("checking out %s: %w", where, err)
		}
		obj.Close()
		if obj.Info.IsRegular() {
			if err := unix.Linkat(unix.AT_FDCWD, obj.Path, dfd, name, 0); err == nil {
				return nil
			}
		}
	} else if co.hardlink {
		src := co.repo.objectPath(ObjectName{sum, ObjFile})
		err := unix.Linkat(unix.AT_FDCWD, src, dfd, name, 0)
		if err == nil {
			return nil
		}
		if errors.Is(err, unix.ENOENT) {
			if _, serr := os.Lstat(src); serr != nil {
				return fmt.Errorf("checking out %s: %w", where, missing(ObjectName{sum, ObjFile}))
			}
		}
		if !errors.Is(err, unix.EXDEV) && !errors.Is(err, unix.EMLINK) {
			return fmt.Errorf("checking out %s: %w", where, err)
		}
		// Fall back to a copy.
	}
	obj, err := co.repo.OpenContent(sum)
	if err != nil {
		return fmt.Errorf("checking out %s: %w", where, err)
	}
	defer obj.Close()
	fi := obj.Info
	if fi.IsSymlink() {
		if err := unix.Symlinkat(fi.SymlinkTarget, dfd, name); err != nil {
			return fmt.Errorf("checking out %s: %w", where, err)
		}
		if !co.o.UserMode {
			if err := unix.Fchownat(dfd, name, int(fi.UID), int(fi.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("setting owner of %s: %w", where, err)
			}
			for _, x := range fi.Xattrs {
				if err := lsetxattrAt(dfd, name, x); err != nil {
					return fmt.Errorf("setting xattr %s on %s: %w", x.Name, where, err)
				}
			}
		}
		return nil
	}
	fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("checking out %s: %w", where, err)
	}
	out := os.NewFile(uintptr(fd), where)
	defer out.Close()
	h := NewContentHasher(fi)
	n, err := io.Copy(out, io.TeeReader(obj.Content, h))
	if err != nil {
		return fmt.Errorf("checking out %s: %w", where, err)
	}
	if n != fi.Size {
		return fmt.Errorf("checking out %s: %w", where, corrupt("object %s has %d bytes, expected %d", sum, n, fi.Size))
	}
	if got := h.Sum(); got != sum {
		return fmt.Errorf("checking out %s: %w", where, corrupt("corrupted file object; checksum expected='%s' actual='%s'", sum, got))
	}
	mode := fi.Mode & 0o7777
	if !co.o.UserMode {
		if err := out.Chown(int(fi.UID), int(fi.GID)); err != nil {
			return fmt.Errorf("setting owner of %s: %w", where, err)
		}
		for _, x := range fi.Xattrs {
			if err := unix.Fsetxattr(fd, x.Name, x.Value, 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
				return fmt.Errorf("setting xattr %s on %s: %w", x.Name, where, err)
			}
		}
	} else {
		mode &= 0o777
	}
	if err := out.Chmod(os.FileMode(mode&0o777) | unixModeBits(mode)); err != nil {
		return fmt.Errorf("setting mode of %s: %w", where, err)
	}
	zero := []unix.Timespec{{}, {}}
	return unix.UtimesNanoAt(dfd, name, zero, unix.AT_SYMLINK_NOFOLLOW)
}

func unixModeBits(mode uint32) os.FileMode {
	var m os.FileMode
	if mode&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if mode&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if mode&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

func lsetxattrAt(dfd int, name string, x Xattr) error {
	p := fmt.Sprintf("/proc/self/fd/%d/%s", dfd, name)
	err := unix.Lsetxattr(p, x.Name, x.Value, 0)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
		return nil // symlink xattrs are not supported on every filesystem
	}
	return err
}
