package sign

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	ed25519std "crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
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

	"github.com/ProtonMail/go-crypto/ocb"
	"github.com/ProtonMail/go-crypto/openpgp/ecdsa"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
)

// LoadGnuPGHome reads the keys of a GnuPG 2.1+ home directory: public keys
// from pubring.kbx (keybox) or pubring.gpg, and the secret parts from
// private-keys-v1.d/*.key (S-expressions, extended or canonical format).
// Keys gpg-agent protected with a passphrase (openpgp-s2k3-ocb-aes,
// openpgp-s2k3-sha1-aes-cbc) are unlocked with passphrase when it is not
// nil; otherwise they stay locked and SigningKey says so.
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
		if sk.protected && passphrase != nil {
			if err := sk.unprotect(passphrase); err != nil {
				return nil, fmt.Errorf("secret key %s: %w", n, err)
			}
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

// extendedKeyValue returns the value of the "Key:" entry of a key file in
// gpg-agent's extended format, unfolded as GnuPG's name-value reader does
// it: a line starting with a space or tab continues the previous entry;
// exactly one leading whitespace character and all trailing whitespace of
// each line are dropped and the pieces are joined with nothing between
// them (gpg-agent folds long values at 70 columns and, where no space is
// near, in the middle of a token or string, so inserting a separator
// would change the value); a blank continuation line stands for a newline
// and the whitespace that starts the line after it is swallowed. Names are
// case-insensitive and lines starting with '#' are comments.
func extendedKeyValue(b []byte) ([]byte, error) {
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" || line[0] == ' ' || line[0] == '\t' || line[0] == '#' {
			continue
		}
		name, first, ok := strings.Cut(line, ":")
		if !ok || !strings.EqualFold(name, "Key") {
			continue
		}
		var out []byte
		swallow := false
		piece := func(s string) {
			if swallow {
				s = strings.TrimLeft(s, " \t\r\n\v\f")
			} else if s != "" && isASCIISpace(s[0]) {
				s = s[1:]
			}
			s = strings.TrimRight(s, " \t\r\n\v\f")
			if s == "" {
				out = append(out, '\n')
				swallow = true
				return
			}
			out = append(out, s...)
			swallow = false
		}
		piece(first)
		for i+1 < len(lines) {
			next := lines[i+1]
			blank := strings.TrimLeft(next, " \t\r\n\v\f") == ""
			if !blank && !isASCIISpace(next[0]) {
				break
			}
			if blank && i+2 == len(lines) {
				break // the file's final newline
			}
			i++
			piece(next)
		}
		return bytes.TrimRight(out, "\n"), nil
	}
	return nil, errors.New("no Key: entry")
}

func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

// agentKey is a secret key of gpg-agent's store.
type agentKey struct {
	alg       string            // "ecc", "rsa"...
	params    map[string][]byte // q, d, n, e, p, q ...
	curve     string
	protected bool
	algList   []any // the parsed (ALG (param value)...) list
}

// parseAgentKey parses a private-keys-v1.d file: the extended format
// ("Key: (private-key ...)" among name: value lines) or a canonical
// S-expression.
func parseAgentKey(b []byte) (*agentKey, error) {
	var expr []byte
	if len(b) > 0 && b[0] == '(' {
		expr = b
	} else {
		v, err := extendedKeyValue(b)
		if err != nil {
			return nil, err
		}
		expr = v
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
	k.algList = alg
	k.addParams(alg[1:])
	return k, nil
}

// addParams records (name value) pairs.
func (k *agentKey) addParams(items []any) {
	for _, e := range items {
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
		return parseQuoted(b)
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
		if i < len(b) && (b[i] == '"' || b[i] == '#' || b[i] == '|') {
			// An optional length before a string, #hex# or |base64|
			// (ignored, as libgcrypt does).
			return parseSexp(b[i:], depth)
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

// parseQuoted parses a "quoted string" of the advanced S-expression
// syntax with libgcrypt's escapes: \b \t \v \n \f \r \" \' \\, \ooo
// (three octal digits), \xHH, and a backslash before a line break (which
// is dropped with it).
func parseQuoted(b []byte) (any, []byte, error) {
	out := []byte{}
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '"':
			return out, b[i+1:], nil
		case '\\':
			if i+1 >= len(b) {
				return nil, nil, errors.New("unterminated string")
			}
			i++
			switch e := b[i]; e {
			case 'b':
				out = append(out, '\b')
			case 't':
				out = append(out, '\t')
			case 'v':
				out = append(out, '\v')
			case 'n':
				out = append(out, '\n')
			case 'f':
				out = append(out, '\f')
			case 'r':
				out = append(out, '\r')
			case '"', '\'', '\\':
				out = append(out, e)
			case '\r', '\n':
				if i+1 < len(b) && (b[i+1] == '\r' || b[i+1] == '\n') && b[i+1] != e {
					i++
				}
			case 'x':
				if i+2 >= len(b) {
					return nil, nil, errors.New("invalid \\x escape in string")
				}
				v, err := hex.DecodeString(string(b[i+1 : i+3]))
				if err != nil {
					return nil, nil, errors.New("invalid \\x escape in string")
				}
				out = append(out, v[0])
				i += 2
			default:
				if e < '0' || e > '7' || i+2 >= len(b) || b[i+1] < '0' || b[i+1] > '7' || b[i+2] < '0' || b[i+2] > '7' {
					return nil, nil, fmt.Errorf("invalid escape \\%c in string", e)
				}
				out = append(out, (e-'0')<<6|(b[i+1]-'0')<<3|(b[i+2]-'0'))
				i += 2
			}
		default:
			out = append(out, b[i])
		}
	}
	return nil, nil, errors.New("unterminated string")
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

// canonicalSexp encodes a parsed S-expression in canonical form.
func canonicalSexp(v any, b *bytes.Buffer) {
	switch x := v.(type) {
	case []byte:
		fmt.Fprintf(b, "%d:", len(x))
		b.Write(x)
	case []any:
		b.WriteByte('(')
		for _, e := range x {
			canonicalSexp(e, b)
		}
		b.WriteByte(')')
	}
}

func atomName(v any) string {
	if l, ok := v.([]any); ok && len(l) > 0 {
		if a, ok := l[0].([]byte); ok {
			return string(a)
		}
	}
	return ""
}

// unprotect decrypts a protected agent key with passphrase, as gpg-agent
// does: the key is derived with OpenPGP's iterated and salted S2K (SHA-1)
// into an AES-128 key; OCB mode authenticates the public parameters as
// associated data, CBC mode carries a SHA-1 of the key instead.
func (k *agentKey) unprotect(passphrase []byte) error {
	var prot []any
	for _, e := range k.algList[1:] {
		if atomName(e) == "protected" {
			prot = e.([]any)
		}
	}
	if len(prot) != 4 {
		return errors.New("malformed protected key")
	}
	mode, _ := prot[1].([]byte)
	params, _ := prot[2].([]any)
	ct, _ := prot[3].([]byte)
	if len(params) != 2 || ct == nil {
		return errors.New("malformed protection parameters")
	}
	s2kp, _ := params[0].([]any)
	iv, _ := params[1].([]byte)
	if len(s2kp) != 3 || atomName(s2kp) != "sha1" {
		return errors.New("unsupported key protection S2K (want sha1)")
	}
	salt, _ := s2kp[1].([]byte)
	countStr, _ := s2kp[2].([]byte)
	var count int
	if _, err := fmt.Sscanf(string(countStr), "%d", &count); err != nil || count < 1024 || count > 1<<31 || len(salt) != 8 {
		return errors.New("invalid key protection S2K parameters")
	}
	key := make([]byte, 16)
	s2k.Iterated(key, sha1.New(), passphrase, salt, count)
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	var plain []byte
	switch string(mode) {
	case "openpgp-s2k3-ocb-aes":
		aead, err := ocb.NewOCBWithNonceAndTagSize(block, len(iv), 16)
		if err != nil || len(iv) != 12 {
			return errors.New("invalid OCB nonce")
		}
		// The associated data is the canonical algorithm list without the
		// protected element (and, depending on when it was added, without
		// protected-at).
		for _, skipAt := range []bool{false, true} {
			var rest []any
			for _, e := range k.algList {
				n := atomName(e)
				if n == "protected" || (skipAt && n == "protected-at") {
					continue
				}
				rest = append(rest, e)
			}
			var aad bytes.Buffer
			canonicalSexp(rest, &aad)
			if plain, err = aead.Open(nil, iv, ct, aad.Bytes()); err == nil {
				break
			}
		}
		if plain == nil {
			return errors.New("wrong passphrase (the protected key does not authenticate)")
		}
	case "openpgp-s2k3-sha1-aes-cbc":
		if len(iv) != aes.BlockSize || len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
			return errors.New("invalid CBC-protected key")
		}
		plain = make([]byte, len(ct))
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	default:
		return fmt.Errorf("unsupported key protection %q", mode)
	}
	v, _, err := parseSexp(plain, 0)
	l, ok := v.([]any)
	if err != nil || !ok || len(l) == 0 {
		return errors.New("wrong passphrase (the decrypted key is not readable)")
	}
	if first, ok := l[0].([]any); ok {
		if _, nested := first[0].([]any); nested {
			l = first // CBC: ((params...)(hash sha1 #..#))
		}
	}
	k.addParams(l)
	if err := k.checkConsistent(); err != nil {
		return errors.New("wrong passphrase (the decrypted key does not match its public key)")
	}
	k.protected = false
	return nil
}

// checkConsistent verifies that the secret parameters belong to the public
// ones where that is cheap (EdDSA).
func (k *agentKey) checkConsistent() error {
	if k.alg == "ecc" && k.curve == "Ed25519" {
		d := k.params["d"]
		if len(d) == 0 || len(d) > 32 {
			return errors.New("bad secret")
		}
		seed := make([]byte, 32)
		copy(seed[32-len(d):], d)
		pub := ed25519std.NewKeyFromSeed(seed).Public().(ed25519std.PublicKey)
		if !bytes.Equal(trimZeros(k.params["q"]), trimZeros(append([]byte{0x40}, pub...))) {
			return errors.New("mismatch")
		}
	}
	if k.alg == "rsa" {
		n, p, q := k.params["n"], k.params["p"], k.params["q"]
		if len(k.params["d"]) == 0 || len(p) == 0 || len(q) == 0 {
			return errors.New("bad secret")
		}
		if new(big.Int).Mul(new(big.Int).SetBytes(p), new(big.Int).SetBytes(q)).Cmp(new(big.Int).SetBytes(n)) != 0 {
			return errors.New("mismatch")
		}
	}
	return nil
}
