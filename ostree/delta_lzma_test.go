package ostree

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"testing"
)

func lzmaTestInputs(t testing.TB) map[string][]byte {
	rnd := make([]byte, 300000)
	rand.Read(rnd)
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789\n"), 60000)
	mixed := append(append(append([]byte(nil), text[:100000]...), rnd[:50000]...), text[:200000]...)
	in := map[string][]byte{
		"one":    {42},
		"short":  []byte("abcabcabcabc"),
		"zeros":  make([]byte, 5<<20),
		"random": rnd,
		"text":   text,
		"mixed":  mixed,
	}
	if b, err := os.ReadFile("/usr/bin/ostree"); err == nil {
		in["binary"] = b
	}
	if b, err := os.ReadFile("/usr/lib/x86_64-linux-gnu/libc.so.6"); err == nil {
		in["libc"] = b
	}
	return in
}

func TestXZFastRoundTrip(t *testing.T) {
	for name, data := range lzmaTestInputs(t) {
		file := append([]byte{deltaCompXZ}, xzFast(data)...)
		out, err := decompressDeltaPart(region{mem: file, n: int64(len(file))}, t.TempDir())
		if err != nil {
			t.Fatalf("%s: ulikunitz/xz: %v", name, err)
		}
		got, _ := out.region().bytes(1 << 30)
		out.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: ulikunitz/xz round trip differs (%d vs %d bytes)", name, len(got), len(data))
		}
		var fast bytes.Buffer
		if err := xzDecodeFast(bytes.NewReader(file[1:]), &fast); err != nil || !bytes.Equal(fast.Bytes(), data) {
			t.Fatalf("%s: xzDecodeFast: %v", name, err)
		}
		if x, err := exec.LookPath("xz"); err == nil {
			// xz -9e output (liblzma's best) decodes with the fast decoder.
			cmd := exec.Command(x, "-9e", "-c")
			cmd.Stdin = bytes.NewReader(data)
			ref, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			fast.Reset()
			if err := xzDecodeFast(bytes.NewReader(ref), &fast); err != nil || !bytes.Equal(fast.Bytes(), data) {
				t.Fatalf("%s: xzDecodeFast of xz -9e output: %v", name, err)
			}
			cmd = exec.Command(x, "-dc")
			cmd.Stdin = bytes.NewReader(file[1:])
			got, err := cmd.Output()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: xz -dc: %v", name, err)
			}
		}
		t.Logf("%s: %d -> %d", name, len(data), len(file)-1)
	}
}

func BenchmarkXZFast(b *testing.B) {
	data := lzmaTestInputs(b)["libc"]
	if data == nil {
		b.Skip("no libc")
	}
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		xzFast(data)
	}
}

func TestXZDictSize(t *testing.T) {
	for dir, files := range loadDeltaVectors(t) {
		if n, ok := xzDictSize(files["0"][1:]); !ok || n != 32<<20 {
			t.Errorf("%s: ostree's part: %d %v, want 32 MiB", dir, n, ok)
		}
	}
	if n, ok := xzDictSize(xzFast([]byte("abc"))); !ok || n != lzWindow {
		t.Errorf("xzFast: %d %v", n, ok)
	}
	if n, ok := xzDictSize(xzStored([]byte("abc"))); !ok || n != 4096 {
		t.Errorf("xzStored: %d %v", n, ok)
	}
	if _, ok := xzDictSize([]byte("not xz at all, not xz at all")); ok {
		t.Error("garbage accepted")
	}
}

// TestXZDecodeSmallDictionary: streams much longer than their dictionary
// (the ring wraps many times, matches and uncompressed chunks cross its
// end) decode exactly, and several blocks reuse one ring.
func TestXZDecodeSmallDictionary(t *testing.T) {
	x, err := exec.LookPath("xz")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("xz not found")
		}
		t.Skip("xz not found")
	}
	in := lzmaTestInputs(t)
	for name, data := range in {
		for _, args := range [][]string{
			{"--lzma2=preset=6,dict=4KiB"},
			{"--lzma2=preset=9e,dict=64KiB"},
			{"--lzma2=preset=1,dict=64KiB", "--block-size=100000"},
		} {
			cmd := exec.Command(x, append(append([]string{}, args...), "-c", "--check=crc64")...)
			cmd.Stdin = bytes.NewReader(data)
			stream, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := xzDecodeFast(bytes.NewReader(stream), &got); err != nil {
				t.Fatalf("%s %v: %v", name, args, err)
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("%s %v: decoded %d bytes that differ from the %d input bytes", name, args, got.Len(), len(data))
			}
		}
	}
}

// BenchmarkXZDecodeFast decodes liblzma's output for libc (xz -8: 32 MiB
// dictionary, as ostree's parts).
func BenchmarkXZDecodeFast(b *testing.B) {
	data := lzmaTestInputs(b)["libc"]
	x, err := exec.LookPath("xz")
	if data == nil || err != nil {
		b.Skip("no libc or no xz")
	}
	cmd := exec.Command(x, "-8", "-c")
	cmd.Stdin = bytes.NewReader(data)
	stream, err := cmd.Output()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if err := xzDecodeFast(bytes.NewReader(stream), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// TestXZReadBackWindow decodes into a spill buffer (which can be read
// back) with a ring far smaller than the dictionary, so matches and
// matched literals reach beyond the ring and are read back from what was
// already written: the output must be the same. Streams from gostree's
// encoder (1 MiB dictionary) and, when xz is installed, from liblzma with
// a 64 MiB dictionary (xz -9e, as ostree's parts use big ones).
func TestXZReadBackWindow(t *testing.T) {
	streams := map[string][2][]byte{}
	x, _ := exec.LookPath("xz")
	for name, data := range lzmaTestInputs(t) {
		streams[name+"/gostree"] = [2][]byte{data, xzFast(data)}
		if x != "" && len(data) > 1<<20 {
			cmd := exec.Command(x, "-9e", "-c")
			cmd.Stdin = bytes.NewReader(data)
			ref, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			streams[name+"/xz-9e"] = [2][]byte{data, ref}
		}
	}
	for _, ring := range []int{4096, 64 << 10, xzRingCap} {
		readsBack := 0
		for name, s := range streams {
			// A small spill limit moves the output to a file early, so reads
			// back come from memory and from the file.
			out := &countingSpill{spill: &spill{dir: t.TempDir(), limit: 8 << 10}}
			if err := xzDecodeRing(bytes.NewReader(s[1]), out, ring); err != nil {
				t.Fatalf("ring %d, %s: %v", ring, name, err)
			}
			got, err := out.region().bytes(1 << 30)
			out.Close()
			if err != nil || !bytes.Equal(got, s[0]) {
				t.Fatalf("ring %d, %s: output differs (%d vs %d bytes, %v)", ring, name, len(got), len(s[0]), err)
			}
			readsBack += out.reads
		}
		if ring == 4096 && readsBack == 0 {
			t.Fatal("no match reached beyond a 4 KiB ring: the test does not test reading back")
		}
	}
}

type countingSpill struct {
	*spill
	reads int
}

func (c *countingSpill) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	return c.spill.ReadAt(p, off)
}

// TestXZReadBackBudget: a part with a 32 MiB dictionary decoded into a
// spill buffer takes only the ring and the read-back cache of the budget.
func TestXZReadBackBudget(t *testing.T) {
	head := []byte("\xFD7zXZ\x00\x00\x04\xE6\xD6\xB4\x46" + "\x02\x00\x21\x01\x1A\x00\x00\x00\x00\x00\x00\x00")
	if d, ok := xzDictSize(head); !ok || d != 32<<20 {
		t.Fatalf("dictionary size of the test header: %d %v", d, ok)
	}
	if n := xzDecodeBudget(head, 64<<20); n != int64(xzRingCap)+2*farBlockSize {
		t.Fatalf("budget for a 32 MiB dictionary: %d", n)
	}
}
