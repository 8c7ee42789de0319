package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/gostree/gostree/internal/osauth/osauthtest"
)

// imageIDOf returns the image ID printed by publish/resolve, and deletes
// the image at the end of the test.
func imageIDOf(t *testing.T, out string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "image    "); ok {
			id, _, _ := strings.Cut(rest, " ")
			c := osauthtest.Client(t)
			ic, err := openstack.NewImageV2(c.Provider, c.Endpoint)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { images.Delete(context.Background(), ic, id) })
			return id
		}
	}
	t.Fatalf("no image ID in:\n%s", out)
	return ""
}

// TestGlanceRoundTrip: commit → swift push → glance publish (Swift source
// and HTTP source) → resolve → list → glance pull → checkout.
func TestGlanceRoundTrip(t *testing.T) {
	osauthtest.Setup(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	tree := filepath.Join(dir, "tree")
	makeRichTree(t, tree, false)
	gostree(t, "init", "--repo="+repo, "--mode=archive")
	ref := osauthtest.Name("exampleos") + "/stable"
	gostree(t, "--repo="+repo, "commit", "-b", ref, "--add-metadata-string=version=42.1", tree)
	commit := strings.TrimSpace(gostree(t, "--repo="+repo, "rev-parse", ref))
	container := swiftContainer(t)
	out := gostree(t, "--repo="+repo, "swift", "--container="+container, "--prefix=os", "push", "--public")
	publicURL := strings.TrimPrefix(out[strings.Index(out, "public URL: "):], "public URL: ")
	publicURL = strings.TrimSpace(publicURL)

	out = gostree(t, "--repo="+repo, "glance", "publish", "--source=swift://"+container+"/os", "--osname=exampleos", "--tag=channel:stable", ref)
	swiftImage := imageIDOf(t, out)
	for _, want := range []string{"commit   " + commit, "ref      " + ref, "version  42.1", "osname   exampleos", "source   swift://" + container + "/os", "(exampleos-42.1)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("publish output lacks %q:\n%s", want, out)
		}
	}
	out = gostree(t, "--repo="+repo, "glance", "publish", "--source="+publicURL, "--name="+osauthtest.Name("http"), commit)
	httpImage := imageIDOf(t, out)
	if strings.Contains(out, "ref ") {
		t.Fatalf("publish of a bare commit recorded a ref:\n%s", out)
	}

	res := gostree(t, "glance", "resolve", "--check", swiftImage)
	if !strings.Contains(res, "commit   "+commit) || !strings.Contains(res, "source   swift://"+container+"/os") {
		t.Fatalf("resolve:\n%s", res)
	}
	list := gostree(t, "glance", "list", "--ref="+ref)
	if !strings.Contains(list, swiftImage) || !strings.Contains(list, "42.1") || strings.Contains(list, httpImage) {
		t.Fatalf("list --ref:\n%s", list)
	}

	// Image properties are not trusted: with a remote that requires signed
	// commits, the unsigned commit an image names is refused after resolving.
	t.Run("signature-required", func(t *testing.T) {
		client := filepath.Join(t.TempDir(), "client")
		gostree(t, "init", "--repo="+client, "--mode=bare-user")
		gostree(t, "--repo="+client, "remote", "add", "--set=gpg-verify=true", "trusted", publicURL)
		msg := gostreeFails(t, "--repo="+client, "glance", "pull", "--remote=trusted", swiftImage)
		if !strings.Contains(msg, "pulling commit "+commit) || !strings.Contains(msg, "gpg") {
			t.Fatalf("pull of an unsigned commit from a remote requiring signatures: %s", msg)
		}
		if refs := gostree(t, "--repo="+client, "refs"); strings.TrimSpace(refs) != "" {
			t.Fatalf("refs written although the pull was refused: %s", refs)
		}
		gostree(t, "--repo="+client, "remote", "add", "--no-gpg-verify", "open", publicURL)
		gostree(t, "--repo="+client, "glance", "pull", "--remote=open", swiftImage)
		if got := strings.TrimSpace(gostree(t, "--repo="+client, "rev-parse", "open:"+ref)); got != commit {
			t.Fatalf("glance pull --remote=open set open:%s to %s, want %s", ref, got, commit)
		}
	})

	for name, image := range map[string]string{"swift": swiftImage, "http": httpImage} {
		t.Run(name, func(t *testing.T) {
			client := filepath.Join(t.TempDir(), "client")
			gostree(t, "init", "--repo="+client, "--mode=bare-user")
			gostree(t, "--repo="+client, "glance", "pull", image)
			rev := commit
			if name == "swift" {
				if got := strings.TrimSpace(gostree(t, "--repo="+client, "rev-parse", ref)); got != commit {
					t.Fatalf("glance pull set %s to %s, want %s", ref, got, commit)
				}
				rev = ref
			}
			co := filepath.Join(t.TempDir(), "co")
			gostree(t, "--repo="+client, "checkout", "-U", rev, co)
			compareTrees(t, userModes(snapshotTree(t, tree, false, false)), userModes(snapshotTree(t, co, false, false)))
		})
	}
}

func TestGlanceBadInput(t *testing.T) {
	vars := osauthtest.Setup(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	gostree(t, "init", "--repo="+repo, "--mode=archive")
	tree := filepath.Join(dir, "tree")
	makeRichTree(t, tree, false)
	gostree(t, "--repo="+repo, "commit", "-b", "main", tree)
	commit := strings.TrimSpace(gostree(t, "--repo="+repo, "rev-parse", "main"))
	container := swiftContainer(t)

	// The source lacks the commit: publish refuses.
	msg := gostreeFails(t, "--repo="+repo, "glance", "publish", "--source=swift://"+container, "main")
	if !strings.Contains(msg, "commit "+commit+" is not in swift://"+container) {
		t.Fatalf("publish of an unpublished commit: %s", msg)
	}
	msg = gostreeFails(t, "--repo="+repo, "glance", "publish", "main")
	if !strings.Contains(msg, "--source is required") {
		t.Fatalf("publish without --source: %s", msg)
	}
	msg = gostreeFails(t, "--repo="+repo, "glance", "publish", "--source=ftp://x/", "main")
	if !strings.Contains(msg, "swift://CONTAINER") {
		t.Fatalf("publish with a bad source: %s", msg)
	}

	// An image naming a commit its source lacks: resolve --check and pull fail clearly.
	out := gostree(t, "--repo="+repo, "glance", "publish", "--no-check", "--source=swift://"+container, "--name="+osauthtest.Name("missing"), "main")
	id := imageIDOf(t, out)
	msg = gostreeFails(t, "glance", "resolve", "--check", id)
	if !strings.Contains(msg, "image "+id) || !strings.Contains(msg, "is not in swift://"+container) {
		t.Fatalf("resolve --check of a missing commit: %s", msg)
	}
	client := filepath.Join(dir, "client")
	gostree(t, "init", "--repo="+client, "--mode=archive")
	msg = gostreeFails(t, "--repo="+client, "glance", "pull", id)
	if !strings.Contains(msg, "pulling commit "+commit) {
		t.Fatalf("pull of a missing commit: %s", msg)
	}

	// An image without ostree_* properties.
	c := osauthtest.Client(t)
	ic, err := openstack.NewImageV2(c.Provider, c.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := images.Create(context.Background(), ic, images.CreateOpts{Name: osauthtest.Name("plain"), DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { images.Delete(context.Background(), ic, plain.ID) })
	msg = gostreeFails(t, "glance", "resolve", plain.ID)
	if !strings.Contains(msg, "not an OSTree image") || !strings.Contains(msg, plain.ID) {
		t.Fatalf("resolve of a plain image: %s", msg)
	}
	msg = gostreeFails(t, "glance", "resolve", osauthtest.Name("no-such-image"))
	if !strings.Contains(msg, "image not found") {
		t.Fatalf("resolve of a missing image: %s", msg)
	}

	// Wrong credentials.
	t.Setenv("OS_PASSWORD", "wrong-password-456")
	msg = gostreeFails(t, "glance", "list")
	if !strings.Contains(msg, "wrong credentials") || strings.Contains(msg, "wrong-password-456") || strings.Contains(msg, vars["OS_PASSWORD"]) {
		t.Fatalf("wrong password: %s", msg)
	}
}
