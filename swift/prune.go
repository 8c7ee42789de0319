package swift

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gostree/gostree/ostree"
)

// PruneOptions controls Prune.
type PruneOptions struct {
	// KeepYoungerThan keeps unreferenced objects modified less than this
	// long ago: they may belong to a push still in progress, which uploads
	// objects before the refs naming them. Default 1 hour; negative means
	// delete regardless of age.
	KeepYoungerThan time.Duration
	// DryRun only counts what would be deleted.
	DryRun bool
	// Jobs is the number of concurrent deletes (default 8).
	Jobs int
	// Now is the current time (zero: time.Now()).
	Now time.Time
}

// PruneResult says what Prune found and did.
type PruneResult struct {
	Roots       int   // commits named by refs and the summary
	Reachable   int   // objects reachable from them
	Deleted     int   // objects deleted (or, with DryRun, that would be)
	DeletedSize int64 // their bytes
	KeptYoung   int   // unreferenced objects kept for being recent
}

// Prune deletes the objects of the repository in st that no ref
// (refs/heads, refs/remotes, refs/mirrors) nor summary entry reaches,
// walking commits and their parents that are present. Metadata read from
// the store is verified against its checksum before it is trusted; a
// missing or corrupt metadata object stops the prune before it deletes
// anything. Refs, summary, config and deltas are left alone.
func Prune(ctx context.Context, st WriteStore, o PruneOptions) (*PruneResult, error) {
	if o.KeepYoungerThan == 0 {
		o.KeepYoungerThan = time.Hour
	}
	if o.Jobs <= 0 {
		o.Jobs = 8
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	roots := map[ostree.Checksum]bool{}
	err := st.List(ctx, "refs/", func(oi ObjectInfo) error {
		b, err := readSmall(ctx, st, oi.Path)
		if err != nil {
			return err
		}
		c, err := ostree.ParseChecksum(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("prune: ref file %s: %w", oi.Path, err)
		}
		roots[c] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune: reading refs: %w", err)
	}
	if b, err := readSmall(ctx, st, "summary"); err == nil {
		s, err := ostree.DecodeSummary(b)
		if err != nil {
			return nil, fmt.Errorf("prune: summary: %w", err)
		}
		for _, r := range s.Refs {
			roots[r.Checksum] = true
		}
		for _, c := range s.Collections {
			for _, r := range c.Refs {
				roots[r.Checksum] = true
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("prune: %w", err)
	}
	res := &PruneResult{Roots: len(roots)}

	var objs []ObjectInfo
	present := map[string]bool{}
	if err := st.List(ctx, "objects/", func(oi ObjectInfo) error {
		objs = append(objs, oi)
		present[oi.Path] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("prune: listing objects: %w", err)
	}

	w := &remoteWalk{ctx: ctx, st: st, present: present, keep: map[string]bool{}}
	for c := range roots {
		if err := w.commit(c); err != nil {
			return nil, err
		}
	}
	res.Reachable = len(w.keep)

	var dead []ObjectInfo
	for _, oi := range objs {
		if w.keep[oi.Path] {
			continue
		}
		if o.KeepYoungerThan > 0 && now.Sub(oi.ModTime) < o.KeepYoungerThan {
			res.KeptYoung++
			continue
		}
		dead = append(dead, oi)
		res.Deleted++
		res.DeletedSize += oi.Size
	}
	if o.DryRun {
		return res, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Jobs)
	for _, oi := range dead {
		g.Go(func() error { return st.Remove(gctx, oi.Path) })
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	return res, nil
}

func readSmall(ctx context.Context, st WriteStore, p string) ([]byte, error) {
	rc, err := st.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	const max = 64 << 20
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, max)
	}
	return b, nil
}

type remoteWalk struct {
	ctx     context.Context
	st      WriteStore
	present map[string]bool
	keep    map[string]bool
}

// meta reads and verifies a metadata object; ok is false when it is absent.
func (w *remoteWalk) meta(n ostree.ObjectName) ([]byte, bool, error) {
	p := ostree.LoosePath(n, ostree.ModeArchive)
	if !w.present[p] {
		return nil, false, nil
	}
	w.keep[p] = true
	b, err := readSmall(w.ctx, w.st, p)
	if err != nil {
		return nil, false, fmt.Errorf("prune: %w", err)
	}
	if got := ostree.SumBytes(b); got != n.Checksum {
		return nil, false, fmt.Errorf("prune: %s is corrupt (its content has checksum %s); nothing was deleted", p, got)
	}
	return b, true, nil
}

func (w *remoteWalk) commit(c ostree.Checksum) error {
	for {
		cn := ostree.ObjectName{Checksum: c, Type: ostree.ObjCommit}
		if w.keep[ostree.LoosePath(cn, ostree.ModeArchive)] {
			return nil
		}
		b, ok, err := w.meta(cn)
		if err != nil {
			return err
		}
		if !ok {
			return nil // history not published
		}
		if p := ostree.LoosePath(ostree.ObjectName{Checksum: c, Type: ostree.ObjCommitMeta}, ostree.ModeArchive); w.present[p] {
			w.keep[p] = true
		}
		commit, err := ostree.DecodeCommit(b)
		if err != nil {
			return fmt.Errorf("prune: commit %s: %w", c, err)
		}
		if err := w.tree(commit.RootTree, commit.RootMeta); err != nil {
			return fmt.Errorf("prune: commit %s: %w", c, err)
		}
		if !commit.HasParent() {
			return nil
		}
		c = commit.Parent
	}
}

func (w *remoteWalk) tree(tree, meta ostree.Checksum) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	w.keep[ostree.LoosePath(ostree.ObjectName{Checksum: meta, Type: ostree.ObjDirMeta}, ostree.ModeArchive)] = true
	tn := ostree.ObjectName{Checksum: tree, Type: ostree.ObjDirTree}
	if w.keep[ostree.LoosePath(tn, ostree.ModeArchive)] {
		return nil
	}
	b, ok, err := w.meta(tn)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("dirtree %s is missing from the store; nothing was deleted", tree)
	}
	dt, err := ostree.DecodeDirTree(b)
	if err != nil {
		return fmt.Errorf("dirtree %s: %w", tree, err)
	}
	for _, f := range dt.Files {
		w.keep[ostree.LoosePath(ostree.ObjectName{Checksum: f.Checksum, Type: ostree.ObjFile}, ostree.ModeArchive)] = true
	}
	for _, d := range dt.Dirs {
		if err := w.tree(d.Tree, d.Meta); err != nil {
			return err
		}
	}
	return nil
}
