package ostree

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"testing"

	"github.com/ulikunitz/xz"
)

// FuzzParseStaticDelta: the superblock parser never panics, and whatever
// it accepts re-encodes to the same bytes.
func FuzzParseStaticDelta(f *testing.F) {
	for _, files := range loadDeltaVectors(f) {
		f.Add(files["superblock"])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseStaticDelta(b)
		if err != nil {
			return
		}
		if d.ByteSwapped || len(d.Metadata) == 0 {
			return // Encode always writes little-endian with the endianness key
		}
		if _, ok := d.Metadata.Lookup(deltaMetaEndianKey); !ok {
			return
		}
		again, err := d.Encode()
		if err != nil {
			t.Fatalf("accepted superblock does not re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoded superblock differs")
		}
	})
}

// FuzzDeltaPayload: a part payload (decompressed) is parsed and its opcodes
// executed into a transaction that is then aborted; nothing panics, and
// nothing is left in the repository.
func FuzzDeltaPayload(f *testing.F) {
	for _, files := range loadDeltaVectors(f) {
		f.Add(files["payload0"])
	}
	repo := vectorArchiveRepo(f, "0f5de29d", "4565f34a", "42d0ef1a", "3d333048")
	vec := loadDeltaVectors(f)
	var objs [][]ObjectName
	for dir, files := range vec {
		d, err := ParseStaticDelta(files["superblock"])
		if err != nil {
			f.Fatalf("%s: %v", dir, err)
		}
		objs = append(objs, d.Parts[0].Objects)
	}
	before := countObjects(f, repo)
	f.Fuzz(func(t *testing.T, payload []byte) {
		pl, err := parseDeltaPayload(region{mem: payload, n: int64(len(payload))})
		if err != nil {
			return
		}
		for _, o := range objs {
			tx, err := repo.Begin(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			x := &deltaExec{ctx: context.Background(), t: tx, p: pl, objs: o}
			x.run()
			tx.Abort()
		}
		if n := countObjects(t, repo); n != before {
			t.Fatalf("objects/ changed: %d → %d", before, n)
		}
	})
}

// FuzzBspatch: the patch decoder never panics or writes more than asked.
func FuzzBspatch(f *testing.F) {
	patch, _ := hex.DecodeString("0b00000000000000" + "0400000000000000" + "0000000000000000" + "0000000000000000000000" + "2076320a")
	f.Add([]byte("hello world\n"), patch, uint16(15))
	f.Add([]byte("abc"), []byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, old, patch []byte, newSize uint16) {
		var out bytes.Buffer
		err := bspatch(bytes.NewReader(old), int64(len(old)), bytes.NewReader(patch), int64(newSize), &out)
		if out.Len() > int(newSize) {
			t.Fatalf("wrote %d bytes, asked for %d", out.Len(), newSize)
		}
		if err == nil && out.Len() != int(newSize) {
			t.Fatalf("succeeded with %d of %d bytes", out.Len(), newSize)
		}
	})
}

// FuzzXZFast: whatever the input, the fast LZMA2 encoder's output
// decompresses to it, with ulikunitz/xz and with the fast decoder.
func FuzzXZFast(f *testing.F) {
	f.Add([]byte("hello world hello world hello world\n"))
	f.Add(bytes.Repeat([]byte{0}, 70000))
	for _, files := range loadDeltaVectors(f) {
		f.Add(files["payload0"])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		stream := xzFast(data)
		zr, err := xz.NewReader(bytes.NewReader(stream))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip through ulikunitz/xz differs (%v)", err)
		}
		var fast bytes.Buffer
		if err := xzDecodeFast(bytes.NewReader(stream), &fast); err != nil || !bytes.Equal(fast.Bytes(), data) {
			t.Fatalf("round trip through xzDecodeFast differs (%v)", err)
		}
	})
}

// FuzzXZDecodeFast: the fast decoder never panics on arbitrary streams and
// agrees with ulikunitz/xz whenever both accept one.
func FuzzXZDecodeFast(f *testing.F) {
	for _, files := range loadDeltaVectors(f) {
		f.Add(files["0"][1:])
	}
	f.Add(xzFast([]byte("hello hello hello hello")))
	f.Add(xzStored([]byte("stored")))
	f.Fuzz(func(t *testing.T, stream []byte) {
		var fast bytes.Buffer
		ferr := xzDecodeFast(bytes.NewReader(stream), &fast)
		zr, err := xz.NewReader(bytes.NewReader(stream))
		if err != nil {
			return
		}
		want, err := io.ReadAll(io.LimitReader(zr, 64<<20))
		if err == nil && ferr == nil && !bytes.Equal(fast.Bytes(), want) {
			t.Fatalf("decoders disagree")
		}
		// With a 4 KiB ring, reading further back from its own output,
		// the decoder accepts exactly what it accepts with a full ring
		// and writes the same bytes.
		small := &spill{dir: t.TempDir(), limit: 4 << 10}
		defer small.Close()
		serr := xzDecodeRing(bytes.NewReader(stream), small, 4096)
		if (serr == nil) != (ferr == nil) {
			t.Fatalf("read-back ring: error %v, full ring: error %v", serr, ferr)
		}
		if serr == nil {
			got, err := small.region().bytes(1 << 30)
			if err != nil || !bytes.Equal(got, fast.Bytes()) {
				t.Fatalf("read-back ring: output differs (%v)", err)
			}
		}
	})
}
