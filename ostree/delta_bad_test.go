package ostree

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gostree/gostree/ostree/gvariant"
)

// craftDelta builds the files of a delta from→B (the vector commit)
// B whose single part has the given objects, tables, blob and opcodes.
func craftDelta(t *testing.T, from Checksum, objs []ObjectName, modes []deltaMode, blob, ops []byte) (map[string][]byte, *StaticDelta) {
	t.Helper()
	b := mustChecksum(t, vecB)
	src := vectorArchiveRepo(t)
	commit, err := src.ReadMetadataBytes(ObjectName{b, ObjCommit})
	if err != nil {
		t.Fatal(err)
	}
	payload := encodeDeltaPayload(modes, []Xattrs{nil}, blob, ops)
	part := append([]byte{deltaCompXZ}, xzStored(payload)...)
	d := &StaticDelta{From: from, To: b, Commit: commit, Timestamp: time.Unix(1577923200, 0),
		Parts: []DeltaPart{{Checksum: SumBytes(part), Size: uint64(len(part)), USize: uint64(len(blob)), Objects: objs}}}
	d.Metadata.Set(deltaMetaEndianKey, gvariant.NewVariant("y", uint8('l')))
	sb, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	dir := StaticDeltaDir(from, b)
	return map[string][]byte{dir + "/superblock": sb, dir + "/0": part}, d
}

func countObjects(t testing.TB, r *Repo) int {
	t.Helper()
	n := 0
	filepath.Walk(filepath.Join(r.Path(), "objects"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestDeltaBadInput(t *testing.T) {
	a, b := mustChecksum(t, vecA), mustChecksum(t, vecB)
	hello1 := mustChecksum(t, "81381808c56d4f3d643ec12f6a18fcf2993af8daba7c2a1b2cbfc315b39424c6") // "hello world\n"
	hello2 := mustChecksum(t, "42d0ef1a4aac00beec9280161ed992ead92fd7a95f4c53f17ed887f76e651f60") // "hello world v2\n"
	newTxt := mustChecksum(t, "3d33304840e9c61531ffccc875025a7ed2b1149c9c4fb327c555f67c56ad5e64") // "new\n"
	reg := []deltaMode{{0, 0, 0o100644}}
	file := func(c Checksum) []ObjectName { return []ObjectName{{c, ObjFile}} }
	patch, _ := hex.DecodeString("0b00000000000000" + "0400000000000000" + "0000000000000000" + "0000000000000000000000" + "2076320a")
	// A patch whose first block reads 40 bytes of the 12-byte old file.
	overread, _ := hex.DecodeString("2800000000000000" + "0000000000000000" + "0000000000000000")
	overread = append(overread, make([]byte, 40)...)
	srcBlob := func(tail []byte) []byte { return append(append([]byte(nil), hello1[:]...), tail...) }

	type tc struct {
		name  string
		files func(t *testing.T) map[string][]byte
		from  Checksum
		want  string
	}
	crafted := func(objs []ObjectName, modes []deltaMode, blob, ops []byte) func(t *testing.T) map[string][]byte {
		return func(t *testing.T) map[string][]byte {
			f, _ := craftDelta(t, Checksum{}, objs, modes, blob, ops)
			return f
		}
	}
	craftedFromA := func(objs []ObjectName, modes []deltaMode, blob, ops []byte) func(t *testing.T) map[string][]byte {
		return func(t *testing.T) map[string][]byte { f, _ := craftDelta(t, a, objs, modes, blob, ops); return f }
	}
	vectors := func(edit func(files map[string][]byte, dir string)) func(t *testing.T) map[string][]byte {
		return func(t *testing.T) map[string][]byte {
			files := vectorDeltaFiles(t)
			edit(files, StaticDeltaDir(a, b))
			return files
		}
	}
	cases := []tc{
		{"unknown opcode", crafted(file(newTxt), reg, []byte("new\n"), []byte{'Z'}), Checksum{}, "unknown opcode 0x5a"},
		{"mode index out of range", crafted(file(newTxt), reg, []byte("new\n"), []byte{'S', 5, 0, 4, 0}), Checksum{}, "mode index 5 out of range"},
		{"offset out of range", crafted(file(newTxt), reg, []byte("new\n"), []byte{'S', 0, 0, 4, 9}), Checksum{}, "invalid offset/length 9/4"},
		{"truncated varint", crafted(file(newTxt), reg, []byte("new\n"), []byte{'S', 0, 0, 0x84}), Checksum{}, "unexpected end of opcode stream"},
		{"wrong content", crafted(file(newTxt), reg, []byte("old\n"), []byte{'S', 0, 0, 4, 0}), Checksum{}, "corrupted file object"},
		{"more objects than listed", crafted(file(newTxt), reg, []byte("new\n"), []byte{'S', 0, 0, 4, 0, 'S', 0, 0, 4, 0}), Checksum{}, "more objects than the 1"},
		{"fewer objects than listed", crafted(append(file(newTxt), file(hello2)...), reg, []byte("new\n"), []byte{'S', 0, 0, 4, 0}), Checksum{}, "created 1 of the 2 objects"},
		{"close without open", crafted(file(newTxt), reg, nil, []byte{'c'}), Checksum{}, "close with no open object"},
		{"object left open", crafted(file(newTxt), reg, []byte("new\n"), []byte{'o', 0, 0, 4, 'w', 4, 0}), Checksum{}, "still open at the end"},
		{"write overruns object", crafted(file(newTxt), reg, []byte("new\nxx"), []byte{'o', 0, 0, 4, 'w', 6, 0}), Checksum{}, "overruns object"},
		{"bspatch without source", crafted(file(hello2), reg, patch, []byte{'o', 0, 0, 15, 'B', 0, byte(len(patch)), 'c'}), Checksum{}, "bspatch with no read source"},
		{"bspatch reads past old file", craftedFromA(file(hello2), reg, srcBlob(overread), []byte{'r', 0, 'o', 0, 0, 40, 'B', 32, byte(len(overread)), 'c', 'R'}), a, "reads 40 bytes at offset 0 of the old file, which has 12 bytes"},
		{"read source missing", crafted(file(hello2), reg, append(append([]byte(nil), hello2[:]...), patch...), []byte{'r', 0}), Checksum{}, "read source: object " + hello2.String() + ".file: not found"},
		{"wrong part checksum", vectors(func(files map[string][]byte, dir string) {
			d, _ := ParseStaticDelta(files[dir+"/superblock"])
			d.Parts[0].Checksum[0] ^= 1
			files[dir+"/superblock"], _ = d.Encode()
		}), a, "part checksum mismatch"},
		{"corrupted part", vectors(func(files map[string][]byte, dir string) {
			p := append([]byte(nil), files[dir+"/0"]...)
			p[100] ^= 0x40
			files[dir+"/0"] = p
		}), a, "part checksum mismatch"},
		{"truncated part", vectors(func(files map[string][]byte, dir string) {
			files[dir+"/0"] = files[dir+"/0"][:200]
		}), a, "part is 200 bytes, the superblock says 445"},
		{"truncated superblock", vectors(func(files map[string][]byte, dir string) {
			files[dir+"/superblock"] = files[dir+"/superblock"][:300]
		}), a, "superblock"},
		{"superblock of another delta", vectors(func(files map[string][]byte, dir string) {
			files[dir+"/superblock"] = files[StaticDeltaDir(Checksum{}, b)+"/superblock"]
		}), a, "describes the delta " + vecB + ", not " + vecA + "-" + vecB},
		{"missing part", vectors(func(files map[string][]byte, dir string) { delete(files, dir+"/0") }), a, "file does not exist"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "-"), func(t *testing.T) {
			files := c.files(t)
			dst := vectorArchiveRepo(t, "0f5de29d", "4565f34a", "42d0ef1a", "3d333048")
			os.RemoveAll(filepath.Join(dst.Path(), "refs", "heads", "main"))
			before := countObjects(t, dst)
			err := applyDelta(t, dst, c.from, b, mapFetch(files))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
			if after := countObjects(t, dst); after != before {
				t.Fatalf("objects/ went from %d to %d files after a failed apply", before, after)
			}
			ents, _ := os.ReadDir(filepath.Join(dst.Path(), "tmp"))
			for _, e := range ents {
				if e.Name() != "cache" {
					t.Fatalf("tmp/ holds %s after abort", e.Name())
				}
			}
		})
	}
}

func TestDeltaBadNames(t *testing.T) {
	for _, bad := range []string{"x", strings.Repeat("g", 64), strings.Repeat("a", 63) + "-" + strings.Repeat("b", 64), strings.Repeat("0", 64) + "-" + strings.Repeat("b", 64)} {
		if _, _, err := ParseStaticDeltaName(bad); err == nil || !strings.Contains(err.Error(), "invalid static delta name") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
