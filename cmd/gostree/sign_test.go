package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testGPGHome makes a throwaway GnuPG home (short path: gpg-agent's socket
// lives there) with one unprotected ed25519 signing key, and returns the
// home and the key's fingerprint. The agent is stopped at cleanup.
func testGPGHome(t *testing.T, uid string) (string, string) {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gpg is not installed; run `make deps`")
		}
		t.Skip("gpg is not installed; run `make deps`")
	}
	dir, err := os.MkdirTemp("/tmp", "gsc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", dir, "--kill", "all").Run()
		os.RemoveAll(dir)
	})
	gpgRun(t, dir, "--quick-gen-key", uid, "ed25519", "sign", "never")
	out := gpgRun(t, dir, "--with-colons", "--list-keys", uid)
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "fpr:") {
			return dir, strings.Split(l, ":")[9]
		}
	}
	t.Fatal("no fingerprint")
	return "", ""
}

func gpgRun(t *testing.T, home string, args ...string) string {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("gpg %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// ostreePullOK reports whether the real ostree pulls main from repo with
// GPG verification of the commit (and of the summary when summary is set)
// trusting keyring.
func ostreePullOK(t *testing.T, repo, keyring string, summary bool) (bool, string) {
	t.Helper()
	client := filepath.Join(t.TempDir(), "client")
	ostreeCmd(t, "--repo="+client, "init", "--mode=archive")
	ostreeCmd(t, "--repo="+client, "remote", "add", "--set=gpgkeypath="+keyring,
		fmt.Sprintf("--set=gpg-verify-summary=%v", summary), "origin", "file://"+repo)
	cmd := exec.Command("ostree", "--repo="+client, "pull", "origin", "main")
	out, err := cmd.CombinedOutput()
	return err == nil, string(out)
}

func TestCLIGPGSigning(t *testing.T) {
	requireOstree(t)
	home, fpr := testGPGHome(t, "CLI <cli@example.invalid>")
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub.gpg")
	os.WriteFile(pub, []byte(gpgRun(t, home, "--export", fpr)), 0o644)
	keyFile := filepath.Join(dir, "secret.asc")
	os.WriteFile(keyFile, []byte(gpgRun(t, home, "--armor", "--export-secret-keys", fpr)), 0o600)
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "file"), []byte("content\n"), 0o644)
	repo := filepath.Join(dir, "repo")
	gostree(t, "--repo="+repo, "init", "--mode=archive")

	// A secret key file others can read is refused before anything is written.
	loose := filepath.Join(dir, "loose.asc")
	os.WriteFile(loose, []byte(gpgRun(t, home, "--armor", "--export-secret-keys", fpr)), 0o644)
	if msg := gostreeFails(t, "--repo="+repo, "commit", "-b", "main", "--tree=dir="+tree, "--gpg-sign="+fpr, "--gpg-key-file="+loose); !strings.Contains(msg, "chmod 600") {
		t.Fatalf("world-readable key: %s", msg)
	}
	if _, err := os.Stat(filepath.Join(repo, "refs", "heads", "main")); err == nil {
		t.Fatal("a ref was written although the key could not be loaded")
	}
	// Unknown key ID.
	if msg := gostreeFails(t, "--repo="+repo, "commit", "-b", "main", "--tree=dir="+tree, "--gpg-sign=DEADBEEF", "--gpg-key-file="+keyFile); !strings.Contains(msg, "DEADBEEF") {
		t.Fatalf("unknown key: %s", msg)
	}

	// commit --gpg-sign with a key file, summary -u --gpg-sign from the
	// GnuPG home: ostree verifies both.
	c := strings.TrimSpace(gostree(t, "--repo="+repo, "commit", "-b", "main", "--tree=dir="+tree, "-s", "signed", "--gpg-sign="+fpr, "--gpg-key-file="+keyFile))
	gostree(t, "--repo="+repo, "summary", "-u", "--gpg-sign="+fpr, "--gpg-homedir="+home)
	if ok, out := ostreePullOK(t, repo, pub, true); !ok {
		t.Fatalf("ostree rejects gostree's signatures: %s", out)
	}
	ostreeCmd(t, "--repo="+repo, "remote", "add", "--set=gpgkeypath="+pub, "self", "file://"+repo)
	if out := ostreeCmd(t, "--repo="+repo, "show", "--gpg-verify-remote=self", c); !strings.Contains(out, "Good signature") {
		t.Fatalf("ostree show: %s", out)
	}
	// Signing again with the same key is refused; --delete removes it and
	// ostree then finds no signature.
	if msg := gostreeFails(t, "--repo="+repo, "gpg-sign", "--gpg-homedir="+home, c, fpr); !strings.Contains(msg, "already signed") {
		t.Fatalf("second signature: %s", msg)
	}
	if out := gostree(t, "--repo="+repo, "gpg-sign", "--delete", c, fpr); !strings.Contains(out, "deleted: 1") {
		t.Fatalf("delete: %s", out)
	}
	if ok, out := ostreePullOK(t, repo, pub, false); ok || !strings.Contains(out, "no signatures found") {
		t.Fatalf("pull of the unsigned commit: ok=%v %s", ok, out)
	}
	// gpg-sign from the GnuPG home signs it again.
	gostree(t, "--repo="+repo, "gpg-sign", "--gpg-homedir="+home, c, fpr)
	if ok, out := ostreePullOK(t, repo, pub, true); !ok {
		t.Fatalf("after gpg-sign: %s", out)
	}
	// summary -u without signing options drops the stale summary.sig.
	gostree(t, "--repo="+repo, "summary", "-u")
	if _, err := os.Stat(filepath.Join(repo, "summary.sig")); err == nil {
		t.Fatal("summary.sig kept after summary -u")
	}
}

func TestCLIEd25519Signing(t *testing.T) {
	// The computed vector key of ../../shared/vectors/signatures.txt.
	const secret = "zukl/s2uZckb5iBWelLOQrZIEIag3u/ONUF1oxHeKtZ8lmi+PqC/CsrMQm57XrdL9G1Y0RCav4M2y7i0vJ/GWw=="
	const public = "fJZovj6gvwrKzEJue163S/RtWNEQmr+DNsu4tLyfxls="
	const otherPublic = "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik="
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "file"), []byte("content\n"), 0o644)
	repo := filepath.Join(dir, "repo")
	gostree(t, "--repo="+repo, "init", "--mode=archive")
	c := strings.TrimSpace(gostree(t, "--repo="+repo, "commit", "-b", "main", "--tree=dir="+tree, "--sign="+secret, "--sign-type=ed25519"))
	if out := gostree(t, "--repo="+repo, "sign", "--verify", c, public); !strings.Contains(out, "Verification OK") {
		t.Fatalf("verify: %s", out)
	}
	if msg := gostreeFails(t, "--repo="+repo, "sign", "--verify", c, otherPublic); !strings.Contains(msg, "couldn't be verified") {
		t.Fatalf("wrong key: %s", msg)
	}
	keys := filepath.Join(dir, "keys")
	os.WriteFile(keys, []byte(otherPublic+"\n"+public+"\n"), 0o644)
	gostree(t, "--repo="+repo, "sign", "--verify", "--keys-file="+keys, c)
	// sign with a keys file; secret key files must be private.
	c2 := strings.TrimSpace(gostree(t, "--repo="+repo, "commit", "-b", "other", "--tree=dir="+tree, "-s", "2"))
	if msg := gostreeFails(t, "--repo="+repo, "sign", "--verify", c2, public); !strings.Contains(msg, "no signatures found") {
		t.Fatalf("unsigned commit: %s", msg)
	}
	sk := filepath.Join(dir, "secret")
	os.WriteFile(sk, []byte(secret+"\n"), 0o644)
	if msg := gostreeFails(t, "--repo="+repo, "sign", "--keys-file="+sk, c2); !strings.Contains(msg, "chmod 600") {
		t.Fatalf("readable secret key file: %s", msg)
	}
	os.Chmod(sk, 0o600)
	gostree(t, "--repo="+repo, "sign", "--keys-file="+sk, c2)
	gostree(t, "--repo="+repo, "sign", "--verify", c2, public)
	if msg := gostreeFails(t, "--repo="+repo, "sign", c2, "not-a-key"); !strings.Contains(msg, "secret key") {
		t.Fatalf("garbage key: %s", msg)
	}
	if msg := gostreeFails(t, "--repo="+repo, "sign", "--sign-type=dummy", c2, secret); !strings.Contains(msg, "not implemented") {
		t.Fatalf("unknown type: %s", msg)
	}
	// summary -u --sign writes an ed25519 summary.sig.
	gostree(t, "--repo="+repo, "summary", "-u", "--sign="+secret)
	b, err := os.ReadFile(filepath.Join(repo, "summary.sig"))
	if err != nil || !bytes.Contains(b, []byte("ostree.sign.ed25519")) {
		t.Fatalf("summary.sig: %v %q", err, b)
	}
}

// A key protected by a passphrase in the GnuPG home (gpg-agent's OCB
// protection) signs with --gpg-passphrase-file; ostree verifies it.
func TestCLIGPGHomedirProtectedKey(t *testing.T) {
	requireOstree(t)
	if _, err := exec.LookPath("gpg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gpg is not installed; run `make deps`")
		}
		t.Skip("gpg is not installed")
	}
	home, err := os.MkdirTemp("/tmp", "gsp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	gen := exec.Command("gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", "correct horse",
		"--quick-gen-key", "Locked <locked@example.invalid>", "ed25519", "sign", "never")
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("gpg: %v: %s", err, out)
	}
	out := gpgRun(t, home, "--with-colons", "--list-keys", "locked@example.invalid")
	fpr := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "fpr:") && fpr == "" {
			fpr = strings.Split(l, ":")[9]
		}
	}
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub.gpg")
	os.WriteFile(pub, []byte(gpgRun(t, home, "--export", fpr)), 0o644)
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("correct horse\n"), 0o600)
	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("battery staple\n"), 0o600)
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "f"), []byte("x"), 0o644)
	repo := filepath.Join(dir, "repo")
	gostree(t, "--repo="+repo, "init", "--mode=archive")
	if msg := gostreeFails(t, "--repo="+repo, "commit", "-b", "main", "--tree=dir="+tree, "--gpg-sign="+fpr, "--gpg-homedir="+home); !strings.Contains(msg, "--gpg-passphrase-file") {
		t.Fatalf("locked key without passphrase: %s", msg)
	}
	if msg := gostreeFails(t, "--repo="+repo, "commit", "-b", "main", "--tree=dir="+tree, "--gpg-sign="+fpr, "--gpg-homedir="+home, "--gpg-passphrase-file="+wrong); !strings.Contains(msg, "wrong passphrase") || strings.Contains(msg, "battery") {
		t.Fatalf("wrong passphrase: %s", msg)
	}
	gostree(t, "--repo="+repo, "commit", "-b", "main", "--tree=dir="+tree, "--gpg-sign="+fpr, "--gpg-homedir="+home, "--gpg-passphrase-file="+pass)
	gostree(t, "--repo="+repo, "summary", "-u")
	if ok, out := ostreePullOK(t, repo, pub, false); !ok {
		t.Fatalf("ostree rejects the signature: %s", out)
	}
}
