package sign

import (
	"context"
	"testing"

	"github.com/gostree/gostree/ostree"
)

func BenchmarkVerifyCommitGPG(b *testing.B) {
	v := loadSigVectors(b)
	commit := mustHex(b, commitBHex)
	c := ostree.SumBytes(commit)
	kr, err := ParseKeyring(v.pubKey)
	if err != nil {
		b.Fatal(err)
	}
	rv := &RemoteVerifier{GPGVerify: true, gpg: &GPGVerifier{Keyring: kr}}
	for b.Loop() {
		if err := rv.VerifyCommitBytes(context.Background(), c, commit, v.commitMeta); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCommitEd25519(b *testing.B) {
	v := loadSigVectors(b)
	commit := mustHex(b, commitBHex)
	c := ostree.SumBytes(commit)
	pub, _ := ParseEd25519PublicKey(v.edPub)
	rv := &RemoteVerifier{SignVerify: true, edCommit: &edSetup{keys: []Ed25519PublicKey{pub}}}
	for b.Loop() {
		if err := rv.VerifyCommitBytes(context.Background(), c, commit, v.edCommitMeta); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignGPG(b *testing.B) {
	v := loadSigVectors(b)
	sec, err := ReadSecretKeys(v.secKey, nil)
	if err != nil {
		b.Fatal(err)
	}
	commit := mustHex(b, commitBHex)
	for b.Loop() {
		if _, err := SignGPG(sec, vectorFingerprint, commit, SignOptions{Time: vectorTime}); err != nil {
			b.Fatal(err)
		}
	}
}
