package ostree

import (
	"bytes"
	"context"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"github.com/gostree/gostree/ostree/gvariant"
)

// countingFetch counts the opens of each path.
func countingFetch(fetch DeltaFetchFunc) (DeltaFetchFunc, func(string) int) {
	var mu sync.Mutex
	opens := map[string]int{}
	return func(ctx context.Context, p string) (io.ReadCloser, error) {
			mu.Lock()
			opens[p]++
			mu.Unlock()
			return fetch(ctx, p)
		}, func(p string) int {
			mu.Lock()
			defer mu.Unlock()
			return opens[p]
		}
}

// TestDeltaPartStreamed: a part is fetched once and applied from the
// stream; a part the fast decoder does not support (an xz stream with a
// BCJ filter, which liblzma can write) is fetched again, verified and
// handed to ulikunitz/xz (which refuses it too); a part whose xz stream is corrupt but whose
// checksum matches fails with the decoder's error.
func TestDeltaPartStreamed(t *testing.T) {
	newTxt := mustChecksum(t, "3d33304840e9c61531ffccc875025a7ed2b1149c9c4fb327c555f67c56ad5e64") // "new\n"
	objs := []ObjectName{{newTxt, ObjFile}}
	reg := []deltaMode{{0, 0, 0o100644}}
	b := mustChecksum(t, vecB)
	partPath := StaticDeltaPartPath(Checksum{}, b, 0)
	withPart := func(t *testing.T, part []byte) map[string][]byte {
		files, d := craftDelta(t, Checksum{}, objs, reg, []byte("new\n"), []byte{'S', 0, 0, 4, 0})
		d.Parts[0].Checksum, d.Parts[0].Size = SumBytes(part), uint64(len(part))
		d.Metadata.Set(deltaMetaEndianKey, gvariant.NewVariant("y", uint8('l')))
		sb, err := d.Encode()
		if err != nil {
			t.Fatal(err)
		}
		files[StaticDeltaSuperblockPath(Checksum{}, b)] = sb
		files[partPath] = part
		return files
	}
	payload := encodeDeltaPayload(reg, []Xattrs{nil}, []byte("new\n"), []byte{'S', 0, 0, 4, 0})

	t.Run("fast", func(t *testing.T) {
		files := withPart(t, append([]byte{deltaCompXZ}, xzFast(payload)...))
		fetch, opens := countingFetch(mapFetch(files))
		dst := vectorArchiveRepo(t, "4565f34a", "3d333048")
		if err := applyDelta(t, dst, Checksum{}, b, fetch); err != nil {
			t.Fatal(err)
		}
		if n := opens(partPath); n != 1 {
			t.Fatalf("part fetched %d times, want 1", n)
		}
	})
	t.Run("bcj-filter", func(t *testing.T) {
		x, err := exec.LookPath("xz")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("xz not found")
			}
			t.Skip("xz not found")
		}
		cmd := exec.Command(x, "--x86", "--lzma2=preset=6", "-c")
		cmd.Stdin = bytes.NewReader(payload)
		stream, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if err := xzDecodeFast(bytes.NewReader(stream), io.Discard); err != errXZUnsupported {
			t.Fatalf("the fast decoder accepts the BCJ stream (%v): the test needs another unsupported feature", err)
		}
		files := withPart(t, append([]byte{deltaCompXZ}, stream...))
		fetch, opens := countingFetch(mapFetch(files))
		dst := vectorArchiveRepo(t, "4565f34a", "3d333048")
		before := countObjects(t, dst)
		// ulikunitz/xz has no BCJ filters either: the part is refused
		// with the fallback decoder's error.
		err = applyDelta(t, dst, Checksum{}, b, fetch)
		if err == nil || !strings.Contains(err.Error(), "filter") {
			t.Fatalf("got %v, want an error about the filter", err)
		}
		if n := opens(partPath); n != 2 {
			t.Fatalf("part fetched %d times, want 2 (stream, then fallback)", n)
		}
		if after := countObjects(t, dst); after != before {
			t.Fatalf("objects/ went from %d to %d files after a failed apply", before, after)
		}
	})
	t.Run("corrupt-xz-right-checksum", func(t *testing.T) {
		stream := xzFast(payload)
		stream[len(stream)/2] ^= 0xff
		files := withPart(t, append([]byte{deltaCompXZ}, stream...))
		dst := vectorArchiveRepo(t, "4565f34a", "3d333048")
		before := countObjects(t, dst)
		err := applyDelta(t, dst, Checksum{}, b, mapFetch(files))
		if err == nil || !strings.Contains(err.Error(), "xz") {
			t.Fatalf("got %v, want an xz error", err)
		}
		if after := countObjects(t, dst); after != before {
			t.Fatalf("objects/ went from %d to %d files after a failed apply", before, after)
		}
	})
}

// TestDeltaDecodeBudget: 40 MiB without a soft memory limit, half of the
// limit (at least 8 MiB) with one.
func TestDeltaDecodeBudget(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	debug.SetMemoryLimit(math.MaxInt64)
	if b := deltaDecodeBudget(); b != deltaDecodeMemory {
		t.Fatalf("no limit: budget %d, want %d", b, deltaDecodeMemory)
	}
	debug.SetMemoryLimit(256 << 20)
	if b := deltaDecodeBudget(); b != 128<<20 {
		t.Fatalf("256 MiB limit: budget %d, want 128 MiB", b)
	}
	debug.SetMemoryLimit(4 << 20)
	if b := deltaDecodeBudget(); b != 8<<20 {
		t.Fatalf("4 MiB limit: budget %d, want 8 MiB", b)
	}
	// A dictionary over the budget takes all of it.
	head := xzFast([]byte("x"))
	if n := xzDecodeBudget(head, 512<<10); n != 512<<10 {
		t.Fatalf("1 MiB dictionary with a 512 KiB budget takes %d", n)
	}
	if n := xzDecodeBudget(head, 8<<20); n != lzWindow {
		t.Fatalf("1 MiB dictionary with an 8 MiB budget takes %d", n)
	}
}
