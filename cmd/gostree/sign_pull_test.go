package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// signedOstreeRepo makes an archive repo with the real ostree, signs main
// and the summary with a key made by gpg --batch, and returns the repo,
// the commit, the GnuPG home and a file with the public key.
func signedOstreeRepo(t *testing.T) (repo, commit, home, pub string) {
	t.Helper()
	requireOstree(t)
	home, fpr := testGPGHome(t, "Pull <pull@example.invalid>")
	dir := t.TempDir()
	pub = filepath.Join(dir, "pub.asc")
	os.WriteFile(pub, []byte(gpgRun(t, home, "--armor", "--export", fpr)), 0o644)
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	os.WriteFile(filepath.Join(tree, "etc", "os-release"), []byte("ID=test\n"), 0o644)
	repo = filepath.Join(dir, "repo")
	ostreeCmd(t, "--repo="+repo, "init", "--mode=archive")
	commit = strings.TrimSpace(ostreeCmd(t, "--repo="+repo, "commit", "-b", "main", "--tree=dir="+tree, "-s", "signed", "--gpg-sign="+fpr, "--gpg-homedir="+home))
	ostreeCmd(t, "--repo="+repo, "summary", "-u", "--gpg-sign="+fpr, "--gpg-homedir="+home)
	return repo, commit, home, pub
}

func commitObject(repo, c, ext string) string {
	return filepath.Join(repo, "objects", c[:2], c[2:]+"."+ext)
}

// gostree pulls a commit and summary signed by ostree gpg-sign with GPG
// verification, with the key from gpgkeypath or imported by remote
// gpg-import; tampered signatures fail the pull and leave no ref.
func TestPullGPGVerified(t *testing.T) {
	repo, c, _, pub := signedOstreeRepo(t)
	client := filepath.Join(t.TempDir(), "client")
	gostree(t, "--repo="+client, "init", "--mode=archive")
	gostree(t, "--repo="+client, "remote", "add", "--set=gpgkeypath="+pub, "--set=gpg-verify-summary=true", "origin", "file://"+repo)
	gostree(t, "--repo="+client, "pull", "origin", "main")
	if got := strings.TrimSpace(gostree(t, "--repo="+client, "rev-parse", "origin:main")); got != c {
		t.Fatalf("pulled %s, want %s", got, c)
	}
	// remote gpg-import writes a keyring ostree and gostree both use.
	gostree(t, "--repo="+client, "remote", "add", "imported", "file://"+repo)
	if out := gostree(t, "--repo="+client, "remote", "gpg-import", "imported", "--keyring="+pub); !strings.Contains(out, "Imported 1 GPG key") {
		t.Fatalf("gpg-import: %s", out)
	}
	gostree(t, "--repo="+client, "pull", "imported", "main")
	oc := filepath.Join(t.TempDir(), "oc")
	ostreeCmd(t, "--repo="+oc, "init", "--mode=archive")
	ostreeCmd(t, "--repo="+oc, "remote", "add", "imported", "file://"+repo)
	kr, _ := os.ReadFile(filepath.Join(client, "imported.trustedkeys.gpg"))
	os.WriteFile(filepath.Join(oc, "imported.trustedkeys.gpg"), kr, 0o644)
	ostreeCmd(t, "--repo="+oc, "pull", "imported", "main")

	meta, err := os.ReadFile(commitObject(repo, c, "commitmeta"))
	if err != nil {
		t.Fatal(err)
	}
	other, _, _, otherPub := signedOstreeRepo(t)
	sumSig, _ := os.ReadFile(filepath.Join(repo, "summary.sig"))
	for _, tc := range []struct {
		name    string
		tamper  func()
		keyring string
		summary bool
		msg     string
	}{
		{"stripped signature", func() { os.Remove(commitObject(repo, c, "commitmeta")) }, pub, false, "no signatures found"},
		{"borkborkbork commitmeta", func() { os.WriteFile(commitObject(repo, c, "commitmeta"), []byte("borkborkbork"), 0o644) }, pub, false, "commitmeta"},
		{"signature of another commit", func() {
			o, _ := os.ReadFile(filepath.Join(other, "summary.sig"))
			os.WriteFile(commitObject(repo, c, "commitmeta"), o, 0o644)
		}, otherPub, false, "BAD signature"},
		{"untrusted key", func() {}, otherPub, false, "none are in trusted keyring"},
		{"invalid summary.sig", func() { os.WriteFile(filepath.Join(repo, "summary.sig"), []byte("invalid\n"), 0o644) }, pub, true, "summary"},
		{"summary changed after signing", func() {
			os.WriteFile(filepath.Join(repo, "summary.sig"), sumSig, 0o644)
			// The extra key makes the new summary differ even when it is
			// regenerated within the same second (last-modified).
			ostreeCmd(t, "--repo="+repo, "summary", "-u", "--add-metadata=changed='yes'")
			os.WriteFile(filepath.Join(repo, "summary.sig"), sumSig, 0o644)
		}, pub, true, "BAD signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(commitObject(repo, c, "commitmeta"), meta, 0o644)
			tc.tamper()
			cl := filepath.Join(t.TempDir(), "client")
			gostree(t, "--repo="+cl, "init", "--mode=archive")
			args := []string{"--repo=" + cl, "remote", "add", "--set=gpgkeypath=" + tc.keyring}
			if tc.summary {
				args = append(args, "--set=gpg-verify-summary=true")
			}
			gostree(t, append(args, "origin", "file://"+repo)...)
			msg := gostreeFails(t, "--repo="+cl, "pull", "origin", "main")
			if !strings.Contains(msg, tc.msg) {
				t.Fatalf("error %q does not say %q", msg, tc.msg)
			}
			if _, err := os.Stat(filepath.Join(cl, "refs", "remotes", "origin", "main")); err == nil {
				t.Fatal("a ref was written for a commit that failed verification")
			}
		})
	}
}

// ed25519: gostree signs, gostree pulls with sign-verify.
func TestPullEd25519Verified(t *testing.T) {
	const secret = "zukl/s2uZckb5iBWelLOQrZIEIag3u/ONUF1oxHeKtZ8lmi+PqC/CsrMQm57XrdL9G1Y0RCav4M2y7i0vJ/GWw=="
	const public = "fJZovj6gvwrKzEJue163S/RtWNEQmr+DNsu4tLyfxls="
	const otherPublic = "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik="
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "file"), []byte("x\n"), 0o644)
	repo := filepath.Join(dir, "repo")
	gostree(t, "--repo="+repo, "init", "--mode=archive")
	gostree(t, "--repo="+repo, "commit", "-b", "main", "--tree=dir="+tree, "--sign="+secret)
	gostree(t, "--repo="+repo, "summary", "-u", "--sign="+secret)
	for _, tc := range []struct {
		key string
		ok  bool
	}{{public, true}, {otherPublic, false}} {
		cl := filepath.Join(t.TempDir(), "client")
		gostree(t, "--repo="+cl, "init", "--mode=archive")
		gostree(t, "--repo="+cl, "remote", "add", "--no-gpg-verify", "--set=sign-verify=ed25519", "--set=sign-verify-summary=true",
			"--set=verification-ed25519-key="+tc.key, "origin", "file://"+repo)
		if tc.ok {
			gostree(t, "--repo="+cl, "pull", "origin", "main")
		} else if msg := gostreeFails(t, "--repo="+cl, "pull", "origin", "main"); !strings.Contains(msg, "couldn't be verified") {
			t.Fatalf("wrong key: %s", msg)
		}
	}
}
