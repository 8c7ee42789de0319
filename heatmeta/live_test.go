package heatmeta_test

// Tests against a real Heat (Keystone, Swift, Heat on 127.0.0.1 from
// scripts/openstack-up.sh). They run when $GOSTREE_OPENSTACK_RC names
// the openrc of that cloud (osauthtest) and its catalog has an
// orchestration endpoint; without Heat in the catalog they skip, unless
// GOSTREE_TEST_HEAT=1 says Heat must be there.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stackresources"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stacks"

	"github.com/gostree/gostree/heatmeta"
	"github.com/gostree/gostree/internal/osauth/osauthtest"
)

const liveTemplate = `heat_template_version: 2018-08-31
parameters:
  commit: {type: string}
  transport: {type: string, default: POLL_TEMP_URL}
  signal: {type: string, default: TEMP_URL_SIGNAL}
resources:
  server:
    type: OS::Heat::DeployedServer
    properties: {software_config_transport: {get_param: transport}}
  config:
    type: OS::Heat::SoftwareConfig
    properties:
      group: ostree
      inputs:
        - {name: ostree_commit}
        - {name: ostree_ref}
        - {name: reboot_policy}
      outputs:
        - {name: booted_commit}
        - {name: previous_commit}
        - {name: result, error_output: true}
  deployment:
    type: OS::Heat::SoftwareDeployment
    properties:
      config: {get_resource: config}
      server: {get_resource: server}
      signal_transport: {get_param: signal}
      actions: [CREATE, UPDATE]
      input_values:
        ostree_commit: {get_param: commit}
        ostree_ref: exampleos/x86_64/stable
        reboot_policy: immediate
outputs:
  booted: {value: {get_attr: [deployment, booted_commit]}}
`

type liveStack struct {
	t    *testing.T
	orch *gophercloud.ServiceClient
	name string
	id   string
}

func orchestration(t *testing.T) *gophercloud.ServiceClient {
	osauthtest.Setup(t)
	c := osauthtest.Client(t)
	orch, err := openstack.NewOrchestrationV1(c.Provider, c.Endpoint)
	if err != nil {
		if os.Getenv("GOSTREE_TEST_HEAT") == "1" {
			t.Fatalf("GOSTREE_TEST_HEAT=1 but: %v", err)
		}
		t.Skip("no Heat (orchestration) in the local cloud's catalog")
	}
	return orch
}

func createStack(t *testing.T, orch *gophercloud.ServiceClient, params map[string]any) *liveStack {
	ctx := context.Background()
	tmpl := new(stacks.Template)
	tmpl.Bin = []byte(liveTemplate)
	s := &liveStack{t: t, orch: orch, name: osauthtest.Name("gostree-heatmeta")}
	cr, err := stacks.Create(ctx, orch, stacks.CreateOpts{Name: s.name, TemplateOpts: tmpl, Parameters: params, Timeout: 10}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	s.id = cr.ID
	t.Cleanup(func() { stacks.Delete(context.Background(), orch, s.name, s.id) })
	return s
}

func (s *liveStack) update(params map[string]any) {
	tmpl := new(stacks.Template)
	tmpl.Bin = []byte(liveTemplate)
	if err := stacks.Update(context.Background(), s.orch, s.name, s.id, stacks.UpdateOpts{TemplateOpts: tmpl, Parameters: params}).ExtractErr(); err != nil {
		s.t.Fatal(err)
	}
}

// wait polls the stack status (bounded) until it is want.
func (s *liveStack) wait(want string) *stacks.RetrievedStack {
	s.t.Helper()
	for range 240 {
		st, err := stacks.Get(context.Background(), s.orch, s.name, s.id).Extract()
		if err == nil && st.Status == want {
			return st
		}
		if err == nil && strings.HasSuffix(st.Status, "_FAILED") && !strings.HasSuffix(want, "_FAILED") {
			s.t.Fatalf("stack %s: %s", st.Status, st.StatusReason)
		}
		time.Sleep(500 * time.Millisecond)
	}
	s.t.Fatalf("stack never reached %s", want)
	return nil
}

// bootstrap reads the server resource's metadata as the stack owner and
// writes it where heat_local reads it, as a deployed server's
// provisioning would.
func (s *liveStack) bootstrap(path string) {
	s.t.Helper()
	for range 120 {
		var body struct {
			Metadata json.RawMessage `json:"metadata"`
		}
		err := stackresources.Metadata(context.Background(), s.orch, s.name, s.id, "server").ExtractInto(&body)
		if err == nil && strings.Contains(string(body.Metadata), `"os-collect-config"`) {
			if err := os.WriteFile(path, body.Metadata, 0o600); err != nil {
				s.t.Fatal(err)
			}
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	s.t.Fatal("the server resource never got os-collect-config metadata")
}

// collectUntil polls (bounded) until the ostree deployment asks for commit.
func collectUntil(t *testing.T, c *heatmeta.Collector, commit string) (*heatmeta.Collection, heatmeta.DeploymentRequest) {
	t.Helper()
	for range 30 {
		r, err := c.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		w, err := r.Wanted()
		if err == nil {
			for _, d := range w.Deployments {
				if d.Desired != nil && d.Desired.Commit.String() == commit {
					return r, d
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	r, err := c.Collect(context.Background())
	if err == nil {
		t.Logf("collectors %v, errors %v", r.Collectors, r.Errors)
	}
	t.Fatalf("metadata never asked for %s", commit)
	return nil, heatmeta.DeploymentRequest{}
}

func newLiveCollector(t *testing.T) (*heatmeta.Collector, string) {
	dir := t.TempDir()
	cache, err := heatmeta.OpenCache(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	heatLocal := filepath.Join(dir, "cfn-init-data")
	c, err := heatmeta.NewCollector(heatmeta.CollectorOptions{Cache: cache, Config: heatmeta.Config{
		Collectors: []string{heatmeta.SourceHeatLocal, heatmeta.SourceCFN, heatmeta.SourceHeat, heatmeta.SourceRequest, heatmeta.SourceLocal},
		HeatLocal:  heatmeta.HeatLocalConfig{Path: []string{heatLocal}},
		Local:      heatmeta.LocalConfig{Path: []string{filepath.Join(dir, "local-data")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c, heatLocal
}

func TestLiveTempURLTransportAndSignal(t *testing.T) {
	orch := orchestration(t)
	a, b := strings.Repeat("a1", 32), strings.Repeat("b2", 32)
	s := createStack(t, orch, map[string]any{"commit": a})
	c, heatLocal := newLiveCollector(t)
	s.bootstrap(heatLocal)

	r, d := collectUntil(t, c, a)
	if d.Desired.Signal.Transport != heatmeta.TempURLSignal || !contains(r.Collectors, "request") {
		t.Fatalf("signal %v collectors %v", d.Desired.Signal, r.Collectors)
	}
	sig := &heatmeta.Signaller{}
	ok := heatmeta.Outcome{Stdout: "staged and booted\n", Outputs: map[string]any{"booted_commit": a, "previous_commit": strings.Repeat("0", 64)}}
	if err := sig.Send(context.Background(), d.Desired.Signal, ok); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(r); err != nil {
		t.Fatal(err)
	}
	st := s.wait("CREATE_COMPLETE")
	if got := output(st, "booted"); got != a {
		t.Errorf("stack output booted = %q, want %s", got, a)
	}

	// stack update: a new target; the node reports failure.
	s.update(map[string]any{"commit": b})
	r, d = collectUntil(t, c, b)
	if !r.Changed() {
		t.Error("new deployment not reported as changed")
	}
	bad := heatmeta.Outcome{StatusCode: 1, Stderr: "required health check sshd.service failed; rolled back",
		Outputs: map[string]any{"result": "rolled back to " + a, "booted_commit": a}}
	if err := sig.Send(context.Background(), d.Desired.Signal, bad); err != nil {
		t.Fatal(err)
	}
	st = s.wait("UPDATE_FAILED")
	if !strings.Contains(st.StatusReason, "rolled back to "+a) {
		t.Errorf("the agent's reason did not reach Heat: %s", st.StatusReason)
	}
}

// TestLiveTransports runs every poll transport with a signal transport
// end to end: the collector follows the transport from the bootstrap,
// the deployment's signal completes the stack.
func TestLiveTransports(t *testing.T) {
	orch := orchestration(t)
	for _, c := range []struct {
		transport, signal, source string
		want                      heatmeta.Transport
	}{
		{"POLL_SERVER_HEAT", "HEAT_SIGNAL", heatmeta.SourceHeat, heatmeta.HeatSignal},
		{"POLL_SERVER_CFN", "CFN_SIGNAL", heatmeta.SourceCFN, heatmeta.CFNSignal},
		{"POLL_TEMP_URL", "NO_SIGNAL", heatmeta.SourceRequest, heatmeta.NoSignal},
	} {
		t.Run(c.transport+"+"+c.signal, func(t *testing.T) {
			if c.transport == "POLL_SERVER_CFN" && os.Getenv("GOSTREE_TEST_HEAT_CFN") != "1" {
				// Heat 19's CFN API checks the signature by POSTing to
				// Keystone's /v3/ec2tokens without a token; Debian's
				// Keystone 22 allows that call to admin/service users only,
				// so every CFN request is refused (403), also when signed by
				// keystoneclient's own Ec2Signer. SignEC2v2 itself is
				// checked against Keystone by TestLiveEC2Signature.
				t.Skip("Heat's CFN API cannot validate EC2 signatures with this Keystone: set GOSTREE_TEST_HEAT_CFN=1 on a cloud where it can")
			}
			a := strings.Repeat("c3", 32)
			s := createStack(t, orch, map[string]any{"commit": a, "transport": c.transport, "signal": c.signal})
			col, heatLocal := newLiveCollector(t)
			s.bootstrap(heatLocal)
			r, d := collectUntil(t, col, a)
			if !contains(r.Collectors, c.source) || d.Desired.Signal.Transport != c.want {
				t.Fatalf("collectors %v signal %v errors %v", r.Collectors, d.Desired.Signal, r.Errors)
			}
			ok := heatmeta.Outcome{Stdout: "booted\n", Outputs: map[string]any{"booted_commit": a, "previous_commit": strings.Repeat("0", 64)}}
			if err := (&heatmeta.Signaller{}).Send(context.Background(), d.Desired.Signal, ok); err != nil {
				t.Fatal(err)
			}
			st := s.wait("CREATE_COMPLETE")
			if c.want != heatmeta.NoSignal {
				if got := output(st, "booted"); got != a {
					t.Errorf("stack output booted = %q, want %s", got, a)
				}
			}
		})
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func output(st *stacks.RetrievedStack, key string) string {
	for _, o := range st.Outputs {
		if o["output_key"] == key {
			s, _ := o["output_value"].(string)
			return s
		}
	}
	return ""
}
