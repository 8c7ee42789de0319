package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gostree/gostree/internal/testutil/nginx"
)

// TestPullCLI: remote add, remote summary/refs (same output as ostree),
// pull and pull-local through the CLI, quiet when not on a terminal.
func TestPullCLI(t *testing.T) {
	requireOstree(t)
	work := t.TempDir()
	tree := filepath.Join(work, "tree")
	os.MkdirAll(filepath.Join(tree, "d"), 0o755)
	os.WriteFile(filepath.Join(tree, "d", "f"), []byte("content\n"), 0o644)
	os.Symlink("d/f", filepath.Join(tree, "l"))
	src := filepath.Join(work, "www", "repo")
	os.MkdirAll(filepath.Dir(src), 0o755)
	ostreeCmd(t, "init", "--repo="+src, "--mode=archive")
	c1 := strings.TrimSpace(ostreeCmd(t, "--repo="+src, "commit", "-b", "main", "-s", "one", tree))
	os.WriteFile(filepath.Join(tree, "d", "g"), []byte("more\n"), 0o644)
	c2 := strings.TrimSpace(ostreeCmd(t, "--repo="+src, "commit", "-b", "main", "-s", "two", tree))
	ostreeCmd(t, "--repo="+src, "summary", "-u")
	srv := nginx.Start(t, filepath.Dir(src), nginx.Options{})

	repo := filepath.Join(work, "dst")
	gostree(t, "--repo="+repo, "init", "--mode=bare-user")
	gostree(t, "--repo="+repo, "remote", "add", "--no-gpg-verify", "origin", srv.URL+"repo")
	for _, args := range [][]string{{"remote", "summary", "origin"}, {"remote", "refs", "origin"}} {
		want := ostreeCmd(t, append([]string{"--repo=" + repo}, args...)...)
		if got := gostree(t, append([]string{"--repo=" + repo}, args...)...); got != want {
			t.Errorf("%s:\ngostree:\n%s\nostree:\n%s", strings.Join(args, " "), got, want)
		}
	}
	if out := gostree(t, "--repo="+repo, "pull", "--depth=1", "origin", "main"); out != "" {
		t.Errorf("pull printed %q when not on a terminal", out)
	}
	if got := strings.TrimSpace(gostree(t, "--repo="+repo, "rev-parse", "origin:main")); got != c2 {
		t.Fatalf("origin:main = %s, want %s", got, c2)
	}
	ostreeCmd(t, "--repo="+repo, "fsck")
	if out := gostree(t, "--repo="+repo, "pull", "--dry-run", "origin:main"); !strings.Contains(out, c2) || !strings.Contains(out, "present") {
		t.Errorf("dry run: %q", out)
	}
	if msg := gostreeFails(t, "--repo="+repo, "pull", "nosuchremote", "main"); !strings.Contains(msg, "nosuchremote") {
		t.Errorf("unknown remote: %q", msg)
	}
	gostree(t, "--repo="+repo, "remote", "add", "signed", srv.URL+"repo")
	if msg := gostreeFails(t, "--repo="+repo, "pull", "signed", "main"); !strings.Contains(msg, "gpg-verify") {
		t.Errorf("gpg-verify remote without verifier: %q", msg)
	}

	local := filepath.Join(work, "local")
	gostree(t, "--repo="+local, "init", "--mode=archive")
	gostree(t, "--repo="+local, "pull-local", "--remote=up", repo, c1)
	gostree(t, "--repo="+local, "pull-local", src)
	if got := strings.TrimSpace(gostree(t, "--repo="+local, "rev-parse", "main")); got != c2 {
		t.Fatalf("pull-local: main = %s", got)
	}
	ostreeCmd(t, "--repo="+local, "fsck")
}

// TestPullHTTPS: a remote over HTTPS (HTTP/2 from nginx) with the CA and
// a client certificate from the remote's tls-* keys; without the CA the
// pull fails on the certificate; tls-permissive accepts it.
func TestPullHTTPS(t *testing.T) {
	requireOstree(t)
	work := t.TempDir()
	tree := filepath.Join(work, "tree")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "f"), []byte("over tls\n"), 0o644)
	src := filepath.Join(work, "www", "repo")
	os.MkdirAll(filepath.Dir(src), 0o755)
	ostreeCmd(t, "init", "--repo="+src, "--mode=archive")
	c := strings.TrimSpace(ostreeCmd(t, "--repo="+src, "commit", "-b", "main", "-s", "tls", tree))
	srv := nginx.Start(t, filepath.Dir(src), nginx.Options{TLS: true, ClientCert: true})

	repo := filepath.Join(work, "dst")
	gostree(t, "--repo="+repo, "init", "--mode=archive")
	gostree(t, "--repo="+repo, "remote", "add", "--no-gpg-verify", "nocert", srv.TLSURL+"repo")
	if msg := gostreeFails(t, "--repo="+repo, "pull", "nocert", "main"); !strings.Contains(msg, "certificate") {
		t.Errorf("unknown CA: %q", msg)
	}
	gostree(t, "--repo="+repo, "remote", "add", "--no-gpg-verify", "--set=tls-ca-path="+srv.CACert,
		"--set=tls-client-cert-path="+srv.ClientCert, "--set=tls-client-key-path="+srv.ClientKey, "origin", srv.TLSURL+"repo")
	gostree(t, "--repo="+repo, "pull", "origin", "main")
	if got := strings.TrimSpace(gostree(t, "--repo="+repo, "rev-parse", "origin:main")); got != c {
		t.Fatalf("origin:main = %s, want %s", got, c)
	}
	ostreeCmd(t, "--repo="+repo, "fsck")
	gostree(t, "--repo="+repo, "remote", "add", "--no-gpg-verify", "--set=tls-permissive=true",
		"--set=tls-client-cert-path="+srv.ClientCert, "--set=tls-client-key-path="+srv.ClientKey, "perm", srv.TLSURL+"repo")
	gostree(t, "--repo="+repo, "pull", "perm", "main")
}
