package ostree

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/klauspost/compress/flate"
	"golang.org/x/sys/unix"
)

// WriteArchiveObject stores a .filez object streamed from r as it is,
// without recompressing, into an archive repository. The stream is
// verified while it is written: header (mode, rdev, sizes), complete
// compressed content with nothing after it, and the checksum of the
// object (recomputed from the header and the inflated content) must be
// expected. On any error nothing is kept.
func (t *Txn) WriteArchiveObject(expected Checksum, r io.Reader) error {
	if t.repo.mode != ModeArchive {
		return fmt.Errorf("WriteArchiveObject: repository is in %s mode, not archive", t.repo.mode)
	}
	n := ObjectName{expected, ObjFile}
	ok, err := t.Has(n)
	if err != nil {
		return err
	}
	if ok || !t.markStaged(n) {
		io.Copy(io.Discard, r)
		t.countSkipped()
		return nil
	}
	p, err := t.stagePath(n)
	var fi *FileInfo
	if err == nil {
		fi, err = t.writeArchiveRaw(p, expected, r)
	}
	if err != nil {
		os.Remove(p)
		t.mu.Lock()
		delete(t.staged, n)
		t.mu.Unlock()
		return err
	}
	t.countWritten(fi)
	return nil
}

func (t *Txn) writeArchiveRaw(p string, expected Checksum, r io.Reader) (*FileInfo, error) {
	f, err := createExcl(p, 0o644)
	if err != nil {
		return nil, fmt.Errorf("writing %s.file: %w", expected, err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	tee := io.TeeReader(r, bw)
	br := getBufReader(tee)
	defer putBufReader(br)
	fi, content, release, err := openArchivePooled(br)
	if err == nil {
		defer release()
		var sum Checksum
		sum, err = ContentChecksum(fi, content)
		if err == nil && fi.IsSymlink() {
			// Make sure the whole stream went through (and nothing follows).
			if rest, _ := io.Copy(io.Discard, br); rest > 0 {
				err = corrupt("%d trailing bytes after a symlink header", rest)
			}
		}
		if err == nil && sum != expected {
			err = corrupt("corrupted file object; checksum expected='%s' actual='%s'", expected, sum)
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return fi, nil
}

// pulledInMemoryMax is the largest content object a pull verifies in
// memory before writing it.
const pulledInMemoryMax = 256 << 10

var pulledBufs = sync.Pool{New: func() any { b := make([]byte, pulledInMemoryMax); return &b }}

// writePulledContent stages a content object received from a remote, of
// archive header fi and inflated content, that the caller found missing
// from the repository (the existence check is not repeated). A regular
// file of at most pulledInMemoryMax bytes is inflated and hashed in memory
// first: once verified it is written in one call, created with its final
// mode (no fchmod). Anything else is hashed while it is written, as
// WriteContent does. A corrupt object is never staged.
func (t *Txn) writePulledContent(fi *FileInfo, content io.Reader, expected Checksum) error {
	if err := t.checkWritable(fi); err != nil {
		return err
	}
	if !fi.IsRegular() || fi.Size > pulledInMemoryMax {
		_, err := t.writeMissingContent(fi, content, &expected, false)
		return err
	}
	bp := pulledBufs.Get().(*[]byte)
	defer pulledBufs.Put(bp)
	b := (*bp)[:fi.Size]
	if n, err := io.ReadFull(content, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return corrupt("content is %d bytes, header says %d", n, fi.Size)
		}
		return err
	}
	// Read to the end: the stream must hold nothing more.
	var one [1]byte
	if n, err := content.Read(one[:]); n != 0 {
		return corrupt("content is longer than the header's %d bytes", fi.Size)
	} else if err != io.EOF {
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	h := NewContentHasher(fi)
	h.Write(b)
	if sum := h.Sum(); sum != expected {
		return corrupt("corrupted file object; checksum expected='%s' actual='%s'", expected, sum)
	}
	_, err := t.writeMissingContent(fi, bytes.NewReader(b), &expected, true)
	return err
}

// linkObject stages a hard link to an object file of another repository
// of the same mode (trusted local pulls). It reports false, with no error,
// when linking is not possible (another file system); the caller then
// copies.
func (t *Txn) linkObject(n ObjectName, src string) (bool, error) {
	ok, err := t.Has(n)
	if err != nil || ok {
		if ok {
			t.countSkipped()
		}
		return ok, err
	}
	if !t.markStaged(n) {
		t.countSkipped()
		return true, nil
	}
	p, err := t.stagePath(n)
	if err == nil {
		err = os.Link(src, p)
	}
	if err != nil {
		t.mu.Lock()
		delete(t.staged, n)
		t.mu.Unlock()
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EMLINK) {
			return false, nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("object %s: %w", n, ErrNotFound)
		}
		return false, fmt.Errorf("linking %s: %w", n, err)
	}
	t.statsMu.Lock()
	t.Stats.ContentWritten++
	t.statsMu.Unlock()
	return true, nil
}

// readStaged reads a metadata object staged in t or stored in the
// repository.
func (t *Txn) readStaged(n ObjectName) ([]byte, error) {
	t.mu.Lock()
	_, staged := t.staged[n]
	t.mu.Unlock()
	if staged {
		rel := LoosePath(n, t.repo.mode)[len("objects/"):]
		b, err := os.ReadFile(filepath.Join(t.stage, rel))
		if err == nil {
			return b, nil
		}
	}
	return t.repo.ReadMetadataBytes(n)
}

var inflaters sync.Pool

// openArchivePooled is OpenArchiveStream for a pull's many small objects:
// the decompressor comes from a pool; call release once the content has
// been read (or abandoned).
func openArchivePooled(br *bufio.Reader) (fi *FileInfo, content io.Reader, release func(), err error) {
	h, err := readFramedHeader(br, -1)
	if err != nil {
		return nil, nil, nil, err
	}
	if fi, err = ParseArchiveHeader(h); err != nil {
		return nil, nil, nil, err
	}
	if fi.IsSymlink() {
		var one [1]byte
		if n, _ := io.ReadFull(br, one[:]); n != 0 {
			return nil, nil, nil, corrupt("symlink object has content")
		}
		return fi, bytes.NewReader(nil), func() {}, nil
	}
	var zr io.ReadCloser
	if v := inflaters.Get(); v != nil {
		zr = v.(io.ReadCloser)
		if err := zr.(flate.Resetter).Reset(br, nil); err != nil {
			zr = flate.NewReader(br)
		}
	} else {
		zr = flate.NewReader(br)
	}
	return fi, &exactReader{r: zr, remaining: fi.Size, src: br}, func() { inflaters.Put(zr) }, nil
}
