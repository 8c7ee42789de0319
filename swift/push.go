package swift

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gostree/gostree/internal/retry"
	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/store"
)

// PushOptions controls Push.
type PushOptions struct {
	// Refs to publish; empty means every ref under refs/heads.
	Refs []string
	// Depth is how many parent commits of each ref to publish too (0: only
	// the commit a ref names, as ostree pull fetches by default; -1: all).
	Depth int
	// Jobs is the number of concurrent uploads (default 8).
	Jobs int
	// Limits are the cluster's constraints (default DefaultLimits).
	Limits *Limits
	// Retries is how often a retryable upload failure is retried (default 3).
	Retries int
	// NoSummary leaves the container's summary (and summary.sig) as they
	// are: for publishing some refs of a repository whose summary lists
	// others not published yet. Clients reading the summary keep seeing
	// the refs it lists, whose objects are all there.
	NoSummary bool
}

// PushResult says what Push did.
type PushResult struct {
	Objects     int   // objects the pushed refs need
	Uploaded    int   // objects uploaded now
	Bytes       int64 // bytes uploaded (objects, deltas, refs, summary)
	DeltaFiles  int   // static-delta files uploaded
	Refs        map[string]ostree.Checksum
	Summary     bool // a summary was published
	SummarySig  bool // with a summary.sig
	Regenerated bool // the local summary was stale and was regenerated
}

// Push publishes refs of the archive repository repo to dst so that
// `ostree pull` and gostree can pull them from it. It uploads, in this
// order, each step only after the previous one completed:
//
//  1. the objects the refs need that dst lacks (same path, size and MD5
//     means present), concurrently; commit objects after everything else;
//  2. static deltas (parts before their superblock);
//  3. config (when missing or different), then refs/heads/...;
//  4. the summary, then summary.sig when the repository has one (a stale
//     remote summary.sig is removed first).
//
// So a client never sees a ref or summary entry whose objects are missing,
// and an interrupted push is resumed by running it again: what is already
// there is skipped. The local summary is published as is when it lists
// the pushed refs at their current commits; otherwise it is regenerated
// (refused when the repository has a summary.sig, which would go stale).
// Every ref the published summary lists must have its commit in dst.
func Push(ctx context.Context, repo *ostree.Repo, dst WriteStore, o PushOptions) (*PushResult, error) {
	if repo.Mode() != ostree.ModeArchive {
		return nil, fmt.Errorf("push: %s is a %s repository; only archive repositories can be served (ostree init --mode=archive, then pull-local)", repo.Path(), repo.Mode())
	}
	if o.Jobs <= 0 {
		o.Jobs = 8
	}
	if o.Retries <= 0 {
		o.Retries = 3
	}
	limits := DefaultLimits
	if o.Limits != nil {
		limits = *o.Limits
	}
	prefixLen := 0
	if s, ok := dst.(*Store); ok {
		prefixLen = len(s.Prefix())
	}
	refs, err := pushRefs(repo, o.Refs)
	if err != nil {
		return nil, err
	}
	res := &PushResult{Refs: refs}

	// What the refs need.
	need, err := closure(ctx, repo, refs, o.Depth)
	if err != nil {
		return nil, err
	}
	res.Objects = len(need)

	// What dst has.
	have := map[string]ObjectInfo{}
	if err := dst.List(ctx, "objects/", func(oi ObjectInfo) error { have[oi.Path] = oi; return nil }); err != nil {
		return nil, fmt.Errorf("push: listing objects: %w", err)
	}
	if err := dst.List(ctx, "deltas/", func(oi ObjectInfo) error { have[oi.Path] = oi; return nil }); err != nil {
		return nil, fmt.Errorf("push: listing deltas: %w", err)
	}

	up := &uploader{dst: dst, root: repo.Path(), have: have, limits: limits, prefixLen: prefixLen, retries: o.Retries}
	var commits, rest []string
	for n := range need {
		p := ostree.LoosePath(n, ostree.ModeArchive)
		if n.Type == ostree.ObjCommit || n.Type == ostree.ObjCommitMeta {
			commits = append(commits, p)
		} else {
			rest = append(rest, p)
		}
	}
	sort.Strings(rest)
	sort.Strings(commits)
	parts, supers, err := localDeltaFiles(repo.Path())
	if err != nil {
		return nil, err
	}
	// The cluster's limits, checked for every file before anything is
	// uploaded: a push that cannot complete does not start.
	for _, batch := range [][]string{rest, commits, parts, supers} {
		for _, p := range batch {
			fi, err := os.Stat(filepath.Join(repo.Path(), filepath.FromSlash(p)))
			if err != nil {
				return nil, fmt.Errorf("push: %w", err)
			}
			if err := up.check(p, fi.Size()); err != nil {
				return nil, err
			}
		}
	}
	for name := range refs {
		if err := up.check("refs/heads/"+name, 0); err != nil {
			return nil, err
		}
	}

	for _, batch := range [][]string{rest, commits} {
		if err := up.all(ctx, batch, o.Jobs); err != nil {
			return nil, err
		}
	}

	// Static deltas: parts, then superblocks.
	before := up.uploaded.Load()
	for _, batch := range [][]string{parts, supers} {
		if err := up.all(ctx, batch, o.Jobs); err != nil {
			return nil, err
		}
	}
	res.DeltaFiles = int(up.uploaded.Load() - before)
	res.Uploaded = int(before)

	// config, then refs.
	cfg := remoteConfig(repo)
	if err := up.putBytesIfDifferent(ctx, "config", cfg); err != nil {
		return nil, err
	}
	for _, name := range ostree.SortedRefNames(refs) {
		if err := up.putBytes(ctx, "refs/heads/"+name, []byte(refs[name].String()+"\n")); err != nil {
			return nil, err
		}
	}

	if o.NoSummary {
		res.Bytes = up.bytes.Load()
		return res, nil
	}

	// The summary, last.
	summary, sig, regenerated, err := summaryFor(ctx, repo, refs)
	if err != nil {
		return nil, err
	}
	res.Regenerated = regenerated
	sum, err := ostree.DecodeSummary(summary)
	if err != nil {
		return nil, fmt.Errorf("push: local summary: %w", err)
	}
	for _, r := range sum.Refs {
		p := ostree.LoosePath(ostree.ObjectName{Checksum: r.Checksum, Type: ostree.ObjCommit}, ostree.ModeArchive)
		if _, ok := need[ostree.ObjectName{Checksum: r.Checksum, Type: ostree.ObjCommit}]; ok {
			continue
		}
		if _, ok := have[p]; ok {
			continue
		}
		return nil, fmt.Errorf("push: the summary lists ref %s (commit %s), which is not published: push that ref too; the summary was not uploaded", r.Name, r.Checksum)
	}
	if sig == nil {
		if err := dst.Remove(ctx, "summary.sig"); err != nil {
			return nil, fmt.Errorf("push: removing stale summary.sig: %w", err)
		}
	}
	if err := up.putBytes(ctx, "summary", summary); err != nil {
		return nil, err
	}
	res.Summary = true
	if sig != nil {
		if err := up.putBytes(ctx, "summary.sig", sig); err != nil {
			return nil, err
		}
		res.SummarySig = true
	}
	res.Bytes = up.bytes.Load()
	return res, nil
}

// pushRefs resolves the refs to publish.
func pushRefs(repo *ostree.Repo, names []string) (map[string]ostree.Checksum, error) {
	if len(names) == 0 {
		all, err := repo.ListRefs("", false)
		if err != nil {
			return nil, fmt.Errorf("push: listing refs: %w", err)
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("push: %s has no refs to publish", repo.Path())
		}
		return all, nil
	}
	out := map[string]ostree.Checksum{}
	for _, n := range names {
		if err := ostree.ValidateRefName(n); err != nil {
			return nil, fmt.Errorf("push: %w", err)
		}
		c, err := repo.ReadRef(ostree.Refspec{Ref: n})
		if err != nil {
			return nil, fmt.Errorf("push: ref %s: %w", n, err)
		}
		out[n] = c
	}
	return out, nil
}

// closure returns every object the refs' commits (and depth parents) need.
func closure(ctx context.Context, repo *ostree.Repo, refs map[string]ostree.Checksum, depth int) (map[ostree.ObjectName]bool, error) {
	need := map[ostree.ObjectName]bool{}
	seenTree := map[ostree.Checksum]bool{}
	var walk func(tree, meta ostree.Checksum) error
	walk = func(tree, meta ostree.Checksum) error {
		need[ostree.ObjectName{Checksum: meta, Type: ostree.ObjDirMeta}] = true
		if seenTree[tree] {
			return nil
		}
		seenTree[tree] = true
		if err := ctx.Err(); err != nil {
			return err
		}
		need[ostree.ObjectName{Checksum: tree, Type: ostree.ObjDirTree}] = true
		dt, err := repo.LoadDirTree(tree)
		if err != nil {
			return err
		}
		for _, f := range dt.Files {
			need[ostree.ObjectName{Checksum: f.Checksum, Type: ostree.ObjFile}] = true
		}
		for _, d := range dt.Dirs {
			if err := walk(d.Tree, d.Meta); err != nil {
				return err
			}
		}
		return nil
	}
	for _, name := range ostree.SortedRefNames(refs) {
		c := refs[name]
		for i := 0; depth < 0 || i <= depth; i++ {
			cn := ostree.ObjectName{Checksum: c, Type: ostree.ObjCommit}
			if need[cn] {
				break
			}
			commit, err := repo.LoadCommit(c)
			if err != nil {
				if i > 0 && errors.Is(err, ostree.ErrNotFound) {
					break // history not in the local repository either
				}
				return nil, fmt.Errorf("push: ref %s: commit %s: %w", name, c, err)
			}
			need[cn] = true
			meta := ostree.ObjectName{Checksum: c, Type: ostree.ObjCommitMeta}
			if ok, err := repo.HasObject(meta); err != nil {
				return nil, err
			} else if ok {
				need[meta] = true
			}
			if err := walk(commit.RootTree, commit.RootMeta); err != nil {
				return nil, fmt.Errorf("push: ref %s: commit %s: %w", name, c, err)
			}
			if !commit.HasParent() {
				break
			}
			c = commit.Parent
		}
	}
	return need, nil
}

// localDeltaFiles lists deltas/... files: parts and superblocks.
func localDeltaFiles(root string) (parts, supers []string, err error) {
	base := filepath.Join(root, "deltas")
	err = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == base {
				return filepath.SkipDir
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.Name() == "superblock" {
			supers = append(supers, rel)
		} else {
			parts = append(parts, rel)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("push: listing static deltas: %w", err)
	}
	sort.Strings(parts)
	sort.Strings(supers)
	return parts, supers, nil
}

// remoteConfig is the config a served archive repository needs.
func remoteConfig(repo *ostree.Repo) []byte {
	var b strings.Builder
	b.WriteString("[core]\nrepo_version=1\nmode=archive-z2\n")
	if cfg := repo.Config(); cfg != nil {
		if cid, ok := cfg.String("core", "collection-id"); ok && cid != "" {
			b.WriteString("collection-id=" + cid + "\n")
		}
	}
	return []byte(b.String())
}

// summaryFor returns the summary (and summary.sig, nil when unsigned) to
// publish for refs.
func summaryFor(ctx context.Context, repo *ostree.Repo, refs map[string]ostree.Checksum) (summary, sig []byte, regenerated bool, err error) {
	path := filepath.Join(repo.Path(), "summary")
	summary, err = os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, err
	}
	sig, err = os.ReadFile(path + ".sig")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, err
	}
	if errors.Is(err, fs.ErrNotExist) {
		sig = nil
	}
	current := summary != nil
	if current {
		s, err := ostree.DecodeSummary(summary)
		if err != nil {
			return nil, nil, false, fmt.Errorf("push: local summary: %w", err)
		}
		for name, c := range refs {
			r, ok := s.Lookup(name)
			if !ok || r.Checksum != c {
				current = false
				break
			}
		}
	}
	if current {
		return summary, sig, false, nil
	}
	if sig != nil {
		return nil, nil, false, fmt.Errorf("push: the signed summary of %s does not list the pushed refs at their commits: run `gostree summary -u` with your signing key first", repo.Path())
	}
	summary, err = repo.RegenerateSummary(ctx, ostree.SummaryOptions{})
	if err != nil {
		return nil, nil, false, fmt.Errorf("push: regenerating the summary: %w", err)
	}
	return summary, nil, true, nil
}

type uploader struct {
	dst       WriteStore
	root      string
	have      map[string]ObjectInfo
	limits    Limits
	prefixLen int
	retries   int
	uploaded  atomic.Int64
	bytes     atomic.Int64
}

func (u *uploader) all(ctx context.Context, paths []string, jobs int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, p := range paths {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return u.file(gctx, p) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// file uploads root/p unless dst has it with the same size and MD5.
func (u *uploader) file(ctx context.Context, p string) error {
	f, err := os.Open(filepath.Join(u.root, filepath.FromSlash(p)))
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if err := u.check(p, fi.Size()); err != nil {
		return err
	}
	if h, ok := u.have[p]; ok && h.Size == fi.Size() {
		sum := md5.New()
		if _, err := io.Copy(sum, f); err != nil {
			return fmt.Errorf("push: %w", err)
		}
		if hex.EncodeToString(sum.Sum(nil)) == h.MD5 {
			return nil
		}
	}
	if err := u.put(ctx, p, f, fi.Size()); err != nil {
		return err
	}
	u.uploaded.Add(1)
	return nil
}

func (u *uploader) check(p string, size int64) error {
	if size > u.limits.MaxFileSize {
		return fmt.Errorf("push: %s is %d bytes, more than the Swift cluster's max_file_size of %d bytes (/info); nothing was uploaded. gostree does not split files into static large objects: regenerate static deltas with a smaller --max-chunk-size, or raise max_file_size", p, size, u.limits.MaxFileSize)
	}
	if n := u.prefixLen + len(p); n > u.limits.MaxObjectNameLength {
		return fmt.Errorf("push: object name for %s is %d bytes, more than the Swift cluster's max_object_name_length of %d (/info); nothing was uploaded: use a shorter --prefix", p, n, u.limits.MaxObjectNameLength)
	}
	return nil
}

// put uploads with retries of retryable failures (a PUT of the same
// content to the same name is idempotent), with jittered backoff.
func (u *uploader) put(ctx context.Context, p string, r io.ReadSeeker, size int64) error {
	err := retry.Do(ctx, retry.Policy{Retries: u.retries, Base: 200 * time.Millisecond}, store.IsRetryable, func(ctx context.Context) error {
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return u.dst.Put(ctx, p, r, size)
	})
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	u.bytes.Add(size)
	return nil
}

func (u *uploader) putBytes(ctx context.Context, p string, b []byte) error {
	if err := u.check(p, int64(len(b))); err != nil {
		return err
	}
	return u.put(ctx, p, bytes.NewReader(b), int64(len(b)))
}

func (u *uploader) putBytesIfDifferent(ctx context.Context, p string, b []byte) error {
	rc, err := u.dst.Open(ctx, p)
	if err == nil {
		old, rerr := io.ReadAll(io.LimitReader(rc, 1<<20))
		rc.Close()
		if rerr == nil && bytes.Equal(old, b) {
			return nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("push: %w", err)
	}
	return u.putBytes(ctx, p, b)
}
