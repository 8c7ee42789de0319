package swift_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

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
	_, err = st.Open(ctx, "config")
	if err == nil || !store.IsRetryable(err) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Swift down: %v, want a retryable 'connection refused'", err)
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
