package sign

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/ecdsa"
	"github.com/ProtonMail/go-crypto/openpgp/ed25519"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// ErrSecretKeyPermissions is wrapped by the error for a secret key (or
// passphrase) file that users other than its owner can read.
var ErrSecretKeyPermissions = errors.New("secret key file is accessible by other users")

// ReadSecretFile reads a file holding secret material (a key or a
// passphrase), refusing it when its permissions let others read it.
func ReadSecretFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run chmod 600 on it", ErrSecretKeyPermissions, path, st.Mode().Perm())
	}
	return readFileLimited(path, MaxKeyringSize)
}

// ReadSecretKeys parses OpenPGP secret keys (gpg --export-secret-keys
// output, binary or armored) and unlocks them with passphrase when they
// are protected.
func ReadSecretKeys(data, passphrase []byte) (*Keyring, error) {
	kr, err := ParseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	n := 0
	for _, e := range kr.entities {
		keys := []*packet.PrivateKey{e.PrivateKey}
		for _, s := range e.Subkeys {
			keys = append(keys, s.PrivateKey)
		}
		for _, k := range keys {
			if k == nil || k.Dummy() {
				continue
			}
			n++
			if !k.Encrypted {
				continue
			}
			if passphrase == nil {
				return nil, fmt.Errorf("secret key %s is protected by a passphrase: give one (--gpg-passphrase-file)", fingerprintHex(k.PublicKey.Fingerprint))
			}
			if err := k.Decrypt(passphrase); err != nil {
				return nil, fmt.Errorf("unlocking secret key %s: wrong passphrase or damaged key", fingerprintHex(k.PublicKey.Fingerprint))
			}
		}
	}
	if n == 0 {
		return nil, errors.New("secret key: the data holds only public keys (export it with gpg --export-secret-keys)")
	}
	return kr, nil
}

// LoadSecretKeyFile reads a secret key file (mode 0600 or stricter) and an
// optional passphrase file (same rule; its first line is the passphrase).
func LoadSecretKeyFile(path, passphraseFile string) (*Keyring, error) {
	b, err := ReadSecretFile(path)
	if err != nil {
		return nil, err
	}
	var pass []byte
	if passphraseFile != "" {
		p, err := ReadSecretFile(passphraseFile)
		if err != nil {
			return nil, err
		}
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			p = p[:i]
		}
		pass = bytes.TrimSuffix(p, []byte("\r"))
	}
	kr, err := ReadSecretKeys(b, pass)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return kr, nil
}

// SigningKey is an unlocked OpenPGP key able to make signatures.
type SigningKey struct {
	Public  *packet.PublicKey
	private *packet.PrivateKey
}

// Fingerprint of the key that signs (upper-case hex).
func (k *SigningKey) Fingerprint() string { return fingerprintHex(k.Public.Fingerprint) }

func usableForSigning(pk *packet.PublicKey, priv *packet.PrivateKey, self *packet.Signature, revs []*packet.Signature, now time.Time) error {
	switch {
	case priv == nil || priv.Dummy():
		return errors.New("its secret part is not available")
	case priv.Encrypted:
		return errors.New("it is locked by a passphrase")
	case priv.PrivateKey == nil:
		return errors.New("its secret part is not available")
	case len(revs) > 0:
		return errors.New("it is revoked")
	case self == nil:
		return errors.New("it has no valid self-signature")
	case self.FlagsValid && !self.FlagSign:
		return errors.New("it is not a signing key")
	case pk.KeyExpired(self, now):
		return errors.New("it has expired")
	}
	return nil
}

// SigningKey picks the key used for signing as gpg does for a key ID: with
// a trailing "!" exactly that (sub)key; otherwise the newest usable
// signing subkey of the matching key, or its primary key.
func (kr *Keyring) SigningKey(id string, now time.Time) (*SigningKey, error) {
	_, exact := normalizeKeyID(id)
	var reasons []string
	for _, e := range kr.entities {
		if !entityMatches(e, id) {
			continue
		}
		selfSig, _ := e.PrimarySelfSignature()
		if len(e.Revocations) > 0 {
			reasons = append(reasons, fmt.Sprintf("key %s is revoked", fingerprintHex(e.PrimaryKey.Fingerprint)))
			continue
		}
		if selfSig != nil && e.PrimaryKey.KeyExpired(selfSig, now) {
			reasons = append(reasons, fmt.Sprintf("key %s has expired", fingerprintHex(e.PrimaryKey.Fingerprint)))
			continue
		}
		var best *SigningKey
		var bestTime time.Time
		for i := range e.Subkeys {
			s := &e.Subkeys[i]
			if exact && !keyMatches(s.PublicKey, id) {
				continue
			}
			if err := usableForSigning(s.PublicKey, s.PrivateKey, s.Sig, s.Revocations, now); err != nil {
				if exact || keyMatches(s.PublicKey, id) {
					reasons = append(reasons, fmt.Sprintf("subkey %s: %v", fingerprintHex(s.PublicKey.Fingerprint), err))
				}
				continue
			}
			if best == nil || s.PublicKey.CreationTime.After(bestTime) {
				best = &SigningKey{Public: s.PublicKey, private: s.PrivateKey}
				bestTime = s.PublicKey.CreationTime
			}
		}
		if best == nil && (!exact || keyMatches(e.PrimaryKey, id)) {
			if err := usableForSigning(e.PrimaryKey, e.PrivateKey, selfSig, nil, now); err == nil {
				best = &SigningKey{Public: e.PrimaryKey, private: e.PrivateKey}
			} else {
				reasons = append(reasons, fmt.Sprintf("key %s: %v", fingerprintHex(e.PrimaryKey.Fingerprint), err))
			}
		}
		if best != nil {
			return best, nil
		}
	}
	if len(reasons) > 0 {
		hint := ""
		if kr.lockedHint {
			hint = " (the key is protected by a passphrase in the GnuPG home: give it with --gpg-passphrase-file)"
		}
		return nil, fmt.Errorf("no usable signing key for %q: %s%s", id, reasons[0], hint)
	}
	return nil, fmt.Errorf("no secret key %q", id)
}

// SignOptions tune a signature.
type SignOptions struct {
	// Time is the signature creation time (now when zero).
	Time time.Time
	// Expires, when non-zero, makes the signature expire after this long.
	Expires time.Duration
}

// hashForKey is the digest gpg 2.2 uses by default with this key: SHA-256,
// or a digest as long as the curve order for larger ECDSA curves.
func hashForKey(pk *packet.PublicKey) crypto.Hash {
	if pk.PubKeyAlgo == packet.PubKeyAlgoECDSA {
		if c, err := pk.Curve(); err == nil {
			switch c {
			case packet.CurveNistP384:
				return crypto.SHA384
			case packet.CurveNistP521:
				return crypto.SHA512
			}
		}
	}
	return crypto.SHA256
}

var hashIDs = map[crypto.Hash]byte{crypto.SHA256: 8, crypto.SHA384: 9, crypto.SHA512: 10}

// mpi encodes b as an OpenPGP multiprecision integer.
func mpi(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	bitLen := 0
	if len(b) > 0 {
		bitLen = (len(b)-1)*8 + bitsLen8(b[0])
	}
	out := make([]byte, 2, 2+len(b))
	binary.BigEndian.PutUint16(out, uint16(bitLen))
	return append(out, b...)
}

func bitsLen8(x byte) int {
	n := 0
	for x != 0 {
		n++
		x >>= 1
	}
	return n
}

// Sign makes a binary detached OpenPGP signature over data, laid out as
// GnuPG 2.2 writes it: a v4 packet with an old-format header, hashed
// subpackets issuer fingerprint then creation time (then expiry, if any),
// and the issuer key ID unhashed.
func (k *SigningKey) Sign(data []byte, o SignOptions) ([]byte, error) {
	pk := k.Public
	if pk.Version != 4 {
		return nil, fmt.Errorf("signing with a v%d key is not supported", pk.Version)
	}
	t := o.Time
	if t.IsZero() {
		t = time.Now()
	}
	h := hashForKey(pk)
	var hashed bytes.Buffer
	hashed.Write([]byte{byte(1 + 1 + len(pk.Fingerprint)), 33, 4})
	hashed.Write(pk.Fingerprint)
	hashed.Write([]byte{5, 2})
	binary.Write(&hashed, binary.BigEndian, uint32(t.Unix()))
	if o.Expires > 0 {
		hashed.Write([]byte{5, 3})
		binary.Write(&hashed, binary.BigEndian, uint32(o.Expires/time.Second))
	}
	var head bytes.Buffer
	head.Write([]byte{4, byte(packet.SigTypeBinary), byte(pk.PubKeyAlgo), hashIDs[h]})
	binary.Write(&head, binary.BigEndian, uint16(hashed.Len()))
	head.Write(hashed.Bytes())

	hh := h.New()
	hh.Write(data)
	hh.Write(head.Bytes())
	hh.Write([]byte{4, 0xff})
	binary.Write(hh, binary.BigEndian, uint32(head.Len()))
	digest := hh.Sum(nil)

	sigMPIs, err := rawSign(k.private, h, digest)
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", k.Fingerprint(), err)
	}
	var body bytes.Buffer
	body.Write(head.Bytes())
	unhashed := make([]byte, 0, 10)
	unhashed = append(unhashed, 9, 16)
	unhashed = binary.BigEndian.AppendUint64(unhashed, pk.KeyId)
	binary.Write(&body, binary.BigEndian, uint16(len(unhashed)))
	body.Write(unhashed)
	body.Write(digest[:2])
	body.Write(sigMPIs)

	var out bytes.Buffer
	n := body.Len()
	switch {
	case n < 256:
		out.Write([]byte{0x88, byte(n)})
	case n < 65536:
		out.Write([]byte{0x89, byte(n >> 8), byte(n)})
	default:
		out.WriteByte(0x8a)
		binary.Write(&out, binary.BigEndian, uint32(n))
	}
	out.Write(body.Bytes())
	return out.Bytes(), nil
}

// rawSign signs a digest with the key's algorithm and returns the encoded
// signature fields of the packet.
func rawSign(priv *packet.PrivateKey, h crypto.Hash, digest []byte) ([]byte, error) {
	switch sk := priv.PrivateKey.(type) {
	case *rsa.PrivateKey:
		s, err := rsa.SignPKCS1v15(nil, sk, h, digest)
		if err != nil {
			return nil, err
		}
		return mpi(s), nil
	case crypto.Signer:
		if priv.PubKeyAlgo == packet.PubKeyAlgoRSA || priv.PubKeyAlgo == packet.PubKeyAlgoRSASignOnly {
			s, err := sk.Sign(rand.Reader, digest, h)
			if err != nil {
				return nil, err
			}
			return mpi(s), nil
		}
	}
	switch sk := priv.PrivateKey.(type) {
	case *eddsa.PrivateKey:
		r, s, err := eddsa.Sign(sk, digest)
		if err != nil {
			return nil, err
		}
		return append(mpi(r), mpi(s)...), nil
	case *ed25519.PrivateKey:
		return ed25519.Sign(sk, digest)
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, sk, digest)
		if err != nil {
			return nil, err
		}
		return append(mpi(r.Bytes()), mpi(s.Bytes())...), nil
	}
	return nil, fmt.Errorf("unsupported key algorithm %d for signing", priv.PubKeyAlgo)
}

// SignGPG signs data with the key named by keyID from kr and returns the
// detached signature.
func SignGPG(kr *Keyring, keyID string, data []byte, o SignOptions) ([]byte, error) {
	now := o.Time
	if now.IsZero() {
		now = time.Now()
	}
	k, err := kr.SigningKey(keyID, now)
	if err != nil {
		return nil, err
	}
	return k.Sign(data, o)
}
