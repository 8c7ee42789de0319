package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"

	"github.com/gostree/gostree/internal/osauth/osauthtest"
	"github.com/gostree/gostree/swift"
)

// swiftContainer returns a fresh container name, deleted with its objects
// at the end of the test.
func swiftContainer(t *testing.T) string {
	t.Helper()
	c := osauthtest.Client(t)
	sc := osauthtest.ObjectStore(t, c)
	name := osauthtest.Name("gostree-cli")
	t.Cleanup(func() {
		ctx := context.Background()
		st, err := swift.New(sc, name, "")
		if err != nil {
			return
		}
		var all []string
		st.List(ctx, "", func(oi swift.ObjectInfo) error { all = append(all, oi.Path); return nil })
		for _, p := range all {
			st.Remove(ctx, p)
		}
		containers.Delete(ctx, sc, name)
	})
	return name
}

// TestSwiftPushPullRoundTrip: gostree commit → summary -u → swift push
// --public → stock ostree pull over HTTP, gostree swift pull with a token and
// with TempURLs, gostree pull through a prefix TempURL remote → checkout,
// each identical to the committed tree; then prune.
func TestSwiftPushPullRoundTrip(t *testing.T) {
	vars := osauthtest.Setup(t)
	requireOstree(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	tree := filepath.Join(dir, "tree")
	makeRichTree(t, tree, false)
	gostree(t, "init", "--repo="+repo, "--mode=archive")
	gostree(t, "--repo="+repo, "commit", "-b", "os/stable", "--add-metadata-string=version=7", tree)
	commit := strings.TrimSpace(gostree(t, "--repo="+repo, "rev-parse", "os/stable"))
	gostree(t, "--repo="+repo, "summary", "-u")
	container := swiftContainer(t)
	sw := []string{"swift", "--container=" + container, "--prefix=exampleos/"}

	out := gostree(t, append([]string{"--repo=" + repo}, append(sw, "push", "--public")...)...)
	if !strings.Contains(out, "os/stable => "+commit) || !strings.Contains(out, "published summary\n") {
		t.Fatalf("push output:\n%s", out)
	}
	url := strings.TrimSpace(gostree(t, append(sw, "url")...))
	if !strings.Contains(out, "public URL: "+url) {
		t.Fatalf("push printed another URL than swift url (%s):\n%s", url, out)
	}
	out = gostree(t, append([]string{"--repo=" + repo}, append(sw, "push")...)...)
	if !strings.HasPrefix(out, "0 of ") {
		t.Fatalf("second push uploaded objects:\n%s", out)
	}

	check := func(t *testing.T, client, rev string) {
		t.Helper()
		co := filepath.Join(t.TempDir(), "co")
		gostree(t, "--repo="+client, "checkout", "-U", rev, co)
		compareTrees(t, userModes(snapshotTree(t, tree, false, false)), userModes(snapshotTree(t, co, false, false)))
	}

	t.Run("stock-ostree-public", func(t *testing.T) {
		client := filepath.Join(t.TempDir(), "client")
		ostreeCmd(t, "init", "--mode=bare-user", "--repo="+client)
		ostreeCmd(t, "remote", "add", "--repo="+client, "--no-gpg-verify", "sw", url)
		ostreeCmd(t, "pull", "--repo="+client, "sw", "os/stable")
		ostreeCmd(t, "fsck", "--repo="+client)
		if got := strings.TrimSpace(ostreeCmd(t, "rev-parse", "--repo="+client, "sw:os/stable")); got != commit {
			t.Fatalf("ostree pulled %s, want %s", got, commit)
		}
		check(t, client, "sw:os/stable")
	})
	t.Run("gostree-token", func(t *testing.T) {
		client := filepath.Join(t.TempDir(), "client")
		gostree(t, "init", "--repo="+client, "--mode=bare-user")
		gostree(t, append([]string{"--repo=" + client}, append(sw, "pull", "os/stable")...)...)
		gostree(t, "--repo="+client, "fsck")
		check(t, client, "os/stable")
	})
	t.Run("private-refuses-anonymous", func(t *testing.T) {
		gostree(t, append([]string{"--repo=" + repo}, append(sw, "push", "--public=false")...)...)
		client := filepath.Join(t.TempDir(), "client")
		gostree(t, "init", "--repo="+client, "--mode=archive")
		gostree(t, "--repo="+client, "remote", "add", "--no-gpg-verify", "sw", url)
		if msg := gostreeFails(t, "--repo="+client, "pull", "sw", "os/stable"); !strings.Contains(msg, "401") {
			t.Fatalf("anonymous pull from a private container: %s", msg)
		}
	})
	t.Run("gostree-tempurl", func(t *testing.T) {
		client := filepath.Join(t.TempDir(), "client")
		gostree(t, "init", "--repo="+client, "--mode=archive")
		gostree(t, append([]string{"--repo=" + client}, append(sw, "pull", "--temp-url", "--digest=sha512", "os/stable")...)...)
		check(t, client, "os/stable")
	})
	t.Run("gostree-prefix-tempurl-remote", func(t *testing.T) {
		turl := strings.TrimSpace(gostree(t, append(sw, "url", "--temp-url", "--ttl=1h")...))
		if !strings.Contains(turl, "temp_url_prefix=exampleos") || strings.Contains(turl, vars["OS_SWIFT_TEMPURL_KEY"]) {
			t.Fatalf("prefix TempURL %q", turl)
		}
		client := filepath.Join(t.TempDir(), "client")
		gostree(t, "init", "--repo="+client, "--mode=bare-user")
		gostree(t, "--repo="+client, "remote", "add", "--no-gpg-verify", "sw", turl)
		gostree(t, "--repo="+client, "pull", "sw", "os/stable")
		check(t, client, "sw:os/stable")
	})
	t.Run("prune", func(t *testing.T) {
		out := gostree(t, append(sw, "prune", "--keep-younger-than=0")...)
		if !strings.Contains(out, "1 commits referenced") || !strings.Contains(out, "delete 0 objects") && !strings.Contains(out, "deleted 0 objects") {
			t.Fatalf("prune output: %s", out)
		}
	})
}

// userModes drops setuid/setgid/sticky, which a user-mode checkout (-U) does
// not keep.
func userModes(m map[string]entry) map[string]entry {
	for p, e := range m {
		e.mode &^= 0o7000
		m[p] = e
	}
	return m
}

func TestSwiftBadInput(t *testing.T) {
	vars := osauthtest.Setup(t)
	container := swiftContainer(t)
	repo := filepath.Join(t.TempDir(), "repo")
	gostree(t, "init", "--repo="+repo, "--mode=archive")

	msg := gostreeFails(t, "--repo="+repo, "swift", "push")
	if !strings.Contains(msg, "--container is required") {
		t.Fatalf("push without --container: %s", msg)
	}
	msg = gostreeFails(t, "--repo="+repo, "swift", "--container=a/b", "push")
	if !strings.Contains(msg, "contains '/'") {
		t.Fatalf("container with a slash: %s", msg)
	}
	msg = gostreeFails(t, "--repo="+repo, "swift", "--container="+container, "push")
	if !strings.Contains(msg, "no refs") {
		t.Fatalf("push of an empty repository: %s", msg)
	}

	// Wrong password: a clear error that does not reveal it.
	t.Setenv("OS_PASSWORD", "not-the-password-123")
	msg = gostreeFails(t, "--repo="+repo, "swift", "--container="+container, "push")
	if !strings.Contains(msg, "wrong credentials") || strings.Contains(msg, "not-the-password-123") || strings.Contains(msg, vars["OS_PASSWORD"]) {
		t.Fatalf("wrong password: %s", msg)
	}
	t.Setenv("OS_PASSWORD", vars["OS_PASSWORD"])

	// A TempURL key file others can read is refused; a wrong key is refused by Swift.
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte("wrong-key\n"), 0o644)
	msg = gostreeFails(t, "swift", "--container="+container, "url", "--temp-url", "--temp-url-key-file="+keyFile)
	if !strings.Contains(msg, "readable by group or others") {
		t.Fatalf("group-readable key file: %s", msg)
	}
	os.Chmod(keyFile, 0o600)
	client := filepath.Join(t.TempDir(), "client")
	gostree(t, "init", "--repo="+client, "--mode=archive")
	msg = gostreeFails(t, "--repo="+client, "swift", "--container="+container, "pull", "--temp-url", "--temp-url-key-file="+keyFile, "main")
	if !strings.Contains(msg, "TempURL refused") || strings.Contains(msg, "wrong-key") {
		t.Fatalf("wrong TempURL key: %s", msg)
	}
	msg = gostreeFails(t, "swift", "--container="+container, "url", "--temp-url", "--digest=sha1")
	if !strings.Contains(msg, "sha1") {
		t.Fatalf("sha1 TempURL: %s", msg)
	}

	// An expired prefix TempURL as a remote: Swift refuses it (401), where
	// a valid one reaches the (empty) container and finds nothing (404).
	for _, tc := range []struct{ ttl, want string }{{"-1m", "HTTP 401"}, {"1h", "HTTP 404"}} {
		u := strings.TrimSpace(gostree(t, "swift", "--container="+container, "url", "--temp-url", "--ttl="+tc.ttl))
		client := filepath.Join(t.TempDir(), "client")
		gostree(t, "init", "--repo="+client, "--mode=archive")
		gostree(t, "--repo="+client, "remote", "add", "--no-gpg-verify", "sw", u)
		msg = gostreeFails(t, "--repo="+client, "pull", "sw", "main")
		if !strings.Contains(msg, tc.want) || strings.Contains(msg, vars["OS_SWIFT_TEMPURL_KEY"]) {
			t.Fatalf("pull through a prefix TempURL with --ttl=%s: %s", tc.ttl, msg)
		}
	}
}
