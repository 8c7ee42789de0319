package ostree

import (
	"bytes"
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

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// FsckOptions controls Fsck.
type FsckOptions struct {
	// All also verifies every commit object found in objects/ (with its
	// tree), not only the commits reachable from refs.
	All bool
	// Delete removes corrupted objects (not stray files). The commits
	// whose trees needed them are marked partial, as for missing objects.
	Delete bool
	// NoPartialMarker does not create state/<commit>.commitpartial for
	// commits whose trees have missing or corrupted objects.
	NoPartialMarker bool
	// Jobs bounds parallel content verification; 0 means GOMAXPROCS.
	Jobs int
}

// FsckError is one problem found by Fsck.
type FsckError struct {
	// Object is the object concerned; it is the zero ObjectName when the
	// problem is a file that is not an object (see Path).
	Object ObjectName
	// Path is the repository-relative path of a ref file or of a file in
	// objects/ that is not a valid object name; "" for object problems.
	Path string
	// Ref is the ref through which a missing or corrupted commit was
	// reached, if any.
	Ref string
	// Missing is set when the object is absent.
	Missing bool
	// Commits are the commits whose trees contain the object.
	Commits []Checksum
	// Err describes the problem; for objects it wraps ErrNotFound when
	// the object is missing and ErrCorrupt when it is malformed.
	Err error
}

func (e *FsckError) Error() string {
	commits := make([]string, len(e.Commits))
	for i, c := range e.Commits {
		commits[i] = c.String()
	}
	in := strings.Join(commits, ", ")
	switch {
	case e.Path != "":
		return fmt.Sprintf("%s: %v", e.Path, e.Err)
	case e.Missing && e.Ref != "":
		return fmt.Sprintf("loading commit for ref %s: object missing: %s", e.Ref, e.Object)
	case e.Missing && in != "":
		return fmt.Sprintf("object missing in commits %s: %s", in, e.Object)
	case e.Missing:
		return fmt.Sprintf("object missing: %s", e.Object)
	case e.Ref != "":
		return fmt.Sprintf("ref %s: %s: %v", e.Ref, e.Object, e.Err)
	case in != "":
		return fmt.Sprintf("in commits %s: %s: %v", in, e.Object, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Object, e.Err)
}

func (e *FsckError) Unwrap() error { return e.Err }

// FsckResult is what Fsck checked and found.
type FsckResult struct {
	Refs           int // ref files checked
	Commits        int // commit objects verified
	DirTrees       int
	DirMetas       int
	ContentObjects int
	// PartialCommits counts commits that were already marked partial
	// (e.g. by an interrupted pull); objects missing from their trees
	// are expected and not reported.
	PartialCommits int
	// MarkedPartial lists the commits Fsck marked partial.
	MarkedPartial []Checksum
	// Deleted lists the corrupted objects removed (FsckOptions.Delete).
	Deleted []ObjectName
	// Errors lists every problem found, sorted by object and path.
	Errors []FsckError
}

// OK reports whether no problem was found.
func (r *FsckResult) OK() bool { return len(r.Errors) == 0 }

// Err returns nil when no problem was found, or an error summarising the
// problems (the first one and the count).
func (r *FsckResult) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	if len(r.Errors) == 1 {
		return fmt.Errorf("repository corruption encountered: %w", &r.Errors[0])
	}
	return fmt.Errorf("repository corruption encountered: %w (and %d more problems)", &r.Errors[0], len(r.Errors)-1)
}

// partialState is the content of state/<commit>.commitpartial.
type partialState int

const (
	notPartial  partialState = iota
	pullPartial              // created by pull: objects may be missing
	fsckPartial              // created by fsck ("f"): corruption was found
)

// partialFsckMarker is the content of a commitpartial file made by fsck.
const partialFsckMarker = "f"

type fsck struct {
	r       *Repo
	o       FsckOptions
	ctx     context.Context
	present map[ObjectName]struct{}
	partial map[Checksum]partialState
	res     *FsckResult

	// Walker state, only touched by the walking goroutine.
	seen    map[ObjectName]struct{}
	parents map[ObjectName][]ObjectName // object → dirtrees/commits referencing it
	g       *errgroup.Group

	mu  sync.Mutex // guards bad, which content workers write too
	bad map[ObjectName]*FsckError
}

// Fsck verifies the repository: every ref file parses; the commit of every
// ref (local, remote and mirror) and, with All, every commit object is
// re-hashed and parsed, as are its parents as far as they are present (a
// missing parent is a partial history, not an error) and its whole tree:
// each dirtree and dirmeta is re-hashed and decoded (names and normal form
// are validated) and each content object re-hashed from its stored
// metadata and content, in parallel. Every object is checked once however
// many commits share it. Files in objects/ whose names are not valid
// object names for the repository's mode are reported too.
//
// Every problem is collected in the result; the returned error is only for
// failures to run (unreadable directories, cancellation). Commits whose
// trees have missing or corrupted objects are marked partial
// (state/<commit>.commitpartial containing "f", as `ostree fsck`) unless
// NoPartialMarker is set.
func (r *Repo) Fsck(ctx context.Context, o FsckOptions) (*FsckResult, error) {
	kind := LockShared
	if o.Delete {
		kind = LockExclusive
	}
	unlock, err := r.Lock(ctx, kind)
	if err != nil {
		return nil, err
	}
	defer unlock()
	f := &fsck{
		r: r, o: o, ctx: ctx, res: &FsckResult{},
		present: map[ObjectName]struct{}{},
		partial: map[Checksum]partialState{},
		seen:    map[ObjectName]struct{}{},
		parents: map[ObjectName][]ObjectName{},
		bad:     map[ObjectName]*FsckError{},
	}
	if err := f.scanObjects(); err != nil {
		return nil, err
	}
	if err := f.readPartialStates(); err != nil {
		return nil, err
	}
	roots, err := f.checkRefs()
	if err != nil {
		return nil, err
	}
	if o.All {
		for n := range f.present {
			if n.Type == ObjCommit {
				roots = append(roots, fsckRoot{commit: n.Checksum})
			}
		}
	}
	sort.SliceStable(roots, func(i, j int) bool {
		return bytes.Compare(roots[i].commit[:], roots[j].commit[:]) < 0
	})

	jobs := o.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	var gctx context.Context
	f.g, gctx = errgroup.WithContext(ctx)
	f.g.SetLimit(jobs)
	f.ctx = gctx
	walkErr := f.walk(roots)
	if err := f.g.Wait(); err != nil {
		return nil, err
	}
	if walkErr != nil {
		return nil, walkErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := f.finish(); err != nil {
		return nil, err
	}
	return f.res, nil
}

// scanObjects lists objects/ once: it records which objects exist, so the
// walk needs no stat per object, and reports files that are not objects.
func (f *fsck) scanObjects() error {
	top := filepath.Join(f.r.path, "objects")
	ents, err := os.ReadDir(top)
	if err != nil {
		return fmt.Errorf("reading objects: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		rel := "objects/" + name
		if !e.IsDir() || len(name) != 2 || !isLowerHex(name) {
			f.stray(rel, "not an object directory")
			continue
		}
		sub, err := os.ReadDir(filepath.Join(top, name))
		if err != nil {
			return fmt.Errorf("reading %s: %w", rel, err)
		}
		for _, se := range sub {
			if err := f.ctx.Err(); err != nil {
				return err
			}
			n, why := f.parseLooseName(name, se)
			if why != "" {
				f.stray(rel+"/"+se.Name(), why)
				continue
			}
			f.present[n] = struct{}{}
		}
	}
	return nil
}

// parseLooseName parses objects/XX/<62 hex>.<ext>.
func (f *fsck) parseLooseName(prefix string, e fs.DirEntry) (ObjectName, string) {
	name := e.Name()
	if e.IsDir() {
		return ObjectName{}, "unexpected directory in object directory"
	}
	stem, ext, ok := strings.Cut(name, ".")
	if !ok || len(stem) != 62 || !isLowerHex(stem) {
		return ObjectName{}, "not a valid object file name"
	}
	c, err := ParseChecksum(prefix + stem)
	if err != nil {
		return ObjectName{}, "not a valid object file name"
	}
	archive := f.r.mode == ModeArchive
	switch ext {
	case "filez":
		if !archive {
			return ObjectName{}, "compressed content object in a " + f.r.mode.String() + " repository"
		}
		return ObjectName{c, ObjFile}, ""
	case "file":
		if archive {
			return ObjectName{}, "uncompressed content object in an archive repository"
		}
		return ObjectName{c, ObjFile}, ""
	}
	t, err := ParseObjectType(ext)
	if err != nil || t == ObjFile {
		return ObjectName{}, fmt.Sprintf("unknown object type %q", ext)
	}
	// Symlinks are content objects in bare modes only.
	if e.Type()&fs.ModeSymlink != 0 && t != ObjPayloadLink {
		return ObjectName{}, "unexpected symbolic link"
	}
	return ObjectName{c, t}, ""
}

func (f *fsck) stray(rel, why string) {
	f.res.Errors = append(f.res.Errors, FsckError{Path: rel, Err: errors.New(why)})
}

func (f *fsck) readPartialStates() error {
	dir := filepath.Join(f.r.path, "state")
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		stem, ok := strings.CutSuffix(e.Name(), ".commitpartial")
		if !ok {
			continue
		}
		c, err := ParseChecksum(stem)
		if err != nil {
			continue
		}
		st := pullPartial
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && bytes.HasPrefix(b, []byte(partialFsckMarker)) {
			st = fsckPartial
		}
		f.partial[c] = st
	}
	return nil
}

type fsckRoot struct {
	commit Checksum
	ref    string // "" for commits found in objects/
}

// checkRefs parses every ref file under refs/heads, refs/remotes/* and
// refs/mirrors/*; it returns the commits they name. Refs are named as
// ostree prints them: REF, REMOTE:REF, or (COLLECTION, REF).
func (f *fsck) checkRefs() ([]fsckRoot, error) {
	var roots []fsckRoot
	var walk func(dir, rel, sub string, display func(string) string) error
	walk = func(dir, rel, sub string, display func(string) string) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("reading %s: %w", rel, err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(dir, e.Name())
			r := rel + "/" + e.Name()
			name := e.Name()
			if sub != "" {
				name = sub + "/" + name
			}
			st, err := os.Stat(p)
			if err != nil {
				f.res.Errors = append(f.res.Errors, FsckError{Path: r, Err: err})
				continue
			}
			if st.IsDir() {
				if !e.IsDir() {
					// Not followed: a link to a directory could loop.
					f.res.Errors = append(f.res.Errors, FsckError{Path: r, Err: errors.New("symbolic link to a directory in refs")})
					continue
				}
				if err := walk(p, r, name, display); err != nil {
					return err
				}
				continue
			}
			f.res.Refs++
			b, err := os.ReadFile(p)
			if err != nil {
				f.res.Errors = append(f.res.Errors, FsckError{Path: r, Err: err})
				continue
			}
			s := strings.TrimSuffix(string(b), "\n")
			c, err := ParseChecksum(s)
			if err != nil {
				f.res.Errors = append(f.res.Errors, FsckError{Path: r,
					Err: fmt.Errorf("ref %s: invalid rev %q: not a checksum", display(name), truncate(strings.TrimSpace(s), 64))})
				continue
			}
			if err := ValidateRefName(name); err != nil {
				f.res.Errors = append(f.res.Errors, FsckError{Path: r, Err: err})
			}
			roots = append(roots, fsckRoot{commit: c, ref: display(name)})
		}
		return nil
	}
	plain := func(s string) string { return s }
	if err := walk(filepath.Join(f.r.path, "refs", "heads"), "refs/heads", "", plain); err != nil {
		return nil, err
	}
	for _, kind := range []string{"remotes", "mirrors"} {
		dir := filepath.Join(f.r.path, "refs", kind)
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading refs/%s: %w", kind, err)
		}
		for _, e := range ents {
			rel := "refs/" + kind + "/" + e.Name()
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if !e.IsDir() {
				f.res.Errors = append(f.res.Errors, FsckError{Path: rel, Err: errors.New("not a directory of refs")})
				continue
			}
			owner := e.Name()
			display := func(s string) string { return owner + ":" + s }
			if kind == "mirrors" {
				display = func(s string) string { return "(" + owner + ", " + s + ")" }
			}
			if err := walk(filepath.Join(dir, owner), rel, "", display); err != nil {
				return nil, err
			}
		}
	}
	return roots, nil
}

// walk verifies the commits of roots, their present parents and their
// trees. Content objects are verified by goroutines of f.g.
func (f *fsck) walk(roots []fsckRoot) error {
	for _, root := range roots {
		n := ObjectName{root.commit, ObjCommit}
		if !f.has(n) {
			f.markBad(n, fmt.Errorf("no such metadata object %s: %w", n, ErrNotFound), root.ref)
			continue
		}
		c := root.commit
		ref := root.ref
		for {
			next, err := f.visitCommit(c, ref)
			if err != nil {
				return err
			}
			if next.IsZero() {
				break
			}
			c, ref = next, ""
		}
	}
	return nil
}

// visitCommit verifies commit c and its tree; it returns its parent when
// that is present and not yet visited.
func (f *fsck) visitCommit(c Checksum, ref string) (Checksum, error) {
	if err := f.ctx.Err(); err != nil {
		return Checksum{}, err
	}
	n := ObjectName{c, ObjCommit}
	if _, ok := f.seen[n]; ok {
		return Checksum{}, nil
	}
	f.seen[n] = struct{}{}
	f.res.Commits++
	b, err := f.r.readVerified(n)
	var cm *Commit
	if err == nil {
		cm, err = DecodeCommit(b)
	}
	if err != nil {
		f.markBad(n, err, ref)
		return Checksum{}, nil
	}
	if _, err := f.r.LoadCommitMeta(c); err != nil {
		f.markBad(ObjectName{c, ObjCommitMeta}, err, "")
	}
	if f.partial[c] == pullPartial {
		f.res.PartialCommits++
	}
	f.visitDir(n, cm.RootTree, cm.RootMeta)
	if cm.HasParent() {
		if f.has(ObjectName{cm.Parent, ObjCommit}) {
			return cm.Parent, nil
		}
	}
	return Checksum{}, nil
}

func (f *fsck) addParent(child, parent ObjectName) {
	f.parents[child] = append(f.parents[child], parent)
}

// firstVisit records the edge and reports whether child is new.
func (f *fsck) firstVisit(child, parent ObjectName) bool {
	f.addParent(child, parent)
	if _, ok := f.seen[child]; ok {
		return false
	}
	f.seen[child] = struct{}{}
	return true
}

// has reports whether an object exists: it was seen by scanObjects or,
// having been written since by a concurrent transaction, is there now.
func (f *fsck) has(n ObjectName) bool {
	if _, ok := f.present[n]; ok {
		return true
	}
	ok, err := f.r.HasObject(n)
	return ok && err == nil
}

func (f *fsck) missing(n ObjectName) bool {
	if f.has(n) {
		return false
	}
	f.markBad(n, fmt.Errorf("object %s: %w", n, ErrNotFound), "")
	return true
}

func (f *fsck) visitDir(parent ObjectName, tree, meta Checksum) {
	mn := ObjectName{meta, ObjDirMeta}
	if f.firstVisit(mn, parent) && !f.missing(mn) {
		f.res.DirMetas++
		if _, err := f.r.LoadDirMeta(meta); err != nil {
			f.markBad(mn, err, "")
		}
	}
	tn := ObjectName{tree, ObjDirTree}
	if !f.firstVisit(tn, parent) || f.missing(tn) {
		return
	}
	if f.ctx.Err() != nil {
		return
	}
	f.res.DirTrees++
	dt, err := f.r.LoadDirTree(tree)
	if err != nil {
		f.markBad(tn, err, "")
		return
	}
	for _, e := range dt.Files {
		fn := ObjectName{e.Checksum, ObjFile}
		if !f.firstVisit(fn, tn) || f.missing(fn) {
			continue
		}
		f.res.ContentObjects++
		sum := e.Checksum
		f.g.Go(func() error {
			if f.ctx.Err() != nil {
				return nil
			}
			if err := f.r.VerifyContent(sum); err != nil {
				f.markBad(ObjectName{sum, ObjFile}, err, "")
			}
			return nil
		})
	}
	for _, d := range dt.Dirs {
		f.visitDir(tn, d.Tree, d.Meta)
	}
}

func (f *fsck) markBad(n ObjectName, err error, ref string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.bad[n]; ok {
		return
	}
	f.bad[n] = &FsckError{Object: n, Ref: ref, Missing: errors.Is(err, ErrNotFound), Err: err}
}

// commitsOf returns the commits whose trees reach n, split into those
// that are marked partial by a pull and the others.
func (f *fsck) commitsOf(n ObjectName) (others, partial []Checksum) {
	visited := map[ObjectName]bool{n: true}
	stack := []ObjectName{n}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, p := range f.parents[x] {
			if visited[p] {
				continue
			}
			visited[p] = true
			if p.Type == ObjCommit {
				if f.partial[p.Checksum] == pullPartial {
					partial = append(partial, p.Checksum)
				} else {
					others = append(others, p.Checksum)
				}
				continue
			}
			stack = append(stack, p)
		}
	}
	byBytes := func(s []Checksum) {
		sort.Slice(s, func(i, j int) bool { return bytes.Compare(s[i][:], s[j][:]) < 0 })
	}
	byBytes(others)
	byBytes(partial)
	return others, partial
}

// finish turns the bad objects into errors, deletes corrupted objects and
// marks commits partial.
func (f *fsck) finish() error {
	toMark := map[Checksum]bool{}
	for n, e := range f.bad {
		if n.Type == ObjCommit || n.Type == ObjCommitMeta {
			if !e.Missing && f.o.Delete {
				if err := f.deleteObject(n); err != nil {
					return err
				}
			}
			f.res.Errors = append(f.res.Errors, *e)
			continue
		}
		others, partial := f.commitsOf(n)
		if e.Missing && len(others) == 0 && len(partial) > 0 {
			continue // expected in a partial commit
		}
		e.Commits = append(others, partial...)
		if !e.Missing && f.o.Delete {
			if err := f.deleteObject(n); err != nil {
				return err
			}
		}
		for _, c := range others {
			toMark[c] = true
		}
		f.res.Errors = append(f.res.Errors, *e)
	}
	if !f.o.NoPartialMarker {
		var marks []Checksum
		for c := range toMark {
			if f.partial[c] == notPartial {
				marks = append(marks, c)
			}
		}
		sort.Slice(marks, func(i, j int) bool { return bytes.Compare(marks[i][:], marks[j][:]) < 0 })
		for _, c := range marks {
			if err := f.r.markCommitPartial(c, true); err != nil {
				return err
			}
			f.res.MarkedPartial = append(f.res.MarkedPartial, c)
		}
	}
	sort.SliceStable(f.res.Errors, func(i, j int) bool {
		a, b := &f.res.Errors[i], &f.res.Errors[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if c := bytes.Compare(a.Object.Checksum[:], b.Object.Checksum[:]); c != 0 {
			return c < 0
		}
		return a.Object.Type < b.Object.Type
	})
	sort.Slice(f.res.Deleted, func(i, j int) bool {
		return f.res.Deleted[i].String() < f.res.Deleted[j].String()
	})
	return nil
}

func (f *fsck) deleteObject(n ObjectName) error {
	if err := f.r.deleteLooseObject(n); err != nil {
		return err
	}
	f.res.Deleted = append(f.res.Deleted, n)
	return nil
}

// deleteLooseObject removes an object file; deleting a commit also removes
// its detached metadata and its partial marker, as ostree does.
func (r *Repo) deleteLooseObject(n ObjectName) error {
	if n.Type == ObjCommit {
		if err := os.Remove(r.objectPath(ObjectName{n.Checksum, ObjCommitMeta})); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("deleting %s: %w", ObjectName{n.Checksum, ObjCommitMeta}, err)
		}
	}
	if err := os.Remove(r.objectPath(n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting object %s: %w", n, err)
	}
	return nil
}

// markCommitPartial creates (or removes) state/<commit>.commitpartial. A
// marker made by fsck holds "f", which ostree reads as "partial because
// fsck found corruption"; an existing marker is left as it is.
func (r *Repo) markCommitPartial(c Checksum, fromFsck bool) error {
	dir := filepath.Join(r.path, "state")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := filepath.Join(dir, c.String()+".commitpartial")
	fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0o644)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil
		}
		return fmt.Errorf("marking commit %s partial: %w", c, err)
	}
	defer unix.Close(fd)
	if fromFsck {
		if _, err := unix.Write(fd, []byte(partialFsckMarker)); err != nil {
			return fmt.Errorf("marking commit %s partial: %w", c, err)
		}
	}
	return nil
}
