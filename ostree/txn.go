package ostree

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/gostree/gostree/internal/atomicfile"
)

// Txn is a repository transaction. Objects are written to a private
// staging directory and become visible only when Commit moves them into
// objects/; refs are published after every object is durable. A crash or
// Abort leaves the repository as it was. A Txn is safe for concurrent use.
type Txn struct {
	repo    *Repo
	stage   string
	lockF   *os.File
	unlock  func()
	level   int
	mu      sync.Mutex
	staged  map[ObjectName]struct{}
	dirs    sync.Map // staged XX dirs created
	refs    []refUpdate
	done    bool
	Stats   TxnStats
	statsMu sync.Mutex

	// Owner of new files in the stage and the umask, when known
	// (noteCreator).
	creatorKnown   bool
	umask          uint32
	newUID, newGID uint32
}

// TxnStats counts what a transaction wrote.
type TxnStats struct {
	MetadataWritten int
	ContentWritten  int
	ContentBytes    int64 // uncompressed bytes of new content objects
	ContentSkipped  int   // already present
}

type refUpdate struct {
	rs Refspec
	c  Checksum
}

// Begin starts a transaction. It takes a shared repository lock that is
// held until Commit or Abort, and removes staging directories left behind
// by transactions that died.
func (r *Repo) Begin(ctx context.Context) (*Txn, error) {
	unlock, err := r.Lock(ctx, LockShared)
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(r.path, "tmp")
	r.cleanStaleStaging(tmp)
	stage, lf, err := newStage(tmp)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("starting transaction: %w", err)
	}
	level := 6
	if v, err := r.config.Int("core", "zlib-level", 6); err == nil && v >= 1 && v <= 9 {
		level = int(v)
	}
	t := &Txn{repo: r, stage: stage, lockF: lf, unlock: unlock, level: level, staged: map[ObjectName]struct{}{}}
	t.noteCreator()
	return t, nil
}

// newStage creates a staging directory guarded by a lock file that is
// created and locked first, so that another process's cleanStaleStaging
// never mistakes it for the leftover of a dead transaction.
func newStage(tmp string) (string, *os.File, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	stage := filepath.Join(tmp, "staging-"+bootID()+"-"+hex.EncodeToString(rnd[:]))
	lf, err := os.OpenFile(stage+"-lock", os.O_CREATE|os.O_EXCL|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return "", nil, err
	}
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lf.Close()
		return "", nil, err
	}
	// A cleaner may have opened, locked and removed the lock file in the
	// moment between its creation and our flock: then ours is unlinked.
	var a, b unix.Stat_t
	if unix.Fstat(int(lf.Fd()), &a) != nil || unix.Stat(stage+"-lock", &b) != nil || a.Ino != b.Ino || a.Dev != b.Dev {
		lf.Close()
		return newStage(tmp)
	}
	if err := os.Mkdir(stage, 0o755); err != nil {
		os.Remove(stage + "-lock")
		lf.Close()
		return "", nil, err
	}
	return stage, lf, nil
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "unknown"
	}
	return strings.ReplaceAll(strings.TrimSpace(string(b)), "-", "")
}

// cleanStaleStaging removes staging directories whose lock is not held.
func (r *Repo) cleanStaleStaging(tmp string) {
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() || !strings.HasPrefix(n, "staging-") {
			continue
		}
		lp := filepath.Join(tmp, n+"-lock")
		lf, err := os.OpenFile(lp, os.O_RDWR|unix.O_CLOEXEC, 0)
		if err == nil {
			if unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
				lf.Close()
				continue // in use
			}
		}
		os.RemoveAll(filepath.Join(tmp, n))
		os.Remove(lp)
		if lf != nil {
			lf.Close()
		}
	}
}

// Repo returns the repository of the transaction.
func (t *Txn) Repo() *Repo { return t.repo }

// Has reports whether an object is in the repository or staged in t.
func (t *Txn) Has(n ObjectName) (bool, error) {
	t.mu.Lock()
	_, ok := t.staged[n]
	t.mu.Unlock()
	if ok {
		return true, nil
	}
	return t.repo.HasObject(n)
}

func (t *Txn) stagePath(n ObjectName) (string, error) {
	rel := LoosePath(n, t.repo.mode)[len("objects/"):]
	dir := filepath.Join(t.stage, rel[:2])
	if _, ok := t.dirs.Load(dir); !ok {
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
		t.dirs.Store(dir, true)
	}
	return filepath.Join(t.stage, rel), nil
}

// markStaged records a staged object; it returns false when another
// writer staged it first (the caller's file is then discarded).
func (t *Txn) markStaged(n ObjectName) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.staged[n]; ok {
		return false
	}
	t.staged[n] = struct{}{}
	return true
}

// tempFile creates a uniquely named temporary file in the stage directory.
func (t *Txn) tempFile() (*os.File, error) {
	return os.CreateTemp(t.stage, "tmp-")
}

// WriteMetadata stores a metadata object given its serialised bytes and
// returns its checksum. The bytes are parsed and validated first, so a
// malformed object never enters the repository. If expected is non-nil the
// checksum must match it.
func (t *Txn) WriteMetadata(typ ObjectType, data []byte, expected *Checksum) (Checksum, error) {
	sum := SumBytes(data)
	if expected != nil && *expected != sum {
		return sum, corrupt("corrupted %s object; checksum expected='%s' actual='%s'", typ, *expected, sum)
	}
	var err error
	switch typ {
	case ObjCommit:
		_, err = DecodeCommit(data)
	case ObjDirTree:
		_, err = DecodeDirTree(data)
	case ObjDirMeta:
		_, err = DecodeDirMeta(data)
	default:
		return sum, fmt.Errorf("WriteMetadata: %s is not a content-addressed metadata type", typ)
	}
	if err != nil {
		return sum, fmt.Errorf("%s.%s: %w", sum, typ, err)
	}
	n := ObjectName{sum, typ}
	if ok, err := t.Has(n); err != nil || ok {
		return sum, err
	}
	if err := t.stageBytes(n, data); err != nil {
		return sum, err
	}
	t.statsMu.Lock()
	t.Stats.MetadataWritten++
	t.statsMu.Unlock()
	return sum, nil
}

func (t *Txn) stageBytes(n ObjectName, data []byte) error {
	p, err := t.stagePath(n)
	if err != nil {
		return err
	}
	if n.Type == ObjCommitMeta {
		// Detached metadata may be replaced within a transaction.
		if err := atomicWriteNoSync(p, data); err != nil {
			return fmt.Errorf("writing %s: %w", n, err)
		}
		t.mu.Lock()
		t.staged[n] = struct{}{}
		t.mu.Unlock()
		return nil
	}
	if !t.markStaged(n) {
		return nil
	}
	err = writeNewFile(p, data)
	if err != nil {
		os.Remove(p)
		t.mu.Lock()
		delete(t.staged, n)
		t.mu.Unlock()
		return fmt.Errorf("writing %s: %w", n, err)
	}
	return nil
}

// writeNewFile creates p (which must not exist) with data and mode 0644
// less the umask, without *os.File's poller registration.
func writeNewFile(p string, data []byte) error {
	f, err := createExcl(p, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// atomicWriteNoSync replaces p inside the stage; durability comes from the
// syncfs at Commit.
func atomicWriteNoSync(p string, data []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, p)
}

// WriteCommitMeta stores (replaces) the detached metadata of a commit.
func (t *Txn) WriteCommitMeta(c Checksum, m Metadata) error {
	b, err := EncodeMetadata(m)
	if err != nil {
		return err
	}
	return t.WriteCommitMetaBytes(c, b)
}

// WriteCommitMetaBytes stores detached metadata given as serialised a{sv},
// which is validated first.
func (t *Txn) WriteCommitMetaBytes(c Checksum, b []byte) error {
	if _, err := DecodeMetadata(b); err != nil {
		return fmt.Errorf("detached metadata of %s: %w", c, err)
	}
	return t.stageBytes(ObjectName{c, ObjCommitMeta}, b)
}

// WriteContent stores a content object streamed from content (ignored for
// symlinks), verifying it against expected when that is non-nil. The
// object is hashed while it is written; on a mismatch nothing is kept.
func (t *Txn) WriteContent(fi *FileInfo, content io.Reader, expected *Checksum) (Checksum, error) {
	return t.writeContent(fi, content, expected, false)
}

// writeContent is WriteContent; trusted means content is known to hash to
// *expected (it was hashed from the same bytes in memory) and is not
// hashed again.
func (t *Txn) writeContent(fi *FileInfo, content io.Reader, expected *Checksum, trusted bool) (Checksum, error) {
	if err := t.checkWritable(fi); err != nil {
		return Checksum{}, err
	}
	if expected == nil && fi.IsSymlink() {
		sum, _ := ContentChecksum(fi, nil)
		expected, trusted = &sum, true
	}
	if expected == nil {
		return t.writeContentUnknown(fi, content)
	}
	n := ObjectName{*expected, ObjFile}
	ok, err := t.repo.HasObject(n)
	if err != nil {
		return *expected, err
	}
	if ok {
		if content != nil {
			io.Copy(io.Discard, content) // keep streaming callers in step
		}
		t.countSkipped()
		return *expected, nil
	}
	return t.writeMissingContent(fi, content, expected, trusted)
}

// writeMissingContent writes a content object the repository was just
// found to lack (it may still be staged by this transaction).
func (t *Txn) writeMissingContent(fi *FileInfo, content io.Reader, expected *Checksum, trusted bool) (Checksum, error) {
	n := ObjectName{*expected, ObjFile}
	if !t.markStaged(n) {
		if content != nil {
			io.Copy(io.Discard, content) // keep streaming callers in step
		}
		t.countSkipped()
		return *expected, nil
	}
	p, err := t.stagePath(n)
	if err == nil {
		err = t.writeStaged(p, fi, content, expected, trusted)
	}
	if err != nil {
		os.Remove(p)
		t.mu.Lock()
		delete(t.staged, n)
		t.mu.Unlock()
		return *expected, err
	}
	t.countWritten(fi)
	return *expected, nil
}

// writeStaged writes an object whose checksum is known directly under its
// final name in the stage (staged objects are invisible until Commit).
func (t *Txn) writeStaged(p string, fi *FileInfo, content io.Reader, expected *Checksum, trusted bool) error {
	if fi.IsSymlink() && (t.repo.mode == ModeBare || t.repo.mode == ModeBareUserOnly) {
		if err := t.makeSymlinkObject(fi, p); err != nil {
			return fmt.Errorf("writing %s.file: %w", expected, err)
		}
		return nil
	}
	// Archive objects get their final mode now; other modes get theirs
	// once the content is verified (applyFileMeta), except content that is
	// already verified (trusted) whose mode open(2) can set exactly: no
	// setuid/setgid/sticky bit and none the umask would clear. That saves
	// an fchmod per object.
	perm := uint32(0o600)
	modeSet := false
	if t.repo.mode == ModeArchive {
		perm = 0o644
	} else if trusted {
		if fp := t.objectPerm(fi); fp&0o7000 == 0 && t.creatorKnown && fp&t.umask == 0 {
			perm, modeSet = fp, true
		}
	}
	f, err := createExcl(p, perm)
	if err != nil {
		return fmt.Errorf("writing %s.file: %w", expected, err)
	}
	var h *ContentHasher
	var hw io.Writer = io.Discard
	if !trusted {
		h = NewContentHasher(fi)
		hw = h
	}
	err = t.writeObjectFile(f, fi, content, hw)
	if err == nil && h != nil {
		if sum := h.Sum(); sum != *expected {
			err = corrupt("corrupted file object; checksum expected='%s' actual='%s'", *expected, sum)
		}
	}
	if err == nil && t.repo.mode != ModeArchive {
		err = t.applyFileMeta(int(f), fi, modeSet)
	}
	if err == nil {
		t.startWriteback(int(f), fi.Size)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing %s.file: %w", expected, cerr)
	}
	return err
}

// writebackMin is the smallest object whose writeback starts as soon as
// it is written (see startWriteback). Smaller ones are left to the syncfs,
// which writes them in larger batches: starting every object's writeback
// cost more kernel time than it saved (tree-v1 into bare: 64 KiB gave
// 0.93/0.94 s, every object 0.96/0.99 s, none 0.98/1.03 s).
const writebackMin = 64 << 10

// startWriteback asks the kernel to start writing a staged object's data
// to disk now, without waiting for it (sync_file_range WRITE, as git's
// batched fsync does): the disk then works while the transaction goes on,
// and the syncfs at Commit has little left to wait for. Only when the
// repository fsyncs; failures are ignored (syncfs reports them).
func (t *Txn) startWriteback(fd int, size int64) {
	if !t.repo.fsync || size < writebackMin {
		return
	}
	unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}

// objectPerm returns the permission bits of a regular-file object of fi in
// the repository's mode (archive objects are plain 0644 files).
func (t *Txn) objectPerm(fi *FileInfo) uint32 {
	switch t.repo.mode {
	case ModeBare, ModeBareUserOnly:
		return fi.Mode & 0o7777
	case ModeBareUser:
		if fi.IsRegular() {
			return fi.Mode&0o775 | 0o400
		}
	}
	return 0o644
}

// noteCreator records who owns the files the transaction creates in its
// staging directory and the umask open(2) applies, so that fchown and
// fchmod can be skipped when they would change nothing. Without the
// information (no /proc) they are always called.
func (t *Txn) noteCreator() {
	var st unix.Stat_t
	if unix.Stat(t.stage, &st) != nil {
		return
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				return
			}
			t.umask = uint32(m)
			t.newUID, t.newGID = uint32(os.Geteuid()), uint32(os.Getegid())
			if st.Mode&unix.S_ISGID != 0 {
				t.newGID = st.Gid // new files take the directory's group
			}
			t.creatorKnown = true
			return
		}
	}
}

// writeContentUnknown writes a regular-file object whose checksum is not
// known in advance: into a temporary file, hashed on the way, then renamed.
func (t *Txn) writeContentUnknown(fi *FileInfo, content io.Reader) (sum Checksum, err error) {
	f, err := t.tempFile()
	if err != nil {
		return sum, err
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		if tmp != "" {
			os.Remove(tmp)
		}
	}()
	h := NewContentHasher(fi)
	if err := t.writeObjectFile(f, fi, content, h); err != nil {
		return sum, err
	}
	sum = h.Sum()
	n := ObjectName{sum, ObjFile}
	ok, err := t.Has(n)
	if err != nil || ok || !t.markStaged(n) {
		t.countSkipped()
		return sum, err
	}
	p, err := t.stagePath(n)
	if err == nil {
		err = t.applyFileMeta(int(f.Fd()), fi, false)
	}
	if err == nil {
		err = f.Close()
		f = nil
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		t.mu.Lock()
		delete(t.staged, n)
		t.mu.Unlock()
		return sum, fmt.Errorf("writing %s: %w", n, err)
	}
	tmp = ""
	t.countWritten(fi)
	return sum, nil
}

func (t *Txn) countWritten(fi *FileInfo) {
	t.statsMu.Lock()
	t.Stats.ContentWritten++
	t.Stats.ContentBytes += fi.Size
	t.statsMu.Unlock()
}

func (t *Txn) countSkipped() {
	t.statsMu.Lock()
	t.Stats.ContentSkipped++
	t.statsMu.Unlock()
}

func (t *Txn) checkWritable(fi *FileInfo) error {
	if err := fi.Validate(); err != nil {
		return err
	}
	if t.repo.mode == ModeBareUserOnly && fi.IsRegular() && fi.Mode&^(sIFMT|0o775) != 0 {
		return fmt.Errorf("content object: invalid mode 0%o with bits 0%o for a bare-user-only repository", fi.Mode, fi.Mode&^(sIFMT|0o775))
	}
	return nil
}

var flatePool sync.Pool

var bufioPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

type pooledFlate struct {
	w     *flate.Writer
	level int
}

func (t *Txn) getFlate(dst io.Writer) *pooledFlate {
	if v := flatePool.Get(); v != nil {
		p := v.(*pooledFlate)
		if p.level == t.level {
			p.w.Reset(dst)
			return p
		}
	}
	w, _ := flate.NewWriter(dst, t.level)
	return &pooledFlate{w: w, level: t.level}
}

// writeObjectFile writes the on-disk representation of a content object
// for the repository's mode into f, hashing the content into h.
func (t *Txn) writeObjectFile(f io.Writer, fi *FileInfo, content io.Reader, h io.Writer) error {
	var src io.Reader = bytes.NewReader(nil)
	if fi.IsRegular() && content != nil {
		src = io.TeeReader(io.LimitReader(content, fi.Size+1), h)
	}
	switch t.repo.mode {
	case ModeArchive:
		bw := bufioPool.Get().(*bufio.Writer)
		bw.Reset(f)
		defer func() { bw.Reset(nil); bufioPool.Put(bw) }()
		bw.Write(fi.ArchiveHeader())
		if fi.IsRegular() {
			fw := t.getFlate(bw)
			n, err := io.Copy(fw.w, src)
			if err != nil {
				return err
			}
			if n != fi.Size {
				return corrupt("content is %d bytes, header says %d", n, fi.Size)
			}
			if err := fw.w.Close(); err != nil {
				return err
			}
			flatePool.Put(fw)
		}
		return bw.Flush()
	default:
		if fi.IsSymlink() {
			if t.repo.mode == ModeBareUser {
				_, err := f.Write(append([]byte(fi.SymlinkTarget), 0))
				return err
			}
			return nil
		}
		if br, ok := content.(*bytes.Reader); ok && h == io.Discard && fi.IsRegular() {
			// Verified bytes in memory: one write (io.Copy would write
			// them 32 KiB at a time).
			if int64(br.Len()) != fi.Size {
				return corrupt("content is %d bytes, header says %d", br.Len(), fi.Size)
			}
			_, err := br.WriteTo(f)
			return err
		}
		bp := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(bp)
		n, err := io.CopyBuffer(f, src, *bp)
		if err != nil {
			return err
		}
		if n != fi.Size {
			return corrupt("content is %d bytes, header says %d", n, fi.Size)
		}
		return nil
	}
}

// copyBufPool holds the buffers large files are copied through (fewer
// read and write calls than io.Copy's 32 KiB).
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// applyFileMeta sets ownership, mode, xattrs and mtime of a staged
// regular-file object. It runs only after the content is complete and
// verified, so a setuid bit is never set on unverified data.
// modeSet says the file was created with its final mode; a new file's
// owner is fchown'ed only when it differs from the creator's.
func (t *Txn) applyFileMeta(fd int, fi *FileInfo, modeSet bool) error {
	switch t.repo.mode {
	case ModeArchive:
		return unix.Fchmod(fd, 0o644)
	case ModeBare:
		if !t.creatorKnown || fi.UID != t.newUID || fi.GID != t.newGID {
			if err := unix.Fchown(fd, int(fi.UID), int(fi.GID)); err != nil {
				if errors.Is(err, unix.EPERM) {
					return fmt.Errorf("a bare repository needs root to store files owned by %d:%d (use a bare-user repository): %w", fi.UID, fi.GID, err)
				}
				return err
			}
		}
		if !modeSet {
			if err := unix.Fchmod(fd, fi.Mode&0o7777); err != nil {
				return err
			}
		}
		for _, x := range fi.Xattrs {
			if err := unix.Fsetxattr(fd, x.Name, x.Value, 0); err != nil {
				return fmt.Errorf("setting xattr %s: %w", x.Name, err)
			}
		}
	case ModeBareUser:
		if err := unix.Fsetxattr(fd, "user.ostreemeta", fi.BareUserMeta(), 0); err != nil {
			return fmt.Errorf("setting user.ostreemeta (the filesystem must support user xattrs): %w", err)
		}
		if !modeSet {
			if err := unix.Fchmod(fd, t.objectPerm(fi)); err != nil {
				return err
			}
		}
	case ModeBareUserOnly:
		if !modeSet {
			if err := unix.Fchmod(fd, fi.Mode&0o7777); err != nil {
				return err
			}
		}
	}
	return futimensZero(fd)
}

func (t *Txn) makeSymlinkObject(fi *FileInfo, p string) error {
	if err := os.Symlink(fi.SymlinkTarget, p); err != nil {
		return err
	}
	if t.repo.mode == ModeBare {
		if err := unix.Lchown(p, int(fi.UID), int(fi.GID)); err != nil {
			return err
		}
		for _, x := range fi.Xattrs {
			if err := unix.Lsetxattr(p, x.Name, x.Value, 0); err != nil {
				return fmt.Errorf("setting xattr %s: %w", x.Name, err)
			}
		}
	}
	zero := []unix.Timespec{{}, {}}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, zero, unix.AT_SYMLINK_NOFOLLOW)
}

// SetRef records a ref update, published when the transaction commits.
// A zero checksum deletes the ref.
func (t *Txn) SetRef(rs Refspec, c Checksum) error {
	if err := ValidateRefName(rs.Ref); err != nil {
		return err
	}
	t.mu.Lock()
	t.refs = append(t.refs, refUpdate{rs, c})
	t.mu.Unlock()
	return nil
}

// Commit makes the staged objects durable and visible, then publishes the
// ref updates. After Commit the Txn cannot be used.
func (t *Txn) Commit() error {
	if t.done {
		return errors.New("transaction already finished")
	}
	defer t.finish()
	r := t.repo
	if r.fsync {
		d, err := os.Open(t.stage)
		if err != nil {
			return err
		}
		err = unix.Syncfs(int(d.Fd()))
		d.Close()
		if err != nil {
			return fmt.Errorf("syncing staged objects: %w", err)
		}
	}
	// Publish: every object but the commits first, spread over workers by
	// object directory (a worker owns its directories, so renames do not
	// contend on a directory lock), then the commits, so a reader never sees
	// a commit before its tree.
	var commits []ObjectName
	shards := publishShards()
	byShard := make([][]ObjectName, shards)
	for n := range t.staged {
		if n.Type == ObjCommit {
			commits = append(commits, n)
			continue
		}
		i := int(n.Checksum[0]) % shards
		byShard[i] = append(byShard[i], n)
	}
	touchedBy := make([]map[string]bool, shards)
	var g errgroup.Group
	for i := range byShard {
		touchedBy[i] = map[string]bool{}
		g.Go(func() error { return t.publish(byShard[i], touchedBy[i]) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if r.fsync {
		if err := syncDirsOrFS(filepath.Join(r.path, "objects"), touchedBy); err != nil {
			return err
		}
	}
	touched := map[string]bool{}
	if err := t.publish(commits, touched); err != nil {
		return err
	}
	touched[filepath.Join(r.path, "objects")] = true
	if err := syncDirs(r.fsync, touched); err != nil {
		return err
	}
	for _, u := range t.refs {
		if err := r.SetRef(u.rs, u.c); err != nil && !(u.c.IsZero() && errors.Is(err, ErrNotFound)) {
			return fmt.Errorf("updating ref %s: %w", u.rs, err)
		}
	}
	return nil
}

// syncDirs fsyncs the directories of dirs when sync is set.
func syncDirs(sync bool, dirs map[string]bool) error {
	if !sync {
		return nil
	}
	for dir := range dirs {
		if err := atomicfile.SyncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// syncDirsBatch is how many directories syncDirsOrFS fsyncs one by one;
// beyond it one syncfs is cheaper.
const syncDirsBatch = 16

// syncDirsOrFS makes the renames into the directories of dirs durable:
// an fsync of each directory when there are few, else one syncfs of the
// filesystem holding fsDir (one batch of writes, or one journal commit,
// instead of a synchronous write per directory: hundreds of object
// directories took ~130 ms to fsync one by one on this machine).
func syncDirsOrFS(fsDir string, dirs []map[string]bool) error {
	n := 0
	for _, m := range dirs {
		n += len(m)
	}
	if n <= syncDirsBatch {
		for _, m := range dirs {
			if err := syncDirs(true, m); err != nil {
				return err
			}
		}
		return nil
	}
	d, err := os.Open(fsDir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncing published objects: %w", err)
	}
	return nil
}

// publishShards is how many workers publish a transaction's objects.
func publishShards() int { return min(max(runtime.GOMAXPROCS(0), 1), 8) }

// publish renames staged objects into the repository, recording the
// object directories it touched (created if missing).
func (t *Txn) publish(names []ObjectName, touched map[string]bool) error {
	r := t.repo
	emptied := map[string]bool{}
	// The stage directories this worker emptied go now, one rmdir each and
	// in parallel, rather than in finish's RemoveAll (a directory walk).
	defer func() {
		for d := range emptied {
			unix.Rmdir(d) // fails harmlessly if an object stayed (already present)
		}
	}()
	for _, n := range names {
		rel := LoosePath(n, r.mode)
		src := filepath.Join(t.stage, rel[len("objects/"):])
		emptied[filepath.Dir(src)] = true
		dst := filepath.Join(r.path, rel)
		dir := filepath.Dir(dst)
		if !touched[dir] {
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("publishing objects: %w", err)
			}
			touched[dir] = true
		}
		var err error
		if n.Type == ObjCommitMeta {
			err = os.Rename(src, dst)
		} else {
			// First writer wins: never replace an existing object, so
			// hard links from checkouts keep sharing it.
			err = unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
			if errors.Is(err, unix.EEXIST) {
				err = nil
			} else if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
				if _, serr := os.Lstat(dst); serr == nil {
					err = nil
				} else {
					err = os.Rename(src, dst)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("publishing %s: %w", n, err)
		}
	}
	return nil
}

// Abort discards everything staged. It is safe to call after Commit.
func (t *Txn) Abort() {
	if !t.done {
		t.finish()
	}
}

func (t *Txn) finish() {
	t.done = true
	os.RemoveAll(t.stage)
	os.Remove(t.stage + "-lock")
	t.lockF.Close()
	t.unlock()
}
