package ostree

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDeltaGenerateRoundTrip(t *testing.T) {
	ctx := context.Background()
	a, b := mustChecksum(t, vecA), mustChecksum(t, vecB)
	newInB := []string{"0f5de29d", "4565f34a", "42d0ef1a", "3d333048"}
	cases := []struct {
		name string
		o    DeltaGenerateOptions
	}{
		{"scratch", DeltaGenerateOptions{To: b}},
		{"scratch-inline", DeltaGenerateOptions{To: b, Inline: true}},
		{"scratch-tiny-parts", DeltaGenerateOptions{To: b, MaxChunkSize: 20}},
		{"scratch-fallbacks", DeltaGenerateOptions{To: b, MinFallbackSize: 5}},
		{"from-A", DeltaGenerateOptions{From: a, To: b}},
		{"from-A-inline-tiny", DeltaGenerateOptions{From: a, To: b, Inline: true, MaxChunkSize: 1}},
	}
	for _, tc := range cases {
		for _, mode := range []RepoMode{ModeArchive, ModeBareUser} {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				src := vectorArchiveRepo(t)
				d, st, err := src.GenerateStaticDelta(ctx, tc.o)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := os.ReadFile(filepath.Join(src.Path(), StaticDeltaSuperblockPath(tc.o.From, tc.o.To)))
				if err != nil {
					t.Fatal(err)
				}
				again, err := ParseStaticDelta(raw)
				if err != nil {
					t.Fatal(err)
				}
				if again.Name() != d.Name() || len(again.Parts) != st.Parts || len(again.Fallbacks) != st.Fallbacks {
					t.Fatalf("superblock on disk does not match: %+v vs %+v", again, st)
				}
				if tc.o.Inline {
					if _, err := os.Stat(filepath.Join(src.Path(), StaticDeltaPartPath(tc.o.From, tc.o.To, 0))); !errors.Is(err, os.ErrNotExist) {
						t.Fatalf("inline delta has a part file: %v", err)
					}
				}
				if tc.o.MaxChunkSize == 1 && st.Parts != st.Objects {
					t.Fatalf("with 1-byte chunks every object needs a part: %+v", st)
				}
				if tc.o.MinFallbackSize == 5 && st.Fallbacks == 0 {
					t.Fatalf("no fallbacks: %+v", st)
				}
				dst, err := Init(t.TempDir(), mode, InitOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if !tc.o.From.IsZero() {
					old := vectorArchiveRepo(t, newInB...)
					copyCommit(t, old, dst, a)
				}
				if err := applyDelta(t, dst, tc.o.From, tc.o.To, dirFetch(src.Path())); err != nil {
					t.Fatal(err)
				}
				checkSameObjects(t, src, dst, b)
			})
		}
	}
}

func TestDeltaGenerateOnlyNewObjects(t *testing.T) {
	ctx := context.Background()
	a, b := mustChecksum(t, vecA), mustChecksum(t, vecB)
	src := vectorArchiveRepo(t)
	d, st, err := src.GenerateStaticDelta(ctx, DeltaGenerateOptions{From: a, To: b})
	if err != nil {
		t.Fatal(err)
	}
	// B differs from A by its root dirtree, /hello.txt and /new.txt.
	var got []string
	for _, p := range d.Parts {
		for _, n := range p.Objects {
			got = append(got, n.String()[:8]+"."+n.Type.String())
		}
	}
	want := "4565f34a.dirtree 42d0ef1a.file 3d333048.file"
	if strings.Join(got, " ") != want && strings.Join(got, " ") != "4565f34a.dirtree 3d333048.file 42d0ef1a.file" {
		t.Fatalf("delta carries %v, want %s (%+v)", got, want, st)
	}
}

func TestXZStored(t *testing.T) {
	for _, n := range []int{1, 3, 65535, 65536, 65537, 200001} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i * 7)
		}
		file := append([]byte{deltaCompXZ}, xzStored(data)...)
		out, err := decompressDeltaPart(region{mem: file, n: int64(len(file))}, t.TempDir())
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(out.mem, data) && out.f == nil {
			t.Fatalf("%d bytes: round trip differs", n)
		}
		if x, err := exec.LookPath("xz"); err == nil {
			cmd := exec.Command(x, "-dc")
			cmd.Stdin = bytes.NewReader(file[1:])
			got, err := cmd.Output()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%d bytes: xz -dc: %v", n, err)
			}
		}
	}
}
