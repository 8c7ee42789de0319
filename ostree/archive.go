package ostree

import (
	"bufio"
	"bytes"
	"io"

	"github.com/klauspost/compress/flate"
)

// DecodeArchiveObject parses a whole .filez object held in memory and
// returns its metadata and uncompressed content. It checks that the content
// length matches the header; the caller verifies the checksum.
func DecodeArchiveObject(b []byte) (*FileInfo, []byte, error) {
	fi, r, err := OpenArchiveStream(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, err
	}
	content, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, err
	}
	return fi, content, nil
}

// OpenArchiveStream reads the header of a .filez stream of total length
// size (-1 if unknown) and returns a reader of the uncompressed content,
// which fails if the content is longer or shorter than the header says or
// the compressed data is corrupt.
func OpenArchiveStream(r io.Reader, size int64) (*FileInfo, io.Reader, error) {
	h, err := readFramedHeader(r, size)
	if err != nil {
		return nil, nil, err
	}
	fi, err := ParseArchiveHeader(h)
	if err != nil {
		return nil, nil, err
	}
	if fi.IsSymlink() {
		var one [1]byte
		if n, _ := io.ReadFull(r, one[:]); n != 0 {
			return nil, nil, corrupt("symlink object has content")
		}
		return fi, bytes.NewReader(nil), nil
	}
	// The decompressor must not read ahead of the compressed data, or the
	// check for trailing bytes would miss what it buffered: give it an
	// io.ByteReader, which it reads byte by byte.
	br, ok := r.(flate.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	return fi, &exactReader{r: flate.NewReader(br), remaining: fi.Size, src: br}, nil
}

// exactReader returns exactly remaining bytes from a decompressor and
// checks that the compressed stream ends there.
type exactReader struct {
	r         io.Reader
	src       io.Reader
	remaining int64
	done      bool
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.remaining == 0 {
		if !e.done {
			e.done = true
			var one [1]byte
			n, err := e.r.Read(one[:])
			for n == 0 && err == nil {
				n, err = e.r.Read(one[:])
			}
			if n > 0 {
				return 0, corrupt("compressed content is longer than the header's size")
			}
			if err != io.EOF {
				return 0, corrupt("compressed content: %v", err)
			}
			if rest, _ := io.Copy(io.Discard, e.src); rest > 0 {
				return 0, corrupt("%d trailing bytes after the compressed content", rest)
			}
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.remaining {
		p = p[:e.remaining]
	}
	n, err := e.r.Read(p)
	e.remaining -= int64(n)
	if err == io.EOF {
		if e.remaining > 0 {
			return n, corrupt("unexpected EOF with %d bytes remaining", e.remaining)
		}
		err = nil
	} else if err != nil {
		return n, corrupt("compressed content: %v", err)
	}
	return n, err
}
