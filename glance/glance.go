package glance

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"

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
type Client struct {
	c *gophercloud.ServiceClient
}

// New returns a client using c, from openstack.NewImageV2.
func New(c *gophercloud.ServiceClient) *Client { return &Client{c: c} }

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
	img, err := images.Create(ctx, c.c, opts).Extract()
	if err != nil {
		return nil, fmt.Errorf("glance publish: creating image %q: %w", name, describe(err))
	}
	if o.Payload != nil {
		if err := c.uploadPayload(ctx, img.ID, o.Payload); err != nil {
			// Nothing half-published: an image promising a payload it lacks is removed.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if derr := images.Delete(dctx, c.c, img.ID).ExtractErr(); derr != nil {
				return nil, fmt.Errorf("glance publish: uploading the payload of image %s: %w (and deleting the image failed: %v)", img.ID, err, describe(derr))
			}
			return nil, fmt.Errorf("glance publish: uploading the payload of image %s (deleted again): %w", img.ID, err)
		}
		if img, err = images.Get(ctx, c.c, img.ID).Extract(); err != nil {
			return nil, fmt.Errorf("glance publish: %w", describe(err))
		}
	}
	return versionOf(img)
}

// Resolve returns the version an image (by ID, or by unique name) records.
func (c *Client) Resolve(ctx context.Context, idOrName string) (*Version, error) {
	if idOrName == "" {
		return nil, errors.New("glance resolve: empty image ID or name")
	}
	img, err := images.Get(ctx, c.c, idOrName).Extract()
	if err != nil && !gophercloud.ResponseCodeIs(err, 404) && !gophercloud.ResponseCodeIs(err, 400) {
		return nil, fmt.Errorf("glance resolve %s: %w", idOrName, describe(err))
	}
	if err != nil { // not an ID: a name
		var found []images.Image
		err := images.List(c.c, images.ListOpts{Name: idOrName}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
			imgs, err := images.ExtractImages(p)
			found = append(found, imgs...)
			return true, err
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
	err := images.List(c.c, q).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
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
			out = append(out, *v)
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("glance list: %w", describe(err))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Delete removes a published image.
func (c *Client) Delete(ctx context.Context, id string) error {
	if err := images.Delete(ctx, c.c, id).ExtractErr(); err != nil {
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

// describe shortens gophercloud's HTTP errors.
func describe(err error) error {
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		switch ue.Actual {
		case 401, 403:
			return fmt.Errorf("%s %s: access denied (HTTP %d)", ue.Method, ue.URL, ue.Actual)
		case 404:
			return fmt.Errorf("%s %s: %w", ue.Method, ue.URL, ErrNotFound)
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", ue.Method, ue.URL, ue.Actual, strings.TrimSpace(string(ue.Body)))
	}
	return err
}
