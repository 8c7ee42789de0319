package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"

	"github.com/gostree/gostree/glance"
	"github.com/gostree/gostree/heatmeta"
	"github.com/gostree/gostree/internal/heattest"
	"github.com/gostree/gostree/internal/osauth/osauthtest"
	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/swift"
)

// TestLiveAgentHeatGlanceSwift is the agent against the real thing: a
// Heat stack (OS::Heat::DeployedServer + an ostree software deployment
// over POLL_TEMP_URL / TEMP_URL_SIGNAL), Glance images naming the commits,
// the repository in a Swift container read with a Keystone token. The
// node is bootstrapped from heat_local, as a provisioned server is; the
// reboot is scripts' stand-in (finalize, boot the default entry). A stack
// update to a new image completes once the agent has booted it and passed
// its checks; an update whose required check fails rolls back and fails
// with the agent's reason.
func TestLiveAgentHeatGlanceSwift(t *testing.T) {
	henv := heattest.Open(t)
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }

	// Publish the signed repository to Swift and the versions to Glance.
	container := osauthtest.Name("gostree-agent")
	st, err := swift.New(henv.ObjectStore, container, "os")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateContainer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		all, _ := swift.New(henv.ObjectStore, container, "")
		var names []string
		all.List(c, "", func(oi swift.ObjectInfo) error { names = append(names, oi.Path); return nil })
		for _, n := range names {
			all.Remove(c, n)
		}
		containers.Delete(c, henv.ObjectStore, container)
	})
	src, err := ostree.Open(e.src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := swift.Push(ctx, src, st, swift.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	src.Close()
	ic, err := openstack.NewImageV2(henv.Client.Provider, henv.Client.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	gc := glance.New(ic)
	images := map[int]string{}
	for _, v := range []int{2, 3} {
		img, err := gc.Publish(ctx, glance.PublishOptions{Name: osauthtest.Name("agenttest-v"), Commit: e.commits[v], Ref: "os/stable",
			Version: string(rune('0' + v)), OSName: "testos", Source: glance.Source{Container: container, Prefix: "os"}})
		if err != nil {
			t.Fatal(err)
		}
		images[v] = img.ImageID
		t.Cleanup(func() { gc.Delete(context.Background(), img.ImageID) })
	}
	step("published v1..v3 to Swift, v2 and v3 to Glance")

	// The stack asks for the commit the node runs; the agent says so.
	tmpl, err := heattest.Template(heattest.DeployedServerTemplate)
	if err != nil {
		t.Fatal(err)
	}
	s, err := henv.CreateStack(ctx, "gostree-agent", tmpl, map[string]any{"ostree_commit": e.commits[1].String(), "ostree_ref": "os/stable"})
	if err != nil {
		t.Fatal(err)
	}
	boot, err := s.HeatLocal(ctx, heattest.ServerResource)
	if err != nil {
		t.Fatal(err)
	}
	heatLocal := filepath.Join(e.dir, "cfn-init-data")
	if err := os.WriteFile(heatLocal, boot, 0o600); err != nil {
		t.Fatal(err)
	}
	e.cfg.Metadata = heatmeta.Config{Collectors: []string{heatmeta.SourceHeatLocal}, HeatLocal: heatmeta.HeatLocalConfig{Path: []string{heatLocal}}}
	e.setHealth(true)
	a := e.agent()
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx, nil) }()
	defer func() {
		stop()
		<-done
	}()
	if _, reason, err := s.Wait(ctx, heattest.CreateComplete); err != nil {
		t.Fatalf("create: %v (%s)", err, reason)
	}
	step("CREATE_COMPLETE: the agent reported the running commit")
	if got, _ := s.Output(ctx, "booted_commit"); got != e.commits[1].String() {
		t.Errorf("booted_commit output %v, want v1", got)
	}

	// Update to the v2 image: resolve in Glance, pull from Swift, stage,
	// reboot, check, signal.
	if err := s.Update(ctx, map[string]any{"ostree_commit": e.commits[2].String(), "glance_image_id": images[2]}); err != nil {
		t.Fatal(err)
	}
	if status, reason, err := s.Wait(ctx, heattest.UpdateComplete); err != nil {
		t.Fatalf("update to v2: %s %s %v", status, reason, err)
	}
	step("UPDATE_COMPLETE: v2 booted")
	if got := e.booted(); got != e.commits[2] {
		t.Fatalf("booted %s, want v2", got.Short())
	}
	if got, _ := s.Output(ctx, "booted_commit"); got != e.commits[2].String() {
		t.Errorf("booted_commit output %v, want v2", got)
	}
	if got, _ := s.Output(ctx, "previous_commit"); got != e.commits[1].String() {
		t.Errorf("previous_commit output %v, want v1", got)
	}

	// v3's required health check fails: rollback, and the update fails
	// with the agent's reason.
	e.setHealth(false)
	if err := s.Update(ctx, map[string]any{"ostree_commit": e.commits[3].String(), "glance_image_id": images[3]}); err != nil {
		t.Fatal(err)
	}
	status, reason, err := s.Wait(ctx, heattest.UpdateFailed)
	if err != nil {
		t.Fatalf("update to v3: %s %s %v", status, reason, err)
	}
	step("UPDATE_FAILED: " + reason)
	if _, rreason, err := s.ResourceStatus(ctx, heattest.DeploymentResource); err != nil ||
		!strings.Contains(rreason+reason, "health check failed") && !strings.Contains(rreason+reason, "status code") {
		t.Errorf("deployment reason %q / stack reason %q (%v)", rreason, reason, err)
	}
	if got := e.booted(); got != e.commits[2] {
		t.Fatalf("after the failed update booted %s, want v2", got.Short())
	}
	if e.defaultCommit() != e.commits[2] {
		t.Fatal("the default deployment is not v2 after the rollback")
	}
	st2 := a.State()
	if st2.Blocked == nil || st2.Blocked.Commit != e.commits[3] {
		t.Errorf("v3 not blocked: %+v", st2.Blocked)
	}

	// An image Glance does not know: the update fails at once, naming it.
	unknown := "00000000-0000-4000-8000-00000000dead"
	if err := s.Update(ctx, map[string]any{"ostree_commit": e.commits[4].String(), "glance_image_id": unknown}); err != nil {
		t.Fatal(err)
	}
	status, reason, err = s.Wait(ctx, heattest.UpdateFailed)
	if err != nil || !strings.Contains(reason, unknown) || !strings.Contains(reason, "not found") {
		t.Fatalf("unknown image: %s %q %v", status, reason, err)
	}
	step("UPDATE_FAILED for an unknown image: " + reason)
	if got := e.booted(); got != e.commits[2] {
		t.Fatalf("booted %s after the unknown image, want v2", got.Short())
	}
}
