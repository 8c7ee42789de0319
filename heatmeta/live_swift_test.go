package heatmeta_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/objects"

	"github.com/gostree/gostree/heatmeta"
	"github.com/gostree/gostree/internal/osauth/osauthtest"
)

// TestLiveSwiftTempURL runs the request source and the TEMP_URL_SIGNAL
// transport against the real Swift of scripts/openstack-up.sh, with
// TempURLs made the way Heat makes them (GET for POLL_TEMP_URL, PUT for
// the signal).
func TestLiveSwiftTempURL(t *testing.T) {
	osauthtest.Setup(t)
	c := osauthtest.Client(t)
	sc := osauthtest.ObjectStore(t, c)
	ctx := context.Background()
	cont := osauthtest.Name("gostree-heatmeta")
	if err := containers.Create(ctx, sc, cont, nil).Err; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		objects.Delete(ctx, sc, cont, "metadata", nil)
		objects.Delete(ctx, sc, cont, "signal", nil)
		containers.Delete(ctx, sc, cont)
	})
	put := func(name string, b []byte) {
		t.Helper()
		if err := objects.Create(ctx, sc, cont, name, objects.CreateOpts{Content: bytes.NewReader(b), ContentType: "application/json"}).Err; err != nil {
			t.Fatal(err)
		}
	}
	put("metadata", []byte(`{"deployments": [], "os-collect-config": {"collectors": ["request"]}}`))
	getURL, err := objects.CreateTempURL(ctx, sc, cont, "metadata", objects.CreateTempURLOpts{Method: objects.GET, TTL: 600, Digest: "sha256"})
	if err != nil {
		t.Fatal(err)
	}
	src := &heatmeta.RequestSource{URL: getURL, Client: c.HTTP}
	md, err := src.Fetch(ctx)
	if err != nil || len(md.Docs) != 1 {
		t.Fatalf("first fetch: %v %+v", err, md)
	}
	if _, err := src.Fetch(ctx); !errors.Is(err, heatmeta.ErrNotModified) {
		t.Fatalf("second fetch: %v, want ErrNotModified from Swift's 304", err)
	}
	put("metadata", []byte(`{"deployments": [], "v": 2}`))
	md, err = src.Fetch(ctx)
	if err != nil || !strings.Contains(string(md.Docs[0].Raw), `"v":2`) {
		t.Fatalf("after change: %v %s", err, md.Docs)
	}
	// A wrong signature: permanent, and not in the message.
	badURL := strings.Replace(getURL, "temp_url_sig=", "temp_url_sig=00", 1)
	_, err = (&heatmeta.RequestSource{URL: badURL, Client: c.HTTP}).Fetch(ctx)
	if err == nil || heatmeta.IsRetryable(err) || strings.Contains(err.Error(), "temp_url_sig") {
		t.Fatalf("bad signature: %v", err)
	}

	putURL, err := objects.CreateTempURL(ctx, sc, cont, "signal", objects.CreateTempURLOpts{Method: objects.PUT, TTL: 600, Digest: "sha256"})
	if err != nil {
		t.Fatal(err)
	}
	tgt := heatmeta.SignalTarget{Transport: heatmeta.TempURLSignal, URL: putURL, Verb: "PUT"}
	out := heatmeta.Outcome{Stdout: strings.Repeat("x", 2<<20) + "tail\n", Outputs: map[string]any{"booted_commit": strings.Repeat("ab", 32)}}
	if err := (&heatmeta.Signaller{HTTPClient: c.HTTP}).Send(ctx, tgt, out); err != nil {
		t.Fatal(err)
	}
	res := objects.Download(ctx, sc, cont, "signal", nil)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil || len(b) > heatmeta.MaxSignalBytes {
		t.Fatalf("stored signal: %d bytes, %v", len(b), err)
	}
	if body["deploy_status_code"] != float64(0) || !strings.HasSuffix(body["deploy_stdout"].(string), "tail\n") {
		t.Errorf("signal body: code %v", body["deploy_status_code"])
	}
}
