package ostree

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"io"
	"math/bits"
	"strings"
	"testing"

	"github.com/gostree/gostree/ostree/gvariant"
)

// Tests of validation: every malformed object must give an error wrapping
// ErrCorrupt whose message says what is wrong.

// otVector returns the vector object whose path starts with prefix.
func otVector(t testing.TB, prefix string) []byte {
	t.Helper()
	var objs []vectorObject
	objs = append(objs, loadVectorObjects(t, "objects-archive.txt")...)
	objs = append(objs, loadVectorObjects(t, "xattr-vector.txt")...)
	for _, o := range objs {
		if strings.HasPrefix(o.Path, prefix) {
			return append([]byte(nil), o.Data...)
		}
	}
	t.Fatalf("no vector object %s", prefix)
	return nil
}

// otCheckCorrupt fails unless err wraps ErrCorrupt and mentions every want.
func otCheckCorrupt(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", wants)
	}
	t.Log(err)
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("error %q does not wrap ErrCorrupt", err)
	}
	for _, w := range wants {
		if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(w)) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func otSum(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func otChecksum(b byte) Checksum {
	var c Checksum
	copy(c[:], otSum(b))
	return c
}

// ---------------------------------------------------------------------------
// dirtree

func TestDirTreeValidation(t *testing.T) {
	good := &DirTree{
		Files: []TreeFile{{"B", otChecksum(1)}, {"a", otChecksum(2)}},
		Dirs:  []TreeDir{{"c", otChecksum(3), otChecksum(4)}},
	}
	if _, err := DecodeDirTree(good.Encode()); err != nil {
		t.Fatalf("valid dirtree: %v", err)
	}
	file := func(names ...string) []TreeFile {
		var out []TreeFile
		for i, n := range names {
			out = append(out, TreeFile{n, otChecksum(byte(i))})
		}
		return out
	}
	dir := func(names ...string) []TreeDir {
		var out []TreeDir
		for i, n := range names {
			out = append(out, TreeDir{n, otChecksum(byte(i)), otChecksum(9)})
		}
		return out
	}
	cases := []struct {
		name  string
		tree  DirTree
		wants []string
	}{
		{"empty file name", DirTree{Files: file("")}, []string{"empty filename"}},
		{"empty dir name", DirTree{Dirs: dir("")}, []string{"empty filename"}},
		{"file .", DirTree{Files: file(".")}, []string{"self-referential"}},
		{"dir .", DirTree{Dirs: dir(".")}, []string{"self-referential"}},
		{"file ..", DirTree{Files: file("..")}, []string{"uplink"}},
		{"dir ..", DirTree{Dirs: dir("..")}, []string{"uplink"}},
		{"file a/b", DirTree{Files: file("a/b")}, []string{"invalid /", "a/b"}},
		{"dir a/b", DirTree{Dirs: dir("a/b")}, []string{"invalid /"}},
		{"file ../afile", DirTree{Files: file("../afile")}, []string{"invalid /", "../afile"}},
		{"dir /abs", DirTree{Dirs: dir("/abs")}, []string{"invalid /"}},
		{"file trailing /", DirTree{Files: file("x/")}, []string{"invalid /"}},
		{"files unsorted", DirTree{Files: file("b", "a")}, []string{"not sorted", `"a"`}},
		{"files unsorted by case", DirTree{Files: file("a", "B")}, []string{"not sorted"}},
		{"files duplicated", DirTree{Files: file("a", "a")}, []string{"duplicated", `"a"`}},
		{"dirs unsorted", DirTree{Dirs: dir("y", "x")}, []string{"directories not sorted", `"x"`}},
		{"dirs duplicated", DirTree{Dirs: dir("x", "x")}, []string{"duplicated", `"x"`}},
		{"file and dir", DirTree{Files: file("a", "same"), Dirs: dir("same", "z")}, []string{"both a file and a directory", "same"}},
		{"file and dir later", DirTree{Files: file("a", "b", "q"), Dirs: dir("c", "q")}, []string{"both a file and a directory", `"q"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.tree.Validate(); err == nil {
				t.Errorf("Validate accepted it")
			}
			_, err := DecodeDirTree(tc.tree.Encode())
			otCheckCorrupt(t, err, append([]string{"dirtree"}, tc.wants...)...)
		})
	}
}

func TestDirTreeBadBytes(t *testing.T) {
	deeper := otVector(t, "objects/14/b99b25") // files "B", "a"
	if _, err := DecodeDirTree(deeper); err != nil {
		t.Fatal(err)
	}
	mut := func(i int, v byte) []byte {
		b := append([]byte(nil), deeper...)
		b[i] = v
		return b
	}
	raw := func(files, dirs []any) []byte {
		b, err := gvariant.Marshal(typeDirTree, []any{files, dirs})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name  string
		data  []byte
		wants []string
	}{
		{"non-UTF-8 name", mut(0, 0xff), []string{"dirtree", "UTF-8"}},
		{"name with NUL", mut(0, 0), []string{"dirtree", "NUL"}},
		{"unsorted (B after a)", mut(0, 'b'), []string{"dirtree", "not sorted", `"a"`}},
		{"duplicate", mut(0, 'a'), []string{"dirtree", "duplicated", `"a"`}},
		{"name /", mut(0, '/'), []string{"dirtree", "invalid /"}},
		{"name .", mut(0, '.'), []string{"dirtree", "self-referential"}},
		{"31-byte file checksum", raw([]any{[]any{"f", otSum(1)[:31]}}, []any{}), []string{"dirtree", `file "f"`, "length 31", "expected 32"}},
		{"33-byte file checksum", raw([]any{[]any{"f", append(otSum(1), 0)}}, []any{}), []string{"length 33"}},
		{"empty file checksum", raw([]any{[]any{"f", []byte{}}}, []any{}), []string{"length 0"}},
		{"31-byte dirtree checksum", raw([]any{}, []any{[]any{"d", otSum(1)[:31], otSum(2)}}), []string{"dirtree", `directory "d"`, "length 31"}},
		{"31-byte dirmeta checksum", raw([]any{}, []any{[]any{"d", otSum(1), otSum(2)[:31]}}), []string{"dirtree", `directory "d"`, "length 31"}},
		{"truncated", deeper[:40], []string{"dirtree", "not normal form"}},
		{"trailing byte", append(append([]byte(nil), deeper...), 0), []string{"dirtree", "not normal form"}},
		{"empty", nil, []string{"dirtree", "not normal form"}},
		{"wrong framing offset", mut(72, 0x47), []string{"dirtree", "not normal form"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeDirTree(tc.data)
			otCheckCorrupt(t, err, tc.wants...)
		})
	}
}

func TestValidateFilename(t *testing.T) {
	for _, ok := range []string{"a", "B", "...", ".a", "a..", "with space", "ünïcode", "-", strings.Repeat("x", 255)} {
		if err := ValidateFilename(ok); err != nil {
			t.Errorf("ValidateFilename(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "/", "../afile", "\xff", "a\x00b"} {
		if err := ValidateFilename(bad); err == nil {
			t.Errorf("ValidateFilename(%q) accepted it", bad)
		}
	}
}

// ---------------------------------------------------------------------------
// dirmeta

func TestDirMetaValidation(t *testing.T) {
	base := otVector(t, "objects/44/6a0ef1")
	if m, err := DecodeDirMeta(base); err != nil || m.Mode != 0o40755 {
		t.Fatalf("valid dirmeta: %+v, %v", m, err)
	}
	raw := func(uid, gid, mode uint32, xattrs []any) []byte {
		return gvariant.MustMarshal(typeDirMeta, []any{uid, gid, mode, xattrs})
	}
	xa := func(names ...string) []any {
		out := []any{}
		for _, n := range names {
			out = append(out, []any{[]byte(n), []byte("v")})
		}
		return out
	}
	be := bits.ReverseBytes32
	cases := []struct {
		name  string
		data  []byte
		wants []string
	}{
		{"mode 0100644", (&DirMeta{Mode: 0o100644}).Encode(), []string{"invalid directory mode 0100644", "not a directory"}},
		{"mode 0120777", (&DirMeta{Mode: 0o120777}).Encode(), []string{"not a directory"}},
		{"mode 0", (&DirMeta{Mode: 0}).Encode(), []string{"not a directory"}},
		{"mode 0755 without type", (&DirMeta{Mode: 0o755}).Encode(), []string{"not a directory"}},
		{"mode with bit 01000000", (&DirMeta{Mode: 0o1040755}).Encode(), []string{"invalid mode 01040755", "invalid bits"}},
		{"mode with high bit", (&DirMeta{Mode: 0x80000000 | 0o40755}).Encode(), []string{"invalid bits"}},
		{"little-endian mode", raw(0, 0, 0o40755, xa()), []string{"invalid directory mode", "not a directory"}},
		{"little-endian mode 0100644", raw(0, 0, 0o100644, xa()), []string{"not a directory"}},
		{"xattrs unsorted", raw(0, 0, be(0o40755), xa("user.b\x00", "user.a\x00")), []string{"xattrs not sorted", "user.a"}},
		{"xattrs duplicated", raw(0, 0, be(0o40755), xa("user.a\x00", "user.a\x00")), []string{"duplicated", "user.a"}},
		{"xattr name without NUL", raw(0, 0, be(0o40755), xa("user.a")), []string{"invalid xattr name"}},
		{"xattr name empty", raw(0, 0, be(0o40755), xa("\x00")), []string{"invalid xattr name"}},
		{"xattr name zero bytes", raw(0, 0, be(0o40755), xa("")), []string{"invalid xattr name"}},
		{"xattr name embedded NUL", raw(0, 0, be(0o40755), xa("user\x00a\x00")), []string{"invalid xattr name"}},
		{"truncated", base[:11], []string{"dirmeta", "not normal form"}},
		{"empty", nil, []string{"dirmeta", "not normal form"}},
		{"trailing byte", append(append([]byte(nil), base...), 1), []string{"dirmeta", "not normal form"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeDirMeta(tc.data)
			otCheckCorrupt(t, err, tc.wants...)
		})
	}
	for _, m := range []DirMeta{{Mode: 0o100644}, {Mode: 0o1040755}} {
		if err := m.Validate(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Validate(%o) = %v", m.Mode, err)
		}
	}
	// The mode bits ostree allows on directories.
	for _, mode := range []uint32{0o40000, 0o40755, 0o47777, 0o41777} {
		if _, err := DecodeDirMeta((&DirMeta{Mode: mode}).Encode()); err != nil {
			t.Errorf("mode 0%o: %v", mode, err)
		}
	}
}

// ---------------------------------------------------------------------------
// commit

func TestCommitValidation(t *testing.T) {
	commitB := otVector(t, "objects/0f/5de29d")
	if c, err := DecodeCommit(commitB); err != nil || c.Version() != "2.0" || !c.HasParent() {
		t.Fatalf("commit B: %+v, %v", c, err)
	}
	// raw builds a commit with the gvariant package directly.
	raw := func(meta []any, parent []byte, tree, dirmeta []byte) []byte {
		b, err := gvariant.Marshal(typeCommit, []any{meta, parent, []any{}, "s", "b", uint64(0), tree, dirmeta})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := DecodeCommit(raw([]any{}, otSum(1), otSum(2), otSum(3))); err != nil {
		t.Fatalf("valid raw commit: %v", err)
	}
	emptyKey := []any{gvariant.DictEntry{Key: "", Value: gvariant.NewVariant("s", "x")}}
	laterEmptyKey := []any{
		gvariant.DictEntry{Key: "version", Value: gvariant.NewVariant("s", "1")},
		gvariant.DictEntry{Key: "", Value: gvariant.NewVariant("b", true)}}
	cases := []struct {
		name  string
		data  []byte
		wants []string
	}{
		{"empty metadata key", raw(emptyKey, nil, otSum(2), otSum(3)), []string{"commit", "empty metadata key"}},
		{"second metadata key empty", raw(laterEmptyKey, nil, otSum(2), otSum(3)), []string{"empty metadata key"}},
		{"3-byte parent", raw([]any{}, []byte{1, 2, 3}, otSum(2), otSum(3)), []string{"commit parent", "length 3", "expected 32"}},
		{"31-byte parent", raw([]any{}, otSum(1)[:31], otSum(2), otSum(3)), []string{"commit parent", "length 31"}},
		{"33-byte parent", raw([]any{}, append(otSum(1), 1), otSum(2), otSum(3)), []string{"commit parent", "length 33"}},
		{"all-zero parent", raw([]any{}, make([]byte, 32), otSum(2), otSum(3)), []string{"commit parent is all zeros"}},
		{"16-byte root tree", raw([]any{}, nil, otSum(2)[:16], otSum(3)), []string{"root dirtree", "length 16"}},
		{"empty root tree", raw([]any{}, nil, nil, otSum(3)), []string{"root dirtree", "length 0"}},
		{"16-byte root dirmeta", raw([]any{}, nil, otSum(2), otSum(3)[:16]), []string{"root dirmeta", "length 16"}},
		{"empty root dirmeta", raw([]any{}, nil, otSum(2), nil), []string{"root dirmeta", "length 0"}},
		{"truncated by one byte", commitB[:len(commitB)-1], []string{"commit", "not normal form"}},
		{"truncated to half", commitB[:len(commitB)/2], []string{"commit", "not normal form"}},
		{"truncated to nothing", nil, []string{"commit", "not normal form"}},
		{"trailing byte", append(append([]byte(nil), commitB...), 0), []string{"commit", "not normal form"}},
		{"bad framing offset", otMut(commitB, len(commitB)-1, 0xff), []string{"commit", "not normal form"}},
		{"bad variant type in metadata", otReplace(t, commitB, "\x00s", "\x00z"), []string{"commit", "variant type string"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeCommit(tc.data)
			otCheckCorrupt(t, err, tc.wants...)
		})
	}

	// Encode refuses an empty key too.
	c := &Commit{RootTree: otChecksum(1), RootMeta: otChecksum(2)}
	c.Metadata.Set("", gvariant.NewVariant("s", "x"))
	if _, err := c.Encode(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Encode with an empty key: %v", err)
	}
}

func otMut(b []byte, i int, v byte) []byte {
	c := append([]byte(nil), b...)
	c[i] = v
	return c
}

func otReplace(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if bytes.Count(b, []byte(old)) != 1 {
		t.Fatalf("%q occurs %d times", old, bytes.Count(b, []byte(old)))
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

func TestMetadataAndXattrsBadInput(t *testing.T) {
	for _, b := range [][]byte{{0}, {0xff}, []byte("k\x00"), []byte("a\x00\x00\x00\x00\x00\x00\x00\x01\x00z\x02\x0d")} {
		_, err := DecodeMetadata(b)
		otCheckCorrupt(t, err, "a{sv}", "not normal form")
	}
	for _, b := range [][]byte{{0}, {1, 2, 3}} {
		_, err := DecodeXattrs(b)
		otCheckCorrupt(t, err, "xattrs", "not normal form")
	}
	xa := func(names ...string) []byte {
		var out []any
		for _, n := range names {
			out = append(out, []any{[]byte(n), []byte{}})
		}
		return gvariant.MustMarshal(typeXattrs, out)
	}
	for _, tc := range []struct {
		data []byte
		want string
	}{
		{xa("b\x00", "a\x00"), "not sorted"},
		{xa("a\x00", "a\x00"), "duplicated"},
		{xa("a"), "invalid xattr name"},
		{xa("\x00"), "invalid xattr name"},
		{xa("a\x00b\x00"), "invalid xattr name"},
	} {
		_, err := DecodeXattrs(tc.data)
		otCheckCorrupt(t, err, tc.want)
	}
	if x, err := DecodeXattrs(xa("a\x00", "b\x00")); err != nil || len(x) != 2 || x[0].Name != "a" {
		t.Errorf("valid xattrs: %v, %v", x, err)
	}
}

// ---------------------------------------------------------------------------
// content objects (.filez, file headers, user.ostreemeta)

// otDeflate compresses b as raw DEFLATE.
func otDeflate(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, 6)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// otArchiveHeader frames an archive header built field by field, with the
// big-endian swaps ostree applies.
func otArchiveHeader(size uint64, uid, gid, mode, rdev uint32, target string, xattrs []any) []byte {
	be := bits.ReverseBytes32
	return frameHeader(gvariant.MustMarshal(typeArchiveHeader, []any{
		bits.ReverseBytes64(size), be(uid), be(gid), be(mode), be(rdev), target, xattrs}))
}

func otCat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// plainReader hides io.ByteReader and other optional interfaces.
type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

func TestArchiveObjectValidation(t *testing.T) {
	hello := otVector(t, "objects/81/381808") // "hello world\n", 0100644
	fi, content, err := DecodeArchiveObject(hello)
	if err != nil || string(content) != "hello world\n" {
		t.Fatalf("hello.txt: %v", err)
	}
	hdrLen := 8 + int(binary.BigEndian.Uint32(hello))
	header, deflated := hello[:hdrLen], hello[hdrLen:]
	text := []byte("hello world\n")
	var zl bytes.Buffer
	zw := zlib.NewWriter(&zl)
	zw.Write(text)
	zw.Close()
	withPrefix := func(n uint32) []byte {
		b := append([]byte(nil), hello...)
		binary.BigEndian.PutUint32(b, n)
		return b
	}
	reg := func(size uint64) []byte { return otArchiveHeader(size, 0, 0, 0o100644, 0, "", []any{}) }
	cases := []struct {
		name  string
		data  []byte
		wants []string
	}{
		{"rdev 1", otCat(otArchiveHeader(12, 0, 0, 0o100644, 1, "", []any{}), deflated), []string{"invalid rdev 1"}},
		{"mode S_IFCHR", otCat(otArchiveHeader(12, 0, 0, 0o20644, 0, "", []any{}), deflated), []string{"invalid mode 020644", "regular files or symlinks"}},
		{"mode directory", otCat(otArchiveHeader(0, 0, 0, 0o40755, 0, "", []any{}), otDeflate(t, nil)), []string{"invalid mode 040755"}},
		{"mode 0", otCat(otArchiveHeader(0, 0, 0, 0, 0, "", []any{}), otDeflate(t, nil)), []string{"invalid mode 0"}},
		{"mode with stray bits", otCat(otArchiveHeader(12, 0, 0, 0o1100644, 0, "", []any{}), deflated), []string{"invalid bits"}},
		{"little-endian mode", otCat(frameHeader(gvariant.MustMarshal(typeArchiveHeader, []any{
			bits.ReverseBytes64(12), uint32(0), uint32(0), uint32(0o100644), uint32(0), "", []any{}})), deflated), []string{"invalid mode"}},
		{"header length 0", withPrefix(0), []string{"file header size is zero"}},
		{"header length larger than the file", withPrefix(0xffff), []string{"file header size 65535 exceeds size 48"}},
		{"header length 2^32-1", withPrefix(0xffffffff), []string{"exceeds size"}},
		{"header length too small", withPrefix(25), []string{"archive file header", "not normal form"}},
		{"header length too large by one", withPrefix(27), []string{"archive file header", "not normal form"}},
		{"truncated in the length prefix", hello[:3], []string{"file header truncated"}},
		{"truncated in the header", hello[:20], []string{"exceeds size"}},
		{"empty file", nil, []string{"file header truncated"}},
		{"truncated deflate", hello[:len(hello)-2], []string{"compressed content", "unexpected EOF"}},
		{"truncated deflate to one byte", hello[:hdrLen+1], []string{"unexpected EOF"}},
		{"no deflate data for an empty file", reg(0), []string{"compressed content", "unexpected EOF"}},
		{"no deflate data", header, []string{"unexpected EOF"}},
		{"zlib-wrapped deflate", otCat(header, zl.Bytes()), []string{"compressed content", "corrupt input"}},
		{"gzip-like garbage", otCat(header, []byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0}), []string{"compressed content"}},
		{"size field larger than content", otCat(reg(100), deflated), []string{"unexpected EOF with 88 bytes remaining"}},
		{"size field one larger", otCat(reg(13), deflated), []string{"unexpected EOF with 1 bytes remaining"}},
		{"size field smaller than content", otCat(reg(5), deflated), []string{"longer than the header's size"}},
		{"size field 0 with content", otCat(reg(0), deflated), []string{"longer than the header's size"}},
		{"size out of range", otCat(reg(1<<63), deflated), []string{"size", "out of range"}},
		{"trailing garbage", otCat(hello, []byte("junk")), []string{"4 trailing bytes"}},
		{"trailing zero byte", otCat(hello, []byte{0}), []string{"1 trailing bytes"}},
		{"second deflate stream", otCat(hello, otDeflate(t, nil)), []string{"trailing bytes"}},
		{"symlink with content", otCat(otArchiveHeader(0, 0, 0, 0o120777, 0, "hello.txt", []any{}), deflated), []string{"symlink object has content"}},
		{"symlink with size", otCat(otArchiveHeader(12, 0, 0, 0o120777, 0, "hello.txt", []any{})), []string{"symlink with content"}},
		{"symlink without target", otCat(otArchiveHeader(0, 0, 0, 0o120777, 0, "", []any{})), []string{"symlink with an empty target"}},
		{"regular file with target", otCat(otArchiveHeader(12, 0, 0, 0o100644, 0, "x", []any{}), deflated), []string{"regular file with a symlink target"}},
		{"xattrs unsorted", otCat(otArchiveHeader(12, 0, 0, 0o100644, 0, "", []any{
			[]any{[]byte("user.b\x00"), []byte("2")}, []any{[]byte("user.a\x00"), []byte("1")}}), deflated), []string{"xattrs not sorted"}},
		{"xattr name without NUL", otCat(otArchiveHeader(12, 0, 0, 0o100644, 0, "", []any{
			[]any{[]byte("user.b"), []byte("2")}}), deflated), []string{"invalid xattr name"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fi, content, err := DecodeArchiveObject(tc.data)
			if err == nil {
				t.Fatalf("accepted: %+v, %q", fi, content)
			}
			otCheckCorrupt(t, err, tc.wants...)

			// The streaming reader, on a source without io.ByteReader and
			// of unknown size, must refuse it too.
			fi, r, err := OpenArchiveStream(plainReader{bytes.NewReader(tc.data)}, -1)
			if err == nil {
				_, err = io.ReadAll(r)
			}
			if err == nil {
				t.Fatalf("OpenArchiveStream accepted it: %+v", fi)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("OpenArchiveStream: %v does not wrap ErrCorrupt", err)
			}
		})
	}

	// Sanity: the good object and its pieces, through every path.
	if fi.Size != 12 || !fi.IsRegular() || fi.Mode != 0o100644 {
		t.Errorf("hello.txt info %+v", fi)
	}
	readers := []func() io.Reader{
		func() io.Reader { return bytes.NewReader(hello) },
		func() io.Reader { return plainReader{bytes.NewReader(hello)} },
		func() io.Reader { return io.MultiReader(bytes.NewReader(hello[:10]), bytes.NewReader(hello[10:])) },
	}
	for i, newReader := range readers {
		for _, size := range []int64{-1, int64(len(hello))} {
			_, rd, err := OpenArchiveStream(newReader(), size)
			if err != nil {
				t.Fatalf("reader %d, size %d: %v", i, size, err)
			}
			got, err := io.ReadAll(rd)
			if err != nil || !bytes.Equal(got, text) {
				t.Errorf("reader %d, size %d: read %q, %v", i, size, got, err)
			}
		}
	}
	// Go's compressor gives different bytes than zlib but must be accepted.
	if _, c, err := DecodeArchiveObject(otCat(header, otDeflate(t, text))); err != nil || !bytes.Equal(c, text) {
		t.Errorf("Go-compressed object: %q, %v", c, err)
	}
	// An uncompressed (stored) deflate block is valid too.
	var stored bytes.Buffer
	sw, _ := flate.NewWriter(&stored, flate.NoCompression)
	sw.Write(text)
	sw.Close()
	if _, c, err := DecodeArchiveObject(otCat(header, stored.Bytes())); err != nil || !bytes.Equal(c, text) {
		t.Errorf("stored-block object: %q, %v", c, err)
	}
}

// TestArchiveStreamTrailingBytes checks that trailing garbage is found even
// when the source is not an io.ByteReader (the decompressor then reads
// ahead through its own buffer).
func TestArchiveStreamTrailingBytes(t *testing.T) {
	hello := otVector(t, "objects/81/381808")
	for _, n := range []int{1, 100, 5000} {
		data := otCat(hello, bytes.Repeat([]byte{'j'}, n))
		_, r, err := OpenArchiveStream(plainReader{bytes.NewReader(data)}, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(r)
		otCheckCorrupt(t, err, "trailing bytes")
	}
}

func TestFileHeaderValidation(t *testing.T) {
	be := bits.ReverseBytes32
	raw := func(mode, rdev uint32, target string, xattrs []any) []byte {
		return gvariant.MustMarshal(typeFileHeader, []any{uint32(0), uint32(0), be(mode), be(rdev), target, xattrs})
	}
	if fi, err := ParseFileHeader(raw(0o100644, 0, "", []any{})); err != nil || fi.Mode != 0o100644 {
		t.Fatalf("valid header: %+v, %v", fi, err)
	}
	if fi, err := ParseFileHeader(raw(0o120777, 0, "t", []any{})); err != nil || !fi.IsSymlink() || fi.SymlinkTarget != "t" {
		t.Fatalf("valid symlink header: %+v, %v", fi, err)
	}
	cases := []struct {
		name  string
		data  []byte
		wants []string
	}{
		{"rdev", raw(0o100644, 5, "", []any{}), []string{"invalid rdev 5"}},
		{"chardev", raw(0o20644, 0, "", []any{}), []string{"invalid mode 020644"}},
		{"fifo", raw(0o10644, 0, "", []any{}), []string{"invalid mode"}},
		{"socket", raw(0o140755, 0, "", []any{}), []string{"invalid mode"}},
		{"directory", raw(0o40755, 0, "", []any{}), []string{"invalid mode"}},
		{"stray bits", raw(0o2100644, 0, "", []any{}), []string{"invalid bits"}},
		{"symlink without target", raw(0o120777, 0, "", []any{}), []string{"empty target"}},
		{"file with target", raw(0o100644, 0, "x", []any{}), []string{"symlink target"}},
		{"bad xattr", raw(0o100644, 0, "", []any{[]any{[]byte("x"), []byte{}}}), []string{"invalid xattr name"}},
		{"truncated", raw(0o100644, 0, "", []any{})[:16], []string{"file header", "not normal form"}},
		{"archive header given", (&FileInfo{Mode: 0o100644, Size: 3}).ArchiveHeader()[8:], []string{"file header", "not normal form"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFileHeader(tc.data)
			otCheckCorrupt(t, err, tc.wants...)
		})
	}
}

func TestBareUserMetaBadInput(t *testing.T) {
	good := (&FileInfo{UID: 1000, GID: 1000, Mode: 0o100644}).BareUserMeta()
	if fi, err := ParseBareUserMeta(good); err != nil || fi.UID != 1000 || fi.Mode != 0o100644 {
		t.Fatalf("valid: %+v, %v", fi, err)
	}
	for _, b := range [][]byte{nil, good[:11], append(append([]byte(nil), good...), 1)} {
		_, err := ParseBareUserMeta(b)
		otCheckCorrupt(t, err, "user.ostreemeta", "not normal form")
	}
	bad := gvariant.MustMarshal(typeDirMeta, []any{uint32(0), uint32(0), uint32(0), []any{[]any{[]byte("b\x00"), []byte{}}, []any{[]byte("a\x00"), []byte{}}}})
	_, err := ParseBareUserMeta(bad)
	otCheckCorrupt(t, err, "xattrs not sorted")
}
