package ostree

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gostree/gostree/ostree/gvariant"
)

// TestPullTampered: an ostree-made repository, copied and modified, served
// by nginx. Each pull fails with an error naming what was wrong; nothing
// of it is referenced by a ref, and gostree and ostree fsck pass on the
// destination.
func TestPullTampered(t *testing.T) {
	orig, _, b := ostreeSourceRepo(t, false)
	origRepo, err := Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := origRepo.LoadCommit(b)
	if err != nil {
		t.Fatal(err)
	}
	root, err := origRepo.LoadDirTree(cm.RootTree)
	if err != nil {
		t.Fatal(err)
	}
	hello := mustChecksumOfFile(t, origRepo, "hello.txt", b)
	var sub TreeDir
	for _, d := range root.Dirs {
		if d.Name == "sub" {
			sub = d
		}
	}
	path := func(n ObjectName) string { return LoosePath(n, ModeArchive) }

	cases := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		want   []string // substrings of the error
	}{
		{"content-modified", func(t *testing.T, dir string) {
			p := filepath.Join(dir, path(ObjectName{hello, ObjFile}))
			data := mustReadFile(t, p)
			data[len(data)-3] ^= 0xff
			writeOver(t, p, data)
		}, []string{hello.String()}},
		{"content-header-modified", func(t *testing.T, dir string) {
			// Same content, setuid mode: a valid .filez of another object.
			p := filepath.Join(dir, path(ObjectName{hello, ObjFile}))
			fi, content, err := DecodeArchiveObject(mustReadFile(t, p))
			if err != nil {
				t.Fatal(err)
			}
			fi.Mode = 0o104755
			os.Remove(p)
			writeArchiveObject(t, p, fi, content)
		}, []string{hello.String(), "corrupted file object"}},
		{"commit-modified", func(t *testing.T, dir string) {
			c2 := *cm
			c2.Subject = "C" // same size as "B", so only the checksum can tell
			enc, err := c2.Encode()
			if err != nil {
				t.Fatal(err)
			}
			writeOver(t, filepath.Join(dir, path(ObjectName{b, ObjCommit})), enc)
		}, []string{"corrupted commit object", b.String()}},
		{"object-swapped", func(t *testing.T, dir string) {
			// The sub dirtree's file holds the root dirtree's bytes.
			writeOver(t, filepath.Join(dir, path(ObjectName{sub.Tree, ObjDirTree})), mustReadFile(t, filepath.Join(dir, path(ObjectName{cm.RootTree, ObjDirTree}))))
		}, []string{"corrupted dirtree object", sub.Tree.String()}},
		{"content-swapped", func(t *testing.T, dir string) {
			other := mustChecksumOfFile(t, origRepo, "empty.txt", b)
			writeOver(t, filepath.Join(dir, path(ObjectName{hello, ObjFile})), mustReadFile(t, filepath.Join(dir, path(ObjectName{other, ObjFile}))))
		}, []string{hello.String(), "checksum expected"}},
		{"dirtree-path-traversal", func(t *testing.T, dir string) {
			// A new commit whose root has a file named ../x, made with the
			// gvariant package (the DirTree encoder would refuse it).
			bad := gvariant.MustMarshal(typeDirTree, []any{
				[]any{[]any{"../x", hello[:]}},
				[]any{},
			})
			badSum := SumBytes(bad)
			writeOver(t, filepath.Join(dir, path(ObjectName{badSum, ObjDirTree})), bad)
			c2 := *cm
			c2.RootTree = badSum
			c2.Parent = Checksum{}
			enc, err := c2.Encode()
			if err != nil {
				t.Fatal(err)
			}
			cs := SumBytes(enc)
			writeOver(t, filepath.Join(dir, path(ObjectName{cs, ObjCommit})), enc)
			writeOver(t, filepath.Join(dir, "refs/heads/main"), []byte(cs.String()+"\n"))
			os.Remove(filepath.Join(dir, "summary"))
		}, []string{"../x", "dirtree"}},
		{"metadata-oversize", func(t *testing.T, dir string) {
			writeOver(t, filepath.Join(dir, path(ObjectName{sub.Tree, ObjDirTree})), make([]byte, MaxMetadataSize+100))
		}, []string{sub.Tree.String(), "exceeded maximum"}},
		{"commit-over-summary-size", func(t *testing.T, dir string) {
			p := filepath.Join(dir, path(ObjectName{b, ObjCommit}))
			writeOver(t, p, append(mustReadFile(t, p), make([]byte, 64)...))
		}, []string{b.String(), "exceeded maximum"}},
		{"html-ref", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "summary"))
			writeOver(t, filepath.Join(dir, "refs/heads/main"), []byte(strings.Repeat("lots of html here\n", 20)))
		}, []string{"ref main", "invalid rev"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "repo")
			copyTree(t, orig, dir)
			tc.tamper(t, dir)
			srv := serve(t, dir)
			for _, mode := range []RepoMode{ModeBareUser, ModeArchive} {
				r := newRepo(t, mode)
				_, err := Pull(context.Background(), r, httpStore(t, srv.URL+"repo/"), PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}})
				if err == nil {
					t.Fatalf("%s: pull of a tampered repository succeeded", mode)
				}
				t.Logf("%s: %v", mode, err)
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q does not mention %q", mode, err, w)
					}
				}
				if refs, _ := r.ListRefs("", true); len(refs) != 0 {
					t.Fatalf("%s: refs after a failed pull: %v", mode, refs)
				}
				fsckBoth(t, r)
				// Nothing unverified was kept: every stored object checks out.
				res, err := r.Fsck(context.Background(), FsckOptions{All: true})
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range res.Errors {
					if !e.Missing {
						t.Errorf("%s: stored object fails fsck: %v", mode, e)
					}
				}
			}
		})
	}
}

func writeOver(t *testing.T, p string, data []byte) {
	t.Helper()
	os.Remove(p)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
