package glance_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/gostree/gostree/glance"
	"github.com/gostree/gostree/internal/osauth/osauthtest"
	"github.com/gostree/gostree/ostree"
)

// proxy forwards to Glance; it cuts the first image-data response after
// cutAt bytes, or flips a byte of every one (corrupt), and records the
// Range headers it saw.
type proxy struct {
	upstream string
	cutAt    int
	corrupt  bool
	mu       sync.Mutex
	cuts     int
	ranges   []string
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), r.Body)
	req.Header = r.Header.Clone()
	req.ContentLength = r.ContentLength
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	isData := r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/file")
	p.mu.Lock()
	cut := isData && p.cutAt > 0 && p.cuts == 0
	if isData {
		p.ranges = append(p.ranges, r.Header.Get("Range"))
		if cut {
			p.cuts++
		}
	}
	p.mu.Unlock()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	switch {
	case cut:
		io.CopyN(w, resp.Body, int64(p.cutAt))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-body
	case isData && p.corrupt:
		b, _ := io.ReadAll(resp.Body)
		if len(b) > 0 {
			b[len(b)/2] ^= 0xff
		}
		w.Write(b)
	default:
		io.Copy(w, resp.Body)
	}
}

// through returns a glance client whose requests go through p.
func through(t *testing.T, ic *gophercloud.ServiceClient, p *proxy) *glance.Client {
	t.Helper()
	base := strings.TrimSuffix(ic.Endpoint, "/")
	p.upstream = base
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	c := *ic
	c.Endpoint = srv.URL + "/"
	c.ResourceBase = strings.Replace(ic.ResourceBaseURL(), base, srv.URL, 1)
	return glance.New(&c)
}

func TestPayloadDownloadResumes(t *testing.T) {
	gc, ic := setup(t)
	ctx := context.Background()
	data := make([]byte, 3<<20+123)
	rand.Read(data)
	v, err := gc.Publish(ctx, glance.PublishOptions{Name: osauthtest.Name("payload"), Commit: ostree.SumBytes(data),
		Source: glance.Source{Container: "c"}, Payload: &glance.Payload{Data: bytes.NewReader(data), Size: int64(len(data))}})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, ic, v.ImageID)
	if !v.HasPayload() || v.PayloadSize != int64(len(data)) || v.PayloadHashAlgo != "sha512" || len(v.PayloadHash) != 128 {
		t.Fatalf("published payload: %+v", v)
	}
	r, err := gc.Resolve(ctx, v.ImageID)
	if err != nil || !r.HasPayload() || r.PayloadHash != v.PayloadHash {
		t.Fatalf("resolve: %+v %v", r, err)
	}

	p := &proxy{cutAt: 1 << 20}
	f, err := os.Create(filepath.Join(t.TempDir(), "payload"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := through(t, ic, p).DownloadPayload(ctx, r, f, glance.DownloadOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(f.Name())
	if !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes, differing from the %d uploaded", len(got), len(data))
	}
	if p.cuts != 1 || len(p.ranges) != 2 || p.ranges[0] != "" || !strings.HasPrefix(p.ranges[1], "bytes=") || p.ranges[1] == "bytes=0-" {
		t.Fatalf("cuts %d, Range headers %q: want one cut, then a resumed range", p.cuts, p.ranges)
	}

	// A partial file from an earlier run is resumed, not restarted.
	f2, _ := os.Create(filepath.Join(t.TempDir(), "partial"))
	defer f2.Close()
	f2.Write(data[:12345])
	p2 := &proxy{}
	if err := through(t, ic, p2).DownloadPayload(ctx, r, f2, glance.DownloadOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(f2.Name()); !bytes.Equal(got, data) || len(p2.ranges) != 1 || p2.ranges[0] != "bytes=12345-" {
		t.Fatalf("resume of a partial file: ranges %q, equal %v", p2.ranges, bytes.Equal(got, data))
	}

	// Damaged in transit: refused against os_hash_value, and the file emptied.
	f3, _ := os.Create(filepath.Join(t.TempDir(), "corrupt"))
	defer f3.Close()
	err = through(t, ic, &proxy{corrupt: true}).DownloadPayload(ctx, r, f3, glance.DownloadOptions{})
	if !errors.Is(err, glance.ErrPayload) || !strings.Contains(err.Error(), "os_hash_value") {
		t.Fatalf("corrupted download: %v", err)
	}
	if fi, _ := f3.Stat(); fi.Size() != 0 {
		t.Fatalf("a corrupted download left %d bytes", fi.Size())
	}

	// Applying bytes that are not a static delta fails before writing anything.
	repo := filepath.Join(t.TempDir(), "repo")
	rp, err := ostree.Init(repo, ostree.ModeArchive, ostree.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	if err := glance.ApplyPayload(ctx, rp, r, f, glance.ApplyOptions{}); !errors.Is(err, glance.ErrPayload) {
		t.Fatalf("applying a payload that is not a delta: %v", err)
	}

	// An image without payload.
	plain, err := gc.Publish(ctx, glance.PublishOptions{Name: osauthtest.Name("nopayload"), Commit: ostree.SumBytes(nil), Source: glance.Source{Container: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, ic, plain.ImageID)
	if err := gc.DownloadPayload(ctx, plain, f3, glance.DownloadOptions{}); !errors.Is(err, glance.ErrPayload) {
		t.Fatalf("download from an image without payload: %v", err)
	}
}

// TestGlanceDownOr5xx: clear errors when Glance is unreachable or failing;
// a payload download retries 5xx answers.
func TestGlanceDownOr5xx(t *testing.T) {
	gc, ic := setup(t)
	ctx := context.Background()
	dead := *ic
	dead.Endpoint = "http://127.0.0.1:1/"
	dead.ResourceBase = "http://127.0.0.1:1/v2/"
	if _, err := glance.New(&dead).Resolve(ctx, "00000000-0000-0000-0000-000000000000"); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Glance down: %v", err)
	}

	data := []byte(strings.Repeat("payload ", 1000))
	v, err := gc.Publish(ctx, glance.PublishOptions{Name: osauthtest.Name("flaky"), Commit: ostree.SumBytes(data),
		Source: glance.Source{Container: "c"}, Payload: &glance.Payload{Data: bytes.NewReader(data), Size: int64(len(data))}})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, ic, v.ImageID)
	fails := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fails < 2 {
			fails++
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		(&proxy{upstream: strings.TrimSuffix(ic.Endpoint, "/")}).ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := *ic
	c.Endpoint = srv.URL + "/"
	c.ResourceBase = srv.URL + "/v2/"
	f, _ := os.Create(filepath.Join(t.TempDir(), "p"))
	defer f.Close()
	if err := glance.New(&c).DownloadPayload(ctx, v, f, glance.DownloadOptions{Backoff: time.Millisecond}); err != nil {
		t.Fatalf("download after two 503s: %v", err)
	}
	fails = -1000
	f2, _ := os.Create(filepath.Join(t.TempDir(), "p2"))
	defer f2.Close()
	err = glance.New(&c).DownloadPayload(ctx, v, f2, glance.DownloadOptions{Retries: 2, Backoff: time.Millisecond})
	if !errors.Is(err, glance.ErrPayload) || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "gave up after 2 retries") {
		t.Fatalf("download from a failing Glance: %v", err)
	}
}
