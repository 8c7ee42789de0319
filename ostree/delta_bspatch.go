package ostree

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
)

// ErrBspatch is wrapped by every error about a malformed bsdiff patch.
var ErrBspatch = errors.New("invalid bsdiff patch")

func bsErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBspatch, fmt.Sprintf(format, args...))
}

// bsOfftin decodes bsdiff's 64-bit integer: magnitude little-endian in
// 63 bits, sign in the top bit of the last byte.
func bsOfftin(b []byte) int64 {
	var y uint64
	for i := 7; i >= 0; i-- {
		y = y<<8 | uint64(b[i])
	}
	neg := y&(1<<63) != 0
	v := int64(y &^ (1 << 63))
	if neg {
		v = -v
	}
	return v
}

func bsOfftout(x int64, b []byte) {
	var y uint64
	if x < 0 {
		y = uint64(-x) | 1<<63
	} else {
		y = uint64(x)
	}
	for i := 0; i < 8; i++ {
		b[i] = byte(y >> (8 * i))
	}
}

// bspatch applies a patch in the format of the bsdiff library embedded in
// ostree (mendsley/bsdiff without header and compression): blocks of a
// control triple (add, extra, seek), add bytes added bytewise to the old
// data, extra bytes copied. It streams newSize bytes to out, reading old
// at random. Unlike the C code it refuses to read outside old instead of
// adding zero there, which bsdiff never asks for.
func bspatch(old io.ReaderAt, oldSize int64, patch io.Reader, newSize int64, out io.Writer) error {
	pr := bufio.NewReaderSize(patch, 64<<10)
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	obuf := make([]byte, chunk)
	var ctrl [24]byte
	var oldPos, newPos int64
	for newPos < newSize {
		if _, err := io.ReadFull(pr, ctrl[:]); err != nil {
			return bsErr("control block at output offset %d: %v", newPos, err)
		}
		add, extra, seek := bsOfftin(ctrl[0:8]), bsOfftin(ctrl[8:16]), bsOfftin(ctrl[16:24])
		if add < 0 || add > math.MaxInt32 || extra < 0 || extra > math.MaxInt32 {
			return bsErr("negative or huge lengths %d/%d", add, extra)
		}
		if add > newSize-newPos || extra > newSize-newPos-add {
			return bsErr("block of %d+%d bytes at %d overruns the new file of %d bytes", add, extra, newPos, newSize)
		}
		if add > 0 && (oldPos < 0 || oldPos > oldSize || add > oldSize-oldPos) {
			return bsErr("reads %d bytes at offset %d of the old file, which has %d bytes", add, oldPos, oldSize)
		}
		for rem := add; rem > 0; {
			n := int64(chunk)
			if rem < n {
				n = rem
			}
			if _, err := io.ReadFull(pr, buf[:n]); err != nil {
				return bsErr("diff data: %v", err)
			}
			if m, err := old.ReadAt(obuf[:n], oldPos); int64(m) < n {
				return fmt.Errorf("bspatch: reading old data at %d: %d of %d bytes: %v", oldPos, m, n, err)
			}
			for i := int64(0); i < n; i++ {
				buf[i] += obuf[i]
			}
			if _, err := out.Write(buf[:n]); err != nil {
				return err
			}
			rem -= n
			oldPos += n
			newPos += n
		}
		if extra > 0 {
			if _, err := io.CopyN(out, pr, extra); err != nil {
				if errors.Is(err, io.EOF) {
					return bsErr("extra data truncated")
				}
				return err
			}
			newPos += extra
		}
		if (seek > 0 && oldPos > math.MaxInt64-seek) || (seek < 0 && oldPos < math.MinInt64-seek) {
			return bsErr("seek %d overflows", seek)
		}
		oldPos += seek
	}
	return nil
}
