package sign

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gostree/gostree/ostree"
)

// vectorVerifier trusts the vector key (GPG and ed25519) for commits and
// summaries.
func vectorVerifier(t *testing.T, v *sigVectors, extra cfg) *RemoteVerifier {
	t.Helper()
	dir := t.TempDir()
	c := cfg{
		"gpgkeypath":               writeFile(t, dir, "pub.asc", v.pubKey, 0o644),
		"gpg-verify-summary":       "true",
		"verification-ed25519-key": v.edPub,
	}
	for k, val := range extra {
		c[k] = val
	}
	rv, err := NewRemoteVerifier(dir, "origin", c, VerifierOptions{GlobalGPGDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	return rv
}

func TestBadSignatureInputs(t *testing.T) {
	v := loadSigVectors(t)
	ctx := context.Background()
	commit := mustHex(t, commitBHex)
	c := ostree.SumBytes(commit)
	summary := mustHex(t, summaryHex)
	rv := vectorVerifier(t, v, nil)
	if err := rv.VerifyCommitBytes(ctx, c, commit, v.commitMeta); err != nil {
		t.Fatalf("good commit: %v", err)
	}
	if err := rv.VerifySummaryBytes(ctx, summary, v.summarySig); err != nil {
		t.Fatalf("good summary: %v", err)
	}
	otherKey := func() []byte {
		// A signature by a key nobody trusts: sign with a fresh ed25519
		// OpenPGP key made in Go from the test data.
		sec, err := ReadSecretKeys(v.secKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := sec.SigningKey(vectorFingerprint, vectorTime)
		pub := *k.Public
		pub.KeyId ^= 1
		pub.Fingerprint = append([]byte{}, pub.Fingerprint...)
		pub.Fingerprint[19] ^= 1
		sig, err := (&SigningKey{Public: &pub, private: k.private}).Sign(commit, SignOptions{Time: vectorTime})
		if err != nil {
			t.Fatal(err)
		}
		md, _ := AppendGPGSignature(nil, sig)
		return md
	}()
	// The vector's summary signature, placed in the commit's metadata: a
	// good signature by a trusted key, but over other bytes.
	wrongData := v.summarySig
	stripped, _ := ostree.EncodeMetadata(ostree.Metadata{})
	truncatedSig := func() []byte {
		md, _ := DecodeDetached(v.commitMeta)
		s := GPGSignatures(md)[0]
		b, _ := AppendGPGSignature(nil, s[:len(s)-10])
		return b
	}()

	for _, tc := range []struct {
		name string
		meta []byte
		want error
		msg  string
	}{
		{"no commitmeta", nil, ostree.ErrNoSignature, "no signatures found"},
		{"stripped signature", stripped, ostree.ErrNoSignature, "gpg-verify=false"},
		{"borkborkbork commitmeta", []byte("borkborkbork"), ostree.ErrNoSignature, "not a valid a{sv}"},
		{"signature over other bytes", wrongData, ostree.ErrBadSignature, "BAD signature"},
		{"untrusted key", otherKey, ostree.ErrBadSignature, "none are in trusted keyring"},
		{"truncated signature packet", truncatedSig, ostree.ErrBadSignature, "nvalid signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gpgOnly := vectorVerifier(t, v, nil)
			err := gpgOnly.VerifyCommitBytes(ctx, c, commit, tc.meta)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.msg)
			}
			if !strings.Contains(err.Error(), c.String()) {
				t.Fatalf("error does not name the commit: %v", err)
			}
		})
	}

	// summary.sig "invalid\n" (test-pull-summary-sigs.sh): no signatures.
	if err := rv.VerifySummaryBytes(ctx, summary, []byte("invalid\n")); !errors.Is(err, ostree.ErrNoSignature) {
		t.Fatalf("invalid summary.sig: %v", err)
	}
	if err := rv.VerifySummaryBytes(ctx, summary, nil); !errors.Is(err, ostree.ErrNoSignature) {
		t.Fatalf("missing summary.sig: %v", err)
	}
	// Old summary.sig with a new summary: BAD signature.
	if err := rv.VerifySummaryBytes(ctx, append([]byte{0}, summary...), v.summarySig); !errors.Is(err, ostree.ErrBadSignature) {
		t.Fatalf("summary changed after signing: %v", err)
	}
	// The commit bytes must match the checksum the caller asks about.
	if err := rv.VerifyCommitBytes(ctx, ostree.SumBytes(summary), commit, v.commitMeta); !errors.Is(err, ostree.ErrBadSignature) {
		t.Fatalf("commit bytes of another checksum: %v", err)
	}
}

func TestEd25519RemoteVerification(t *testing.T) {
	v := loadSigVectors(t)
	ctx := context.Background()
	commit := mustHex(t, commitBHex)
	c := ostree.SumBytes(commit)
	summary := mustHex(t, summaryHex)
	other, _ := Ed25519KeyFromSeed(make([]byte, 32))
	dir := t.TempDir()
	onlyOther := writeFile(t, dir, "other.pub", []byte(other.Public().String()+"\n"), 0o644)
	both := writeFile(t, dir, "both.pub", []byte("\n"+other.Public().String()+"\nnot a key\n"+v.edPub+"\n"), 0o644)
	garbage := writeFile(t, dir, "garbage.pub", []byte("garbage\n"), 0o644)

	base := cfg{"gpg-verify": "false", "sign-verify": "ed25519", "sign-verify-summary": "true"}
	with := func(extra cfg) cfg {
		out := cfg{}
		for k, val := range base {
			out[k] = val
		}
		for k, val := range extra {
			out[k] = val
		}
		return out
	}
	good := []cfg{
		with(cfg{"verification-ed25519-key": v.edPub}),
		with(cfg{"verification-ed25519-file": both}),
		with(cfg{"verification-ed25519-file": onlyOther, "verification-ed25519-key": v.edPub}),
	}
	for i, cf := range good {
		rv, err := NewRemoteVerifier(dir, "origin", cf, VerifierOptions{})
		if err != nil {
			t.Fatalf("config %d: %v", i, err)
		}
		if err := rv.VerifyCommitBytes(ctx, c, commit, v.edCommitMeta); err != nil {
			t.Fatalf("config %d commit: %v", i, err)
		}
		if err := rv.VerifySummaryBytes(ctx, summary, v.edSummarySig); err != nil {
			t.Fatalf("config %d summary: %v", i, err)
		}
	}
	// Wrong key.
	rv, err := NewRemoteVerifier(dir, "origin", with(cfg{"verification-ed25519-file": onlyOther}), VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rv.VerifyCommitBytes(ctx, c, commit, v.edCommitMeta); !errors.Is(err, ostree.ErrBadSignature) || !strings.Contains(err.Error(), "couldn't be verified") {
		t.Fatalf("wrong key: %v", err)
	}
	// GPG signatures only, ed25519 required.
	if err := rv.VerifyCommitBytes(ctx, c, commit, v.commitMeta); !errors.Is(err, ostree.ErrNoSignature) {
		t.Fatalf("no ed25519 signature: %v", err)
	}
	// Garbage key file, bad inline key, sign-verify=ed25519 without keys,
	// unknown type: configuration errors.
	for _, cf := range []cfg{
		with(cfg{"verification-ed25519-file": garbage}),
		with(cfg{"verification-ed25519-file": filepath.Join(dir, "missing")}),
		with(cfg{"verification-ed25519-key": "AAAA"}),
		with(nil),
		{"sign-verify": "dummy", "verification-ed25519-key": v.edPub},
		{"gpg-verify": "maybe"},
	} {
		if _, err := NewRemoteVerifier(dir, "origin", cf, VerifierOptions{}); err == nil {
			t.Fatalf("config %v accepted", cf)
		}
	}
	// sign-verify=true without keys: the system trust stores, with their
	// revoked lists.
	base2 := t.TempDir()
	os.MkdirAll(filepath.Join(base2, "trusted.ed25519.d"), 0o755)
	writeFile(t, base2, "trusted.ed25519.d/vendor", []byte(v.edPub+"\n"), 0o644)
	opts := VerifierOptions{Ed25519TrustDirs: []string{base2}}
	rv, err = NewRemoteVerifier(dir, "origin", cfg{"gpg-verify": "false", "sign-verify": "true"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rv.VerifyCommitBytes(ctx, c, commit, v.edCommitMeta); err != nil {
		t.Fatalf("system trusted key: %v", err)
	}
	writeFile(t, base2, "revoked.ed25519", []byte(v.edPub+"\n"), 0o644)
	if err := rv.VerifyCommitBytes(ctx, c, commit, v.edCommitMeta); !errors.Is(err, ostree.ErrBadSignature) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked key: %v", err)
	}
	// Both schemes on: both must verify.
	rv, err = NewRemoteVerifier(dir, "origin", cfg{"gpgkeypath": writeFile(t, dir, "pub.asc", v.pubKey, 0o644), "sign-verify": "ed25519", "verification-ed25519-key": v.edPub}, VerifierOptions{GlobalGPGDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rv.VerifyCommitBytes(ctx, c, commit, v.edCommitMeta); !errors.Is(err, ostree.ErrNoSignature) {
		t.Fatalf("ed25519 only with gpg-verify on: %v", err)
	}
	both2, _ := DecodeDetached(v.commitMeta)
	both2 = WithEd25519Signature(both2, v.edCommitSig)
	if err := rv.VerifyCommit(ctx, c, commit, both2); err != nil {
		t.Fatalf("both signatures: %v", err)
	}
	// Nothing configured: everything passes, nothing is required.
	rv, err = NewRemoteVerifier(dir, "origin", cfg{"gpg-verify": "false"}, VerifierOptions{})
	if err != nil || rv.CommitSignaturesRequired() || rv.SummarySignaturesRequired() {
		t.Fatalf("unsigned remote: %v %+v", err, rv)
	}
	if err := rv.VerifyCommitBytes(ctx, c, commit, nil); err != nil {
		t.Fatal(err)
	}
}

func TestBadKeyFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "no OpenPGP key"},
		{"text", []byte("hello\n"), "not OpenPGP data"},
		{"truncated armor", []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEXCqtgBYJKwYBBAHaRw8BAQdArs1OaKaclJgD\n"), "armor"},
		{"truncated packet", []byte{0x98, 0x33, 0x04, 0x5c}, "truncated"},
		{"signature only", mustHex(t, "887504001608001d1621046d8b1031dba24dc93a3c42d0a806a7a87f23e02c05025e0d3280000a0910a806a7a87f23e02c08930100f144acfb2ede155a09de2f9dc2a212c553bedced9a417f47ee37513fda7e467600ff6ba73433700a39c9025eeb021ab1f6443d5f4ef8d0cead848103a32811b90c04"), "no usable key"},
	} {
		p := writeFile(t, dir, tc.name, tc.data, 0o644)
		_, err := LoadKeyringFile(p)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v (want %q and the path)", tc.name, err, tc.msg)
		}
	}
	v := loadSigVectors(t)
	// Secret keys: permissions, public-only, wrong passphrase.
	open := writeFile(t, dir, "open.key", v.secKey, 0o644)
	if _, err := LoadSecretKeyFile(open, ""); !errors.Is(err, ErrSecretKeyPermissions) {
		t.Fatalf("world-readable secret key: %v", err)
	}
	pubOnly := writeFile(t, dir, "pub.key", v.pubKey, 0o600)
	if _, err := LoadSecretKeyFile(pubOnly, ""); err == nil || !strings.Contains(err.Error(), "only public keys") {
		t.Fatalf("public key as secret key: %v", err)
	}
	if _, err := ParseEd25519SecretKey(v.edPub); err == nil {
		t.Fatal("public key accepted as ed25519 secret key")
	}
	bad := []byte(v.edSecret)
	bad[len(bad)-5] ^= 1
	if _, err := ParseEd25519SecretKey(string(bad)); err == nil {
		t.Fatal("mismatched ed25519 secret key accepted")
	}
	edOpen := writeFile(t, dir, "ed.key", []byte(v.edSecret+"\n"), 0o640)
	if _, err := LoadEd25519SecretKeyFile(edOpen); !errors.Is(err, ErrSecretKeyPermissions) {
		t.Fatalf("group-readable ed25519 key file: %v", err)
	}
}

// A passphrase-protected secret key exported by gpg unlocks with its
// passphrase file and signs; a wrong passphrase is a clear error.
func TestProtectedSecretKeyFile(t *testing.T) {
	h := newGPGHome(t)
	mustRun(t, "gpg", "--homedir", h.dir, "--batch", "--pinentry-mode", "loopback", "--passphrase", "s3cret",
		"--quick-gen-key", "Prot <prot@example.invalid>", "ed25519", "sign", "never")
	fpr := h.fpr("prot@example.invalid")
	out := mustRun(t, "gpg", "--homedir", h.dir, "--batch", "--pinentry-mode", "loopback", "--passphrase", "s3cret", "--armor", "--export-secret-keys", fpr)
	dir := t.TempDir()
	key := writeFile(t, dir, "key.asc", []byte(out), 0o600)
	if _, err := LoadSecretKeyFile(key, ""); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("protected key without passphrase: %v", err)
	}
	wrong := writeFile(t, dir, "wrong", []byte("nope\n"), 0o600)
	if _, err := LoadSecretKeyFile(key, wrong); err == nil || !strings.Contains(err.Error(), "wrong passphrase") || strings.Contains(err.Error(), "nope") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	right := writeFile(t, dir, "right", []byte("s3cret\n"), 0o600)
	sec, err := LoadSecretKeyFile(key, right)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := SignGPG(sec, fpr, []byte("data"), SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := ParseKeyring(h.exportPub(fpr))
	if res := (&GPGVerifier{Keyring: kr}).CheckSignatures([]byte("data"), [][]byte{sig}); len(res) != 1 || !res[0].Valid() {
		t.Fatalf("%+v", res)
	}
	// The same key straight from the GnuPG home (protected there with
	// openpgp-s2k3-ocb-aes): locked without the passphrase, refused with a
	// wrong one, usable with the right one.
	home, err := LoadGnuPGHome(h.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := home.SigningKey(fpr, time.Now()); err == nil || !strings.Contains(err.Error(), "--gpg-passphrase-file") {
		t.Fatalf("protected key in GnuPG home: %v", err)
	}
	if _, err := LoadGnuPGHome(h.dir, []byte("nope")); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("wrong passphrase for the GnuPG home: %v", err)
	}
	home, err = LoadGnuPGHome(h.dir, []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	sig, err = SignGPG(home, fpr, []byte("data"), SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res := (&GPGVerifier{Keyring: kr}).CheckSignatures([]byte("data"), [][]byte{sig}); len(res) != 1 || !res[0].Valid() {
		t.Fatalf("signature by the unlocked GnuPG-home key: %+v", res)
	}
}

// The pull calls one RemoteVerifier from several workers.
func TestRemoteVerifierConcurrent(t *testing.T) {
	v := loadSigVectors(t)
	commit := mustHex(t, commitBHex)
	c := ostree.SumBytes(commit)
	summary := mustHex(t, summaryHex)
	rv := vectorVerifier(t, v, cfg{"sign-verify": "true"})
	both, _ := DecodeDetached(v.commitMeta)
	both = WithEd25519Signature(both, v.edCommitSig)
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		go func() {
			errs <- rv.VerifyCommit(context.Background(), c, commit, both)
		}()
		go func() {
			errs <- rv.VerifySummaryBytes(context.Background(), summary, v.summarySig)
		}()
	}
	for i := 0; i < 16; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
