package ostree

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gostree/gostree/internal/testutil/nginx"
)

// ostreeTreePair makes an archive repository with the real ostree holding
// commit A (tree A plus a 300 kB random file) and its child B (the big
// file patched in the middle and grown, hello.txt changed, a file added,
// one removed), so that `ostree static-delta generate` uses bsdiff.
func ostreeTreePair(t *testing.T) (repo string, a, b Checksum) {
	t.Helper()
	requireOstree(t)
	dir := t.TempDir()
	repo = filepath.Join(dir, "repo")
	runOstree(t, "init", "--repo="+repo, "--mode=archive")
	t1, t2 := filepath.Join(dir, "t1"), filepath.Join(dir, "t2")
	makeTreeA(t, t1)
	big := make([]byte, 300<<10)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(t1, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	copyTree(t, t1, t2)
	copy(big[1000:], "patched")
	big = append(big, "tail\n"...)
	os.WriteFile(filepath.Join(t2, "big"), big, 0o644)
	os.WriteFile(filepath.Join(t2, "hello.txt"), []byte("hello world v2\n"), 0o644)
	os.WriteFile(filepath.Join(t2, "new.txt"), []byte("new\n"), 0o644)
	os.Remove(filepath.Join(t2, "empty.txt"))
	flags := []string{"--repo=" + repo, "commit", "-b", "main", "--owner-uid=0", "--owner-gid=0", "--timestamp=2020-01-01 00:00:00 +0000"}
	a = mustChecksum(t, strings.TrimSpace(runOstree(t, append(flags, "-s", "A", t1)...)))
	b = mustChecksum(t, strings.TrimSpace(runOstree(t, append(flags, "-s", "B", "--add-metadata-string=version=2", t2)...)))
	return repo, a, b
}

// countDeltaOps decodes every part of a delta in repo and counts opcodes.
func countDeltaOps(t *testing.T, repo string, from, to Checksum) map[byte]int {
	t.Helper()
	ctx := context.Background()
	d, err := FetchStaticDelta(ctx, dirFetch(repo), from, to)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[byte]int{}
	for i := range d.Parts {
		info, err := InspectStaticDeltaPart(ctx, d, i, dirFetch(repo), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		for op, n := range info.Ops {
			ops[op] += n
		}
	}
	return ops
}

// TestDeltaApplyOstreeGenerated: gostree applies the deltas ostree makes
// (from scratch and A→B, with and without --inline; A→B uses bspatch).
func TestDeltaApplyOstreeGenerated(t *testing.T) {
	repo, a, b := ostreeTreePair(t)
	src, err := Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, inline := range []bool{false, true} {
		for _, from := range []Checksum{{}, a} {
			args := []string{"--repo=" + repo, "static-delta", "generate", "--to=" + b.String()}
			if from.IsZero() {
				args = append(args, "--empty")
			} else {
				args = append(args, "--from="+from.String())
			}
			if inline {
				args = append(args, "--inline")
			}
			runOstree(t, args...)
			if !from.IsZero() {
				if ops := countDeltaOps(t, repo, from, b); ops['B'] == 0 {
					t.Fatalf("ostree's A→B delta has no bspatch: %v", ops)
				}
			}
			for _, mode := range []RepoMode{ModeArchive, ModeBareUser, ModeBareUserOnly} {
				name := StaticDeltaName(from, b)[:8] + "/" + mode.String()
				if inline {
					name += "/inline"
				}
				t.Run(name, func(t *testing.T) {
					dst, err := Init(t.TempDir(), mode, InitOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if !from.IsZero() {
						copyCommit(t, src, dst, a)
					}
					if err := applyDelta(t, dst, from, b, dirFetch(repo)); err != nil {
						t.Fatal(err)
					}
					checkSameObjects(t, src, dst, b)
				})
			}
		}
	}
}

// TestDeltaOstreeAppliesGostreeDeltas: `ostree static-delta apply-offline`
// applies the deltas gostree generates, and `ostree fsck` passes.
func TestDeltaOstreeAppliesGostreeDeltas(t *testing.T) {
	repo, a, b := ostreeTreePair(t)
	src, err := Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := runOstree(t, "--repo="+repo, "ls", "-R", "-C", b.String())
	for _, o := range []DeltaGenerateOptions{
		{To: b}, {To: b, Inline: true}, {From: a, To: b}, {From: a, To: b, Inline: true, MaxChunkSize: 1},
	} {
		if _, _, err := src.GenerateStaticDelta(ctx, o); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"archive", "bare-user"} {
			t.Run(StaticDeltaName(o.From, o.To)[:8]+"/"+mode, func(t *testing.T) {
				dst := filepath.Join(t.TempDir(), "repo")
				runOstree(t, "init", "--repo="+dst, "--mode="+mode)
				if !o.From.IsZero() {
					runOstree(t, "--repo="+dst, "pull-local", repo, o.From.String())
				}
				runOstree(t, "--repo="+dst, "static-delta", "apply-offline", filepath.Join(repo, StaticDeltaDir(o.From, o.To)))
				runOstree(t, "--repo="+dst, "refs", "--create=main", b.String())
				out := runOstree(t, "--repo="+dst, "fsck")
				if !strings.Contains(out, "no errors found") {
					t.Fatalf("fsck: %s", out)
				}
				if got := runOstree(t, "--repo="+dst, "ls", "-R", "-C", b.String()); got != want {
					t.Fatalf("ls -R differs:\n%s\nwant\n%s", got, want)
				}
			})
		}
	}
}

// TestDeltaOstreePullsGostreeDeltas: `ostree pull` over HTTP (nginx) from
// a repository whose deltas and summary gostree generated uses the delta.
func TestDeltaOstreePullsGostreeDeltas(t *testing.T) {
	repo, a, b := ostreeTreePair(t)
	src, err := Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, o := range []DeltaGenerateOptions{{To: a}, {From: a, To: b}} {
		if _, _, err := src.GenerateStaticDelta(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.RegenerateSummary(ctx, SummaryOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := src.RegenerateDeltaIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	srv := nginx.Start(t, repo, nginx.Options{AccessLog: true})
	dst := filepath.Join(t.TempDir(), "repo")
	runOstree(t, "init", "--repo="+dst, "--mode=bare-user")
	runOstree(t, "--repo="+dst, "remote", "add", "--no-gpg-verify", "origin", srv.URL)
	runOstree(t, "--repo="+dst, "pull", "--require-static-deltas", "origin", a.String())
	runOstree(t, "--repo="+dst, "pull", "--require-static-deltas", "origin", "main")
	if out := runOstree(t, "--repo="+dst, "fsck"); !strings.Contains(out, "no errors found") {
		t.Fatalf("fsck: %s", out)
	}
	time.Sleep(100 * time.Millisecond) // nginx logs after the response
	reqs := strings.Join(srv.Requests(t), "\n")
	for _, p := range []string{DeltaIndexPath(a), StaticDeltaPartPath(Checksum{}, a, 0), DeltaIndexPath(b), StaticDeltaPartPath(a, b, 0)} {
		if !strings.Contains(reqs, p) {
			t.Fatalf("ostree pull did not fetch %s; requests:\n%s", p, reqs)
		}
	}
}
