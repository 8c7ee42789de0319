package httpstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gostree/gostree/internal/testutil/nginx"
	"github.com/gostree/gostree/ostree/store"
	"github.com/gostree/gostree/ostree/store/storetest"
)

// fileHandler serves the regular files under dir (with Range support).
func fileHandler(dir string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/")))
		f, err := os.Open(p)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", st.ModTime(), f)
	})
}

// fastOptions retries at once; its low-speed time is long enough that a
// loaded machine does not look like a stalled server (TestFaultsRecovered
// shortens it for the stall case).
func fastOptions() Options {
	return Options{RetryBackoff: time.Millisecond, LowSpeedTime: 5 * time.Second}
}

func TestConformanceHTTPTest(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dir string) store.Store {
		srv := httptest.NewServer(fileHandler(dir))
		t.Cleanup(srv.Close)
		s, err := New(srv.URL+"/", fastOptions())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConformanceNginx(t *testing.T) {
	nginx.Require(t)
	storetest.Run(t, func(t *testing.T, dir string) store.Store {
		srv := nginx.Start(t, dir, nginx.Options{})
		s, err := New(srv.URL, fastOptions())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConformanceNginxTLS(t *testing.T) {
	nginx.Require(t)
	storetest.Run(t, func(t *testing.T, dir string) store.Store {
		srv := nginx.Start(t, dir, nginx.Options{TLS: true})
		o := fastOptions()
		o.TLSCAPath = srv.CACert
		s, err := New(srv.TLSURL, o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestTLS: HTTP/2 over TLS with the remote's CA; an unknown CA fails at
// once (not retried); tls-permissive accepts it; client certificates.
func TestTLS(t *testing.T) {
	nginx.Require(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config"), []byte("x"), 0o644)
	srv := nginx.Start(t, dir, nginx.Options{TLS: true})
	ctx := context.Background()

	var protos []string
	var mu sync.Mutex
	o := fastOptions()
	o.TLSCAPath = srv.CACert
	o.OnRequest = func(i RequestInfo) { mu.Lock(); protos = append(protos, i.Proto); mu.Unlock() }
	s, err := New(srv.TLSURL, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if b, err := storetest.ReadAll(ctx, s, "config"); err != nil || string(b) != "x" {
			t.Fatalf("read over TLS: %q %v", b, err)
		}
	}
	if len(protos) != 3 || protos[0] != "HTTP/2.0" {
		t.Fatalf("protocols: %v, want HTTP/2.0", protos)
	}

	var tries atomic.Int32
	o = fastOptions()
	o.OnRequest = func(RequestInfo) { tries.Add(1) }
	s, _ = New(srv.TLSURL, o)
	_, err = storetest.ReadAll(ctx, s, "config")
	if err == nil || store.IsRetryable(err) || tries.Load() != 1 {
		t.Fatalf("unknown CA: err=%v retryable=%v requests=%d, want a permanent error after 1 request", err, store.IsRetryable(err), tries.Load())
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unknown CA: error does not mention the certificate: %v", err)
	}

	o = fastOptions()
	o.TLSPermissive = true
	s, _ = New(srv.TLSURL, o)
	if _, err := storetest.ReadAll(ctx, s, "config"); err != nil {
		t.Fatalf("tls-permissive: %v", err)
	}

	csrv := nginx.Start(t, dir, nginx.Options{TLS: true, ClientCert: true})
	o = fastOptions()
	o.TLSCAPath = csrv.CACert
	o.Retries = -1
	s, _ = New(csrv.TLSURL, o)
	if _, err := storetest.ReadAll(ctx, s, "config"); err == nil {
		t.Fatal("no client certificate: read succeeded")
	}
	o.TLSClientCertPath, o.TLSClientKeyPath = csrv.ClientCert, csrv.ClientKey
	s, _ = New(csrv.TLSURL, o)
	if b, err := storetest.ReadAll(ctx, s, "config"); err != nil || string(b) != "x" {
		t.Fatalf("with client certificate: %q %v", b, err)
	}
	if _, err := New(csrv.TLSURL, Options{TLSCAPath: filepath.Join(dir, "config")}); err == nil {
		t.Fatal("a CA file without certificates was accepted")
	}
}

// forwardProxy is an HTTP proxy for plain-HTTP requests that sends every
// request to target, whatever host it names.
func forwardProxy(t *testing.T, target string) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		resp, err := http.Get(strings.TrimSuffix(target, "/") + r.URL.Path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestProxy(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config"), []byte("via proxy"), 0o644)
	origin := httptest.NewServer(fileHandler(dir))
	defer origin.Close()
	proxy, hits := forwardProxy(t, origin.URL)
	ctx := context.Background()

	// The remote's proxy key.
	o := fastOptions()
	o.Proxy = proxy.URL
	s, err := New("http://repo.invalid/", o)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := storetest.ReadAll(ctx, s, "config"); err != nil || string(b) != "via proxy" || hits.Load() != 1 {
		t.Fatalf("proxy key: %q %v (proxy requests %d)", b, err, hits.Load())
	}

	// The environment, read when the store is made.
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	s, _ = New("http://repo.invalid/", fastOptions())
	if b, err := storetest.ReadAll(ctx, s, "config"); err != nil || string(b) != "via proxy" || hits.Load() != 2 {
		t.Fatalf("HTTP_PROXY: %q %v (proxy requests %d)", b, err, hits.Load())
	}
	t.Setenv("NO_PROXY", "repo.invalid")
	t.Setenv("no_proxy", "repo.invalid")
	s, _ = New("http://repo.invalid/", fastOptions())
	if _, err := storetest.ReadAll(ctx, s, "config"); err == nil || hits.Load() != 2 {
		t.Fatalf("NO_PROXY: err=%v, proxy requests %d: the request must go direct (and fail: no such host)", err, hits.Load())
	}
}

// faultServer serves dir and injects faults chosen per request by fault.
type faultServer struct {
	dir   string
	fault func(n int, r *http.Request) string
	mu    sync.Mutex
	log   []string
	n     int
}

func (f *faultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	n := f.n
	f.n++
	f.log = append(f.log, r.Method+" "+r.URL.Path+" "+r.Header.Get("Range"))
	f.mu.Unlock()
	p := filepath.Join(f.dir, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/")))
	data, err := os.ReadFile(p)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	switch f.fault(n, r) {
	case "500", "503", "408", "429":
		code := map[string]int{"500": 500, "503": 503, "408": 408, "429": 429}[f.fault(n, r)]
		w.WriteHeader(code)
		return
	case "400":
		w.WriteHeader(400)
		return
	case "reset", "truncate", "stall":
		mode := f.fault(n, r)
		hj := w.(http.Hijacker)
		conn, bw, err := hj.Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nETag: \"v1\"\r\n\r\n", len(data))
		bw.Write(data[:len(data)/2])
		bw.Flush()
		switch mode {
		case "reset":
			conn.(*net.TCPConn).SetLinger(0)
		case "stall":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
		return
	}
	w.Header().Set("ETag", `"v1"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

func newFault(t *testing.T, lowSpeed time.Duration, fault func(n int, r *http.Request) string) (*faultServer, []byte, *Store) {
	dir := t.TempDir()
	data := make([]byte, 1<<20)
	rand.Read(data)
	os.WriteFile(filepath.Join(dir, "obj"), data, 0o644)
	fs := &faultServer{dir: dir, fault: fault}
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	o := fastOptions()
	o.LowSpeedTime = lowSpeed
	s, err := New(srv.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	return fs, data, s
}

func TestFaultsRecovered(t *testing.T) {
	for _, fault := range []string{"500", "503", "408", "429", "reset", "truncate", "stall"} {
		t.Run(fault, func(t *testing.T) {
			lowSpeed := 5 * time.Second
			if fault == "stall" {
				lowSpeed = 300 * time.Millisecond
			}
			fs, data, s := newFault(t, lowSpeed, func(n int, r *http.Request) string {
				if n < 2 {
					return fault
				}
				return ""
			})
			got, err := storetest.ReadAll(context.Background(), s, "obj")
			if err != nil {
				t.Fatalf("read: %v (requests %q)", err, fs.log)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("content differs after recovery (requests %q)", fs.log)
			}
			if len(fs.log) != 3 {
				t.Fatalf("requests: %q, want 3", fs.log)
			}
			if fault == "reset" || fault == "truncate" || fault == "stall" {
				// Resumed where the transfer broke off (a reset may lose
				// bytes in flight, so at most at the half sent).
				for _, l := range fs.log[1:] {
					var off int
					if _, err := fmt.Sscanf(l, "GET /obj bytes=%d-", &off); err != nil || off <= 0 || off > len(data)/2 {
						t.Fatalf("requests %q, want Range resumes from (0, %d]", fs.log, len(data)/2)
					}
				}
			}
		})
	}
}

func TestFaultsPermanent(t *testing.T) {
	ctx := context.Background()
	fs, _, s := newFault(t, 5*time.Second, func(int, *http.Request) string { return "400" })
	_, err := storetest.ReadAll(ctx, s, "obj")
	var se *store.Error
	if !errors.As(err, &se) || se.Status != 400 || se.Retryable || len(fs.log) != 1 {
		t.Fatalf("400: err=%v, requests %d: want one request and a permanent error", err, len(fs.log))
	}
	fs, _, s = newFault(t, 5*time.Second, func(int, *http.Request) string { return "503" })
	_, err = storetest.ReadAll(ctx, s, "obj")
	if !errors.As(err, &se) || se.Status != 503 || !se.Retryable || len(fs.log) != 6 {
		t.Fatalf("503 forever: err=%v, requests %d: want 1+5 requests then the error", err, len(fs.log))
	}
	if !strings.Contains(err.Error(), "obj") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("error does not name the file and status: %v", err)
	}
	fs, _, s = newFault(t, 5*time.Second, func(int, *http.Request) string { return "reset" })
	_, err = storetest.ReadAll(ctx, s, "obj")
	if err == nil || len(fs.log) != 6 {
		t.Fatalf("reset forever: err=%v, requests %d", err, len(fs.log))
	}
	if _, err := s.Open(ctx, "missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"ftp://x/", "http://", "::"} {
		if _, err := New(u, Options{}); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}
