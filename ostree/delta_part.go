package ostree

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"math/bits"
	"os"
	"runtime/debug"

	"github.com/ulikunitz/xz"
	"golang.org/x/sync/semaphore"

	"github.com/gostree/gostree/ostree/gvariant"
)

// deltaSpillLimit is how much of a part (compressed or not) is kept in
// memory; beyond it the data goes to an unlinked temporary file, so
// applying a delta needs bounded memory whatever the part sizes.
const deltaSpillLimit = 1 << 20

// deltaDecodeMemory bounds the xz dictionaries of the parts decoded at
// once by one apply, unless the program has a soft memory limit (see
// deltaDecodeBudget). 40 MiB lets one of ostree's parts (32 MiB
// dictionary) decode at a time, or many of gostree's (1 MiB): a pull
// through ostree's deltas then peaks at about 60 MB of RSS.
const deltaDecodeMemory = 40 << 20

// decodeBudget is the memory the xz dictionaries of one apply may take.
type decodeBudget struct {
	*semaphore.Weighted
	budget int64
}

// deltaDecodeBudget returns the budget for the xz dictionaries decoded at
// once: deltaDecodeMemory, or, when the program has a soft memory limit
// (GOMEMLIMIT, debug.SetMemoryLimit), half of that limit but at least
// 8 MiB. A generous limit thus lets parts with big dictionaries decode in
// parallel (one per job); a part whose dictionary exceeds the budget takes
// all of it and decodes alone.
func deltaDecodeBudget() int64 {
	if lim := debug.SetMemoryLimit(-1); lim != math.MaxInt64 {
		return max(lim/2, 8<<20)
	}
	return deltaDecodeMemory
}

// Bounds on the small tables of a part payload.
const (
	maxDeltaTableSize = 64 << 20
	maxDeltaOpsSize   = 256 << 20
)

var (
	typeDeltaModes  = gvariant.MustType("a(uuu)")
	typeDeltaXattrs = gvariant.MustType("aa(ayay)")
)

// spill is a write buffer that moves to an unlinked temporary file in dir
// once it outgrows limit.
type spill struct {
	dir   string
	limit int
	mem   []byte
	f     *os.File
	n     int64
}

func (s *spill) Write(p []byte) (int, error) {
	if s.f == nil && len(s.mem)+len(p) <= s.limit {
		s.mem = append(s.mem, p...)
		s.n += int64(len(p))
		return len(p), nil
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "delta-")
		if err != nil {
			return 0, err
		}
		os.Remove(f.Name())
		s.f = f
		if _, err := f.Write(s.mem); err != nil {
			return 0, err
		}
		s.mem = nil
	}
	n, err := s.f.Write(p)
	s.n += int64(n)
	return n, err
}

// ReadAt reads back what was written (the xz decoder's matches that reach
// beyond its ring).
func (s *spill) ReadAt(p []byte, off int64) (int, error) { return s.region().ReadAt(p, off) }

// region returns the buffered data for random access.
func (s *spill) region() region {
	if s.f == nil {
		return region{mem: s.mem, n: s.n}
	}
	return region{ra: s.f, n: s.n}
}

func (s *spill) Close() error {
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}

// region is a byte range held in memory (mem) or in a file (ra at off).
type region struct {
	mem []byte
	ra  io.ReaderAt
	off int64
	n   int64
}

// sub returns bytes [off, off+n) of r, checking the bounds.
func (r region) sub(off, n uint64) (region, error) {
	if off+n < off || off+n > uint64(r.n) {
		return region{}, fmt.Errorf("invalid offset/length %d/%d (payload is %d bytes)", off, n, r.n)
	}
	if r.mem != nil || r.ra == nil {
		return region{mem: r.mem[off : off+n], n: int64(n)}, nil
	}
	return region{ra: r.ra, off: r.off + int64(off), n: int64(n)}, nil
}

// bytes returns the region's bytes, reading them if needed (at most max).
func (r region) bytes(max int64) ([]byte, error) {
	if r.ra == nil {
		return r.mem, nil
	}
	if r.n > max {
		return nil, fmt.Errorf("%d bytes exceed the limit of %d", r.n, max)
	}
	b := make([]byte, r.n)
	if _, err := r.ra.ReadAt(b, r.off); err != nil && !(err == io.EOF && r.n == 0) {
		return nil, err
	}
	return b, nil
}

func (r region) reader() io.Reader {
	if r.ra == nil {
		return bytes.NewReader(r.mem)
	}
	return io.NewSectionReader(r.ra, r.off, r.n)
}

// ReadAt implements io.ReaderAt within the region.
func (r region) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > r.n {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n-off {
		p = p[:r.n-off]
	}
	var n int
	var err error
	if r.ra == nil {
		n = copy(p, r.mem[off:])
	} else {
		n, err = r.ra.ReadAt(p, r.off+off)
	}
	if err == nil && off+int64(n) == r.n {
		err = io.EOF
	}
	return n, err
}

// deltaPayload is a decompressed part: (a(uuu)aa(ayay)ayay).
type deltaPayload struct {
	modes  []deltaMode
	xattrs []Xattrs
	blob   region
	ops    []byte
}

type deltaMode struct{ uid, gid, mode uint32 }

// gvTupleWidth returns the framing-offset width a GVariant tuple of total
// size total with n offsets has in normal form, or 0 if none fits.
func gvTupleWidth(total int64, n int) int {
	for _, w := range []int{1, 2, 4, 8} {
		body := total - int64(n*w)
		if body < 0 {
			continue
		}
		// the width the serialiser picks for this body
		pick := 1
		for ; pick < 8; pick *= 2 {
			if uint64(body)+uint64(n*pick) <= uint64(1)<<(8*pick)-1 {
				break
			}
		}
		if pick == w {
			return w
		}
	}
	return 0
}

// parseDeltaPayload parses a part payload held in r. The mode table, the
// xattr table and the opcodes are read into memory (bounded); the data
// blob stays in r.
func parseDeltaPayload(r region) (*deltaPayload, error) {
	w := gvTupleWidth(r.n, 3)
	if w == 0 || r.n < int64(3*w) {
		return nil, fmt.Errorf("payload of %d bytes is too short", r.n)
	}
	var tail [24]byte
	if _, err := r.ReadAt(tail[:3*w], r.n-int64(3*w)); err != nil && err != io.EOF {
		return nil, err
	}
	rd := func(i int) uint64 {
		var o uint64
		for j := w - 1; j >= 0; j-- {
			o = o<<8 | uint64(tail[i*w+j])
		}
		return o
	}
	body := uint64(r.n) - uint64(3*w)
	end2, end1, end0 := rd(0), rd(1), rd(2)
	if !(end0 <= end1 && end1 <= end2 && end2 <= body) {
		return nil, fmt.Errorf("payload framing offsets %d, %d, %d out of range (%d bytes): %w", end0, end1, end2, body, gvariant.ErrNotNormal)
	}
	if end0 > maxDeltaTableSize || end1-end0 > maxDeltaTableSize {
		return nil, fmt.Errorf("payload mode/xattr tables too large")
	}
	if body-end2 > maxDeltaOpsSize {
		return nil, fmt.Errorf("payload opcode stream of %d bytes is too large", body-end2)
	}
	get := func(off, n uint64) ([]byte, error) {
		s, err := r.sub(off, n)
		if err != nil {
			return nil, err
		}
		return s.bytes(maxDeltaOpsSize)
	}
	mb, err := get(0, end0)
	if err != nil {
		return nil, err
	}
	mv, err := gvariant.Unmarshal(typeDeltaModes, mb)
	if err != nil {
		return nil, fmt.Errorf("mode table: %w", err)
	}
	xb, err := get(end0, end1-end0)
	if err != nil {
		return nil, err
	}
	xv, err := gvariant.Unmarshal(typeDeltaXattrs, xb)
	if err != nil {
		return nil, fmt.Errorf("xattr table: %w", err)
	}
	p := &deltaPayload{}
	for _, e := range mv.([]any) {
		t := e.([]any)
		p.modes = append(p.modes, deltaMode{bits.ReverseBytes32(t[0].(uint32)), bits.ReverseBytes32(t[1].(uint32)), bits.ReverseBytes32(t[2].(uint32))})
	}
	for i, e := range xv.([]any) {
		x, err := xattrsFromGV(e)
		if err != nil {
			return nil, fmt.Errorf("xattr table entry %d: %w", i, err)
		}
		p.xattrs = append(p.xattrs, x)
	}
	if p.blob, err = r.sub(end1, end2-end1); err != nil {
		return nil, err
	}
	if p.ops, err = get(end2, body-end2); err != nil {
		return nil, err
	}
	return p, nil
}

// encodeDeltaPayload serialises a payload held in memory.
func encodeDeltaPayload(modes []deltaMode, xattrs []Xattrs, blob, ops []byte) []byte {
	var b bytes.Buffer
	writeDeltaPayload(&b, modes, xattrs, blob, ops)
	return b.Bytes()
}

// writeDeltaPayload writes the payload (a(uuu)aa(ayay)ayay) to w without
// copying blob: the tables, blob, opcodes, then the tuple's framing
// offsets (normal form). It returns the payload size.
func writeDeltaPayload(w io.Writer, modes []deltaMode, xattrs []Xattrs, blob, ops []byte) (int64, error) {
	mv := make([]any, len(modes))
	for i, m := range modes {
		mv[i] = []any{bits.ReverseBytes32(m.uid), bits.ReverseBytes32(m.gid), bits.ReverseBytes32(m.mode)}
	}
	xv := make([]any, len(xattrs))
	for i, x := range xattrs {
		xv[i] = x.gv()
	}
	mb := gvariant.MustMarshal(typeDeltaModes, mv)
	xb := gvariant.MustMarshal(typeDeltaXattrs, xv)
	body := uint64(len(mb) + len(xb) + len(blob) + len(ops))
	wd := 1
	for ; wd < 8; wd *= 2 {
		if body+uint64(3*wd) <= uint64(1)<<(8*wd)-1 {
			break
		}
	}
	ends := []uint64{uint64(len(mb) + len(xb) + len(blob)), uint64(len(mb) + len(xb)), uint64(len(mb))}
	var tail []byte
	for _, e := range ends {
		for i := 0; i < wd; i++ {
			tail = append(tail, byte(e>>(8*i)))
		}
	}
	var n int64
	for _, part := range [][]byte{mb, xb, blob, ops, tail} {
		k, err := w.Write(part)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// readDeltaPart reads a part file from rd into a spill buffer in dir,
// checking its size (at most want.Size, and exactly it) and its SHA-256.
func readDeltaPart(rd io.Reader, want DeltaPart, dir string) (*spill, error) {
	s := &spill{dir: dir, limit: deltaSpillLimit}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(s, h), io.LimitReader(rd, int64(want.Size)+1))
	if err == nil {
		err = checkDeltaPart(n, h, want)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// fetchDeltaPayload streams part want from open, decompressing it while
// it arrives, into a payload buffer in dir (memory up to deltaSpillLimit,
// then an unlinked file): the compressed part is never held. Its size and
// SHA-256 are checked once the stream ends, before the payload is
// returned (nothing is applied from an unverified part); when the part is
// corrupt that is the error reported, whatever the decoder said. The xz
// dictionary is taken from mem (see decompressDeltaPartLimited). Streams
// the fast decoder does not support are fetched again and decoded by
// decompressDeltaPartLimited after verification.
func fetchDeltaPayload(ctx context.Context, want DeltaPart, open func() (io.ReadCloser, error), dir string, mem *decodeBudget) (*spill, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h := sha256.New()
	cr := &countReader{r: io.TeeReader(io.LimitReader(rc, int64(want.Size)+1), h)}
	br := bufio.NewReaderSize(cr, 64<<10)
	out := &spill{dir: dir, limit: deltaSpillLimit}
	decErr := decodeDeltaPartStream(ctx, br, out, mem)
	// The rest of the stream (the xz index and footer, or whatever follows
	// where decoding stopped) still counts for the size and checksum.
	if _, err := io.Copy(io.Discard, br); err != nil {
		out.Close()
		return nil, err
	}
	if err := checkDeltaPart(cr.n, h, want); err != nil {
		out.Close()
		return nil, err
	}
	if errors.Is(decErr, errXZUnsupported) {
		out.Close()
		return refetchDeltaPayload(ctx, want, open, dir, mem)
	}
	if decErr != nil {
		out.Close()
		return nil, decErr
	}
	return out, nil
}

// decodeDeltaPartStream decompresses a part file read from br into out.
func decodeDeltaPartStream(ctx context.Context, br *bufio.Reader, out io.Writer, mem *decodeBudget) error {
	c, err := br.ReadByte()
	if err == io.EOF {
		return deltaErr("empty part file")
	}
	if err != nil {
		return err
	}
	switch c {
	case deltaCompNone:
		_, err := io.Copy(out, br)
		return err
	case deltaCompXZ:
		if mem != nil {
			head, _ := br.Peek(64)
			need := xzDecodeBudget(head, mem.budget)
			if err := mem.Acquire(ctx, need); err != nil {
				return err
			}
			defer mem.Release(need)
		}
		if err := xzDecodeFast(br, out); err != nil {
			if errors.Is(err, errXZUnsupported) {
				return err
			}
			return deltaErr("part: xz: %v", err)
		}
		return nil
	default:
		return deltaErr("part: unknown compression type 0x%02x", c)
	}
}

// refetchDeltaPayload fetches a part again into a spill buffer, verifies
// it, and decompresses it (with ulikunitz/xz when the fast decoder cannot).
func refetchDeltaPayload(ctx context.Context, want DeltaPart, open func() (io.ReadCloser, error), dir string, mem *decodeBudget) (*spill, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	file, err := readDeltaPart(rc, want, dir)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return decompressDeltaPartLimited(ctx, file.region(), dir, mem)
}

// checkDeltaPart checks the size and SHA-256 of a part file read whole.
func checkDeltaPart(n int64, h hash.Hash, want DeltaPart) error {
	if uint64(n) != want.Size {
		return deltaErr("part is %d bytes, the superblock says %d", n, want.Size)
	}
	var got Checksum
	h.Sum(got[:0])
	if got != want.Checksum {
		return deltaErr("part checksum mismatch: expected %s, got %s", want.Checksum, got)
	}
	return nil
}

// xzDecodeBudget is how much of the decode memory budget decoding an xz
// stream starting with head into a spill buffer takes: its dictionary, but
// no more than the ring and read-back cache the decoder then uses (see
// xzWindow), and at most all of the budget.
func xzDecodeBudget(head []byte, budget int64) int64 {
	need, ok := xzDictSize(head)
	need = min(need, int64(xzRingCap)+int64(len(xzWindow{}.far))*farBlockSize)
	if !ok || need > budget {
		need = budget
	}
	return need
}

// xzDictSize returns the LZMA2 dictionary size an xz stream declares in
// its first block header, or ok=false if it cannot tell.
func xzDictSize(head []byte) (size int64, ok bool) {
	// stream header (12) | block header: size, flags, [sizes], filter id, props size, props
	if len(head) < 12+2 {
		return 0, false
	}
	b := head[12:]
	hsize := (int(b[0]) + 1) * 4
	if b[0] == 0 || len(b) < hsize {
		return 0, false
	}
	flags := b[1]
	pos := 2
	skip := func() bool {
		_, n := binary.Uvarint(b[pos:hsize])
		pos += n
		return n > 0
	}
	if flags&0x40 != 0 && !skip() || flags&0x80 != 0 && !skip() {
		return 0, false
	}
	if pos+3 > hsize || b[pos] != 0x21 || b[pos+1] != 1 {
		return 0, false
	}
	p := b[pos+2]
	if p > 40 {
		return 0, false
	}
	if p == 40 {
		return 1<<32 - 1, true
	}
	return int64(2|p&1) << (p/2 + 11), true
}

// decompressDeltaPart returns the payload of a verified part file.
func decompressDeltaPart(part region, dir string) (*spill, error) {
	return decompressDeltaPartLimited(context.Background(), part, dir, nil)
}

// decompressDeltaPartLimited is decompressDeltaPart holding, while the xz
// decoder runs, as much of mem as the stream's dictionary needs (at most
// all of it), so concurrent parts with big dictionaries (ostree uses
// 32 MiB) decode one at a time.
func decompressDeltaPartLimited(ctx context.Context, part region, dir string, mem *decodeBudget) (*spill, error) {
	if part.n < 1 {
		return nil, deltaErr("empty part file")
	}
	var c [1]byte
	if _, err := part.ReadAt(c[:], 0); err != nil && err != io.EOF {
		return nil, err
	}
	body, _ := part.sub(1, uint64(part.n-1))
	switch c[0] {
	case deltaCompNone:
		if body.ra == nil {
			return &spill{mem: body.mem, n: body.n}, nil
		}
		out := &spill{dir: dir, limit: deltaSpillLimit}
		if _, err := io.Copy(out, body.reader()); err != nil {
			out.Close()
			return nil, err
		}
		return out, nil
	case deltaCompXZ:
		if mem != nil {
			var head [64]byte
			n, _ := body.ReadAt(head[:], 0)
			need := xzDecodeBudget(head[:n], mem.budget)
			if err := mem.Acquire(ctx, need); err != nil {
				return nil, err
			}
			defer mem.Release(need)
		}
		out := &spill{dir: dir, limit: deltaSpillLimit}
		err := xzDecodeFast(body.reader(), out)
		if errors.Is(err, errXZUnsupported) {
			out.Close()
			out = &spill{dir: dir, limit: deltaSpillLimit}
			// ulikunitz/xz reads its input a byte at a time: buffer it, or
			// a part spilled to a file costs a pread per byte.
			var zr io.Reader
			if zr, err = xz.NewReader(bufio.NewReaderSize(body.reader(), 64<<10)); err == nil {
				_, err = io.Copy(out, zr)
			}
		}
		if err != nil {
			out.Close()
			return nil, deltaErr("part: xz: %v", err)
		}
		return out, nil
	default:
		return nil, deltaErr("part: unknown compression type 0x%02x", c[0])
	}
}

// readUvarint reads an unsigned LEB128 varint (at most 10 bytes).
func readUvarint(b []byte, pos *int) (uint64, error) {
	v, n := binary.Uvarint(b[*pos:])
	if n <= 0 {
		if n == 0 {
			return 0, fmt.Errorf("unexpected end of opcode stream reading a varint")
		}
		return 0, fmt.Errorf("varint overflows 64 bits")
	}
	*pos += n
	return v, nil
}
