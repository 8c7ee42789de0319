package ostree

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Checksum is an OSTree object checksum: a SHA-256 digest.
type Checksum [32]byte

// ZeroChecksum is the all-zero checksum, used for "no checksum".
var ZeroChecksum Checksum

// ParseChecksum parses 64 lowercase hex digits, as ostree writes them.
func ParseChecksum(s string) (Checksum, error) {
	var c Checksum
	if len(s) != 64 {
		return c, fmt.Errorf("invalid checksum %q: want 64 hex digits, got %d characters", truncate(s, 80), len(s))
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f') {
			return c, fmt.Errorf("invalid checksum %q: not lowercase hex", truncate(s, 80))
		}
	}
	hex.Decode(c[:], []byte(s))
	return c, nil
}

// ChecksumFromBytes converts a 32-byte checksum as stored inside GVariant
// data (type ay).
func ChecksumFromBytes(b []byte) (Checksum, error) {
	var c Checksum
	if len(b) != len(c) {
		return c, fmt.Errorf("invalid checksum of length %d, expected 32", len(b))
	}
	copy(c[:], b)
	return c, nil
}

// IsValidChecksum reports whether s is a checksum in text form.
func IsValidChecksum(s string) bool {
	_, err := ParseChecksum(s)
	return err == nil
}

// String returns the 64 lowercase hex digits.
func (c Checksum) String() string { return hex.EncodeToString(c[:]) }

// Short returns the first 10 hex digits, for messages.
func (c Checksum) Short() string { return c.String()[:10] }

// IsZero reports whether c is the zero checksum.
func (c Checksum) IsZero() bool { return c == ZeroChecksum }

// MarshalText implements encoding.TextMarshaler.
func (c Checksum) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Checksum) UnmarshalText(b []byte) error {
	x, err := ParseChecksum(string(b))
	if err != nil {
		return err
	}
	*c = x
	return nil
}

// SumBytes returns the checksum of a metadata object's serialised bytes.
func SumBytes(b []byte) Checksum { return sha256.Sum256(b) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
