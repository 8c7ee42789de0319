package swift

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gostree/gostree/internal/osauth"
	"github.com/gostree/gostree/internal/retry"
	"github.com/gostree/gostree/ostree/store"
)

// TempURL digests gostree signs with. sha1 is deliberately absent: Swift
// deprecated it and many clusters refuse it.
const (
	DigestSHA256 = "sha256"
	DigestSHA512 = "sha512"
)

// Signer makes Swift TempURLs for the objects of one account.
type Signer struct {
	// AccountURL is the object-store endpoint of the account,
	// "https://host/v1/AUTH_project".
	AccountURL string
	// Key is the account's or the container's Temp-URL-Key (a secret).
	Key string
	// Digest is DigestSHA256 (default) or DigestSHA512.
	Digest string
}

func (s Signer) hash() (func() hash.Hash, error) {
	switch s.Digest {
	case "", DigestSHA256:
		return sha256.New, nil
	case DigestSHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("swift: TempURL digest %q not supported (use sha256 or sha512)", s.Digest)
}

func (s Signer) sign(method, path string, expires int64) (string, error) {
	newHash, err := s.hash()
	if err != nil {
		return "", err
	}
	if s.Key == "" {
		return "", errors.New("swift: no TempURL key")
	}
	m := hmac.New(newHash, []byte(s.Key))
	fmt.Fprintf(m, "%s\n%d\n%s", method, expires, path)
	return hex.EncodeToString(m.Sum(nil)), nil
}

// accountPath is the unescaped path of the account URL ("/v1/AUTH_x"), as
// Swift checks signatures against it.
func (s Signer) accountPath() (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(s.AccountURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("swift: account URL: %w", err)
	}
	if !strings.HasPrefix(u.Path, "/v1/") {
		return nil, fmt.Errorf("swift: account URL %q has no /v1/ path", s.AccountURL)
	}
	return u, nil
}

// ObjectURL returns a TempURL for method (GET, HEAD, PUT, ...) on
// container/object valid until expires.
func (s Signer) ObjectURL(method, container, object string, expires time.Time) (string, error) {
	u, err := s.accountPath()
	if err != nil {
		return "", err
	}
	u.Path += "/" + container + "/" + object
	sig, err := s.sign(method, u.Path, expires.Unix())
	if err != nil {
		return "", err
	}
	u.RawQuery = url.Values{"temp_url_sig": {sig}, "temp_url_expires": {strconv.FormatInt(expires.Unix(), 10)}}.Encode()
	return u.String(), nil
}

// PrefixURL returns the base URL of a prefix TempURL: GET and HEAD of every
// object of container whose name starts with prefix, until expires.
// Object paths are appended to the URL's path and the query is kept,
// which is what ostree does with a remote URL, so it works as a remote.
func (s Signer) PrefixURL(container, prefix string, expires time.Time) (string, error) {
	u, err := s.accountPath()
	if err != nil {
		return "", err
	}
	u.Path += "/" + container + "/"
	sig, err := s.sign("GET", "prefix:"+u.Path+prefix, expires.Unix())
	if err != nil {
		return "", err
	}
	u.Path += prefix
	u.RawQuery = url.Values{"temp_url_sig": {sig}, "temp_url_expires": {strconv.FormatInt(expires.Unix(), 10)},
		"temp_url_prefix": {prefix}}.Encode()
	return u.String(), nil
}

// TempURLStore reads a repository in a container through TempURLs it
// signs itself per request: no Keystone token is needed, only the key.
// Transient failures are retried under Retry and a read cut mid-way is
// resumed with a Range request, as Store does.
type TempURLStore struct {
	signer    Signer
	container string
	prefix    string
	ttl       time.Duration
	client    *http.Client
	// Retry bounds the retries (zero: retry.Default).
	Retry retry.Policy
}

var _ store.Store = (*TempURLStore)(nil)

// NewTempURLStore returns a store reading container (under prefix) with
// TempURLs from signer, each valid for ttl (default 10 minutes). client nil
// means http.DefaultClient.
func NewTempURLStore(signer Signer, container, prefix string, ttl time.Duration, client *http.Client) (*TempURLStore, error) {
	if err := ValidContainer(container); err != nil {
		return nil, err
	}
	p, err := cleanPrefix(prefix)
	if err != nil {
		return nil, err
	}
	if _, err := signer.hash(); err != nil {
		return nil, err
	}
	if _, err := signer.accountPath(); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &TempURLStore{signer: signer, container: container, prefix: p, ttl: ttl, client: client}, nil
}

// do sends the request, retrying transient failures.
func (t *TempURLStore) do(ctx context.Context, op, method, p string, h http.Header) (*http.Response, error) {
	var resp *http.Response
	err := retry.Do(ctx, t.Retry, store.IsRetryable, func(ctx context.Context) error {
		var err error
		resp, err = t.once(ctx, op, method, p, h)
		return err
	})
	var g *retry.GaveUpError
	if errors.As(err, &g) {
		var se *store.Error
		if errors.As(err, &se) {
			se.Err = fmt.Errorf("%w (gave up after %d attempts)", se.Err, g.Attempts)
			return nil, se
		}
	}
	return resp, err
}

func (t *TempURLStore) once(ctx context.Context, op, method, p string, h http.Header) (*http.Response, error) {
	c, err := store.CleanPath(p)
	if err != nil {
		return nil, &store.Error{Op: op, Path: p, Err: err}
	}
	// HEAD is allowed by a GET signature.
	u, err := t.signer.ObjectURL("GET", t.container, t.prefix+c, time.Now().Add(t.ttl))
	if err != nil {
		return nil, &store.Error{Op: op, Path: p, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, &store.Error{Op: op, Path: p, Err: err}
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := t.client.Do(req)
	if err != nil {
		// *url.Error carries the signed URL: drop it, keep what failed.
		inner := errors.Unwrap(err)
		if inner == nil {
			inner = err
		}
		e := &store.Error{Op: op, Path: p, Err: fmt.Errorf("%s %s: %w", method, redactURL(u), inner), Retryable: osauth.IsRetryable(err) && ctx.Err() == nil}
		if e.Retryable {
			e.Err = fmt.Errorf("Swift unavailable: %w", e.Err)
		}
		return nil, e
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent && h.Get("Range") != "" {
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	e := &store.Error{Op: op, Path: p, Status: resp.StatusCode}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, store.NotFound(op, p)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.Err = errors.New("TempURL refused: wrong key or digest, expired, or not allowed by the cluster")
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		e.Retryable = true
		e.Err = errors.New("Swift unavailable")
	}
	return nil, e
}

// Open implements store.Store.
func (t *TempURLStore) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	resp, err := t.do(ctx, "open", http.MethodGet, p, nil)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	if etag := resp.Header.Get("Etag"); etag != "" {
		h.Set("If-Match", etag)
	}
	reopen := func(ctx context.Context, off int64) (io.ReadCloser, error) {
		h := h.Clone()
		h.Set("Range", fmt.Sprintf("bytes=%d-", off))
		r, err := t.once(ctx, "read", http.MethodGet, p, h)
		if err != nil {
			return nil, err
		}
		return checkRange(r.Body, r.StatusCode, r.Header.Get("Content-Range"), off)
	}
	return newVerifyingBody(p, newResumingBody(ctx, p, resp.Body, reopen, t.Retry), resp.Header), nil
}

// Stat implements store.Store.
func (t *TempURLStore) Stat(ctx context.Context, p string) (store.Info, error) {
	resp, err := t.do(ctx, "stat", http.MethodHead, p, nil)
	if err != nil {
		return store.Info{}, err
	}
	resp.Body.Close()
	info := store.Info{Size: resp.ContentLength}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		info.ModTime = lm
	}
	return info, nil
}
