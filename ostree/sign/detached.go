package sign

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/gostree/gostree/ostree"
)

// DecodeDetached parses detached metadata (a .commitmeta object or a
// summary.sig file). Bytes that are not a valid a{sv} (a truncated or
// garbage file) give an error wrapping ostree.ErrNoSignature: such a file
// carries no usable signature, which is how ostree reports it.
func DecodeDetached(b []byte) (ostree.Metadata, error) {
	if len(b) > ostree.MaxMetadataSize {
		return nil, fmt.Errorf("%w: detached metadata of %d bytes exceeds the %d-byte limit", ostree.ErrNoSignature, len(b), ostree.MaxMetadataSize)
	}
	m, err := ostree.DecodeMetadata(b)
	if err != nil {
		return nil, fmt.Errorf("%w: detached metadata is not a valid a{sv} dictionary: %v", ostree.ErrNoSignature, err)
	}
	return m, nil
}

func appendSig(existing []byte, key string, sig []byte) ([]byte, error) {
	var m ostree.Metadata
	if len(existing) > 0 {
		var err error
		if m, err = ostree.DecodeMetadata(existing); err != nil {
			return nil, fmt.Errorf("existing detached metadata is corrupt: %w", err)
		}
	}
	return ostree.EncodeMetadata(withAppended(m, key, sig))
}

// AppendGPGSignature adds a detached OpenPGP signature to serialised
// detached metadata (nil or empty for none) and returns the new bytes.
func AppendGPGSignature(existing, sig []byte) ([]byte, error) {
	return appendSig(existing, GPGSigsKey, sig)
}

// AppendEd25519Signature adds a 64-byte ed25519 signature to serialised
// detached metadata (nil or empty for none) and returns the new bytes.
func AppendEd25519Signature(existing, sig []byte) ([]byte, error) {
	if len(sig) != 64 {
		return nil, fmt.Errorf("ed25519 signature must be 64 bytes, not %d", len(sig))
	}
	return appendSig(existing, Ed25519SigsKey, sig)
}

// WithGPGSignature returns a copy of m with sig appended to ostree.gpgsigs.
func WithGPGSignature(m ostree.Metadata, sig []byte) ostree.Metadata {
	return withAppended(m, GPGSigsKey, sig)
}

// WithEd25519Signature returns a copy of m with sig appended to
// ostree.sign.ed25519.
func WithEd25519Signature(m ostree.Metadata, sig []byte) ostree.Metadata {
	return withAppended(m, Ed25519SigsKey, sig)
}

// GPGSignatures returns the elements of ostree.gpgsigs in m.
func GPGSignatures(m ostree.Metadata) [][]byte { return gpgSignatures(m) }

// Ed25519Signatures returns the elements of ostree.sign.ed25519 in m.
func Ed25519Signatures(m ostree.Metadata) [][]byte { return aayValue(m, Ed25519SigsKey) }

// WithoutGPGSignaturesBy returns a copy of m without the OpenPGP
// signatures whose issuer is one of the given keys (fingerprints or key
// IDs), as `gpg-sign --delete` does, and how many were removed.
func WithoutGPGSignaturesBy(m ostree.Metadata, ids []string) (ostree.Metadata, int) {
	sigs := gpgSignatures(m)
	var keep []any
	removed := 0
	for _, s := range sigs {
		if sigIssuedBy(s, ids) {
			removed++
			continue
		}
		keep = append(keep, s)
	}
	out := append(ostree.Metadata(nil), m...)
	if removed == 0 {
		return out, 0
	}
	if len(keep) == 0 {
		out.Delete(GPGSigsKey)
	} else {
		out.Set(GPGSigsKey, gvVariantAAY(keep))
	}
	return out, removed
}

// sigIssuedBy tells whether a detached signature was issued by one of ids.
func sigIssuedBy(blob []byte, ids []string) bool {
	pkts, err := splitPackets(blob)
	if err != nil {
		return false
	}
	for _, rp := range pkts {
		if rp.tag != tagSignature {
			continue
		}
		p, err := packet.Read(bytes.NewReader(rp.bytes))
		if err != nil {
			continue
		}
		sig, ok := p.(*packet.Signature)
		if !ok {
			continue
		}
		var fp, kid string
		if sig.IssuerFingerprint != nil {
			fp = fingerprintHex(sig.IssuerFingerprint)
		}
		if sig.IssuerKeyId != nil {
			kid = fmt.Sprintf("%016X", *sig.IssuerKeyId)
		}
		for _, id := range ids {
			n, _ := normalizeKeyID(id)
			if n == "" {
				continue
			}
			switch {
			case fp != "" && (fp == n || ((len(n) == 16 || len(n) == 8) && strings.HasSuffix(fp, n))):
				return true
			case kid != "" && ((len(n) == 16 || len(n) == 8) && strings.HasSuffix(kid, n) || len(n) == 40 && strings.HasSuffix(n, kid)):
				return true
			}
		}
	}
	return false
}
