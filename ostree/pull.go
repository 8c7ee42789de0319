package ostree

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gostree/gostree/internal/atomicfile"
	"github.com/gostree/gostree/internal/keyfile"
	"github.com/gostree/gostree/ostree/store"
)

// PullOptions controls Pull and PullLocal.
type PullOptions struct {
	// Remote is the remote pulled from: its name prefixes the refs written
	// (refs/remotes/NAME/REF) and its keys say which signatures are
	// required (gpg-verify defaults to true). Nil for an anonymous pull
	// (refs written to refs/heads, no signatures required).
	Remote *Remote
	// Refs to pull: "REF", "REF@COMMIT" (pull that commit and point REF
	// at it) or a 64-hex commit checksum (no ref written). Empty means
	// every ref of the summary with Mirror, the remote's branches key
	// otherwise (all refs of the source repository for PullLocal).
	Refs []string
	// ContentStore serves content objects (.filez) when the remote has a
	// contenturl; nil means the main store.
	ContentStore store.Store
	// Depth is how many parent commits to pull too: 0 none, -1 all. A
	// missing parent ends the history without an error.
	Depth int
	// Mirror writes refs to refs/heads (not refs/remotes/NAME); pulling
	// every ref also copies summary and summary.sig.
	Mirror bool
	// CommitMetadataOnly pulls commits (and detached metadata) but no
	// trees; the commits stay marked partial.
	CommitMetadataOnly bool
	// DryRun resolves the refs and reports what would be pulled, writing
	// nothing.
	DryRun bool
	// DisableStaticDeltas never uses static deltas; RequireStaticDeltas
	// fails when a commit cannot be pulled through one.
	DisableStaticDeltas, RequireStaticDeltas bool
	// CommitVerifier and SummaryVerifier check signatures. When the
	// remote requires signatures (gpg-verify, sign-verify,
	// gpg-verify-summary, sign-verify-summary) and the verifier is nil,
	// the pull fails: verification is never skipped silently.
	CommitVerifier  CommitVerifier
	SummaryVerifier SummaryVerifier
	// Jobs is the number of objects fetched at once (default 32: on a
	// link with latency, throughput is Jobs objects per round trip).
	Jobs int
	// Progress, if set, is called about every 200 ms and once at the end,
	// from one goroutine at a time.
	Progress func(PullProgress)
	// Untrusted, for PullLocal, verifies every object of the source as an
	// HTTP pull does (instead of trusting the local repository's content
	// and hard-linking objects between repositories of the same mode).
	Untrusted bool
}

// PullProgress reports how far a pull got.
type PullProgress struct {
	// Objects fetched (or copied) so far, and known to be needed so far.
	FetchedMetadata, FetchedContent int64
	Requested                       int64
	// Bytes received from the source (compressed, as transferred).
	Bytes int64
	// Elapsed time, and the average transfer rate in bytes/s.
	Elapsed time.Duration
	Rate    float64
	// DeltaParts applied (static deltas).
	DeltaParts int64
	Done       bool
}

// PullResult says what a pull did.
type PullResult struct {
	// Refs maps each ref written (as "REMOTE:REF" or "REF") to its commit.
	Refs map[string]Checksum
	// Commits pulled (requested ones first, then parents).
	Commits []Checksum
	// Fetched counts objects transferred; Bytes their size as received.
	FetchedMetadata, FetchedContent int64
	Bytes                           int64
	// DeltasUsed names the static deltas applied.
	DeltasUsed []string
	// DryRun lists, for a dry run, "REF → COMMIT (present|to pull)".
	DryRun []string
}

// Pull errors.
var (
	// ErrVerifierRequired: the remote requires signatures but no verifier
	// was given.
	ErrVerifierRequired = errors.New("signature verification required but no verifier available")
)

// maxRefFileSize bounds refs/heads/REF fetched without a summary.
const maxRefFileSize = 1024

// Pull fetches commits and their trees from src, a store serving an
// archive repository, into repo, with ostree's request sequence: summary.sig
// and summary (optional), config (mode must be archive), refs/heads/REF
// when there is no summary, then per commit its .commitmeta and .commit,
// and the tree: .dirtree, .dirmeta and .filez objects not present locally,
// opts.Jobs at a time. Every object is verified before it is staged
// (checksum, normal form, structure, sizes); commits are checked with the
// verifiers the remote requires. While a commit's tree is incomplete it is
// marked state/COMMIT.commitpartial; objects already verified are kept
// when the pull fails, so the next pull fetches only what is missing. Refs
// are written only once every object of every requested commit is
// durable.
func Pull(ctx context.Context, repo *Repo, src store.Store, opts PullOptions) (*PullResult, error) {
	csrc := opts.ContentStore
	if csrc == nil {
		csrc = src
	}
	return pull(ctx, repo, &storeSource{ms: src, cs: csrc, destArchive: repo.mode == ModeArchive}, opts)
}

// PullLocal pulls from another repository on the local file system, in any
// mode. By default (as `ostree pull-local`) the source is trusted: metadata
// is still parsed, but content objects are copied, or hard-linked between
// repositories of the same bare mode, without re-hashing; with
// opts.Untrusted every object is verified. Without refs, every ref of
// refs/heads of the source is pulled.
func PullLocal(ctx context.Context, repo *Repo, src *Repo, opts PullOptions) (*PullResult, error) {
	if len(opts.Refs) == 0 {
		refs, err := src.ListRefs("", false)
		if err != nil {
			return nil, err
		}
		opts.Refs = SortedRefNames(refs)
		if len(opts.Refs) == 0 {
			return nil, fmt.Errorf("repository %s has no refs to pull", src.path)
		}
	}
	opts.DisableStaticDeltas = true
	return pull(ctx, repo, &repoSource{src: src, dst: repo, untrusted: opts.Untrusted}, opts)
}

// source is where a pull reads from.
type source interface {
	// file reads a repository file (summary, summary.sig, config,
	// refs/heads/X, deltas/…) of at most limit bytes.
	file(ctx context.Context, path string, limit int64) ([]byte, error)
	// open streams a repository file (static delta parts).
	open(ctx context.Context, path string) (io.ReadCloser, error)
	// meta reads a metadata object of at most limit bytes; missing
	// objects give an error wrapping fs.ErrNotExist.
	meta(ctx context.Context, n ObjectName, limit int64) ([]byte, error)
	// content fetches, verifies and stages a content object, writing
	// only while inside gate; it returns the bytes transferred.
	content(ctx context.Context, t *Txn, c Checksum, gate writeGate) (int64, error)
	// resolve reads the commit of a ref when there is no summary.
	resolve(ctx context.Context, ref string) (Checksum, error)
	// checkMode verifies the source repository can be pulled from.
	checkMode(ctx context.Context) error
	// local reports a local repository source (no static deltas).
	local() bool
}

// errTooBig marks an object over its size limit.
var errTooBig = errors.New("exceeded maximum size")

func readLimited(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w of %d bytes", what, errTooBig, limit)
	}
	return b, nil
}

// storeSource reads an archive repository through a store.
type storeSource struct {
	ms, cs      store.Store // metadata (url) and content (contenturl)
	destArchive bool
}

func (s *storeSource) file(ctx context.Context, p string, limit int64) ([]byte, error) {
	rc, err := s.ms.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readLimited(rc, limit, p)
}

func (s *storeSource) open(ctx context.Context, p string) (io.ReadCloser, error) {
	if strings.HasPrefix(p, "objects/") && strings.HasSuffix(p, ".filez") || strings.HasPrefix(p, "deltas/") && !strings.HasSuffix(p, "/superblock") {
		return s.cs.Open(ctx, p)
	}
	return s.ms.Open(ctx, p)
}

func (s *storeSource) meta(ctx context.Context, n ObjectName, limit int64) ([]byte, error) {
	return s.file(ctx, LoosePath(n, ModeArchive), limit)
}

func (s *storeSource) content(ctx context.Context, t *Txn, c Checksum, gate writeGate) (int64, error) {
	p := LoosePath(ObjectName{c, ObjFile}, ModeArchive)
	rc, err := s.cs.Open(ctx, p)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	cr := &countingReader{r: rc}
	// Receive small objects whole before taking a writer slot, so that
	// many transfers overlap with few concurrent file writes.
	bp := prefetchBufs.Get().(*[]byte)
	defer prefetchBufs.Put(bp)
	buf := *bp
	n, err := io.ReadFull(cr, buf)
	var src io.Reader
	switch err {
	case io.EOF, io.ErrUnexpectedEOF:
		src = bytes.NewReader(buf[:n])
	case nil:
		src = io.MultiReader(bytes.NewReader(buf[:n]), cr)
	default:
		return cr.n, err
	}
	gate.enter()
	defer gate.leave()
	if s.destArchive {
		err = t.WriteArchiveObject(c, src)
	} else {
		br := getBufReader(src)
		defer putBufReader(br)
		fi, rd, release, oerr := openArchivePooled(br)
		if err = oerr; err == nil {
			err = t.writePulledContent(fi, rd, c)
			release()
		}
	}
	return cr.n, err
}

// prefetchSize is how much of a content object is received before it is
// written.
const prefetchSize = 256 << 10

var prefetchBufs = sync.Pool{New: func() any { b := make([]byte, prefetchSize); return &b }}

// writeGate bounds how many objects are written to the repository at once.
type writeGate chan struct{}

func (g writeGate) enter() { g <- struct{}{} }
func (g writeGate) leave() { <-g }

func (s *storeSource) resolve(ctx context.Context, ref string) (Checksum, error) {
	b, err := s.file(ctx, "refs/heads/"+ref, maxRefFileSize)
	if errors.Is(err, errTooBig) {
		return Checksum{}, fmt.Errorf("fetching checksum for ref %s: invalid rev: the ref file is over %d bytes", ref, maxRefFileSize)
	}
	if err != nil {
		return Checksum{}, fmt.Errorf("fetching checksum for ref %s: %w", ref, err)
	}
	txt := strings.TrimSpace(string(b))
	c, err := ParseChecksum(txt)
	if err != nil {
		return Checksum{}, fmt.Errorf("fetching checksum for ref %s: invalid rev %q: %w", ref, truncate(txt, 64), ErrCorrupt)
	}
	return c, nil
}

func (s *storeSource) checkMode(ctx context.Context) error {
	b, err := s.file(ctx, "config", 1<<20)
	if err != nil {
		return fmt.Errorf("fetching the remote repository's config: %w", err)
	}
	kf, err := keyfile.Parse(b)
	if err != nil {
		return fmt.Errorf("remote repository config: %w", err)
	}
	mode := kf.Get("core", "mode", "bare")
	if mode != "archive-z2" && mode != "archive" {
		return fmt.Errorf("can't pull from archives with mode %q: the remote repository must be in archive mode", mode)
	}
	return nil
}

func (s *storeSource) local() bool { return false }

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var bufReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

func getBufReader(r io.Reader) *bufio.Reader {
	br := bufReaders.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func putBufReader(br *bufio.Reader) {
	br.Reset(nil)
	bufReaders.Put(br)
}

// repoSource reads another local repository.
type repoSource struct {
	src, dst  *Repo
	untrusted bool
}

func (s *repoSource) file(ctx context.Context, p string, limit int64) ([]byte, error) {
	f, err := os.Open(filepath.Join(s.src.path, filepath.FromSlash(p)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, limit, p)
}

func (s *repoSource) open(ctx context.Context, p string) (io.ReadCloser, error) {
	return os.Open(filepath.Join(s.src.path, filepath.FromSlash(p)))
}

func (s *repoSource) meta(ctx context.Context, n ObjectName, limit int64) ([]byte, error) {
	return s.file(ctx, LoosePath(n, s.src.mode), limit)
}

func (s *repoSource) content(ctx context.Context, t *Txn, c Checksum, gate writeGate) (int64, error) {
	gate.enter()
	defer gate.leave()
	n := ObjectName{c, ObjFile}
	if s.src.mode == ModeArchive && s.dst.mode == ModeArchive {
		f, err := os.Open(s.src.objectPath(n))
		if err != nil {
			return 0, err
		}
		defer f.Close()
		cr := &countingReader{r: f}
		return cr.n, t.WriteArchiveObject(c, cr)
	}
	if !s.untrusted && s.src.mode == s.dst.mode && s.src.mode != ModeArchive {
		if ok, err := t.linkObject(n, s.src.objectPath(n)); ok || err != nil {
			return 0, err
		}
	}
	o, err := s.src.OpenContent(c)
	if err != nil {
		return 0, err
	}
	defer o.Close()
	var rd io.Reader = o.Content
	if s.src.mode != ModeArchive {
		br := getBufReader(o.Content)
		defer putBufReader(br)
		rd = br
	}
	if s.untrusted || s.src.mode == ModeArchive {
		_, err = t.WriteContent(o.Info, rd, &c)
	} else {
		_, err = t.writeContent(o.Info, rd, &c, true)
	}
	return o.Info.Size, err
}

func (s *repoSource) resolve(ctx context.Context, ref string) (Checksum, error) {
	rs, err := ParseRefspec(ref)
	if err != nil {
		return Checksum{}, err
	}
	return s.src.ReadRef(rs)
}

func (s *repoSource) checkMode(ctx context.Context) error { return nil }

func (s *repoSource) local() bool { return true }

// pullRef is one requested ref or commit.
type pullRef struct {
	ref      string // "" when pulling a commit by checksum
	commit   Checksum
	resolved bool  // commit known before fetching (REF@COMMIT, checksum, summary)
	size     int64 // the summary's commit size, 0 if unknown
	byRef    bool  // requested by ref name only (ref-binding applies)
}

type puller struct {
	ctx  context.Context
	repo *Repo
	src  source
	o    PullOptions
	res  *PullResult

	requireGPG, requireSign bool
	trustTrees              bool // no commit is partial: present dirtrees have complete subtrees

	txnMu        sync.RWMutex
	txn          *Txn
	checkpointAt atomic.Int64 // UnixNano of the last commit of staged objects

	seenMu sync.Mutex
	seen   map[ObjectName]struct{}

	q    *workQueue
	gate writeGate

	start                 time.Time
	fetchedMeta, fetchedC atomic.Int64
	requested, bytes      atomic.Int64
	deltaParts            atomic.Int64
}

func pull(ctx context.Context, repo *Repo, src source, o PullOptions) (*PullResult, error) {
	if o.Jobs <= 0 {
		o.Jobs = 32
	}
	if o.DisableStaticDeltas && o.RequireStaticDeltas {
		return nil, errors.New("--disable-static-deltas and --require-static-deltas are mutually exclusive")
	}
	p := &puller{ctx: ctx, repo: repo, src: src, o: o, res: &PullResult{Refs: map[string]Checksum{}},
		seen: map[ObjectName]struct{}{}, start: time.Now(), gate: make(writeGate, pullWriters())}
	requireSummarySig := false
	if rm := o.Remote; rm != nil {
		var err error
		if p.requireGPG, err = rm.GPGVerify(); err != nil {
			return nil, err
		}
		if p.requireSign, err = rm.SignVerify(); err != nil {
			return nil, err
		}
		gs, err := rm.GPGVerifySummary()
		if err != nil {
			return nil, err
		}
		ss, err := rm.SignVerifySummary()
		if err != nil {
			return nil, err
		}
		requireSummarySig = gs || ss
		if src.local() {
			// pull-local: ostree verifies only when asked (--gpg-verify).
			p.requireGPG, p.requireSign, requireSummarySig = false, false, false
		}
	}
	if (p.requireGPG || p.requireSign) && o.CommitVerifier == nil {
		return nil, fmt.Errorf("remote %q has %s: %w", o.Remote.Name, verifyKeys(p.requireGPG, p.requireSign, "gpg-verify", "sign-verify"), ErrVerifierRequired)
	}
	if requireSummarySig && o.SummaryVerifier == nil {
		return nil, fmt.Errorf("remote %q has gpg-verify-summary or sign-verify-summary: %w", o.Remote.Name, ErrVerifierRequired)
	}

	// 1. summary.sig and summary.
	var summary *Summary
	var sumBytes, sigBytes []byte
	if !src.local() || len(o.Refs) == 0 {
		var err error
		summary, sumBytes, sigBytes, err = fetchSummary(ctx, src, requireSummarySig, o.SummaryVerifier)
		if err != nil {
			return nil, err
		}
	}
	// 2. config.
	if err := src.checkMode(ctx); err != nil {
		return nil, err
	}
	// 3. refs.
	refs, err := p.resolveRefs(summary)
	if err != nil {
		return nil, err
	}
	if o.DryRun {
		for _, r := range refs {
			state := "to pull"
			if ok, _ := repo.HasObject(ObjectName{r.commit, ObjCommit}); ok && r.resolved {
				if !repo.isPartial(r.commit) {
					state = "present"
				}
			}
			name := r.ref
			if name == "" {
				name = r.commit.String()
			}
			c := "(from refs/heads)"
			if r.resolved {
				c = r.commit.String()
			}
			p.res.DryRun = append(p.res.DryRun, fmt.Sprintf("%s %s %s", name, c, state))
		}
		return p.res, nil
	}

	p.trustTrees = len(repo.partialCommits()) == 0
	txn, err := repo.Begin(ctx)
	if err != nil {
		return nil, err
	}
	p.txn = txn
	p.checkpointAt.Store(time.Now().UnixNano())
	stopProgress := p.progressLoop()
	err = p.run(refs, summary)
	stopProgress()
	if err != nil {
		// Keep what was verified: the next pull resumes from it. Refs
		// are not touched (none were recorded yet).
		p.txnMu.Lock()
		cerr := p.txn.Commit()
		p.txnMu.Unlock()
		if cerr != nil {
			return nil, errors.Join(err, fmt.Errorf("keeping the objects fetched so far: %w", cerr))
		}
		return nil, err
	}
	// Refs, then (mirror of everything) the summary.
	for _, r := range refs {
		if r.ref == "" {
			continue
		}
		rs := Refspec{Ref: r.ref}
		if !o.Mirror && o.Remote != nil {
			rs.Remote = o.Remote.Name
		}
		if err := p.txn.SetRef(rs, r.commit); err != nil {
			p.txn.Abort()
			return nil, err
		}
		p.res.Refs[rs.String()] = r.commit
	}
	if err := p.txn.Commit(); err != nil {
		return nil, err
	}
	if !o.CommitMetadataOnly {
		for _, c := range p.res.Commits {
			os.Remove(filepath.Join(repo.path, "state", c.String()+".commitpartial"))
		}
	}
	if o.Mirror && len(o.Refs) == 0 && sumBytes != nil {
		if err := atomicfile.WriteFile(filepath.Join(repo.path, summaryFileName), sumBytes, 0o644); err != nil {
			return nil, err
		}
		sigPath := filepath.Join(repo.path, summarySigFileName)
		if sigBytes != nil {
			err = atomicfile.WriteFile(sigPath, sigBytes, 0o644)
		} else if err = os.Remove(sigPath); errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		if err != nil {
			return nil, err
		}
	}
	p.res.FetchedMetadata, p.res.FetchedContent, p.res.Bytes = p.fetchedMeta.Load(), p.fetchedC.Load(), p.bytes.Load()
	return p.res, nil
}

func verifyKeys(a, b bool, ka, kb string) string {
	switch {
	case a && b:
		return ka + " and " + kb
	case a:
		return ka + "=true (the default)"
	}
	return kb
}

// FetchSummary fetches summary.sig and summary from src, verifying the
// signature when rm requires it (gpg-verify-summary or sign-verify-summary)
// and failing if it does and sv is nil. It returns nil, nil when the
// repository has no summary.
func FetchSummary(ctx context.Context, src store.Store, rm *Remote, sv SummaryVerifier) (*Summary, []byte, error) {
	require := false
	if rm != nil {
		gs, err := rm.GPGVerifySummary()
		if err != nil {
			return nil, nil, err
		}
		ss, err := rm.SignVerifySummary()
		if err != nil {
			return nil, nil, err
		}
		require = gs || ss
		if require && sv == nil {
			return nil, nil, fmt.Errorf("remote %q has gpg-verify-summary or sign-verify-summary: %w", rm.Name, ErrVerifierRequired)
		}
	}
	s, b, _, err := fetchSummary(ctx, &storeSource{ms: src, cs: src}, require, sv)
	return s, b, err
}

// maxSummarySize bounds summary and summary.sig.
const maxSummarySize = 10 << 20

func fetchSummary(ctx context.Context, src source, require bool, sv SummaryVerifier) (*Summary, []byte, []byte, error) {
	sig, err := src.file(ctx, summarySigFileName, maxSummarySize)
	if errors.Is(err, fs.ErrNotExist) {
		sig, err = nil, nil
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("fetching summary.sig: %w", err)
	}
	b, err := src.file(ctx, summaryFileName, maxSummarySize)
	if errors.Is(err, fs.ErrNotExist) {
		if require {
			return nil, nil, nil, errors.New("summary signature verification is required, but the remote has no summary file")
		}
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("fetching summary: %w", err)
	}
	if require {
		if sig == nil {
			return nil, nil, nil, fmt.Errorf("summary: %w (summary.sig is missing)", ErrNoSignature)
		}
		m, err := DecodeMetadata(sig)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("summary.sig: %w", err)
		}
		if err := sv.VerifySummary(ctx, b, m); err != nil {
			return nil, nil, nil, fmt.Errorf("summary: %w", err)
		}
	}
	s, err := DecodeSummary(b)
	if err != nil {
		return nil, nil, nil, err
	}
	return s, b, sig, nil
}

func (p *puller) resolveRefs(summary *Summary) ([]pullRef, error) {
	wanted := p.o.Refs
	if len(wanted) == 0 {
		switch {
		case p.o.Mirror:
			if summary == nil {
				return nil, errors.New("fetching all refs was requested in mirror mode, but the remote repository has no summary")
			}
			for _, r := range summary.Refs {
				wanted = append(wanted, r.Name)
			}
		case p.o.Remote != nil && len(p.o.Remote.Branches()) > 0:
			wanted = p.o.Remote.Branches()
		default:
			return nil, errors.New("no refs specified and the remote has no branches configured")
		}
	}
	var out []pullRef
	seen := map[string]bool{}
	for _, w := range wanted {
		if seen[w] {
			continue
		}
		seen[w] = true
		var r pullRef
		if IsValidChecksum(w) {
			c, _ := ParseChecksum(w)
			r = pullRef{commit: c, resolved: true}
		} else if ref, commit, ok := strings.Cut(w, "@"); ok {
			c, err := ParseChecksum(commit)
			if err != nil {
				return nil, fmt.Errorf("invalid %s: %w", w, err)
			}
			if err := ValidateRefName(ref); err != nil {
				return nil, err
			}
			r = pullRef{ref: ref, commit: c, resolved: true}
			if summary != nil {
				if sr, ok := summary.Lookup(ref); ok && sr.Checksum == c {
					r.size = int64(sr.Size)
				}
			}
		} else {
			if err := ValidateRefName(w); err != nil {
				return nil, err
			}
			r = pullRef{ref: w, byRef: true}
			if summary != nil {
				sr, ok := summary.Lookup(w)
				if !ok {
					return nil, fmt.Errorf("no such branch %q in the remote's summary: %w", w, ErrNotFound)
				}
				r.commit, r.size, r.resolved = sr.Checksum, int64(sr.Size), true
			}
		}
		out = append(out, r)
	}
	if !p.o.DryRun {
		for i := range out {
			if !out[i].resolved {
				c, err := p.src.resolve(p.ctx, out[i].ref)
				if err != nil {
					return nil, err
				}
				out[i].commit = c
			}
		}
	}
	return out, nil
}

// isPartial reports whether state/C.commitpartial exists.
func (r *Repo) isPartial(c Checksum) bool {
	_, err := os.Stat(filepath.Join(r.path, "state", c.String()+".commitpartial"))
	return err == nil
}

// pullWriters is how many objects are written at once: more concurrent
// file creations than CPUs only adds contention in the file system.
func pullWriters() int {
	if n, err := strconv.Atoi(os.Getenv("GOSTREE_PULL_WRITERS")); err == nil && n > 0 {
		return n
	}
	return max(4, runtime.GOMAXPROCS(0)+2)
}

// readTxn runs f, which only reads, with the current transaction.
func (p *puller) readTxn(f func(t *Txn) error) error {
	p.txnMu.RLock()
	defer p.txnMu.RUnlock()
	return f(p.txn)
}

// withTxn runs f, which stages one object, with the current transaction.
func (p *puller) withTxn(f func(t *Txn) error) error {
	p.txnMu.RLock()
	err := f(p.txn)
	p.txnMu.RUnlock()
	if err == nil && time.Since(p.lastCheckpoint()) > checkpointInterval {
		err = p.checkpoint()
	}
	return err
}

// checkpointInterval is how often a long pull commits the objects it has
// staged (without refs), so that a pull killed outright resumes from
// there. Short pulls commit once, at the end.
var checkpointInterval = 30 * time.Second

func (p *puller) lastCheckpoint() time.Time {
	return time.Unix(0, p.checkpointAt.Load())
}

// checkpoint commits the objects staged so far and starts a new
// transaction. The commits whose trees are incomplete are marked partial.
func (p *puller) checkpoint() error {
	p.txnMu.Lock()
	defer p.txnMu.Unlock()
	if time.Since(p.lastCheckpoint()) <= checkpointInterval {
		return nil // another worker just did it
	}
	defer p.checkpointAt.Store(time.Now().UnixNano())
	if err := p.txn.Commit(); err != nil {
		return fmt.Errorf("committing the objects fetched so far: %w", err)
	}
	t, err := p.repo.Begin(p.ctx)
	if err != nil {
		return err
	}
	p.txn = t
	return nil
}

// first reports whether n is seen for the first time in this pull.
func (p *puller) first(n ObjectName) bool {
	p.seenMu.Lock()
	defer p.seenMu.Unlock()
	if _, ok := p.seen[n]; ok {
		return false
	}
	p.seen[n] = struct{}{}
	return true
}

func (p *puller) has(n ObjectName) (bool, error) {
	var ok bool
	err := p.readTxn(func(t *Txn) error {
		var err error
		ok, err = t.Has(n)
		return err
	})
	return ok, err
}

func (p *puller) run(refs []pullRef, summary *Summary) error {
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	p.q = newWorkQueue(ctx, p, p.o.Jobs, cancel)
	// Commits first, one ref at a time (their order defines the
	// parents' walk); each schedules its tree on the queue.
	for _, r := range refs {
		if err := p.pullCommit(ctx, r, summary); err != nil {
			cancel()
			p.q.wait()
			return err
		}
	}
	return p.q.wait()
}

// pullCommit fetches and verifies a commit and schedules its tree, then
// its parents up to the depth.
func (p *puller) pullCommit(ctx context.Context, r pullRef, summary *Summary) error {
	c := r.commit
	depth := p.o.Depth
	for i := 0; ; i++ {
		if !p.first(ObjectName{c, ObjCommit}) {
			return nil
		}
		present, err := p.has(ObjectName{c, ObjCommit})
		if err != nil {
			return err
		}
		partial := p.repo.isPartial(c)
		var cm *Commit
		switch {
		case present && !partial && !p.o.CommitMetadataOnly && p.trustTrees:
			// Complete already (a re-pull): nothing to fetch.
			if cm, err = p.repo.LoadCommit(c); err != nil {
				return err
			}
			if i == 0 {
				if err := p.verifyStoredCommit(ctx, c, r); err != nil {
					return err
				}
			}
		case present:
			// Stored by an earlier pull that did not finish (or whose
			// tree may be incomplete): walk the tree, fetching only
			// what is missing.
			if cm, err = p.repo.LoadCommit(c); err != nil {
				return err
			}
			if i == 0 {
				if err := p.verifyStoredCommit(ctx, c, r); err != nil {
					return err
				}
			}
			if partial || !p.o.CommitMetadataOnly {
				p.res.Commits = append(p.res.Commits, c)
			}
			if !p.o.CommitMetadataOnly {
				p.q.add(task{kind: taskDir, tree: cm.RootTree, meta: cm.RootMeta, force: true})
			}
		default:
			usedDelta := false
			if i == 0 {
				if usedDelta, err = p.tryDelta(ctx, c, summary); err != nil {
					return err
				}
			}
			if !usedDelta {
				if cm, err = p.fetchCommit(ctx, c, r, i > 0); err != nil {
					if i > 0 && errors.Is(err, fs.ErrNotExist) {
						return nil // the history ends here
					}
					return err
				}
			} else if cm, err = p.loadStagedCommit(c); err != nil {
				return err
			}
			p.res.Commits = append(p.res.Commits, c)
			if !p.o.CommitMetadataOnly {
				p.q.add(task{kind: taskDir, tree: cm.RootTree, meta: cm.RootMeta, force: !usedDelta && !p.trustTrees})
			}
		}
		if depth >= 0 && i >= depth || !cm.HasParent() {
			return nil
		}
		c = cm.Parent
		r = pullRef{commit: c}
	}
}

func (p *puller) loadStagedCommit(c Checksum) (*Commit, error) {
	var b []byte
	err := p.readTxn(func(t *Txn) error {
		var err error
		b, err = t.readStaged(ObjectName{c, ObjCommit})
		return err
	})
	if err != nil {
		return nil, err
	}
	return DecodeCommit(b)
}

// verifyStoredCommit re-checks signatures and bindings of a commit that is
// already in the repository before a ref is pointed at it.
func (p *puller) verifyStoredCommit(ctx context.Context, c Checksum, r pullRef) error {
	if !p.requireGPG && !p.requireSign && !r.byRef {
		return nil
	}
	b, err := p.repo.readVerified(ObjectName{c, ObjCommit})
	if err != nil {
		return err
	}
	detached, err := p.repo.LoadCommitMeta(c)
	if err != nil {
		return err
	}
	cm, err := DecodeCommit(b)
	if err != nil {
		return err
	}
	return p.verifyCommit(ctx, c, b, cm, detached, r)
}

func (p *puller) verifyCommit(ctx context.Context, c Checksum, b []byte, cm *Commit, detached Metadata, r pullRef) error {
	if p.requireGPG || p.requireSign {
		if err := p.o.CommitVerifier.VerifyCommit(ctx, c, b, detached); err != nil {
			return fmt.Errorf("commit %s: %w", c, err)
		}
	}
	if r.byRef && r.ref != "" {
		if v, ok := cm.Metadata.Lookup("ostree.ref-binding"); ok {
			bound, _ := v.Value.([]any)
			var names []string
			found := false
			for _, x := range bound {
				s, _ := x.(string)
				names = append(names, s)
				found = found || s == r.ref
			}
			if v.Type.String() != "as" || !found {
				return fmt.Errorf("commit %s has no requested ref %q in ref binding metadata (%s)", c, r.ref, strings.Join(names, ", "))
			}
		}
	}
	return nil
}

// fetchCommit fetches .commitmeta then .commit, verifies both and stages
// them after marking the commit partial.
func (p *puller) fetchCommit(ctx context.Context, c Checksum, r pullRef, parent bool) (*Commit, error) {
	mn := ObjectName{c, ObjCommitMeta}
	metaBytes, err := p.src.meta(ctx, mn, MaxMetadataSize)
	if errors.Is(err, fs.ErrNotExist) {
		metaBytes, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", mn, err)
	}
	var detached Metadata
	if metaBytes != nil {
		p.bytes.Add(int64(len(metaBytes)))
		if detached, err = DecodeMetadata(metaBytes); err != nil {
			return nil, fmt.Errorf("detached metadata %s: %w", mn, err)
		}
	}
	n := ObjectName{c, ObjCommit}
	limit := int64(MaxMetadataSize)
	if r.size > 0 && r.size < limit {
		limit = r.size
	}
	b, err := p.src.meta(ctx, n, limit)
	if err != nil {
		if errors.Is(err, errTooBig) {
			return nil, fmt.Errorf("commit %s: %w", c, err)
		}
		return nil, fmt.Errorf("fetching %s: %w", n, err)
	}
	p.bytes.Add(int64(len(b)))
	if got := SumBytes(b); got != c {
		return nil, fmt.Errorf("corrupted commit object; checksum expected='%s' actual='%s': %w", c, got, ErrCorrupt)
	}
	cm, err := DecodeCommit(b)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", c, err)
	}
	if err := p.verifyCommit(ctx, c, b, cm, detached, r); err != nil {
		return nil, err
	}
	if err := p.repo.markCommitPartial(c, false); err != nil {
		return nil, err
	}
	// No fsync here: the marker is made durable by the syncfs with which
	// the transaction commits, before the commit object is published.
	err = p.withTxn(func(t *Txn) error {
		if metaBytes != nil {
			if err := t.WriteCommitMetaBytes(c, metaBytes); err != nil {
				return err
			}
		}
		_, err := t.WriteMetadata(ObjCommit, b, &c)
		return err
	})
	if err != nil {
		return nil, err
	}
	p.fetchedMeta.Add(1)
	return cm, nil
}

// tryDelta pulls commit c through a static delta when one is offered and
// allowed; it reports whether it did.
func (p *puller) tryDelta(ctx context.Context, c Checksum, summary *Summary) (bool, error) {
	if p.o.DisableStaticDeltas {
		return false, nil
	}
	if p.o.CommitMetadataOnly || p.src.local() || p.repo.mode == ModeArchive && !p.o.RequireStaticDeltas {
		if p.o.RequireStaticDeltas {
			return false, fmt.Errorf("static deltas required, but none can be used for commit %s (commit metadata only or local pull)", c)
		}
		return false, nil
	}
	deltas, err := p.deltaIndex(ctx, c, summary)
	if err != nil {
		return false, err
	}
	// Prefer a delta from a commit we have, then from scratch.
	var chosen string
	var digest Checksum
	names := make([]string, 0, len(deltas))
	for name := range deltas {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		from, to, err := ParseStaticDeltaName(name)
		if err != nil || to != c {
			continue
		}
		if from.IsZero() {
			if chosen == "" {
				chosen, digest = name, deltas[name]
			}
			continue
		}
		if ok, _ := p.repo.HasObject(ObjectName{from, ObjCommit}); ok && !p.repo.isPartial(from) {
			chosen, digest = name, deltas[name]
			break
		}
	}
	if chosen == "" {
		if p.o.RequireStaticDeltas {
			return false, fmt.Errorf("static deltas required, but none found for commit %s", c)
		}
		return false, nil
	}
	from, _, _ := ParseStaticDeltaName(chosen)
	fetch := func(ctx context.Context, path string) (io.ReadCloser, error) {
		rc, err := p.src.open(ctx, path)
		if err != nil {
			return nil, err
		}
		return &byteCounter{rc: rc, n: &p.bytes}, nil
	}
	d, err := FetchStaticDelta(ctx, fetch, from, c)
	if err != nil {
		return false, err
	}
	if got := SumBytes(d.Raw); got != digest {
		return false, fmt.Errorf("invalid checksum for static delta %s: expected %s, got %s: %w", chosen, digest, got, ErrCorrupt)
	}
	if got := SumBytes(d.Commit); got != c {
		return false, fmt.Errorf("static delta %s: corrupted commit object; checksum expected='%s' actual='%s': %w", chosen, c, got, ErrCorrupt)
	}
	cm, err := DecodeCommit(d.Commit)
	if err != nil {
		return false, fmt.Errorf("static delta %s: commit: %w", chosen, err)
	}
	var detached Metadata
	if d.CommitMeta != nil {
		if detached, err = DecodeMetadata(d.CommitMeta); err != nil {
			return false, fmt.Errorf("static delta %s: detached metadata: %w", chosen, err)
		}
	}
	if err := p.verifyCommit(ctx, c, d.Commit, cm, detached, pullRef{ref: "", commit: c}); err != nil {
		return false, err
	}
	if err := p.repo.markCommitPartial(c, false); err != nil {
		return false, err
	}
	err = p.withTxn(func(t *Txn) error {
		return t.ApplyStaticDeltaSuperblock(ctx, d, fetch, DeltaApplyOptions{Jobs: 2, Progress: func(dp DeltaProgress) {
			p.deltaParts.Store(int64(dp.PartsDone))
		}})
	})
	if err != nil {
		return false, err
	}
	p.res.DeltasUsed = append(p.res.DeltasUsed, chosen)
	return true, nil
}

type byteCounter struct {
	rc io.ReadCloser
	n  *atomic.Int64
}

func (b *byteCounter) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *byteCounter) Close() error { return b.rc.Close() }

// deltaIndex returns the deltas to c the remote offers: from
// delta-indexes/ when the summary says deltas are indexed, else from the
// summary's ostree.static-deltas.
func (p *puller) deltaIndex(ctx context.Context, c Checksum, summary *Summary) (map[string]Checksum, error) {
	if summary == nil {
		return nil, nil
	}
	if v, ok := summary.Metadata.Lookup(SummaryKeyIndexedDeltas); ok && v.Value == true {
		b, err := p.src.file(ctx, DeltaIndexPath(c), MaxMetadataSize)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("fetching %s: %w", DeltaIndexPath(c), err)
		}
		m, err := DecodeMetadata(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", DeltaIndexPath(c), err)
		}
		idx := &Summary{Metadata: m}
		return idx.StaticDeltas(), nil
	}
	return summary.StaticDeltas(), nil
}

// Task kinds of the tree walk.
const (
	taskDir = iota
	taskFile
)

type task struct {
	kind  int
	tree  Checksum // taskDir
	meta  Checksum // taskDir
	file  Checksum // taskFile
	force bool     // walk present dirtrees too (their subtree may be incomplete)
}

// process handles one task of the tree walk.
func (p *puller) process(ctx context.Context, t task) error {
	if t.kind == taskFile {
		return p.fetchContent(ctx, t.file)
	}
	if err := p.ensureMeta(ctx, ObjectName{t.meta, ObjDirMeta}); err != nil {
		return err
	}
	tn := ObjectName{t.tree, ObjDirTree}
	present, err := p.has(tn)
	if err != nil {
		return err
	}
	var dt *DirTree
	if present {
		if p.trustTrees && !t.force {
			return nil
		}
		if dt, err = p.loadTree(t.tree); err != nil {
			return err
		}
	} else {
		b, err := p.src.meta(ctx, tn, MaxMetadataSize)
		if err != nil {
			return fmt.Errorf("fetching %s: %w", tn, err)
		}
		p.bytes.Add(int64(len(b)))
		if got := SumBytes(b); got != t.tree {
			return fmt.Errorf("corrupted dirtree object; checksum expected='%s' actual='%s': %w", t.tree, got, ErrCorrupt)
		}
		if dt, err = DecodeDirTree(b); err != nil {
			return fmt.Errorf("dirtree %s: %w", t.tree, err)
		}
		if err := p.stageMeta(ObjDirTree, b, t.tree); err != nil {
			return err
		}
		p.fetchedMeta.Add(1)
	}
	for _, f := range dt.Files {
		if p.first(ObjectName{f.Checksum, ObjFile}) {
			p.q.add(task{kind: taskFile, file: f.Checksum})
		}
	}
	for _, d := range dt.Dirs {
		if p.first(ObjectName{d.Tree, ObjDirTree}) {
			p.q.add(task{kind: taskDir, tree: d.Tree, meta: d.Meta, force: t.force})
		} else if p.first(ObjectName{d.Meta, ObjDirMeta}) {
			if err := p.ensureMeta(ctx, ObjectName{d.Meta, ObjDirMeta}); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadTree reads a dirtree that is in the repository or staged.
func (p *puller) loadTree(c Checksum) (*DirTree, error) {
	var b []byte
	err := p.readTxn(func(t *Txn) error {
		var err error
		b, err = t.readStaged(ObjectName{c, ObjDirTree})
		return err
	})
	if err != nil {
		return nil, err
	}
	if got := SumBytes(b); got != c {
		return nil, fmt.Errorf("corrupted dirtree object in the local repository; checksum expected='%s' actual='%s': %w", c, got, ErrCorrupt)
	}
	return DecodeDirTree(b)
}

// ensureMeta fetches a dirmeta unless present.
func (p *puller) ensureMeta(ctx context.Context, n ObjectName) error {
	p.seenMu.Lock()
	p.seen[n] = struct{}{}
	p.seenMu.Unlock()
	ok, err := p.has(n)
	if err != nil || ok {
		return err
	}
	b, err := p.src.meta(ctx, n, MaxMetadataSize)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", n, err)
	}
	p.bytes.Add(int64(len(b)))
	if got := SumBytes(b); got != n.Checksum {
		return fmt.Errorf("corrupted dirmeta object; checksum expected='%s' actual='%s': %w", n.Checksum, got, ErrCorrupt)
	}
	if err := p.stageMeta(ObjDirMeta, b, n.Checksum); err != nil {
		return fmt.Errorf("dirmeta %s: %w", n.Checksum, err)
	}
	p.fetchedMeta.Add(1)
	return nil
}

// stageMeta verifies and stages a metadata object held in memory.
// The gate is taken inside withTxn, as content writers do (transaction
// lock first, then a gate slot): holding a slot across withTxn's
// checkpoint, which waits for every transaction user, deadlocked against
// content writers holding the transaction and waiting for a slot.
func (p *puller) stageMeta(typ ObjectType, b []byte, c Checksum) error {
	return p.withTxn(func(t *Txn) error {
		p.gate.enter()
		defer p.gate.leave()
		_, err := t.WriteMetadata(typ, b, &c)
		return err
	})
}

func (p *puller) fetchContent(ctx context.Context, c Checksum) error {
	n := ObjectName{c, ObjFile}
	ok, err := p.has(n)
	if err != nil || ok {
		return err
	}
	err = p.withTxn(func(t *Txn) error {
		nb, err := p.src.content(ctx, t, c, p.gate)
		p.bytes.Add(nb)
		return err
	})
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ErrCorrupt) {
			return ctx.Err()
		}
		return fmt.Errorf("content object %s: %w", c, err)
	}
	p.fetchedC.Add(1)
	return nil
}

func (p *puller) progress(done bool) PullProgress {
	el := time.Since(p.start)
	pp := PullProgress{
		FetchedMetadata: p.fetchedMeta.Load(), FetchedContent: p.fetchedC.Load(),
		Requested: p.requested.Load(), Bytes: p.bytes.Load(), Elapsed: el,
		DeltaParts: p.deltaParts.Load(), Done: done,
	}
	if s := el.Seconds(); s > 0 {
		pp.Rate = float64(pp.Bytes) / s
	}
	return pp
}

func (p *puller) progressLoop() func() {
	if p.o.Progress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				p.o.Progress(p.progress(true))
				return
			case <-t.C:
				p.o.Progress(p.progress(false))
			}
		}
	}()
	return func() { close(stop); <-done }
}

// workQueue runs tasks on a fixed set of workers; directories go before
// files so the walk discovers work early. wait returns the first error.
type workQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	dirs    []task
	files   []task
	pending int
	closed  bool
	err     error
	cancel  context.CancelFunc
	done    sync.WaitGroup
	p       *puller
	started bool
	ctx     context.Context
	jobs    int
}

func newWorkQueue(ctx context.Context, p *puller, jobs int, cancel context.CancelFunc) *workQueue {
	q := &workQueue{cancel: cancel, ctx: ctx, jobs: jobs, p: p}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *workQueue) add(t task) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.started {
		q.started = true
		for i := 0; i < q.jobs; i++ {
			q.done.Add(1)
			go q.worker()
		}
		go func() {
			<-q.ctx.Done()
			q.mu.Lock()
			q.cond.Broadcast()
			q.mu.Unlock()
		}()
	}
	q.pending++
	q.p.requested.Add(1)
	if t.kind == taskDir {
		q.dirs = append(q.dirs, t)
	} else {
		q.files = append(q.files, t)
	}
	q.cond.Signal()
}

func (q *workQueue) worker() {
	defer q.done.Done()
	for {
		q.mu.Lock()
		for len(q.dirs) == 0 && len(q.files) == 0 && !q.closed && q.ctx.Err() == nil {
			q.cond.Wait()
		}
		if q.closed || q.ctx.Err() != nil {
			q.mu.Unlock()
			return
		}
		var t task
		if n := len(q.dirs); n > 0 {
			t = q.dirs[n-1]
			q.dirs = q.dirs[:n-1]
		} else {
			t = q.files[0]
			q.files = q.files[1:]
		}
		q.mu.Unlock()
		err := q.p.process(q.ctx, t)
		q.mu.Lock()
		if err != nil && q.err == nil {
			q.err = err
			q.cancel()
		}
		q.pending--
		q.cond.Broadcast()
		q.mu.Unlock()
	}
}

// wait waits until every task is done or one failed.
func (q *workQueue) wait() error {
	q.mu.Lock()
	for q.started && q.pending > 0 && q.err == nil && q.ctx.Err() == nil {
		q.cond.Wait()
	}
	q.closed = true
	q.cond.Broadcast()
	err := q.err
	q.mu.Unlock()
	q.done.Wait()
	if err == nil {
		err = q.ctx.Err()
	}
	return err
}
