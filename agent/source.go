package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/gostree/gostree/glance"
	"github.com/gostree/gostree/heatmeta"
	"github.com/gostree/gostree/internal/osauth"
	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/store"
	"github.com/gostree/gostree/ostree/store/httpstore"
	"github.com/gostree/gostree/swift"
)

// Source is where a target's commit is fetched from: a store serving an
// archive repository, or a Glance image whose data is a static delta.
type Source struct {
	// Desc says where, for logs and status ("glance image ID → swift://c/p").
	Desc  string
	Store store.Store
	// Glance and Image are set when the image carries a payload.
	Glance *glance.Client
	Image  *glance.Version
	// Ref is the ref to point at the commit (from metadata or the image).
	Ref string
}

// Resolver turns what metadata asks for into a Source. The default one
// (NewResolver) knows Glance, Swift, repository URLs and the configured
// remote; tests substitute their own.
type Resolver interface {
	Resolve(ctx context.Context, d *heatmeta.Desired) (*Source, error)
}

// PermanentError marks a failure that retrying cannot fix (an unknown
// image, a commit mismatch, a bad signature, a refused downgrade).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

func permanent(format string, a ...any) error {
	return &PermanentError{Err: fmt.Errorf(format, a...)}
}

type resolver struct {
	cfg    *Config
	remote *ostree.Remote // nil with allow_unsigned and no remote

	mu sync.Mutex
	os *osauth.Client
}

// NewResolver returns the default Resolver. remote is the configured
// remote (its TLS and proxy settings apply to HTTP sources), nil when none.
func NewResolver(cfg *Config, remote *ostree.Remote) Resolver {
	return &resolver{cfg: cfg, remote: remote}
}

func (r *resolver) openstack(ctx context.Context) (*osauth.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.os != nil {
		return r.os, nil
	}
	c, err := osauth.New(ctx, osauth.Options{Cloud: r.cfg.OpenStack.Cloud, CACert: r.cfg.OpenStack.CACert, Region: r.cfg.OpenStack.Region})
	if err != nil {
		return nil, fmt.Errorf("OpenStack credentials: %w", err)
	}
	r.os = c
	return c, nil
}

func (r *resolver) httpOptions() httpstore.Options {
	return httpstore.Options{UserAgent: "gostree-agent", MaxConns: r.cfg.Pull.Jobs, LowSpeedTime: r.cfg.Pull.LowSpeedTime}
}

func (r *resolver) urlStore(raw string) (store.Store, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" && u.Scheme != "file" {
		return nil, permanent("repository URL %q is not a URL", raw)
	}
	switch u.Scheme {
	case "http", "https", "file":
	default:
		return nil, permanent("repository URL %q: scheme must be http, https or file", describeURL(raw))
	}
	rm := r.remote
	if rm == nil {
		rm = ostree.NewRemote("agent", raw)
	}
	return ostree.RemoteStore(rm, raw, r.httpOptions())
}

func (r *resolver) swiftStore(ctx context.Context, container, prefix string) (store.Store, string, error) {
	if err := swift.ValidContainer(container); err != nil {
		return nil, "", permanent("swift container %q: %w", container, err)
	}
	desc := "swift://" + container
	if prefix != "" {
		desc += "/" + strings.Trim(prefix, "/")
	}
	if pub := r.cfg.OpenStack.SwiftPublicURL; pub != "" {
		u := strings.TrimRight(pub, "/") + "/" + url.PathEscape(container)
		if prefix != "" {
			u += "/" + strings.Trim(prefix, "/")
		}
		st, err := r.urlStore(u)
		return st, desc + " (public)", err
	}
	c, err := r.openstack(ctx)
	if err != nil {
		return nil, "", err
	}
	sc, err := openstack.NewObjectStorageV1(c.Provider, c.Endpoint)
	if err != nil {
		return nil, "", fmt.Errorf("object-store endpoint: %w", err)
	}
	st, err := swift.New(sc, container, prefix)
	return st, desc, err
}

func (r *resolver) Resolve(ctx context.Context, d *heatmeta.Desired) (*Source, error) {
	p := d.Payload
	switch p.Kind {
	case heatmeta.PayloadGlance:
		c, err := r.openstack(ctx)
		if err != nil {
			return nil, err
		}
		ic, err := openstack.NewImageV2(c.Provider, c.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("image endpoint: %w", err)
		}
		gc := glance.New(ic)
		v, err := gc.Resolve(ctx, p.GlanceImageID)
		if err != nil {
			if errors.Is(err, glance.ErrNotFound) || errors.Is(err, glance.ErrNotPublished) || errors.Is(err, glance.ErrAmbiguous) {
				return nil, &PermanentError{Err: fmt.Errorf("glance image %s: %w", p.GlanceImageID, err)}
			}
			return nil, fmt.Errorf("glance image %s: %w", p.GlanceImageID, err)
		}
		if v.Commit != d.Commit {
			return nil, permanent("glance image %s records commit %s, but the deployment asks for %s", p.GlanceImageID, v.Commit, d.Commit)
		}
		ref := d.Ref
		if ref == "" {
			ref = v.Ref
		}
		desc := "glance image " + v.ImageID
		if v.HasPayload() {
			return &Source{Desc: desc + " (payload)", Glance: gc, Image: v, Ref: ref}, nil
		}
		if v.Source.IsSwift() {
			st, sd, err := r.swiftStore(ctx, v.Source.Container, v.Source.Prefix)
			if err != nil {
				return nil, err
			}
			return &Source{Desc: desc + " → " + sd, Store: st, Ref: ref}, nil
		}
		st, err := r.urlStore(v.Source.URL)
		if err != nil {
			return nil, err
		}
		return &Source{Desc: desc + " → " + describeURL(v.Source.URL), Store: st, Ref: ref}, nil
	case heatmeta.PayloadSwift:
		st, desc, err := r.swiftStore(ctx, p.SwiftContainer, p.SwiftPrefix)
		if err != nil {
			return nil, err
		}
		return &Source{Desc: desc, Store: st, Ref: d.Ref}, nil
	case heatmeta.PayloadURL:
		st, err := r.urlStore(p.RepoURL)
		if err != nil {
			return nil, err
		}
		return &Source{Desc: describeURL(p.RepoURL), Store: st, Ref: d.Ref}, nil
	default:
		u := r.cfg.RepoURL
		if u == "" && r.remote != nil {
			u = r.remote.URL()
		}
		if u == "" {
			return nil, permanent("metadata names no source (glance_image_id, swift_container or ostree_repo_url) and the agent has no repo_url or remote url")
		}
		st, err := r.urlStore(u)
		if err != nil {
			return nil, err
		}
		return &Source{Desc: describeURL(u), Store: st, Ref: d.Ref}, nil
	}
}

// describeURL shows a repository URL for logs: as is without a query,
// else with its query (a TempURL signature) redacted.
func describeURL(u string) string {
	if p, err := url.Parse(u); err == nil && p.RawQuery == "" && p.User == nil {
		return u
	}
	return heatmeta.RedactURL(u)
}
