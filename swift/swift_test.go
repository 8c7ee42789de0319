package swift_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"

	"github.com/gostree/gostree/internal/osauth/osauthtest"
	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/store"
	"github.com/gostree/gostree/ostree/store/httpstore"
	"github.com/gostree/gostree/ostree/store/storetest"
	"github.com/gostree/gostree/swift"
)

type env struct {
	sc     *gophercloud.ServiceClient
	vars   map[string]string
	hc     *http.Client
	limits swift.Limits
}

func setup(t *testing.T) *env {
	t.Helper()
	vars := osauthtest.Setup(t)
	c := osauthtest.Client(t)
	sc := osauthtest.ObjectStore(t, c)
	l, err := swift.GetLimits(context.Background(), c.HTTP, sc.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return &env{sc: sc, vars: vars, hc: c.HTTP, limits: l}
}

// container makes a fresh container and deletes it (with its objects) at the end.
func (e *env) container(t *testing.T, prefix string) *swift.Store {
	t.Helper()
	ctx := context.Background()
	st, err := swift.New(e.sc, osauthtest.Name("gostree-test"), prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateContainer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		all, _ := swift.New(e.sc, st.Container(), "")
		var names []string
		all.List(ctx, "", func(oi swift.ObjectInfo) error { names = append(names, oi.Path); return nil })
		for _, n := range names {
			all.Remove(ctx, n)
		}
		containers.Delete(ctx, e.sc, st.Container())
	})
	return st
}

func (e *env) signer(t *testing.T, digest string) swift.Signer {
	t.Helper()
	key := e.vars["OS_SWIFT_TEMPURL_KEY"]
	if key == "" {
		t.Fatal("the openrc has no OS_SWIFT_TEMPURL_KEY")
	}
	return swift.Signer{AccountURL: e.sc.Endpoint, Key: key, Digest: digest}
}

// upload copies the files under dir into st.
func upload(t *testing.T, st swift.WriteStore, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, _ := f.Stat()
		return st.Put(context.Background(), filepath.ToSlash(rel), f, fi.Size())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConformanceToken(t *testing.T) {
	e := setup(t)
	storetest.Run(t, func(t *testing.T, dir string) store.Store {
		st := e.container(t, "repo/v1")
		upload(t, st, dir)
		return st
	})
}

func TestConformanceTempURL(t *testing.T) {
	e := setup(t)
	for _, digest := range []string{swift.DigestSHA256, swift.DigestSHA512} {
		t.Run(digest, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, dir string) store.Store {
				st := e.container(t, "")
				upload(t, st, dir)
				ts, err := swift.NewTempURLStore(e.signer(t, digest), st.Container(), "", time.Minute, e.hc)
				if err != nil {
					t.Fatal(err)
				}
				return ts
			})
		})
	}
}

func TestConformancePrefixTempURL(t *testing.T) {
	e := setup(t)
	storetest.Run(t, func(t *testing.T, dir string) store.Store {
		st := e.container(t, "os/repo")
		upload(t, st, dir)
		u, err := e.signer(t, swift.DigestSHA512).PrefixURL(st.Container(), st.Prefix(), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		hs, err := httpstore.New(u, httpstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return hs
	})
}

func TestConformancePublicHTTP(t *testing.T) {
	e := setup(t)
	storetest.Run(t, func(t *testing.T, dir string) store.Store {
		st := e.container(t, "")
		upload(t, st, dir)
		if err := st.SetPublic(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		hs, err := httpstore.New(st.URL(), httpstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return hs
	})
}

func TestLimits(t *testing.T) {
	e := setup(t)
	if e.limits.MaxFileSize <= 0 || e.limits.ContainerListingLimit <= 0 || e.limits.MaxObjectNameLength <= 0 {
		t.Fatalf("limits not read from /info: %+v", e.limits)
	}
	if strings.Join(e.limits.TempURLDigests, ",") != "sha256,sha512" || !e.limits.StaticWeb {
		t.Fatalf("/info: digests %v, staticweb %v; want sha256,sha512 and staticweb (scripts/openstack-up.sh)", e.limits.TempURLDigests, e.limits.StaticWeb)
	}
}

func TestPrivateContainerRefusesAnonymous(t *testing.T) {
	e := setup(t)
	st := e.container(t, "")
	if err := st.Put(context.Background(), "config", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	hs, err := httpstore.New(st.URL(), httpstore.Options{Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = hs.Open(context.Background(), "config")
	var se *store.Error
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous read of a private container: %v, want HTTP 401", err)
	}
}

func TestBadTempURLs(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	st := e.container(t, "")
	if err := st.Put(ctx, "config", strings.NewReader("[core]\n"), 7); err != nil {
		t.Fatal(err)
	}
	wrong := e.signer(t, swift.DigestSHA256)
	wrong.Key += "-wrong"
	ts, err := swift.NewTempURLStore(wrong, st.Container(), "", time.Minute, e.hc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.Open(ctx, "config")
	if err == nil || !strings.Contains(err.Error(), "TempURL refused") || errors.Is(err, fs.ErrNotExist) || store.IsRetryable(err) {
		t.Fatalf("wrong key: got %v, want a permanent 'TempURL refused' error", err)
	}
	if strings.Contains(err.Error(), wrong.Key) || strings.Contains(err.Error(), "temp_url_sig") {
		t.Fatalf("error reveals the key or the signature: %v", err)
	}
	// An expired TempURL.
	u, err := e.signer(t, swift.DigestSHA256).ObjectURL("GET", st.Container(), "config", time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := e.hc.Get(u); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("expired TempURL: %v %v, want 401", resp.Status, err)
	}
	// A prefix TempURL does not reach outside its prefix.
	pu, err := e.signer(t, swift.DigestSHA256).PrefixURL(st.Container(), "other/", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := httpstore.New(pu, httpstore.Options{Retries: -1})
	if _, err := hs.Stat(ctx, "../config"); err == nil {
		t.Fatal("prefix TempURL escaped its prefix")
	}
	// sha1 is never signed.
	if _, err := (swift.Signer{AccountURL: e.sc.Endpoint, Key: "k", Digest: "sha1"}).ObjectURL("GET", "c", "o", time.Now()); err == nil {
		t.Fatal("a sha1 TempURL was signed")
	}
}

// ---------------------------------------------------------------- push

func requireOstree(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ostree")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ostree is not installed; run `make deps`")
		}
		t.Skip("ostree is not installed")
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// makeRepo makes an archive repository with the real ostree: main has two
// commits (v1, v2 sharing most files), other one commit; summary updated.
func makeRepo(t *testing.T) (string, map[string]ostree.Checksum) {
	t.Helper()
	o := requireOstree(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	run(t, o, "init", "--mode=archive", "--repo="+repo)
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "usr/bin"), 0o755)
	os.MkdirAll(filepath.Join(tree, "etc/empty"), 0o755)
	for i := 0; i < 40; i++ {
		os.WriteFile(filepath.Join(tree, "usr/bin", "tool"+string(rune('a'+i%26))+strings.Repeat("x", i/26)), bytes.Repeat([]byte{byte(i)}, 100*i+1), 0o755)
	}
	os.WriteFile(filepath.Join(tree, "etc/os-release"), []byte("ID=gostree\nVERSION_ID=1\n"), 0o644)
	os.Symlink("../usr/bin/toola", filepath.Join(tree, "etc/link"))
	big := make([]byte, 2<<20) // incompressible, so its .filez stays above 1 MiB
	rnd := mathrand.New(mathrand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rnd.Uint32())
	}
	os.WriteFile(filepath.Join(tree, "usr/big"), big, 0o644)
	run(t, o, "commit", "--repo="+repo, "-b", "os/x86_64/stable", "--add-metadata-string=version=1.0", "--tree=dir="+tree)
	os.WriteFile(filepath.Join(tree, "etc/os-release"), []byte("ID=gostree\nVERSION_ID=2\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "usr/bin/new"), []byte("new in v2"), 0o755)
	run(t, o, "commit", "--repo="+repo, "-b", "os/x86_64/stable", "--add-metadata-string=version=2.0", "--tree=dir="+tree)
	run(t, o, "commit", "--repo="+repo, "-b", "other", "--tree=dir="+filepath.Join(tree, "etc"))
	// A static delta v1→v2, so the push has deltas/ to publish and the summary lists it.
	run(t, o, "static-delta", "generate", "--repo="+repo, "os/x86_64/stable")
	run(t, o, "summary", "-u", "--repo="+repo)
	r, err := ostree.Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := r.ListRefs("", false)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	return repo, refs
}

func openRepo(t *testing.T, path string) *ostree.Repo {
	t.Helper()
	r, err := ostree.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// recording wraps a WriteStore, records the paths put, and can cancel
// the push after a number of puts.
type recording struct {
	swift.WriteStore
	puts     []string
	cancelAt int
	cancel   context.CancelFunc
	mu       chan struct{}
}

func newRecording(ws swift.WriteStore) *recording {
	r := &recording{WriteStore: ws, mu: make(chan struct{}, 1)}
	return r
}

func (r *recording) Put(ctx context.Context, p string, rd io.ReadSeeker, size int64) error {
	r.mu <- struct{}{}
	r.puts = append(r.puts, p)
	n := len(r.puts)
	<-r.mu
	if r.cancel != nil && n == r.cancelAt {
		r.cancel()
	}
	return r.WriteStore.Put(ctx, p, rd, size)
}

// readBack checks every file of the local repository that a client reads
// (objects, refs/heads, summary) has the same bytes through s.
func readBack(t *testing.T, s store.Store, repo string) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(repo, p)
		rel = filepath.ToSlash(rel)
		if !strings.HasPrefix(rel, "objects/") && !strings.HasPrefix(rel, "deltas/") && !strings.HasPrefix(rel, "refs/heads/") && rel != "summary" {
			return nil
		}
		want, _ := os.ReadFile(p)
		got, err := storetest.ReadAll(ctx, s, rel)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs (%d vs %d bytes)", rel, len(got), len(want))
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPushReadBackEveryMode(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	repoPath, refs := makeRepo(t)
	repo := openRepo(t, repoPath)
	st := e.container(t, "exampleos")
	res, err := swift.Push(ctx, repo, st, swift.PushOptions{Depth: -1, Limits: &e.limits})
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploaded != res.Objects || !res.Summary || res.Regenerated || len(res.Refs) != len(refs) || res.DeltaFiles == 0 {
		t.Fatalf("push result %+v", res)
	}
	cfg, err := storetest.ReadAll(ctx, st, "config")
	if err != nil || !strings.Contains(string(cfg), "mode=archive-z2") {
		t.Fatalf("config: %q %v", cfg, err)
	}

	ts, err := swift.NewTempURLStore(e.signer(t, swift.DigestSHA256), st.Container(), st.Prefix(), time.Minute, e.hc)
	if err != nil {
		t.Fatal(err)
	}
	pu, err := e.signer(t, swift.DigestSHA512).PrefixURL(st.Container(), st.Prefix(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	prefixStore, _ := httpstore.New(pu, httpstore.Options{})
	if err := st.SetPublic(ctx, true); err != nil {
		t.Fatal(err)
	}
	public, _ := httpstore.New(st.URL(), httpstore.Options{})
	for name, s := range map[string]store.Store{"token": st, "tempurl": ts, "prefix-tempurl": prefixStore, "public-http": public} {
		t.Run(name, func(t *testing.T) {
			if n := readBack(t, s, repoPath); n < res.Objects {
				t.Fatalf("read %d files, pushed %d objects", n, res.Objects)
			}
		})
	}

	// A second push uploads nothing.
	again, err := swift.Push(ctx, repo, st, swift.PushOptions{Depth: -1, Limits: &e.limits})
	if err != nil {
		t.Fatal(err)
	}
	if again.Uploaded != 0 || again.DeltaFiles != 0 {
		t.Fatalf("second push uploaded %d objects, %d delta files; want none", again.Uploaded, again.DeltaFiles)
	}
}

func TestOstreePullFromPublicContainer(t *testing.T) {
	e := setup(t)
	o := requireOstree(t)
	ctx := context.Background()
	repoPath, refs := makeRepo(t)
	st := e.container(t, "")
	if _, err := swift.Push(ctx, openRepo(t, repoPath), st, swift.PushOptions{Limits: &e.limits}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetPublic(ctx, true); err != nil {
		t.Fatal(err)
	}
	// Stock ostree only: a prefix TempURL does not work with ostree 2022.7,
	// whose curl fetcher appends the object path after the URL's query
	// string (GET .../c/?temp_url_...&temp_url_prefix=summary.sig).
	client := filepath.Join(t.TempDir(), "client")
	run(t, o, "init", "--mode=bare-user", "--repo="+client)
	run(t, o, "remote", "add", "--repo="+client, "--no-gpg-verify", "swift", st.URL())
	out := run(t, o, "remote", "refs", "--repo="+client, "swift")
	for name := range refs {
		if !strings.Contains(out, "swift:"+name) {
			t.Fatalf("ostree remote refs (from the summary) lacks %s:\n%s", name, out)
		}
	}
	run(t, o, "pull", "--repo="+client, "swift", "os/x86_64/stable", "other")
	run(t, o, "fsck", "--repo="+client)
	for name, c := range refs {
		if got := strings.TrimSpace(run(t, o, "rev-parse", "--repo="+client, "swift:"+name)); got != c.String() {
			t.Fatalf("%s: pulled %s, want %s", name, got, c)
		}
	}
	co := filepath.Join(t.TempDir(), "co")
	run(t, o, "checkout", "--repo="+client, "-U", "swift:os/x86_64/stable", co)
	if b, err := os.ReadFile(filepath.Join(co, "usr/bin/new")); err != nil || string(b) != "new in v2" {
		t.Fatalf("checkout of the pulled commit: %q %v", b, err)
	}
}

func TestPushInterruptedResumes(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	repoPath, refs := makeRepo(t)
	repo := openRepo(t, repoPath)
	st := e.container(t, "")

	rec := newRecording(st)
	cctx, cancel := context.WithCancel(ctx)
	rec.cancel, rec.cancelAt = cancel, 10
	_, err := swift.Push(cctx, repo, rec, swift.PushOptions{Jobs: 2, Depth: -1})
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted push: %v, want context.Canceled", err)
	}
	for _, p := range []string{"summary", "summary.sig", "config"} {
		if _, err := st.Stat(ctx, p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("after an interrupted push %s exists (%v)", p, err)
		}
	}
	st.List(ctx, "refs/", func(oi swift.ObjectInfo) error {
		t.Fatalf("after an interrupted push ref %s exists", oi.Path)
		return nil
	})
	var partial int
	st.List(ctx, "objects/", func(oi swift.ObjectInfo) error { partial++; return nil })
	if partial == 0 {
		t.Fatal("the interrupted push uploaded nothing")
	}

	rec2 := newRecording(st)
	res, err := swift.Push(ctx, repo, rec2, swift.PushOptions{Depth: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploaded+partial != res.Objects || res.Uploaded == 0 {
		t.Fatalf("resumed push uploaded %d of %d objects after %d were there", res.Uploaded, res.Objects, partial)
	}
	// Order: every object before any ref, commits after other objects, the summary last.
	seenRef, seenCommit, seenDelta, seenSuper := false, false, false, false
	for i, p := range rec2.puts {
		switch {
		case strings.HasPrefix(p, "objects/"):
			if seenRef || seenDelta {
				t.Fatalf("object %s uploaded after a ref: %v", p, rec2.puts)
			}
			if strings.HasSuffix(p, ".commit") {
				seenCommit = true
			} else if seenCommit && !strings.HasSuffix(p, ".commitmeta") {
				t.Fatalf("object %s uploaded after a commit", p)
			}
		case strings.HasPrefix(p, "deltas/"):
			if seenRef {
				t.Fatalf("delta file %s uploaded after a ref", p)
			}
			seenDelta = true
			if strings.HasSuffix(p, "/superblock") {
				seenSuper = true
			} else if seenSuper {
				t.Fatalf("delta part %s uploaded after a superblock", p)
			}
		case strings.HasPrefix(p, "refs/"):
			seenRef = true
		case p == "summary":
			if i != len(rec2.puts)-1 {
				t.Fatalf("summary is not the last upload: %v", rec2.puts[i:])
			}
		}
	}
	if !seenDelta || !seenSuper {
		t.Fatalf("no static delta pushed: %v", rec2.puts)
	}
	if n := readBack(t, st, repoPath); n == 0 {
		t.Fatal("nothing read back")
	}
	for name, c := range refs {
		b, err := storetest.ReadAll(ctx, st, "refs/heads/"+name)
		if err != nil || strings.TrimSpace(string(b)) != c.String() {
			t.Fatalf("ref %s: %q %v", name, b, err)
		}
	}
}

func TestPushRefusesWhatItCannotServe(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	repoPath, _ := makeRepo(t)
	repo := openRepo(t, repoPath)
	st := e.container(t, "")
	// The cluster's limits (/info of the real Swift, lowered here: Swift
	// reads them from /etc/swift/swift.conf only) are checked for every
	// file before the first upload.
	small := e.limits
	small.MaxFileSize = 1 << 20 // usr/big is 2 MiB
	rec := newRecording(st)
	_, err := swift.Push(ctx, repo, rec, swift.PushOptions{Limits: &small})
	if err == nil || !strings.Contains(err.Error(), "max_file_size of 1048576") || !strings.Contains(err.Error(), ".filez is 20") || !strings.Contains(err.Error(), "nothing was uploaded") || len(rec.puts) != 0 {
		t.Fatalf("push of an object above max_file_size: %v, %d uploads", err, len(rec.puts))
	}
	short := e.limits
	short.MaxObjectNameLength = 60
	long, err := swift.New(e.sc, st.Container(), "a/long/prefix/of/the/repository")
	if err != nil {
		t.Fatal(err)
	}
	rec = newRecording(long)
	_, err = swift.Push(ctx, repo, rec, swift.PushOptions{Limits: &short})
	if err == nil || !strings.Contains(err.Error(), "max_object_name_length of 60") || len(rec.puts) != 0 {
		t.Fatalf("push of names above max_object_name_length: %v, %d uploads", err, len(rec.puts))
	}
	if _, err := swift.Push(ctx, repo, st, swift.PushOptions{Refs: []string{"no/such/ref"}}); err == nil || !strings.Contains(err.Error(), "no/such/ref") {
		t.Fatalf("push of a missing ref: %v", err)
	}
	// Pushing only "other" while the summary also lists os/x86_64/stable: refused
	// before the summary is uploaded.
	_, err = swift.Push(ctx, repo, st, swift.PushOptions{Refs: []string{"other"}})
	if err == nil || !strings.Contains(err.Error(), "os/x86_64/stable") {
		t.Fatalf("push of a subset of the summary's refs: %v", err)
	}
	if _, err := st.Stat(ctx, "summary"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("summary published although refused: %v", err)
	}
	// With NoSummary the ref is published and the summary left alone.
	res, err := swift.Push(ctx, repo, st, swift.PushOptions{Refs: []string{"other"}, NoSummary: true})
	if err != nil || res.Summary {
		t.Fatalf("push --no-summary: %+v, %v", res, err)
	}
	if _, err := st.Stat(ctx, "refs/heads/other"); err != nil {
		t.Fatalf("push --no-summary did not publish the ref: %v", err)
	}
	if _, err := st.Stat(ctx, "summary"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("push --no-summary published a summary: %v", err)
	}
	// A bare repository cannot be served.
	bare := filepath.Join(t.TempDir(), "bare")
	run(t, requireOstree(t), "init", "--mode=bare-user", "--repo="+bare)
	if _, err := swift.Push(ctx, openRepo(t, bare), st, swift.PushOptions{}); err == nil || !strings.Contains(err.Error(), "archive") {
		t.Fatalf("push of a bare-user repository: %v", err)
	}
}

func TestPrune(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	repoPath, _ := makeRepo(t)
	st := e.container(t, "p")
	res, err := swift.Push(ctx, openRepo(t, repoPath), st, swift.PushOptions{Depth: -1})
	if err != nil {
		t.Fatal(err)
	}
	junk := "objects/aa/" + strings.Repeat("b", 62) + ".filez"
	if err := st.Put(ctx, junk, strings.NewReader("junk"), 4); err != nil {
		t.Fatal(err)
	}
	pr, err := swift.Prune(ctx, st, swift.PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Deleted != 0 || pr.KeptYoung != 1 || pr.Reachable != res.Objects {
		t.Fatalf("prune with the default grace period: %+v (pushed %d objects)", pr, res.Objects)
	}
	pr, err = swift.Prune(ctx, st, swift.PruneOptions{KeepYoungerThan: -1})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Deleted != 1 {
		t.Fatalf("prune: %+v, want the one junk object deleted", pr)
	}
	if _, err := st.Stat(ctx, junk); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("junk still there: %v", err)
	}
	readBack(t, st, repoPath)

	// A corrupt dirtree stops the prune before anything is deleted.
	var tree string
	st.List(ctx, "objects/", func(oi swift.ObjectInfo) error {
		if strings.HasSuffix(oi.Path, ".dirtree") && tree == "" {
			tree = oi.Path
		}
		return nil
	})
	if err := st.Put(ctx, tree, strings.NewReader("garbage"), 7); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, junk, strings.NewReader("junk"), 4); err != nil {
		t.Fatal(err)
	}
	if _, err := swift.Prune(ctx, st, swift.PruneOptions{KeepYoungerThan: -1}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("prune over a corrupt dirtree: %v", err)
	}
	if _, err := st.Stat(ctx, junk); err != nil {
		t.Fatalf("prune deleted something although it failed: %v", err)
	}
}
