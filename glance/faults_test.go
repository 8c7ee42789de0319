package glance_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/gostree/gostree/glance"
	"github.com/gostree/gostree/internal/osauth/osauthtest"
	"github.com/gostree/gostree/internal/retry"
	"github.com/gostree/gostree/ostree"
)

var fast = retry.Policy{Retries: 3, Base: 10 * time.Millisecond}

// via returns a glance client whose requests go to base (scheme://host:port)
// instead of Glance.
func via(t *testing.T, ic *gophercloud.ServiceClient, base string) *glance.Client {
	t.Helper()
	u, err := url.Parse(ic.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	orig := u.Scheme + "://" + u.Host
	c := *ic
	c.Endpoint = strings.Replace(ic.Endpoint, orig, base, 1)
	c.ResourceBase = strings.Replace(ic.ResourceBaseURL(), orig, base, 1)
	gc := glance.New(&c)
	gc.Retry = fast
	return gc
}

func upstream(t *testing.T, ic *gophercloud.ServiceClient) string {
	u, err := url.Parse(ic.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return u.Scheme + "://" + u.Host
}

func method(m, suffix string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.Method == m && strings.HasSuffix(r.URL.Path, suffix) }
}

// TestGlanceFaults: through a proxy that answers 503 or resets the
// connection, every idempotent call succeeds after retries; publishing
// whose create or upload took effect but whose answer was lost makes one
// image, not two; a Glance that stays down or keeps answering 503 gives a
// clear, retryable error naming the endpoint after the retries; a
// permanent error is not retried.
func TestGlanceFaults(t *testing.T) {
	gc, ic := setup(t)
	ctx := context.Background()
	p := osauthtest.NewFaultProxy(t, upstream(t, ic))
	fc := via(t, ic, p.URL)
	ref := osauthtest.Name("faults/x86_64/stable")
	commit := ostree.SumBytes([]byte("faults"))
	v, err := gc.Publish(ctx, glance.PublishOptions{Name: osauthtest.Name("faults"), Commit: commit, Ref: ref, Version: "1",
		Source: glance.Source{Container: "repo"}})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, ic, v.ImageID)

	for _, f := range []osauthtest.Fault{osauthtest.Answer503, osauthtest.Reset} {
		p.Fail(3, f, nil)
		got, err := fc.Resolve(ctx, v.ImageID)
		if err != nil || got.Commit != commit || p.Failed() != 3 {
			t.Fatalf("resolve by ID, fault %d 3 times: %+v, %v (%d failed)", f, got, err, p.Failed())
		}
		p.Fail(2, f, method(http.MethodGet, "/v2/images"))
		got, err = fc.Resolve(ctx, v.Name)
		if err != nil || got.ImageID != v.ImageID || p.Failed() != 2 {
			t.Fatalf("resolve by name, fault %d on the listing: %+v, %v (%d failed)", f, got, err, p.Failed())
		}
		p.Fail(3, f, nil)
		vs, err := fc.List(ctx, glance.ListOptions{Ref: ref})
		if err != nil || len(vs) != 1 || vs[0].ImageID != v.ImageID || p.Failed() != 3 {
			t.Fatalf("list, fault %d 3 times: %+v, %v (%d failed)", f, vs, err, p.Failed())
		}
	}

	// The create took effect but its answer was lost: the retry adopts the image.
	name := osauthtest.Name("lost-create")
	p.Fail(1, osauthtest.ForwardThenReset, method(http.MethodPost, "/v2/images"))
	v2, err := fc.Publish(ctx, glance.PublishOptions{Name: name, Commit: commit, Source: glance.Source{Container: "repo"}})
	if err != nil {
		t.Fatalf("publish with a lost create answer: %v", err)
	}
	cleanup(t, ic, v2.ImageID)
	if p.Failed() != 1 {
		t.Fatalf("%d creates failed, want 1", p.Failed())
	}
	if n := count(t, ic, name); n != 1 {
		t.Fatalf("%d images named %s, want 1", n, name)
	}
	// The upload took effect but its answer was lost; then the create is refused twice.
	data := bytes.Repeat([]byte("payload "), 4096)
	for _, tc := range []struct {
		fault  osauthtest.Fault
		match  func(*http.Request) bool
		failed int // of 2 allowed
	}{
		{osauthtest.ForwardThenReset, method(http.MethodPut, "/file"), 1}, // the retry finds the image active
		{osauthtest.Reset, method(http.MethodPut, "/file"), 2},
		{osauthtest.Answer503, method(http.MethodPost, "/v2/images"), 2},
	} {
		name := osauthtest.Name("payload-faults")
		p.Fail(2, tc.fault, tc.match)
		v3, err := fc.Publish(ctx, glance.PublishOptions{Name: name, Commit: commit, Source: glance.Source{Container: "repo"},
			Payload: &glance.Payload{Data: bytes.NewReader(data), Size: int64(len(data))}})
		if err != nil {
			t.Fatalf("publish with a payload, fault %d twice: %v", tc.fault, err)
		}
		cleanup(t, ic, v3.ImageID)
		if !v3.HasPayload() || v3.PayloadSize != int64(len(data)) || p.Failed() != tc.failed || count(t, ic, name) != 1 {
			t.Fatalf("publish with a payload, fault %d: %+v, %d failed, %d images", tc.fault, v3, p.Failed(), count(t, ic, name))
		}
	}
	// A DELETE that took effect but whose answer was lost is done.
	p.Fail(1, osauthtest.ForwardThenReset, method(http.MethodDelete, v2.ImageID))
	if err := fc.Delete(ctx, v2.ImageID); err != nil || p.Failed() != 1 {
		t.Fatalf("delete with a lost answer: %v (%d failed)", err, p.Failed())
	}
	if _, err := gc.Resolve(ctx, v2.ImageID); !errors.Is(err, glance.ErrNotFound) {
		t.Fatalf("deleted image: %v", err)
	}

	// Permanent errors are not retried.
	p.Fail(0, osauthtest.Answer503, nil)
	n := len(p.Requests())
	if _, err := fc.Resolve(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, glance.ErrNotFound) || glance.IsRetryable(err) {
		t.Fatalf("missing image: %v", err)
	}
	if got := len(p.Requests()) - n; got != 2 { // GET by ID, then the listing by name
		t.Fatalf("missing image: %d requests, want 2", got)
	}

	// Glance answering 503 for good, and Glance down.
	p.Fail(1000, osauthtest.Answer503, nil)
	_, err = fc.Resolve(ctx, v.ImageID)
	if err == nil || !glance.IsRetryable(err) || !strings.Contains(err.Error(), "Glance unavailable") || !strings.Contains(err.Error(), "HTTP 503") ||
		!strings.Contains(err.Error(), p.URL) || !strings.Contains(err.Error(), "gave up after 4 attempts") || p.Failed() != 4 {
		t.Fatalf("Glance answering 503: %v (%d requests)", err, p.Failed())
	}
	dead := osauthtest.DeadURL(t)
	for name, call := range map[string]func(*glance.Client) error{
		"resolve": func(c *glance.Client) error { _, err := c.Resolve(ctx, v.ImageID); return err },
		"list":    func(c *glance.Client) error { _, err := c.List(ctx, glance.ListOptions{}); return err },
		"publish": func(c *glance.Client) error {
			_, err := c.Publish(ctx, glance.PublishOptions{Commit: commit, Source: glance.Source{Container: "repo"}})
			return err
		},
	} {
		err := call(via(t, ic, dead))
		if err == nil || !glance.IsRetryable(err) || !strings.Contains(err.Error(), "Glance unavailable") ||
			!strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "gave up after 4 attempts") {
			t.Fatalf("%s with Glance down: %v", name, err)
		}
	}
}

// count returns how many images are named name.
func count(t *testing.T, ic *gophercloud.ServiceClient, name string) int {
	t.Helper()
	pages, err := images.List(ic, images.ListOpts{Name: name}).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := images.ExtractImages(pages)
	if err != nil {
		t.Fatal(err)
	}
	return len(imgs)
}
