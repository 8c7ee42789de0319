package ostree

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/gostree/gostree/ostree/gvariant"
)

// Static deltas (format: docs/ostree-format.md §7). A delta FROM→TO (or a
// from-scratch delta to TO) is a directory deltas/XX/REST holding a
// superblock and parts 0, 1, …; the superblock names the parts with their
// checksums and carries the TO commit itself.

// DeltaFetchFunc opens a file of the repository that serves a delta, by its
// path relative to that repository's root: "deltas/UQ/BSF…/superblock",
// "deltas/UQ/BSF…/0", or a fallback object "objects/ab/cd….filez". It has
// the shape of store.Store.Open. Errors are passed through wrapped, so the
// caller's retryable/permanent classification survives.
type DeltaFetchFunc func(ctx context.Context, path string) (io.ReadCloser, error)

// Static-delta format constants.
const (
	deltaSuperblockSig = "(a{sv}tayay" + "(a{sv}aya(say)sstayay)" + "aya(uayttay)a(yaytt))"
	deltaPartSig       = "(a(uuu)aa(ayay)ayay)"
	deltaMetaEndianKey = "ostree.endianness"
	// DeltaPartVersion is the only part format version.
	DeltaPartVersion = 0
	// MaxDeltaSuperblockSize bounds a superblock read from a fetch
	// function (inline deltas carry their parts in it).
	MaxDeltaSuperblockSize = 256 << 20
	// deltaSigMagic prefixes signed superblocks (static-delta --sign).
	deltaSigMagic = 0x4F535453474E4454
)

// Opcodes of a delta part.
const (
	deltaOpOpenSpliceAndClose = 'S'
	deltaOpOpen               = 'o'
	deltaOpWrite              = 'w'
	deltaOpSetReadSource      = 'r'
	deltaOpUnsetReadSource    = 'R'
	deltaOpClose              = 'c'
	deltaOpBspatch            = 'B'
)

// Compression types of a part (its first byte).
const (
	deltaCompNone = 0
	deltaCompXZ   = 'x'
)

var (
	typeDeltaSuperblock = gvariant.MustType(deltaSuperblockSig)
	typeDeltaPartInline = gvariant.MustType("(yay)")
	typeDeltaSigned     = gvariant.MustType("(taya{sv})")
)

// deltaB64 is ostree's "modified base64" of a checksum: standard base64
// without padding, '/' replaced by '_'.
func deltaB64(c Checksum) string {
	return strings.ReplaceAll(base64.RawStdEncoding.EncodeToString(c[:]), "/", "_")
}

// StaticDeltaName returns the name of a delta as ostree lists it:
// "FROMHEX-TOHEX", or "TOHEX" when from is zero (a from-scratch delta).
func StaticDeltaName(from, to Checksum) string {
	if from.IsZero() {
		return to.String()
	}
	return from.String() + "-" + to.String()
}

// ParseStaticDeltaName parses "FROM-TO" or "TO" (hex checksums). A zero
// from means a from-scratch delta.
func ParseStaticDeltaName(name string) (from, to Checksum, err error) {
	f, t, dash := strings.Cut(name, "-")
	if !dash {
		f, t = "", f
	}
	if to, err = ParseChecksum(t); err != nil {
		return from, to, fmt.Errorf("invalid static delta name %q: %w", truncate(name, 140), err)
	}
	if dash {
		if from, err = ParseChecksum(f); err != nil {
			return from, to, fmt.Errorf("invalid static delta name %q: %w", truncate(name, 140), err)
		}
		if from.IsZero() {
			return from, to, fmt.Errorf("invalid static delta name %q: zero FROM checksum", truncate(name, 140))
		}
	}
	return from, to, nil
}

// StaticDeltaDir returns the directory of a delta relative to the
// repository root: deltas/XX/REST-TOB64 for FROM→TO, deltas/XX/REST for a
// from-scratch delta (from zero), in modified base64.
func StaticDeltaDir(from, to Checksum) string {
	var s string
	if from.IsZero() {
		s = deltaB64(to)
	} else {
		s = deltaB64(from) + "-" + deltaB64(to)
	}
	return "deltas/" + s[:2] + "/" + s[2:]
}

// StaticDeltaSuperblockPath returns StaticDeltaDir(from, to)+"/superblock".
func StaticDeltaSuperblockPath(from, to Checksum) string {
	return StaticDeltaDir(from, to) + "/" + staticDeltaSuperblockName
}

// StaticDeltaPartPath returns the path of part i of a delta.
func StaticDeltaPartPath(from, to Checksum, i int) string {
	return StaticDeltaDir(from, to) + "/" + strconv.Itoa(i)
}

// DeltaIndexPath returns the path of the delta index of target to:
// delta-indexes/XX/REST.index.
func DeltaIndexPath(to Checksum) string {
	s := deltaB64(to)
	return "delta-indexes/" + s[:2] + "/" + s[2:] + ".index"
}

// StaticDelta is a parsed delta superblock.
type StaticDelta struct {
	// Metadata is the superblock's a{sv}, including ostree.endianness,
	// the detached metadata and inline parts.
	Metadata Metadata
	// Timestamp is the generation time.
	Timestamp time.Time
	// From is zero for a from-scratch delta.
	From, To Checksum
	// Commit is the serialised TO commit.
	Commit []byte
	// CommitMeta is the serialised detached metadata of TO, or nil.
	CommitMeta []byte
	// Parts are the part headers, in order.
	Parts []DeltaPart
	// Fallbacks are objects to fetch as plain objects.
	Fallbacks []DeltaFallback
	// ByteSwapped says the native-order fields were written on a host of
	// the other byte order (they are already converted here).
	ByteSwapped bool
	// Raw is the superblock file as read (without a signature wrapper).
	Raw []byte
}

// Name returns the delta's name ("FROM-TO" or "TO").
func (d *StaticDelta) Name() string { return StaticDeltaName(d.From, d.To) }

// DeltaPart is the header of one part.
type DeltaPart struct {
	Version uint32
	// Checksum is the SHA-256 of the part file (compression byte included).
	Checksum Checksum
	// Size is the size of the part file; USize the total size of the
	// objects it creates.
	Size, USize uint64
	// Objects are the objects the part creates, in order.
	Objects []ObjectName
	// Inline is the part file when the delta was generated with
	// --inline (stored in the superblock's metadata), else nil.
	Inline []byte
}

// DeltaFallback is an object the client fetches as a plain object.
type DeltaFallback struct {
	Object ObjectName
	// Size is the size of the object file in an archive repository;
	// USize its uncompressed size.
	Size, USize uint64
}

func deltaErr(format string, args ...any) error {
	return corrupt("static delta: "+format, args...)
}

// ParseStaticDelta parses and validates a superblock file (a signed
// superblock, as `static-delta generate --sign` writes, is unwrapped; its
// signatures are not checked here). It checks normal form, the checksums,
// the byte order, the part and fallback tables, and that the commit parses
// and hashes to To.
func ParseStaticDelta(b []byte) (*StaticDelta, error) {
	if len(b) >= 8 && binary.BigEndian.Uint64(b) == deltaSigMagic {
		v, err := gvariant.Unmarshal(typeDeltaSigned, b)
		if err != nil {
			return nil, deltaErr("signed superblock: %v", err)
		}
		b = v.([]any)[1].([]byte)
	}
	v, err := gvariant.Unmarshal(typeDeltaSuperblock, b)
	if err != nil {
		return nil, deltaErr("superblock: %v", err)
	}
	f := v.([]any)
	d := &StaticDelta{Raw: b, Metadata: metadataFromGV(f[0])}
	d.Timestamp = time.Unix(int64(bits.ReverseBytes64(f[1].(uint64))), 0).UTC()
	if fb := f[2].([]byte); len(fb) != 0 {
		if d.From, err = ChecksumFromBytes(fb); err != nil {
			return nil, deltaErr("superblock: FROM: %v", err)
		}
		if d.From.IsZero() {
			return nil, deltaErr("superblock: zero FROM checksum")
		}
	}
	if d.To, err = ChecksumFromBytes(f[3].([]byte)); err != nil {
		return nil, deltaErr("superblock: TO: %v", err)
	}
	d.Commit, err = gvariant.Marshal(typeCommit, f[4])
	if err != nil {
		return nil, deltaErr("superblock: commit: %v", err)
	}
	if got := SumBytes(d.Commit); got != d.To {
		return nil, deltaErr("superblock: the commit hashes to %s, not to the delta's TO %s", got, d.To)
	}
	if _, err := DecodeCommit(d.Commit); err != nil {
		return nil, deltaErr("superblock: commit %s: %v", d.To, err)
	}
	if deps := f[5].([]byte); len(deps) != 0 {
		return nil, deltaErr("superblock: delta depends on other deltas (%d bytes of dependencies), which ostree never generates", len(deps))
	}
	swap, err := deltaByteOrder(d.Metadata, f[6].([]any))
	if err != nil {
		return nil, err
	}
	d.ByteSwapped = swap
	u32 := func(x uint32) uint32 {
		if swap {
			return bits.ReverseBytes32(x)
		}
		return x
	}
	u64 := func(x uint64) uint64 {
		if swap {
			return bits.ReverseBytes64(x)
		}
		return x
	}
	dir := StaticDeltaDir(d.From, d.To)
	for i, pv := range f[6].([]any) {
		h := pv.([]any)
		p := DeltaPart{Version: u32(h[0].(uint32)), Size: u64(h[2].(uint64)), USize: u64(h[3].(uint64))}
		if p.Version != DeltaPartVersion {
			return nil, deltaErr("part %d has unsupported version %d", i, p.Version)
		}
		if p.Checksum, err = ChecksumFromBytes(h[1].([]byte)); err != nil {
			return nil, deltaErr("part %d: checksum: %v", i, err)
		}
		if p.Objects, err = parseDeltaObjects(h[4].([]byte)); err != nil {
			return nil, deltaErr("part %d: %v", i, err)
		}
		if iv, ok := d.Metadata.Lookup(dir + "/" + strconv.Itoa(i)); ok {
			if iv.Type.String() != "(yay)" {
				return nil, deltaErr("inline part %d has type %s, want (yay)", i, iv.Type)
			}
			p.Inline = gvariant.MustMarshal(typeDeltaPartInline, iv.Value)
		}
		d.Parts = append(d.Parts, p)
	}
	for i, fv := range f[7].([]any) {
		e := fv.([]any)
		typ := ObjectType(e[0].(uint8))
		c, err := ChecksumFromBytes(e[1].([]byte))
		if err != nil {
			return nil, deltaErr("fallback %d: %v", i, err)
		}
		if typ != ObjFile && typ != ObjDirTree && typ != ObjDirMeta {
			return nil, deltaErr("fallback %d: invalid object type %d", i, typ)
		}
		d.Fallbacks = append(d.Fallbacks, DeltaFallback{Object: ObjectName{c, typ}, Size: u64(e[2].(uint64)), USize: u64(e[3].(uint64))})
	}
	if cm, ok := d.Metadata.Lookup(dir + "/commitmeta"); ok {
		if cm.Type.String() != "a{sv}" {
			return nil, deltaErr("detached metadata has type %s, want a{sv}", cm.Type)
		}
		d.CommitMeta = gvariant.MustMarshal(typeVardict, cm.Value)
	}
	return d, nil
}

// deltaByteOrder reads ostree.endianness, or guesses as ostree does for
// old deltas without it: an average part size above 4 GiB means swapped.
func deltaByteOrder(m Metadata, parts []any) (swapped bool, err error) {
	if v, ok := m.Lookup(deltaMetaEndianKey); ok {
		if v.Type.String() != "y" {
			return false, deltaErr("%s has type %s, want y", deltaMetaEndianKey, v.Type)
		}
		switch v.Value.(uint8) {
		case 'l':
			return false, nil // gvariant here is little-endian
		case 'B':
			return true, nil
		default:
			return false, deltaErr("invalid %s %q", deltaMetaEndianKey, v.Value.(uint8))
		}
	}
	var total uint64
	var n uint64
	for _, pv := range parts {
		h := pv.([]any)
		total += h[2].(uint64)
		n += uint64(len(h[4].([]byte)) / 33)
	}
	return n > 0 && total/n > math.MaxUint32, nil
}

func parseDeltaObjects(b []byte) ([]ObjectName, error) {
	if len(b)%33 != 0 {
		return nil, fmt.Errorf("object list of %d bytes is not a multiple of 33", len(b))
	}
	out := make([]ObjectName, 0, len(b)/33)
	for i := 0; i < len(b); i += 33 {
		typ := ObjectType(b[i])
		if typ < ObjFile || typ > ObjCommit {
			return nil, fmt.Errorf("object %d has invalid type %d", i/33, b[i])
		}
		var c Checksum
		copy(c[:], b[i+1:i+33])
		out = append(out, ObjectName{c, typ})
	}
	return out, nil
}

func encodeDeltaObjects(objs []ObjectName) []byte {
	out := make([]byte, 0, 33*len(objs))
	for _, o := range objs {
		out = append(out, byte(o.Type))
		out = append(out, o.Checksum[:]...)
	}
	return out
}

// Encode serialises the superblock (little-endian native fields, with
// ostree.endianness 'l'). Metadata must already hold the endianness key,
// the detached metadata and any inline parts; d.Commit must be the TO
// commit.
func (d *StaticDelta) Encode() ([]byte, error) {
	cv, err := gvariant.Unmarshal(typeCommit, d.Commit)
	if err != nil {
		return nil, fmt.Errorf("static delta: commit: %w", err)
	}
	var from []byte
	if !d.From.IsZero() {
		from = d.From[:]
	}
	parts := make([]any, len(d.Parts))
	for i, p := range d.Parts {
		parts[i] = []any{p.Version, p.Checksum[:], p.Size, p.USize, encodeDeltaObjects(p.Objects)}
	}
	fbs := make([]any, len(d.Fallbacks))
	for i, f := range d.Fallbacks {
		fbs[i] = []any{uint8(f.Object.Type), f.Object.Checksum[:], f.Size, f.USize}
	}
	return gvariant.Marshal(typeDeltaSuperblock, []any{
		d.Metadata.gv(), bits.ReverseBytes64(uint64(d.Timestamp.Unix())), nonNilBytes(from), d.To[:],
		cv, []byte{}, parts, fbs,
	})
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
