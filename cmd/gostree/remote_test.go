package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRemoteCommands: remotes added by gostree are read by ostree and
// the other way round; remotes.d files; delete removes refs too.
func TestRemoteCommands(t *testing.T) {
	requireOstree(t)
	work := t.TempDir()
	repo := filepath.Join(work, "repo")
	gostree(t, "--repo="+repo, "init", "--mode=bare-user")
	gostree(t, "--repo="+repo, "remote", "add", "--no-gpg-verify", "--set=tls-permissive=true", "origin", "https://example.invalid/repo", "main", "other")
	ostreeCmd(t, "--repo="+repo, "remote", "add", "--set=gpg-verify-summary=true", "theirs", "http://127.0.0.1:1/x")
	for _, args := range [][]string{{"remote", "list"}, {"remote", "list", "-u"}, {"remote", "show-url", "origin"}, {"remote", "show-url", "theirs"}} {
		want := ostreeCmd(t, append([]string{"--repo=" + repo}, args...)...)
		got := gostree(t, append([]string{"--repo=" + repo}, args...)...)
		if got != want {
			t.Errorf("%s:\ngostree %q\nostree  %q", strings.Join(args, " "), got, want)
		}
	}
	cfg, _ := os.ReadFile(filepath.Join(repo, "config"))
	for _, want := range []string{`[remote "origin"]`, "url=https://example.invalid/repo", "branches=main;other;", "gpg-verify=false", "tls-permissive=true"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if msg := gostreeFails(t, "--repo="+repo, "remote", "add", "origin", "http://x/"); !strings.Contains(msg, "exists") {
		t.Errorf("duplicate add: %q", msg)
	}
	gostree(t, "--repo="+repo, "remote", "add", "--if-not-exists", "origin", "http://x/")
	if msg := gostreeFails(t, "--repo="+repo, "remote", "add", "bad", "ftp://x/"); !strings.Contains(msg, "invalid url") {
		t.Errorf("bad url: %q", msg)
	}
	gostree(t, "--repo="+repo, "refs", "--create=origin:main", "--create=origin:x", mustCommit(t, repo))
	gostree(t, "--repo="+repo, "remote", "delete", "origin")
	if out := ostreeCmd(t, "--repo="+repo, "remote", "list"); out != "theirs\n" {
		t.Errorf("after delete, ostree lists %q", out)
	}
	if _, err := os.Stat(filepath.Join(repo, "refs/remotes/origin")); !os.IsNotExist(err) {
		t.Error("refs of the deleted remote remain")
	}
	gostreeFails(t, "--repo="+repo, "remote", "delete", "origin")
	gostree(t, "--repo="+repo, "remote", "delete", "--if-exists", "origin")

	// remotes.d
	rd := filepath.Join(work, "remotes.d")
	gostree(t, "--repo="+repo, "remote", "--remotes-dir="+rd, "add", "--set=proxy=http://127.0.0.1:3128", "sys", "http://sys.invalid/")
	b, err := os.ReadFile(filepath.Join(rd, "sys.conf"))
	if err != nil || !strings.Contains(string(b), "[remote \"sys\"]\nurl=http://sys.invalid/\nproxy=http://127.0.0.1:3128\n") {
		t.Fatalf("sys.conf: %q %v", b, err)
	}
	if out := gostree(t, "--repo="+repo, "remote", "--remotes-dir="+rd, "list"); out != "sys\ntheirs\n" {
		t.Errorf("list with remotes.d: %q", out)
	}
	os.WriteFile(filepath.Join(rd, "dup.conf"), []byte("[remote \"theirs\"]\nurl=http://y/\n"), 0o644)
	if msg := gostreeFails(t, "--repo="+repo, "remote", "--remotes-dir="+rd, "list"); !strings.Contains(msg, "defined twice") {
		t.Errorf("duplicate remote: %q", msg)
	}
	os.Remove(filepath.Join(rd, "dup.conf"))
	gostree(t, "--repo="+repo, "remote", "--remotes-dir="+rd, "delete", "sys")
	if _, err := os.Stat(filepath.Join(rd, "sys.conf")); !os.IsNotExist(err) {
		t.Error("sys.conf not removed")
	}
}

func mustCommit(t *testing.T, repo string) string {
	t.Helper()
	tree := t.TempDir()
	os.WriteFile(filepath.Join(tree, "f"), []byte("f"), 0o644)
	return strings.TrimSpace(gostree(t, "--repo="+repo, "commit", "-b", "local", "-s", "s", tree))
}
