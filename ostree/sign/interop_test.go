package sign

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gostree/gostree/ostree"
)

// requireTool returns the path of a real tool; without it the test skips,
// except in CI where it must be there.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; run `make deps`", name)
		}
		t.Skipf("%s is not installed; run `make deps`", name)
	}
	return p
}

func runTool(t testing.TB, stdin []byte, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return out.String() + errb.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func mustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := runTool(t, nil, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// gpgHome is a throwaway GnuPG home. Its path is short (gpg-agent's socket
// must fit in sun_path) and its agent is stopped at cleanup.
type gpgHome struct {
	t   testing.TB
	dir string
}

func newGPGHome(t testing.TB) *gpgHome {
	t.Helper()
	requireTool(t, "gpg")
	dir, err := os.MkdirTemp("/tmp", "gsg")
	if err != nil {
		t.Fatal(err)
	}
	h := &gpgHome{t: t, dir: dir}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", dir, "--kill", "all").Run()
		os.RemoveAll(dir)
	})
	return h
}

func (h *gpgHome) gpg(args ...string) string {
	h.t.Helper()
	return mustRun(h.t, "gpg", append([]string{"--homedir", h.dir, "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
}

// genKey makes a key (at fakedTime when non-zero) and returns its
// fingerprint.
func (h *gpgHome) genKey(uid, algo, usage, expire string, fakedTime int64) string {
	h.t.Helper()
	args := []string{}
	if fakedTime != 0 {
		args = append(args, "--faked-system-time", fmt.Sprint(fakedTime))
	}
	h.gpg(append(args, "--quick-gen-key", uid, algo, usage, expire)...)
	return h.fpr(uid)
}

func (h *gpgHome) fpr(uid string) string {
	h.t.Helper()
	out := h.gpg("--with-colons", "--list-keys", uid)
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "fpr:") {
			return strings.Split(l, ":")[9]
		}
	}
	h.t.Fatalf("no fingerprint for %s", uid)
	return ""
}

func (h *gpgHome) exportPub(fprs ...string) []byte {
	h.t.Helper()
	return []byte(h.gpg(append([]string{"--export"}, fprs...)...))
}

func (h *gpgHome) exportSecret(fprs ...string) []byte {
	h.t.Helper()
	return []byte(h.gpg(append([]string{"--export-secret-keys"}, fprs...)...))
}

// revoke applies the revocation certificate gpg made for fpr and returns
// the certificate (armored).
func (h *gpgHome) revoke(fpr string) []byte {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dir, "openpgp-revocs.d", fpr+".rev"))
	if err != nil {
		h.t.Fatal(err)
	}
	cert := bytes.ReplaceAll(b, []byte(":-----BEGIN"), []byte("-----BEGIN"))
	p := filepath.Join(h.dir, "rev.asc")
	if err := os.WriteFile(p, cert, 0o600); err != nil {
		h.t.Fatal(err)
	}
	h.gpg("--import", p)
	return cert
}

// ostreeRepo makes an archive repository with one commit on main and
// returns its path and the commit.
func ostreeRepo(t testing.TB) (string, ostree.Checksum) {
	t.Helper()
	requireTool(t, "ostree")
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "usr"), 0o755)
	os.WriteFile(filepath.Join(tree, "usr", "hello"), []byte("hello signatures\n"), 0o644)
	mustRun(t, "ostree", "--repo="+repo, "init", "--mode=archive")
	out := mustRun(t, "ostree", "--repo="+repo, "commit", "-b", "main", "--tree=dir="+tree, "-s", "signed", "--timestamp=2020-01-02 00:00:00 +0000")
	c, err := ostree.ParseChecksum(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, "ostree", "--repo="+repo, "summary", "-u")
	return repo, c
}

func objPath(repo string, c ostree.Checksum, ext string) string {
	s := c.String()
	return filepath.Join(repo, "objects", s[:2], s[2:]+"."+ext)
}

func readCommit(t testing.TB, repo string, c ostree.Checksum) (commit, meta []byte) {
	t.Helper()
	commit, err := os.ReadFile(objPath(repo, c, "commit"))
	if err != nil {
		t.Fatal(err)
	}
	meta, err = os.ReadFile(objPath(repo, c, "commitmeta"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return commit, meta
}

// writeKeyfile writes data to dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// cfg is a RemoteConfig from a map.
type cfg map[string]string

func (c cfg) Get(k string) (string, bool) { v, ok := c[k]; return v, ok }

// ostreePulls reports whether the real ostree accepts a gpg-verified pull
// of main (and, with summary, a verified summary) from repo, trusting the
// keys in keyring.
func ostreePulls(t testing.TB, repo, keyring string, summary bool) (bool, string) {
	t.Helper()
	client := filepath.Join(t.TempDir(), "client")
	mustRun(t, "ostree", "--repo="+client, "init", "--mode=archive")
	mustRun(t, "ostree", "--repo="+client, "remote", "add", "--set=gpgkeypath="+keyring,
		fmt.Sprintf("--set=gpg-verify-summary=%v", summary), "origin", "file://"+repo)
	out, err := runTool(t, nil, "ostree", "--repo="+client, "pull", "origin", "main")
	return err == nil, out
}

// Signatures made by ostree gpg-sign and summary -u --gpg-sign with keys
// made by gpg --batch verify with gostree; a key that is not trusted does
// not.
func TestOstreeSignsGostreeVerifies(t *testing.T) {
	h := newGPGHome(t)
	fpr := h.genKey("Signer <signer@example.invalid>", "ed25519", "sign", "never", 0)
	other := h.genKey("Other <other@example.invalid>", "rsa2048", "sign", "never", 0)
	repo, c := ostreeRepo(t)
	mustRun(t, "ostree", "--repo="+repo, "gpg-sign", "--gpg-homedir="+h.dir, c.String(), fpr)
	mustRun(t, "ostree", "--repo="+repo, "summary", "-u", "--gpg-sign="+other, "--gpg-homedir="+h.dir)
	commit, meta := readCommit(t, repo, c)
	summary, _ := os.ReadFile(filepath.Join(repo, "summary"))
	sumSig, _ := os.ReadFile(filepath.Join(repo, "summary.sig"))
	keys := writeFile(t, t.TempDir(), "keys.gpg", h.exportPub(fpr, other), 0o644)
	v, err := NewRemoteVerifier(repo, "origin", cfg{"gpgkeypath": keys, "gpg-verify-summary": "true"}, VerifierOptions{GlobalGPGDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := v.VerifyCommitBytes(ctx, c, commit, meta); err != nil {
		t.Fatalf("commit signed by ostree: %v", err)
	}
	if err := v.VerifySummaryBytes(ctx, summary, sumSig); err != nil {
		t.Fatalf("summary signed by ostree (RSA): %v", err)
	}
	// Only the other key trusted: the commit's signature is by an unknown key.
	only := writeFile(t, t.TempDir(), "other.gpg", h.exportPub(other), 0o644)
	v2, err := NewRemoteVerifier(repo, "origin", cfg{"gpgkeypath": only}, VerifierOptions{GlobalGPGDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	err = v2.VerifyCommitBytes(ctx, c, commit, meta)
	if !errors.Is(err, ostree.ErrBadSignature) || !strings.Contains(err.Error(), "none are in trusted keyring") {
		t.Fatalf("untrusted key: %v", err)
	}
	// ostree agrees on both.
	if ok, out := ostreePulls(t, repo, keys, true); !ok {
		t.Fatalf("ostree pull with the signer's key failed: %s", out)
	}
	if ok, _ := ostreePulls(t, repo, only, false); ok {
		t.Fatal("ostree pull trusting only the other key succeeded")
	}
}

// gostree's signatures (library) verify with the real ostree: a pull
// with gpg-verify and gpg-verify-summary from a file:// remote.
func TestGostreeSignsOstreeVerifies(t *testing.T) {
	h := newGPGHome(t)
	ed := h.genKey("Ed <ed@example.invalid>", "ed25519", "sign", "never", 0)
	rsaKey := h.genKey("Rsa <rsa@example.invalid>", "rsa2048", "sign", "never", 0)
	nist := h.genKey("Nist <nist@example.invalid>", "nistp384", "sign", "never", 0)
	sec, err := ReadSecretKeys(h.exportSecret(ed, rsaKey, nist), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := writeFile(t, t.TempDir(), "keys.gpg", h.exportPub(ed, rsaKey, nist), 0o644)
	for _, fpr := range []string{ed, rsaKey, nist} {
		repo, c := ostreeRepo(t)
		r, err := ostree.Open(repo)
		if err != nil {
			t.Fatal(err)
		}
		k, err := sec.SigningKey(fpr, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		s := []Signer{GPGSigner{Key: k}}
		if err := SignCommit(context.Background(), r, c, s); err != nil {
			t.Fatal(err)
		}
		if err := SignSummary(context.Background(), r, s); err != nil {
			t.Fatal(err)
		}
		// Signing twice with the same key is refused, as in ostree.
		if err := SignCommit(context.Background(), r, c, s); err == nil || !strings.Contains(err.Error(), "already signed") {
			t.Fatalf("second signature with the same key: %v", err)
		}
		r.Close()
		if ok, out := ostreePulls(t, repo, keys, true); !ok {
			t.Fatalf("key %s: ostree refuses gostree's signatures: %s", fpr, out)
		}
		// gpg itself says Good signature for the commit's signature.
		_, meta := readCommit(t, repo, c)
		md, err := DecodeDetached(meta)
		if err != nil {
			t.Fatal(err)
		}
		sigs := GPGSignatures(md)
		if len(sigs) != 1 {
			t.Fatalf("%d signatures in commitmeta", len(sigs))
		}
		sigFile := writeFile(t, t.TempDir(), "commit.sig", sigs[0], 0o644)
		if out, err := runTool(t, nil, "gpg", "--homedir", h.dir, "--batch", "--status-fd", "1", "--verify", sigFile, objPath(repo, c, "commit")); err != nil || !strings.Contains(out, "GOODSIG") {
			t.Fatalf("gpg --verify: %v %s", err, out)
		}
	}
}

// Re-signing what gpg signs at the same (faked) time gives gpg's exact
// bytes for deterministic algorithms (EdDSA, RSA PKCS#1 v1.5).
func TestSignaturesByteIdenticalToGnuPG(t *testing.T) {
	h := newGPGHome(t)
	const t0 = 1600000000
	ed := h.genKey("Ed <ed@example.invalid>", "ed25519", "sign", "never", t0)
	rsaKey := h.genKey("Rsa <rsa@example.invalid>", "rsa2048", "sign", "never", t0)
	sec, err := ReadSecretKeys(h.exportSecret(ed, rsaKey), nil)
	if err != nil {
		t.Fatal(err)
	}
	data := writeFile(t, t.TempDir(), "data", []byte("some commit bytes\x00\x01"), 0o644)
	raw, _ := os.ReadFile(data)
	for _, fpr := range []string{ed, rsaKey} {
		sigFile := data + "." + fpr + ".sig"
		h.gpg("--faked-system-time", fmt.Sprint(t0+3600)+"!", "--digest-algo", "SHA256", "-u", fpr+"!", "--output", sigFile, "--detach-sign", data)
		want, _ := os.ReadFile(sigFile)
		got, err := SignGPG(sec, fpr, raw, SignOptions{Time: time.Unix(t0+3600, 0)})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("key %s: signature differs from gpg's\n got %x\nwant %x", fpr, got, want)
		}
	}
}
