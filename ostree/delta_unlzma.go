package ostree

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
)

// A fast decoder for the xz streams of delta parts: one or more blocks
// with a single LZMA2 filter, as liblzma (ostree) and delta_lzma.go write
// them. Anything else returns errXZUnsupported and the caller falls back
// to ulikunitz/xz, which is about 3x slower on these streams.

var errXZUnsupported = errors.New("xz stream uses features the fast decoder does not implement")

var crc64Table = crc64.MakeTable(crc64.ECMA)

type xzRangeDec struct {
	in   []byte // the chunk, then xzRangePad bytes of padding
	pos  int
	end  int // len of the chunk: reading beyond it means a truncated chunk
	rng  uint32
	code uint32
}

// xzRangePad is how far the range decoder may read past the end of a
// chunk before the decoder notices (it checks once per symbol: a symbol
// takes at most 48 bits, each reading at most one byte). The padding
// spares a bounds check on every bit.
const xzRangePad = 128

// init starts decoding in, which must have xzRangePad bytes of capacity
// after its end (they are zeroed).
func (d *xzRangeDec) init(in []byte) error {
	if len(in) < 5 || in[0] != 0 {
		return fmt.Errorf("xz: bad range coder start")
	}
	d.end = len(in)
	d.in = in[:len(in)+xzRangePad]
	clear(d.in[d.end:])
	d.pos, d.rng = 5, 0xFFFFFFFF
	d.code = binary.BigEndian.Uint32(in[1:5])
	return nil
}

// overrun reports reading past the end of the chunk.
func (d *xzRangeDec) overrun() bool { return d.pos > d.end }

// bit decodes one bit with probability p. The coder is normalised before
// each decode (not after), which keeps bit small enough to be inlined.
// bit decodes one bit with probability p. The coder is normalised before
// a decode rather than after it (everywhere: direct and the literal loops
// too), which keeps bit small enough for the compiler to inline.
func (d *xzRangeDec) bit(p *lzProb) uint32 {
	if d.rng < lzTop {
		d.rng <<= 8
		d.code = d.code<<8 | uint32(d.in[d.pos])
		d.pos++
	}
	bound := (d.rng >> 11) * uint32(*p)
	if d.code < bound {
		d.rng = bound
		*p += (lzBitModelTotal - *p) >> lzMoveBits
		return 0
	}
	d.code -= bound
	d.rng -= bound
	*p -= *p >> lzMoveBits
	return 1
}

func (d *xzRangeDec) direct(n int) uint32 {
	var res uint32
	for ; n > 0; n-- {
		if d.rng < lzTop {
			d.rng <<= 8
			d.code = d.code<<8 | uint32(d.in[d.pos])
			d.pos++
		}
		d.rng >>= 1
		d.code -= d.rng
		t := 0 - (d.code >> 31)
		d.code += d.rng & t
		res = res<<1 + (t + 1)
	}
	return res
}

// tree decodes an n-bit symbol MSB first through the bit tree probs;
// reverseTree LSB first from probs[off:]. Both keep the coder's state in
// locals (they are too big to inline, and are most of a match's cost).
func (d *xzRangeDec) tree(probs []lzProb, n int) uint32 {
	rng, code, pos, in := d.rng, d.code, d.pos, d.in
	m := uint32(1)
	for i := 0; i < n; i++ {
		if rng < lzTop {
			rng <<= 8
			code = code<<8 | uint32(in[pos])
			pos++
		}
		p := &probs[m]
		bound := (rng >> 11) * uint32(*p)
		if code < bound {
			rng = bound
			*p += (lzBitModelTotal - *p) >> lzMoveBits
			m <<= 1
		} else {
			code -= bound
			rng -= bound
			*p -= *p >> lzMoveBits
			m = m<<1 | 1
		}
	}
	d.rng, d.code, d.pos = rng, code, pos
	return m - 1<<uint(n)
}

func (d *xzRangeDec) reverseTree(probs []lzProb, off, n int) uint32 {
	rng, code, pos, in := d.rng, d.code, d.pos, d.in
	m := 1
	var sym uint32
	for i := 0; i < n; i++ {
		if rng < lzTop {
			rng <<= 8
			code = code<<8 | uint32(in[pos])
			pos++
		}
		p := &probs[off+m]
		bound := (rng >> 11) * uint32(*p)
		if code < bound {
			rng = bound
			*p += (lzBitModelTotal - *p) >> lzMoveBits
			m <<= 1
		} else {
			code -= bound
			rng -= bound
			*p -= *p >> lzMoveBits
			m = m<<1 | 1
			sym |= 1 << uint(i)
		}
	}
	d.rng, d.code, d.pos = rng, code, pos
	return sym
}

func (l *lzLenEnc) decode(d *xzRangeDec, posState uint32) uint32 {
	if d.bit(&l.choice) == 0 {
		return d.tree(l.low[posState][:], 3)
	}
	if d.bit(&l.choice2) == 0 {
		return 8 + d.tree(l.mid[posState][:], 3)
	}
	return 16 + d.tree(l.high[:], 8)
}

// lzmaDec is the LZMA state, generalised to any lc/lp/pb.
type lzmaDec struct {
	lc, lp, pb uint32
	state      uint32
	rep        [4]uint32
	isMatch    [12][16]lzProb
	isRep      [12]lzProb
	isRepG0    [12]lzProb
	isRepG1    [12]lzProb
	isRepG2    [12]lzProb
	isRep0Long [12][16]lzProb
	lit        []lzProb
	posSlot    [4][64]lzProb
	posSpecial [115]lzProb
	align      [16]lzProb
	lenDec     lzLenEnc
	repLenDec  lzLenEnc
	rc         xzRangeDec
}

func (z *lzmaDec) reset() {
	fill := func(p []lzProb) {
		for i := range p {
			p[i] = 1024
		}
	}
	for i := range z.isMatch {
		fill(z.isMatch[i][:])
		fill(z.isRep0Long[i][:])
	}
	fill(z.isRep[:])
	fill(z.isRepG0[:])
	fill(z.isRepG1[:])
	fill(z.isRepG2[:])
	n := 0x300 << (z.lc + z.lp)
	if cap(z.lit) < n {
		z.lit = make([]lzProb, n)
	}
	z.lit = z.lit[:n]
	fill(z.lit)
	for i := range z.posSlot {
		fill(z.posSlot[i][:])
	}
	fill(z.posSpecial[:])
	fill(z.align[:])
	z.lenDec.init()
	z.repLenDec.init()
	z.state = 0
	z.rep = [4]uint32{}
}

// xzWindow is the LZMA dictionary: a ring buffer of the block's
// dictionary size (decoded bytes are written out as the ring wraps and at
// the end of every chunk). Large rings live outside the Go heap (see
// allocWindow): their pages cost memory only once touched, so a part
// smaller than its declared dictionary uses only its own size, and a
// 32 MiB ring does not double the garbage collector's heap goal.
//
// When the output can be read back (hist: a delta part's spill buffer), the
// ring is at most xzRingCap bytes however large the dictionary: a match
// reaching further back than the ring reads the bytes from the output
// already written (through a small block cache), where the page cache
// holds them, not the process. Decoding one of ostree's parts (32 MiB
// dictionary) then takes ~4 MiB of memory instead of 32, so several
// decode at once within the pull's memory budget.
type xzWindow struct {
	buf   []byte // the ring: the last len(buf) decoded bytes
	dict  int    // the block's dictionary size (>= len(buf))
	pos   int    // where the next byte goes
	flush int    // buf[flush:pos] is decoded but not yet written out
	total int64  // bytes decoded in the block
	start int64  // value of total at the last dictionary reset
	out   io.Writer
	check hash.Hash
	free  func()

	hist      io.ReaderAt // out read back, or nil
	ringCap   int         // the largest ring when hist is set
	outOff    int64       // bytes written to out so far (all blocks)
	blockBase int64       // outOff when the block began
	far       [2]farBlock // cache of hist blocks
	farNext   int         // the far block to replace next
}

// xzRingCap is the largest ring of a window whose output can be read
// back (tests decode with tiny rings to exercise the reads back).
const xzRingCap = 4 << 20

// farBlockSize is the size of a cached block of read-back output.
const farBlockSize = 4 << 10

type farBlock struct {
	off int64 // offset in the output; -1 when empty
	n   int   // valid bytes
	buf []byte
}

// maxXZWindow bounds the ring whatever dictionary size a stream declares.
const maxXZWindow = 1 << 30

// reset prepares the window for a block with the given dictionary size,
// reusing the ring when it is large enough.
func (w *xzWindow) reset(size int) error {
	if size < 4096 {
		size = 4096 // LZMA2's smallest dictionary
	}
	ring := size
	if w.hist != nil && ring > w.ringCap {
		ring = max(w.ringCap, 4096)
	}
	if cap(w.buf) < ring {
		w.release()
		b, free, err := allocWindow(ring)
		if err != nil {
			return fmt.Errorf("xz: allocating a %d-byte dictionary: %w", ring, err)
		}
		w.buf, w.free = b, free
	}
	w.buf = w.buf[:ring]
	w.dict = size
	w.pos, w.flush, w.total, w.start, w.check = 0, 0, 0, 0, nil
	w.blockBase = w.outOff
	for i := range w.far {
		w.far[i].off = -1
	}
	return nil
}

// farRead fills p with the decoded bytes of the block from position q
// (q + len(p) <= w.total, and q is older than the ring), reading them back
// from the output.
func (w *xzWindow) farRead(p []byte, q int64) error {
	if w.flush < w.pos && q+int64(len(p)) > w.total-int64(w.pos-w.flush) {
		if err := w.emit(); err != nil { // the bytes are not written out yet
			return err
		}
	}
	off := w.blockBase + q
	for len(p) > 0 {
		bo := off &^ (farBlockSize - 1)
		var b *farBlock
		for i := range w.far {
			if f := &w.far[i]; f.off == bo && off-bo < int64(f.n) {
				b = f
				break
			}
		}
		if b == nil {
			b = &w.far[w.farNext]
			w.farNext = (w.farNext + 1) % len(w.far)
			if b.buf == nil {
				b.buf = make([]byte, farBlockSize)
			}
			n, err := w.hist.ReadAt(b.buf, bo)
			if n < farBlockSize && err == nil {
				err = io.ErrUnexpectedEOF
			}
			b.off, b.n = bo, n
			if off-bo >= int64(n) {
				b.off = -1
				return fmt.Errorf("xz: reading back decoded output at %d: %w", off, err)
			}
		}
		k := copy(p, b.buf[off-bo:b.n])
		p, off = p[k:], off+int64(k)
	}
	return nil
}

// at returns the byte dist+1 positions before the next one, from the ring
// or, further back, from the output.
func (w *xzWindow) at(dist int) (byte, error) {
	if dist < len(w.buf) {
		return w.back(dist), nil
	}
	var b [1]byte
	err := w.farRead(b[:], w.total-int64(dist)-1)
	return b[0], err
}

// copyFar appends n bytes copied from dist+1 bytes back, beyond the ring
// (dist >= len(w.buf) >= n: source and destination do not overlap).
func (w *xzWindow) copyFar(dist, n int) error {
	var tmp [273]byte // LZMA's longest match
	if n > len(tmp) {
		return fmt.Errorf("xz: match of %d bytes", n)
	}
	if err := w.farRead(tmp[:n], w.total-int64(dist)-1); err != nil {
		return err
	}
	for _, c := range tmp[:n] {
		if err := w.put(c); err != nil {
			return err
		}
	}
	return nil
}

// release frees the ring.
func (w *xzWindow) release() {
	if w.free != nil {
		w.free()
	}
	w.buf, w.free = nil, nil
}

// put appends one byte.
func (w *xzWindow) put(b byte) error {
	w.buf[w.pos] = b
	w.pos++
	w.total++
	if w.pos == len(w.buf) {
		return w.wrap()
	}
	return nil
}

// back returns the byte dist+1 positions before the next one.
func (w *xzWindow) back(dist int) byte {
	i := w.pos - dist - 1
	if i < 0 {
		i += len(w.buf)
	}
	return w.buf[i]
}

// copyMatch appends n bytes copied from dist+1 bytes back (the source may
// overlap what is being written: it then repeats).
func (w *xzWindow) copyMatch(dist, n int) error {
	if dist >= len(w.buf) {
		return w.copyFar(dist, n)
	}
	src := w.pos - dist - 1
	if src < 0 {
		src += len(w.buf)
	}
	for n > 0 {
		k := min(n, len(w.buf)-w.pos, len(w.buf)-src, dist+1)
		copy(w.buf[w.pos:w.pos+k], w.buf[src:src+k])
		w.pos += k
		w.total += int64(k)
		n -= k
		if src += k; src == len(w.buf) {
			src = 0
		}
		if w.pos == len(w.buf) {
			if err := w.wrap(); err != nil {
				return err
			}
		}
	}
	return nil
}

// readFrom appends n bytes read from r (an uncompressed chunk).
func (w *xzWindow) readFrom(r io.Reader, n int) error {
	for n > 0 {
		k := min(n, len(w.buf)-w.pos)
		if _, err := io.ReadFull(r, w.buf[w.pos:w.pos+k]); err != nil {
			return err
		}
		w.pos += k
		w.total += int64(k)
		n -= k
		if w.pos == len(w.buf) {
			if err := w.wrap(); err != nil {
				return err
			}
		}
	}
	return nil
}

// wrap writes out the end of the ring and starts again at its beginning.
func (w *xzWindow) wrap() error {
	if err := w.emit(); err != nil {
		return err
	}
	w.pos, w.flush = 0, 0
	return nil
}

// emit writes out the decoded bytes not yet written.
func (w *xzWindow) emit() error {
	if w.flush < w.pos {
		p := w.buf[w.flush:w.pos]
		if w.check != nil {
			w.check.Write(p)
		}
		if _, err := w.out.Write(p); err != nil {
			return err
		}
		w.outOff += int64(len(p))
		w.flush = w.pos
	}
	return nil
}

// decodeChunk decodes u bytes from the compressed chunk in.
func (z *lzmaDec) decodeChunk(w *xzWindow, in []byte, u int) error {
	if err := z.rc.init(in); err != nil {
		return err
	}
	d := &z.rc
	end := w.total + int64(u)
	pbMask := uint32(1)<<z.pb - 1
	lpMask := uint32(1)<<z.lp - 1
	size := int64(w.dict)
	for w.total < end {
		if d.overrun() {
			return fmt.Errorf("xz: LZMA2 chunk truncated")
		}
		total := w.total
		avail := min(total-w.start, size) // usable history
		ps := uint32(total-w.start) & pbMask
		if d.bit(&z.isMatch[z.state][ps]) == 0 {
			var prev byte
			if total > w.start {
				prev = w.back(0)
			}
			probs := z.lit[0x300*((uint32(total-w.start)&lpMask)<<z.lc+uint32(prev)>>(8-z.lc)):]
			// The literal loops are the hottest code: d.bit is written out
			// in them, with the coder's state in locals.
			sym := uint32(1)
			rng, code, pos, in := d.rng, d.code, d.pos, d.in
			probs = probs[:0x300]
			if z.state < 7 {
				for sym < 0x100 {
					if rng < lzTop {
						rng <<= 8
						code = code<<8 | uint32(in[pos])
						pos++
					}
					p := &probs[sym]
					v := uint32(*p)
					bound := (rng >> 11) * v
					if code < bound {
						rng = bound
						*p = lzProb(v + (lzBitModelTotal-v)>>lzMoveBits)
						sym <<= 1
					} else {
						code -= bound
						rng -= bound
						*p = lzProb(v - v>>lzMoveBits)
						sym = sym<<1 | 1
					}
				}
			} else {
				if int64(z.rep[0]) >= avail {
					return fmt.Errorf("xz: match distance out of range")
				}
				var match uint32
				if int(z.rep[0]) < len(w.buf) {
					match = uint32(w.back(int(z.rep[0])))
				} else {
					b, err := w.at(int(z.rep[0]))
					if err != nil {
						return err
					}
					match = uint32(b)
				}
				offs := uint32(0x100)
				for sym < 0x100 {
					if rng < lzTop {
						rng <<= 8
						code = code<<8 | uint32(in[pos])
						pos++
					}
					match <<= 1
					mb := match & offs
					p := &probs[offs+mb+sym]
					v := uint32(*p)
					bound := (rng >> 11) * v
					if code < bound {
						rng = bound
						*p = lzProb(v + (lzBitModelTotal-v)>>lzMoveBits)
						sym <<= 1
						offs &= ^mb
					} else {
						code -= bound
						rng -= bound
						*p = lzProb(v - v>>lzMoveBits)
						sym = sym<<1 | 1
						offs &= mb
					}
				}
			}
			d.rng, d.code, d.pos = rng, code, pos
			w.buf[w.pos] = byte(sym) // put, inlined
			w.pos++
			w.total++
			if w.pos == len(w.buf) {
				if err := w.wrap(); err != nil {
					return err
				}
			}
			z.state = uint32(lzLitNext[z.state])
			continue
		}
		var l uint32
		if d.bit(&z.isRep[z.state]) == 0 {
			l = z.lenDec.decode(d, ps)
			z.state = uint32(lzMatchNext[z.state])
			slot := d.tree(z.posSlot[min(l, 3)][:], 6)
			dist := slot
			if slot >= 4 {
				footer := int(slot>>1) - 1
				dist = (2 | slot&1) << uint(footer)
				if slot < 14 {
					dist += d.reverseTree(z.posSpecial[:], int(dist)-int(slot)-1, footer)
				} else {
					dist += d.direct(footer-4) << 4
					dist += d.reverseTree(z.align[:], 0, 4)
				}
			}
			z.rep[3], z.rep[2], z.rep[1], z.rep[0] = z.rep[2], z.rep[1], z.rep[0], dist
		} else {
			if d.bit(&z.isRepG0[z.state]) == 0 {
				if d.bit(&z.isRep0Long[z.state][ps]) == 0 {
					// short rep: one byte at rep0
					if int64(z.rep[0]) >= avail {
						return fmt.Errorf("xz: match distance out of range")
					}
					if z.state < 7 {
						z.state = 9
					} else {
						z.state = 11
					}
					b, err := w.at(int(z.rep[0]))
					if err != nil {
						return err
					}
					if err := w.put(b); err != nil {
						return err
					}
					continue
				}
			} else {
				var dist uint32
				if d.bit(&z.isRepG1[z.state]) == 0 {
					dist = z.rep[1]
				} else {
					if d.bit(&z.isRepG2[z.state]) == 0 {
						dist = z.rep[2]
					} else {
						dist = z.rep[3]
						z.rep[3] = z.rep[2]
					}
					z.rep[2] = z.rep[1]
				}
				z.rep[1] = z.rep[0]
				z.rep[0] = dist
			}
			l = z.repLenDec.decode(d, ps)
			z.state = uint32(lzRepNext[z.state])
		}
		n := int(l) + 2
		dist := int64(z.rep[0])
		if dist >= avail || d.overrun() {
			return fmt.Errorf("xz: match distance out of range")
		}
		if total+int64(n) > end {
			return fmt.Errorf("xz: match crosses the end of an LZMA2 chunk")
		}
		if err := w.copyMatch(int(dist), n); err != nil {
			return err
		}
	}
	if d.overrun() {
		return fmt.Errorf("xz: LZMA2 chunk truncated")
	}
	return nil
}

// xzDecodeFast decodes an xz stream from r into out.
func xzDecodeFast(r io.Reader, out io.Writer) error {
	return xzDecodeRing(r, out, xzRingCap)
}

// xzDecodeRing is xzDecodeFast with the largest ring used when out can be
// read back.
func xzDecodeRing(r io.Reader, out io.Writer, ringCap int) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [12]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return fmt.Errorf("xz: stream header: %w", err)
	}
	if string(hdr[:6]) != "\xFD7zXZ\x00" || hdr[6] != 0 || crc32.ChecksumIEEE(hdr[6:8]) != binary.LittleEndian.Uint32(hdr[8:]) {
		return fmt.Errorf("xz: bad stream header")
	}
	checkType := hdr[7]
	var newCheck func() hash.Hash
	switch checkType {
	case 0:
	case 1:
		newCheck = func() hash.Hash { return crc32.NewIEEE() }
	case 4:
		newCheck = func() hash.Hash { return crc64.New(crc64Table) }
	case 10:
		newCheck = sha256.New
	default:
		return errXZUnsupported
	}
	z := &lzmaDec{}
	chunk := make([]byte, 1<<16+xzRangePad)
	win := xzWindow{out: out, ringCap: ringCap}
	if h, ok := out.(io.ReaderAt); ok {
		win.hist = h
	}
	defer win.release()
	for {
		b0, err := br.ReadByte()
		if err != nil {
			return fmt.Errorf("xz: %w", err)
		}
		if b0 == 0 {
			return nil // index: the payload is complete (the part checksum was verified)
		}
		bh := make([]byte, (int(b0)+1)*4)
		bh[0] = b0
		if _, err := io.ReadFull(br, bh[1:]); err != nil {
			return fmt.Errorf("xz: block header: %w", err)
		}
		if crc32.ChecksumIEEE(bh[:len(bh)-4]) != binary.LittleEndian.Uint32(bh[len(bh)-4:]) {
			return fmt.Errorf("xz: block header checksum mismatch")
		}
		flags := bh[1]
		if flags&3 != 0 || flags&0x3C != 0 {
			return errXZUnsupported // more than one filter, or reserved bits
		}
		pos := 2
		for _, bit := range []byte{0x40, 0x80} {
			if flags&bit != 0 {
				_, n := binary.Uvarint(bh[pos : len(bh)-4])
				if n <= 0 {
					return fmt.Errorf("xz: bad block header")
				}
				pos += n
			}
		}
		if pos+3 > len(bh)-4 || bh[pos] != 0x21 || bh[pos+1] != 1 {
			return errXZUnsupported
		}
		dictSize, ok := xzDictSize(append(make([]byte, 12), bh...))
		if !ok {
			return errXZUnsupported
		}
		if err := win.reset(int(min(dictSize, maxXZWindow))); err != nil {
			return err
		}
		w := &win
		if newCheck != nil {
			w.check = newCheck()
		}
		var compressed int64
		needDictReset, needProps := true, true
		for {
			c, err := br.ReadByte()
			if err != nil {
				return fmt.Errorf("xz: LZMA2: %w", err)
			}
			compressed++
			if c == 0 {
				break
			}
			var sz [4]byte
			switch {
			case c == 1 || c == 2:
				if _, err := io.ReadFull(br, sz[:2]); err != nil {
					return fmt.Errorf("xz: LZMA2: %w", err)
				}
				if c == 1 {
					w.start = w.total
					needDictReset = false
				} else if needDictReset {
					return fmt.Errorf("xz: LZMA2: missing dictionary reset")
				}
				n := int(binary.BigEndian.Uint16(sz[:2])) + 1
				if err := w.readFrom(br, n); err != nil {
					return fmt.Errorf("xz: LZMA2: %w", err)
				}
				compressed += 2 + int64(n)
			case c >= 0x80:
				if _, err := io.ReadFull(br, sz[:4]); err != nil {
					return fmt.Errorf("xz: LZMA2: %w", err)
				}
				u := int(c&0x1F)<<16 + int(binary.BigEndian.Uint16(sz[:2])) + 1
				csize := int(binary.BigEndian.Uint16(sz[2:4])) + 1
				reset := (c >> 5) & 3
				if reset == 3 {
					w.start = w.total
					needDictReset = false
				} else if needDictReset {
					return fmt.Errorf("xz: LZMA2: missing dictionary reset")
				}
				compressed += 4
				if reset >= 2 {
					p, err := br.ReadByte()
					if err != nil {
						return fmt.Errorf("xz: LZMA2: %w", err)
					}
					compressed++
					if p >= 9*5*5 {
						return fmt.Errorf("xz: LZMA2: bad properties")
					}
					z.lc, z.lp, z.pb = uint32(p%9), uint32(p/9%5), uint32(p/45)
					if z.lc+z.lp > 4 {
						return fmt.Errorf("xz: LZMA2: bad properties")
					}
					needProps = false
				} else if needProps {
					return fmt.Errorf("xz: LZMA2: missing properties")
				}
				if reset >= 1 {
					z.reset()
				}
				if _, err := io.ReadFull(br, chunk[:csize]); err != nil {
					return fmt.Errorf("xz: LZMA2: %w", err)
				}
				compressed += int64(csize)
				if err := z.decodeChunk(w, chunk[:csize], u); err != nil {
					return err
				}
			default:
				return fmt.Errorf("xz: LZMA2: invalid control byte 0x%02x", c)
			}
			if err := w.emit(); err != nil {
				return err
			}
		}
		// Block padding, then the check.
		for ; compressed%4 != 0; compressed++ {
			if p, err := br.ReadByte(); err != nil || p != 0 {
				return fmt.Errorf("xz: bad block padding")
			}
		}
		if w.check != nil {
			want := make([]byte, w.check.Size())
			if _, err := io.ReadFull(br, want); err != nil {
				return fmt.Errorf("xz: block check: %w", err)
			}
			got := w.check.Sum(nil)
			if checkType != 10 { // CRC32/CRC64 are stored little-endian
				for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
					got[i], got[j] = got[j], got[i]
				}
			}
			if string(got) != string(want) {
				return fmt.Errorf("xz: block check mismatch")
			}
		}
	}
}
