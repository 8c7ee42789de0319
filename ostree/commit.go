package ostree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// ImportOptions controls how a directory on disk becomes a tree.
type ImportOptions struct {
	// OwnerUID and OwnerGID, when non-negative, replace the owner of
	// every file and directory (ostree commit --owner-uid/--owner-gid).
	OwnerUID, OwnerGID int
	// CanonicalPermissions records uid/gid 0 and masks modes with 0755,
	// dropping xattrs (ostree's bare-user-only canonical permissions).
	CanonicalPermissions bool
	// NoXattrs ignores extended attributes.
	NoXattrs bool
	// Jobs bounds concurrent hashing/compression; 0 means GOMAXPROCS.
	Jobs int
}

// DefaultImportOptions keeps owners and xattrs as they are on disk.
func DefaultImportOptions() ImportOptions { return ImportOptions{OwnerUID: -1, OwnerGID: -1} }

// MutableTree is an in-memory directory tree being assembled for a
// commit. Directories may be imported on top of each other (later files
// replace earlier ones) before the tree is written.
type MutableTree struct {
	meta  DirMeta
	files map[string]*treeFile
	dirs  map[string]*MutableTree
}

type treeFile struct {
	path   string // on disk, for imported files
	fi     FileInfo
	xattrs bool // read xattrs from path (done by the workers, in parallel)
	sum    Checksum
	done   bool
}

// NewMutableTree returns an empty tree whose root has the given metadata.
func NewMutableTree(meta DirMeta) *MutableTree {
	return &MutableTree{meta: meta, files: map[string]*treeFile{}, dirs: map[string]*MutableTree{}}
}

// ErrUnsupportedFileType is wrapped when a tree holds a device node,
// socket or fifo, which OSTree cannot store.
var ErrUnsupportedFileType = errors.New("unsupported file type")

// Import adds the directory dir (recursively) to the tree; the root
// directory's metadata replaces the tree's own.
func (m *MutableTree) Import(dir string, o ImportOptions) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("importing %s: %w", dir, err)
	}
	if st.Mode&sIFMT != sIFDIR {
		return fmt.Errorf("importing %s: not a directory", dir)
	}
	meta, err := dirMetaFromStat(dir, &st, o)
	if err != nil {
		return err
	}
	m.meta = meta
	return m.importDir(dir, o)
}

func dirMetaFromStat(p string, st *unix.Stat_t, o ImportOptions) (DirMeta, error) {
	dm := DirMeta{UID: st.Uid, GID: st.Gid, Mode: st.Mode}
	if o.OwnerUID >= 0 {
		dm.UID = uint32(o.OwnerUID)
	}
	if o.OwnerGID >= 0 {
		dm.GID = uint32(o.OwnerGID)
	}
	if o.CanonicalPermissions {
		dm.UID, dm.GID = 0, 0
		dm.Mode = sIFDIR | dm.Mode&0o755
		return dm, nil
	}
	if !o.NoXattrs {
		x, err := readXattrs(p)
		if err != nil {
			return dm, fmt.Errorf("reading xattrs of %s: %w", p, err)
		}
		dm.Xattrs = x
	}
	return dm, nil
}

func (m *MutableTree) importDir(dir string, o ImportOptions) error {
	// A raw descriptor wrapped by os.NewFile: os.Open would try to add
	// the directory to the runtime poller (four failing fcntl/epoll_ctl
	// calls per directory).
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("importing %s: %w", dir, &fs.PathError{Op: "open", Path: dir, Err: err})
	}
	f := os.NewFile(uintptr(fd), dir)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("importing %s: %w", dir, err)
	}
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := ValidateFilename(name); err != nil {
			return fmt.Errorf("importing %s: %w", p, err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("importing %s: %w", p, err)
		}
		switch st.Mode & sIFMT {
		case sIFDIR:
			meta, err := dirMetaFromStat(p, &st, o)
			if err != nil {
				return err
			}
			delete(m.files, name)
			sub := m.dirs[name]
			if sub == nil {
				sub = NewMutableTree(meta)
				m.dirs[name] = sub
			}
			sub.meta = meta
			if err := sub.importDir(p, o); err != nil {
				return err
			}
		case sIFREG, sIFLNK:
			fi := FileInfo{UID: st.Uid, GID: st.Gid, Mode: st.Mode}
			if st.Mode&sIFMT == sIFREG {
				fi.Size = st.Size
			} else {
				t, err := os.Readlink(p)
				if err != nil {
					return fmt.Errorf("importing %s: %w", p, err)
				}
				fi.SymlinkTarget = t
			}
			if o.OwnerUID >= 0 {
				fi.UID = uint32(o.OwnerUID)
			}
			if o.OwnerGID >= 0 {
				fi.GID = uint32(o.OwnerGID)
			}
			if o.CanonicalPermissions {
				fi.UID, fi.GID = 0, 0
				if fi.IsRegular() {
					fi.Mode = sIFREG | fi.Mode&0o755
				}
			}
			delete(m.dirs, name)
			m.files[name] = &treeFile{path: p, fi: fi, xattrs: !o.NoXattrs && !o.CanonicalPermissions}
		default:
			return fmt.Errorf("importing %s: %w: %s (only regular files, symlinks and directories can be committed)",
				p, ErrUnsupportedFileType, fileTypeName(st.Mode))
		}
	}
	return nil
}

func fileTypeName(mode uint32) string {
	switch mode & sIFMT {
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	}
	return fmt.Sprintf("mode 0%o", mode)
}

// SetFile puts a content object that is already in the repository into
// the tree under path components dirs/name, creating directories with meta.
func (m *MutableTree) SetFile(name string, sum Checksum) error {
	if err := ValidateFilename(name); err != nil {
		return err
	}
	delete(m.dirs, name)
	m.files[name] = &treeFile{sum: sum, done: true}
	return nil
}

// EnsureDir returns the subdirectory name, creating it with meta.
func (m *MutableTree) EnsureDir(name string, meta DirMeta) (*MutableTree, error) {
	if err := ValidateFilename(name); err != nil {
		return nil, err
	}
	if d := m.dirs[name]; d != nil {
		return d, nil
	}
	delete(m.files, name)
	d := NewMutableTree(meta)
	m.dirs[name] = d
	return d, nil
}

func (m *MutableTree) collect(out *[]*treeFile) {
	for _, f := range m.files {
		if !f.done {
			*out = append(*out, f)
		}
	}
	for _, d := range m.dirs {
		d.collect(out)
	}
}

// WriteTree stores every file of the tree (hashing and compressing on all
// cores, skipping objects already present), then the dirtree and dirmeta
// objects, and returns the root dirtree and dirmeta checksums.
func (t *Txn) WriteTree(ctx context.Context, m *MutableTree, jobs int) (tree, meta Checksum, err error) {
	var files []*treeFile
	m.collect(&files)
	// Large files first keeps the workers busy until the end.
	sort.Slice(files, func(i, j int) bool { return files[i].fi.Size > files[j].fi.Size })
	if jobs <= 0 {
		// Twice the CPUs: file creation often waits on the disk (inode
		// tables), and the extra workers keep the CPUs busy meanwhile.
		jobs = 2 * runtime.GOMAXPROCS(0)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, f := range files {
		f := f
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			if f.xattrs {
				x, err := readXattrs(f.path)
				if err != nil {
					return fmt.Errorf("reading xattrs of %s: %w", f.path, err)
				}
				f.fi.Xattrs = x
			}
			sum, err := t.writeFileFromDisk(f.path, &f.fi)
			if err != nil {
				return fmt.Errorf("committing %s: %w", f.path, err)
			}
			f.sum, f.done = sum, true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return tree, meta, err
	}
	return t.writeDirs(ctx, m, jobs)
}

// writeDirs encodes the dirtree and dirmeta objects of m, children first
// (a dirtree names its subtrees by checksum), then writes them on jobs
// workers: each is a file to create, and creation is most of the cost.
func (t *Txn) writeDirs(ctx context.Context, m *MutableTree, jobs int) (tree, meta Checksum, err error) {
	type object struct {
		typ  ObjectType
		data []byte
		sum  Checksum
	}
	var objs []object
	seen := map[ObjectName]bool{}
	add := func(typ ObjectType, data []byte) Checksum {
		sum := SumBytes(data)
		if n := (ObjectName{sum, typ}); !seen[n] {
			seen[n] = true
			objs = append(objs, object{typ, data, sum})
		}
		return sum
	}
	var encode func(m *MutableTree) (tree, meta Checksum, err error)
	encode = func(m *MutableTree) (tree, meta Checksum, err error) {
		var dt DirTree
		for name, f := range m.files {
			dt.Files = append(dt.Files, TreeFile{Name: name, Checksum: f.sum})
		}
		for name, d := range m.dirs {
			st, sm, err := encode(d)
			if err != nil {
				return tree, meta, err
			}
			dt.Dirs = append(dt.Dirs, TreeDir{Name: name, Tree: st, Meta: sm})
		}
		dt.Sort()
		if err := m.meta.Validate(); err != nil {
			return tree, meta, err
		}
		return add(ObjDirTree, dt.Encode()), add(ObjDirMeta, m.meta.Encode()), nil
	}
	if tree, meta, err = encode(m); err != nil {
		return tree, meta, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, o := range objs {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			_, err := t.WriteMetadata(o.typ, o.data, &o.sum)
			return err
		})
	}
	return tree, meta, g.Wait()
}

// smallFile is the size up to which a file is read into memory once,
// hashed, and written from the buffer if it is new.
const smallFile = 4 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

// writeFileFromDisk computes the checksum of a file first and writes the
// object only when the repository lacks it, so a recommit of a mostly
// unchanged tree neither copies nor compresses again.
func (t *Txn) writeFileFromDisk(p string, fi *FileInfo) (Checksum, error) {
	if !fi.IsRegular() {
		sum, err := ContentChecksum(fi, nil)
		if err != nil {
			return sum, err
		}
		if ok, err := t.Has(ObjectName{sum, ObjFile}); err != nil || ok {
			t.countSkipped()
			return sum, err
		}
		if err := t.checkWritable(fi); err != nil {
			return sum, err
		}
		return t.writeMissingContent(fi, nil, &sum, true)
	}
	f, err := openRead(p)
	if err != nil {
		return Checksum{}, err
	}
	defer f.Close()
	h := NewContentHasher(fi)
	var data []byte
	if fi.Size <= smallFile {
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		buf := *bp
		if int64(cap(buf)) < fi.Size+1 {
			buf = make([]byte, 0, fi.Size+1)
			*bp = buf
		}
		// Exactly the size lstat gave: a file that shrank fails, one that
		// grew since is committed as it was (no read to EOF, which costs a
		// syscall per file).
		n, err := io.ReadFull(f, buf[:fi.Size])
		if err != nil && !(err == io.EOF && fi.Size == 0) {
			return Checksum{}, fmt.Errorf("file changed size while committing (read %d bytes, expected %d): %w", n, fi.Size, err)
		}
		data = buf[:n]
		h.Write(data)
	} else if n, err := copyLarge(h, f); err != nil {
		return Checksum{}, err
	} else if n != fi.Size {
		return Checksum{}, fmt.Errorf("file changed size while committing (read %d bytes, expected %d)", n, fi.Size)
	}
	sum := h.Sum()
	if ok, err := t.Has(ObjectName{sum, ObjFile}); err != nil || ok {
		t.countSkipped()
		return sum, err
	}
	if err := t.checkWritable(fi); err != nil {
		return sum, err
	}
	if data != nil {
		return t.writeMissingContent(fi, bytes.NewReader(data), &sum, true)
	}
	// A large file is read a second time and hashed again, in case it
	// changed since the first pass.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return sum, err
	}
	return t.writeMissingContent(fi, f, &sum, false)
}

// copyLarge copies through a pooled 1 MiB buffer.
func copyLarge(dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	return io.CopyBuffer(dst, src, *bp)
}

// CommitOptions describes a commit object to write.
type CommitOptions struct {
	Subject   string
	Body      string
	Timestamp time.Time // zero means now
	Parent    Checksum  // zero means none
	Metadata  Metadata
}

// WriteCommit writes a commit object for a written tree.
func (t *Txn) WriteCommit(tree, meta Checksum, o CommitOptions) (Checksum, error) {
	ts := o.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	if ts.Unix() < 0 {
		return Checksum{}, fmt.Errorf("commit timestamp %v is before 1970", ts)
	}
	c := &Commit{
		Metadata:  o.Metadata,
		Parent:    o.Parent,
		Subject:   o.Subject,
		Body:      o.Body,
		Timestamp: uint64(ts.Unix()),
		RootTree:  tree,
		RootMeta:  meta,
	}
	b, err := c.Encode()
	if err != nil {
		return Checksum{}, err
	}
	return t.WriteMetadata(ObjCommit, b, nil)
}

// ImportCommit overlays the tree of a commit already in repo r.
func (m *MutableTree) ImportCommit(r *Repo, c Checksum) error {
	cm, err := r.LoadCommit(c)
	if err != nil {
		return err
	}
	dm, err := r.LoadDirMeta(cm.RootMeta)
	if err != nil {
		return err
	}
	m.meta = *dm
	return m.importDirTree(r, cm.RootTree)
}

func (m *MutableTree) importDirTree(r *Repo, tree Checksum) error {
	dt, err := r.LoadDirTree(tree)
	if err != nil {
		return err
	}
	for _, f := range dt.Files {
		if err := m.SetFile(f.Name, f.Checksum); err != nil {
			return err
		}
	}
	for _, d := range dt.Dirs {
		dm, err := r.LoadDirMeta(d.Meta)
		if err != nil {
			return err
		}
		sub, err := m.EnsureDir(d.Name, *dm)
		if err != nil {
			return err
		}
		sub.meta = *dm
		if err := sub.importDirTree(r, d.Tree); err != nil {
			return err
		}
	}
	return nil
}
