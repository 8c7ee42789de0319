package osauthtest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Fault is what a FaultProxy does to a request it fails.
type Fault int

const (
	// Answer503 answers 503 Service Unavailable without forwarding.
	Answer503 Fault = iota
	// Reset closes the connection (TCP RST) without forwarding.
	Reset
	// ForwardThenReset forwards the request, so the service acts on it,
	// then closes the client's connection instead of answering: the
	// client cannot know whether its request took effect.
	ForwardThenReset
	// CutBody forwards the request and passes on the response's headers
	// and the first half of its body, then closes the connection.
	CutBody
)

// FaultProxy is a reverse proxy on 127.0.0.1 in front of a real service
// that fails the first Fail requests Match accepts (all requests when
// Match is nil) with Fault, and forwards every other request unchanged.
type FaultProxy struct {
	URL string // http://127.0.0.1:PORT, to use instead of the upstream's scheme://host:port

	upstream string
	mu       sync.Mutex
	fault    Fault
	fail     int
	match    func(*http.Request) bool
	failed   int
	requests []string // "METHOD PATH" of every request, failed or not
}

// NewFaultProxy starts a proxy for upstream (scheme://host:port), closed
// when the test ends.
func NewFaultProxy(t testing.TB, upstream string) *FaultProxy {
	t.Helper()
	p := &FaultProxy{upstream: strings.TrimRight(upstream, "/")}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Fail makes the proxy fail the next n requests that match (nil: any)
// with f.
func (p *FaultProxy) Fail(n int, f Fault, match func(*http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail, p.fault, p.match, p.failed = n, f, match, 0
}

// Failed returns how many requests were failed since the last Fail.
func (p *FaultProxy) Failed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// Requests returns "METHOD PATH" of every request received so far.
func (p *FaultProxy) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.requests = append(p.requests, r.Method+" "+r.URL.Path)
	fail := p.failed < p.fail && (p.match == nil || p.match(r))
	fault := p.fault
	if fail {
		p.failed++
	}
	p.mu.Unlock()
	if fail && fault == Answer503 {
		io.Copy(io.Discard, r.Body)
		http.Error(w, "injected fault", http.StatusServiceUnavailable)
		return
	}
	if fail && fault == Reset {
		reset(w)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	req.ContentLength = r.ContentLength
	if r.ContentLength == 0 {
		req.Body = nil
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if fail && fault == ForwardThenReset { // the service did it; the client never hears
		io.Copy(io.Discard, resp.Body)
		reset(w)
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	if fail { // CutBody
		io.CopyN(w, resp.Body, max(resp.ContentLength/2, 0))
		w.(http.Flusher).Flush()
		reset(w)
		return
	}
	io.Copy(w, resp.Body)
}

// reset closes the client's connection with a TCP RST.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("FaultProxy: the ResponseWriter cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// DeadURL returns http://127.0.0.1:PORT where nothing listens (a port
// that was free a moment ago): a service that is down.
func DeadURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}
