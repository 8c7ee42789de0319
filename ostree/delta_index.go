package ostree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gostree/gostree/internal/atomicfile"
	"github.com/gostree/gostree/ostree/gvariant"
)

// StaticDeltaInfo names one delta stored in a repository.
type StaticDeltaInfo struct {
	Name     string // "FROM-TO" or "TO"
	From, To Checksum
	// Dir is the delta's directory relative to the repository root.
	Dir string
}

// ListStaticDeltas lists the deltas of the repository (directories under
// deltas/ that hold a superblock), as `ostree static-delta list`.
func (r *Repo) ListStaticDeltas() ([]StaticDeltaInfo, error) {
	ds, err := r.listStaticDeltas()
	if err != nil {
		return nil, err
	}
	out := make([]StaticDeltaInfo, len(ds))
	for i, d := range ds {
		out[i] = StaticDeltaInfo{Name: d.name, From: d.from, To: d.to, Dir: filepath.ToSlash(d.dir)}
	}
	return out, nil
}

// ReadStaticDelta reads and parses the superblock of a stored delta.
func (r *Repo) ReadStaticDelta(from, to Checksum) (*StaticDelta, error) {
	p := filepath.Join(r.path, filepath.FromSlash(StaticDeltaSuperblockPath(from, to)))
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("static delta %s: %w", StaticDeltaName(from, to), ErrNotFound)
		}
		return nil, err
	}
	d, err := ParseStaticDelta(b)
	if err != nil {
		return nil, err
	}
	if d.From != from || d.To != to {
		return nil, deltaErr("%s describes the delta %s", StaticDeltaDir(from, to), d.Name())
	}
	return d, nil
}

// DeleteStaticDelta removes a stored delta (`ostree static-delta delete`).
func (r *Repo) DeleteStaticDelta(ctx context.Context, from, to Checksum) error {
	unlock, err := r.Lock(ctx, LockShared)
	if err != nil {
		return err
	}
	defer unlock()
	dir := filepath.Join(r.path, filepath.FromSlash(StaticDeltaDir(from, to)))
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("static delta %s: %w", StaticDeltaName(from, to), ErrNotFound)
		}
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("deleting static delta %s: %w", StaticDeltaName(from, to), err)
	}
	os.Remove(filepath.Dir(dir)) // the XX directory, if now empty
	return nil
}

// RegenerateDeltaIndexes rewrites delta-indexes/ as `ostree summary -u`
// does: for every target commit with deltas, delta-indexes/XX/REST.index
// holds a{sv} {ostree.static-deltas: {delta name: <superblock sha256>}};
// unchanged files are left alone and indexes of targets without deltas
// are removed.
func (r *Repo) RegenerateDeltaIndexes(ctx context.Context) error {
	deltas, err := r.listStaticDeltas()
	if err != nil {
		return err
	}
	byTo := map[Checksum][]staticDelta{}
	for _, d := range deltas {
		byTo[d.to] = append(byTo[d.to], d)
	}
	keep := map[string]bool{}
	for to, ds := range byTo {
		if err := ctx.Err(); err != nil {
			return err
		}
		dd := newGVDict()
		for _, d := range ds {
			sb, err := os.ReadFile(filepath.Join(r.path, d.dir, staticDeltaSuperblockName))
			if err != nil {
				return fmt.Errorf("static delta %s: %w", d.name, err)
			}
			sum := SumBytes(sb)
			dd.insert(d.name, gvariant.NewVariant("ay", sum[:]))
		}
		idx := newGVDict()
		idx.insert(SummaryKeyStaticDeltas, gvariant.NewVariant("a{sv}", dd.end().gv()))
		b, err := EncodeMetadata(idx.end())
		if err != nil {
			return err
		}
		rel := DeltaIndexPath(to)
		keep[rel] = true
		p := filepath.Join(r.path, filepath.FromSlash(rel))
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, b) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", rel, err)
		}
	}
	top := filepath.Join(r.path, "delta-indexes")
	d1s, err := os.ReadDir(top)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, d1 := range d1s {
		if !d1.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(top, d1.Name()))
		if err != nil {
			return err
		}
		for _, f := range files {
			rel := "delta-indexes/" + d1.Name() + "/" + f.Name()
			if strings.HasSuffix(f.Name(), ".index") && !keep[rel] {
				if err := os.Remove(filepath.Join(top, d1.Name(), f.Name())); err != nil {
					return err
				}
			}
		}
		os.Remove(filepath.Join(top, d1.Name())) // if now empty
	}
	return nil
}
