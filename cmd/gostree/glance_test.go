package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"os"
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

// TestGlancePayloadRoundTrip: publish --payload (a from-scratch delta as
// the image data) → glance pull applies it → checkout; then v2 as a delta
// from v1 for a client that has v1, refused for one that has not.
func TestGlancePayloadRoundTrip(t *testing.T) {
	osauthtest.Setup(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	tree := filepath.Join(dir, "tree")
	makeRichTree(t, tree, false)
	gostree(t, "init", "--repo="+repo, "--mode=archive")
	ref := osauthtest.Name("payloados") + "/stable"
	gostree(t, "--repo="+repo, "commit", "-b", ref, "--add-metadata-string=version=1", tree)
	v1 := strings.TrimSpace(gostree(t, "--repo="+repo, "rev-parse", ref))
	// The source is only a fallback here: the payload carries everything.
	out := gostree(t, "--repo="+repo, "glance", "publish", "--no-check", "--source=swift://nowhere", "--payload", ref)
	img1 := imageIDOf(t, out)
	if !strings.Contains(out, "payload  static-delta from scratch") {
		t.Fatalf("publish --payload:\n%s", out)
	}

	client := filepath.Join(t.TempDir(), "client")
	gostree(t, "init", "--repo="+client, "--mode=bare-user")
	out = gostree(t, "--repo="+client, "glance", "pull", img1)
	if !strings.Contains(out, "applied the ") || !strings.Contains(out, v1) {
		t.Fatalf("glance pull of a payload image:\n%s", out)
	}
	if got := strings.TrimSpace(gostree(t, "--repo="+client, "rev-parse", ref)); got != v1 {
		t.Fatalf("%s = %s, want %s", ref, got, v1)
	}
	gostree(t, "--repo="+client, "fsck")
	co := filepath.Join(t.TempDir(), "co")
	gostree(t, "--repo="+client, "checkout", "-U", ref, co)
	compareTrees(t, userModes(snapshotTree(t, tree, false, false)), userModes(snapshotTree(t, co, false, false)))
	if ents, _ := filepath.Glob(filepath.Join(client, "tmp", "glance-payload-*")); len(ents) != 0 {
		t.Fatalf("payload download left behind: %v", ents)
	}

	// v2 as a delta from v1.
	if err := os.WriteFile(filepath.Join(tree, "v2-only"), []byte("second version"), 0o644); err != nil {
		t.Fatal(err)
	}
	gostree(t, "--repo="+repo, "commit", "-b", ref, "--add-metadata-string=version=2", tree)
	v2 := strings.TrimSpace(gostree(t, "--repo="+repo, "rev-parse", ref))
	out = gostree(t, "--repo="+repo, "glance", "publish", "--no-check", "--source=swift://nowhere", "--payload-from="+v1, ref)
	img2 := imageIDOf(t, out)
	if !strings.Contains(out, "payload  static-delta from "+v1) {
		t.Fatalf("publish --payload-from:\n%s", out)
	}
	gostree(t, "--repo="+client, "glance", "pull", img2)
	if got := strings.TrimSpace(gostree(t, "--repo="+client, "rev-parse", ref)); got != v2 {
		t.Fatalf("after the delta payload %s = %s, want %s", ref, got, v2)
	}
	gostree(t, "--repo="+client, "fsck")

	fresh := filepath.Join(t.TempDir(), "fresh")
	gostree(t, "init", "--repo="+fresh, "--mode=archive")
	msg := gostreeFails(t, "--repo="+fresh, "glance", "pull", img2)
	if !strings.Contains(msg, "delta from commit "+v1) || !strings.Contains(msg, "does not have") {
		t.Fatalf("delta payload without its base: %s", msg)
	}
	if refs := strings.TrimSpace(gostree(t, "--repo="+fresh, "refs")); refs != "" {
		t.Fatalf("refs written by a refused payload: %s", refs)
	}
	// A remote requiring signatures refuses the unsigned payload before applying it.
	gostree(t, "--repo="+fresh, "remote", "add", "--set=gpg-verify=true", "trusted", "https://example.invalid/")
	msg = gostreeFails(t, "--repo="+fresh, "glance", "pull", "--remote=trusted", img1)
	if !strings.Contains(msg, "requires signed commits") && !strings.Contains(msg, "no signatures found") {
		t.Fatalf("unsigned payload from a remote requiring signatures: %s", msg)
	}
	if refs := strings.TrimSpace(gostree(t, "--repo="+fresh, "refs")); refs != "" {
		t.Fatalf("refs written by a refused payload: %s", refs)
	}
}

// TestGlanceSignedPayload: the commit's ed25519 signature travels in the
// payload and is verified before anything is written; a remote trusting
// another key refuses it.
func TestGlanceSignedPayload(t *testing.T) {
	osauthtest.Setup(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	tree := filepath.Join(dir, "tree")
	makeRichTree(t, tree, false)
	gostree(t, "init", "--repo="+repo, "--mode=archive")
	gostree(t, "--repo="+repo, "commit", "-b", "signed", tree)
	pub, priv, _ := ed25519.GenerateKey(nil)
	otherPub, _, _ := ed25519.GenerateKey(nil)
	gostree(t, "--repo="+repo, "sign", "signed", base64.StdEncoding.EncodeToString(priv))
	out := gostree(t, "--repo="+repo, "glance", "publish", "--no-check", "--source=swift://nowhere", "--payload", "--name="+osauthtest.Name("signed"), "signed")
	img := imageIDOf(t, out)

	for name, key := range map[string]ed25519.PublicKey{"trusted": pub, "other": otherPub} {
		t.Run(name, func(t *testing.T) {
			client := filepath.Join(t.TempDir(), "client")
			gostree(t, "init", "--repo="+client, "--mode=archive")
			gostree(t, "--repo="+client, "remote", "add", "--no-gpg-verify", "--set=sign-verify=true",
				"--set=verification-ed25519-key="+base64.StdEncoding.EncodeToString(key), "os", "https://example.invalid/")
			if name == "trusted" {
				gostree(t, "--repo="+client, "glance", "pull", "--remote=os", img)
				gostree(t, "--repo="+client, "rev-parse", "os:signed")
				return
			}
			msg := gostreeFails(t, "--repo="+client, "glance", "pull", "--remote=os", img)
			if !strings.Contains(msg, "ed25519") && !strings.Contains(msg, "signature") {
				t.Fatalf("payload signed with an untrusted key: %s", msg)
			}
			t.Logf("refused: %s", strings.TrimSpace(msg))
			if refs := strings.TrimSpace(gostree(t, "--repo="+client, "refs")); refs != "" {
				t.Fatalf("refs written by a refused payload: %s", refs)
			}
		})
	}
}
