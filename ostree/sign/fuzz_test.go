package sign

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The files ostree and GnuPG write parse: a keyring written by ostree
// remote gpg-import (trust packets included), a keybox, an agent key.
func TestRealKeyFiles(t *testing.T) {
	kr, err := ParseKeyring(readTestdata(t, "ostree-trustedkeys.gpg"))
	if err != nil {
		t.Fatal(err)
	}
	if kr.Len() != 4 {
		t.Fatalf("%d keys in ostree's keyring, want 4 (%v)", kr.Len(), kr.Skipped)
	}
	blocks, err := ParseKeybox(readTestdata(t, "pubring.kbx"))
	if err != nil {
		t.Fatal(err)
	}
	home := &Keyring{}
	for _, b := range blocks {
		if err := home.add(b); err != nil {
			t.Fatal(err)
		}
	}
	if home.Len() != 3 {
		t.Fatalf("%d keys in the keybox, want 3", home.Len())
	}
	sk, err := parseAgentKey(readTestdata(t, "agent-ed25519.key"))
	if err != nil {
		t.Fatal(err)
	}
	if sk.alg != "ecc" || sk.curve != "Ed25519" || sk.protected || len(sk.params["d"]) != 32 {
		t.Fatalf("agent key %+v", sk)
	}
	home.attachSecret(sk)
	var signer *SigningKey
	for _, fp := range home.Fingerprints() {
		if k, err := home.SigningKey(fp, time.Unix(1600003600, 0)); err == nil {
			signer = k
		}
	}
	if signer == nil {
		t.Fatal("the agent key matches no keybox key")
	}
	sig, err := signer.Sign([]byte("x"), SignOptions{Time: time.Unix(1600003600, 0)})
	if err != nil {
		t.Fatal(err)
	}
	res := (&GPGVerifier{Keyring: kr, Now: func() time.Time { return time.Unix(1600003700, 0) }}).CheckSignatures([]byte("x"), [][]byte{sig})
	if len(res) != 1 || !res[0].Valid() {
		t.Fatalf("%+v", res)
	}
}

// A key protected by gpg-agent (OCB) unlocks with its passphrase only.
func TestAgentKeyProtection(t *testing.T) {
	b := readTestdata(t, "agent-protected.key")
	sk, err := parseAgentKey(b)
	if err != nil || !sk.protected {
		t.Fatalf("%v %+v", err, sk)
	}
	if err := sk.unprotect([]byte("S3cret")); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	sk, _ = parseAgentKey(b)
	if err := sk.unprotect([]byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	if sk.protected || len(sk.params["d"]) == 0 {
		t.Fatalf("%+v", sk)
	}
}

func FuzzParseKeyring(f *testing.F) {
	v := loadSigVectors(f)
	f.Add(v.pubKey)
	f.Add(v.secKey)
	f.Add(readTestdata(f, "ostree-trustedkeys.gpg"))
	bin, _ := dearmor(v.pubKey)
	f.Add(bin)
	f.Add(append(append([]byte{}, bin...), v.commitMeta[16:]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		kr, err := ParseKeyring(data)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if kr.Len() == 0 || kr.Serialize(&buf) != nil {
			return
		}
		kr2, err := ParseKeyring(buf.Bytes())
		if err != nil {
			t.Fatalf("re-parsing a serialised keyring: %v", err)
		}
		if a, b := kr.Fingerprints(), kr2.Fingerprints(); len(a) != len(b) {
			t.Fatalf("keys %v became %v", a, b)
		}
	})
}

func FuzzCheckSignatures(f *testing.F) {
	v := loadSigVectors(f)
	kr, err := ParseKeyring(v.pubKey)
	if err != nil {
		f.Fatal(err)
	}
	commit := mustHex(f, commitBHex)
	md, _ := DecodeDetached(v.commitMeta)
	f.Add(GPGSignatures(md)[0], commit)
	sm, _ := DecodeDetached(v.summarySig)
	f.Add(GPGSignatures(sm)[0], commit)
	f.Add([]byte("invalid\n"), commit)
	summary := mustHex(f, summaryHex)
	gv := &GPGVerifier{Keyring: kr}
	f.Fuzz(func(t *testing.T, sig, data []byte) {
		for _, r := range gv.CheckSignatures(data, [][]byte{sig}) {
			// The only messages the trusted key ever signed are the
			// vector commit and summary: nothing else may verify.
			if r.Valid() && !bytes.Equal(data, commit) && !bytes.Equal(data, summary) {
				t.Fatalf("signature valid over other data: %+v", r)
			}
			if r.Describe() == "" {
				t.Fatal("empty description")
			}
		}
	})
}

func FuzzDecodeDetached(f *testing.F) {
	v := loadSigVectors(f)
	f.Add(v.commitMeta)
	f.Add(v.summarySig)
	f.Add(v.edCommitMeta)
	f.Add([]byte("borkborkbork"))
	f.Add([]byte("invalid\n"))
	ev := &Ed25519Verifier{}
	if k, err := ParseEd25519PublicKey(v.edPub); err == nil {
		ev.Trusted = []Ed25519PublicKey{k}
	}
	commit := mustHex(f, commitBHex)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeDetached(b)
		if err != nil {
			return
		}
		_ = ev.Verify("commit", commit, m)
		out, err := AppendEd25519Signature(b, make([]byte, 64))
		if err != nil {
			return
		}
		m2, err := DecodeDetached(out)
		if err != nil {
			t.Fatalf("appending a signature made invalid metadata: %v", err)
		}
		if n, n2 := len(Ed25519Signatures(m)), len(Ed25519Signatures(m2)); n2 != n+1 {
			t.Fatalf("%d signatures became %d", n, n2)
		}
	})
}

func FuzzParseKeybox(f *testing.F) {
	f.Add(readTestdata(f, "pubring.kbx"))
	f.Fuzz(func(t *testing.T, b []byte) {
		blocks, err := ParseKeybox(b)
		if err != nil {
			return
		}
		for _, blk := range blocks {
			_, _ = ParseKeyring(blk)
		}
	})
}

func FuzzParseAgentKey(f *testing.F) {
	f.Add(readTestdata(f, "agent-ed25519.key"))
	f.Add(readTestdata(f, "agent-protected.key"))
	f.Add(readTestdata(f, "agent-protected-iv-escapes.key"))
	f.Add([]byte("(11:private-key(3:ecc(5:curve7:Ed25519)(1:q3:abc)(1:d|AAEC|)))"))
	f.Add([]byte(`(protected-private-key (rsa (n #00C1#)(e #010001#)(protected openpgp-s2k3-ocb-aes ((sha1 #0102# "1024") #00#) #00#)))`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseAgentKey(b)
	})
}

func FuzzParseEd25519KeyLines(f *testing.F) {
	v := loadSigVectors(f)
	f.Add([]byte(v.edPub + "\n"))
	f.Add([]byte("\n" + v.edPub + "\ngarbage\n" + v.edPub))
	f.Add([]byte(v.edSecret))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseEd25519KeyLines(b)
		if err == nil && len(keys) == 0 {
			t.Fatal("no error and no keys")
		}
		for _, k := range keys {
			k2, err := ParseEd25519PublicKey(k.String())
			if err != nil || k2 != k {
				t.Fatalf("key %s does not round-trip: %v", k, err)
			}
		}
		_, _ = ParseEd25519SecretKey(string(b))
	})
}
