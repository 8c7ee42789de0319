package ostree

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// Fuzz tests of every decoder: no panics, every error wraps ErrCorrupt, and
// whatever is accepted validates and re-encodes to the same bytes.

// fuzzVectors returns the vector objects whose paths end in ext.
func fuzzVectors(f *testing.F, ext string) [][]byte {
	f.Helper()
	var out [][]byte
	for _, file := range []string{"objects-archive.txt", "xattr-vector.txt"} {
		for _, o := range loadVectorObjects(f, file) {
			if strings.HasSuffix(o.Path, ext) {
				out = append(out, o.Data)
			}
		}
	}
	if len(out) == 0 {
		f.Fatalf("no %s vectors", ext)
	}
	return out
}

// fuzzAddVariants seeds the corpus with b and with truncated, extended and
// bit-flipped copies of it.
func fuzzAddVariants(f *testing.F, b []byte) {
	f.Add(b)
	if len(b) == 0 {
		return
	}
	f.Add(b[:len(b)-1])
	f.Add(b[:len(b)/2])
	f.Add(b[1:])
	f.Add(append(append([]byte(nil), b...), 0))
	for _, i := range []int{0, len(b) / 3, len(b) / 2, len(b) - 2, len(b) - 1} {
		if i < 0 {
			continue
		}
		for _, bit := range []byte{0x01, 0x80} {
			c := append([]byte(nil), b...)
			c[i] ^= bit
			f.Add(c)
		}
	}
}

func fuzzCheckErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %q does not wrap ErrCorrupt", err)
	}
}

// fuzzHeaders returns the uncompressed file headers (uuuusa(ayay)) and the
// user.ostreemeta values of content-objects.txt.
func fuzzContentVectors(f *testing.F) (headers, bareUser [][]byte) {
	f.Helper()
	text, err := os.ReadFile("testdata/vectors/content-objects.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\):\n([0-9a-f\n]+?)\nchecksum`).FindAllStringSubmatch(string(text), -1) {
		b, err := hex.DecodeString(strings.ReplaceAll(m[1], "\n", ""))
		if err != nil {
			f.Fatal(err)
		}
		headers = append(headers, b[8:])
	}
	for _, m := range regexp.MustCompile(`user.ostreemeta = ([0-9a-f]+)`).FindAllStringSubmatch(string(text), -1) {
		b, err := hex.DecodeString(m[1])
		if err != nil {
			f.Fatal(err)
		}
		bareUser = append(bareUser, b)
	}
	if len(headers) == 0 || len(bareUser) == 0 {
		f.Fatal("no content vectors")
	}
	return headers, bareUser
}

func FuzzDecodeCommit(f *testing.F) {
	for _, b := range fuzzVectors(f, ".commit") {
		fuzzAddVariants(f, b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommit(b)
		if err != nil {
			fuzzCheckErr(t, err)
			return
		}
		again, err := c.Encode()
		if err != nil {
			t.Fatalf("Encode of a decoded commit: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
		for _, e := range c.Metadata {
			if e.Key == "" {
				t.Fatalf("empty metadata key accepted")
			}
		}
		if c.HasParent() && c.Parent.IsZero() {
			t.Fatalf("zero parent")
		}
	})
}

func FuzzDecodeDirTree(f *testing.F) {
	for _, b := range fuzzVectors(f, ".dirtree") {
		fuzzAddVariants(f, b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDirTree(b)
		if err != nil {
			fuzzCheckErr(t, err)
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("decoded dirtree does not validate: %v", err)
		}
		if again := d.Encode(); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
	})
}

func FuzzDecodeDirMeta(f *testing.F) {
	for _, b := range fuzzVectors(f, ".dirmeta") {
		fuzzAddVariants(f, b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeDirMeta(b)
		if err != nil {
			fuzzCheckErr(t, err)
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded dirmeta does not validate: %v", err)
		}
		if again := m.Encode(); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
	})
}

func FuzzDecodeMetadata(f *testing.F) {
	// The metadata dictionaries at the start of the commits (their a{sv}
	// member ends at the last framing offset), plus a few built ones.
	for _, b := range fuzzVectors(f, ".commit") {
		c, err := DecodeCommit(b)
		if err != nil {
			f.Fatal(err)
		}
		m, err := EncodeMetadata(c.Metadata)
		if err != nil {
			f.Fatal(err)
		}
		fuzzAddVariants(f, m)
	}
	f.Add([]byte{})
	f.Add([]byte("k\x00\x00\x00\x00\x00\x00\x00\x01\x00b\x02\x0d"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMetadata(b)
		if err != nil {
			fuzzCheckErr(t, err)
			return
		}
		again, err := EncodeMetadata(m)
		if err != nil {
			t.Fatalf("EncodeMetadata of decoded metadata: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
		for _, e := range m {
			if v, ok := m.Lookup(e.Key); !ok || v.Type == nil {
				t.Fatalf("Lookup(%q) failed", e.Key)
			}
		}
	})
}

func FuzzDecodeArchiveObject(f *testing.F) {
	for _, b := range fuzzVectors(f, ".filez") {
		fuzzAddVariants(f, b)
		// The same object with trailing bytes and a bad size field.
		f.Add(append(append([]byte(nil), b...), "junk"...))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fi, content, err := DecodeArchiveObject(b)

		// The streaming reader on a plain io.Reader must agree.
		sfi, r, serr := OpenArchiveStream(plainReader{bytes.NewReader(b)}, int64(len(b)))
		var scontent []byte
		if serr == nil {
			scontent, serr = io.ReadAll(r)
		}
		if (err == nil) != (serr == nil) {
			t.Fatalf("DecodeArchiveObject: %v; OpenArchiveStream: %v", err, serr)
		}

		if err != nil {
			fuzzCheckErr(t, err)
			fuzzCheckErr(t, serr)
			return
		}
		if !reflect.DeepEqual(fi, sfi) || !bytes.Equal(content, scontent) {
			t.Fatalf("stream and in-memory results differ: %+v %+v", fi, sfi)
		}
		if err := fi.Validate(); err != nil {
			t.Fatalf("decoded file info does not validate: %v", err)
		}
		if int64(len(content)) != fi.Size {
			t.Fatalf("content is %d bytes, header says %d", len(content), fi.Size)
		}
		if fi.IsSymlink() && len(content) != 0 {
			t.Fatalf("symlink with content")
		}
		// The header re-encodes to the same bytes (ostree ignores the four
		// padding bytes after the length, and so does the reader).
		h := fi.ArchiveHeader()
		n := int(binary.BigEndian.Uint32(b))
		if !bytes.Equal(h[:4], b[:4]) || !bytes.Equal(h[8:], b[8:8+n]) {
			t.Fatalf("archive header re-encodes to %x, want %x", h, b[:8+n])
		}
		// And the object round-trips semantically through Go's compressor.
		again := h
		if fi.IsRegular() {
			again = append(again, fuzzDeflate(t, content)...)
		}
		fi2, content2, err := DecodeArchiveObject(again)
		if err != nil || !reflect.DeepEqual(fi, fi2) || !bytes.Equal(content, content2) {
			t.Fatalf("re-encoded object: %+v %v", fi2, err)
		}
		if _, err := ContentChecksum(fi, bytes.NewReader(content)); err != nil {
			t.Fatalf("ContentChecksum: %v", err)
		}
	})
}

func fuzzDeflate(t *testing.T, b []byte) []byte { return otDeflate(t, b) }

func FuzzParseFileHeader(f *testing.F) {
	headers, _ := fuzzContentVectors(f)
	for _, h := range headers {
		fuzzAddVariants(f, h)
	}
	// The headers of the xattr vector's file.
	for _, b := range fuzzVectors(f, ".filez") {
		if fi, _, err := DecodeArchiveObject(b); err == nil {
			fuzzAddVariants(f, fi.FileHeader()[8:])
		}
	}
	f.Fuzz(func(t *testing.T, h []byte) {
		fi, err := ParseFileHeader(h)
		if err != nil {
			fuzzCheckErr(t, err)
			return
		}
		if err := fi.Validate(); err != nil {
			t.Fatalf("parsed header does not validate: %v", err)
		}
		again := fi.FileHeader()
		if binary.BigEndian.Uint32(again) != uint32(len(h)) || !bytes.Equal(again[4:8], []byte{0, 0, 0, 0}) || !bytes.Equal(again[8:], h) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, h)
		}
	})
}

func FuzzParseBareUserMeta(f *testing.F) {
	_, bareUser := fuzzContentVectors(f)
	for _, b := range bareUser {
		fuzzAddVariants(f, b)
	}
	for _, b := range fuzzVectors(f, ".dirmeta") {
		fuzzAddVariants(f, b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fi, err := ParseBareUserMeta(b)
		if err != nil {
			fuzzCheckErr(t, err)
			return
		}
		if again := fi.BareUserMeta(); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
	})
}

func FuzzDecodeXattrs(f *testing.F) {
	for _, b := range fuzzVectors(f, ".dirmeta") {
		fuzzAddVariants(f, b[12:])
	}
	for _, b := range fuzzVectors(f, ".filez") {
		if fi, _, err := DecodeArchiveObject(b); err == nil && len(fi.Xattrs) > 0 {
			fuzzAddVariants(f, EncodeXattrs(fi.Xattrs))
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := DecodeXattrs(b)
		if err != nil {
			fuzzCheckErr(t, err)
			return
		}
		for i := 1; i < len(x); i++ {
			if x[i-1].Name >= x[i].Name {
				t.Fatalf("xattrs not sorted: %q", x)
			}
		}
		for _, a := range x {
			if a.Name == "" || strings.IndexByte(a.Name, 0) >= 0 {
				t.Fatalf("bad xattr name %q", a.Name)
			}
		}
		if again := EncodeXattrs(x); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
	})
}
