package ostree

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// DeltaPartInfo describes the payload of one part, as `ostree static-delta
// show` prints it.
type DeltaPartInfo struct {
	Modes, Xattrs    int
	BlobSize, OpSize int
	// Ops counts opcodes by their byte ('S', 'o', 'w', 'r', 'R', 'c', 'B').
	Ops map[byte]int
}

// InspectStaticDeltaPart fetches part i of d (or takes it from the
// superblock when inline), verifies and decompresses it, and walks its
// opcode stream without writing anything. tmpDir holds big parts.
func InspectStaticDeltaPart(ctx context.Context, d *StaticDelta, i int, fetch DeltaFetchFunc, tmpDir string) (*DeltaPartInfo, error) {
	if i < 0 || i >= len(d.Parts) {
		return nil, fmt.Errorf("static delta %s has no part %d", d.Name(), i)
	}
	p := d.Parts[i]
	var src io.Reader
	if p.Inline != nil {
		src = bytes.NewReader(p.Inline)
	} else {
		path := StaticDeltaPartPath(d.From, d.To, i)
		rc, err := fetch(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("fetching %s: %w", path, err)
		}
		defer rc.Close()
		src = rc
	}
	file, err := readDeltaPart(src, p, tmpDir)
	if err != nil {
		return nil, fmt.Errorf("part %d: %w", i, err)
	}
	defer file.Close()
	payload, err := decompressDeltaPart(file.region(), tmpDir)
	if err != nil {
		return nil, fmt.Errorf("part %d: %w", i, err)
	}
	defer payload.Close()
	pl, err := parseDeltaPayload(payload.region())
	if err != nil {
		return nil, deltaErr("part %d: payload: %v", i, err)
	}
	info := &DeltaPartInfo{Modes: len(pl.modes), Xattrs: len(pl.xattrs), BlobSize: int(pl.blob.n), OpSize: len(pl.ops), Ops: map[byte]int{}}
	idx := 0
	for pos := 0; pos < len(pl.ops); {
		op := pl.ops[pos]
		at := pos
		pos++
		var nargs int
		switch op {
		case deltaOpOpenSpliceAndClose:
			nargs = 4
			if idx < len(p.Objects) && p.Objects[idx].Type.IsMeta() {
				nargs = 2
			}
			idx++
		case deltaOpOpen:
			nargs = 3
			idx++
		case deltaOpWrite, deltaOpBspatch:
			nargs = 2
		case deltaOpSetReadSource:
			nargs = 1
		case deltaOpUnsetReadSource, deltaOpClose:
		default:
			return nil, deltaErr("part %d: unknown opcode 0x%02x at offset %d", i, op, at)
		}
		for k := 0; k < nargs; k++ {
			if _, err := readUvarint(pl.ops, &pos); err != nil {
				return nil, deltaErr("part %d: opcode %q at offset %d: %v", i, rune(op), at, err)
			}
		}
		info.Ops[op]++
	}
	return info, nil
}
