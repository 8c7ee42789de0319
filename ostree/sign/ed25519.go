package sign

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/gvariant"
)

// Ed25519PublicKey is a 32-byte ed25519 public key.
type Ed25519PublicKey [ed25519.PublicKeySize]byte

// String is the base64 form ostree uses in configuration and key files.
func (k Ed25519PublicKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Ed25519SecretKey is a libsodium-style 64-byte secret key: seed ‖ public.
type Ed25519SecretKey struct{ priv ed25519.PrivateKey }

// Public returns the public half of the key.
func (k *Ed25519SecretKey) Public() Ed25519PublicKey {
	var p Ed25519PublicKey
	copy(p[:], k.priv[32:])
	return p
}

// Sign returns the 64-byte RFC 8032 signature of data.
func (k *Ed25519SecretKey) Sign(data []byte) []byte { return ed25519.Sign(k.priv, data) }

// decodeB64 accepts standard base64 with or without padding, as GLib's
// lenient g_base64_decode does for well-formed input.
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// ParseEd25519PublicKey parses a base64 public key (32 bytes).
func ParseEd25519PublicKey(s string) (Ed25519PublicKey, error) {
	var k Ed25519PublicKey
	b, err := decodeB64(s)
	if err != nil {
		return k, errors.New("invalid ed25519 public key: not base64")
	}
	if len(b) != ed25519.PublicKeySize {
		return k, fmt.Errorf("incorrect ed25519 public key: %d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	copy(k[:], b)
	return k, nil
}

// ParseEd25519SecretKey parses a base64 secret key in ostree's format: the
// 64 bytes seed ‖ public key. The public half must match the seed.
func ParseEd25519SecretKey(s string) (*Ed25519SecretKey, error) {
	b, err := decodeB64(s)
	if err != nil {
		return nil, errors.New("invalid ed25519 secret key: not base64")
	}
	if len(b) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("incorrect ed25519 secret key: %d bytes, want %d (seed and public key)", len(b), ed25519.PrivateKeySize)
	}
	priv := ed25519.NewKeyFromSeed(b[:32])
	if !bytes.Equal(priv[32:], b[32:]) {
		return nil, errors.New("incorrect ed25519 secret key: its public half does not match its seed")
	}
	return &Ed25519SecretKey{priv: priv}, nil
}

// GenerateEd25519Key makes a new key pair from a 32-byte seed.
func Ed25519KeyFromSeed(seed []byte) (*Ed25519SecretKey, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("ed25519 seed must be %d bytes", ed25519.SeedSize)
	}
	return &Ed25519SecretKey{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// String is the base64 secret key (handle with care: it is the secret).
func (k *Ed25519SecretKey) String() string { return base64.StdEncoding.EncodeToString(k.priv) }

// ParseEd25519KeyLines parses a key file: one base64 public key per line.
// Blank lines are skipped; as in ostree, lines that are not keys are
// ignored, but a file with no valid key is an error.
func ParseEd25519KeyLines(data []byte) ([]Ed25519PublicKey, error) {
	var out []Ed25519PublicKey
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	bad := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		k, err := ParseEd25519PublicKey(line)
		if err != nil {
			bad++
			continue
		}
		out = append(out, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading ed25519 keys: %v", err)
	}
	if len(out) == 0 {
		if bad > 0 {
			return nil, fmt.Errorf("no valid ed25519 keys (%d invalid lines)", bad)
		}
		return nil, errors.New("no valid ed25519 keys")
	}
	return out, nil
}

// LoadEd25519KeyFile reads a key file (one base64 public key per line).
func LoadEd25519KeyFile(path string) ([]Ed25519PublicKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("ed25519 key file %s is not a regular file", path)
	}
	b, err := readFileLimited(path, MaxKeyringSize)
	if err != nil {
		return nil, err
	}
	keys, err := ParseEd25519KeyLines(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// LoadEd25519SecretKeyFile reads secret keys from a file (mode 0600 or
// stricter), one base64 secret key per line, as `ostree sign
// --keys-file` takes them.
func LoadEd25519SecretKeyFile(path string) ([]*Ed25519SecretKey, error) {
	b, err := ReadSecretFile(path)
	if err != nil {
		return nil, err
	}
	var out []*Ed25519SecretKey
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, err := ParseEd25519SecretKey(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no ed25519 secret key", path)
	}
	return out, nil
}

// LoadEd25519TrustDirs loads the system-wide key stores ostree uses when a
// remote enables ed25519 verification without naming keys: for each base
// directory, base/trusted.ed25519 and base/trusted.ed25519.d/*, and the
// revoked keys in base/revoked.ed25519(.d). Missing files are skipped;
// files without a valid key are ignored as ostree does.
func LoadEd25519TrustDirs(bases []string) (trusted, revoked []Ed25519PublicKey) {
	load := func(name string) []Ed25519PublicKey {
		var out []Ed25519PublicKey
		for _, base := range bases {
			files := []string{filepath.Join(base, name)}
			if ents, err := os.ReadDir(filepath.Join(base, name+".d")); err == nil {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				sort.Strings(names)
				for _, n := range names {
					files = append(files, filepath.Join(base, name+".d", n))
				}
			}
			for _, f := range files {
				if keys, err := LoadEd25519KeyFile(f); err == nil {
					out = append(out, keys...)
				}
			}
		}
		return out
	}
	return load("trusted.ed25519"), load("revoked.ed25519")
}

// Ed25519Verifier checks ostree.sign.ed25519 signatures.
type Ed25519Verifier struct {
	Trusted []Ed25519PublicKey
	Revoked []Ed25519PublicKey
}

// Verify checks that at least one ostree.sign.ed25519 signature in
// detached is made over data by a trusted key that is not revoked. what
// names the object in errors.
func (v *Ed25519Verifier) Verify(what string, data []byte, detached ostree.Metadata) error {
	sigs := Ed25519Signatures(detached)
	if len(sigs) == 0 {
		return fmt.Errorf("%s: ed25519: %w", what, ostree.ErrNoSignature)
	}
	revoked := make(map[Ed25519PublicKey]bool, len(v.Revoked))
	for _, k := range v.Revoked {
		revoked[k] = true
	}
	var usable []Ed25519PublicKey
	for _, k := range v.Trusted {
		if !revoked[k] {
			usable = append(usable, k)
		}
	}
	if len(usable) == 0 {
		if len(v.Trusted) > 0 {
			return fmt.Errorf("%s: %w: every trusted ed25519 key is revoked", what, ostree.ErrBadSignature)
		}
		return fmt.Errorf("%s: %w: no trusted ed25519 keys to verify with", what, ostree.ErrBadSignature)
	}
	tried := 0
	for _, s := range sigs {
		if len(s) != ed25519.SignatureSize {
			continue
		}
		for _, k := range usable {
			tried++
			if ed25519.Verify(k[:], data, s) {
				return nil
			}
		}
	}
	if tried == 0 {
		return fmt.Errorf("%s: %w: ed25519 signatures have the wrong size (want 64 bytes)", what, ostree.ErrBadSignature)
	}
	var keys []string
	for i, k := range usable {
		if i == 3 {
			keys = append(keys, fmt.Sprintf("and %d more", len(usable)-3))
			break
		}
		keys = append(keys, "'"+hex.EncodeToString(k[:])+"'")
	}
	return fmt.Errorf("%s: %w: ed25519: signature couldn't be verified with key %s", what, ostree.ErrBadSignature, strings.Join(keys, ", "))
}

func gvVariantAAY(arr []any) gvariant.Variant { return gvariant.NewVariant("aay", arr) }
