package ostree

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gostree/gostree/ostree/gvariant"
)

// Superblocks of the two static deltas of the vector repository (from the
// research vectors static-deltas.txt, produced by ostree 2022.7); only
// their sha256 enters the summary.
const (
	vectorSuperblockScratchB = "" +
		"6f73747265652e656e6469616e6e657373000000000000006c0079121c000000000000005e0d32800f5de29d133c56d6" +
		"c028991239f7b03c61b406d46af026736c493dce401f620f76657273696f6e00322e3000007308006f73747265652e72" +
		"65662d62696e64696e670000000000006d61696e0005006173130f3251005217f27bcba5bf8fe61d8e9e5c4320be286d" +
		"68fbac6164262f4a141e70fe5365636f6e64000000000000000000005e0d32804565f34abb72bbaef43994525ce5833c" +
		"8de55cb7222f87ea920876d6a7076525446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488" +
		"885c5b5454340000000000009b4d80d776ec0533aaff6ec27db8d7bc205a57897ba3509962bc52a9d056249100000000" +
		"b1020000000000007e0200000000000002196074c525ef6c528a2453d28fb5e43f89f1dcd158bfac0b967c6b6e7d3fbf" +
		"17024565f34abb72bbaef43994525ce5833c8de55cb7222f87ea920876d6a707652503446a0ef11b7cc167f3b603e585" +
		"c7eeeeb675faa412d5ec73f62988eb0b6c54880214b99b25372a3c960fada2d571ffc4fa22ceceaa129f5f3700bbe9b9" +
		"ad846087026e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d02e7e01595b750df1c585f" +
		"be0669af6946cdd576cc40443fd4efd3c11e1326e84201d35b286e2bb3f11c0c8ae7d5ac7e1ca3b79e653e9040319841" +
		"11963ab0d3ace4013d33304840e9c61531ffccc875025a7ed2b1149c9c4fb327c555f67c56ad5e6401e000a47a36168c" +
		"51fe11770372f3f0f4edacb46eb349d9be2aae027ea0a045f80142d0ef1a4aac00beec9280161ed992ead92fd7a95f4c" +
		"53f17ed887f76e651f60014c76b757a7a2aeb23fd2e832ed2607cb94b101a43d53c05561a85fb35c1703520189b350d2" +
		"78ff59ba4780bc377b8ebfee8ade6b55c99fab1ec84e133bc6ea52c501f66efa496a72379413c44593de510dc344beb0" +
		"45294f1a543da87b2b6118db352400e70100000000000000e102f600f600480028001d00"
	vectorSuperblockAtoB = "" +
		"6f73747265652e656e6469616e6e657373000000000000006c0079121c000000000000005e0d328051005217f27bcba5" +
		"bf8fe61d8e9e5c4320be286d68fbac6164262f4a141e70fe0f5de29d133c56d6c028991239f7b03c61b406d46af02673" +
		"6c493dce401f620f76657273696f6e00322e3000007308006f73747265652e7265662d62696e64696e67000000000000" +
		"6d61696e0005006173130f3251005217f27bcba5bf8fe61d8e9e5c4320be286d68fbac6164262f4a141e70fe5365636f" +
		"6e64000000000000000000005e0d32804565f34abb72bbaef43994525ce5833c8de55cb7222f87ea920876d6a7076525" +
		"446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488885c5b545434000000000000d26b1952" +
		"ed2c1e65ba17c6c0c397f4bd1622c9f0ac3eb197b0ac8e156f72a0a600000000bd010000000000006901000000000000" +
		"024565f34abb72bbaef43994525ce5833c8de55cb7222f87ea920876d6a70765250142d0ef1a4aac00beec9280161ed9" +
		"92ead92fd7a95f4c53f17ed887f76e651f60013d33304840e9c61531ffccc875025a7ed2b1149c9c4fb327c555f67c56" +
		"ad5e64249c000000b50116011601680048001d00"
)

// vectorSummaries returns the hex blocks of testdata/vectors/summary.txt
// keyed by their section title.
func vectorSummaries(t testing.TB) map[string][]byte {
	t.Helper()
	f, err := os.Open("testdata/vectors/summary.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	hexLine := regexp.MustCompile(`^[0-9a-f]+$`)
	var title string
	done := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			title, done = strings.TrimPrefix(line, "## "), false
			continue
		}
		if title == "" || done {
			continue
		}
		if hexLine.MatchString(line) {
			b, err := hex.DecodeString(line)
			if err != nil {
				t.Fatal(err)
			}
			out[title] = append(out[title], b...)
		} else if len(out[title]) > 0 {
			done = true
		}
	}
	if len(out) < 4 {
		t.Fatalf("parsed %d summary vectors", len(out))
	}
	return out
}

func vectorSummary(t testing.TB, prefix string) []byte {
	t.Helper()
	for k, v := range vectorSummaries(t) {
		if strings.HasPrefix(k, prefix) {
			return v
		}
	}
	t.Fatalf("no summary vector %q", prefix)
	return nil
}

// vectorRepo builds, in a temporary directory, the archive repository of
// testdata/vectors (commits A and B, ref main -> B) from the exact object
// files ostree wrote.
func vectorRepo(t testing.TB) *Repo {
	t.Helper()
	r, err := Init(filepath.Join(t.TempDir(), "repo"), ModeArchive, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.SetFsync(false)
	for _, o := range loadVectorObjects(t, "objects-archive.txt") {
		p := filepath.Join(r.Path(), o.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, o.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := ParseChecksum(vectorCommitB)
	if err := r.SetRef(Refspec{Ref: "main"}, b); err != nil {
		t.Fatal(err)
	}
	return r
}

const (
	vectorCommitA = "51005217f27bcba5bf8fe61d8e9e5c4320be286d68fbac6164262f4a141e70fe"
	vectorCommitB = "0f5de29d133c56d6c028991239f7b03c61b406d46af026736c493dce401f620f"
)

var vectorSummaryTime = time.Unix(1577923200, 0)

func TestSummaryVectorNoDeltas(t *testing.T) {
	r := vectorRepo(t)
	os.WriteFile(filepath.Join(r.Path(), "summary.sig"), []byte("stale"), 0o644)
	got, err := r.RegenerateSummary(context.Background(), SummaryOptions{Now: vectorSummaryTime})
	if err != nil {
		t.Fatal(err)
	}
	want := vectorSummary(t, "summary of the archive repo")
	if !bytes.Equal(got, want) {
		t.Fatalf("summary differs from ostree's:\n got %x\nwant %x", got, want)
	}
	onDisk, err := os.ReadFile(filepath.Join(r.Path(), "summary"))
	if err != nil || !bytes.Equal(onDisk, want) {
		t.Fatalf("summary file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.Path(), "summary.sig")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale summary.sig was not removed: %v", err)
	}
	s, err := r.ReadSummary()
	if err != nil {
		t.Fatal(err)
	}
	ref, ok := s.Lookup("main")
	if !ok || ref.Checksum.String() != vectorCommitB || ref.Size != 174 || ref.Version() != "2.0" {
		t.Fatalf("ref main = %+v", ref)
	}
	if ts, ok := ref.Timestamp(); !ok || ts.Unix() != 1577923200 {
		t.Fatalf("timestamp %v", ts)
	}
	if lm, ok := s.LastModified(); !ok || !lm.Equal(vectorSummaryTime) || s.Mode() != "archive-z2" {
		t.Fatalf("last-modified %v mode %q", lm, s.Mode())
	}
}

func TestSummaryVectorDeltas(t *testing.T) {
	r := vectorRepo(t)
	for dir, sb := range map[string]string{
		"deltas/D1/3inRM8VtbAKJkSOfewPGG0BtRq8CZzbEk9zkAfYg8":                                             vectorSuperblockScratchB,
		"deltas/UQ/BSF_J7y6W_j+Ydjp5cQyC+KG1o+6xhZCYvShQecP4-D13inRM8VtbAKJkSOfewPGG0BtRq8CZzbEk9zkAfYg8": vectorSuperblockAtoB,
	} {
		p := filepath.Join(r.Path(), dir)
		os.MkdirAll(p, 0o755)
		b, _ := hex.DecodeString(sb)
		if err := os.WriteFile(filepath.Join(p, "superblock"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.RegenerateSummary(context.Background(), SummaryOptions{Now: vectorSummaryTime})
	if err != nil {
		t.Fatal(err)
	}
	want := vectorSummary(t, "summary of the same repo after generating 2 static deltas")
	if !bytes.Equal(got, want) {
		t.Fatalf("summary differs from ostree's:\n got %x\nwant %x", got, want)
	}
	s, err := DecodeSummary(got)
	if err != nil {
		t.Fatal(err)
	}
	d := s.StaticDeltas()
	if len(d) != 2 || d[vectorCommitB].String() != "5cde2f94907bf784a753259e58e5826c346e0a1229014419efe4012d830b47ca" {
		t.Fatalf("deltas %v", d)
	}
	// core.no-deltas-in-summary drops them again.
	cfg := r.Config()
	cfg.Set("core", "no-deltas-in-summary", "true")
	if err := r.WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	got, err = r.RegenerateSummary(context.Background(), SummaryOptions{Now: vectorSummaryTime})
	if err != nil {
		t.Fatal(err)
	}
	if want := vectorSummary(t, "summary of the archive repo"); !bytes.Equal(got, want) {
		t.Fatalf("no-deltas-in-summary: got %x", got)
	}
}

func TestSummaryDecodeEncodeVectors(t *testing.T) {
	for title, b := range vectorSummaries(t) {
		if strings.HasPrefix(title, "delta-indexes") {
			continue
		}
		s, err := DecodeSummary(b)
		if err != nil {
			t.Fatalf("%s: %v", title, err)
		}
		again, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Errorf("%s: re-encoding differs", title)
		}
		if len(s.Refs) == 0 || s.Mode() != "archive-z2" {
			t.Errorf("%s: %+v", title, s)
		}
	}
	s, err := DecodeSummary(vectorSummary(t, "summary of a repo with core/collection-id"))
	if err != nil {
		t.Fatal(err)
	}
	if s.CollectionID() != "org.example.Os" || len(s.Refs) != 2 || s.Refs[1].Name != "ostree-metadata" {
		t.Fatalf("collection summary: %+v", s)
	}
}

func TestSummaryRoundTripAndValidation(t *testing.T) {
	c1, _ := ParseChecksum(vectorCommitA)
	c2, _ := ParseChecksum(vectorCommitB)
	s := &Summary{
		Refs: []SummaryRef{
			{Name: "a/b", Size: 102, Checksum: c1, Metadata: Metadata{{SummaryRefKeyTimestamp, gvariant.NewVariant("t", uint64(5))}}},
			{Name: "main", Size: 174, Checksum: c2},
		},
		Metadata: Metadata{{SummaryKeyMode, gvariant.NewVariant("s", "bare")}, {"x", gvariant.NewVariant("as", []any{"y"})}},
	}
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := DecodeSummary(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := s2.Encode()
	if !bytes.Equal(again, b) || len(s2.Refs) != 2 || s2.Refs[1].Checksum != c2 || s2.Mode() != "bare" {
		t.Fatalf("round trip: %+v", s2)
	}

	bad := func(name string, mutate func(*Summary)) {
		t.Helper()
		x := &Summary{Refs: append([]SummaryRef(nil), s.Refs...), Metadata: s.Metadata}
		mutate(x)
		raw := gvariant.MustMarshal(typeSummary, []any{summaryRefsGV(x.Refs), x.Metadata.gv()})
		if _, err := DecodeSummary(raw); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: DecodeSummary error = %v, want ErrCorrupt", name, err)
		}
	}
	bad("unsorted", func(x *Summary) { x.Refs[0], x.Refs[1] = x.Refs[1], x.Refs[0] })
	bad("duplicate", func(x *Summary) { x.Refs[1].Name = x.Refs[0].Name })
	bad("bad ref name", func(x *Summary) { x.Refs[0].Name = "../a" })
	bad("mode not a string", func(x *Summary) {
		x.Metadata = Metadata{{SummaryKeyMode, gvariant.NewVariant("u", uint32(1))}}
	})
	bad("bad delta name", func(x *Summary) {
		x.Metadata = Metadata{{SummaryKeyStaticDeltas, gvariant.NewVariant("a{sv}", []any{
			gvariant.DictEntry{Key: "nothex", Value: gvariant.NewVariant("ay", make([]byte, 32))}})}}
	})
	// A 31-byte checksum.
	raw := gvariant.MustMarshal(typeSummary, []any{
		[]any{[]any{"main", []any{uint64(1), make([]byte, 31), []any{}}}}, []any{}})
	if _, err := DecodeSummary(raw); !errors.Is(err, ErrCorrupt) {
		t.Errorf("31-byte checksum: %v", err)
	}
	// Not normal form: trailing garbage.
	if _, err := DecodeSummary(append(append([]byte(nil), b...), 0)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("trailing byte: %v", err)
	}
	if _, err := DecodeSummary(append([]byte("garbage\n"), b...)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("leading garbage: %v", err)
	}
}

func TestSummaryGHashOrder(t *testing.T) {
	// Orders observed in summaries written by ostree 2022.7 (summary.txt).
	cases := []struct{ insert, want []string }{
		{[]string{SummaryRefKeyTimestamp, SummaryRefKeyVersion}, []string{SummaryRefKeyVersion, SummaryRefKeyTimestamp}},
		{[]string{SummaryKeyLastModified, SummaryKeyMode, SummaryKeyTombstone, SummaryKeyIndexedDeltas, SummaryKeyCollectionID},
			[]string{SummaryKeyMode, SummaryKeyLastModified, SummaryKeyTombstone, SummaryKeyIndexedDeltas, SummaryKeyCollectionID}},
	}
	for _, c := range cases {
		d := newGVDict()
		for _, k := range c.insert {
			d.insert(k, gvariant.NewVariant("b", true))
		}
		var got []string
		for _, e := range d.end() {
			got = append(got, e.Key)
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("order %v, want %v", got, c.want)
		}
	}
	// Re-inserting keeps the bucket; many keys force resizes.
	d := newGVDict()
	for i := 0; i < 200; i++ {
		d.insert(string(rune('a'+i%26))+strings.Repeat("x", i/26), gvariant.NewVariant("u", uint32(i)))
	}
	d.insert("a", gvariant.NewVariant("u", uint32(999)))
	m := d.end()
	if len(m) != 200 {
		t.Fatalf("%d entries", len(m))
	}
	if v, _ := m.Lookup("a"); v.Value.(uint32) != 999 {
		t.Fatalf("a = %v", v.Value)
	}
}

func TestSummaryViewFormat(t *testing.T) {
	s, err := DecodeSummary(vectorSummary(t, "summary of the same repo after generating 2 static deltas"))
	if err != nil {
		t.Fatal(err)
	}
	old := time.Local
	time.Local = time.UTC
	defer func() { time.Local = old }()
	got := s.String()
	want := `* main
    Latest Commit (174 bytes):
      0f5de29d133c56d6c028991239f7b03c61b406d46af026736c493dce401f620f
    Version (ostree.commit.version): 2.0
    Timestamp (ostree.commit.timestamp): 2020-01-02T00:00:00+00

Repository Mode (ostree.summary.mode): archive-z2
Last-Modified (ostree.summary.last-modified): 2020-01-02T00:00:00+00
Has Tombstone Commits (ostree.summary.tombstone-commits): No
Static Deltas (ostree.static-deltas): {'51005217f27bcba5bf8fe61d8e9e5c4320be286d68fbac6164262f4a141e70fe-0f5de29d133c56d6c028991239f7b03c61b406d46af026736c493dce401f620f': <[byte 0x33, 0x20, 0x80, 0xf9, 0x11, 0x2a, 0xeb, 0xc8, 0x7a, 0xa2, 0x18, 0xd8, 0x80, 0x7a, 0x87, 0xd0, 0x8f, 0xcc, 0xa3, 0x75, 0xbd, 0xc5, 0xbf, 0x08, 0x38, 0x14, 0x31, 0xfd, 0x28, 0x96, 0x29, 0x42]>, '0f5de29d133c56d6c028991239f7b03c61b406d46af026736c493dce401f620f': <[byte 0x5c, 0xde, 0x2f, 0x94, 0x90, 0x7b, 0xf7, 0x84, 0xa7, 0x53, 0x25, 0x9e, 0x58, 0xe5, 0x82, 0x6c, 0x34, 0x6e, 0x0a, 0x12, 0x29, 0x01, 0x44, 0x19, 0xef, 0xe4, 0x01, 0x2d, 0x83, 0x0b, 0x47, 0xca]>}
ostree.summary.indexed-deltas: true
`
	if got != want {
		t.Errorf("view:\n%s\nwant:\n%s", got, want)
	}
	// g_variant_print(value, FALSE), as printed by ostree summary --view
	// for --add-metadata values.
	for _, c := range []struct {
		v    gvariant.Variant
		want string
	}{
		{gvariant.NewVariant("au", []any{uint32(1), uint32(2)}), "[1, 2]"},
		{gvariant.NewVariant("ay", []byte{1, 2}), "[0x01, 0x02]"},
		{gvariant.NewVariant("ay", []byte{}), "[]"},
		{gvariant.NewVariant("ay", []byte("abc\x00")), "b'abc'"},
		{gvariant.NewVariant("aay", []any{[]byte{1}, []byte{2}}), "[[0x01], [0x02]]"},
		{gvariant.NewVariant("(us)", []any{uint32(1), "a"}), "(1, 'a')"},
		{gvariant.NewVariant("(q)", []any{uint16(1)}), "(1,)"},
		{gvariant.NewVariant("a{us}", []any{gvariant.DictEntry{Key: uint32(1), Value: "a"}}), "{1: 'a'}"},
		{gvariant.NewVariant("a{sv}", []any{}), "{}"},
		{gvariant.NewVariant("mu", gvariant.Maybe{Valid: true, Value: uint32(5)}), "5"},
		{gvariant.NewVariant("mu", gvariant.Maybe{}), "nothing"},
		{gvariant.NewVariant("mmu", gvariant.Maybe{Valid: true, Value: gvariant.Maybe{}}), "just nothing"},
		{gvariant.NewVariant("v", gvariant.NewVariant("u", uint32(5))), "<uint32 5>"},
		{gvariant.NewVariant("o", "/a"), "'/a'"},
		{gvariant.NewVariant("d", 2.5), "2.5"},
		{gvariant.NewVariant("i", int32(-3)), "-3"},
		{gvariant.NewVariant("t", uint64(7)), "7"},
	} {
		if got := printPlain(c.v); got != c.want {
			t.Errorf("printPlain(%s) = %q, want %q", c.v.Type, got, c.want)
		}
	}
	for n, want := range map[uint64]string{0: "0 bytes", 1: "1 byte", 999: "999 bytes", 1000: "1.0 kB", 1536: "1.5 kB", 412e6: "412.0 MB", 3e9: "3.0 GB"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// makeSummaryTestRepo builds an archive repository with two local refs
// (one commit with a version, one without), a remote ref and a static-delta
// directory without superblock.
func makeSummaryTestRepo(t *testing.T, opts InitOptions) *Repo {
	t.Helper()
	src := t.TempDir()
	makeTreeA(t, src)
	r, err := Init(filepath.Join(t.TempDir(), "repo"), ModeArchive, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.SetFsync(false)
	var md Metadata
	md.Set("version", gvariant.NewVariant("s", "1.2.3"))
	commitDir(t, r, src, CommitOptions{Subject: "one", Timestamp: time.Unix(1600000000, 0), Metadata: md}, "main")
	os.WriteFile(filepath.Join(src, "extra"), []byte("x\n"), 0o644)
	c2 := commitDir(t, r, src, CommitOptions{Subject: "two", Timestamp: time.Unix(1600000100, 0)}, "exampleos/x86_64/stable")
	if err := r.SetRef(Refspec{Remote: "origin", Ref: "remote-only"}, c2); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSummaryMatchesOstree regenerates the summary of the same repository
// with ostree and with us (at the same time) and compares the bytes.
func TestSummaryMatchesOstree(t *testing.T) {
	requireOstree(t)
	for _, tc := range []struct {
		name  string
		opts  InitOptions
		extra []string // --add-metadata arguments
	}{
		{name: "plain"},
		{name: "add-metadata", extra: []string{"a='x'", "k1='v1'", "k2=uint64 7", "k3=true", "k4=['p', 'q']", "k5='5'",
			"k6='6'", "k7='7'", "k8='8'", "ostree.summary.expires=uint64 123"}},
		{name: "collection", opts: InitOptions{CollectionID: "org.example.Os"}},
		{name: "many-keys", extra: manyKeys(60)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := makeSummaryTestRepo(t, tc.opts)
			if tc.opts.CollectionID != "" {
				// A mirrored ref of another collection goes to the collection map.
				c, _ := r.ReadRef(Refspec{Ref: "main"})
				p := filepath.Join(r.Path(), "refs/mirrors/org.other.Os/other/ref")
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte(c.String()+"\n"), 0o644)
			}
			theirsDir := filepath.Join(t.TempDir(), "theirs")
			copyTree(t, r.Path(), theirsDir)
			args := []string{"summary", "-u", "--repo=" + theirsDir}
			for _, m := range tc.extra {
				args = append(args, "--add-metadata="+m)
			}
			runOstree(t, args...)
			theirs, err := os.ReadFile(filepath.Join(theirsDir, "summary"))
			if err != nil {
				t.Fatal(err)
			}
			ts, err := DecodeSummary(theirs)
			if err != nil {
				t.Fatalf("decoding ostree's summary: %v", err)
			}
			lm, _ := ts.LastModified()
			var add Metadata
			for _, m := range tc.extra {
				k, v, _ := strings.Cut(m, "=")
				add = append(add, MetaEntry{k, parseTestVariant(t, v)})
			}
			ours := r
			if tc.opts.CollectionID != "" {
				// ostree also committed an ostree-metadata ref; regenerate on
				// its copy so both list the same refs.
				if ours, err = Open(theirsDir); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ours.RegenerateSummary(context.Background(), SummaryOptions{Now: lm, AdditionalMetadata: add})
			if err != nil {
				t.Fatal(err)
			}
			gs, err := DecodeSummary(got)
			if err != nil {
				t.Fatal(err)
			}
			gotRefs := gvariant.MustMarshal(typeSummaryRefs, summaryRefsGV(gs.Refs))
			wantRefs := gvariant.MustMarshal(typeSummaryRefs, summaryRefsGV(ts.Refs))
			if !bytes.Equal(gotRefs, wantRefs) {
				t.Fatalf("ref entries differ:\n got %x\nwant %x", gotRefs, wantRefs)
			}
			if !bytes.Equal(got, theirs) {
				t.Fatalf("summary differs from ostree's:\n got %x\nwant %x\nours:\n%s\ntheirs:\n%s", got, theirs, gs, ts)
			}
			// ostree's viewer accepts ours and prints what we print.
			view := runOstree(t, "summary", "--view", "--repo="+ours.Path())
			if view != gs.String() {
				t.Errorf("ostree summary --view:\n%s\nour String():\n%s", view, gs.String())
			}
		})
	}
}

// manyKeys returns n --add-metadata arguments (enough to make GLib's hash
// table grow several times).
func manyKeys(n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("key.%d.%c='v%d'", i*7919%1000, 'a'+rune(i%26), i))
	}
	return out
}

// parseTestVariant parses the few GVariant text forms the tests use.
func parseTestVariant(t *testing.T, s string) gvariant.Variant {
	t.Helper()
	switch {
	case strings.HasPrefix(s, "uint64 "):
		var n uint64
		for _, c := range strings.TrimPrefix(s, "uint64 ") {
			n = n*10 + uint64(c-'0')
		}
		return gvariant.NewVariant("t", n)
	case s == "true":
		return gvariant.NewVariant("b", true)
	case strings.HasPrefix(s, "['"):
		var items []any
		for _, p := range strings.Split(strings.Trim(s, "[]"), ", ") {
			items = append(items, strings.Trim(p, "'"))
		}
		return gvariant.NewVariant("as", items)
	case strings.HasPrefix(s, "'"):
		return gvariant.NewVariant("s", strings.Trim(s, "'"))
	}
	t.Fatalf("cannot parse %q", s)
	return gvariant.Variant{}
}
