package sign

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// MaxKeyringSize bounds a keyring file read into memory.
const MaxKeyringSize = 16 << 20

// OpenPGP packet tags used here.
const (
	tagSignature    = 2
	tagSecretKey    = 5
	tagPublicKey    = 6
	tagSecretSubkey = 7
	tagTrust        = 12
	tagPublicSubkey = 14
)

// rawPacket is one OpenPGP packet as it appears in a stream.
type rawPacket struct {
	tag   int
	bytes []byte // header and body
	body  []byte
}

// splitPackets cuts a binary OpenPGP stream into packets without
// interpreting them. Partial body lengths are refused: they never occur in
// keys or signatures.
func splitPackets(b []byte) ([]rawPacket, error) {
	var out []rawPacket
	off := 0
	for off < len(b) {
		start := off
		ctb := b[off]
		off++
		if ctb&0x80 == 0 {
			return nil, fmt.Errorf("not OpenPGP data: invalid packet header byte 0x%02x at offset %d", ctb, start)
		}
		var tag, n int
		if ctb&0x40 != 0 { // new format
			tag = int(ctb & 0x3f)
			if off >= len(b) {
				return nil, fmt.Errorf("truncated packet header at offset %d", start)
			}
			l0 := int(b[off])
			off++
			switch {
			case l0 < 192:
				n = l0
			case l0 < 224:
				if off >= len(b) {
					return nil, fmt.Errorf("truncated packet header at offset %d", start)
				}
				n = (l0-192)<<8 + int(b[off]) + 192
				off++
			case l0 == 255:
				if off+4 > len(b) {
					return nil, fmt.Errorf("truncated packet header at offset %d", start)
				}
				n = int(uint32(b[off])<<24 | uint32(b[off+1])<<16 | uint32(b[off+2])<<8 | uint32(b[off+3]))
				off += 4
			default:
				return nil, fmt.Errorf("unsupported partial-length packet at offset %d", start)
			}
		} else { // old format
			tag = int(ctb>>2) & 0x0f
			switch ctb & 3 {
			case 0:
				if off+1 > len(b) {
					return nil, fmt.Errorf("truncated packet header at offset %d", start)
				}
				n = int(b[off])
				off++
			case 1:
				if off+2 > len(b) {
					return nil, fmt.Errorf("truncated packet header at offset %d", start)
				}
				n = int(b[off])<<8 | int(b[off+1])
				off += 2
			case 2:
				if off+4 > len(b) {
					return nil, fmt.Errorf("truncated packet header at offset %d", start)
				}
				n = int(uint32(b[off])<<24 | uint32(b[off+1])<<16 | uint32(b[off+2])<<8 | uint32(b[off+3]))
				off += 4
			default:
				n = len(b) - off
			}
		}
		if n < 0 || n > len(b)-off {
			return nil, fmt.Errorf("truncated packet (tag %d, %d bytes) at offset %d", tag, n, start)
		}
		out = append(out, rawPacket{tag: tag, bytes: b[start : off+n], body: b[off : off+n]})
		off += n
	}
	return out, nil
}

// dearmor returns the binary OpenPGP data in b: b itself, or the
// concatenated bodies of every ASCII-armored block in it.
func dearmor(b []byte) ([]byte, error) {
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0]&0x80 != 0 || !bytes.Contains(trimmed, []byte("-----BEGIN PGP ")) {
		return b, nil // binary (or garbage, reported by the packet parser)
	}
	var out bytes.Buffer
	rest := trimmed
	for {
		i := bytes.Index(rest, []byte("-----BEGIN PGP "))
		if i < 0 {
			break
		}
		rest = rest[i:]
		end := bytes.Index(rest, []byte("-----END PGP "))
		if end < 0 {
			return nil, errors.New("armored block without an END line")
		}
		lineEnd := bytes.IndexByte(rest[end:], '\n')
		if lineEnd < 0 {
			lineEnd = len(rest) - end
		} else {
			lineEnd++
		}
		block := rest[:end+lineEnd]
		rest = rest[end+lineEnd:]
		blk, err := armor.Decode(bytes.NewReader(block))
		if err != nil {
			return nil, fmt.Errorf("invalid ASCII armor: %v", err)
		}
		if _, err := io.Copy(&out, io.LimitReader(blk.Body, MaxKeyringSize+1)); err != nil {
			return nil, fmt.Errorf("invalid ASCII armor (%s): %v", blk.Type, err)
		}
		if out.Len() > MaxKeyringSize {
			return nil, fmt.Errorf("armored data larger than %d bytes", MaxKeyringSize)
		}
	}
	return out.Bytes(), nil
}

// Keyring is a set of OpenPGP keys trusted for verification (or, for
// secret keys, available for signing).
type Keyring struct {
	entities openpgp.EntityList
	// Skipped lists keys that were present but could not be used, with the
	// reason (unsupported algorithm, broken self-signature...).
	Skipped []string
	// lockedHint: some secret keys came from a GnuPG home in protected form.
	lockedHint bool
	// loose are revocation certificates whose key is not (yet) here; they
	// are attached when the key is merged in.
	loose []*packet.Signature
}

// ParseKeyring reads OpenPGP keys: a binary keyring (as gpg --export or
// ostree remote gpg-import write, trust packets included), or one or more
// ASCII-armored blocks. Standalone key revocation certificates (as gpg
// --gen-revoke writes) are attached to their key. It fails when the data
// holds no usable key.
func ParseKeyring(data []byte) (*Keyring, error) {
	kr := &Keyring{}
	if err := kr.add(data); err != nil {
		return nil, err
	}
	if len(kr.entities) == 0 && len(kr.loose) == 0 {
		if len(kr.Skipped) > 0 {
			return nil, fmt.Errorf("keyring holds no usable key (%s)", strings.Join(kr.Skipped, "; "))
		}
		return nil, errors.New("keyring holds no OpenPGP key")
	}
	return kr, nil
}

// add parses data into the keyring, merging keys already present.
func (kr *Keyring) add(data []byte) error {
	if len(data) > MaxKeyringSize {
		return fmt.Errorf("keyring larger than %d bytes", MaxKeyringSize)
	}
	bin, err := dearmor(data)
	if err != nil {
		return err
	}
	pkts, err := splitPackets(bin)
	if err != nil {
		return err
	}
	var loose []*packet.Signature
	var cur []rawPacket
	flush := func() {
		if len(cur) == 0 {
			return
		}
		var buf bytes.Buffer
		for _, p := range cur {
			buf.Write(p.bytes)
		}
		cur = nil
		e, err := openpgp.ReadEntity(packet.NewReader(&buf))
		if err != nil {
			kr.Skipped = append(kr.Skipped, err.Error())
			return
		}
		kr.merge(e)
	}
	for _, p := range pkts {
		switch p.tag {
		case tagTrust:
			continue // gpg's local trust data: not part of the key
		case tagPublicKey, tagSecretKey:
			flush()
			cur = append(cur, p)
		case tagSignature:
			if len(cur) > 0 && len(p.body) >= 2 && p.body[0] >= 4 && p.body[1] == byte(packet.SigTypeKeyRevocation) && !directlyAfterKey(cur) {
				// A key revocation appended after the key's user IDs
				// (a revocation certificate concatenated to a key):
				// attach it once the key is parsed.
				if pk, err := packet.Read(bytes.NewReader(p.bytes)); err == nil {
					if sig, ok := pk.(*packet.Signature); ok {
						loose = append(loose, sig)
						continue
					}
				}
			}
			if len(cur) == 0 {
				pk, err := packet.Read(bytes.NewReader(p.bytes))
				if err == nil {
					if sig, ok := pk.(*packet.Signature); ok && sig.SigType == packet.SigTypeKeyRevocation {
						loose = append(loose, sig)
						continue
					}
				}
				kr.Skipped = append(kr.Skipped, "signature packet outside of a key")
				continue
			}
			cur = append(cur, p)
		default:
			if len(cur) == 0 {
				kr.Skipped = append(kr.Skipped, fmt.Sprintf("packet of type %d outside of a key", p.tag))
				continue
			}
			cur = append(cur, p)
		}
	}
	flush()
	kr.loose = append(kr.loose, loose...)
	kr.attachLoose()
	return nil
}

// directlyAfterKey tells whether the packets so far are only a primary key
// and its direct signatures (where a key revocation belongs).
func directlyAfterKey(cur []rawPacket) bool {
	for _, p := range cur[1:] {
		if p.tag != tagSignature {
			return false
		}
	}
	return true
}

// attachLoose attaches the revocation certificates whose key is present.
func (kr *Keyring) attachLoose() {
	var keep []*packet.Signature
	for _, sig := range kr.loose {
		if !kr.attachRevocation(sig) {
			keep = append(keep, sig)
		}
	}
	kr.loose = keep
}

func (kr *Keyring) attachRevocation(sig *packet.Signature) bool {
	for _, e := range kr.entities {
		if sig.IssuerKeyId != nil && *sig.IssuerKeyId != e.PrimaryKey.KeyId {
			continue
		}
		if sig.IssuerFingerprint != nil && !bytes.Equal(sig.IssuerFingerprint, e.PrimaryKey.Fingerprint) {
			continue
		}
		if e.PrimaryKey.VerifyRevocationSignature(sig) == nil {
			e.Revocations = appendSigs(e.Revocations, sig)
			return true
		}
	}
	return false
}

// merge adds e, or merges it into the copy of the same key already held
// (as gpg merges keys imported twice): revocations, user IDs, subkeys and
// newer self-signatures are combined.
func (kr *Keyring) merge(e *openpgp.Entity) {
	for _, old := range kr.entities {
		if !bytes.Equal(old.PrimaryKey.Fingerprint, e.PrimaryKey.Fingerprint) {
			continue
		}
		old.Revocations = appendSigs(old.Revocations, e.Revocations...)
		if old.PrivateKey == nil && e.PrivateKey != nil {
			old.PrivateKey = e.PrivateKey
		}
		for name, id := range e.Identities {
			oid, ok := old.Identities[name]
			if !ok {
				old.Identities[name] = id
				continue
			}
			oid.Revocations = appendSigs(oid.Revocations, id.Revocations...)
			oid.Signatures = appendSigs(oid.Signatures, id.Signatures...)
			if id.SelfSignature != nil && (oid.SelfSignature == nil || id.SelfSignature.CreationTime.After(oid.SelfSignature.CreationTime)) {
				oid.SelfSignature = id.SelfSignature
			}
		}
	sub:
		for _, s := range e.Subkeys {
			for i := range old.Subkeys {
				os := &old.Subkeys[i]
				if bytes.Equal(os.PublicKey.Fingerprint, s.PublicKey.Fingerprint) {
					os.Revocations = appendSigs(os.Revocations, s.Revocations...)
					if s.Sig != nil && (os.Sig == nil || s.Sig.CreationTime.After(os.Sig.CreationTime)) {
						os.Sig = s.Sig
					}
					if os.PrivateKey == nil && s.PrivateKey != nil {
						os.PrivateKey = s.PrivateKey
					}
					continue sub
				}
			}
			old.Subkeys = append(old.Subkeys, s)
		}
		return
	}
	kr.entities = append(kr.entities, e)
}

// appendSigs appends the signatures not already in list (compared by
// their encoding).
func appendSigs(list []*packet.Signature, add ...*packet.Signature) []*packet.Signature {
	enc := func(s *packet.Signature) []byte {
		var b bytes.Buffer
		if err := s.Serialize(&b); err != nil {
			return nil
		}
		return b.Bytes()
	}
next:
	for _, a := range add {
		ea := enc(a)
		for _, l := range list {
			if l == a || (ea != nil && bytes.Equal(enc(l), ea)) {
				continue next
			}
		}
		list = append(list, a)
	}
	return list
}

// Merge adds every key of other to kr.
func (kr *Keyring) Merge(other *Keyring) {
	if other == nil {
		return
	}
	for _, e := range other.entities {
		kr.merge(e)
	}
	kr.loose = append(kr.loose, other.loose...)
	kr.attachLoose()
	kr.Skipped = append(kr.Skipped, other.Skipped...)
}

// Len is the number of keys (primary keys) in the keyring.
func (kr *Keyring) Len() int {
	if kr == nil {
		return 0
	}
	return len(kr.entities)
}

// Fingerprints lists the primary key fingerprints (upper-case hex), sorted.
func (kr *Keyring) Fingerprints() []string {
	var out []string
	for _, e := range kr.entities {
		out = append(out, fingerprintHex(e.PrimaryKey.Fingerprint))
	}
	sort.Strings(out)
	return out
}

// Serialize writes the public part of every key as a binary keyring (the
// format of REMOTE.trustedkeys.gpg).
func (kr *Keyring) Serialize(w io.Writer) error {
	for _, e := range kr.entities {
		if err := e.Serialize(w); err != nil {
			return err
		}
	}
	return nil
}

// Select returns the keys matching any of ids (fingerprints, long or short
// key IDs, of the primary key or a subkey; "0x" prefixes allowed). It
// fails naming the first ID that matches nothing.
func (kr *Keyring) Select(ids []string) (*Keyring, error) {
	out := &Keyring{}
	for _, id := range ids {
		found := false
		for _, e := range kr.entities {
			if entityMatches(e, id) {
				out.merge(e)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("no key %q in the keyring", id)
		}
	}
	return out, nil
}

func fingerprintHex(fp []byte) string { return strings.ToUpper(hex.EncodeToString(fp)) }

// normalizeKeyID upper-cases a key ID and strips "0x" and a trailing "!".
func normalizeKeyID(id string) (norm string, exact bool) {
	id = strings.TrimSpace(id)
	if strings.HasSuffix(id, "!") {
		exact = true
		id = strings.TrimSuffix(id, "!")
	}
	id = strings.TrimPrefix(strings.TrimPrefix(id, "0x"), "0X")
	id = strings.ReplaceAll(id, " ", "")
	return strings.ToUpper(id), exact
}

// keyMatches tells whether pk is named by id (fingerprint, 16- or 8-digit
// key ID).
func keyMatches(pk *packet.PublicKey, id string) bool {
	id, _ = normalizeKeyID(id)
	if id == "" {
		return false
	}
	fp := fingerprintHex(pk.Fingerprint)
	switch len(id) {
	case 8, 16:
		return strings.HasSuffix(fp, id)
	default:
		return fp == id
	}
}

func entityMatches(e *openpgp.Entity, id string) bool {
	if keyMatches(e.PrimaryKey, id) {
		return true
	}
	for _, s := range e.Subkeys {
		if keyMatches(s.PublicKey, id) {
			return true
		}
	}
	return false
}

// LoadKeyringFile reads one keyring file (binary or armored).
func LoadKeyringFile(path string) (*Keyring, error) {
	b, err := readFileLimited(path, MaxKeyringSize)
	if err != nil {
		return nil, err
	}
	kr, err := ParseKeyring(b)
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	return kr, nil
}

// loadKeyringDir reads the regular files of dir (only those ending in
// suffix when suffix is not empty), in name order. A missing directory is
// an empty keyring.
func loadKeyringDir(dir, suffix string) (*Keyring, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return &Keyring{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := &Keyring{}
	for _, de := range ents {
		if suffix != "" && !strings.HasSuffix(de.Name(), suffix) {
			continue
		}
		p := filepath.Join(dir, de.Name())
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		kr, err := LoadKeyringFile(p)
		if err != nil {
			return nil, err
		}
		out.Merge(kr)
	}
	return out, nil
}

func readFileLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}
