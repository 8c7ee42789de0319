package ostree

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gostree/gostree/internal/testutil/nginx"
	"github.com/gostree/gostree/ostree/store"
	"github.com/gostree/gostree/ostree/store/httpstore"
	"github.com/gostree/gostree/ostree/store/local"
)

// makePullTree writes a tree with what a pull must carry: nested
// directories, an empty directory, symlinks, modes, an empty file and a
// file big enough to span many reads.
func makePullTree(t testing.TB, dir string) {
	t.Helper()
	makeTreeA(t, dir)
	big := make([]byte, 3<<20+5)
	rand.Read(big)
	for p, b := range map[string][]byte{
		"usr/lib/big.bin":        big,
		"usr/share/doc/a.txt":    []byte(strings.Repeat("text line\n", 5000)),
		"usr/share/doc/b/c.txt":  []byte("c\n"),
		"usr/bin/tool":           []byte("#!/bin/sh\n"),
		"usr/share/zero":         nil,
		"usr/share/doc/héllo.md": []byte("unicode\n"),
	} {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o755)
	os.Symlink("../lib/big.bin", filepath.Join(dir, "usr/bin/abs"))
	os.MkdirAll(filepath.Join(dir, "var/empty"), 0o700)
}

// ostreeSourceRepo makes an archive repository with the ostree CLI: ref
// main with two commits (A, then B changing a file), ref other with one
// commit, and a summary unless noSummary.
func ostreeSourceRepo(t *testing.T, noSummary bool) (dir string, a, b Checksum) {
	t.Helper()
	requireOstree(t)
	work := t.TempDir()
	tree := filepath.Join(work, "tree")
	makePullTree(t, tree)
	dir = filepath.Join(work, "served", "repo")
	os.MkdirAll(filepath.Dir(dir), 0o755)
	runOstree(t, "init", "--repo="+dir, "--mode=archive")
	commit := func(ref, subject string) Checksum {
		out := runOstree(t, "--repo="+dir, "commit", "-b", ref, "-s", subject, "--owner-uid=0", "--owner-gid=0",
			"--timestamp=2024-01-01 00:00:00 +0000", tree)
		return mustChecksum(t, strings.TrimSpace(out))
	}
	a = commit("main", "A")
	os.WriteFile(filepath.Join(tree, "hello.txt"), []byte("hello v2\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "usr/new.txt"), []byte("new\n"), 0o644)
	b = commit("main", "B")
	os.WriteFile(filepath.Join(tree, "other.txt"), []byte("other\n"), 0o644)
	commit("other", "O")
	if !noSummary {
		runOstree(t, "--repo="+dir, "summary", "-u")
	}
	return dir, a, b
}

func serve(t *testing.T, dir string) *nginx.Server {
	t.Helper()
	return nginx.Start(t, filepath.Dir(dir), nginx.Options{AccessLog: true})
}

func httpStore(t testing.TB, url string) *httpstore.Store {
	t.Helper()
	s, err := httpstore.New(url, httpstore.Options{RetryBackoff: 1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newRepo(t *testing.T, mode RepoMode) *Repo {
	t.Helper()
	r, err := Init(filepath.Join(t.TempDir(), "dst"), mode, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.SetFsync(false)
	return r
}

func noGPG(name string) *Remote {
	rm := NewRemote(name, "http://unused/")
	rm.Set("gpg-verify", "false")
	return rm
}

// treeDigest describes a checked-out tree: type, mode, owner, content
// hash or link target of every entry.
func treeDigest(t *testing.T, dir string, owners bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := fmt.Sprintf("mode=%o", st.Mode)
		if owners {
			e += fmt.Sprintf(" owner=%d:%d", st.Uid, st.Gid)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			e += " -> " + target
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e += fmt.Sprintf(" sha=%x", sha256.Sum256(b))
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkSameCheckout checks out commit c with the ostree CLI from both
// repositories and compares the trees.
func checkSameCheckout(t *testing.T, srcRepo, dstRepo string, c Checksum) {
	t.Helper()
	work := t.TempDir()
	a, b := filepath.Join(work, "src"), filepath.Join(work, "dst")
	runOstree(t, "--repo="+srcRepo, "checkout", "-U", c.String(), a)
	runOstree(t, "--repo="+dstRepo, "checkout", "-U", c.String(), b)
	da, db := treeDigest(t, a, false), treeDigest(t, b, false)
	if len(da) != len(db) {
		t.Errorf("checkouts differ: %d vs %d entries", len(da), len(db))
	}
	for p, e := range da {
		if db[p] != e {
			t.Errorf("%s: source %q, pulled %q", p, e, db[p])
		}
	}
}

func fsckBoth(t *testing.T, r *Repo) {
	t.Helper()
	runOstree(t, "--repo="+r.path, "fsck")
	res, err := r.Fsck(context.Background(), FsckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("gostree fsck: %v", res.Err())
	}
}

func pullModes(t *testing.T) []RepoMode {
	modes := []RepoMode{ModeArchive, ModeBareUser}
	if os.Geteuid() == 0 {
		modes = append(modes, ModeBare)
	}
	return modes
}

// requests returns the paths requested from nginx, without the leading
// repository directory.
func requests(t *testing.T, s *nginx.Server) []string {
	t.Helper()
	var out []string
	for _, l := range s.Requests(t) {
		f := strings.Fields(l)
		if len(f) >= 3 {
			out = append(out, strings.TrimPrefix(f[1], "/repo/")+" "+f[2])
			if !strings.HasPrefix(f[1], "/repo/") {
				out[len(out)-1] = strings.TrimPrefix(f[1], "/") + " " + f[2]
			}
		}
	}
	return out
}

// TestPullFromOstree: gostree pulls an ostree-made archive repository
// served by nginx into every mode; ostree fsck and gostree fsck pass and
// the checkout is identical to the source's.
func TestPullFromOstree(t *testing.T) {
	dir, a, b := ostreeSourceRepo(t, false)
	srv := serve(t, dir)
	ctx := context.Background()
	for _, mode := range pullModes(t) {
		t.Run(mode.String(), func(t *testing.T) {
			r := newRepo(t, mode)
			res, err := Pull(ctx, r, httpStore(t, srv.URL+"repo/"), PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := r.ReadRef(Refspec{Remote: "origin", Ref: "main"}); got != b {
				t.Fatalf("origin:main = %s, want %s", got, b)
			}
			if res.FetchedContent == 0 || res.FetchedMetadata == 0 {
				t.Fatalf("result: %+v", res)
			}
			if ok, _ := r.HasObject(ObjectName{a, ObjCommit}); ok {
				t.Fatal("parent commit pulled without --depth")
			}
			if r.isPartial(b) {
				t.Fatal("commit left partial")
			}
			fsckBoth(t, r)
			checkSameCheckout(t, dir, r.path, b)

			// A second pull fetches nothing but the summary, config and commitmeta.
			before := len(srv.Requests(t))
			if _, err := Pull(ctx, r, httpStore(t, srv.URL+"repo/"), PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}}); err != nil {
				t.Fatal(err)
			}
			waitRequests(t, srv, before+3)
			if reqs := requests(t, srv)[before:]; len(reqs) != 3 {
				t.Fatalf("re-pull made requests %q, want summary.sig, summary, config", reqs)
			}
		})
	}
}

func waitRequests(t *testing.T, s *nginx.Server, n int) {
	for i := 0; i < 200 && len(s.Requests(t)) < n; i++ {
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPullSequence: the requests follow ostree's order (traces T1, T4).
func TestPullSequence(t *testing.T) {
	for _, noSummary := range []bool{false, true} {
		t.Run(fmt.Sprintf("noSummary=%v", noSummary), func(t *testing.T) {
			dir, a, b := ostreeSourceRepo(t, noSummary)
			srv := serve(t, dir)
			r := newRepo(t, ModeBareUser)
			_, err := Pull(context.Background(), r, httpStore(t, srv.URL+"repo/"), PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}, Depth: 1, Jobs: 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []Checksum{a, b} {
				if ok, _ := r.HasObject(ObjectName{c, ObjCommit}); !ok {
					t.Fatalf("commit %s missing after --depth=1", c)
				}
			}
			fsckBoth(t, r)
			checkSameCheckout(t, dir, r.path, a)
			reqs := requests(t, srv)
			want := []string{"summary.sig 404", "summary 200", "config 200", DeltaIndexPath(b) + " 404"}
			if noSummary {
				want = []string{"summary.sig 404", "summary 404", "config 200", "refs/heads/main 200"}
			}
			bc := LoosePath(ObjectName{b, ObjCommitMeta}, ModeArchive)
			want = append(want, bc+" 404", strings.TrimSuffix(bc, "meta")+" 200")
			if len(reqs) < len(want) || strings.Join(reqs[:len(want)], "\n") != strings.Join(want, "\n") {
				t.Fatalf("requests:\n%s\nwant first:\n%s", strings.Join(reqs, "\n"), strings.Join(want, "\n"))
			}
			for _, q := range reqs[len(want):] {
				if !strings.HasSuffix(q, " 200") && !strings.Contains(q, ".commitmeta 404") {
					t.Fatalf("unexpected request %q", q)
				}
				if strings.HasSuffix(strings.Fields(q)[0], ".file") {
					t.Fatalf("content requested as .file: %q", q)
				}
			}
		})
	}
}

// TestPullMirror: --mirror pulls every ref of the summary into
// refs/heads, with the summary, into an archive repository that ostree
// can serve in turn.
func TestPullMirror(t *testing.T) {
	dir, _, b := ostreeSourceRepo(t, false)
	srv := serve(t, dir)
	r := newRepo(t, ModeArchive)
	res, err := Pull(context.Background(), r, httpStore(t, srv.URL+"repo/"), PullOptions{Remote: noGPG("origin"), Mirror: true})
	if err != nil {
		t.Fatal(err)
	}
	refs, _ := r.ListRefs("", false)
	if len(refs) != 2 || refs["main"] != b {
		t.Fatalf("refs after mirror: %v (result %v)", refs, res.Refs)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "summary"))
	if got, _ := os.ReadFile(filepath.Join(r.path, "summary")); string(got) != string(want) {
		t.Fatal("summary not copied by the mirror pull")
	}
	fsckBoth(t, r)
	// The archive objects are stored as served (no recompression).
	n := ObjectName{mustChecksumOfFile(t, r, "hello.txt", b), ObjFile}
	sb, _ := os.ReadFile(filepath.Join(dir, LoosePath(n, ModeArchive)))
	db, _ := os.ReadFile(filepath.Join(r.path, LoosePath(n, ModeArchive)))
	if string(sb) != string(db) || len(sb) == 0 {
		t.Fatal("mirrored .filez differs from the source's")
	}
	// ostree pulls from the mirror.
	o := filepath.Join(t.TempDir(), "o")
	runOstree(t, "init", "--repo="+o, "--mode=archive")
	runOstree(t, "--repo="+o, "pull-local", r.path, "main", "other")
	runOstree(t, "--repo="+o, "fsck")
}

func mustChecksumOfFile(t *testing.T, r *Repo, name string, c Checksum) Checksum {
	t.Helper()
	cm, err := r.LoadCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	dt, err := r.LoadDirTree(cm.RootTree)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range dt.Files {
		if f.Name == name {
			return f.Checksum
		}
	}
	t.Fatalf("%s not in the root of %s", name, c)
	return Checksum{}
}

// TestPullOptions: REF@COMMIT, a bare checksum, --commit-metadata-only,
// --dry-run, branches from the remote, and errors for unknown refs.
func TestPullOptions(t *testing.T) {
	dir, a, b := ostreeSourceRepo(t, false)
	srv := serve(t, dir)
	src := httpStore(t, srv.URL+"repo/")
	ctx := context.Background()

	r := newRepo(t, ModeBareUser)
	if _, err := Pull(ctx, r, src, PullOptions{Remote: noGPG("origin"), Refs: []string{"main@" + a.String()}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.ReadRef(Refspec{Remote: "origin", Ref: "main"}); got != a {
		t.Fatalf("main@A: ref = %s", got)
	}
	if _, err := Pull(ctx, r, src, PullOptions{Remote: noGPG("origin"), Refs: []string{b.String()}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.ReadRef(Refspec{Remote: "origin", Ref: "main"}); got != a {
		t.Fatal("pulling a checksum moved a ref")
	}
	fsckBoth(t, r)
	checkSameCheckout(t, dir, r.path, b)

	r = newRepo(t, ModeBareUser)
	if _, err := Pull(ctx, r, src, PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}, CommitMetadataOnly: true}); err != nil {
		t.Fatal(err)
	}
	cm, err := r.LoadCommit(b)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := r.HasObject(ObjectName{cm.RootTree, ObjDirTree}); ok || !r.isPartial(b) {
		t.Fatal("--commit-metadata-only fetched the tree or did not mark the commit partial")
	}
	fsckBoth(t, r)
	// Completing it later.
	if _, err := Pull(ctx, r, src, PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}}); err != nil {
		t.Fatal(err)
	}
	if r.isPartial(b) {
		t.Fatal("commit still partial after a full pull")
	}
	fsckBoth(t, r)

	r = newRepo(t, ModeBareUser)
	res, err := Pull(ctx, r, src, PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DryRun) != 1 || !strings.Contains(res.DryRun[0], b.String()) {
		t.Fatalf("dry run: %q", res.DryRun)
	}
	if ok, _ := r.HasObject(ObjectName{b, ObjCommit}); ok {
		t.Fatal("dry run wrote the commit")
	}

	rm := noGPG("origin")
	rm.Set("branches", "other;")
	if _, err := Pull(ctx, r, src, PullOptions{Remote: rm}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadRef(Refspec{Remote: "origin", Ref: "other"}); err != nil {
		t.Fatal(err)
	}
	_, err = Pull(ctx, r, src, PullOptions{Remote: noGPG("origin"), Refs: []string{"nosuch"}})
	if err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("unknown ref: %v", err)
	}
}

// TestPullVerificationRequired: a remote with gpg-verify (the default) or
// sign-verify and no verifier fails; a verifier that rejects the commit
// leaves no ref.
func TestPullVerificationRequired(t *testing.T) {
	dir, _, _ := ostreeSourceRepo(t, false)
	srv := serve(t, dir)
	src := httpStore(t, srv.URL+"repo/")
	ctx := context.Background()
	r := newRepo(t, ModeBareUser)
	for _, rm := range []*Remote{NewRemote("origin", srv.URL), func() *Remote {
		rm := noGPG("origin")
		rm.Set("sign-verify", "ed25519")
		return rm
	}(), func() *Remote {
		rm := noGPG("origin")
		rm.Set("gpg-verify-summary", "true")
		return rm
	}()} {
		_, err := Pull(ctx, r, src, PullOptions{Remote: rm, Refs: []string{"main"}})
		if !errors.Is(err, ErrVerifierRequired) {
			t.Fatalf("remote %v: got %v, want ErrVerifierRequired", rm.keys, err)
		}
	}
	rm := NewRemote("origin", srv.URL)
	_, err := Pull(ctx, r, src, PullOptions{Remote: rm, Refs: []string{"main"}, CommitVerifier: rejectAll{}})
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("rejecting verifier: %v", err)
	}
	if refs, _ := r.ListRefs("", true); len(refs) != 0 {
		t.Fatalf("refs after a failed verification: %v", refs)
	}
	_, err = Pull(ctx, r, src, PullOptions{Remote: rm, Refs: []string{"main"}, CommitVerifier: acceptAll{}})
	if err != nil {
		t.Fatal(err)
	}
}

type rejectAll struct{}

func (rejectAll) VerifyCommit(ctx context.Context, c Checksum, b []byte, d Metadata) error {
	return fmt.Errorf("test verifier: %w", ErrBadSignature)
}

type acceptAll struct{}

func (acceptAll) VerifyCommit(ctx context.Context, c Checksum, b []byte, d Metadata) error {
	if SumBytes(b) != c {
		return errors.New("commit bytes do not match")
	}
	return nil
}

// TestOstreePullsFromGostree: ostree pulls a gostree-made archive
// repository (with a gostree summary) served by nginx.
func TestOstreePullsFromGostree(t *testing.T) {
	requireOstree(t)
	work := t.TempDir()
	tree := filepath.Join(work, "tree")
	makePullTree(t, tree)
	served := filepath.Join(work, "served", "repo")
	os.MkdirAll(filepath.Dir(served), 0o755)
	g, err := Init(served, ModeArchive, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := commitDir(t, g, tree, CommitOptions{Subject: "g"}, "main")
	if _, err := g.RegenerateSummary(context.Background(), SummaryOptions{}); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, served)
	for _, mode := range []string{"archive", "bare-user"} {
		o := filepath.Join(work, "o-"+mode)
		runOstree(t, "init", "--repo="+o, "--mode="+mode)
		runOstree(t, "--repo="+o, "remote", "add", "--no-gpg-verify", "origin", srv.URL+"repo")
		runOstree(t, "--repo="+o, "pull", "origin", "main")
		runOstree(t, "--repo="+o, "fsck")
		if got := strings.TrimSpace(runOstree(t, "--repo="+o, "rev-parse", "origin:main")); got != c.String() {
			t.Fatalf("ostree pulled %s, want %s", got, c)
		}
		checkSameCheckout(t, served, o, c)
	}
}

// TestPullLocalModes: pull-local between every pair of modes, both ways
// (gostree from ostree-made repositories, ostree from gostree-made ones),
// trusted and untrusted.
func TestPullLocalModes(t *testing.T) {
	requireOstree(t)
	modes := []RepoMode{ModeArchive, ModeBareUser, ModeBareUserOnly}
	if os.Geteuid() == 0 {
		modes = append(modes, ModeBare)
	}
	work := t.TempDir()
	tree := filepath.Join(work, "tree")
	makePullTree(t, tree)
	ctx := context.Background()
	for _, sm := range modes {
		// Source made by ostree.
		src := filepath.Join(work, "src-"+sm.String())
		runOstree(t, "init", "--repo="+src, "--mode="+sm.String())
		out := runOstree(t, "--repo="+src, "commit", "-b", "main", "-s", "x", "--owner-uid=0", "--owner-gid=0", tree)
		c := mustChecksum(t, strings.TrimSpace(out))
		srcRepo, err := Open(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, dm := range modes {
			if dm == ModeBareUserOnly && sm != ModeBareUserOnly {
				continue // ostree refuses too: setuid/ownership cannot be kept
			}
			for _, untrusted := range []bool{false, true} {
				name := fmt.Sprintf("%s-to-%s-untrusted=%v", sm, dm, untrusted)
				t.Run(name, func(t *testing.T) {
					r := newRepo(t, dm)
					if _, err := PullLocal(ctx, r, srcRepo, PullOptions{Untrusted: untrusted}); err != nil {
						t.Fatal(err)
					}
					if got, _ := r.ReadRef(Refspec{Ref: "main"}); got != c {
						t.Fatalf("main = %s, want %s", got, c)
					}
					fsckBoth(t, r)
					checkSameCheckout(t, src, r.path, c)
					// And ostree pulls back from gostree's repository.
					if dm != ModeBareUserOnly {
						o := filepath.Join(t.TempDir(), "o")
						runOstree(t, "init", "--repo="+o, "--mode="+sm.String())
						runOstree(t, "--repo="+o, "pull-local", r.path, "main")
						runOstree(t, "--repo="+o, "fsck")
					}
				})
			}
		}
	}
}

// TestPullLocalRemoteRefs: --remote writes refs/remotes/NAME.
func TestPullLocalRemoteRefs(t *testing.T) {
	src, _, b := makeHistoryRepo(t, ModeArchive)
	r := newRepo(t, ModeArchive)
	if _, err := PullLocal(context.Background(), r, src, PullOptions{Remote: &Remote{Name: "up"}, Refs: []string{"main"}, Depth: -1}); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.ReadRef(Refspec{Remote: "up", Ref: "main"}); got != b {
		t.Fatalf("up:main = %s", got)
	}
	res, err := r.Fsck(context.Background(), FsckOptions{All: true})
	if err != nil || !res.OK() || res.Commits != 2 {
		t.Fatalf("fsck: %v %v commits=%d", err, res.Err(), res.Commits)
	}
}

// memStore serves files from a map (for unit tests and fuzzing).
type memStore map[string][]byte

func (m memStore) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	b, ok := m[p]
	if !ok {
		return nil, store.NotFound("open", p)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m memStore) Stat(ctx context.Context, p string) (store.Info, error) {
	b, ok := m[p]
	if !ok {
		return store.Info{}, store.NotFound("stat", p)
	}
	return store.Info{Size: int64(len(b))}, nil
}

// localStoreOf returns a store over a repository directory.
func localStoreOf(dir string) store.Store { return local.New(dir) }

func sortedKeys(m map[string]Checksum) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestPullContentURL: with contenturl, .filez objects come from it and
// everything else from url (here a copy without any .filez).
func TestPullContentURL(t *testing.T) {
	dir, _, b := ostreeSourceRepo(t, false)
	metaOnly := filepath.Join(filepath.Dir(dir), "meta")
	copyTree(t, dir, metaOnly)
	filepath.WalkDir(filepath.Join(metaOnly, "objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".filez") {
			os.Remove(p)
		}
		return nil
	})
	srv := serve(t, dir)
	rm := noGPG("origin")
	rm.Set("url", srv.URL+"meta")
	rm.Set("contenturl", srv.URL+"repo")
	meta, err := RemoteStore(rm, rm.URL(), httpstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	content, err := RemoteStore(rm, rm.ContentURL(), httpstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := newRepo(t, ModeBareUser)
	if _, err := Pull(context.Background(), r, meta, PullOptions{Remote: rm, Refs: []string{"main"}, ContentStore: content}); err != nil {
		t.Fatal(err)
	}
	fsckBoth(t, r)
	checkSameCheckout(t, dir, r.path, b)
	for _, q := range requests(t, srv) {
		fromMeta := strings.HasPrefix(q, "meta/") // requests() strips "repo/"
		if fromMeta == strings.Contains(q, ".filez") {
			t.Errorf("request %q went to the wrong URL", q)
		}
	}
}
