package ostree

import (
	"encoding/binary"
	"hash/crc32"
)

// xzStored wraps data in an xz stream without compressing it: one block
// whose LZMA2 data is a run of "uncompressed" chunks (control bytes 1 then
// 2, at most 64 KiB each), with a CRC32 check. ostree cannot read
// uncompressed part files (it mmaps them at offset 1), so incompressible
// payloads are sent this way: valid xz for liblzma, at memcpy speed.
func xzStored(data []byte) []byte {
	le32 := func(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
	out := make([]byte, 0, len(data)+len(data)/65536*3+64)
	// Stream header: magic, flags (check = CRC32), CRC32 of the flags.
	flags := []byte{0x00, 0x01}
	out = append(out, 0xFD, '7', 'z', 'X', 'Z', 0x00)
	out = append(out, flags...)
	out = le32(out, crc32.ChecksumIEEE(flags))
	// Block header: size, flags (1 filter, no sizes), LZMA2 with a 4 KiB
	// dictionary, padding, CRC32.
	bh := []byte{0x02, 0x00, 0x21, 0x01, 0x00, 0x00, 0x00, 0x00}
	out = append(out, bh...)
	out = le32(out, crc32.ChecksumIEEE(bh))
	start := len(out)
	for i := 0; i < len(data); i += 1 << 16 {
		end := min(i+1<<16, len(data))
		ctl := byte(0x02)
		if i == 0 {
			ctl = 0x01
		}
		out = append(out, ctl, byte((end-i-1)>>8), byte(end-i-1))
		out = append(out, data[i:end]...)
	}
	out = append(out, 0x00) // end of LZMA2 data
	unpadded := uint64(12 + len(out) - start + 4)
	for (len(out)-start)%4 != 0 {
		out = append(out, 0)
	}
	out = le32(out, crc32.ChecksumIEEE(data))
	// Index: one record (unpadded size, uncompressed size).
	idx := []byte{0x00, 0x01}
	idx = binary.AppendUvarint(idx, unpadded)
	idx = binary.AppendUvarint(idx, uint64(len(data)))
	for len(idx)%4 != 0 {
		idx = append(idx, 0)
	}
	idx = le32(idx, crc32.ChecksumIEEE(idx))
	out = append(out, idx...)
	// Stream footer: CRC32, backward size, flags, magic.
	foot := le32(nil, uint32(len(idx)/4-1))
	foot = append(foot, flags...)
	out = le32(out, crc32.ChecksumIEEE(foot))
	out = append(out, foot...)
	return append(out, 'Y', 'Z')
}
