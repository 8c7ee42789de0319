package ostree

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gostree/gostree/internal/atomicfile"
	"github.com/gostree/gostree/ostree/gvariant"
)

// PruneOptions controls Prune. Its zero value is not the CLI's default:
// Depth 0 keeps no history; start from DefaultPruneOptions.
type PruneOptions struct {
	// RefsOnly makes the refs (local, remote-tracking and mirrors) the
	// only roots. Without it every commit object in the repository is a
	// root, as with `ostree prune` without --refs-only, so only objects
	// that no commit needs are removed (and Depth removes nothing).
	RefsOnly bool
	// Depth is how many parents of each root are kept: -1 all, 0 only the
	// root commit, N the root and N ancestors. Older commits are deleted
	// with the objects only they need, as `ostree prune --depth`.
	Depth int
	// KeepYoungerThan, when non-zero, keeps for each ref its commit and
	// the chain of ancestors whose timestamp is not older than this
	// (Depth is then not used for refs). It implies RefsOnly, as
	// `ostree prune --keep-younger-than`.
	KeepYoungerThan time.Time
	// RetainBranchDepth gives some refs their own depth (-1 keeps all
	// their history), overriding Depth and KeepYoungerThan for them
	// (--retain-branch-depth). Refs are named as ListRefs names them. It
	// implies RefsOnly.
	RetainBranchDepth map[string]int
	// OnlyBranches restricts pruning to these refs: all others keep their
	// whole history (--only-branch). It implies RefsOnly.
	OnlyBranches []string
	// NoPrune computes what would be deleted but deletes nothing.
	NoPrune bool
	// Jobs bounds parallel deletion; 0 means GOMAXPROCS.
	Jobs int
}

// DefaultPruneOptions returns the options of a plain `ostree prune`.
func DefaultPruneOptions() PruneOptions { return PruneOptions{Depth: -1} }

// PruneResult reports what Prune did.
type PruneResult struct {
	// Total counts the loose objects considered (commits, dirtrees,
	// dirmetas, content objects and payload links — not detached
	// metadata or tombstones), as ostree's "Total objects".
	Total int
	// Pruned counts the unreachable objects among them: deleted, or to be
	// deleted when DryRun.
	Pruned int
	// FreedBytes is the on-disk size of the pruned objects.
	FreedBytes uint64
	DryRun     bool
	// Deleted lists the pruned objects (commits first).
	Deleted []ObjectName
	// DeletedCommitMeta counts orphaned .commitmeta files (whose commit
	// was already gone) that were removed; the detached metadata of the
	// commits deleted now is removed with them and not counted here.
	// DeletedDeltas lists static deltas removed because their target
	// commit is gone.
	DeletedCommitMeta int
	DeletedDeltas     []string
}

// String reports the result as `ostree prune` prints it.
func (p *PruneResult) String() string {
	s := fmt.Sprintf("Total objects: %d\n", p.Total)
	switch {
	case p.Pruned == 0:
		s += "No unreachable objects\n"
	case p.DryRun:
		s += fmt.Sprintf("Would delete: %d objects, freeing %s\n", p.Pruned, formatSize(p.FreedBytes))
	default:
		s += fmt.Sprintf("Deleted %d objects, %s freed\n", p.Pruned, formatSize(p.FreedBytes))
	}
	return s
}

// Prune deletes the loose objects that are not reachable from the roots
// selected by o (see PruneOptions): a reachable commit keeps its tree
// (dirtrees, dirmetas, content), its detached metadata and its parents up
// to the depth. A deleted commit takes its .commitmeta and its
// state/<commit>.commitpartial marker with it (and leaves a
// tombstone-commit when core.tombstone-commits is set), and static deltas
// whose target commit is gone are removed. Commits are deleted before the
// objects of their trees, so an interrupted prune never leaves a commit
// with missing objects behind.
//
// Prune holds the exclusive repository lock. A commit that is not marked
// partial but whose tree lacks a dirtree makes Prune fail before anything
// is deleted (run Fsck, which marks such commits partial).
func (r *Repo) Prune(ctx context.Context, o PruneOptions) (*PruneResult, error) {
	unlock, err := r.Lock(ctx, LockExclusive)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if o.Depth < -1 {
		return nil, fmt.Errorf("prune: invalid depth %d", o.Depth)
	}
	objs, err := r.listLooseObjects(ctx)
	if err != nil {
		return nil, err
	}
	w := &pruneWalk{ctx: ctx, r: r, reachable: map[ObjectName]struct{}{}, depth: map[Checksum]int{},
		partial: r.partialCommits()}
	if err := w.roots(o, objs); err != nil {
		return nil, err
	}

	res := &PruneResult{DryRun: o.NoPrune}
	var dead []looseObject
	for _, lo := range objs.list {
		if lo.name.Type == ObjCommitMeta || lo.name.Type == ObjTombstoneCommit {
			continue
		}
		res.Total++
		if w.keeps(lo) {
			continue
		}
		res.Pruned++
		res.FreedBytes += uint64(lo.size)
		dead = append(dead, lo)
	}
	order := map[ObjectType]int{ObjCommit: 0, ObjDirTree: 1, ObjDirMeta: 2, ObjFile: 3, ObjPayloadLink: 4}
	sort.SliceStable(dead, func(i, j int) bool { return order[dead[i].name.Type] < order[dead[j].name.Type] })
	for _, lo := range dead {
		res.Deleted = append(res.Deleted, lo.name)
	}
	if o.NoPrune {
		return res, nil
	}
	if err := r.deleteUnreachable(ctx, dead, o.Jobs); err != nil {
		return res, err
	}
	// Detached metadata whose commit is gone (deleted now or before).
	for _, lo := range objs.list {
		if lo.name.Type != ObjCommitMeta {
			continue
		}
		if ok, _ := r.HasObject(ObjectName{lo.name.Checksum, ObjCommit}); !ok {
			if err := os.Remove(r.objectPath(lo.name)); err == nil {
				res.DeletedCommitMeta++
			}
		}
	}
	if res.DeletedDeltas, err = r.pruneStaticDeltas(); err != nil {
		return res, err
	}
	return res, nil
}

type looseObject struct {
	name ObjectName
	size int64
	link string // payload-link target
}

type looseObjects struct {
	list []looseObject
}

// listLooseObjects lists objects/XX/ with the on-disk size of each object.
// Files that are not objects are ignored (Fsck reports them).
func (r *Repo) listLooseObjects(ctx context.Context) (*looseObjects, error) {
	top := filepath.Join(r.path, "objects")
	ents, err := os.ReadDir(top)
	if err != nil {
		return nil, fmt.Errorf("reading objects: %w", err)
	}
	out := &looseObjects{}
	for _, e := range ents {
		prefix := e.Name()
		if !e.IsDir() || len(prefix) != 2 || !isLowerHex(prefix) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dir := filepath.Join(top, prefix)
		sub, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("reading objects/%s: %w", prefix, err)
		}
		for _, se := range sub {
			stem, ext, ok := strings.Cut(se.Name(), ".")
			if !ok || len(stem) != 62 || !isLowerHex(stem) || se.IsDir() {
				continue
			}
			c, err := ParseChecksum(prefix + stem)
			if err != nil {
				continue
			}
			var t ObjectType
			switch {
			case ext == "filez" && r.mode == ModeArchive, ext == "file" && r.mode != ModeArchive:
				t = ObjFile
			case ext == "file" || ext == "filez":
				continue
			default:
				if t, err = ParseObjectType(ext); err != nil {
					continue
				}
			}
			info, err := se.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return nil, err
			}
			lo := looseObject{name: ObjectName{c, t}, size: info.Size()}
			if t == ObjPayloadLink {
				lo.link, _ = os.Readlink(filepath.Join(dir, se.Name()))
			}
			out.list = append(out.list, lo)
		}
	}
	return out, nil
}

// partialCommits lists the commits marked partial in state/.
func (r *Repo) partialCommits() map[Checksum]bool {
	out := map[Checksum]bool{}
	ents, _ := os.ReadDir(filepath.Join(r.path, "state"))
	for _, e := range ents {
		if stem, ok := strings.CutSuffix(e.Name(), ".commitpartial"); ok {
			if c, err := ParseChecksum(stem); err == nil {
				out[c] = true
			}
		}
	}
	return out
}

type pruneWalk struct {
	ctx       context.Context
	r         *Repo
	reachable map[ObjectName]struct{}
	depth     map[Checksum]int // deepest history already kept below a commit (-1 = all)
	partial   map[Checksum]bool
}

func (w *pruneWalk) roots(o PruneOptions, objs *looseObjects) error {
	refsOnly := o.RefsOnly || !o.KeepYoungerThan.IsZero() || o.RetainBranchDepth != nil || o.OnlyBranches != nil
	if !refsOnly {
		for _, lo := range objs.list {
			if lo.name.Type == ObjCommit {
				if err := w.commit(lo.name.Checksum, o.Depth); err != nil {
					return err
				}
			}
		}
		return nil
	}
	refs, err := w.r.ListRefs("", true)
	if err != nil {
		return err
	}
	mirrors, err := w.r.listMirrorRefs()
	if err != nil {
		return err
	}
	retain := map[string]int{}
	for k, v := range o.RetainBranchDepth {
		retain[k] = v
	}
	if o.OnlyBranches != nil {
		only := map[string]bool{}
		for _, b := range o.OnlyBranches {
			if _, ok := refs[b]; !ok {
				return fmt.Errorf("prune: --only-branch %s: refspec '%s' not found: %w", b, b, ErrNotFound)
			}
			only[b] = true
		}
		for name := range refs {
			if _, ok := retain[name]; !ok && !only[name] {
				retain[name] = -1
			}
		}
	}
	for _, name := range SortedRefNames(refs) {
		c := refs[name]
		if d, ok := retain[name]; ok {
			if err := w.commit(c, d); err != nil {
				return err
			}
		} else if !o.KeepYoungerThan.IsZero() {
			if err := w.keepYoungerThan(c, o.KeepYoungerThan); err != nil {
				return err
			}
		} else if err := w.commit(c, o.Depth); err != nil {
			return err
		}
	}
	for _, name := range SortedRefNames(mirrors) {
		if err := w.commit(mirrors[name], o.Depth); err != nil {
			return err
		}
	}
	return nil
}

// listMirrorRefs reads refs/mirrors/COLLECTION/REF.
func (r *Repo) listMirrorRefs() (map[string]Checksum, error) {
	out := map[string]Checksum{}
	dir := filepath.Join(r.path, "refs", "mirrors")
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return out, nil
		}
		return nil, err
	}
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		m := map[string]Checksum{}
		if err := r.walkRefs(filepath.Join(dir, e.Name()), "", "", m); err != nil {
			return nil, err
		}
		for k, v := range m {
			out["("+e.Name()+", "+k+")"] = v
		}
	}
	return out, nil
}

// keepYoungerThan keeps the ref's commit, then its ancestors while they
// are not older than t (ostree's traverse_keep_younger_than).
func (w *pruneWalk) keepYoungerThan(c Checksum, t time.Time) error {
	if err := w.commit(c, 0); err != nil {
		return err
	}
	for {
		cm, err := w.loadCommit(c)
		if err != nil || cm == nil {
			return err
		}
		if int64(cm.Timestamp) < t.Unix() {
			return nil
		}
		if err := w.commit(c, 0); err != nil {
			return err
		}
		if !cm.HasParent() {
			return nil
		}
		c = cm.Parent
	}
}

func (w *pruneWalk) loadCommit(c Checksum) (*Commit, error) {
	cm, err := w.r.LoadCommit(c)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return cm, err
}

// commit keeps commit c, its tree and depth ancestors (-1: all). History
// already kept to at least that depth is not walked again.
func (w *pruneWalk) commit(c Checksum, depth int) error {
	for {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if prev, ok := w.depth[c]; ok && (prev == -1 || depth != -1 && prev >= depth) {
			return nil
		}
		cm, err := w.loadCommit(c)
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		if cm == nil {
			return nil // a partial history ends here
		}
		n := ObjectName{c, ObjCommit}
		if _, ok := w.reachable[n]; !ok {
			w.reachable[n] = struct{}{}
			w.reachable[ObjectName{c, ObjCommitMeta}] = struct{}{}
			if err := w.tree(c, cm.RootTree, cm.RootMeta); err != nil {
				return err
			}
		}
		w.depth[c] = depth
		if depth == 0 || !cm.HasParent() {
			return nil
		}
		if depth > 0 {
			depth--
		}
		c = cm.Parent
	}
}

func (w *pruneWalk) tree(commit Checksum, tree, meta Checksum) error {
	w.reachable[ObjectName{meta, ObjDirMeta}] = struct{}{}
	tn := ObjectName{tree, ObjDirTree}
	if _, ok := w.reachable[tn]; ok {
		return nil
	}
	dt, err := w.r.LoadDirTree(tree)
	if err != nil {
		if errors.Is(err, ErrNotFound) && w.partial[commit] {
			return nil
		}
		return fmt.Errorf("prune: commit %s: %w", commit, err)
	}
	w.reachable[tn] = struct{}{}
	for _, f := range dt.Files {
		w.reachable[ObjectName{f.Checksum, ObjFile}] = struct{}{}
	}
	for _, d := range dt.Dirs {
		if err := w.tree(commit, d.Tree, d.Meta); err != nil {
			return err
		}
	}
	return nil
}

// keeps reports whether a loose object is reachable. A payload link is
// kept while the content object it stands for is.
func (w *pruneWalk) keeps(lo looseObject) bool {
	if _, ok := w.reachable[lo.name]; ok {
		return true
	}
	if lo.name.Type == ObjPayloadLink {
		// Target: ../XX/YYY.file relative to the link.
		base := filepath.Base(lo.link)
		dir := filepath.Base(filepath.Dir(lo.link))
		if stem, ok := strings.CutSuffix(base, ".file"); ok {
			if c, err := ParseChecksum(dir + stem); err == nil {
				_, ok := w.reachable[ObjectName{c, ObjFile}]
				return ok
			}
		}
	}
	return false
}

// deleteUnreachable removes the objects: commits (with their detached
// metadata and partial markers) first, then the rest in parallel.
func (r *Repo) deleteUnreachable(ctx context.Context, dead []looseObject, jobs int) error {
	tomb, err := r.config.Bool("core", "tombstone-commits", false)
	if err != nil {
		return err
	}
	i := 0
	for ; i < len(dead) && dead[i].name.Type == ObjCommit; i++ {
		c := dead[i].name.Checksum
		if err := os.Remove(filepath.Join(r.path, "state", c.String()+".commitpartial")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("prune: %w", err)
		}
		if err := r.deleteLooseObject(dead[i].name); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		if tomb {
			if err := r.writeTombstone(c); err != nil {
				return err
			}
		}
	}
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	rest := dead[i:]
	g, gctx := errgroup.WithContext(ctx)
	var next int
	var mu sync.Mutex
	for j := 0; j < jobs; j++ {
		g.Go(func() error {
			for {
				mu.Lock()
				k := next
				next++
				mu.Unlock()
				if k >= len(rest) {
					return nil
				}
				if err := gctx.Err(); err != nil {
					return err
				}
				if err := os.Remove(r.objectPath(rest[k].name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("prune: deleting object %s: %w", rest[k].name, err)
				}
			}
		})
	}
	return g.Wait()
}

// writeTombstone records a deleted commit as ostree does when
// core.tombstone-commits is set: a{sv} {"commit": <b"HEX">}.
func (r *Repo) writeTombstone(c Checksum) error {
	b, err := EncodeMetadata(Metadata{{Key: "commit", Value: gvariant.NewVariant("ay", append([]byte(c.String()), 0))}})
	if err != nil {
		return err
	}
	p := r.objectPath(ObjectName{c, ObjTombstoneCommit})
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, b, 0o644)
}

// pruneStaticDeltas removes the static deltas whose target commit is not
// in the repository (ostree_repo_prune_static_deltas).
func (r *Repo) pruneStaticDeltas() ([]string, error) {
	deltas, err := r.listStaticDeltas()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range deltas {
		if ok, err := r.HasObject(ObjectName{d.to, ObjCommit}); err != nil || ok {
			continue
		}
		if err := os.RemoveAll(filepath.Join(r.path, d.dir)); err != nil {
			return out, fmt.Errorf("prune: removing static delta %s: %w", d.name, err)
		}
		os.Remove(filepath.Dir(filepath.Join(r.path, d.dir))) // the XX directory, if now empty
		out = append(out, d.name)
	}
	return out, nil
}
