package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gostree/gostree/internal/testutil/nginx"
	"github.com/gostree/gostree/ostree"
)

// deltaPair commits a rich tree and a modified copy with the real ostree
// into an archive repository and returns it with both commits.
func deltaPair(t *testing.T) (repo, a, b string) {
	t.Helper()
	requireOstree(t)
	dir := t.TempDir()
	repo = filepath.Join(dir, "repo")
	ostreeCmd(t, "init", "--repo="+repo, "--mode=archive")
	t1, t2 := filepath.Join(dir, "t1"), filepath.Join(dir, "t2")
	makeRichTree(t, t1, true)
	if err := os.MkdirAll(t2, 0o755); err != nil {
		t.Fatal(err)
	}
	ostreeCmd(t, "--repo="+repo, "commit", "-b", "main", "--timestamp=2020-01-01 00:00:00 +0000", "-s", "A", t1)
	ostreeCmd(t, "--repo="+repo, "checkout", "main", t2+"/co")
	co := t2 + "/co"
	mid := filepath.Join(co, "usr/lib/mid.txt")
	data, err := os.ReadFile(mid)
	if err != nil {
		t.Fatal(err)
	}
	copy(data[5000:], "a modified line\n")
	os.Remove(mid)
	os.WriteFile(mid, append(data, "appended\n"...), 0o644)
	os.WriteFile(filepath.Join(co, "usr/bin/new-tool"), []byte("#!/bin/sh\necho new\n"), 0o755)
	os.Remove(filepath.Join(co, "usr/etc/hosts.hardlink"))
	ostreeCmd(t, "--repo="+repo, "commit", "-b", "main", "--timestamp=2020-01-02 00:00:00 +0000", "-s", "B", "--add-metadata-string=version=2", co)
	a = strings.TrimSpace(ostreeCmd(t, "--repo="+repo, "rev-parse", "main^"))
	b = strings.TrimSpace(ostreeCmd(t, "--repo="+repo, "rev-parse", "main"))
	return repo, a, b
}

func sortLines(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}

func deltaDir(t *testing.T, repo, from, to string) string {
	t.Helper()
	var f ostree.Checksum
	if from != "" {
		f = mustParse(t, from)
	}
	return filepath.Join(repo, ostree.StaticDeltaDir(f, mustParse(t, to)))
}

func mustParse(t *testing.T, s string) ostree.Checksum {
	t.Helper()
	c, err := ostree.ParseChecksum(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fsckBoth checks repo with both tools.
func fsckBoth(t *testing.T, repo string) {
	t.Helper()
	if out := ostreeCmd(t, "--repo="+repo, "fsck"); !strings.Contains(out, "no errors found") {
		t.Fatalf("ostree fsck: %s", out)
	}
	gostree(t, "--repo="+repo, "fsck")
}

// TestStaticDeltaCLIOstreeGenerated: gostree lists, shows and applies
// offline the deltas ostree generates (with bspatch, inline, fallbacks).
func TestStaticDeltaCLIOstreeGenerated(t *testing.T) {
	repo, a, b := deltaPair(t)
	ostreeCmd(t, "--repo="+repo, "static-delta", "generate", "--from="+a, "--to="+b)
	ostreeCmd(t, "--repo="+repo, "static-delta", "generate", "--empty", "--inline", "--to="+b)
	if got, want := sortLines(gostree(t, "--repo="+repo, "static-delta", "list")), sortLines(ostreeCmd(t, "--repo="+repo, "static-delta", "list")); got != want {
		t.Fatalf("list: got\n%s\nwant\n%s", got, want)
	}
	// (ostree 2022.7's own show fails on inline deltas: it looks for part files.)
	if got, want := gostree(t, "--repo="+repo, "static-delta", "show", a+"-"+b), ostreeCmd(t, "--repo="+repo, "static-delta", "show", a+"-"+b); got != want {
		t.Fatalf("show: got\n%s\nwant\n%s", got, want)
	} else if strings.Contains(got, "bspatch=0") {
		t.Fatalf("expected ostree's A→B delta to use bspatch:\n%s", got)
	}
	if show := gostree(t, "--repo="+repo, "static-delta", "show", b); !strings.Contains(show, "Number of fallback entries: 1") || !strings.Contains(show, "From <scratch>") {
		t.Fatalf("expected ostree's from-scratch delta to have a fallback (the 5 MB file):\n%s", show)
	}
	for _, mode := range []string{"archive", "bare-user"} {
		t.Run(mode, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "repo")
			gostree(t, "init", "--repo="+dst, "--mode="+mode)
			ostreeCmd(t, "--repo="+dst, "pull-local", repo, a)
			gostree(t, "--repo="+dst, "static-delta", "apply-offline", deltaDir(t, repo, a, b))
			gostree(t, "--repo="+dst, "refs", "--create=main", b)
			fsckBoth(t, dst)
			dst2 := filepath.Join(t.TempDir(), "repo")
			gostree(t, "init", "--repo="+dst2, "--mode="+mode)
			gostree(t, "--repo="+dst2, "static-delta", "apply-offline", filepath.Join(deltaDir(t, repo, "", b), "superblock"))
			gostree(t, "--repo="+dst2, "refs", "--create=main", b)
			fsckBoth(t, dst2)
			want := ostreeCmd(t, "--repo="+repo, "ls", "-R", "-X", "-C", b)
			for _, r := range []string{dst, dst2} {
				if got := ostreeCmd(t, "--repo="+r, "ls", "-R", "-X", "-C", b); got != want {
					t.Fatalf("ls -R differs:\n%s\nwant\n%s", got, want)
				}
			}
		})
	}
}

// TestStaticDeltaCLIGostreeGenerated: ostree applies (offline) the deltas
// `gostree static-delta generate` makes; show, delete and summary -u with
// delta-indexes behave as ostree's.
func TestStaticDeltaCLIGostreeGenerated(t *testing.T) {
	repo, a, b := deltaPair(t)
	gostree(t, "--repo="+repo, "static-delta", "generate", "--from="+a, "--to="+b, "--min-fallback-size=0")
	gostree(t, "--repo="+repo, "static-delta", "generate", "--empty", "--to=main", "--inline", "--min-fallback-size=0", "--max-chunk-size=1")
	gostree(t, "--repo="+repo, "static-delta", "generate", "--empty", "--to="+a, "--max-chunk-size=1")
	for _, name := range []string{a + "-" + b, a} { // b is inline: ostree's show cannot read those
		if got, want := gostree(t, "--repo="+repo, "static-delta", "show", name), ostreeCmd(t, "--repo="+repo, "static-delta", "show", name); got != want {
			t.Fatalf("show %s: got\n%s\nwant\n%s", name, got, want)
		}
	}
	want := ostreeCmd(t, "--repo="+repo, "ls", "-R", "-X", "-C", b)
	for _, mode := range []string{"archive", "bare-user"} {
		t.Run(mode, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "repo")
			ostreeCmd(t, "init", "--repo="+dst, "--mode="+mode)
			ostreeCmd(t, "--repo="+dst, "pull-local", repo, a)
			ostreeCmd(t, "--repo="+dst, "static-delta", "apply-offline", deltaDir(t, repo, a, b))
			ostreeCmd(t, "--repo="+dst, "refs", "--create=main", b)
			fsckBoth(t, dst)
			dst2 := filepath.Join(t.TempDir(), "repo")
			ostreeCmd(t, "init", "--repo="+dst2, "--mode="+mode)
			ostreeCmd(t, "--repo="+dst2, "static-delta", "apply-offline", deltaDir(t, repo, "", b))
			ostreeCmd(t, "--repo="+dst2, "refs", "--create=main", b)
			fsckBoth(t, dst2)
			for _, r := range []string{dst, dst2} {
				if got := ostreeCmd(t, "--repo="+r, "ls", "-R", "-X", "-C", b); got != want {
					t.Fatalf("ls -R differs:\n%s\nwant\n%s", got, want)
				}
			}
		})
	}

	// summary -u writes the same delta-indexes as ostree's.
	twin := filepath.Join(t.TempDir(), "twin")
	if err := os.CopyFS(twin, os.DirFS(repo)); err != nil {
		t.Fatal(err)
	}
	gostree(t, "--repo="+repo, "summary", "-u")
	ostreeCmd(t, "--repo="+twin, "summary", "-u")
	for _, to := range []string{a, b} {
		rel := ostree.DeltaIndexPath(mustParse(t, to))
		got, err1 := os.ReadFile(filepath.Join(repo, rel))
		want, err2 := os.ReadFile(filepath.Join(twin, rel))
		if err1 != nil || err2 != nil || string(got) != string(want) {
			t.Fatalf("%s differs from ostree's (%v, %v)", rel, err1, err2)
		}
	}
	view := ostreeCmd(t, "--repo="+repo, "summary", "--view")
	for _, name := range []string{a + "-" + b, b, a} {
		if !strings.Contains(view, name) {
			t.Fatalf("summary does not list delta %s:\n%s", name, view)
		}
	}

	// delete
	gostree(t, "--repo="+repo, "static-delta", "delete", a+"-"+b)
	if got := sortLines(gostree(t, "--repo="+repo, "static-delta", "list")); got != sortLines(a+"\n"+b) {
		t.Fatalf("after delete: %s", got)
	}
	if msg := gostreeFails(t, "--repo="+repo, "static-delta", "delete", a+"-"+b); !strings.Contains(msg, "not found") && !strings.Contains(msg, "no such") {
		t.Fatalf("deleting a missing delta: %s", msg)
	}
	gostree(t, "--repo="+repo, "summary", "-u")
	if _, err := os.Stat(filepath.Join(repo, ostree.DeltaIndexPath(mustParse(t, b)))); err != nil {
		t.Fatalf("the index of B (still has the from-scratch delta) is gone: %v", err)
	}
	gostree(t, "--repo="+repo, "static-delta", "delete", b)
	gostree(t, "--repo="+repo, "summary", "-u")
	if _, err := os.Stat(filepath.Join(repo, ostree.DeltaIndexPath(mustParse(t, b)))); !os.IsNotExist(err) {
		t.Fatalf("the index of B outlived its deltas: %v", err)
	}
}

// TestStaticDeltaCLIBadInput: bad names and damaged deltas fail with a
// clear error and leave the repository untouched.
func TestStaticDeltaCLIBadInput(t *testing.T) {
	repo, a, b := deltaPair(t)
	for _, bad := range []string{"main", "../../etc", a + "-", strings.ToUpper(b), a + "-" + b + "-" + a} {
		if msg := gostreeFails(t, "--repo="+repo, "static-delta", "show", bad); !strings.Contains(msg, "invalid static delta name") {
			t.Errorf("show %q: %s", bad, msg)
		}
		if msg := gostreeFails(t, "--repo="+repo, "static-delta", "delete", bad); !strings.Contains(msg, "invalid static delta name") {
			t.Errorf("delete %q: %s", bad, msg)
		}
	}
	gostree(t, "--repo="+repo, "static-delta", "generate", "--from="+a, "--to="+b, "--min-fallback-size=0")
	src := deltaDir(t, repo, a, b)
	damage := map[string]func(dir string){
		"corrupted part": func(dir string) {
			p := filepath.Join(dir, "0")
			data, _ := os.ReadFile(p)
			data[len(data)/2] ^= 0xff
			os.WriteFile(p, data, 0o644)
		},
		"truncated superblock": func(dir string) {
			p := filepath.Join(dir, "superblock")
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)-7], 0o644)
		},
		"missing part": func(dir string) { os.Remove(filepath.Join(dir, "0")) },
	}
	wantMsg := map[string]string{"corrupted part": "part checksum mismatch", "truncated superblock": "superblock", "missing part": "no such file"}
	for name, f := range damage {
		t.Run(strings.ReplaceAll(name, " ", "-"), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "delta")
			if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
			f(dir)
			dst := filepath.Join(t.TempDir(), "repo")
			gostree(t, "init", "--repo="+dst, "--mode=archive")
			ostreeCmd(t, "--repo="+dst, "pull-local", repo, a)
			before := countFiles(t, filepath.Join(dst, "objects"))
			msg := gostreeFails(t, "--repo="+dst, "static-delta", "apply-offline", dir)
			if !strings.Contains(msg, wantMsg[name]) {
				t.Fatalf("error %q does not mention %q", msg, wantMsg[name])
			}
			if after := countFiles(t, filepath.Join(dst, "objects")); after != before {
				t.Fatalf("objects/ went from %d to %d files", before, after)
			}
			if n := countFiles(t, filepath.Join(dst, "tmp")); n != 0 {
				t.Fatalf("%d files left in tmp/", n)
			}
			fsckBoth(t, dst)
		})
	}
}

// TestStaticDeltaPullOverHTTP: `gostree pull --require-static-deltas`
// from nginx uses the deltas ostree generated (from scratch with a fallback
// object, then A→B with bspatch) and those gostree generated, into a
// bare-user repository that both fscks accept.
func TestStaticDeltaPullOverHTTP(t *testing.T) {
	repo, a, b := deltaPair(t)
	for _, gen := range []string{"ostree", "gostree"} {
		t.Run(gen, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			if err := os.CopyFS(src, os.DirFS(repo)); err != nil {
				t.Fatal(err)
			}
			run := ostreeCmd
			if gen == "gostree" {
				run = gostree
			}
			run(t, "--repo="+src, "static-delta", "generate", "--empty", "--to="+a)
			run(t, "--repo="+src, "static-delta", "generate", "--from="+a, "--to="+b)
			run(t, "--repo="+src, "summary", "-u")
			if show := gostree(t, "--repo="+src, "static-delta", "show", a); !strings.Contains(show, "Number of fallback entries: 1") {
				t.Fatalf("want one fallback (the 5 MB file) in the from-scratch delta:\n%s", show)
			}
			if show := gostree(t, "--repo="+src, "static-delta", "show", a+"-"+b); gen == "ostree" && strings.Contains(show, "bspatch=0") {
				t.Fatalf("want bspatch in ostree's A→B delta:\n%s", show)
			}
			srv := nginx.Start(t, src, nginx.Options{AccessLog: true})
			dst := filepath.Join(t.TempDir(), "dst")
			gostree(t, "init", "--repo="+dst, "--mode=bare-user")
			gostree(t, "--repo="+dst, "remote", "add", "--no-gpg-verify", "origin", srv.URL)
			gostree(t, "--repo="+dst, "pull", "--require-static-deltas", "origin", a)
			gostree(t, "--repo="+dst, "pull", "--require-static-deltas", "origin", "main")
			fsckBoth(t, dst)
			want := ostreeCmd(t, "--repo="+repo, "ls", "-R", "-X", "-C", b)
			if got := ostreeCmd(t, "--repo="+dst, "ls", "-R", "-X", "-C", b); got != want {
				t.Fatalf("ls -R differs:\n%s\nwant\n%s", got, want)
			}
			reqs := strings.Join(srv.Requests(t), "\n")
			for _, p := range []string{ostree.StaticDeltaPartPath(ostree.Checksum{}, mustParse(t, a), 0), ostree.StaticDeltaPartPath(mustParse(t, a), mustParse(t, b), 0)} {
				if !strings.Contains(reqs, p) {
					t.Fatalf("the pull did not fetch %s:\n%s", p, reqs)
				}
			}
		})
	}
}
