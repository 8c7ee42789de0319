package ostree

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"math/bits"

	"github.com/gostree/gostree/ostree/gvariant"
)

// FileInfo is the metadata of a content object: a regular file or symlink.
type FileInfo struct {
	UID, GID      uint32
	Mode          uint32 // full st_mode: S_IFREG or S_IFLNK plus permission bits
	SymlinkTarget string // for symlinks
	Xattrs        Xattrs
	Size          int64 // content length of a regular file; 0 for symlinks
}

// IsSymlink reports whether the object is a symbolic link.
func (fi *FileInfo) IsSymlink() bool { return fi.Mode&sIFMT == sIFLNK }

// IsRegular reports whether the object is a regular file.
func (fi *FileInfo) IsRegular() bool { return fi.Mode&sIFMT == sIFREG }

// Validate checks the mode and symlink target.
func (fi *FileInfo) Validate() error {
	switch fi.Mode & sIFMT {
	case sIFREG:
		if fi.SymlinkTarget != "" {
			return corrupt("regular file with a symlink target")
		}
	case sIFLNK:
		if fi.SymlinkTarget == "" {
			return corrupt("symlink with an empty target")
		}
		if fi.Size != 0 {
			return corrupt("symlink with content")
		}
	default:
		return corrupt("invalid mode 0%o: content objects are regular files or symlinks", fi.Mode)
	}
	if fi.Mode&^modeMax != 0 {
		return corrupt("invalid mode 0%o; invalid bits in mode", fi.Mode)
	}
	if fi.Size < 0 {
		return corrupt("negative size")
	}
	return nil
}

// fileHeaderVariant serialises (uuuusa(ayay)).
func (fi *FileInfo) fileHeaderVariant() []byte {
	return gvariant.MustMarshal(typeFileHeader, []any{
		bits.ReverseBytes32(fi.UID), bits.ReverseBytes32(fi.GID), bits.ReverseBytes32(fi.Mode), uint32(0),
		fi.SymlinkTarget, fi.Xattrs.gv()})
}

// FileHeader returns the header that precedes the content in the object
// stream the checksum is computed over: u32be(len) ‖ 4 zero bytes ‖ H.
func (fi *FileInfo) FileHeader() []byte { return frameHeader(fi.fileHeaderVariant()) }

// ArchiveHeader returns the header of a .filez object, the same framing
// around (tuuuusa(ayay)) with the uncompressed size first.
func (fi *FileInfo) ArchiveHeader() []byte {
	return frameHeader(gvariant.MustMarshal(typeArchiveHeader, []any{
		bits.ReverseBytes64(uint64(fi.Size)),
		bits.ReverseBytes32(fi.UID), bits.ReverseBytes32(fi.GID), bits.ReverseBytes32(fi.Mode), uint32(0),
		fi.SymlinkTarget, fi.Xattrs.gv()}))
}

func frameHeader(h []byte) []byte {
	out := make([]byte, 8, 8+len(h))
	binary.BigEndian.PutUint32(out, uint32(len(h)))
	return append(out, h...)
}

// BareUserMeta returns the value of the user.ostreemeta xattr that
// bare-user repositories store on each content object: (uuua(ayay)).
func (fi *FileInfo) BareUserMeta() []byte {
	return gvariant.MustMarshal(typeDirMeta, []any{
		bits.ReverseBytes32(fi.UID), bits.ReverseBytes32(fi.GID), bits.ReverseBytes32(fi.Mode), fi.Xattrs.gv()})
}

// ParseBareUserMeta parses a user.ostreemeta xattr value into uid, gid,
// mode and xattrs.
func ParseBareUserMeta(b []byte) (*FileInfo, error) {
	v, err := gvariant.Unmarshal(typeDirMeta, b)
	if err != nil {
		return nil, corrupt("user.ostreemeta: %v", err)
	}
	t := v.([]any)
	x, err := xattrsFromGV(t[3])
	if err != nil {
		return nil, err
	}
	return &FileInfo{
		UID:    bits.ReverseBytes32(t[0].(uint32)),
		GID:    bits.ReverseBytes32(t[1].(uint32)),
		Mode:   bits.ReverseBytes32(t[2].(uint32)),
		Xattrs: x,
	}, nil
}

// maxHeaderSize bounds the file header of a content object.
const maxHeaderSize = 10 << 20

// readFramedHeader reads u32be(len) ‖ 4 bytes ‖ H from r and returns H.
func readFramedHeader(r io.Reader, limit int64) ([]byte, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, corrupt("file header truncated: %v", err)
	}
	n := binary.BigEndian.Uint32(pre[:4])
	if n == 0 {
		return nil, corrupt("file header size is zero")
	}
	if n > maxHeaderSize || (limit >= 0 && int64(n)+8 > limit) {
		return nil, corrupt("file header size %d exceeds size %d", n, limit)
	}
	h := make([]byte, n)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, corrupt("file header truncated: %v", err)
	}
	return h, nil
}

// ParseArchiveHeader parses the (tuuuusa(ayay)) header of a .filez object.
func ParseArchiveHeader(h []byte) (*FileInfo, error) {
	v, err := gvariant.Unmarshal(typeArchiveHeader, h)
	if err != nil {
		return nil, corrupt("archive file header: %v", err)
	}
	t := v.([]any)
	size := bits.ReverseBytes64(t[0].(uint64))
	if size > 1<<62 {
		return nil, corrupt("archive file header: size %d out of range", size)
	}
	if rdev := bits.ReverseBytes32(t[4].(uint32)); rdev != 0 {
		return nil, corrupt("invalid rdev %d", rdev)
	}
	x, err := xattrsFromGV(t[6])
	if err != nil {
		return nil, err
	}
	fi := &FileInfo{
		Size:          int64(size),
		UID:           bits.ReverseBytes32(t[1].(uint32)),
		GID:           bits.ReverseBytes32(t[2].(uint32)),
		Mode:          bits.ReverseBytes32(t[3].(uint32)),
		SymlinkTarget: t[5].(string),
		Xattrs:        x,
	}
	if err := fi.Validate(); err != nil {
		return nil, err
	}
	return fi, nil
}

// ParseFileHeader parses the (uuuusa(ayay)) header of an uncompressed
// content object stream (as in static deltas and `ostree cat`-style streams).
func ParseFileHeader(h []byte) (*FileInfo, error) {
	v, err := gvariant.Unmarshal(typeFileHeader, h)
	if err != nil {
		return nil, corrupt("file header: %v", err)
	}
	t := v.([]any)
	if rdev := bits.ReverseBytes32(t[3].(uint32)); rdev != 0 {
		return nil, corrupt("invalid rdev %d", rdev)
	}
	x, err := xattrsFromGV(t[5])
	if err != nil {
		return nil, err
	}
	fi := &FileInfo{
		UID:           bits.ReverseBytes32(t[0].(uint32)),
		GID:           bits.ReverseBytes32(t[1].(uint32)),
		Mode:          bits.ReverseBytes32(t[2].(uint32)),
		SymlinkTarget: t[4].(string),
		Xattrs:        x,
	}
	if err := fi.Validate(); err != nil {
		return nil, err
	}
	return fi, nil
}

// ContentHasher computes a content object checksum while the content is
// streamed through it.
type ContentHasher struct {
	h hash.Hash
}

// NewContentHasher starts the checksum of a content object with the given
// metadata; write the file content (nothing for a symlink), then call Sum.
func NewContentHasher(fi *FileInfo) *ContentHasher {
	h := sha256.New()
	h.Write(fi.FileHeader())
	return &ContentHasher{h: h}
}

// Write adds content bytes.
func (c *ContentHasher) Write(p []byte) (int, error) { return c.h.Write(p) }

// Sum returns the checksum.
func (c *ContentHasher) Sum() Checksum {
	var s Checksum
	c.h.Sum(s[:0])
	return s
}

// ContentChecksum computes the checksum of a content object from its
// metadata and content.
func ContentChecksum(fi *FileInfo, content io.Reader) (Checksum, error) {
	h := NewContentHasher(fi)
	if content != nil && fi.IsRegular() {
		n, err := io.Copy(h, content)
		if err != nil {
			return Checksum{}, err
		}
		if n != fi.Size {
			return Checksum{}, fmt.Errorf("content is %d bytes, header says %d", n, fi.Size)
		}
	}
	return h.Sum(), nil
}
