package sign

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gostree/gostree/ostree"
)

// Verification policy for expired and revoked keys and expired
// signatures, each case checked against the real ostree (gpgme) too: the
// two must agree. Keys are made by gpg --batch, at a faked past time when
// they must be expired now.
func TestGPGPolicyMatchesOstree(t *testing.T) {
	h := newGPGHome(t)
	const past = 1600000000 // 2020-09-13
	pastT := time.Unix(past+3600, 0)

	good := h.genKey("Good <good@example.invalid>", "ed25519", "sign", "never", past)
	expired := h.genKey("Expired <expired@example.invalid>", "ed25519", "sign", "1d", past)
	revoked := h.genKey("Revoked <revoked@example.invalid>", "ed25519", "sign", "never", past)
	withSub := h.genKey("Sub <sub@example.invalid>", "ed25519", "cert", "never", past)
	h.gpg("--faked-system-time", fmt.Sprint(past), "--quick-add-key", withSub, "ed25519", "sign", "1d")
	goodSub := h.genKey("GoodSub <goodsub@example.invalid>", "ed25519", "cert", "never", past)
	h.gpg("--faked-system-time", fmt.Sprint(past), "--quick-add-key", goodSub, "ed25519", "sign", "never")

	all := []string{good, expired, revoked, withSub, goodSub}
	sec, err := ReadSecretKeys(h.exportSecret(all...), nil)
	if err != nil {
		t.Fatal(err)
	}
	revCert := h.revoke(revoked)
	dir := t.TempDir()
	pubAttached := writeFile(t, dir, "attached.gpg", h.exportPub(all...), 0o644)

	cases := []struct {
		name    string
		key     string
		opts    SignOptions
		keyring string
		want    GPGStatus
	}{
		{"good key", good, SignOptions{Time: pastT}, pubAttached, GPGGood},
		{"good signing subkey", goodSub, SignOptions{Time: pastT}, pubAttached, GPGGood},
		{"key expired since signing", expired, SignOptions{Time: pastT}, pubAttached, GPGKeyExpired},
		{"signing subkey expired", withSub, SignOptions{Time: pastT}, pubAttached, GPGKeyExpired},
		{"revoked key", revoked, SignOptions{Time: pastT}, pubAttached, GPGKeyRevoked},
		{"expired signature", good, SignOptions{Time: pastT, Expires: 24 * time.Hour}, pubAttached, GPGSigExpired},
		{"signature still valid", good, SignOptions{Time: time.Now().Add(-time.Hour), Expires: 24 * time.Hour}, pubAttached, GPGGood},
	}
	// A revocation certificate appended to the key in the same file counts
	// too (gpg merges what it imports).
	revBin, err := dearmor(revCert)
	if err != nil {
		t.Fatal(err)
	}
	appended := writeFile(t, t.TempDir(), "appended.gpg", append(exportWithoutRevocation(t, sec, revoked), revBin...), 0o644)
	cases = append(cases, struct {
		name    string
		key     string
		opts    SignOptions
		keyring string
		want    GPGStatus
	}{"revocation certificate appended to the key", revoked, SignOptions{Time: pastT}, appended, GPGKeyRevoked})

	// In a gpgkeypath directory, gostree attaches a revocation certificate
	// kept in its own file whatever the order the files are read in
	// (ostree imports them in readdir order and loses the revocation when
	// it comes first); checked with gostree only.
	looseDir := t.TempDir()
	writeFile(t, looseDir, "b-key.gpg", exportWithoutRevocation(t, sec, revoked), 0o644)
	writeFile(t, looseDir, "a-revocation.asc", revCert, 0o644)
	kr, err := loadKeyringDir(looseDir, "")
	if err != nil {
		t.Fatal(err)
	}
	k, err := sec.SigningKey(revoked, pastT)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := k.Sign([]byte("data"), SignOptions{Time: pastT})
	if err != nil {
		t.Fatal(err)
	}
	if res := (&GPGVerifier{Keyring: kr}).CheckSignatures([]byte("data"), [][]byte{sig}); len(res) != 1 || res[0].Status != GPGKeyRevoked {
		t.Fatalf("revocation in a separate file read first: %+v", res)
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo, c := ostreeRepo(t)
			r, err := ostree.Open(repo)
			if err != nil {
				t.Fatal(err)
			}
			// Choose the key as gpg would at signing time, then sign.
			k, err := sec.SigningKey(tc.key, tc.opts.Time)
			if err != nil {
				t.Fatal(err)
			}
			if err := SignCommit(context.Background(), r, c, []Signer{GPGSigner{Key: k, Options: tc.opts}}); err != nil {
				t.Fatal(err)
			}
			r.Close()
			commit, meta := readCommit(t, repo, c)
			v, err := NewRemoteVerifier(repo, "origin", cfg{"gpgkeypath": tc.keyring}, VerifierOptions{GlobalGPGDir: "-"})
			if err != nil {
				t.Fatal(err)
			}
			md, _ := DecodeDetached(meta)
			kr, _ := v.GPGKeyring()
			res := (&GPGVerifier{Keyring: kr}).CheckSignatures(commit, GPGSignatures(md))
			if len(res) != 1 || res[0].Status != tc.want {
				t.Fatalf("results %+v, want status %v", res, tc.want)
			}
			err = v.VerifyCommitBytes(context.Background(), c, commit, meta)
			if (err == nil) != (tc.want == GPGGood) {
				t.Fatalf("VerifyCommit: %v", err)
			}
			if err != nil && !errors.Is(err, ostree.ErrBadSignature) {
				t.Fatalf("error does not wrap ErrBadSignature: %v", err)
			}
			ok, out := ostreePulls(t, repo, tc.keyring, false)
			if ok != (tc.want == GPGGood) {
				t.Fatalf("ostree disagrees: pull ok=%v, gostree status %v: %s", ok, tc.want, out)
			}
		})
	}
}

// exportWithoutRevocation serialises key fpr of kr as it was before its
// revocation (gpg's export would include the revocation).
func exportWithoutRevocation(t testing.TB, kr *Keyring, fpr string) []byte {
	t.Helper()
	sel, err := kr.Select([]string{fpr})
	if err != nil {
		t.Fatal(err)
	}
	e := sel.entities[0]
	if len(e.Revocations) != 0 {
		t.Fatal("the key is already revoked in this keyring")
	}
	var buf bytes.Buffer
	if err := e.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
