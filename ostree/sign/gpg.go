package sign

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/gvariant"
)

// Detached-metadata keys of the signature schemes.
const (
	GPGSigsKey     = "ostree.gpgsigs"
	Ed25519SigsKey = "ostree.sign.ed25519"
)

// MaxSignatureSize bounds one signature element: far above any real
// OpenPGP signature (an RSA-16384 one is ~2 KiB).
const MaxSignatureSize = 64 << 10

// GPGStatus is the outcome of checking one OpenPGP signature.
type GPGStatus int

// Signature outcomes, in the terms ostree uses.
const (
	GPGGood       GPGStatus = iota // valid and made by a trusted, usable key
	GPGBad                         // does not match the data (or cannot be checked)
	GPGMissingKey                  // made by a key not in the trusted keyrings
	GPGKeyExpired                  // the signing key (or its primary key) has expired
	GPGKeyRevoked                  // the signing key (or its primary key) is revoked
	GPGSigExpired                  // the signature itself has expired
	GPGInvalid                     // not a parseable OpenPGP signature
)

func (s GPGStatus) String() string {
	switch s {
	case GPGGood:
		return "good"
	case GPGBad:
		return "bad"
	case GPGMissingKey:
		return "public key not found"
	case GPGKeyExpired:
		return "key expired"
	case GPGKeyRevoked:
		return "key revoked"
	case GPGSigExpired:
		return "signature expired"
	default:
		return "invalid"
	}
}

// GPGSignature describes one checked OpenPGP signature.
type GPGSignature struct {
	Status GPGStatus
	// KeyID is the issuer's 64-bit key ID (0 if the packet had none).
	KeyID uint64
	// Fingerprint of the signing key and of its primary key (upper-case
	// hex; empty when the key is unknown).
	Fingerprint, PrimaryFingerprint string
	UserID                          string
	Created                         time.Time
	Expires                         time.Time // zero: the signature does not expire
	KeyExpires                      time.Time // zero: the key does not expire
	// Detail explains a non-good status.
	Detail string
}

// Valid reports whether the signature counts.
func (s GPGSignature) Valid() bool { return s.Status == GPGGood }

// Describe renders the signature as `ostree show` does.
func (s GPGSignature) Describe() string {
	var b strings.Builder
	if s.Status == GPGInvalid {
		fmt.Fprintf(&b, "Invalid signature: %s", s.Detail)
		return b.String()
	}
	fmt.Fprintf(&b, "Signature made %s using key ID %016X\n", s.Created.UTC().Format(time.ANSIC), s.KeyID)
	who := s.UserID
	if who == "" {
		who = s.Fingerprint
	}
	switch s.Status {
	case GPGGood:
		fmt.Fprintf(&b, "Good signature from %q", who)
	case GPGMissingKey:
		fmt.Fprintf(&b, "Can't check signature: public key not found")
	case GPGBad:
		fmt.Fprintf(&b, "BAD signature from %q", who)
		if s.Detail != "" {
			fmt.Fprintf(&b, ": %s", s.Detail)
		}
	case GPGKeyExpired:
		fmt.Fprintf(&b, "BAD signature from %q\nKey expired %s", who, s.KeyExpires.UTC().Format(time.ANSIC))
	case GPGKeyRevoked:
		fmt.Fprintf(&b, "Key revoked")
		if who != "" {
			fmt.Fprintf(&b, " (%s)", who)
		}
	case GPGSigExpired:
		fmt.Fprintf(&b, "Expired signature from %q\nSignature expired %s", who, s.Expires.UTC().Format(time.ANSIC))
	}
	if s.Fingerprint != "" && s.Status == GPGGood {
		fmt.Fprintf(&b, "\nKey fingerprint: %s", s.Fingerprint)
		if s.PrimaryFingerprint != s.Fingerprint {
			fmt.Fprintf(&b, " (primary key %s)", s.PrimaryFingerprint)
		}
	}
	return b.String()
}

// GPGVerifier checks OpenPGP detached signatures against a keyring.
type GPGVerifier struct {
	Keyring *Keyring
	// Now is the time expiry is judged at (time.Now when nil).
	Now func() time.Time
}

func (v *GPGVerifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// CheckSignatures checks every signature in sigs (each element a binary
// detached signature, possibly holding several signature packets) over
// data and reports each one.
func (v *GPGVerifier) CheckSignatures(data []byte, sigs [][]byte) []GPGSignature {
	var out []GPGSignature
	now := v.now()
	for _, blob := range sigs {
		pkts, err := splitPackets(blob)
		if err == nil && len(pkts) == 0 {
			err = errors.New("empty signature")
		}
		if err == nil && len(blob) > MaxSignatureSize {
			err = fmt.Errorf("signature of %d bytes is too large", len(blob))
		}
		if err != nil {
			out = append(out, GPGSignature{Status: GPGInvalid, Detail: err.Error()})
			continue
		}
		for _, rp := range pkts {
			if rp.tag != tagSignature {
				out = append(out, GPGSignature{Status: GPGInvalid, Detail: fmt.Sprintf("packet of type %d where a signature was expected", rp.tag)})
				continue
			}
			p, err := packet.Read(bytes.NewReader(rp.bytes))
			if err != nil {
				out = append(out, GPGSignature{Status: GPGInvalid, Detail: "unreadable signature packet: " + err.Error()})
				continue
			}
			sig, ok := p.(*packet.Signature)
			if !ok {
				out = append(out, GPGSignature{Status: GPGInvalid, Detail: "not a signature packet"})
				continue
			}
			out = append(out, v.check(data, sig, now))
		}
	}
	return out
}

type candidate struct {
	e   *openpgp.Entity
	pk  *packet.PublicKey
	sub *openpgp.Subkey // nil: the primary key
}

func (v *GPGVerifier) candidates(sig *packet.Signature) []candidate {
	var out []candidate
	if v.Keyring == nil {
		return nil
	}
	match := func(pk *packet.PublicKey) bool {
		if sig.IssuerFingerprint != nil {
			return bytes.Equal(sig.IssuerFingerprint, pk.Fingerprint)
		}
		return sig.IssuerKeyId != nil && *sig.IssuerKeyId == pk.KeyId
	}
	for _, e := range v.Keyring.entities {
		if match(e.PrimaryKey) {
			out = append(out, candidate{e: e, pk: e.PrimaryKey})
		}
		for i := range e.Subkeys {
			if match(e.Subkeys[i].PublicKey) {
				out = append(out, candidate{e: e, pk: e.Subkeys[i].PublicKey, sub: &e.Subkeys[i]})
			}
		}
	}
	return out
}

func hashFor(sig *packet.Signature, data []byte) (hash.Hash, error) {
	if !sig.Hash.Available() {
		return nil, fmt.Errorf("unsupported hash algorithm %v", sig.Hash)
	}
	if sig.Hash == crypto.MD5 || sig.Hash == crypto.SHA1 {
		// GnuPG and go-crypto reject these for data signatures too.
		return nil, fmt.Errorf("insecure hash algorithm %v", sig.Hash)
	}
	h, err := sig.PrepareVerify()
	if err != nil {
		return nil, err
	}
	switch sig.SigType {
	case packet.SigTypeBinary:
		h.Write(data)
		return h, nil
	case packet.SigTypeText:
		th := openpgp.NewCanonicalTextHash(h)
		th.Write(data)
		return th, nil
	}
	return nil, fmt.Errorf("signature of class 0x%02x is not a document signature", uint8(sig.SigType))
}

func (v *GPGVerifier) check(data []byte, sig *packet.Signature, now time.Time) GPGSignature {
	r := GPGSignature{Created: sig.CreationTime}
	if sig.IssuerKeyId != nil {
		r.KeyID = *sig.IssuerKeyId
	} else if len(sig.IssuerFingerprint) >= 8 {
		fp := sig.IssuerFingerprint
		for _, b := range fp[len(fp)-8:] {
			r.KeyID = r.KeyID<<8 | uint64(b)
		}
	}
	if sig.SigLifetimeSecs != nil && *sig.SigLifetimeSecs != 0 {
		r.Expires = sig.CreationTime.Add(time.Duration(*sig.SigLifetimeSecs) * time.Second)
	}
	cands := v.candidates(sig)
	if len(cands) == 0 {
		r.Status = GPGMissingKey
		r.Detail = fmt.Sprintf("key %016X is not in the trusted keyrings", r.KeyID)
		return r
	}
	var lastErr error
	for _, c := range cands {
		h, err := hashFor(sig, data)
		if err != nil {
			r.Status, r.Detail = GPGBad, err.Error()
			return r
		}
		if err := c.pk.VerifySignature(h, sig); err != nil {
			lastErr = err
			continue
		}
		r.Fingerprint = fingerprintHex(c.pk.Fingerprint)
		r.PrimaryFingerprint = fingerprintHex(c.e.PrimaryKey.Fingerprint)
		if id := c.e.PrimaryIdentity(); id != nil {
			r.UserID = id.Name
		}
		r.Status, r.Detail, r.KeyExpires = keyPolicy(c, sig, now)
		if r.Status == GPGGood && sig.SigExpired(now) {
			if sig.CreationTime.After(now) {
				r.Status, r.Detail = GPGBad, "signature created in the future"
			} else {
				r.Status, r.Detail = GPGSigExpired, "signature expired "+r.Expires.UTC().Format(time.RFC3339)
			}
		}
		return r
	}
	r.Status = GPGBad
	r.Detail = "signature does not match the signed data"
	if lastErr != nil && !strings.Contains(lastErr.Error(), "verification failure") {
		r.Detail += " (" + lastErr.Error() + ")"
	}
	if c := cands[0]; c.e != nil {
		r.Fingerprint = fingerprintHex(c.pk.Fingerprint)
		r.PrimaryFingerprint = fingerprintHex(c.e.PrimaryKey.Fingerprint)
		if id := c.e.PrimaryIdentity(); id != nil {
			r.UserID = id.Name
		}
	}
	return r
}

// keyPolicy applies GnuPG's rules (as ostree gets them through gpgme) to
// the key that made a cryptographically good signature: no revocation of
// the primary key or the signing subkey, neither expired now, the key not
// newer than the signature, and a signing subkey must be flagged for
// signing.
func keyPolicy(c candidate, sig *packet.Signature, now time.Time) (GPGStatus, string, time.Time) {
	e := c.e
	selfSig, _ := e.PrimarySelfSignature()
	var keyExpires time.Time
	expiry := func(pk *packet.PublicKey, s *packet.Signature) time.Time {
		if s == nil || s.KeyLifetimeSecs == nil || *s.KeyLifetimeSecs == 0 {
			return time.Time{}
		}
		return pk.CreationTime.Add(time.Duration(*s.KeyLifetimeSecs) * time.Second)
	}
	if len(e.Revocations) > 0 {
		return GPGKeyRevoked, "primary key " + fingerprintHex(e.PrimaryKey.Fingerprint) + " is revoked", keyExpires
	}
	if selfSig == nil {
		return GPGBad, "key has no valid self-signature", keyExpires
	}
	if t := expiry(e.PrimaryKey, selfSig); !t.IsZero() && now.After(t) {
		return GPGKeyExpired, "key " + fingerprintHex(e.PrimaryKey.Fingerprint) + " expired " + t.UTC().Format(time.RFC3339), t
	} else {
		keyExpires = t
	}
	if c.sub != nil {
		if len(c.sub.Revocations) > 0 {
			return GPGKeyRevoked, "signing subkey " + fingerprintHex(c.pk.Fingerprint) + " is revoked", keyExpires
		}
		if t := expiry(c.pk, c.sub.Sig); !t.IsZero() && now.After(t) {
			return GPGKeyExpired, "signing subkey " + fingerprintHex(c.pk.Fingerprint) + " expired " + t.UTC().Format(time.RFC3339), t
		} else if !t.IsZero() && (keyExpires.IsZero() || t.Before(keyExpires)) {
			keyExpires = t
		}
		if c.sub.Sig != nil && c.sub.Sig.FlagsValid && !c.sub.Sig.FlagSign {
			return GPGBad, "subkey " + fingerprintHex(c.pk.Fingerprint) + " is not a signing key", keyExpires
		}
	} else if selfSig.FlagsValid && !selfSig.FlagSign {
		return GPGBad, "key " + fingerprintHex(c.pk.Fingerprint) + " is not a signing key", keyExpires
	}
	if c.pk.CreationTime.After(sig.CreationTime) {
		return GPGBad, "key is newer than the signature", keyExpires
	}
	return GPGGood, "", keyExpires
}

// gpgError turns a set of results into the error ostree would give, or nil
// when at least one signature is valid. hint is appended to the "no
// signatures" error (how to disable the check).
func gpgError(what, hint string, results []GPGSignature) error {
	if len(results) == 0 {
		return fmt.Errorf("%s: GPG verification enabled, but %w%s", what, ostree.ErrNoSignature, hint)
	}
	allMissing := true
	var last GPGSignature
	for _, r := range results {
		if r.Valid() {
			return nil
		}
		if r.Status != GPGMissingKey {
			allMissing = false
		}
		last = r
	}
	if allMissing {
		ids := make([]string, len(results))
		for i, r := range results {
			ids[i] = fmt.Sprintf("%016X", r.KeyID)
		}
		return fmt.Errorf("%s: %w: GPG signatures found, but none are in trusted keyring (key ID %s)", what, ostree.ErrBadSignature, strings.Join(ids, ", "))
	}
	return fmt.Errorf("%s: %w: %s", what, ostree.ErrBadSignature, strings.ReplaceAll(last.Describe(), "\n", "; "))
}

// gpgSignatures extracts the ostree.gpgsigs elements of m (nil when absent
// or not of type aay, as ostree's lookup with an expected type does).
func gpgSignatures(m ostree.Metadata) [][]byte { return aayValue(m, GPGSigsKey) }

func aayValue(m ostree.Metadata, key string) [][]byte {
	v, ok := m.Lookup(key)
	if !ok || v.Type.String() != "aay" {
		return nil
	}
	arr, ok := v.Value.([]any)
	if !ok {
		return nil
	}
	out := make([][]byte, 0, len(arr))
	for _, e := range arr {
		if b, ok := e.([]byte); ok {
			out = append(out, b)
		}
	}
	return out
}

// withAppended returns a copy of m whose key holds its old signatures plus
// sig (an aay), keeping the other entries and their order.
func withAppended(m ostree.Metadata, key string, sig []byte) ostree.Metadata {
	old := aayValue(m, key)
	arr := make([]any, 0, len(old)+1)
	for _, s := range old {
		arr = append(arr, s)
	}
	arr = append(arr, sig)
	out := append(ostree.Metadata(nil), m...)
	out.Set(key, gvariant.NewVariant("aay", arr))
	return out
}

// VerifyGPG checks the ostree.gpgsigs of detached metadata (commitmeta or
// summary.sig) over data. what names the object in errors ("commit X",
// "summary"). It returns the per-signature results and nil, or an error
// wrapping ostree.ErrNoSignature / ostree.ErrBadSignature.
func (v *GPGVerifier) VerifyGPG(what string, data []byte, detached ostree.Metadata) ([]GPGSignature, error) {
	res := v.CheckSignatures(data, gpgSignatures(detached))
	return res, gpgError(what, "", res)
}
