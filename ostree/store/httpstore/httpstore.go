// Package httpstore is a store.Store over a static web server (HTTP or
// HTTPS), as ostree pulls from: GET requests on a pool of keep-alive
// connections (HTTP/2 when a TLS server offers it), TLS and proxy settings
// as in an ostree remote's configuration, retries with jittered
// exponential backoff on connection failures, HTTP 408, 429 and 5xx and
// stalled transfers, and Range requests to resume a transfer that broke
// off. A stall is detected by a low-speed limit (too few bytes over a
// window of time), never by a total timeout, so big files on slow links
// still complete.
package httpstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/gostree/gostree/internal/retry"
	"github.com/gostree/gostree/ostree/store"
)

// Options configures a Store. The zero value gives ostree's defaults.
type Options struct {
	// TLSCAPath is a PEM file of CA certificates to trust instead of the
	// system's (remote key tls-ca-path).
	TLSCAPath string
	// TLSClientCertPath and TLSClientKeyPath are a PEM client certificate
	// and its key (tls-client-cert-path, tls-client-key-path).
	TLSClientCertPath, TLSClientKeyPath string
	// TLSPermissive disables server certificate checks (tls-permissive).
	TLSPermissive bool
	// Proxy is a proxy URL for every request (remote key proxy). When
	// empty, HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or their lower-case
	// forms) are read from the environment when New is called.
	Proxy string
	// MaxConns bounds the connections to the server (default 16).
	MaxConns int
	// Retries is how many times a request is retried after a transient
	// failure (default 5, as ostree's n-network-retries).
	Retries int
	// RetryBackoff is the base delay before the first retry, doubled for
	// each further one up to 32 times that, with ±50 % jitter (default
	// 250 ms).
	RetryBackoff time.Duration
	// LowSpeedLimit and LowSpeedTime: a transfer that receives fewer than
	// LowSpeedLimit bytes per second on average over LowSpeedTime is
	// abandoned and retried (defaults 1000 B/s and 30 s, as ostree's
	// libcurl settings). This includes waiting for the response headers.
	LowSpeedLimit int64
	LowSpeedTime  time.Duration
	// UserAgent is sent with every request (default "gostree").
	UserAgent string
	// OnRequest, if set, is called after each HTTP request with its
	// outcome (for progress reporting and tests).
	OnRequest func(RequestInfo)
}

// RequestInfo describes one HTTP request made by a Store.
type RequestInfo struct {
	Method string
	Path   string
	// Status is the HTTP status, 0 if no response was received.
	Status int
	// Proto is the protocol of the response ("HTTP/1.1", "HTTP/2.0").
	Proto string
	// Offset is the start of a Range request resuming a transfer, else 0.
	Offset int64
	Err    error
}

// Store reads files from a base URL.
type Store struct {
	base   *url.URL
	client *http.Client
	o      Options
}

var _ store.Store = (*Store)(nil)

// New returns a store for the repository at baseURL (http:// or https://).
func New(baseURL string, o Options) (*Store, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid URL %q: unsupported scheme %q (want http or https)", baseURL, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid URL %q: no host", baseURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawPath = ""
	if o.MaxConns <= 0 {
		o.MaxConns = 16
	}
	if o.Retries < 0 {
		o.Retries = 0
	} else if o.Retries == 0 {
		o.Retries = 5
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 250 * time.Millisecond
	}
	if o.LowSpeedLimit <= 0 {
		o.LowSpeedLimit = 1000
	}
	if o.LowSpeedTime <= 0 {
		o.LowSpeedTime = 30 * time.Second
	}
	if o.UserAgent == "" {
		o.UserAgent = "gostree"
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLSCAPath != "" {
		pem, err := os.ReadFile(o.TLSCAPath)
		if err != nil {
			return nil, fmt.Errorf("tls-ca-path: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls-ca-path %s: no PEM certificates found", o.TLSCAPath)
		}
		tlsConf.RootCAs = pool
	}
	if o.TLSClientCertPath != "" || o.TLSClientKeyPath != "" {
		if o.TLSClientCertPath == "" || o.TLSClientKeyPath == "" {
			return nil, errors.New("tls-client-cert-path and tls-client-key-path must be given together")
		}
		cert, err := tls.LoadX509KeyPair(o.TLSClientCertPath, o.TLSClientKeyPath)
		if err != nil {
			return nil, fmt.Errorf("loading TLS client certificate: %w", err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	tlsConf.InsecureSkipVerify = o.TLSPermissive
	var proxy func(*http.Request) (*url.URL, error)
	if o.Proxy != "" {
		pu, err := url.Parse(o.Proxy)
		if err != nil || pu.Host == "" {
			if err == nil && !strings.Contains(o.Proxy, "://") {
				pu, err = url.Parse("http://" + o.Proxy)
			}
			if err != nil || pu.Host == "" {
				return nil, fmt.Errorf("invalid proxy %q", o.Proxy)
			}
		}
		proxy = http.ProxyURL(pu)
	} else {
		f := httpproxy.FromEnvironment().ProxyFunc()
		proxy = func(r *http.Request) (*url.URL, error) { return f(r.URL) }
	}
	dialer := &net.Dialer{Timeout: o.LowSpeedTime, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 proxy,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConf,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          o.MaxConns,
		MaxIdleConnsPerHost:   o.MaxConns,
		MaxConnsPerHost:       o.MaxConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   o.LowSpeedTime,
		DisableCompression:    true, // sizes and Range offsets are of the stored bytes
		ExpectContinueTimeout: time.Second,
		ReadBufferSize:        64 << 10,
	}
	return &Store{base: u, o: o, client: &http.Client{Transport: tr}}, nil
}

// URL returns the base URL of the store.
func (s *Store) URL() string { return s.base.String() }

// CloseIdleConnections closes the connections kept alive for reuse.
func (s *Store) CloseIdleConnections() { s.client.CloseIdleConnections() }

func (s *Store) url(p string) string {
	u := *s.base
	u.Path += p
	return u.String()
}

// errStalled is returned when a transfer falls below the low-speed limit.
var errStalled = errors.New("transfer stalled")

// attempt is one HTTP request with its low-speed watchdog.
type attempt struct {
	resp    *http.Response
	cancel  context.CancelFunc
	timer   *time.Timer
	n       atomic.Int64 // bytes received in the current window
	stalled atomic.Bool
}

func (a *attempt) stop() {
	if a.timer != nil {
		a.timer.Stop()
	}
	if a.resp != nil {
		a.resp.Body.Close()
	}
	a.cancel()
}

// do sends one request, watching its speed until stop is called. off > 0
// asks for the file from that offset, off < 0 for its first byte only.
func (s *Store) do(ctx context.Context, method, p string, off int64, validator string) (*attempt, error) {
	rctx, cancel := context.WithCancel(ctx)
	a := &attempt{cancel: cancel}
	var check func()
	check = func() {
		if float64(a.n.Swap(0)) < float64(s.o.LowSpeedLimit)*s.o.LowSpeedTime.Seconds() {
			a.stalled.Store(true)
			cancel()
			return
		}
		a.timer.Reset(s.o.LowSpeedTime)
	}
	req, err := http.NewRequestWithContext(rctx, method, s.url(p), nil)
	if err != nil {
		cancel()
		return nil, &store.Error{Op: strings.ToLower(method), Path: p, Err: err}
	}
	req.Header.Set("User-Agent", s.o.UserAgent)
	if off < 0 {
		req.Header.Set("Range", "bytes=0-0")
	} else if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
		if validator != "" {
			req.Header.Set("If-Range", validator)
		}
	}
	a.timer = time.AfterFunc(s.o.LowSpeedTime, check)
	resp, err := s.client.Do(req)
	info := RequestInfo{Method: method, Path: p, Offset: max(off, 0)}
	if err != nil {
		a.stop()
		err = s.classify(method, p, err, a.stalled.Load(), ctx)
		info.Err = err
		s.report(info)
		return nil, err
	}
	a.resp = resp
	info.Status, info.Proto = resp.StatusCode, resp.Proto
	s.report(info)
	return a, nil
}

func (s *Store) report(i RequestInfo) {
	if s.o.OnRequest != nil {
		s.o.OnRequest(i)
	}
}

// classify turns a transport error into a store error.
func (s *Store) classify(method, p string, err error, stalled bool, ctx context.Context) error {
	op := "open"
	if stalled {
		return &store.Error{Op: op, Path: p, Retryable: true, Err: fmt.Errorf("%w: less than %d bytes/s for %v", errStalled, s.o.LowSpeedLimit, s.o.LowSpeedTime)}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &store.Error{Op: op, Path: p, Retryable: retryableNetError(err), Err: err}
}

// retryableNetError sorts transport errors: certificate and protocol
// configuration errors are permanent, the rest (resets, refused
// connections, timeouts, early EOF) may go away.
func retryableNetError(err error) bool {
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recErr tls.RecordHeaderError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalid), errors.As(err, &recErr):
		return false
	case errors.As(err, &dnsErr):
		return !dnsErr.IsNotFound
	case errors.Is(err, context.Canceled):
		return false
	}
	var ue *url.Error
	if errors.As(err, &ue) && strings.Contains(ue.Err.Error(), "unsupported protocol scheme") {
		return false
	}
	return true
}

func statusError(op, p string, code int) error {
	switch {
	case code == http.StatusNotFound || code == http.StatusForbidden || code == http.StatusGone:
		return &store.Error{Op: op, Path: p, Status: code, Err: os.ErrNotExist}
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return &store.Error{Op: op, Path: p, Status: code, Retryable: true}
	case code == http.StatusUnauthorized:
		return &store.Error{Op: op, Path: p, Status: code,
			Err: errors.New("unauthorized: the server refused the credentials, or the TempURL's signature is wrong or has expired")}
	}
	return &store.Error{Op: op, Path: p, Status: code}
}

// backoff sleeps before retry number n (0-based).
func (s *Store) backoff(ctx context.Context, n int) error {
	d := s.o.RetryBackoff << min(n, 5)
	d = d/2 + time.Duration(rand.Int64N(int64(d)))
	return retry.Sleep(ctx, d)
}

// Stat asks for the first byte of the file (a GET with Range: bytes=0-0,
// which every static server answers, unlike HEAD over HTTP/2 with some).
func (s *Store) Stat(ctx context.Context, p string) (store.Info, error) {
	c, err := store.CleanPath(p)
	if err != nil {
		var se *store.Error
		if errors.As(err, &se) {
			se.Op = "stat"
		}
		return store.Info{}, err
	}
	for try := 0; ; try++ {
		a, err := s.do(ctx, http.MethodGet, c, -1, "")
		if err == nil {
			resp := a.resp
			info := store.Info{Size: -1}
			if lm, perr := http.ParseTime(resp.Header.Get("Last-Modified")); perr == nil {
				info.ModTime = lm
			}
			switch resp.StatusCode {
			case http.StatusOK:
				info.Size = resp.ContentLength
			case http.StatusPartialContent, http.StatusRequestedRangeNotSatisfiable:
				cr := resp.Header.Get("Content-Range")
				if i := strings.LastIndexByte(cr, '/'); i >= 0 {
					if n, perr := strconv.ParseInt(cr[i+1:], 10, 64); perr == nil {
						info.Size = n
					}
				}
			default:
				err = statusError("stat", p, resp.StatusCode)
			}
			a.stop()
			if err == nil {
				return info, nil
			}
		} else if se := (*store.Error)(nil); errors.As(err, &se) {
			se.Op = "stat"
		}
		if !store.IsRetryable(err) || try >= s.o.Retries {
			return store.Info{}, err
		}
		if berr := s.backoff(ctx, try); berr != nil {
			return store.Info{}, berr
		}
	}
}

// Open sends a GET request and returns the body. If the transfer breaks
// off, the reader resumes it with a Range request (If-Range on the
// response's ETag or Last-Modified), within the same retry budget.
func (s *Store) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	c, err := store.CleanPath(p)
	if err != nil {
		return nil, err
	}
	b := &body{s: s, ctx: ctx, p: c, size: -1}
	if err := b.connect(); err != nil {
		return nil, err
	}
	return b, nil
}

type body struct {
	s         *Store
	ctx       context.Context
	p         string
	a         *attempt
	off       int64 // bytes delivered to the caller
	size      int64 // total size, -1 if unknown
	validator string
	tries     int
	closed    bool
}

// connect (re)starts the transfer at b.off, retrying transient failures.
func (b *body) connect() error {
	for {
		err := b.try()
		if err == nil {
			return nil
		}
		if !store.IsRetryable(err) || b.tries >= b.s.o.Retries {
			return err
		}
		if berr := b.s.backoff(b.ctx, b.tries); berr != nil {
			return berr
		}
		b.tries++
	}
}

func (b *body) try() error {
	validator := ""
	if b.off > 0 {
		validator = b.validator
	}
	a, err := b.s.do(b.ctx, http.MethodGet, b.p, b.off, validator)
	if err != nil {
		return err
	}
	resp := a.resp
	switch {
	case resp.StatusCode == http.StatusOK:
		if b.off > 0 {
			// The server ignored the Range (or the file changed): skip
			// what was already delivered, if it is the same file.
			if v := validatorOf(resp); b.validator != "" && v != b.validator {
				a.stop()
				return &store.Error{Op: "read", Path: b.p, Err: errors.New("file changed on the server during the transfer")}
			}
			if _, err := io.CopyN(io.Discard, &watched{a: a}, b.off); err != nil {
				a.stop()
				return b.s.classify(http.MethodGet, b.p, err, a.stalled.Load(), b.ctx)
			}
		} else {
			b.size = resp.ContentLength
			b.validator = validatorOf(resp)
		}
	case resp.StatusCode == http.StatusPartialContent && b.off > 0:
		start, ok := rangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != b.off {
			a.stop()
			return &store.Error{Op: "read", Path: b.p, Err: fmt.Errorf("server answered a Range request from %d with %q", b.off, resp.Header.Get("Content-Range"))}
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && b.off > 0 && b.off == b.size:
		// Everything was delivered already.
	default:
		a.stop()
		return statusError("open", b.p, resp.StatusCode)
	}
	b.a = a
	return nil
}

func validatorOf(resp *http.Response) string {
	if e := resp.Header.Get("ETag"); e != "" && !strings.HasPrefix(e, "W/") {
		return e
	}
	return resp.Header.Get("Last-Modified")
}

func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil
}

// watched reads a response body and feeds the low-speed watchdog.
type watched struct{ a *attempt }

func (w *watched) Read(p []byte) (int, error) {
	n, err := w.a.resp.Body.Read(p)
	w.a.n.Add(int64(n))
	return n, err
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("read after close")
	}
	for {
		if b.a == nil {
			if err := b.connect(); err != nil {
				return 0, err
			}
		}
		if b.a.resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			return 0, io.EOF
		}
		n, err := (&watched{a: b.a}).Read(p)
		b.off += int64(n)
		if err == nil || n > 0 && err != io.EOF {
			if err != nil {
				err = nil // report it on the next Read, after a resume attempt
			}
			return n, nil
		}
		if err == io.EOF {
			if b.size >= 0 && b.off < b.size {
				err = io.ErrUnexpectedEOF
			} else {
				return n, io.EOF
			}
		}
		stalled := b.a.stalled.Load()
		b.a.stop()
		b.a = nil
		serr := b.s.classify(http.MethodGet, b.p, err, stalled, b.ctx)
		if se := (*store.Error)(nil); errors.As(serr, &se) {
			se.Op = "read"
		}
		if !store.IsRetryable(serr) || b.tries >= b.s.o.Retries {
			return n, serr
		}
		if berr := b.s.backoff(b.ctx, b.tries); berr != nil {
			return n, berr
		}
		b.tries++
		if n > 0 {
			return n, nil
		}
	}
}

func (b *body) Close() error {
	if !b.closed {
		b.closed = true
		if b.a != nil {
			b.a.stop()
			b.a = nil
		}
	}
	return nil
}
