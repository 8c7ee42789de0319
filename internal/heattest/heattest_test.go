package heattest_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"

	"github.com/gostree/gostree/heatmeta"
	"github.com/gostree/gostree/internal/heattest"
)

// TestLiveStackLifecycle checks the harness itself against the real Heat:
// a stack that needs no signal, an --existing update, a bad update the
// wait reports as an error, and a delete that leaves neither the stack
// nor the TempURL container Heat 19 forgets.
func TestLiveStackLifecycle(t *testing.T) {
	env := heattest.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmpl, err := heattest.Template(heattest.DeployedServerTemplate)
	if err != nil {
		t.Fatal(err)
	}
	a, b := strings.Repeat("0a", 32), strings.Repeat("0b", 32)
	s, err := env.CreateStack(ctx, "gostree-heattest", tmpl, map[string]any{"ostree_commit": a, "signal_transport": "NO_SIGNAL"})
	if err != nil {
		t.Fatal(err)
	}
	if st, _, err := s.Wait(ctx, heattest.CreateComplete); err != nil || st != heattest.CreateComplete {
		t.Fatalf("%s %v", st, err)
	}
	occ, err := s.CollectConfig(ctx, heattest.ServerResource)
	if err != nil || !strings.Contains(string(occ), `"metadata_url"`) {
		t.Fatalf("os-collect-config %s, %v", occ, err)
	}
	cfg, err := s.AgentConfig(ctx, heattest.ServerResource, heatmeta.Config{HeatLocal: heatmeta.HeatLocalConfig{Path: []string{"/x"}}})
	if err != nil || !slices.Contains(cfg.Collectors, heatmeta.SourceRequest) || !strings.Contains(cfg.Request.MetadataURL, "temp_url_sig=") ||
		len(cfg.HeatLocal.Path) != 1 {
		t.Fatalf("agent config %+v, %v", cfg.Collectors, err)
	}

	if err := s.Update(ctx, map[string]any{"ostree_commit": b}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Wait(ctx, heattest.UpdateComplete); err != nil {
		t.Fatal(err)
	}
	md, err := s.Metadata(ctx, heattest.ServerResource)
	if err != nil || !strings.Contains(string(md), b) || strings.Contains(string(md), a) {
		t.Fatalf("metadata after the update does not name only %s: %v", b, err)
	}

	// Heat refuses the update outright (the parameter constraint): the
	// stack stays as it was.
	if err := s.Update(ctx, map[string]any{"ostree_commit": "latest"}); err == nil || !strings.Contains(err.Error(), "ostree_commit") {
		t.Fatalf("update with a bad commit: %v", err)
	}
	if st, _, err := s.Status(ctx); err != nil || st != heattest.UpdateComplete {
		t.Fatalf("after a refused update: %s %v", st, err)
	}
	// Waiting for a status the stack will not reach is bounded.
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if st, _, err := s.Wait(short, heattest.UpdateFailed); err == nil {
		t.Fatalf("wait for UPDATE_FAILED returned %s without an error", st)
	}

	if err := s.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	// Heat still shows a deleted stack by its id, as DELETE_COMPLETE.
	if st, _, err := s.Status(ctx); err == nil && st != heattest.DeleteComplete {
		t.Errorf("the deleted stack is %s", st)
	}
	pages, err := containers.List(env.ObjectStore, containers.ListOpts{Prefix: s.Name}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := containers.ExtractNames(pages); len(names) != 0 {
		t.Errorf("containers left behind: %v", names)
	}
	// A second delete (the test's cleanup does one) is not an error.
	if err := s.Delete(ctx); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("second delete: %v", err)
	}
}
