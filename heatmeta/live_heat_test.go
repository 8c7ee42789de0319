package heatmeta_test

// Live tests of the contrib/heat templates against the real Heat of
// scripts/openstack-up.sh, driven through internal/heattest: a node's
// metadata collection, what ParseWanted makes of it, and the signals that
// complete or fail the stack, for both poll transports CI can run
// (POLL_TEMP_URL, POLL_SERVER_HEAT).

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"

	"github.com/gostree/gostree/heatmeta"
	"github.com/gostree/gostree/internal/heattest"
)

// liveNode is a test node: a collector bootstrapped from the server's
// heat_local document, as a provisioned node would be.
type liveNode struct {
	t *testing.T
	c *heatmeta.Collector
}

func newLiveNode(t *testing.T, ctx context.Context, server *heattest.Stack) *liveNode {
	t.Helper()
	dir := t.TempDir()
	doc, err := server.HeatLocal(ctx, heattest.ServerResource)
	if err != nil {
		t.Fatal(err)
	}
	heatLocal := filepath.Join(dir, "cfn-init-data")
	if err := os.WriteFile(heatLocal, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	cache, err := heatmeta.OpenCache(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := heatmeta.NewCollector(heatmeta.CollectorOptions{Cache: cache, Config: heatmeta.Config{
		Collectors: []string{heatmeta.SourceHeatLocal, heatmeta.SourceHeat, heatmeta.SourceRequest, heatmeta.SourceLocal},
		HeatLocal:  heatmeta.HeatLocalConfig{Path: []string{heatLocal}},
		Local:      heatmeta.LocalConfig{Path: []string{filepath.Join(dir, "local-data")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &liveNode{t: t, c: c}
}

// await collects (bounded) until the ostree deployment asks for commit.
func (n *liveNode) await(ctx context.Context, commit string) (*heatmeta.Collection, *heatmeta.Desired) {
	n.t.Helper()
	var last *heatmeta.Collection
	for range 60 {
		r, err := n.c.Collect(ctx)
		if err != nil {
			n.t.Fatal(err)
		}
		last = r
		if w, err := r.Wanted(); err == nil {
			for _, d := range w.Deployments {
				if d.Err != nil {
					n.t.Fatalf("deployment %s: %v", d.Deployment.ID, d.Err)
				}
				if d.Desired.Commit.String() == commit {
					return r, d.Desired
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	n.t.Fatalf("metadata never asked for %s (collectors %v, errors %v)", commit, last.Collectors, last.Errors)
	return nil, nil
}

// runOstreeDeployment is a node's life under a stack made from one of the
// contrib templates: create → signal success → update → signal failure →
// update → signal success. server is the stack holding the server
// resource (the stack itself, or a NovaStandIn's nested stack).
func runOstreeDeployment(t *testing.T, ctx context.Context, env *heattest.Env, stack *heattest.Stack, server *heattest.Stack, wantSource string, wantSignal heatmeta.Transport) {
	a, b, c := strings.Repeat("a1", 32), strings.Repeat("b2", 32), strings.Repeat("c3", 32)
	start := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(start).Seconds(), what) }
	node := newLiveNode(t, ctx, server)
	step("bootstrapped from heat_local")
	sig := &heatmeta.Signaller{HTTPClient: env.Client.HTTP, Attempts: 3, Backoff: 100 * time.Millisecond}

	// Create: the deployment waits for the node's signal.
	r, d := node.await(ctx, a)
	step("collected the CREATE deployment")
	if !contains(r.Collectors, wantSource) || len(r.Errors) != 0 {
		t.Fatalf("collectors %v (want %s), errors %v", r.Collectors, wantSource, r.Errors)
	}
	if d.Origin != heatmeta.OriginDeployment || d.Action != "CREATE" || d.DeploymentName != "ostree" ||
		d.Ref != "exampleos/x86_64/stable" || d.Version != "2026.11.1" ||
		d.Payload.Kind != heatmeta.PayloadGlance || d.Payload.GlanceImageID != "0b5e0c4e-3a52-4b8f-9a39-7d3b1f0c2e11" ||
		d.Reboot.Mode != heatmeta.RebootImmediate || d.AllowDowngrade || d.ServerID == "" {
		t.Errorf("desired %+v", d)
	}
	if d.Signal.Transport != wantSignal {
		t.Errorf("signal %v, want %s", d.Signal, wantSignal)
	}
	if st, _, err := stack.Status(ctx); err != nil || st != "CREATE_IN_PROGRESS" {
		t.Errorf("before the signal the stack is %s (%v), want CREATE_IN_PROGRESS", st, err)
	}
	zero := strings.Repeat("0", 64)
	if err := sig.Send(ctx, d.Signal, heatmeta.Outcome{Stdout: "booted " + a + "\n",
		Outputs: map[string]any{"booted_commit": a, "previous_commit": zero}}); err != nil {
		t.Fatal(err)
	}
	if err := node.c.Commit(r); err != nil {
		t.Fatal(err)
	}
	if _, _, err := stack.Wait(ctx, heattest.CreateComplete); err != nil {
		t.Fatal(err)
	}
	step("signalled success: CREATE_COMPLETE")
	if got, err := stack.Output(ctx, "booted_commit"); err != nil || got != a {
		t.Errorf("output booted_commit = %v (%v), want %s", got, err, a)
	}
	if got, err := stack.Output(ctx, "previous_commit"); err != nil || got != zero {
		t.Errorf("output previous_commit = %v (%v)", got, err)
	}
	if stack == server {
		// The os_collect_config output (the bootstrap README.md tells
		// operators to copy) is what the node polls with.
		out, err := stack.Output(ctx, "os_collect_config")
		if err != nil {
			t.Fatal(err)
		}
		occ, err := stack.CollectConfig(ctx, heattest.ServerResource)
		if err != nil {
			t.Fatal(err)
		}
		var want any
		if err := json.Unmarshal(occ, &want); err != nil || !reflect.DeepEqual(out, want) {
			t.Errorf("output os_collect_config %v, metadata has %s", out, occ)
		}
	}
	if r, err := node.c.Collect(ctx); err != nil || r.Changed() {
		t.Errorf("after commit, nothing should have changed: %v %v", r.ChangedKeys, err)
	}

	// stack update --existing --parameter ostree_commit=b: a new deployment id,
	// UPDATE; the node fails its health check and says why.
	if err := stack.Update(ctx, map[string]any{"ostree_commit": b}); err != nil {
		t.Fatal(err)
	}
	step("stack update under way")
	r, d2 := node.await(ctx, b)
	step("collected the UPDATE deployment")
	if !r.Changed() || d2.Action != "UPDATE" || d2.DeploymentID == d.DeploymentID || d2.Ref != d.Ref {
		t.Errorf("after update: changed %v, action %s, id %s (was %s), ref %q", r.ChangedKeys, d2.Action, d2.DeploymentID, d.DeploymentID, d2.Ref)
	}
	reason := "required check sshd.service failed; rolled back to " + a
	if err := sig.Send(ctx, d2.Signal, heatmeta.Outcome{StatusCode: 1, Stderr: reason + "\n",
		Outputs: map[string]any{"result": reason, "booted_commit": a, "previous_commit": a}}); err != nil {
		t.Fatal(err)
	}
	st, why, err := stack.Wait(ctx, heattest.UpdateFailed)
	if err != nil {
		t.Fatal(err)
	}
	step("signalled failure: UPDATE_FAILED")
	if !strings.Contains(why, reason) {
		t.Errorf("stack %s: the agent's reason did not reach Heat: %s", st, why)
	}
	if rs, rwhy, err := stack.ResourceStatus(ctx, heattest.DeploymentResource); err != nil || rs != heattest.UpdateFailed || !strings.Contains(rwhy, reason) {
		t.Errorf("deployment resource %s: %s (%v)", rs, rwhy, err)
	}
	// The node does not commit the failed document: it stays "changed".
	if r, err := node.c.Collect(ctx); err != nil || !r.Changed() {
		t.Errorf("a failed deployment must stay changed: %v %v", r.ChangedKeys, err)
	}

	// A new target after the failure deploys normally.
	if err := stack.Update(ctx, map[string]any{"ostree_commit": c}); err != nil {
		t.Fatal(err)
	}
	r, d3 := node.await(ctx, c)
	step("collected the next UPDATE deployment")
	if err := sig.Send(ctx, d3.Signal, heatmeta.Outcome{Outputs: map[string]any{"booted_commit": c, "previous_commit": a}}); err != nil {
		t.Fatal(err)
	}
	if err := node.c.Commit(r); err != nil {
		t.Fatal(err)
	}
	if _, _, err := stack.Wait(ctx, heattest.UpdateComplete); err != nil {
		t.Fatal(err)
	}
	step("signalled success: UPDATE_COMPLETE")
	if got, err := stack.Output(ctx, "booted_commit"); err != nil || got != c {
		t.Errorf("output booted_commit = %v (%v), want %s", got, err, c)
	}

	// Deleting the stack leaves no Swift container behind (Heat 19 forgets
	// the POLL_TEMP_URL and TEMP_URL_SIGNAL ones; the harness removes them).
	left := []string{stack.ID}
	var occ struct {
		Request struct {
			MetadataURL string `json:"metadata_url"`
		} `json:"request"`
	}
	if raw, err := server.CollectConfig(ctx, heattest.ServerResource); err == nil && json.Unmarshal(raw, &occ) == nil && occ.Request.MetadataURL != "" {
		u, err := url.Parse(occ.Request.MetadataURL)
		if err != nil {
			t.Fatal(err)
		}
		left = append(left, strings.Split(strings.Trim(u.Path, "/"), "/")[2])
	}
	if err := stack.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range left {
		if _, err := containers.Get(ctx, env.ObjectStore, name, nil).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("container %s still there after the stack was deleted (%v)", name, err)
		}
	}
}

var liveParams = map[string]any{
	"ostree_commit":   strings.Repeat("a1", 32),
	"ostree_ref":      "exampleos/x86_64/stable",
	"ostree_version":  "2026.11.1",
	"glance_image_id": "0b5e0c4e-3a52-4b8f-9a39-7d3b1f0c2e11",
	"reboot_policy":   "immediate",
}

func withParams(extra map[string]any) map[string]any {
	m := map[string]any{}
	for k, v := range liveParams {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// TestLiveHeatDeployedServer runs contrib/heat/ostree-deployed-server.yaml
// with both poll transports CI can run, signalling over a Swift TempURL
// and over the Heat API.
func TestLiveHeatDeployedServer(t *testing.T) {
	env := heattest.Open(t)
	tmpl, err := heattest.Template(heattest.DeployedServerTemplate)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		transport, signal, source string
		want                      heatmeta.Transport
	}{
		// The template's defaults.
		{"POLL_TEMP_URL", "TEMP_URL_SIGNAL", heatmeta.SourceRequest, heatmeta.TempURLSignal},
		{"POLL_SERVER_HEAT", "TEMP_URL_SIGNAL", heatmeta.SourceHeat, heatmeta.TempURLSignal},
		// No Swift involved at all.
		{"POLL_SERVER_HEAT", "HEAT_SIGNAL", heatmeta.SourceHeat, heatmeta.HeatSignal},
	} {
		t.Run(tc.transport+"+"+tc.signal, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			params := liveParams
			if tc.transport != "POLL_TEMP_URL" || tc.signal != "TEMP_URL_SIGNAL" {
				params = withParams(map[string]any{"software_config_transport": tc.transport, "signal_transport": tc.signal})
			}
			s, err := env.CreateStack(ctx, "gostree-ds", tmpl, params)
			if err != nil {
				t.Fatal(err)
			}
			runOstreeDeployment(t, ctx, env, s, s, tc.source, tc.want)
		})
	}
}

// TestLiveHeatServerTemplate validates contrib/heat/ostree-server.yaml
// with Heat and runs it with OS::Nova::Server mapped to a DeployedServer
// (there is no Nova here).
func TestLiveHeatServerTemplate(t *testing.T) {
	env := heattest.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tmpl, err := heattest.Template(heattest.ServerTemplate)
	if err != nil {
		t.Fatal(err)
	}
	// Without Nova, Heat refuses OS::Nova::Server itself: the only error
	// plain validation may give here.
	if _, err := env.ValidateTemplate(ctx, tmpl, heattest.StackOpts{}); err != nil && !strings.Contains(err.Error(), "OS::Nova::Server") {
		t.Fatal(err)
	}
	if _, err := env.ValidateTemplate(ctx, tmpl, heattest.NovaStandIn()); err != nil {
		t.Fatal(err)
	}
	params := withParams(map[string]any{"image": "exampleos", "flavor": "m1.small", "network": "private"})
	s, err := env.CreateStackOpts(ctx, "gostree-srv", tmpl, params, heattest.NovaStandIn())
	if err != nil {
		t.Fatal(err)
	}
	nested, err := s.NestedServer(ctx, heattest.ServerResource)
	if err != nil {
		t.Fatal(err)
	}
	runOstreeDeployment(t, ctx, env, s, nested, heatmeta.SourceRequest, heatmeta.TempURLSignal)
}

// TestLiveHeatTemplateRejectsBadCommit: the template's constraint refuses
// anything but an exact commit before a node ever sees it.
func TestLiveHeatTemplateRejectsBadCommit(t *testing.T) {
	env := heattest.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tmpl, err := heattest.Template(heattest.DeployedServerTemplate)
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.CreateStack(ctx, "gostree-bad", tmpl, withParams(map[string]any{"ostree_commit": "exampleos/x86_64/stable"}))
	if err == nil || !strings.Contains(err.Error(), "ostree_commit") {
		t.Fatalf("a ref as ostree_commit: %v", err)
	}
}

// TestLiveHeatRollback: with rollback enabled (Heat's own default is off),
// a failure signal makes Heat roll the update back, and the rollback is a
// software deployment again: the old inputs under a new id, with
// deploy_action CREATE and a signal URL of its own, listed next to the
// failed one until the node signals it. The stack stays
// ROLLBACK_IN_PROGRESS until then; an agent must answer it (the old
// commit is the one it runs) for the rollback to complete.
func TestLiveHeatRollback(t *testing.T) {
	env := heattest.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tmpl, err := heattest.Template(heattest.DeployedServerTemplate)
	if err != nil {
		t.Fatal(err)
	}
	a, b := strings.Repeat("a1", 32), strings.Repeat("b2", 32)
	s, err := env.CreateStackOpts(ctx, "gostree-rb", tmpl, liveParams, heattest.StackOpts{Rollback: true})
	if err != nil {
		t.Fatal(err)
	}
	node := newLiveNode(t, ctx, s)
	sig := &heatmeta.Signaller{HTTPClient: env.Client.HTTP, Attempts: 3, Backoff: 100 * time.Millisecond}
	r, d := node.await(ctx, a)
	if err := sig.Send(ctx, d.Signal, heatmeta.Outcome{Outputs: map[string]any{"booted_commit": a, "previous_commit": a}}); err != nil {
		t.Fatal(err)
	}
	if err := node.c.Commit(r); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Wait(ctx, heattest.CreateComplete); err != nil {
		t.Fatal(err)
	}

	if err := s.Update(ctx, map[string]any{"ostree_commit": b}); err != nil {
		t.Fatal(err)
	}
	_, failed := node.await(ctx, b)
	if err := sig.Send(ctx, failed.Signal, heatmeta.Outcome{StatusCode: 1, Outputs: map[string]any{"result": "rolled back to " + a}}); err != nil {
		t.Fatal(err)
	}
	// The rollback's deployment: the old commit, a new id.
	var rb *heatmeta.Desired
	for range 120 {
		r, err := node.c.Collect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w, err := r.Wanted()
		if err != nil {
			t.Fatal(err)
		}
		for _, dr := range w.Deployments {
			if dr.Desired != nil && dr.Desired.Commit.String() == a && dr.Desired.DeploymentID != d.DeploymentID {
				rb = dr.Desired
			}
		}
		if rb != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if rb == nil {
		t.Fatal("the rollback never showed up as a deployment")
	}
	if rb.Action != "CREATE" || rb.Signal.URL == failed.Signal.URL {
		t.Errorf("rollback deployment: action %s, same signal URL as the failed one: %v", rb.Action, rb.Signal.URL == failed.Signal.URL)
	}
	if st, _, err := s.Status(ctx); err != nil || st != "ROLLBACK_IN_PROGRESS" {
		t.Errorf("before the node answers the rollback the stack is %s (%v)", st, err)
	}
	if err := sig.Send(ctx, rb.Signal, heatmeta.Outcome{Outputs: map[string]any{"booted_commit": a, "previous_commit": a}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Wait(ctx, "ROLLBACK_COMPLETE"); err != nil {
		t.Fatal(err)
	}
	// Afterwards only the rollback's deployment is left.
	r, err = node.c.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.Wanted()
	if err != nil || len(w.Deployments) != 1 || w.Deployments[0].Desired == nil || w.Deployments[0].Desired.DeploymentID != rb.DeploymentID {
		t.Fatalf("after the rollback: %+v %v", w, err)
	}
}
