package glance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/gostree/gostree/internal/osauth"
	"github.com/gostree/gostree/internal/retry"
	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/swift"
)

// Image property names and the tag of every image gostree publishes.
const (
	PropCommit  = "ostree_commit"
	PropRef     = "ostree_ref"
	PropVersion = "ostree_version"
	PropOSName  = "ostree_osname"
	PropRepo    = "ostree_repo"
	Tag         = "ostree"
)

// Errors, for errors.Is.
var (
	// ErrNotFound: no image with that ID or name.
	ErrNotFound = errors.New("image not found")
	// ErrAmbiguous: several images have that name.
	ErrAmbiguous = errors.New("several images have that name")
	// ErrNotPublished: the image has no valid ostree_* properties.
	ErrNotPublished = errors.New("not an OSTree image (no valid ostree_commit/ostree_repo properties; publish with gostree glance publish)")
)

// Source is where a published commit is pulled from.
type Source struct {
	// Swift container and prefix, for "swift://CONTAINER[/PREFIX]".
	Container, Prefix string
	// URL of the repository, for an http(s) source.
	URL string
}

// IsSwift reports whether the source is a Swift container.
func (s Source) IsSwift() bool { return s.Container != "" }

// String returns the ostree_repo form.
func (s Source) String() string {
	if s.IsSwift() {
		if s.Prefix != "" {
			return "swift://" + s.Container + "/" + strings.Trim(s.Prefix, "/")
		}
		return "swift://" + s.Container
	}
	return s.URL
}

// ParseSource parses an ostree_repo value.
func ParseSource(s string) (Source, error) {
	if rest, ok := strings.CutPrefix(s, "swift://"); ok {
		c, p, _ := strings.Cut(rest, "/")
		if strings.HasPrefix(p, "/") {
			return Source{}, fmt.Errorf("source %q: empty path element", s)
		}
		if err := swift.ValidContainer(c); err != nil {
			return Source{}, fmt.Errorf("source %q: %w", s, err)
		}
		if _, err := swift.New(nil, c, p); err != nil {
			return Source{}, fmt.Errorf("source %q: %w", s, err)
		}
		return Source{Container: c, Prefix: strings.Trim(p, "/")}, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Source{}, fmt.Errorf("source %q: want swift://CONTAINER[/PREFIX] or an http(s):// URL", s)
	}
	return Source{URL: s}, nil
}

// Version is a published commit, as an image records it.
type Version struct {
	ImageID string
	Name    string
	Commit  ostree.Checksum
	Ref     string
	Version string
	OSName  string
	Source  Source
	Tags    []string
	Created time.Time
	// Payload: ostree_payload=static-delta, the image data is an inline
	// static delta to Commit from PayloadFrom (zero: from scratch), of
	// PayloadSize bytes with Glance's multihash PayloadHashAlgo/PayloadHash.
	Payload         string
	PayloadFrom     ostree.Checksum
	PayloadSize     int64
	PayloadHashAlgo string
	PayloadHash     string
	Status          string
}

// HasPayload reports whether the image carries a static-delta payload
// that can be downloaded.
func (v *Version) HasPayload() bool {
	return v.Payload == PayloadStaticDelta && v.Status == "active" && v.PayloadSize > 0
}

// Client publishes and resolves versions in Glance.
//
// Calls that fail transiently (IsRetryable: Glance unreachable, the
// connection cut, HTTP 408, 429, 500, 502, 503, 504) are repeated with
// jittered exponential backoff, up to Retry's attempts, when repeating
// them is safe: reads (Resolve, List, the image GETs), Delete (a repeated
// DELETE finding the image gone counts as done) and the steps of Publish,
// made safe as follows. Creating an image is not idempotent, so Publish
// chooses the image ID itself: a repeated create answered 409 Conflict
// finds the image the first attempt made, checks it is the one asked for
// and carries on. A payload upload is repeated only while the image is
// still "queued" (Glance puts it back there when an upload fails); an
// image already "active" with the payload's size is the earlier attempt
// having succeeded. When Glance stays unavailable, the error says so,
// names the URL, wraps the last failure (%w) and IsRetryable reports
// true, so a caller such as an agent can try again later.
type Client struct {
	c *gophercloud.ServiceClient
	// Retry bounds the retries (zero: retry.Default, 4 retries over about
	// 4 s).
	Retry retry.Policy
}

// New returns a client using c, from openstack.NewImageV2.
func New(c *gophercloud.ServiceClient) *Client { return &Client{c: c} }

// IsRetryable reports whether err is a transient failure: the same call
// may succeed later (Glance or Keystone unreachable or answering 408, 429
// or 5xx, a transfer cut short). Errors about the image itself
// (ErrNotFound, ErrNotPublished, ErrAmbiguous, ErrPayload verification),
// refused credentials and bad input are permanent.
func IsRetryable(err error) bool {
	var ce *cutError
	return errors.As(err, &ce) || osauth.IsRetryable(err)
}

// do runs fn under the client's retry policy.
func (c *Client) do(ctx context.Context, fn func(ctx context.Context) error) error {
	return retry.Do(ctx, c.Retry, IsRetryable, fn)
}

// PublishOptions describe the image to register.
type PublishOptions struct {
	// Name of the image (default "OSNAME-VERSION", "REF-VERSION" or the
	// commit's short checksum).
	Name    string
	Commit  ostree.Checksum
	Ref     string
	Version string
	OSName  string
	Source  Source
	// Tags added to "ostree".
	Tags []string
	// Visibility: "private" (default), "shared", "community" or "public".
	Visibility string
	// Payload, if set, is uploaded as the image data (a static delta).
	Payload *Payload
}

var tagRE = regexp.MustCompile(`^[^/,\x00-\x1f]{1,255}$`)

// Publish registers an image for the commit and returns it.
func (c *Client) Publish(ctx context.Context, o PublishOptions) (*Version, error) {
	if o.Commit.IsZero() {
		return nil, errors.New("glance publish: no commit")
	}
	if o.Ref != "" {
		if err := ostree.ValidateRefName(o.Ref); err != nil {
			return nil, fmt.Errorf("glance publish: %w", err)
		}
	}
	src, err := ParseSource(o.Source.String())
	if err != nil {
		return nil, fmt.Errorf("glance publish: %w", err)
	}
	name := o.Name
	if name == "" {
		base := o.OSName
		if base == "" {
			base = strings.ReplaceAll(o.Ref, "/", "-")
		}
		switch {
		case base != "" && o.Version != "":
			name = base + "-" + o.Version
		case base != "":
			name = base + "-" + o.Commit.Short()
		default:
			name = "ostree-" + o.Commit.Short()
		}
	}
	tags := []string{Tag}
	for _, t := range o.Tags {
		if !tagRE.MatchString(t) {
			return nil, fmt.Errorf("glance publish: invalid tag %q", t)
		}
		if t != Tag {
			tags = append(tags, t)
		}
	}
	props := map[string]string{PropCommit: o.Commit.String(), PropRepo: src.String()}
	if o.Payload != nil {
		props[PropPayload] = PayloadStaticDelta
		if !o.Payload.From.IsZero() {
			props[PropDeltaFrom] = o.Payload.From.String()
		}
	}
	for k, v := range map[string]string{PropRef: o.Ref, PropVersion: o.Version, PropOSName: o.OSName} {
		if v != "" {
			props[k] = v
		}
	}
	opts := images.CreateOpts{Name: name, Tags: tags, ContainerFormat: "bare", DiskFormat: "raw", Properties: props}
	if o.Visibility != "" {
		v := images.ImageVisibility(o.Visibility)
		switch v {
		case images.ImageVisibilityPrivate, images.ImageVisibilityShared, images.ImageVisibilityCommunity, images.ImageVisibilityPublic:
		default:
			return nil, fmt.Errorf("glance publish: invalid visibility %q", o.Visibility)
		}
		opts.Visibility = &v
	}
	id, err := newUUID()
	if err != nil {
		return nil, fmt.Errorf("glance publish: %w", err)
	}
	opts.ID = id
	img, err := c.create(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("glance publish: creating image %q: %w", name, describe(err))
	}
	if o.Payload != nil {
		if err := c.uploadPayload(ctx, img.ID, o.Payload); err != nil {
			// Nothing half-published: an image promising a payload it lacks is removed.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if derr := c.delete(dctx, img.ID); derr != nil {
				return nil, fmt.Errorf("glance publish: uploading the payload of image %s: %w (and deleting the image failed: %v)", img.ID, err, describe(derr))
			}
			return nil, fmt.Errorf("glance publish: uploading the payload of image %s (deleted again): %w", img.ID, err)
		}
		if img, err = c.get(ctx, img.ID); err != nil {
			return nil, fmt.Errorf("glance publish: %w", describe(err))
		}
	}
	return versionOf(img)
}

// create creates the image opts describes, whose ID is set. A repeated
// create answered 409 Conflict (an earlier attempt created it, but its
// answer was lost) adopts the image when it is the one asked for.
func (c *Client) create(ctx context.Context, opts images.CreateOpts) (*images.Image, error) {
	var img *images.Image
	tries := 0
	err := c.do(ctx, func(ctx context.Context) error {
		tries++
		var err error
		img, err = images.Create(ctx, c.c, opts).Extract()
		if err == nil || tries == 1 || !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
			return err
		}
		got, gerr := images.Get(ctx, c.c, opts.ID).Extract()
		if gerr != nil {
			return fmt.Errorf("%w (looking for the image an earlier attempt may have created: %w)", err, gerr)
		}
		if got.Name != opts.Name || fmt.Sprint(got.Properties[PropCommit]) != opts.Properties[PropCommit] {
			return fmt.Errorf("%w: image %s exists but is not the one being published (name %q)", err, opts.ID, got.Name)
		}
		img = got
		return nil
	})
	return img, err
}

// get reads an image.
func (c *Client) get(ctx context.Context, id string) (*images.Image, error) {
	var img *images.Image
	err := c.do(ctx, func(ctx context.Context) error {
		var err error
		img, err = images.Get(ctx, c.c, id).Extract()
		return err
	})
	return img, err
}

// delete deletes an image; a retry finding it gone means an earlier
// attempt deleted it.
func (c *Client) delete(ctx context.Context, id string) error {
	tries := 0
	return c.do(ctx, func(ctx context.Context) error {
		tries++
		err := images.Delete(ctx, c.c, id).ExtractErr()
		if err != nil && tries > 1 && gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return nil
		}
		return err
	})
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// Resolve returns the version an image (by ID, or by unique name) records.
func (c *Client) Resolve(ctx context.Context, idOrName string) (*Version, error) {
	if idOrName == "" {
		return nil, errors.New("glance resolve: empty image ID or name")
	}
	img, err := c.get(ctx, idOrName)
	if err != nil && !gophercloud.ResponseCodeIs(err, 404) && !gophercloud.ResponseCodeIs(err, 400) {
		return nil, fmt.Errorf("glance resolve %s: %w", idOrName, describe(err))
	}
	if err != nil { // not an ID: a name
		var found []images.Image
		err := c.do(ctx, func(ctx context.Context) error {
			found = nil
			return images.List(c.c, images.ListOpts{Name: idOrName}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
				imgs, err := images.ExtractImages(p)
				found = append(found, imgs...)
				return true, err
			})
		})
		if err != nil {
			return nil, fmt.Errorf("glance resolve %s: %w", idOrName, describe(err))
		}
		switch len(found) {
		case 0:
			return nil, fmt.Errorf("glance resolve %s: %w", idOrName, ErrNotFound)
		case 1:
			img = &found[0]
		default:
			ids := make([]string, len(found))
			for i, f := range found {
				ids[i] = f.ID
			}
			return nil, fmt.Errorf("glance resolve %s: %w (%s): use an image ID", idOrName, ErrAmbiguous, strings.Join(ids, ", "))
		}
	}
	v, err := versionOf(img)
	if err != nil {
		return nil, fmt.Errorf("glance resolve %s: %w", idOrName, err)
	}
	return v, nil
}

// ListOptions filter List.
type ListOptions struct {
	Ref, OSName string
	// Tags the images must all have, besides "ostree".
	Tags []string
}

// listQuery adds custom-property filters to images.ListOpts.
type listQuery struct {
	images.ListOpts
	props map[string]string
}

func (q listQuery) ToImageListQuery() (string, error) {
	s, err := q.ListOpts.ToImageListQuery()
	if err != nil {
		return "", err
	}
	v, err := url.ParseQuery(strings.TrimPrefix(s, "?"))
	if err != nil {
		return "", err
	}
	for k, val := range q.props {
		if val != "" {
			v.Set(k, val)
		}
	}
	return "?" + v.Encode(), nil
}

// List returns the published versions, newest first. Images tagged
// "ostree" whose properties are not valid are left out.
func (c *Client) List(ctx context.Context, o ListOptions) ([]Version, error) {
	q := listQuery{
		ListOpts: images.ListOpts{Tags: append([]string{Tag}, o.Tags...), SortKey: "created_at", SortDir: "desc"},
		props:    map[string]string{PropRef: o.Ref, PropOSName: o.OSName},
	}
	var out []Version
	err := c.do(ctx, func(ctx context.Context) error {
		out = nil
		return c.listPages(ctx, q, o, &out)
	})
	if err != nil {
		return nil, fmt.Errorf("glance list: %w", describe(err))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

func (c *Client) listPages(ctx context.Context, q listQuery, o ListOptions, out *[]Version) error {
	return images.List(c.c, q).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		imgs, err := images.ExtractImages(p)
		if err != nil {
			return false, err
		}
		for i := range imgs {
			v, err := versionOf(&imgs[i])
			if err != nil {
				continue
			}
			// Filter here too: not every cloud filters on custom properties.
			if (o.Ref != "" && v.Ref != o.Ref) || (o.OSName != "" && v.OSName != o.OSName) {
				continue
			}
			*out = append(*out, *v)
		}
		return true, nil
	})
}

// Delete removes a published image.
func (c *Client) Delete(ctx context.Context, id string) error {
	if err := c.delete(ctx, id); err != nil {
		return fmt.Errorf("glance delete %s: %w", id, describe(err))
	}
	return nil
}

func versionOf(img *images.Image) (*Version, error) {
	prop := func(k string) string {
		s, _ := img.Properties[k].(string)
		return s
	}
	v := &Version{ImageID: img.ID, Name: img.Name, Ref: prop(PropRef), Version: prop(PropVersion),
		OSName: prop(PropOSName), Tags: img.Tags, Created: img.CreatedAt, Status: string(img.Status),
		Payload: prop(PropPayload), PayloadSize: img.SizeBytes,
		PayloadHashAlgo: prop("os_hash_algo"), PayloadHash: prop("os_hash_value")}
	if f := prop(PropDeltaFrom); f != "" {
		c, err := ostree.ParseChecksum(f)
		if err != nil {
			return nil, fmt.Errorf("image %s (%s): property %s: %w: %w", img.ID, img.Name, PropDeltaFrom, err, ErrNotPublished)
		}
		v.PayloadFrom = c
	}
	cs := prop(PropCommit)
	if cs == "" {
		return nil, fmt.Errorf("image %s (%s): %w", img.ID, img.Name, ErrNotPublished)
	}
	var err error
	if v.Commit, err = ostree.ParseChecksum(cs); err != nil {
		return nil, fmt.Errorf("image %s (%s): property %s: %w: %w", img.ID, img.Name, PropCommit, err, ErrNotPublished)
	}
	if v.Source, err = ParseSource(prop(PropRepo)); err != nil {
		return nil, fmt.Errorf("image %s (%s): property %s: %w: %w", img.ID, img.Name, PropRepo, err, ErrNotPublished)
	}
	if v.Ref != "" {
		if err := ostree.ValidateRefName(v.Ref); err != nil {
			return nil, fmt.Errorf("image %s (%s): property %s: %w: %w", img.ID, img.Name, PropRef, err, ErrNotPublished)
		}
	}
	return v, nil
}

// describe shortens gophercloud's HTTP errors ("GET URL: HTTP 503: body")
// and says when Glance could not be reached; the original error stays in
// the chain (errors.As, IsRetryable).
func describe(err error) error {
	if err == nil {
		return nil
	}
	var g *retry.GaveUpError
	if errors.As(err, &g) {
		return &retry.GaveUpError{Attempts: g.Attempts, Err: describe(g.Err)}
	}
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		switch ue.Actual {
		case 401, 403:
			return &httpError{fmt.Sprintf("%s %s: access denied (HTTP %d)", ue.Method, ue.URL, ue.Actual), err}
		case 404:
			return fmt.Errorf("%s %s: %w", ue.Method, ue.URL, ErrNotFound)
		}
		body := strings.Join(strings.Fields(string(ue.Body)), " ")
		if len(body) > 200 {
			body = body[:200] + "…"
		}
		msg := fmt.Sprintf("%s %s: HTTP %d: %s", ue.Method, ue.URL, ue.Actual, body)
		if IsRetryable(err) {
			msg = "Glance unavailable: " + msg
		}
		return &httpError{msg, err}
	}
	var reauth *gophercloud.ErrUnableToReauthenticate
	if errors.As(err, &reauth) {
		return &httpError{fmt.Sprintf("re-authenticating to Keystone failed: %v", reauth.ErrReauth), err}
	}
	if IsRetryable(err) {
		return fmt.Errorf("Glance unavailable: %w", err)
	}
	return err
}

// httpError is a shortened message for err, which it wraps.
type httpError struct {
	msg string
	err error
}

func (e *httpError) Error() string { return e.msg }
func (e *httpError) Unwrap() error { return e.err }
