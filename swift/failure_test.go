package swift_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/gostree/gostree/internal/osauth/osauthtest"
	"github.com/gostree/gostree/internal/retry"
	"github.com/gostree/gostree/ostree/store"
	"github.com/gostree/gostree/ostree/store/httpstore"
	"github.com/gostree/gostree/swift"
)

// flaky forwards to Swift but answers 503 to the first failPuts PUTs of
// objects.
type flaky struct {
	upstream string
	mu       sync.Mutex
	failPuts int
	failed   int
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	fail := r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/objects/") && f.failed < f.failPuts
	if fail {
		f.failed++
	}
	f.mu.Unlock()
	if fail {
		io.Copy(io.Discard, r.Body)
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, f.upstream+r.URL.RequestURI(), r.Body)
	req.Header = r.Header.Clone()
	req.ContentLength = r.ContentLength
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// via returns a copy of the service client talking to base instead.
func via(sc *gophercloud.ServiceClient, base string) *gophercloud.ServiceClient {
	c := *sc
	i := strings.Index(sc.Endpoint, "/v1/")
	c.Endpoint = base + sc.Endpoint[i:]
	if c.ResourceBase != "" {
		c.ResourceBase = base + sc.ResourceBase[strings.Index(sc.ResourceBase, "/v1/"):]
	}
	return &c
}

func TestPushRetries5xx(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	repoPath, _ := makeRepo(t)
	st := e.container(t, "")
	i := strings.Index(e.sc.Endpoint, "/v1/")
	f := &flaky{upstream: e.sc.Endpoint[:i], failPuts: 4}
	srv := httptest.NewServer(f)
	defer srv.Close()
	viaFlaky, err := swift.New(via(e.sc, srv.URL), st.Container(), "")
	if err != nil {
		t.Fatal(err)
	}
	// A single Put answers a clear, retryable error.
	err = viaFlaky.Put(ctx, "objects/00/"+strings.Repeat("0", 62)+".dirmeta", strings.NewReader("x"), 1)
	var se *store.Error
	if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable || !store.IsRetryable(err) {
		t.Fatalf("503: %v, want a retryable store error with status 503", err)
	}
	// Push retries (Retries: 3 per object) and completes.
	res, err := swift.Push(ctx, openRepo(t, repoPath), viaFlaky, swift.PushOptions{Jobs: 1, Depth: -1})
	if err != nil {
		t.Fatal(err)
	}
	if f.failed != 4 || res.Uploaded != res.Objects {
		t.Fatalf("failed %d PUTs, uploaded %d of %d", f.failed, res.Uploaded, res.Objects)
	}
	readBack(t, st, repoPath)

	// Failing more often than the retries allow: the push stops, nothing after the objects.
	st2 := e.container(t, "")
	f2 := &flaky{upstream: e.sc.Endpoint[:i], failPuts: 1000}
	srv2 := httptest.NewServer(f2)
	defer srv2.Close()
	down, _ := swift.New(via(e.sc, srv2.URL), st2.Container(), "")
	_, err = swift.Push(ctx, openRepo(t, repoPath), down, swift.PushOptions{Jobs: 1, Retries: 2})
	if err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("push against a failing Swift: %v", err)
	}
	if f2.failed != 3 {
		t.Fatalf("%d attempts for the first object, want 3 (1 + 2 retries)", f2.failed)
	}
	if _, err := st2.Stat(ctx, "summary"); err == nil {
		t.Fatal("summary published by a failed push")
	}
}

func TestSwiftDown(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close() // nothing listens there any more
	st, err := swift.New(via(e.sc, dead), "c", "")
	if err != nil {
		t.Fatal(err)
	}
	st.Retry = fast
	_, err = st.Open(ctx, "config")
	if err == nil || !store.IsRetryable(err) || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), dead) ||
		!strings.Contains(err.Error(), "Swift unavailable") || !strings.Contains(err.Error(), "gave up after 4 attempts") || strings.Count(err.Error(), "gave up") != 1 {
		t.Fatalf("Swift down: %v, want a retryable 'connection refused' naming %s after 4 attempts", err, dead)
	}
	if _, err := swift.GetLimits(ctx, nil, dead+"/v1/AUTH_x"); err == nil {
		t.Fatal("GetLimits of a Swift that is down succeeded")
	}
}

func TestExpiredPrefixTempURL(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	st := e.container(t, "")
	if err := st.Put(ctx, "config", strings.NewReader("[core]\n"), 7); err != nil {
		t.Fatal(err)
	}
	u, err := e.signer(t, swift.DigestSHA256).PrefixURL(st.Container(), "", time.Now().Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := httpstore.New(u, httpstore.Options{Retries: -1})
	_, err = hs.Stat(ctx, "config")
	var se *store.Error
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("expired prefix TempURL: %v, want HTTP 401", err)
	}
}

var fast = retry.Policy{Retries: 3, Base: 10 * time.Millisecond}

// TestStoreRetries: through a proxy answering 503, resetting connections or
// cutting bodies mid-way, every read of Store and TempURLStore succeeds
// after retries (cut transfers resumed with Range), as do List, Remove and
// CreateContainer; permanent errors are not retried.
func TestStoreRetries(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	st := e.container(t, "repo")
	big := make([]byte, 1<<20+17)
	rng := mathrand.NewChaCha8([32]byte{1})
	rng.Read(big)
	if err := st.Put(ctx, "objects/aa/big.filez", bytes.NewReader(big), int64(len(big))); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := st.Put(ctx, fmt.Sprintf("refs/heads/r%d", i), strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	i := strings.Index(e.sc.Endpoint, "/v1/")
	p := osauthtest.NewFaultProxy(t, e.sc.Endpoint[:i])
	ps, err := swift.New(via(e.sc, p.URL), st.Container(), "repo")
	if err != nil {
		t.Fatal(err)
	}
	ps.Retry = fast
	signer := e.signer(t, swift.DigestSHA256)
	signer.AccountURL = p.URL + e.sc.Endpoint[i:]
	ts, err := swift.NewTempURLStore(signer, st.Container(), "repo", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts.Retry = fast

	for name, s := range map[string]store.Store{"token": ps, "tempurl": ts} {
		for _, f := range []osauthtest.Fault{osauthtest.Answer503, osauthtest.Reset, osauthtest.CutBody} {
			p.Fail(2, f, nil)
			rc, err := s.Open(ctx, "objects/aa/big.filez")
			if err != nil {
				t.Fatalf("%s: open, fault %d twice: %v", name, f, err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, big) || p.Failed() != 2 {
				t.Fatalf("%s: read, fault %d twice: %d bytes (want %d), %v, %d failed", name, f, len(got), len(big), err, p.Failed())
			}
			if f == osauthtest.CutBody {
				continue // HEAD has no body to cut
			}
			p.Fail(2, f, nil)
			if info, err := s.Stat(ctx, "refs/heads/r1"); err != nil || info.Size != 1 || p.Failed() != 2 {
				t.Fatalf("%s: stat, fault %d twice: %+v, %v", name, f, info, err)
			}
		}
		// A cut transfer that cannot be resumed within the retries fails clearly.
		p.Fail(100, osauthtest.CutBody, nil)
		rc, err := s.Open(ctx, "objects/aa/big.filez")
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if err == nil || !store.IsRetryable(err) {
			t.Fatalf("%s: always cut: %v, want a retryable error", name, err)
		}
		// Missing objects are not retried.
		p.Fail(0, osauthtest.Answer503, nil)
		n := len(p.Requests())
		if _, err := s.Open(ctx, "objects/aa/missing.filez"); !errors.Is(err, fs.ErrNotExist) || len(p.Requests()) != n+1 {
			t.Fatalf("%s: missing object: %v after %d requests", name, err, len(p.Requests())-n)
		}
	}

	p.Fail(2, osauthtest.Reset, nil)
	var names []string
	if err := ps.List(ctx, "refs/", func(oi swift.ObjectInfo) error { names = append(names, oi.Path); return nil }); err != nil || len(names) != 5 {
		t.Fatalf("list, reset twice: %v %v", names, err)
	}
	p.Fail(1, osauthtest.ForwardThenReset, func(r *http.Request) bool { return r.Method == http.MethodDelete })
	if err := ps.Remove(ctx, "refs/heads/r0"); err != nil || p.Failed() != 1 {
		t.Fatalf("remove whose answer was lost: %v", err)
	}
	if _, err := st.Stat(ctx, "refs/heads/r0"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("removed object: %v", err)
	}
	p.Fail(2, osauthtest.Answer503, nil)
	if err := ps.CreateContainer(ctx); err != nil {
		t.Fatalf("create container, 503 twice: %v", err)
	}

	// Swift answering 503 for good: a clear error after the retries.
	p.Fail(1000, osauthtest.Answer503, nil)
	_, err = ps.Stat(ctx, "refs/heads/r1")
	if err == nil || !store.IsRetryable(err) || !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "Swift unavailable") ||
		!strings.Contains(err.Error(), p.URL) || !strings.Contains(err.Error(), "gave up after 4 attempts") || strings.Count(err.Error(), "gave up") != 1 || p.Failed() != 4 {
		t.Fatalf("Swift answering 503: %v (%d requests)", err, p.Failed())
	}
	_, err = ts.Stat(ctx, "refs/heads/r1")
	if err == nil || !store.IsRetryable(err) || !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Fatalf("Swift answering 503 to TempURLs: %v", err)
	}
}
