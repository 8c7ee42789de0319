package sign

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp/ecdsa"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// LoadGnuPGHome reads the keys of a GnuPG 2.1+ home directory: public keys
// from pubring.kbx (keybox) or pubring.gpg, and the secret parts from
// private-keys-v1.d/*.key (S-expressions, extended or canonical format).
// Only secret keys stored without protection can be used (keys made with
// `gpg --batch --passphrase ”` or `%no-protection`); for a protected key
// the error says to export it and use LoadSecretKeyFile instead.
// passphrase is accepted for symmetry but GnuPG's own key protection is not
// implemented.
func LoadGnuPGHome(dir string, passphrase []byte) (*Keyring, error) {
	kr := &Keyring{}
	found := false
	for _, name := range []string{"pubring.kbx", "pubring.gpg"} {
		b, err := readFileLimited(filepath.Join(dir, name), MaxKeyringSize)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found = true
		if name == "pubring.kbx" {
			blocks, err := ParseKeybox(b)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
			}
			for _, blk := range blocks {
				if err := kr.add(blk); err != nil {
					kr.Skipped = append(kr.Skipped, err.Error())
				}
			}
		} else if err := kr.add(b); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
		}
	}
	if !found {
		return nil, fmt.Errorf("GnuPG home %s has no public keyring (pubring.kbx or pubring.gpg)", dir)
	}
	secDir := filepath.Join(dir, "private-keys-v1.d")
	ents, err := os.ReadDir(secDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".key") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var protected []string
	for _, n := range names {
		b, err := ReadSecretFile(filepath.Join(secDir, n))
		if err != nil {
			return nil, err
		}
		sk, err := parseAgentKey(b)
		if err != nil {
			kr.Skipped = append(kr.Skipped, fmt.Sprintf("%s: %v", n, err))
			continue
		}
		if sk.protected {
			protected = append(protected, n)
		}
		kr.attachSecret(sk)
	}
	kr.lockedHint = len(protected) > 0
	return kr, nil
}

// ParseKeybox extracts the OpenPGP keyblocks of a GnuPG keybox file
// (pubring.kbx); X.509 blobs are skipped.
func ParseKeybox(b []byte) ([][]byte, error) {
	var out [][]byte
	off := 0
	for off < len(b) {
		if len(b)-off < 5 {
			return nil, fmt.Errorf("keybox: truncated blob header at offset %d", off)
		}
		n := int(binary.BigEndian.Uint32(b[off:]))
		if n < 5 || n > len(b)-off {
			return nil, fmt.Errorf("keybox: invalid blob length %d at offset %d", n, off)
		}
		blob := b[off : off+n]
		switch blob[4] {
		case 0: // empty blob
		case 1: // header
			if n < 8 || string(blob[8:min(12, n)]) != "KBXf" {
				return nil, errors.New("keybox: not a keybox file (bad header blob)")
			}
		case 2: // OpenPGP
			if n < 16 {
				return nil, fmt.Errorf("keybox: truncated OpenPGP blob at offset %d", off)
			}
			ko := int(binary.BigEndian.Uint32(blob[8:]))
			kl := int(binary.BigEndian.Uint32(blob[12:]))
			if ko < 0 || kl < 0 || ko > n || kl > n-ko {
				return nil, fmt.Errorf("keybox: keyblock out of bounds in blob at offset %d", off)
			}
			out = append(out, blob[ko:ko+kl])
		}
		if off == 0 && blob[4] != 1 {
			return nil, errors.New("keybox: not a keybox file (no header blob)")
		}
		off += n
	}
	return out, nil
}

// agentKey is a secret key of gpg-agent's store.
type agentKey struct {
	alg       string            // "ecc", "rsa"...
	params    map[string][]byte // q, d, n, e, p, q ...
	curve     string
	protected bool
}

// parseAgentKey parses a private-keys-v1.d file: the extended format
// ("Key: (private-key ...)" among name: value lines) or a canonical
// S-expression.
func parseAgentKey(b []byte) (*agentKey, error) {
	var expr []byte
	if len(b) > 0 && b[0] == '(' {
		expr = b
	} else {
		lines := strings.Split(string(b), "\n")
		for i := 0; i < len(lines); i++ {
			if v, ok := strings.CutPrefix(lines[i], "Key:"); ok {
				var sb strings.Builder
				sb.WriteString(v)
				for i+1 < len(lines) && len(lines[i+1]) > 0 && (lines[i+1][0] == ' ' || lines[i+1][0] == '\t') {
					i++
					sb.WriteString(" ")
					sb.WriteString(lines[i])
				}
				expr = []byte(sb.String())
				break
			}
		}
		if expr == nil {
			return nil, errors.New("no Key: entry")
		}
	}
	v, rest, err := parseSexp(expr, 0)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("trailing data after the key expression")
	}
	top, ok := v.([]any)
	if !ok || len(top) < 2 {
		return nil, errors.New("key expression is not a list")
	}
	head, _ := top[0].([]byte)
	k := &agentKey{params: map[string][]byte{}}
	switch string(head) {
	case "private-key":
	case "protected-private-key":
		k.protected = true
	default:
		return nil, fmt.Errorf("unexpected key expression %q", head)
	}
	alg, ok := top[1].([]any)
	if !ok || len(alg) < 1 {
		return nil, errors.New("key expression has no algorithm list")
	}
	name, _ := alg[0].([]byte)
	k.alg = string(name)
	for _, e := range alg[1:] {
		l, ok := e.([]any)
		if !ok || len(l) < 2 {
			continue
		}
		pn, _ := l[0].([]byte)
		pv, _ := l[1].([]byte)
		if pn == nil || pv == nil {
			continue
		}
		if string(pn) == "curve" {
			k.curve = string(pv)
		}
		k.params[string(pn)] = pv
	}
	return k, nil
}

// parseSexp parses one S-expression (canonical or advanced transport
// syntax: tokens, "strings", #hex#, |base64|, len:bytes) from b. Atoms are
// []byte, lists []any.
func parseSexp(b []byte, depth int) (any, []byte, error) {
	if depth > 32 {
		return nil, nil, errors.New("S-expression nested too deeply")
	}
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return nil, nil, errors.New("unexpected end of S-expression")
	}
	switch c := b[0]; {
	case c == '(':
		var list []any
		b = b[1:]
		for {
			b = bytes.TrimLeft(b, " \t\r\n")
			if len(b) == 0 {
				return nil, nil, errors.New("unterminated list")
			}
			if b[0] == ')' {
				return list, b[1:], nil
			}
			v, rest, err := parseSexp(b, depth+1)
			if err != nil {
				return nil, nil, err
			}
			list = append(list, v)
			b = rest
		}
	case c == '#':
		end := bytes.IndexByte(b[1:], '#')
		if end < 0 {
			return nil, nil, errors.New("unterminated #hex#")
		}
		h := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\n' || r == '\t' || r == '\r' {
				return -1
			}
			return r
		}, string(b[1:1+end]))
		v, err := hex.DecodeString(h)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid #hex#: %v", err)
		}
		return v, b[end+2:], nil
	case c == '|':
		end := bytes.IndexByte(b[1:], '|')
		if end < 0 {
			return nil, nil, errors.New("unterminated |base64|")
		}
		v, err := base64.StdEncoding.DecodeString(string(b[1 : 1+end]))
		if err != nil {
			return nil, nil, fmt.Errorf("invalid |base64|: %v", err)
		}
		return v, b[end+2:], nil
	case c == '"':
		var out []byte
		for i := 1; i < len(b); i++ {
			switch b[i] {
			case '"':
				return out, b[i+1:], nil
			case '\\':
				if i+1 >= len(b) {
					return nil, nil, errors.New("unterminated string")
				}
				i++
				switch b[i] {
				case 'n':
					out = append(out, '\n')
				case 't':
					out = append(out, '\t')
				case 'r':
					out = append(out, '\r')
				default:
					out = append(out, b[i])
				}
			default:
				out = append(out, b[i])
			}
		}
		return nil, nil, errors.New("unterminated string")
	case c >= '0' && c <= '9':
		i := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i < len(b) && b[i] == ':' {
			var n int
			if _, err := fmt.Sscanf(string(b[:i]), "%d", &n); err != nil || i > 9 || n > len(b)-i-1 {
				return nil, nil, errors.New("invalid length-prefixed atom")
			}
			return b[i+1 : i+1+n], b[i+1+n:], nil
		}
		fallthrough
	default:
		i := 0
		for i < len(b) && !bytes.ContainsRune([]byte(" \t\r\n()#|\""), rune(b[i])) {
			i++
		}
		if i == 0 {
			return nil, nil, fmt.Errorf("unexpected character %q in S-expression", b[0])
		}
		return b[:i], b[i:], nil
	}
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// attachSecret gives the matching public (sub)key of kr its secret part.
func (kr *Keyring) attachSecret(sk *agentKey) {
	for _, e := range kr.entities {
		if priv := sk.privateFor(e.PrimaryKey); priv != nil {
			e.PrivateKey = priv
		}
		for i := range e.Subkeys {
			if priv := sk.privateFor(e.Subkeys[i].PublicKey); priv != nil {
				e.Subkeys[i].PrivateKey = priv
			}
		}
	}
}

// privateFor returns a private key for pk when sk is its secret part.
func (sk *agentKey) privateFor(pk *packet.PublicKey) *packet.PrivateKey {
	switch pub := pk.PublicKey.(type) {
	case *eddsa.PublicKey:
		q := sk.params["q"]
		if sk.alg != "ecc" || len(q) == 0 {
			return nil
		}
		point := pub.MarshalPoint()
		if !bytes.Equal(trimZeros(q), trimZeros(point)) {
			return nil
		}
		if sk.protected {
			return &packet.PrivateKey{PublicKey: *pk, Encrypted: true}
		}
		d := sk.params["d"]
		if len(d) > 32 {
			return nil
		}
		seed := make([]byte, 32)
		copy(seed[32-len(d):], d)
		priv := eddsa.NewPrivateKey(*pub)
		priv.D = seed
		return &packet.PrivateKey{PublicKey: *pk, PrivateKey: priv}
	case *ecdsa.PublicKey:
		q := sk.params["q"]
		if sk.alg != "ecc" || !bytes.Equal(q, pub.MarshalPoint()) {
			return nil
		}
		if sk.protected {
			return &packet.PrivateKey{PublicKey: *pk, Encrypted: true}
		}
		priv := ecdsa.NewPrivateKey(*pub)
		priv.D = new(big.Int).SetBytes(sk.params["d"])
		return &packet.PrivateKey{PublicKey: *pk, PrivateKey: priv}
	case *rsa.PublicKey:
		n := sk.params["n"]
		if sk.alg != "rsa" || new(big.Int).SetBytes(n).Cmp(pub.N) != 0 {
			return nil
		}
		if sk.protected {
			return &packet.PrivateKey{PublicKey: *pk, Encrypted: true}
		}
		priv := &rsa.PrivateKey{
			PublicKey: *pub,
			D:         new(big.Int).SetBytes(sk.params["d"]),
			Primes:    []*big.Int{new(big.Int).SetBytes(sk.params["p"]), new(big.Int).SetBytes(sk.params["q"])},
		}
		if priv.Validate() != nil {
			return nil
		}
		priv.Precompute()
		return &packet.PrivateKey{PublicKey: *pk, PrivateKey: priv}
	}
	return nil
}
