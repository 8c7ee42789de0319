package ostree

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const (
	vecA = "51005217f27bcba5bf8fe61d8e9e5c4320be286d68fbac6164262f4a141e70fe"
	vecB = "0f5de29d133c56d6c028991239f7b03c61b406d46af026736c493dce401f620f"
)

// loadDeltaVectors reads testdata/vectors/static-deltas.txt: delta
// directory → file name ("superblock", "0", "payload0") → bytes.
func loadDeltaVectors(t testing.TB) map[string]map[string][]byte {
	t.Helper()
	f, err := os.Open("testdata/vectors/static-deltas.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]byte{}
	hexLine := regexp.MustCompile(`^[0-9a-f]+$`)
	partRe := regexp.MustCompile(`^part file (\d+) size=`)
	var dir, cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## deltas/"):
			dir = strings.TrimPrefix(line, "## ")
			out[dir] = map[string][]byte{}
			cur = ""
		case strings.HasPrefix(line, "superblock size="):
			cur = "superblock"
		case partRe.MatchString(line):
			cur = partRe.FindStringSubmatch(line)[1]
		case strings.HasPrefix(line, "part payload after"):
			cur = "payload0"
		case cur != "" && hexLine.MatchString(line):
			b, err := hex.DecodeString(line)
			if err != nil {
				t.Fatal(err)
			}
			out[dir][cur] = append(out[dir][cur], b...)
		default:
			cur = ""
		}
	}
	if len(out) != 2 {
		t.Fatalf("parsed %d deltas from the vectors, want 2", len(out))
	}
	return out
}

// mapFetch serves files from a map, as a DeltaFetchFunc.
func mapFetch(files map[string][]byte) DeltaFetchFunc {
	return func(ctx context.Context, p string) (io.ReadCloser, error) {
		b, ok := files[p]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
}

// dirFetch serves the files of a repository directory.
func dirFetch(root string) DeltaFetchFunc {
	return func(ctx context.Context, p string) (io.ReadCloser, error) {
		return os.Open(filepath.Join(root, filepath.FromSlash(p)))
	}
}

// vectorArchiveRepo creates an archive repository holding every object
// of the vectors (commits A and B) except those in skip.
func vectorArchiveRepo(t testing.TB, skip ...string) *Repo {
	t.Helper()
	dir := t.TempDir()
	r, err := Init(dir, ModeArchive, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range loadVectorObjects(t, "objects-archive.txt") {
		drop := false
		for _, s := range skip {
			if strings.Contains(strings.ReplaceAll(o.Path, "/", ""), s) {
				drop = true
			}
		}
		if drop {
			continue
		}
		p := filepath.Join(dir, o.Path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, o.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// copyCommit copies commit c and its objects from src into dst.
func copyCommit(t testing.TB, src, dst *Repo, c Checksum) {
	t.Helper()
	ctx := context.Background()
	meta, content, err := src.reachableObjects(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := dst.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	for _, n := range append(meta, ObjectName{c, ObjCommit}) {
		b, err := src.ReadMetadataBytes(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.WriteMetadata(n.Type, b, &n.Checksum); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range content {
		co, err := src.OpenContent(n.Checksum)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.WriteContent(co.Info, co.Content, &n.Checksum)
		co.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// applyDelta applies a delta in one transaction and sets ref main.
func applyDelta(t testing.TB, r *Repo, from, to Checksum, fetch DeltaFetchFunc) error {
	t.Helper()
	ctx := context.Background()
	tx, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	if err := tx.ApplyStaticDelta(ctx, from, to, fetch); err != nil {
		return err
	}
	tx.SetRef(Refspec{Ref: "main"}, to)
	return tx.Commit()
}

// checkSameObjects checks that every object of commit c in want is in
// got: metadata byte for byte, content by checksum and content bytes.
func checkSameObjects(t testing.TB, want, got *Repo, c Checksum) {
	t.Helper()
	meta, content, err := want.reachableObjects(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range append(meta, ObjectName{c, ObjCommit}) {
		a, err := want.ReadMetadataBytes(n)
		if err != nil {
			t.Fatal(err)
		}
		b, err := got.ReadMetadataBytes(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("%s differs", n)
		}
	}
	for _, n := range content {
		if err := got.VerifyContent(n.Checksum); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	res, err := got.Fsck(context.Background(), FsckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("fsck: %v", res.Err())
	}
}

// vectorDeltaFiles returns the repository files of both vector deltas.
func vectorDeltaFiles(t testing.TB) map[string][]byte {
	files := map[string][]byte{}
	for dir, fs := range loadDeltaVectors(t) {
		files[dir+"/superblock"] = fs["superblock"]
		files[dir+"/0"] = fs["0"]
	}
	return files
}

func TestDeltaVectorNames(t *testing.T) {
	a, b := mustChecksum(t, vecA), mustChecksum(t, vecB)
	if got, want := StaticDeltaDir(a, b), "deltas/UQ/BSF_J7y6W_j+Ydjp5cQyC+KG1o+6xhZCYvShQecP4-D13inRM8VtbAKJkSOfewPGG0BtRq8CZzbEk9zkAfYg8"; got != want {
		t.Errorf("StaticDeltaDir = %s, want %s", got, want)
	}
	if got, want := StaticDeltaDir(Checksum{}, b), "deltas/D1/3inRM8VtbAKJkSOfewPGG0BtRq8CZzbEk9zkAfYg8"; got != want {
		t.Errorf("StaticDeltaDir = %s, want %s", got, want)
	}
	if got, want := DeltaIndexPath(b), "delta-indexes/D1/3inRM8VtbAKJkSOfewPGG0BtRq8CZzbEk9zkAfYg8.index"; got != want {
		t.Errorf("DeltaIndexPath = %s, want %s", got, want)
	}
	for _, name := range []string{vecB, vecA + "-" + vecB} {
		f, to, err := ParseStaticDeltaName(name)
		if err != nil || StaticDeltaName(f, to) != name {
			t.Errorf("ParseStaticDeltaName(%s) = %v %v %v", name, f, to, err)
		}
	}
	for _, bad := range []string{"", "main", vecA + "-", "-" + vecB, vecA + "-" + vecB + "-" + vecA, strings.ToUpper(vecB), "../" + vecB} {
		if _, _, err := ParseStaticDeltaName(bad); err == nil {
			t.Errorf("ParseStaticDeltaName(%q) accepted", bad)
		}
	}
}

func TestDeltaVectorSuperblocks(t *testing.T) {
	a, b := mustChecksum(t, vecA), mustChecksum(t, vecB)
	vec := loadDeltaVectors(t)
	for dir, files := range vec {
		d, err := ParseStaticDelta(files["superblock"])
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if StaticDeltaDir(d.From, d.To) != dir || d.To != b || (!d.From.IsZero() && d.From != a) {
			t.Fatalf("%s: parsed as %s", dir, d.Name())
		}
		if d.Timestamp.Unix() != 1577923200 || d.ByteSwapped || len(d.Parts) != 1 || len(d.Fallbacks) != 0 {
			t.Fatalf("%s: %+v", dir, d)
		}
		p := d.Parts[0]
		if p.Size != uint64(len(files["0"])) || p.Checksum != SumBytes(files["0"]) {
			t.Fatalf("%s: part header %+v does not describe the part file", dir, p)
		}
		// Re-encoding gives the same bytes.
		again, err := d.Encode()
		if err != nil || !bytes.Equal(again, files["superblock"]) {
			t.Fatalf("%s: re-encoded superblock differs (%v)", dir, err)
		}
		// The payload decompresses to the vector and parses.
		pay, err := decompressDeltaPart(region{mem: files["0"], n: int64(len(files["0"]))}, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pay.mem, files["payload0"]) {
			t.Fatalf("%s: decompressed payload differs from the vector", dir)
		}
		pl, err := parseDeltaPayload(pay.region())
		if err != nil {
			t.Fatal(err)
		}
		blob, _ := pl.blob.bytes(1 << 20)
		if again := encodeDeltaPayload(pl.modes, pl.xattrs, blob, pl.ops); !bytes.Equal(again, files["payload0"]) {
			t.Fatalf("%s: re-encoded payload differs", dir)
		}
	}
}

func TestDeltaApplyVectors(t *testing.T) {
	a, b := mustChecksum(t, vecA), mustChecksum(t, vecB)
	files := vectorDeltaFiles(t)
	full := vectorArchiveRepo(t)
	// B's new objects: its commit, root dirtree, /hello.txt v2, /new.txt.
	newInB := []string{"0f5de29d", "4565f34a", "42d0ef1a", "3d333048"}
	for _, mode := range []RepoMode{ModeArchive, ModeBareUser} {
		t.Run(mode.String()+"/A-B", func(t *testing.T) {
			src := vectorArchiveRepo(t, newInB...)
			dst, err := Init(t.TempDir(), mode, InitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			copyCommit(t, src, dst, a)
			if err := applyDelta(t, dst, a, b, mapFetch(files)); err != nil {
				t.Fatal(err)
			}
			checkSameObjects(t, full, dst, b)
			// Applying again is a no-op that succeeds.
			if err := applyDelta(t, dst, a, b, mapFetch(files)); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(mode.String()+"/scratch", func(t *testing.T) {
			dst, err := Init(t.TempDir(), mode, InitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := applyDelta(t, dst, Checksum{}, b, mapFetch(files)); err != nil {
				t.Fatal(err)
			}
			checkSameObjects(t, full, dst, b)
		})
	}
	t.Run("missing-from", func(t *testing.T) {
		dst, _ := Init(t.TempDir(), ModeArchive, InitOptions{})
		err := applyDelta(t, dst, a, b, mapFetch(files))
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "source") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestBspatchVector(t *testing.T) {
	// The 39-byte patch of the A→B vector turns "hello world\n" into
	// "hello world v2\n".
	patch, _ := hex.DecodeString("0b00000000000000" + "0400000000000000" + "0000000000000000" + "0000000000000000000000" + "2076320a")
	old := []byte("hello world\n")
	var out bytes.Buffer
	if err := bspatch(bytes.NewReader(old), int64(len(old)), bytes.NewReader(patch), 15, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "hello world v2\n" {
		t.Fatalf("got %q", out.String())
	}
	// Reading past the old file is refused.
	if err := bspatch(bytes.NewReader(old[:5]), 5, bytes.NewReader(patch), 15, io.Discard); !errors.Is(err, ErrBspatch) {
		t.Fatalf("short old file: %v", err)
	}
	// A truncated patch is refused.
	if err := bspatch(bytes.NewReader(old), int64(len(old)), bytes.NewReader(patch[:30]), 15, io.Discard); !errors.Is(err, ErrBspatch) {
		t.Fatalf("truncated patch: %v", err)
	}
	// So is a block longer than the new file.
	if err := bspatch(bytes.NewReader(old), int64(len(old)), bytes.NewReader(patch), 10, io.Discard); !errors.Is(err, ErrBspatch) {
		t.Fatalf("overrun: %v", err)
	}
	neg := append([]byte(nil), patch...)
	neg[7] |= 0x80
	if err := bspatch(bytes.NewReader(old), int64(len(old)), bytes.NewReader(neg), 15, io.Discard); !errors.Is(err, ErrBspatch) {
		t.Fatalf("negative length: %v", err)
	}
}
