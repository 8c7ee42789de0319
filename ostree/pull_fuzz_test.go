package ostree

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gostree/gostree/internal/keyfile"
)

// FuzzWriteArchiveObject streams arbitrary .filez bytes through the pull's
// archive-to-archive path: it must never panic; when it accepts the bytes
// they are stored unchanged and decode to the expected checksum; when it
// refuses them nothing is staged.
func FuzzWriteArchiveObject(f *testing.F) {
	for _, b := range fuzzVectors(f, ".filez") {
		fuzzAddVariants(f, b)
	}
	r, err := Init(filepath.Join(f.TempDir(), "repo"), ModeArchive, InitOptions{})
	if err != nil {
		f.Fatal(err)
	}
	r.SetFsync(false)
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, err := r.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Abort()
		var expected Checksum
		fi, content, derr := DecodeArchiveObject(data)
		if derr == nil {
			expected, _ = ContentChecksum(fi, bytes.NewReader(content))
		} else {
			expected = SumBytes(data)
		}
		err = tx.WriteArchiveObject(expected, bytes.NewReader(data))
		n := ObjectName{expected, ObjFile}
		if err != nil {
			if derr == nil {
				t.Fatalf("valid object refused: %v", err)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			if ok, _ := tx.Has(n); ok {
				t.Fatal("refused object is staged")
			}
			return
		}
		if derr != nil {
			t.Fatalf("accepted bytes that DecodeArchiveObject refuses (%v)", derr)
		}
		staged, err := os.ReadFile(filepath.Join(tx.stage, LoosePath(n, ModeArchive)[len("objects/"):]))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(staged, data) {
			t.Fatal("stored bytes differ from the received ones")
		}
	})
}

// FuzzPullSummaryAndRef serves an arbitrary summary and ref file (and a
// valid config) to Pull: it must fail cleanly (there are no objects) and
// write nothing but never panic.
func FuzzPullSummaryAndRef(f *testing.F) {
	sum, _ := (&Summary{Refs: []SummaryRef{{Name: "main", Size: 100}}}).Encode()
	f.Add(sum, []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"))
	f.Add([]byte{}, []byte("<html>lots of html</html>"))
	f.Add([]byte{0}, []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeF"))
	r, err := Init(filepath.Join(f.TempDir(), "repo"), ModeArchive, InitOptions{})
	if err != nil {
		f.Fatal(err)
	}
	r.SetFsync(false)
	f.Fuzz(func(t *testing.T, summary, ref []byte) {
		m := memStore{"config": []byte("[core]\nrepo_version=1\nmode=archive-z2\n"), "refs/heads/main": ref}
		if len(summary) > 0 {
			m["summary"] = summary
		}
		_, err := Pull(context.Background(), r, m, PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}, Jobs: 1})
		if err == nil {
			t.Fatal("pull without objects succeeded")
		}
		if refs, _ := r.ListRefs("", true); len(refs) != 0 {
			t.Fatalf("refs written: %v", refs)
		}
	})
}

// FuzzRemoteConfig parses arbitrary config text for remotes: no panics,
// and every remote found has a valid group name and readable keys.
func FuzzRemoteConfig(f *testing.F) {
	f.Add([]byte("[core]\nmode=bare\n\n[remote \"origin\"]\nurl=http://x/\ngpg-verify=false\nbranches=a;b;\n"))
	f.Add([]byte("[remote \"a\"]\nsign-verify=ed25519\ngpg-verify=maybe\ncontenturl=http://c/\n"))
	f.Add([]byte("[remote \"\"]\n[remote \"x\"y\"]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := keyfile.Parse(b)
		if err != nil {
			return
		}
		for _, rm := range remotesFromKeyfile(kf, "") {
			if rm.Name == "" && kf.HasGroup(`remote ""`) {
				continue
			}
			rm.URL()
			rm.ContentURL()
			rm.Branches()
			rm.GPGVerify()
			rm.SignVerify()
			rm.SignVerifySummary()
			if _, err := rm.Bool("tls-permissive", false); err != nil && rm.get("tls-permissive") == "true" {
				t.Fatalf("true refused: %v", err)
			}
		}
	})
}
