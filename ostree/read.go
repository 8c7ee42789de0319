package ostree

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// HasObject reports whether the object is stored in the repository.
func (r *Repo) HasObject(n ObjectName) (bool, error) {
	_, err := os.Lstat(r.objectPath(n))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

func missing(n ObjectName) error {
	return fmt.Errorf("object %s: %w", n, ErrNotFound)
}

// ReadMetadataBytes returns the raw bytes of a metadata object (or a
// commitmeta) without verifying them.
func (r *Repo) ReadMetadataBytes(n ObjectName) ([]byte, error) {
	f, err := os.Open(r.objectPath(n))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, missing(n)
		}
		return nil, fmt.Errorf("reading %s: %w", n, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", n, err)
	}
	if len(b) > MaxMetadataSize {
		return nil, corrupt("%s: metadata object exceeds the maximum of %d bytes", n, MaxMetadataSize)
	}
	return b, nil
}

// readVerified reads a content-addressed metadata object and checks that
// its bytes hash to its name.
func (r *Repo) readVerified(n ObjectName) ([]byte, error) {
	b, err := r.ReadMetadataBytes(n)
	if err != nil {
		return nil, err
	}
	if got := SumBytes(b); got != n.Checksum {
		return nil, corrupt("corrupted %s object; checksum expected='%s' actual='%s'", n.Type, n.Checksum, got)
	}
	return b, nil
}

// LoadCommit reads, verifies and parses a commit.
func (r *Repo) LoadCommit(c Checksum) (*Commit, error) {
	n := ObjectName{c, ObjCommit}
	b, err := r.readVerified(n)
	if err != nil {
		return nil, err
	}
	cm, err := DecodeCommit(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n, err)
	}
	return cm, nil
}

// LoadDirTree reads, verifies and parses a dirtree.
func (r *Repo) LoadDirTree(c Checksum) (*DirTree, error) {
	n := ObjectName{c, ObjDirTree}
	b, err := r.readVerified(n)
	if err != nil {
		return nil, err
	}
	t, err := DecodeDirTree(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n, err)
	}
	return t, nil
}

// LoadDirMeta reads, verifies and parses a dirmeta.
func (r *Repo) LoadDirMeta(c Checksum) (*DirMeta, error) {
	n := ObjectName{c, ObjDirMeta}
	b, err := r.readVerified(n)
	if err != nil {
		return nil, err
	}
	m, err := DecodeDirMeta(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n, err)
	}
	return m, nil
}

// LoadCommitMeta returns the detached metadata of a commit, or nil when it
// has none.
func (r *Repo) LoadCommitMeta(c Checksum) (Metadata, error) {
	n := ObjectName{c, ObjCommitMeta}
	b, err := r.ReadMetadataBytes(n)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := DecodeMetadata(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n, err)
	}
	return m, nil
}

// ContentObject is an open content object.
type ContentObject struct {
	Info *FileInfo
	// Content reads the file content (empty for symlinks). For archive
	// repositories it decompresses; it fails on corrupt data.
	Content io.Reader
	// File is the object's file in bare, bare-user and bare-user-only
	// repositories (nil for archive), usable for hard links and reflinks.
	Path   string
	closer io.Closer
}

// Close releases the object.
func (o *ContentObject) Close() error {
	if o.closer != nil {
		return o.closer.Close()
	}
	return nil
}

// OpenContent opens a content object and reads its metadata. The content
// is not verified against the checksum here; see VerifyContent.
func (r *Repo) OpenContent(c Checksum) (*ContentObject, error) {
	n := ObjectName{c, ObjFile}
	p := r.objectPath(n)
	switch r.mode {
	case ModeArchive:
		f, err := os.Open(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, missing(n)
			}
			return nil, fmt.Errorf("opening %s: %w", n, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		fi, rd, err := OpenArchiveStream(bufferedReader(f), st.Size())
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		return &ContentObject{Info: fi, Content: rd, closer: f}, nil
	case ModeBare, ModeBareUserOnly:
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil, missing(n)
			}
			return nil, fmt.Errorf("opening %s: %w", n, err)
		}
		fi := &FileInfo{UID: st.Uid, GID: st.Gid, Mode: st.Mode}
		if r.mode == ModeBareUserOnly {
			fi.UID, fi.GID = 0, 0
		}
		if fi.Mode&sIFMT == sIFLNK {
			t, err := os.Readlink(p)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", n, err)
			}
			fi.SymlinkTarget = t
		}
		if r.mode == ModeBare {
			x, err := readXattrs(p)
			if err != nil {
				return nil, fmt.Errorf("reading xattrs of %s: %w", n, err)
			}
			fi.Xattrs = x
		}
		if fi.Mode&sIFMT == sIFLNK {
			if err := fi.Validate(); err != nil {
				return nil, fmt.Errorf("%s: %w", n, err)
			}
			return &ContentObject{Info: fi, Content: bytes.NewReader(nil), Path: p}, nil
		}
		fi.Size = st.Size
		if err := fi.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", n, err)
		}
		return &ContentObject{Info: fi, Content: f, Path: p, closer: f}, nil
	case ModeBareUser:
		f, err := os.Open(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, missing(n)
			}
			return nil, fmt.Errorf("opening %s: %w", n, err)
		}
		meta, err := getxattr(p, "user.ostreemeta")
		if err != nil {
			f.Close()
			return nil, corrupt("%s: reading user.ostreemeta: %v", n, err)
		}
		fi, err := ParseBareUserMeta(meta)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		if fi.Mode&sIFMT == sIFLNK {
			b, err := io.ReadAll(io.LimitReader(f, 64<<10))
			f.Close()
			if err != nil {
				return nil, err
			}
			if i := bytes.IndexByte(b, 0); i >= 0 {
				b = b[:i]
			}
			fi.SymlinkTarget = string(b)
			if err := fi.Validate(); err != nil {
				return nil, fmt.Errorf("%s: %w", n, err)
			}
			return &ContentObject{Info: fi, Content: bytes.NewReader(nil), Path: p}, nil
		}
		fi.Size = st.Size()
		if err := fi.Validate(); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		return &ContentObject{Info: fi, Content: f, Path: p, closer: f}, nil
	}
	return nil, fmt.Errorf("unsupported repository mode %s", r.mode)
}

// VerifyContent recomputes a content object's checksum from its stored
// metadata and content.
func (r *Repo) VerifyContent(c Checksum) error {
	o, err := r.OpenContent(c)
	if err != nil {
		return err
	}
	defer o.Close()
	got, err := ContentChecksum(o.Info, o.Content)
	if err != nil {
		return fmt.Errorf("corrupted file object %s: %w", c, asCorrupt(err))
	}
	if got != c {
		return corrupt("corrupted file object; checksum expected='%s' actual='%s'", c, got)
	}
	return nil
}

func asCorrupt(err error) error {
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	return corrupt("%v", err)
}

// readXattrs lists the xattrs of a path (not following symlinks), sorted,
// skipping zero-length values as ostree does.
func readXattrs(p string) (Xattrs, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	if sz == 0 {
		return nil, nil
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var out Xattrs
	for _, name := range strings.Split(string(buf[:sz]), "\x00") {
		if name == "" {
			continue
		}
		v, err := getxattr(p, name)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return nil, fmt.Errorf("xattr %s: %w", name, err)
		}
		if len(v) == 0 {
			continue
		}
		out = append(out, Xattr{Name: name, Value: v})
	}
	out.Sort()
	return out, nil
}

func getxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err2 := unix.Lgetxattr(p, name, nil)
			if err2 != nil {
				return nil, err2
			}
			buf = make([]byte, sz+1)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// PathEntry is what a path inside a commit's tree names.
type PathEntry struct {
	IsDir bool
	Tree  Checksum // dirtree, for a directory
	Meta  Checksum // dirmeta, for a directory
	File  Checksum // content object, for a file or symlink
}

// ResolvePath finds a slash-separated path ("/" or "" is the root) below
// the given root dirtree/dirmeta. Symlinks inside the tree are not
// followed; ".." components cannot climb above the root.
func (r *Repo) ResolvePath(tree, meta Checksum, p string) (PathEntry, error) {
	clean := strings.Trim(path.Clean("/"+p), "/")
	e := PathEntry{IsDir: true, Tree: tree, Meta: meta}
	if clean == "" {
		return e, nil
	}
	parts := strings.Split(clean, "/")
	for i, name := range parts {
		if !e.IsDir {
			return PathEntry{}, fmt.Errorf("/%s: not a directory: %w", strings.Join(parts[:i], "/"), ErrNotFound)
		}
		dt, err := r.LoadDirTree(e.Tree)
		if err != nil {
			return PathEntry{}, err
		}
		found := false
		for _, d := range dt.Dirs {
			if d.Name == name {
				e, found = PathEntry{IsDir: true, Tree: d.Tree, Meta: d.Meta}, true
				break
			}
		}
		if !found {
			for _, f := range dt.Files {
				if f.Name == name {
					e, found = PathEntry{File: f.Checksum}, true
					break
				}
			}
		}
		if !found {
			return PathEntry{}, fmt.Errorf("no such file or directory: /%s: %w", clean, ErrNotFound)
		}
	}
	return e, nil
}
