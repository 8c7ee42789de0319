package swift

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/objects"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/gostree/gostree/internal/osauth"
	"github.com/gostree/gostree/internal/retry"
	"github.com/gostree/gostree/ostree/store"
)

// WriteStore is a store.Store that can also be written: what publishing a
// repository (push) and cleaning it (prune) need.
type WriteStore interface {
	store.Store
	// Put stores size bytes read from r at path, replacing any file there.
	// The write is all-or-nothing: a reader never sees a partial file.
	Put(ctx context.Context, path string, r io.ReadSeeker, size int64) error
	// List calls fn for every file whose path starts with prefix, in
	// lexical order of path.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Remove deletes the file at path; a missing file is not an error.
	Remove(ctx context.Context, path string) error
}

// ObjectInfo describes a file of a WriteStore.
type ObjectInfo struct {
	Path    string // relative to the store's root
	Size    int64
	MD5     string // lower-case hex MD5 of the content, "" when unknown
	ModTime time.Time
}

// Store is a WriteStore over a Swift container, optionally under a prefix
// ("repos/os/"), authenticated with a Keystone token (the service client's).
//
// Requests that fail transiently (connection refused or reset, a response
// cut short, HTTP 408, 429, 500, 502, 503, 504: osauth.IsRetryable) are
// repeated under Retry: Open, Stat, each page of List, Remove (a repeated
// DELETE finding nothing is done), CreateContainer and SetPublic. A read
// cut mid-way is resumed with a Range request (If-Match the first
// response's ETag, so a replaced object is not spliced). Put is not
// repeated here: its caller owns the source and retries (Push does).
type Store struct {
	c         *gophercloud.ServiceClient
	container string
	prefix    string // "" or ending in "/"
	// Retry bounds the retries (zero: retry.Default).
	Retry retry.Policy
}

var _ WriteStore = (*Store)(nil)

// New returns the store for container (and prefix, may be "") using c, a
// client from openstack.NewObjectStorageV1.
func New(c *gophercloud.ServiceClient, container, prefix string) (*Store, error) {
	if err := ValidContainer(container); err != nil {
		return nil, err
	}
	p, err := cleanPrefix(prefix)
	if err != nil {
		return nil, err
	}
	return &Store{c: c, container: container, prefix: p}, nil
}

// ValidContainer checks a container name as Swift does.
func ValidContainer(c string) error {
	switch {
	case c == "":
		return errors.New("swift: empty container name")
	case strings.Contains(c, "/"):
		return fmt.Errorf("swift: container name %q contains '/'", c)
	case len(c) > 256:
		return fmt.Errorf("swift: container name %q is longer than 256 bytes", c)
	}
	return nil
}

func cleanPrefix(prefix string) (string, error) {
	p := strings.Trim(prefix, "/")
	if p == "" {
		return "", nil
	}
	c, err := store.CleanPath(p)
	if err != nil || c != p {
		return "", fmt.Errorf("swift: invalid prefix %q", prefix)
	}
	return p + "/", nil
}

// Container returns the container name.
func (s *Store) Container() string { return s.container }

// Prefix returns the prefix ("" or ending in "/").
func (s *Store) Prefix() string { return s.prefix }

// Client returns the object-storage service client.
func (s *Store) Client() *gophercloud.ServiceClient { return s.c }

// URL returns the container URL with the prefix, ending in "/": the base
// URL of the repository for HTTP clients (public containers).
func (s *Store) URL() string {
	return s.c.ServiceURL(s.container) + "/" + s.prefix
}

func (s *Store) name(op, p string) (string, error) {
	c, err := store.CleanPath(p)
	if err != nil {
		return "", &store.Error{Op: op, Path: p, Err: err}
	}
	return s.prefix + c, nil
}

// Open implements store.Store. The content is checked against the object's
// ETag (MD5) and length while it is read.
func (s *Store) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	name, err := s.name("open", p)
	if err != nil {
		return nil, err
	}
	var r objects.DownloadResult
	err = s.do(ctx, "open", p, func(ctx context.Context) error {
		r = objects.Download(ctx, s.c, s.container, name, nil)
		return r.Err
	})
	if err != nil {
		return nil, err
	}
	etag := r.Header.Get("Etag")
	reopen := func(ctx context.Context, off int64) (io.ReadCloser, error) {
		r := objects.Download(ctx, s.c, s.container, name, objects.DownloadOpts{Range: fmt.Sprintf("bytes=%d-", off), IfMatch: etag})
		if r.Err != nil {
			return nil, r.Err
		}
		status := http.StatusOK // gophercloud does not say; only a 206 has a Content-Range
		if r.Header.Get("Content-Range") != "" {
			status = http.StatusPartialContent
		}
		return checkRange(r.Body, status, r.Header.Get("Content-Range"), off)
	}
	return newVerifyingBody(p, newResumingBody(ctx, p, r.Body, reopen, s.Retry), r.Header), nil
}

// do runs fn under the store's retry policy and classifies its error.
func (s *Store) do(ctx context.Context, op, p string, fn func(ctx context.Context) error) error {
	err := retry.Do(ctx, s.Retry, osauth.IsRetryable, fn)
	return classify(op, p, err)
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, p string) (store.Info, error) {
	name, err := s.name("stat", p)
	if err != nil {
		return store.Info{}, err
	}
	var h *objects.GetHeader
	err = s.do(ctx, "stat", p, func(ctx context.Context) error {
		var err error
		h, err = objects.Get(ctx, s.c, s.container, name, nil).Extract()
		return err
	})
	if err != nil {
		return store.Info{}, err
	}
	return store.Info{Size: h.ContentLength, ModTime: h.LastModified}, nil
}

// Put implements WriteStore: one PUT with the content's MD5 as ETag, so
// Swift refuses a body that arrived damaged (HTTP 422), and the returned
// ETag is checked too.
func (s *Store) Put(ctx context.Context, p string, r io.ReadSeeker, size int64) error {
	name, err := s.name("put", p)
	if err != nil {
		return err
	}
	h := md5.New()
	if n, err := io.Copy(h, r); err != nil {
		return &store.Error{Op: "put", Path: p, Err: err}
	} else if n != size {
		return &store.Error{Op: "put", Path: p, Err: fmt.Errorf("source has %d bytes, expected %d", n, size)}
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return &store.Error{Op: "put", Path: p, Err: err}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	res := objects.Create(ctx, s.c, s.container, name, objects.CreateOpts{
		Content:       io.LimitReader(r, size),
		ContentLength: size,
		ContentType:   "application/octet-stream",
		ETag:          sum,
	})
	if res.Err != nil {
		if gophercloud.ResponseCodeIs(res.Err, 422) {
			return &store.Error{Op: "put", Path: p, Status: 422, Retryable: true,
				Err: errors.New("Swift computed a different MD5 than was sent: the upload was damaged")}
		}
		return classify("put", p, res.Err)
	}
	if got := strings.Trim(res.Header.Get("Etag"), `"`); got != "" && got != sum {
		return &store.Error{Op: "put", Path: p, Retryable: true,
			Err: fmt.Errorf("stored ETag %s, want MD5 %s", got, sum)}
	}
	return nil
}

// List implements WriteStore; it pages through the container listing,
// each page (up to 10000 names) retried on its own.
func (s *Store) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	marker := ""
	for {
		var infos []objects.Object
		err := retry.Do(ctx, s.Retry, osauth.IsRetryable, func(ctx context.Context) error {
			opts := objects.ListOpts{Prefix: s.prefix + prefix, Limit: 10000, Marker: marker}
			infos = nil
			return objects.List(s.c, s.container, opts).EachPage(ctx, func(ctx context.Context, page pagination.Page) (bool, error) {
				var err error
				infos, err = objects.ExtractInfo(page)
				return false, err // one page per request
			})
		})
		if err != nil {
			if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				return nil // no container: nothing in it
			}
			return classify("list", prefix, err)
		}
		if len(infos) == 0 {
			return nil
		}
		for _, o := range infos {
			if o.Subdir != "" {
				continue
			}
			rel := strings.TrimPrefix(o.Name, s.prefix)
			if err := fn(ObjectInfo{Path: rel, Size: o.Bytes, MD5: o.Hash, ModTime: o.LastModified}); err != nil {
				return err
			}
		}
		marker = infos[len(infos)-1].Name
	}
}

// Remove implements WriteStore.
func (s *Store) Remove(ctx context.Context, p string) error {
	name, err := s.name("remove", p)
	if err != nil {
		return err
	}
	return s.do(ctx, "remove", p, func(ctx context.Context) error {
		_, err := objects.Delete(ctx, s.c, s.container, name, nil).Extract()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return nil // already gone, perhaps by an attempt whose answer was lost
		}
		return err
	})
}

// CreateContainer creates the container if it does not exist.
func (s *Store) CreateContainer(ctx context.Context) error {
	return s.do(ctx, "create container", s.container, func(ctx context.Context) error {
		_, err := containers.Create(ctx, s.c, s.container, nil).Extract()
		return err
	})
}

// PublicRead is the container ACL that lets anyone read objects and list
// the container, so stock `ostree pull` can read the repository over HTTP.
const PublicRead = ".r:*,.rlistings"

// SetPublic makes the container publicly readable (on) or private again.
func (s *Store) SetPublic(ctx context.Context, on bool) error {
	acl := ""
	if on {
		acl = PublicRead
	}
	return s.do(ctx, "set read ACL of", s.container, func(ctx context.Context) error {
		_, err := containers.Update(ctx, s.c, s.container, containers.UpdateOpts{ContainerRead: &acl}).Extract()
		return err
	})
}

// classify turns a gophercloud error into a *store.Error: a missing object
// gives fs.ErrNotExist; transient failures (osauth.IsRetryable: 408, 429,
// 5xx, network failures) are retryable; 401/403 say access was denied.
// After retries were used up, the message says so.
func classify(op, p string, err error) error {
	if err == nil {
		return nil
	}
	var se *store.Error
	if errors.As(err, &se) && !errors.As(err, new(*retry.GaveUpError)) {
		return err
	}
	e := &store.Error{Op: op, Path: p, Err: err, Retryable: osauth.IsRetryable(err)}
	var g *retry.GaveUpError
	if errors.As(err, &g) {
		err = g.Err // the message says "gave up" once, below
		e.Err = err
	}
	var ue gophercloud.ErrUnexpectedResponseCode
	var reauth *gophercloud.ErrUnableToReauthenticate
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	case errors.As(err, &ue):
		e.Status = ue.Actual
		e.Err = fmt.Errorf("%s %s", ue.Method, redactURL(ue.URL))
		switch {
		case ue.Actual == http.StatusNotFound:
			return store.NotFound(op, p)
		case ue.Actual == http.StatusUnauthorized || ue.Actual == http.StatusForbidden:
			e.Err = fmt.Errorf("access denied (credentials, role or container ACL): %w", e.Err)
		case e.Retryable:
			e.Err = fmt.Errorf("Swift unavailable: %w", e.Err)
		}
	case errors.As(err, &reauth):
		e.Err = fmt.Errorf("re-authenticating to Keystone failed: %w", reauth.ErrReauth)
	case e.Retryable:
		e.Err = fmt.Errorf("Swift unavailable: %w", err)
	}
	if g != nil {
		e.Err = fmt.Errorf("%w (gave up after %d attempts)", e.Err, g.Attempts)
	}
	return e
}

// checkRange accepts the answer to a Range request from off: 206 from off.
func checkRange(body io.ReadCloser, status int, contentRange string, off int64) (io.ReadCloser, error) {
	if status == http.StatusPartialContent {
		if start, ok := rangeStart(contentRange); ok && start == off {
			return body, nil
		}
	}
	body.Close()
	return nil, fmt.Errorf("resuming at byte %d: got HTTP %d, Content-Range %q", off, status, contentRange)
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
	return n, err == nil && n >= 0
}

// resumingBody reads a response body and, when the transfer breaks off,
// resumes it from where it stopped with reopen, under a retry policy.
type resumingBody struct {
	ctx    context.Context
	path   string
	rc     io.ReadCloser
	reopen func(ctx context.Context, off int64) (io.ReadCloser, error)
	policy retry.Policy
	off    int64
	tries  int
}

func newResumingBody(ctx context.Context, p string, rc io.ReadCloser, reopen func(context.Context, int64) (io.ReadCloser, error), policy retry.Policy) io.ReadCloser {
	return &resumingBody{ctx: ctx, path: p, rc: rc, reopen: reopen, policy: policy}
}

func (b *resumingBody) Read(p []byte) (int, error) {
	for {
		if b.rc == nil {
			return 0, errors.New("read after close")
		}
		n, err := b.rc.Read(p)
		b.off += int64(n)
		if err == nil || err == io.EOF || n > 0 {
			if err != nil && err != io.EOF {
				err = nil // report it on the next Read, after resuming
			}
			return n, err
		}
		if !transient(err) || b.ctx.Err() != nil || b.tries >= b.policy.Attempts()-1 {
			return 0, classify("read", b.path, err)
		}
		b.rc.Close()
		b.rc = io.NopCloser(strings.NewReader("")) // until reopened
		b.tries++
		if werr := b.policy.Wait(b.ctx, b.tries); werr != nil {
			return 0, classify("read", b.path, werr)
		}
		rc, rerr := b.reopen(b.ctx, b.off)
		if rerr != nil {
			if transient(rerr) && b.tries < b.policy.Attempts()-1 {
				b.rc = errReader{rerr}
				continue
			}
			return 0, classify("read", b.path, fmt.Errorf("%w (after %w)", rerr, err))
		}
		b.rc = rc
	}
}

func (b *resumingBody) Close() error {
	if b.rc == nil {
		return nil
	}
	err := b.rc.Close()
	b.rc = nil
	return err
}

// transient reports whether err, from gophercloud, net/http or a store, is
// worth retrying.
func transient(err error) bool { return store.IsRetryable(err) || osauth.IsRetryable(err) }

// errReader fails every Read with err (a failed reopen, retried by the next Read).
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
func (e errReader) Close() error             { return nil }

// redactURL drops a query string (TempURL signatures) from u.
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// verifyingBody checks length and MD5 (a plain object's ETag) at EOF.
type verifyingBody struct {
	path string
	rc   io.ReadCloser
	h    hash.Hash
	etag string
	want int64
	n    int64
}

func newVerifyingBody(p string, rc io.ReadCloser, hdr http.Header) io.ReadCloser {
	b := &verifyingBody{path: p, rc: rc, want: -1}
	// SLO/DLO ETags are quoted and not a content hash: check only plain objects.
	if et := hdr.Get("Etag"); len(et) == 32 && hdr.Get("X-Static-Large-Object") == "" && hdr.Get("X-Object-Manifest") == "" {
		b.etag, b.h = strings.ToLower(et), md5.New()
	}
	if cl := hdr.Get("Content-Length"); cl != "" {
		fmt.Sscan(cl, &b.want)
	}
	return b
}

func (b *verifyingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.h != nil {
		b.h.Write(p[:n])
	}
	if err == io.EOF {
		if b.want >= 0 && b.n != b.want {
			return n, &store.Error{Op: "read", Path: b.path, Retryable: true,
				Err: fmt.Errorf("got %d bytes, Content-Length %d: %w", b.n, b.want, io.ErrUnexpectedEOF)}
		}
		if b.h != nil && hex.EncodeToString(b.h.Sum(nil)) != b.etag {
			return n, &store.Error{Op: "read", Path: b.path, Retryable: true,
				Err: fmt.Errorf("content MD5 differs from ETag %s", b.etag)}
		}
	} else if err != nil {
		return n, classify("read", b.path, err)
	}
	return n, err
}

func (b *verifyingBody) Close() error { return b.rc.Close() }
