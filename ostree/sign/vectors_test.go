package sign

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gostree/gostree/ostree"
)

// Commit B and the summary of the archive vector repo, as ostree 2022.7
// wrote them (../../shared/vectors objects-archive.txt and summary.txt).
const (
	commitBHex = "76657273696f6e00322e3000007308006f73747265652e7265662d62696e6469" +
		"6e670000000000006d61696e0005006173130f3251005217f27bcba5bf8fe61d" +
		"8e9e5c4320be286d68fbac6164262f4a141e70fe5365636f6e64000000000000" +
		"000000005e0d32804565f34abb72bbaef43994525ce5833c8de55cb7222f87ea" +
		"920876d6a7076525446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73" +
		"f62988eb0b6c5488885c5b545434"
	summaryHex = "6d61696e00000000ae000000000000000f5de29d133c56d6c028991239f7b03c" +
		"61b406d46af026736c493dce401f620f6f73747265652e636f6d6d69742e7665" +
		"7273696f6e000000322e3000007316006f73747265652e636f6d6d69742e7469" +
		"6d657374616d7000000000005e0d32800074181f432805776f73747265652e73" +
		"756d6d6172792e6d6f64650000000000617263686976652d7a32000073140000" +
		"6f73747265652e73756d6d6172792e6c6173742d6d6f64696669656400000000" +
		"000000005e0d328000741d00000000006f73747265652e73756d6d6172792e74" +
		"6f6d6273746f6e652d636f6d6d69747300000000000000000000622100000000" +
		"6f73747265652e73756d6d6172792e696e64657865642d64656c746173000000" +
		"0100621e265384ac7800"
	vectorFingerprint = "6D8B1031DBA24DC93A3C42D0A806A7A87F23E02C"
)

var vectorTime = time.Unix(1577923200, 0)

type sigVectors struct {
	commitMeta, summarySig       []byte
	edCommitMeta, edSummarySig   []byte
	edCommitSig, edSummarySigRaw []byte
	pubKey, secKey               []byte
	edPub, edSecret              string
}

func mustHex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadSigVectors(t testing.TB) *sigVectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/signatures.txt")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	// hexAfter collects the hex lines following the line that contains marker.
	hexAfter := func(marker string) []byte {
		i := strings.Index(text, marker)
		if i < 0 {
			t.Fatalf("vector %q not found", marker)
		}
		lines := strings.Split(text[i:], "\n")[1:]
		hexLine := regexp.MustCompile(`^[0-9a-f]+$`)
		var b []byte
		for _, l := range lines {
			if !hexLine.MatchString(l) {
				break
			}
			b = append(b, mustHex(t, l)...)
		}
		return b
	}
	valueAfter := func(marker string) string {
		i := strings.Index(text, marker)
		if i < 0 {
			t.Fatalf("vector %q not found", marker)
		}
		rest := text[i+len(marker):]
		return strings.TrimSpace(rest[:strings.IndexByte(rest, '\n')])
	}
	block := func(begin, end string) []byte {
		i := strings.Index(text, begin)
		j := strings.Index(text, end)
		if i < 0 || j < 0 {
			t.Fatalf("armored block %q not found", begin)
		}
		return []byte(text[i : j+len(end)+1])
	}
	v := &sigVectors{
		commitMeta:   hexAfter("objects/0f/5de29d...620f.commitmeta"),
		summarySig:   hexAfter("summary.sig (same a{sv} layout"),
		edCommitMeta: hexAfter(".commitmeta containing only that signature:"),
		edSummarySig: hexAfter("summary.sig containing only that signature:"),
		pubKey:       block("-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----END PGP PUBLIC KEY BLOCK-----"),
		secKey:       block("-----BEGIN PGP PRIVATE KEY BLOCK-----", "-----END PGP PRIVATE KEY BLOCK-----"),
		edPub:        valueAfter("trusted.ed25519): "),
		edSecret:     valueAfter("the form `ostree sign` takes): "),
	}
	v.edCommitSig = mustHex(t, valueAfter("signature over commit B (0f5de29d...620f.commit, 174 bytes): "))
	v.edSummarySigRaw = mustHex(t, valueAfter("signature over summary (first summary in summary.txt): "))
	return v
}

func TestVectorGPGVerify(t *testing.T) {
	v := loadSigVectors(t)
	kr, err := ParseKeyring(v.pubKey)
	if err != nil {
		t.Fatal(err)
	}
	if fps := kr.Fingerprints(); len(fps) != 1 || fps[0] != vectorFingerprint {
		t.Fatalf("fingerprints %v", fps)
	}
	gv := &GPGVerifier{Keyring: kr}
	for _, tc := range []struct {
		name      string
		data, sig []byte
	}{
		{"commit", mustHex(t, commitBHex), v.commitMeta},
		{"summary", mustHex(t, summaryHex), v.summarySig},
	} {
		md, err := DecodeDetached(tc.sig)
		if err != nil {
			t.Fatal(err)
		}
		res, err := gv.VerifyGPG(tc.name, tc.data, md)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(res) != 1 || !res[0].Valid() || res[0].Fingerprint != vectorFingerprint || !res[0].Created.Equal(vectorTime) {
			t.Fatalf("%s: %+v", tc.name, res)
		}
		// The same signature over other bytes is BAD.
		other := append(append([]byte{}, tc.data...), 0)
		if _, err := gv.VerifyGPG(tc.name, other, md); !errors.Is(err, ostree.ErrBadSignature) {
			t.Fatalf("%s over other bytes: %v", tc.name, err)
		}
	}
}

// Re-signing with the vector key at the vector time gives ostree's bytes:
// EdDSA is deterministic and the packet is laid out as GnuPG does.
func TestVectorGPGResignIdentical(t *testing.T) {
	v := loadSigVectors(t)
	sk, err := ReadSecretKeys(v.secKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		data, md []byte
	}{
		{"commit", mustHex(t, commitBHex), v.commitMeta},
		{"summary", mustHex(t, summaryHex), v.summarySig},
	} {
		sig, err := SignGPG(sk, vectorFingerprint, tc.data, SignOptions{Time: vectorTime})
		if err != nil {
			t.Fatal(err)
		}
		md, err := AppendGPGSignature(nil, sig)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(md, tc.md) {
			t.Fatalf("%s: re-signed metadata differs\n got %x\nwant %x", tc.name, md, tc.md)
		}
	}
}

func TestVectorEd25519(t *testing.T) {
	v := loadSigVectors(t)
	pub, err := ParseEd25519PublicKey(v.edPub)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := ParseEd25519SecretKey(v.edSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		data, sig, md []byte
	}{
		{"commit", mustHex(t, commitBHex), v.edCommitSig, v.edCommitMeta},
		{"summary", mustHex(t, summaryHex), v.edSummarySigRaw, v.edSummarySig},
	} {
		if got := sec.Sign(tc.data); !bytes.Equal(got, tc.sig) {
			t.Fatalf("%s: signature %x, want %x", tc.name, got, tc.sig)
		}
		md, err := AppendEd25519Signature(nil, sec.Sign(tc.data))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(md, tc.md) {
			t.Fatalf("%s: metadata %x, want %x", tc.name, md, tc.md)
		}
		dm, err := DecodeDetached(tc.md)
		if err != nil {
			t.Fatal(err)
		}
		ev := &Ed25519Verifier{Trusted: []Ed25519PublicKey{pub}}
		if err := ev.Verify(tc.name, tc.data, dm); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		other := append(append([]byte{}, tc.data...), 1)
		if err := ev.Verify(tc.name, other, dm); !errors.Is(err, ostree.ErrBadSignature) {
			t.Fatalf("%s over other data: %v", tc.name, err)
		}
	}
}
