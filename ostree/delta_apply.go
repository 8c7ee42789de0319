package ostree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// DeltaApplyOptions controls ApplyStaticDeltaSuperblock.
type DeltaApplyOptions struct {
	// Jobs bounds how many parts (and fallback objects) are fetched and
	// applied at once; 0 means 2. Decompression holds the part's xz
	// dictionary in memory (32 MiB for ostree's deltas, 1 MiB for
	// gostree's); parts whose dictionaries add up to more than 40 MiB
	// are decompressed one after the other.
	Jobs int
	// Progress, if set, is called (from several goroutines, serially)
	// after each part or fallback object is done.
	Progress func(DeltaProgress)
}

// DeltaProgress reports how far an apply got.
type DeltaProgress struct {
	PartsDone, PartsTotal         int // skipped parts count as done
	FallbacksDone, FallbacksTotal int
	BytesFetched                  int64 // part files and fallback objects
}

// FetchStaticDelta fetches the superblock of the delta from→to (from zero:
// from-scratch) through fetch, parses and validates it, and checks that it
// is the delta asked for. The caller may check d.Raw's SHA-256 against the
// summary or delta index before applying it.
func FetchStaticDelta(ctx context.Context, fetch DeltaFetchFunc, from, to Checksum) (*StaticDelta, error) {
	p := StaticDeltaSuperblockPath(from, to)
	rc, err := fetch(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", p, err)
	}
	b, err := io.ReadAll(io.LimitReader(rc, MaxDeltaSuperblockSize+1))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", p, err)
	}
	if len(b) > MaxDeltaSuperblockSize {
		return nil, deltaErr("superblock %s exceeds %d bytes", p, MaxDeltaSuperblockSize)
	}
	d, err := ParseStaticDelta(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if d.From != from || d.To != to {
		return nil, deltaErr("%s describes the delta %s, not %s", p, d.Name(), StaticDeltaName(from, to))
	}
	return d, nil
}

// ApplyStaticDelta fetches the delta from→to (from zero: from-scratch)
// through fetch and applies it in t: every object of TO that the delta
// carries is written, verified against its checksum, then the detached
// metadata and the TO commit. The FROM commit must be in the repository.
// No ref is changed; the caller sets refs and commits t (or aborts it on
// error: nothing unverified is ever staged).
func (t *Txn) ApplyStaticDelta(ctx context.Context, from, to Checksum, fetch DeltaFetchFunc) error {
	d, err := FetchStaticDelta(ctx, fetch, from, to)
	if err != nil {
		return err
	}
	return t.ApplyStaticDeltaSuperblock(ctx, d, fetch, DeltaApplyOptions{})
}

// ApplyStaticDeltaSuperblock applies a parsed delta: parts whose objects
// are all present are skipped, the others fetched (or taken from the
// superblock when inline), checked against the part checksum, decompressed
// and executed; fallback objects are fetched as archive-repository objects
// (objects/XX/….filez) and verified. The commit is written last.
func (t *Txn) ApplyStaticDeltaSuperblock(ctx context.Context, d *StaticDelta, fetch DeltaFetchFunc, o DeltaApplyOptions) error {
	if !d.From.IsZero() {
		ok, err := t.Has(ObjectName{d.From, ObjCommit})
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("static delta %s: commit %s, the delta's source, is not in the repository: %w", d.Name(), d.From, ErrNotFound)
		}
	}
	jobs := o.Jobs
	if jobs <= 0 {
		jobs = 2
	}
	prog := DeltaProgress{PartsTotal: len(d.Parts), FallbacksTotal: len(d.Fallbacks)}
	var progMu = make(chan struct{}, 1)
	report := func(part, fb int, n int64) {
		progMu <- struct{}{}
		prog.PartsDone += part
		prog.FallbacksDone += fb
		prog.BytesFetched += n
		if o.Progress != nil {
			o.Progress(prog)
		}
		<-progMu
	}
	budget := deltaDecodeBudget()
	mem := &decodeBudget{Weighted: semaphore.NewWeighted(budget), budget: budget}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for i := range d.Parts {
		g.Go(func() error {
			n, err := t.applyDeltaPart(gctx, d, i, fetch, mem)
			if err != nil {
				return fmt.Errorf("static delta %s part %d: %w", d.Name(), i, err)
			}
			report(1, 0, n)
			return nil
		})
	}
	for _, f := range d.Fallbacks {
		g.Go(func() error {
			n, err := t.fetchDeltaFallback(gctx, f, fetch)
			if err != nil {
				return fmt.Errorf("static delta %s fallback object %s: %w", d.Name(), f.Object, err)
			}
			report(0, 1, n)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if d.CommitMeta != nil {
		if err := t.WriteCommitMetaBytes(d.To, d.CommitMeta); err != nil {
			return fmt.Errorf("static delta %s: %w", d.Name(), err)
		}
	}
	if _, err := t.WriteMetadata(ObjCommit, d.Commit, &d.To); err != nil {
		return fmt.Errorf("static delta %s: %w", d.Name(), err)
	}
	return nil
}

// applyDeltaPart applies part i unless every object of it is present. It
// returns the number of bytes fetched.
func (t *Txn) applyDeltaPart(ctx context.Context, d *StaticDelta, i int, fetch DeltaFetchFunc, mem *decodeBudget) (int64, error) {
	p := d.Parts[i]
	haveAll := true
	for _, n := range p.Objects {
		ok, err := t.Has(n)
		if err != nil {
			return 0, err
		}
		if !ok {
			haveAll = false
			break
		}
	}
	if haveAll {
		return 0, nil
	}
	var fetched int64
	open := func() (io.ReadCloser, error) {
		if p.Inline != nil {
			return io.NopCloser(bytes.NewReader(p.Inline)), nil
		}
		path := StaticDeltaPartPath(d.From, d.To, i)
		rc, err := fetch(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("fetching %s: %w", path, err)
		}
		fetched += int64(p.Size)
		return rc, nil
	}
	payload, err := fetchDeltaPayload(ctx, p, open, t.stage, mem)
	if err != nil {
		return 0, err
	}
	defer payload.Close()
	pl, err := parseDeltaPayload(payload.region())
	if err != nil {
		return 0, deltaErr("payload: %v", err)
	}
	x := &deltaExec{ctx: ctx, t: t, p: pl, objs: p.Objects}
	if err := x.run(); err != nil {
		return 0, err
	}
	return fetched, nil
}

// fetchDeltaFallback fetches and writes one fallback object.
func (t *Txn) fetchDeltaFallback(ctx context.Context, f DeltaFallback, fetch DeltaFetchFunc) (int64, error) {
	ok, err := t.Has(f.Object)
	if err != nil || ok {
		return 0, err
	}
	path := LoosePath(f.Object, ModeArchive)
	rc, err := fetch(ctx, path)
	if err != nil {
		return 0, fmt.Errorf("fetching %s: %w", path, err)
	}
	defer rc.Close()
	sum := f.Object.Checksum
	if f.Object.Type.IsMeta() {
		b, err := io.ReadAll(io.LimitReader(rc, MaxMetadataSize+1))
		if err != nil {
			return 0, fmt.Errorf("fetching %s: %w", path, err)
		}
		if len(b) > MaxMetadataSize {
			return 0, corrupt("%s exceeds %d bytes", path, MaxMetadataSize)
		}
		_, err = t.WriteMetadata(f.Object.Type, b, &sum)
		return int64(len(b)), err
	}
	limit := int64(f.Size)
	cr := &countReader{r: io.LimitReader(rc, limit+1)}
	fi, content, err := OpenArchiveStream(bufferedReader(cr), -1)
	if err != nil {
		return cr.n, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := t.WriteContent(fi, content, &sum); err != nil {
		return cr.n, fmt.Errorf("%s: %w", path, err)
	}
	if cr.n > limit {
		return cr.n, corrupt("%s is larger than the %d bytes the superblock says", path, limit)
	}
	return cr.n, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// deltaExec runs the opcode stream of one part.
type deltaExec struct {
	ctx  context.Context
	t    *Txn
	p    *deltaPayload
	objs []ObjectName
	idx  int

	// the object being written by open/write/bspatch/close
	open     bool
	cur      ObjectName
	size     uint64
	written  uint64
	have     bool
	pw       *io.PipeWriter
	done     chan error
	srcSum   Checksum
	src      *region
	srcClose io.Closer
	buf      []byte // copy buffer of the write opcode (io.Copy allocates one per call)
}

func (x *deltaExec) run() (err error) {
	defer func() {
		if x.pw != nil {
			x.pw.CloseWithError(errors.New("static delta: object abandoned"))
			<-x.done
			x.pw = nil
		}
		x.unsetSource()
	}()
	ops := x.p.ops
	pos := 0
	for pos < len(ops) {
		if pos&0xff == 0 {
			if err := x.ctx.Err(); err != nil {
				return err
			}
		}
		op := ops[pos]
		at := pos
		pos++
		if err := x.step(op, ops, &pos); err != nil {
			if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrBspatch) || x.ctx.Err() != nil {
				return fmt.Errorf("opcode %q at offset %d: %w", rune(op), at, err)
			}
			return deltaErr("opcode %q at offset %d: %v", rune(op), at, err)
		}
	}
	if x.open {
		return deltaErr("object %s is still open at the end of the part", x.cur)
	}
	if x.idx != len(x.objs) {
		return deltaErr("the part created %d of the %d objects its header lists", x.idx, len(x.objs))
	}
	return nil
}

func (x *deltaExec) next() (ObjectName, error) {
	if x.idx >= len(x.objs) {
		return ObjectName{}, fmt.Errorf("more objects than the %d the part header lists", len(x.objs))
	}
	return x.objs[x.idx], nil
}

func (x *deltaExec) fileInfo(ops []byte, pos *int) (*FileInfo, error) {
	mi, err := readUvarint(ops, pos)
	if err != nil {
		return nil, err
	}
	xi, err := readUvarint(ops, pos)
	if err != nil {
		return nil, err
	}
	if mi >= uint64(len(x.p.modes)) {
		return nil, fmt.Errorf("mode index %d out of range (%d modes)", mi, len(x.p.modes))
	}
	if xi >= uint64(len(x.p.xattrs)) {
		return nil, fmt.Errorf("xattr index %d out of range (%d xattr sets)", xi, len(x.p.xattrs))
	}
	m := x.p.modes[mi]
	return &FileInfo{UID: m.uid, GID: m.gid, Mode: m.mode, Xattrs: x.p.xattrs[xi]}, nil
}

func (x *deltaExec) step(op byte, ops []byte, pos *int) error {
	switch op {
	case deltaOpOpenSpliceAndClose:
		if x.open {
			return fmt.Errorf("object %s is open", x.cur)
		}
		n, err := x.next()
		if err != nil {
			return err
		}
		sum := n.Checksum
		if n.Type.IsMeta() {
			l, err := readUvarint(ops, pos)
			if err != nil {
				return err
			}
			off, err := readUvarint(ops, pos)
			if err != nil {
				return err
			}
			r, err := x.p.blob.sub(off, l)
			if err != nil {
				return err
			}
			b, err := r.bytes(MaxMetadataSize)
			if err != nil {
				return err
			}
			if _, err := x.t.WriteMetadata(n.Type, b, &sum); err != nil {
				return err
			}
		} else {
			fi, err := x.fileInfo(ops, pos)
			if err != nil {
				return err
			}
			l, err := readUvarint(ops, pos)
			if err != nil {
				return err
			}
			off, err := readUvarint(ops, pos)
			if err != nil {
				return err
			}
			r, err := x.p.blob.sub(off, l)
			if err != nil {
				return err
			}
			var content io.Reader
			switch {
			case fi.IsSymlink():
				b, err := r.bytes(64 << 10)
				if err != nil {
					return fmt.Errorf("symlink target: %w", err)
				}
				if bytes.IndexByte(b, 0) >= 0 {
					return corrupt("symlink target contains a NUL byte")
				}
				fi.SymlinkTarget = string(b)
			case fi.IsRegular():
				fi.Size = int64(l)
				content = r.reader()
			default:
				return corrupt("content object %s has mode 0%o, neither a regular file nor a symlink", sum, fi.Mode)
			}
			if _, err := x.t.WriteContent(fi, content, &sum); err != nil {
				return err
			}
		}
		x.idx++
	case deltaOpOpen:
		if x.open {
			return fmt.Errorf("object %s is open", x.cur)
		}
		n, err := x.next()
		if err != nil {
			return err
		}
		if n.Type != ObjFile {
			return fmt.Errorf("open of %s, which is not a content object", n)
		}
		fi, err := x.fileInfo(ops, pos)
		if err != nil {
			return err
		}
		size, err := readUvarint(ops, pos)
		if err != nil {
			return err
		}
		if !fi.IsRegular() {
			return corrupt("open of %s with mode 0%o: only regular files can be written piecewise", n, fi.Mode)
		}
		if size > 1<<62 {
			return corrupt("object size %d out of range", size)
		}
		fi.Size = int64(size)
		x.open, x.cur, x.size, x.written = true, n, size, 0
		if x.have, err = x.t.Has(n); err != nil {
			return err
		}
		if !x.have {
			pr, pw := io.Pipe()
			x.pw, x.done = pw, make(chan error, 1)
			sum := n.Checksum
			go func() {
				_, err := x.t.WriteContent(fi, pr, &sum)
				if err != nil {
					pr.CloseWithError(err)
				} else {
					pr.Close()
				}
				x.done <- err
			}()
		}
	case deltaOpWrite:
		l, err := readUvarint(ops, pos)
		if err != nil {
			return err
		}
		off, err := readUvarint(ops, pos)
		if err != nil {
			return err
		}
		if !x.open {
			return errors.New("write with no open object")
		}
		from := x.p.blob
		what := "payload"
		if x.src != nil {
			from, what = *x.src, "read source "+x.srcSum.String()
		}
		r, err := from.sub(off, l)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if l > x.size-x.written {
			return corrupt("write of %d bytes overruns object %s of %d bytes (%d written)", l, x.cur, x.size, x.written)
		}
		x.written += l
		if !x.have {
			if x.buf == nil {
				x.buf = make([]byte, 64<<10)
			}
			if _, err := io.CopyBuffer(x.pw, r.reader(), x.buf); err != nil {
				return err
			}
		}
	case deltaOpSetReadSource:
		off, err := readUvarint(ops, pos)
		if err != nil {
			return err
		}
		r, err := x.p.blob.sub(off, 32)
		if err != nil {
			return err
		}
		b, err := r.bytes(32)
		if err != nil {
			return err
		}
		x.unsetSource()
		var c Checksum
		copy(c[:], b)
		if err := x.setSource(c); err != nil {
			return err
		}
	case deltaOpUnsetReadSource:
		x.unsetSource()
	case deltaOpClose:
		if !x.open {
			return errors.New("close with no open object")
		}
		if x.written != x.size {
			return corrupt("object %s closed after %d of its %d bytes", x.cur, x.written, x.size)
		}
		if x.pw != nil {
			x.pw.Close()
			err := <-x.done
			x.pw = nil
			if err != nil {
				return err
			}
		}
		x.open = false
		x.idx++
	case deltaOpBspatch:
		off, err := readUvarint(ops, pos)
		if err != nil {
			return err
		}
		l, err := readUvarint(ops, pos)
		if err != nil {
			return err
		}
		if !x.open {
			return errors.New("bspatch with no open object")
		}
		if x.src == nil {
			return corrupt("bspatch with no read source")
		}
		patch, err := x.p.blob.sub(off, l)
		if err != nil {
			return err
		}
		n := x.size - x.written
		if !x.have {
			if err := bspatch(*x.src, x.src.n, patch.reader(), int64(n), x.pw); err != nil {
				return fmt.Errorf("patching %s into %s: %w", x.srcSum, x.cur, err)
			}
		}
		x.written += n
	default:
		return corrupt("unknown opcode 0x%02x", op)
	}
	return nil
}

// setSource opens content object c of the repository for random reads.
func (x *deltaExec) setSource(c Checksum) error {
	co, err := x.t.repo.OpenContent(c)
	if err != nil {
		return fmt.Errorf("read source: %w", err)
	}
	defer co.Close()
	if !co.Info.IsRegular() {
		return corrupt("read source %s is not a regular file", c)
	}
	if co.Path != "" {
		f, err := os.Open(co.Path)
		if err != nil {
			return fmt.Errorf("read source %s: %w", c, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		x.src, x.srcSum, x.srcClose = &region{ra: f, n: st.Size()}, c, f
		return nil
	}
	s := &spill{dir: x.t.stage, limit: deltaSpillLimit}
	if _, err := io.Copy(s, co.Content); err != nil {
		s.Close()
		return fmt.Errorf("read source %s: %w", c, err)
	}
	r := s.region()
	x.src, x.srcSum, x.srcClose = &r, c, s
	return nil
}

func (x *deltaExec) unsetSource() {
	if x.srcClose != nil {
		x.srcClose.Close()
	}
	x.src, x.srcClose = nil, nil
}
