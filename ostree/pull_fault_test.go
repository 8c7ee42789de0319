package ostree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gostree/gostree/ostree/store/httpstore"
)

// faultyRepoServer serves a repository directory over HTTP from the test
// process and injects faults chosen per request by fault(path, n), n
// being how many times that path was requested before.
type faultyRepoServer struct {
	dir   string
	fault func(path string, n int) string
	mu    sync.Mutex
	count map[string]int
	log   []string // "PATH STATUS" of every request
}

func (f *faultyRepoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	f.mu.Lock()
	n := f.count[p]
	f.count[p]++
	fault := f.fault
	f.mu.Unlock()
	logf := func(status string) {
		f.mu.Lock()
		f.log = append(f.log, p+" "+status)
		f.mu.Unlock()
	}
	data, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(p)))
	if err != nil {
		logf("404")
		http.NotFound(w, r)
		return
	}
	mode := fault(p, n)
	logf(mode)
	switch mode {
	case "500", "503", "408", "400":
		var code int
		fmt.Sscan(mode, &code)
		w.WriteHeader(code)
		return
	case "html":
		w.Write([]byte("<html><body>lots of html here</body></html>\n"))
		return
	case "reset", "truncate", "stall":
		conn, bw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(data))
		bw.Write(data[:len(data)/2])
		bw.Flush()
		switch mode {
		case "reset":
			conn.(*net.TCPConn).SetLinger(0)
		case "stall":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

func (f *faultyRepoServer) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func (f *faultyRepoServer) setFault(fault func(string, int) string) {
	f.mu.Lock()
	f.fault = fault
	f.mu.Unlock()
}

func (f *faultyRepoServer) reset() {
	f.mu.Lock()
	f.log = nil
	f.count = map[string]int{}
	f.mu.Unlock()
}

// gostreeServedRepo makes an archive repository with gostree (no ostree
// needed): ref main → commit of makePullTree, with a summary.
func gostreeServedRepo(t *testing.T) (*Repo, Checksum) {
	t.Helper()
	tree := filepath.Join(t.TempDir(), "tree")
	makePullTree(t, tree)
	r, err := Init(filepath.Join(t.TempDir(), "served"), ModeArchive, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.SetFsync(false)
	c := commitDir(t, r, tree, CommitOptions{Subject: "served"}, "main")
	if _, err := r.RegenerateSummary(context.Background(), SummaryOptions{}); err != nil {
		t.Fatal(err)
	}
	return r, c
}

func startFaulty(t *testing.T, dir string, fault func(string, int) string) (*faultyRepoServer, *httpstore.Store) {
	t.Helper()
	fs := &faultyRepoServer{dir: dir, fault: fault, count: map[string]int{}}
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	s, err := httpstore.New(srv.URL, httpstore.Options{RetryBackoff: time.Millisecond, LowSpeedTime: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return fs, s
}

func pathHash(p string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(p))
	return h.Sum32()
}

// checkPulled verifies the destination against the served repository.
func checkPulled(t *testing.T, r, served *Repo, c Checksum) {
	t.Helper()
	if got, err := r.ReadRef(Refspec{Remote: "origin", Ref: "main"}); err != nil || got != c {
		t.Fatalf("origin:main = %s, %v; want %s", got, err, c)
	}
	res, err := r.Fsck(context.Background(), FsckOptions{})
	if err != nil || !res.OK() {
		t.Fatalf("fsck: %v %v", err, res.Err())
	}
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	if err := served.Checkout(context.Background(), c, a, CheckoutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Checkout(context.Background(), c, b, CheckoutOptions{}); err != nil {
		t.Fatal(err)
	}
	da, db := treeDigest(t, a, false), treeDigest(t, b, false)
	if fmt.Sprint(da) != fmt.Sprint(db) {
		t.Fatalf("checkouts differ:\n%v\n%v", da, db)
	}
}

// TestPullFaultsRecovered: every file's first request fails (connection
// reset mid-body, 500, 503, 408, a stall longer than the low-speed time,
// a truncated body); the pull completes after retries, resuming broken
// transfers with Range requests, and the result is complete and valid.
func TestPullFaultsRecovered(t *testing.T) {
	served, c := gostreeServedRepo(t)
	faults := []string{"reset", "500", "503", "408", "stall", "truncate", ""}
	fs, s := startFaulty(t, served.path, func(p string, n int) string {
		if n > 0 {
			return ""
		}
		return faults[pathHash(p)%uint32(len(faults))]
	})
	for _, mode := range []RepoMode{ModeArchive, ModeBareUser} {
		t.Run(mode.String(), func(t *testing.T) {
			fs.reset()
			r := newRepo(t, mode)
			if _, err := Pull(context.Background(), r, s, PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}}); err != nil {
				t.Fatalf("pull: %v", err)
			}
			checkPulled(t, r, served, c)
			kinds := map[string]int{}
			for _, l := range fs.requests() {
				kinds[l[strings.LastIndexByte(l, ' ')+1:]]++
			}
			for _, f := range faults[:len(faults)-1] {
				if kinds[f] == 0 {
					t.Errorf("fault %q was never injected (%v)", f, kinds)
				}
			}
		})
	}
}

// TestPullResume: a pull that fails on one object (permanently) or is
// cancelled keeps what it verified, writes no ref, leaves a valid
// repository, and the next pull fetches only what is missing.
func TestPullResume(t *testing.T) {
	served, c := gostreeServedRepo(t)
	ctx := context.Background()
	victimSum := mustChecksumOfFile(t, served, "hello.txt", c)
	victim := LoosePath(ObjectName{victimSum, ObjFile}, ModeArchive)
	var mu sync.Mutex
	broken := true
	fs, s := startFaulty(t, served.path, func(p string, n int) string {
		mu.Lock()
		defer mu.Unlock()
		if broken && p == victim {
			return "400"
		}
		return ""
	})
	r := newRepo(t, ModeBareUser)
	_, err := Pull(ctx, r, s, PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}, Jobs: 4})
	if err == nil || !strings.Contains(err.Error(), victimSum.String()) || !strings.Contains(err.Error(), "400") {
		t.Fatalf("pull with a broken object: %v (want an error naming %s and the status)", err, victimSum)
	}
	if refs, _ := r.ListRefs("", true); len(refs) != 0 {
		t.Fatalf("refs after a failed pull: %v", refs)
	}
	if !r.isPartial(c) {
		t.Fatal("commit not marked partial after a failed pull")
	}
	if res, err := r.Fsck(ctx, FsckOptions{}); err != nil || !res.OK() {
		t.Fatalf("fsck after a failed pull: %v %v", err, res.Err())
	}
	mu.Lock()
	broken = false
	mu.Unlock()
	checkOnlyMissing(t, r, fs, s, c, served)

	// Cancelled mid-way: the context is cancelled when the third content
	// object is requested (whose response then stalls).
	r = newRepo(t, ModeArchive)
	fs.reset()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	filez := 0
	fs.setFault(func(p string, n int) string {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasSuffix(p, ".filez") {
			if filez++; filez == 3 {
				cancel()
				return "stall"
			}
		}
		return ""
	})
	_, err = Pull(cctx, r, s, PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}, Jobs: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pull: %v", err)
	}
	if refs, _ := r.ListRefs("", true); len(refs) != 0 {
		t.Fatalf("refs after a cancelled pull: %v", refs)
	}
	fs.setFault(func(string, int) string { return "" })
	checkOnlyMissing(t, r, fs, s, c, served)
}

// presentObjects lists the objects stored in a repository.
func presentObjects(t *testing.T, r *Repo) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	filepath.WalkDir(filepath.Join(r.path, "objects"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(r.path, p)
			out[strings.TrimSuffix(rel, ".file")] = true
		}
		return nil
	})
	return out
}

// checkOnlyMissing runs a second pull and checks that every object it
// requests (but detached metadata, always refreshed) was missing from the
// repository.
func checkOnlyMissing(t *testing.T, r *Repo, fs *faultyRepoServer, s *httpstore.Store, c Checksum, served *Repo) {
	t.Helper()
	before := presentObjects(t, r)
	fs.reset()
	if _, err := Pull(context.Background(), r, s, PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}}); err != nil {
		t.Fatalf("second pull: %v", err)
	}
	objects := 0
	for _, l := range fs.requests() {
		p := strings.Fields(l)[0]
		if !strings.HasPrefix(p, "objects/") || strings.HasSuffix(p, ".commitmeta") {
			continue
		}
		objects++
		if before[strings.TrimSuffix(strings.TrimSuffix(p, ".filez"), ".file")] {
			t.Errorf("the second pull fetched %s again", p)
		}
	}
	if objects == 0 {
		t.Fatal("the second pull fetched no object: the first one cannot have been incomplete")
	}
	checkPulled(t, r, served, c)
	if r.isPartial(c) {
		t.Fatal("commit still partial")
	}
}

// TestPullHTMLRef: a ref file that is HTML (no summary) fails naming the
// ref; nothing is written.
func TestPullHTMLRef(t *testing.T) {
	served, _ := gostreeServedRepo(t)
	os.Remove(filepath.Join(served.path, "summary"))
	_, s := startFaulty(t, served.path, func(p string, n int) string {
		if p == "refs/heads/main" {
			return "html"
		}
		return ""
	})
	r := newRepo(t, ModeArchive)
	_, err := Pull(context.Background(), r, s, PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}})
	if err == nil || !strings.Contains(err.Error(), "ref main") || !strings.Contains(err.Error(), "invalid rev") {
		t.Fatalf("HTML ref: %v", err)
	}
	if refs, _ := r.ListRefs("", true); len(refs) != 0 {
		t.Fatalf("refs: %v", refs)
	}
}

// TestPullCheckpoints: a pull commits its objects now and then (so
// that a killed pull resumes from there); the result is the same, and a
// repository with objects of a partial commit fscks clean.
func TestPullCheckpoints(t *testing.T) {
	served, c := gostreeServedRepo(t)
	old := checkpointInterval
	checkpointInterval = time.Nanosecond // after every object
	defer func() { checkpointInterval = old }()
	fs, s := startFaulty(t, served.path, func(p string, n int) string {
		if strings.HasSuffix(p, ".filez") && pathHash(p)%4 == 0 {
			return "400"
		}
		return ""
	})
	r := newRepo(t, ModeBareUser)
	if _, err := Pull(context.Background(), r, s, PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}, Jobs: 2}); err == nil {
		t.Fatal("pull with broken objects succeeded")
	}
	if res, err := r.Fsck(context.Background(), FsckOptions{All: true}); err != nil || len(res.Errors) != 0 && !res.Errors[0].Missing {
		t.Fatalf("fsck: %v %v", err, res.Err())
	}
	fs.setFault(func(string, int) string { return "" })
	checkOnlyMissing(t, r, fs, s, c, served)
}

// TestPullCheckpointsUnderContention: checkpoints while every write slot
// is contended (one slot, many fetches in flight) must not deadlock
// (metadata writers once held a slot while waiting for the checkpoint,
// which waited for content writers waiting for that slot).
func TestPullCheckpointsUnderContention(t *testing.T) {
	served, _ := gostreeServedRepo(t)
	old := checkpointInterval
	checkpointInterval = time.Nanosecond
	defer func() { checkpointInterval = old }()
	t.Setenv("GOSTREE_PULL_WRITERS", "1")
	_, s := startFaulty(t, served.path, func(string, int) string { return "" })
	for i := 0; i < 5; i++ {
		r := newRepo(t, ModeBareUser)
		done := make(chan error, 1)
		go func() {
			_, err := Pull(context.Background(), r, s, PullOptions{Remote: noGPG("origin"), Refs: []string{"main"}, Jobs: 32})
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("round %d: the pull hangs (deadlock between checkpoints and write slots)", i)
		}
	}
}
