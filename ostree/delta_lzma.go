package ostree

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
)

// A fast, greedy LZMA2 encoder for delta parts. ulikunitz/xz compresses
// at about 10 MB/s, too slow to generate a delta of an OS tree in seconds;
// this one trades some ratio for speed: one hash-table probe per position,
// normal matches and rep0 matches only, no optimal parsing. Its output is
// plain xz (LZMA2 filter, CRC32 check) that liblzma and ulikunitz/xz read.

const (
	lzBitModelTotal = 1 << 11
	lzMoveBits      = 5
	lzTop           = 1 << 24
	lzLc            = 3
	lzPb            = 2
	lzMinMatch      = 4
	lzMaxMatch      = 273
	lzDictProp      = 16      // LZMA2 dictionary size byte: 1 MiB
	lzWindow        = 1 << 20 // matches reach at most this far back
	lzHashBits      = 16
	lzChunkU        = 1 << 21 // LZMA2 chunk limits
	lzChunkC        = 1 << 16
)

var (
	lzLitNext   = [12]uint8{0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 4, 5}
	lzMatchNext = [12]uint8{7, 7, 7, 7, 7, 7, 7, 10, 10, 10, 10, 10}
	lzRepNext   = [12]uint8{8, 8, 8, 8, 8, 8, 8, 11, 11, 11, 11, 11}
)

type lzProb uint16

type rangeEnc struct {
	low       uint64
	rng       uint32
	cache     byte
	cacheSize int64
	out       []byte
}

func (e *rangeEnc) reset() {
	e.low, e.rng, e.cache, e.cacheSize = 0, 0xFFFFFFFF, 0, 1
	e.out = e.out[:0]
}

func (e *rangeEnc) shiftLow() {
	if uint32(e.low) < 0xFF000000 || e.low>>32 != 0 {
		carry := byte(e.low >> 32)
		temp := e.cache
		for {
			e.out = append(e.out, temp+carry)
			temp = 0xFF
			e.cacheSize--
			if e.cacheSize == 0 {
				break
			}
		}
		e.cache = byte(uint32(e.low) >> 24)
	}
	e.cacheSize++
	e.low = uint64(uint32(e.low) << 8)
}

func (e *rangeEnc) bit(p *lzProb, b uint32) {
	bound := (e.rng >> 11) * uint32(*p)
	if b == 0 {
		e.rng = bound
		*p += (lzBitModelTotal - *p) >> lzMoveBits
	} else {
		e.low += uint64(bound)
		e.rng -= bound
		*p -= *p >> lzMoveBits
	}
	for e.rng < lzTop {
		e.rng <<= 8
		e.shiftLow()
	}
}

func (e *rangeEnc) direct(v uint32, n int) {
	for n > 0 {
		n--
		e.rng >>= 1
		e.low += uint64(e.rng & (0 - ((v >> uint(n)) & 1)))
		for e.rng < lzTop {
			e.rng <<= 8
			e.shiftLow()
		}
	}
}

func (e *rangeEnc) flush() {
	for i := 0; i < 5; i++ {
		e.shiftLow()
	}
}

// pending is the size the chunk would have if flushed now.
func (e *rangeEnc) pending() int { return len(e.out) + int(e.cacheSize) + 5 }

func (e *rangeEnc) tree(probs []lzProb, n int, sym uint32) {
	m := uint32(1)
	for i := n - 1; i >= 0; i-- {
		b := (sym >> uint(i)) & 1
		e.bit(&probs[m], b)
		m = m<<1 | b
	}
}

// reverseTree encodes n bits of sym, low bit first, with the bit-tree
// probabilities probs[off+1 …] (off may be -1, as in the LZMA SDK).
func (e *rangeEnc) reverseTree(probs []lzProb, off int, n int, sym uint32) {
	m := 1
	for i := 0; i < n; i++ {
		b := sym & 1
		sym >>= 1
		e.bit(&probs[off+m], b)
		m = m<<1 | int(b)
	}
}

type lzLenEnc struct {
	choice, choice2 lzProb
	low, mid        [1 << lzPb][8]lzProb
	high            [256]lzProb
}

func (l *lzLenEnc) init() {
	l.choice, l.choice2 = 1024, 1024
	for i := range l.low {
		for j := range l.low[i] {
			l.low[i][j], l.mid[i][j] = 1024, 1024
		}
	}
	for i := range l.high {
		l.high[i] = 1024
	}
}

func (l *lzLenEnc) encode(e *rangeEnc, n uint32, posState uint32) {
	switch {
	case n < 8:
		e.bit(&l.choice, 0)
		e.tree(l.low[posState][:], 3, n)
	case n < 16:
		e.bit(&l.choice, 1)
		e.bit(&l.choice2, 0)
		e.tree(l.mid[posState][:], 3, n-8)
	default:
		e.bit(&l.choice, 1)
		e.bit(&l.choice2, 1)
		e.tree(l.high[:], 8, n-16)
	}
}

type lzmaEnc struct {
	rc         rangeEnc
	state      uint32
	rep0       uint32
	isMatch    [12][1 << lzPb]lzProb
	isRep      [12]lzProb
	isRepG0    [12]lzProb
	isRep0Long [12][1 << lzPb]lzProb
	lit        [1 << lzLc][0x300]lzProb
	posSlot    [4][64]lzProb
	posSpecial [115]lzProb
	align      [16]lzProb
	lenEnc     lzLenEnc
	repLenEnc  lzLenEnc
	table      [1 << lzHashBits]uint32
}

func (z *lzmaEnc) init() {
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
	for i := range z.lit {
		fill(z.lit[i][:])
	}
	for i := range z.posSlot {
		fill(z.posSlot[i][:])
	}
	fill(z.posSpecial[:])
	fill(z.align[:])
	z.lenEnc.init()
	z.repLenEnc.init()
	z.state, z.rep0 = 0, 0
}

func lzPosSlot(d uint32) uint32 {
	if d < 4 {
		return d
	}
	n := uint32(bits.Len32(d)) - 1
	return 2*n + (d>>(n-1))&1
}

func (z *lzmaEnc) literal(data []byte, pos int) {
	e := &z.rc
	ps := uint32(pos) & (1<<lzPb - 1)
	e.bit(&z.isMatch[z.state][ps], 0)
	var prev byte
	if pos > 0 {
		prev = data[pos-1]
	}
	probs := z.lit[prev>>(8-lzLc)][:]
	sym := uint32(data[pos]) | 0x100
	if z.state < 7 {
		for sym < 0x10000 {
			e.bit(&probs[sym>>8], (sym>>7)&1)
			sym <<= 1
		}
	} else {
		match := uint32(data[pos-int(z.rep0)-1])
		offs := uint32(0x100)
		for sym < 0x10000 {
			match <<= 1
			e.bit(&probs[offs+(match&offs)+(sym>>8)], (sym>>7)&1)
			sym <<= 1
			offs &= ^(match ^ sym)
		}
	}
	z.state = uint32(lzLitNext[z.state])
}

func (z *lzmaEnc) match(pos int, dist, length uint32) {
	e := &z.rc
	ps := uint32(pos) & (1<<lzPb - 1)
	e.bit(&z.isMatch[z.state][ps], 1)
	if dist == z.rep0 {
		e.bit(&z.isRep[z.state], 1)
		e.bit(&z.isRepG0[z.state], 0)
		e.bit(&z.isRep0Long[z.state][ps], 1)
		z.repLenEnc.encode(e, length-2, ps)
		z.state = uint32(lzRepNext[z.state])
		return
	}
	e.bit(&z.isRep[z.state], 0)
	z.lenEnc.encode(e, length-2, ps)
	z.state = uint32(lzMatchNext[z.state])
	lps := min(length-2, 3)
	slot := lzPosSlot(dist)
	e.tree(z.posSlot[lps][:], 6, slot)
	if slot >= 4 {
		footer := int(slot>>1) - 1
		base := (2 | slot&1) << uint(footer)
		red := dist - base
		if slot < 14 {
			e.reverseTree(z.posSpecial[:], int(base)-int(slot)-1, footer, red)
		} else {
			e.direct(red>>4, footer-4)
			e.reverseTree(z.align[:], 0, 4, red&15)
		}
	}
	z.rep0 = dist
}

func lzHash(v uint32) uint32 { return (v * 2654435761) >> (32 - lzHashBits) }

// lzma2Compress returns the LZMA2 encoding of data (chunks and the end
// marker).
func lzma2Compress(data []byte) []byte {
	z := &lzmaEnc{}
	z.init()
	out := make([]byte, 0, len(data)/3+64)
	z.rc.out = make([]byte, 0, lzChunkC+64)
	first := true
	pos := 0
	for pos < len(data) {
		// One chunk: ends before 2 MiB of input or 64 KiB of output.
		z.rc.reset()
		start := pos
		for pos < len(data) && pos-start <= lzChunkU-lzMaxMatch && z.rc.pending() <= lzChunkC-64 {
			pos += z.step(data, pos)
		}
		z.rc.flush()
		u, c := pos-start-1, len(z.rc.out)-1
		ctl := byte(0x80)
		if first {
			ctl = 0xE0 // dictionary reset, state reset, properties
		}
		out = append(out, ctl|byte(u>>16), byte(u>>8), byte(u), byte(c>>8), byte(c))
		if first {
			out = append(out, (lzPb*5+0)*9+lzLc)
			first = false
		}
		out = append(out, z.rc.out...)
	}
	return append(out, 0x00)
}

// step encodes the operation at pos and returns how many bytes it covers.
func (z *lzmaEnc) step(data []byte, pos int) int {
	n := len(data)
	if pos+lzMinMatch > n {
		z.literal(data, pos)
		return 1
	}
	cur := binary.LittleEndian.Uint32(data[pos:])
	limit := min(lzMaxMatch, n-pos)
	// rep0 first: cheap and cheap to encode.
	if r := pos - int(z.rep0) - 1; r >= 0 && binary.LittleEndian.Uint32(data[r:]) == cur {
		l := lzMatchLen(data, r, pos, limit)
		z.insert(data, pos, l)
		z.match(pos, z.rep0, uint32(l))
		return l
	}
	h := lzHash(cur)
	cand := int(z.table[h]) - 1
	z.table[h] = uint32(pos + 1)
	if cand >= 0 && pos-cand <= lzWindow && binary.LittleEndian.Uint32(data[cand:]) == cur {
		l := lzMatchLen(data, cand, pos, limit)
		z.insert(data, pos+1, l-1)
		z.match(pos, uint32(pos-cand-1), uint32(l))
		return l
	}
	z.literal(data, pos)
	return 1
}

// insert records the positions of a short match in the hash table.
func (z *lzmaEnc) insert(data []byte, pos, l int) {
	if l > 16 {
		l = 16
	}
	for i := pos; i < pos+l && i+4 <= len(data); i++ {
		z.table[lzHash(binary.LittleEndian.Uint32(data[i:]))] = uint32(i + 1)
	}
}

func lzMatchLen(data []byte, a, b, limit int) int {
	l := 4
	for l+8 <= limit {
		x := binary.LittleEndian.Uint64(data[a+l:]) ^ binary.LittleEndian.Uint64(data[b+l:])
		if x != 0 {
			return l + bits.TrailingZeros64(x)/8
		}
		l += 8
	}
	for l < limit && data[a+l] == data[b+l] {
		l++
	}
	return l
}

// xzLZMA2 wraps LZMA2 data (of uncompressed content data) in an xz stream
// with one block and a CRC32 check.
func xzLZMA2(lz []byte, data []byte, dictProp byte) []byte {
	le32 := func(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
	out := make([]byte, 0, len(lz)+64)
	flags := []byte{0x00, 0x01}
	out = append(out, 0xFD, '7', 'z', 'X', 'Z', 0x00)
	out = append(out, flags...)
	out = le32(out, crc32.ChecksumIEEE(flags))
	bh := []byte{0x02, 0x00, 0x21, 0x01, dictProp, 0x00, 0x00, 0x00}
	out = append(out, bh...)
	out = le32(out, crc32.ChecksumIEEE(bh))
	out = append(out, lz...)
	unpadded := uint64(12 + len(lz) + 4)
	for i := len(lz); i%4 != 0; i++ {
		out = append(out, 0)
	}
	out = le32(out, crc32.ChecksumIEEE(data))
	idx := []byte{0x00, 0x01}
	idx = binary.AppendUvarint(idx, unpadded)
	idx = binary.AppendUvarint(idx, uint64(len(data)))
	for len(idx)%4 != 0 {
		idx = append(idx, 0)
	}
	idx = le32(idx, crc32.ChecksumIEEE(idx))
	out = append(out, idx...)
	foot := le32(nil, uint32(len(idx)/4-1))
	foot = append(foot, flags...)
	out = le32(out, crc32.ChecksumIEEE(foot))
	out = append(out, foot...)
	return append(out, 'Y', 'Z')
}

// xzFast compresses data into an xz stream with the fast encoder.
func xzFast(data []byte) []byte { return xzLZMA2(lzma2Compress(data), data, lzDictProp) }
