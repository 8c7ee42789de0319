package heattest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/objects"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stackresources"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stacks"

	"github.com/gostree/gostree/heatmeta"
	"github.com/gostree/gostree/internal/osauth"
	"github.com/gostree/gostree/internal/osauth/osauthtest"
	"github.com/gostree/gostree/internal/retry"
)

// Template file names in contrib/heat.
const (
	// DeployedServerTemplate is a DeployedServer (no Nova) with an ostree
	// software deployment: what CI runs end to end.
	DeployedServerTemplate = "ostree-deployed-server.yaml"
	// ServerTemplate is the same with an OS::Nova::Server.
	ServerTemplate = "ostree-server.yaml"
	// ServerResource and DeploymentResource are the resource names both
	// templates use.
	ServerResource     = "server"
	DeploymentResource = "ostree_deployment"
)

// Stack statuses.
const (
	CreateComplete = "CREATE_COMPLETE"
	CreateFailed   = "CREATE_FAILED"
	UpdateComplete = "UPDATE_COMPLETE"
	UpdateFailed   = "UPDATE_FAILED"
	DeleteComplete = "DELETE_COMPLETE"
)

// DefaultWait bounds Wait, Delete and the bootstrap reads when the
// context has no deadline.
const DefaultWait = 3 * time.Minute

// pollEvery is the status poll interval: Heat finishes these small
// stacks in about a second.
const pollEvery = 250 * time.Millisecond

// Env is an authenticated session on the local cloud as its unprivileged
// user (demo, project demo).
type Env struct {
	t testing.TB
	// Client is the authenticated provider client (HTTP is its
	// *http.Client, for requests gophercloud has no call for).
	Client *osauth.Client
	// Orchestration is the Heat API (orchestration v1).
	Orchestration *gophercloud.ServiceClient
	// ObjectStore is Swift, where POLL_TEMP_URL metadata and
	// TEMP_URL_SIGNAL signals live.
	ObjectStore *gophercloud.ServiceClient
}

// Open loads the local cloud's openrc into the test's environment and
// connects to Heat and Swift. It skips when there is no local OpenStack
// or no Heat in its catalog, unless CI=true or GOSTREE_TEST_HEAT=1.
// Open uses t.Setenv: tests calling it cannot be parallel.
func Open(t testing.TB) *Env {
	t.Helper()
	osauthtest.Setup(t)
	c := osauthtest.Client(t)
	orch, err := openstack.NewOrchestrationV1(c.Provider, c.Endpoint)
	if err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("GOSTREE_TEST_HEAT") == "1" {
			t.Fatalf("no Heat in the local cloud (scripts/openstack-up.sh starts it): %v", err)
		}
		t.Skipf("no Heat (orchestration) in the local cloud's catalog: %v", err)
	}
	sc, err := openstack.NewObjectStorageV1(c.Provider, c.Endpoint)
	if err != nil {
		t.Fatalf("no Swift in the local cloud's catalog: %v", err)
	}
	return &Env{t: t, Client: c, Orchestration: orch, ObjectStore: sc}
}

// Template returns the path of contrib/heat/name in this work tree (found
// by walking up from the working directory to go.mod).
func Template(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "contrib", "heat", name)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("heat template: %w", err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("heat template: no go.mod above the working directory")
		}
		dir = parent
	}
}

// StackOpts are optional settings of CreateStackOpts.
type StackOpts struct {
	// Environment is the stack environment (parameter_defaults,
	// resource_registry, ...), sent as JSON.
	Environment map[string]any
	// Files are the contents of files the template or environment name
	// (provider templates), by the name used there.
	Files map[string]string
	// TimeoutMinutes is Heat's stack timeout (default 10): deployments
	// not signalled by then fail.
	TimeoutMinutes int
	// Rollback lets Heat roll a failed create or update back (the
	// default, as for the openstack CLI, is to leave it FAILED). A rolled
	// back software deployment comes back to the node as a new
	// deployment of the old inputs, which Heat waits for like any other.
	Rollback bool
}

// Stack is a stack made by CreateStack. It is deleted when the test ends.
type Stack struct {
	env  *Env
	Name string
	ID   string
}

// CreateStack creates a stack named name (a unique suffix is added) from
// the template file at templatePath with params. It returns as soon as
// Heat accepted it: Wait for CREATE_COMPLETE (or for the deployment to
// wait for a signal). The stack is deleted when the test ends.
func (e *Env) CreateStack(ctx context.Context, name, templatePath string, params map[string]any) (*Stack, error) {
	return e.CreateStackOpts(ctx, name, templatePath, params, StackOpts{})
}

// CreateStackOpts is CreateStack with an environment, files and a timeout.
func (e *Env) CreateStackOpts(ctx context.Context, name, templatePath string, params map[string]any, o StackOpts) (*Stack, error) {
	tmpl, err := os.ReadFile(templatePath)
	if err != nil {
		return nil, fmt.Errorf("heat template: %w", err)
	}
	name = osauthtest.Name(name)
	timeout := o.TimeoutMinutes
	if timeout <= 0 {
		timeout = 10
	}
	body := map[string]any{
		"stack_name":       name,
		"template":         string(tmpl),
		"parameters":       params,
		"timeout_mins":     timeout,
		"disable_rollback": !o.Rollback,
	}
	if o.Environment != nil {
		body["environment"] = o.Environment
	}
	if o.Files != nil {
		body["files"] = o.Files
	}
	var res struct {
		Stack struct {
			ID string `json:"id"`
		} `json:"stack"`
	}
	c := e.Orchestration
	if _, err := c.Post(ctx, c.ServiceURL("stacks"), body, &res, &gophercloud.RequestOpts{OkCodes: []int{201}}); err != nil {
		return nil, fmt.Errorf("create stack %s from %s: %w", name, filepath.Base(templatePath), heatError(err))
	}
	if res.Stack.ID == "" {
		return nil, fmt.Errorf("create stack %s: Heat returned no stack id", name)
	}
	s := &Stack{env: e, Name: name, ID: res.Stack.ID}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultWait)
		defer cancel()
		if err := s.Delete(ctx); err != nil {
			e.t.Errorf("cleanup: %v", err)
		}
	})
	return s, nil
}

// ValidateTemplate asks Heat to validate the template file at
// templatePath (with an optional environment and files) and returns
// Heat's answer: the template's description and parameters.
func (e *Env) ValidateTemplate(ctx context.Context, templatePath string, o StackOpts) (json.RawMessage, error) {
	tmpl, err := os.ReadFile(templatePath)
	if err != nil {
		return nil, fmt.Errorf("heat template: %w", err)
	}
	body := map[string]any{"template": string(tmpl)}
	if o.Environment != nil {
		body["environment"] = o.Environment
	}
	if o.Files != nil {
		body["files"] = o.Files
	}
	var res json.RawMessage
	c := e.Orchestration
	if _, err := c.Post(ctx, c.ServiceURL("validate"), body, &res, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		return nil, fmt.Errorf("validate %s: %w", filepath.Base(templatePath), heatError(err))
	}
	return res, nil
}

// heatError shortens gophercloud's error to Heat's own message.
func heatError(err error) error {
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		var body struct {
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(code.Body, &body) == nil && body.Error.Message != "" {
			return fmt.Errorf("HTTP %d %s: %s", code.Actual, body.Error.Type, body.Error.Message)
		}
		return fmt.Errorf("HTTP %d: %.300s", code.Actual, code.Body)
	}
	return err
}

// Update changes the stack's parameters, keeping the template and every
// parameter not named (`openstack stack update --existing --parameter
// k=v`). It returns once Heat has started the update (its "Stack UPDATE
// started" event exists), so a following Wait never sees the state from
// before, even when the update is over within one poll.
func (s *Stack) Update(ctx context.Context, params map[string]any) error {
	started, err := s.updatesStarted(ctx)
	if err != nil {
		return err
	}
	err = stacks.UpdatePatch(ctx, s.env.Orchestration, s.Name, s.ID, stacks.UpdateOpts{Parameters: params}).ExtractErr()
	if err != nil {
		return fmt.Errorf("update stack %s: %w", s.Name, heatError(err))
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	for {
		n, err := s.updatesStarted(ctx)
		if err == nil && n > started {
			return nil
		}
		if serr := sleep(ctx); serr != nil {
			if err != nil {
				return err
			}
			return fmt.Errorf("update stack %s: Heat never started the update: %w", s.Name, serr)
		}
	}
}

// updatesStarted counts the stack's own UPDATE IN_PROGRESS events: one
// per update Heat started.
func (s *Stack) updatesStarted(ctx context.Context) (int, error) {
	c := s.env.Orchestration
	q := url.Values{"resource_name": {s.Name}, "resource_action": {"UPDATE"}, "resource_status": {"IN_PROGRESS"}}
	var res struct {
		Events []json.RawMessage `json:"events"`
	}
	u := c.ServiceURL("stacks", s.Name, s.ID, "events") + "?" + q.Encode()
	if _, err := c.Get(ctx, u, &res, nil); err != nil {
		return 0, fmt.Errorf("stack %s events: %w", s.Name, heatError(err))
	}
	return len(res.Events), nil
}

// Status returns the stack's status and status reason.
func (s *Stack) Status(ctx context.Context) (status, reason string, err error) {
	st, err := stacks.Get(ctx, s.env.Orchestration, s.Name, s.ID).Extract()
	if err != nil {
		return "", "", fmt.Errorf("stack %s: %w", s.Name, heatError(err))
	}
	return st.Status, st.StatusReason, nil
}

// Wait polls the stack until its status is one of want and returns it
// with its reason. A status that is not wanted is an error once it is
// final: any *_FAILED, or a *_COMPLETE reached after an *_IN_PROGRESS
// was seen (an earlier *_COMPLETE may be the state from before an
// update). The wait is bounded by ctx, or DefaultWait without a deadline.
func (s *Stack) Wait(ctx context.Context, want ...string) (status, reason string, err error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	moving := false
	for {
		st, gerr := stacks.Get(ctx, s.env.Orchestration, s.Name, s.ID).Extract()
		err = gerr
		if gerr == nil {
			status, reason = st.Status, st.StatusReason
			if slices.Contains(want, status) {
				return status, reason, nil
			}
			switch {
			case strings.HasSuffix(status, "_IN_PROGRESS"):
				moving = true
			case strings.HasSuffix(status, "_FAILED"), moving && strings.HasSuffix(status, "_COMPLETE"):
				return status, reason, fmt.Errorf("stack %s is %s (want %s): %s", s.Name, status, strings.Join(want, " or "), reason)
			}
		}
		if serr := sleep(ctx); serr != nil {
			if err != nil {
				return status, reason, fmt.Errorf("stack %s (last seen %s), want %s: %w (last error: %v)", s.Name, status, strings.Join(want, " or "), serr, heatError(err))
			}
			return status, reason, fmt.Errorf("stack %s still %s, want %s: %w", s.Name, status, strings.Join(want, " or "), serr)
		}
	}
}

// Output returns a stack output's value (nil when Heat has none).
func (s *Stack) Output(ctx context.Context, key string) (any, error) {
	st, err := stacks.Get(ctx, s.env.Orchestration, s.Name, s.ID).Extract()
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", s.Name, heatError(err))
	}
	for _, o := range st.Outputs {
		if o["output_key"] == key {
			return o["output_value"], nil
		}
	}
	return nil, fmt.Errorf("stack %s has no output %q", s.Name, key)
}

// ResourceStatus returns a resource's status and reason (e.g. the
// deployment's UPDATE_FAILED with the agent's reason).
func (s *Stack) ResourceStatus(ctx context.Context, resource string) (status, reason string, err error) {
	r, err := stackresources.Get(ctx, s.env.Orchestration, s.Name, s.ID, resource).Extract()
	if err != nil {
		return "", "", fmt.Errorf("stack %s resource %s: %w", s.Name, resource, heatError(err))
	}
	return r.Status, r.StatusReason, nil
}

// Metadata returns a resource's metadata as the stack owner sees it:
// for the server, the document the node's agent polls (deployments,
// os-collect-config). gophercloud's MetadataResult.Extract cannot hold it
// (map[string]string), so it is read raw.
func (s *Stack) Metadata(ctx context.Context, resource string) (json.RawMessage, error) {
	var body struct {
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := stackresources.Metadata(ctx, s.env.Orchestration, s.Name, s.ID, resource).ExtractInto(&body); err != nil {
		return nil, fmt.Errorf("stack %s resource %s metadata: %w", s.Name, resource, heatError(err))
	}
	return body.Metadata, nil
}

// CollectConfig returns the os-collect-config settings Heat made for the
// server resource (its os_collect_config attribute: "collectors" and the
// "request" TempURL or the "heat" stack-user credentials). It holds
// secrets. It waits (bounded) until Heat has written them.
func (s *Stack) CollectConfig(ctx context.Context, resource string) (json.RawMessage, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	for {
		md, err := s.Metadata(ctx, resource)
		if err == nil {
			var top map[string]json.RawMessage
			if json.Unmarshal(md, &top) == nil {
				if occ, ok := top["os-collect-config"]; ok && !bytes.Equal(occ, []byte("null")) {
					return occ, nil
				}
			}
		}
		if serr := sleep(ctx); serr != nil {
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("stack %s resource %s has no os-collect-config metadata: %w", s.Name, resource, serr)
		}
	}
}

// AgentConfig returns base with the server resource's os-collect-config
// applied, as the agent's collector applies it (heatmeta.ApplyTransport):
// the collectors and the request/heat settings of the stack's transport.
func (s *Stack) AgentConfig(ctx context.Context, resource string, base heatmeta.Config) (heatmeta.Config, error) {
	occ, err := s.CollectConfig(ctx, resource)
	if err != nil {
		return base, err
	}
	cfg, _, err := heatmeta.ApplyTransport(base, occ)
	if err != nil {
		return base, fmt.Errorf("stack %s: %w", s.Name, err)
	}
	return cfg, nil
}

// HeatLocal returns the bootstrap document a provisioned node finds in
// its heat_local file (/var/lib/heat-cfntools/cfn-init-data):
// {"os-collect-config": <CollectConfig>}. Write it 0600: it holds
// secrets.
func (s *Stack) HeatLocal(ctx context.Context, resource string) ([]byte, error) {
	occ, err := s.CollectConfig(ctx, resource)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]json.RawMessage{"os-collect-config": occ})
}

// Delete deletes the stack and waits (bounded) until it is gone. It also
// removes the Swift containers Heat 19 leaves behind: each POLL_TEMP_URL
// server's metadata container (server_base._delete_temp_url looks the
// object-store service up with type and name swapped) and the
// TEMP_URL_SIGNAL container named after the stack id. Deleting a deleted
// stack is not an error.
func (s *Stack) Delete(ctx context.Context) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	leftovers := append([]string{s.ID}, s.tempURLContainers(ctx)...)
	err := stacks.Delete(ctx, s.env.Orchestration, s.Name, s.ID).ExtractErr()
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return fmt.Errorf("delete stack %s: %w", s.Name, heatError(err))
	}
	for {
		st, gerr := stacks.Get(ctx, s.env.Orchestration, s.Name, s.ID).Extract()
		if gophercloud.ResponseCodeIs(gerr, http.StatusNotFound) || (gerr == nil && st.Status == DeleteComplete) {
			break
		}
		if gerr == nil && st.Status == "DELETE_FAILED" {
			return fmt.Errorf("delete stack %s: %s", s.Name, st.StatusReason)
		}
		if serr := sleep(ctx); serr != nil {
			return fmt.Errorf("delete stack %s: not gone: %w", s.Name, serr)
		}
	}
	return s.deleteContainers(ctx, leftovers)
}

// tempURLContainers returns the containers of the POLL_TEMP_URL metadata
// of the stack's deployed servers, nested ones included (their names are
// cut short by Heat, so they cannot be found by the stack's name).
func (s *Stack) tempURLContainers(ctx context.Context) []string {
	pages, err := stackresources.List(s.env.Orchestration, s.Name, s.ID, stackresources.ListOpts{Depth: 3}).AllPages(ctx)
	if err != nil {
		return nil
	}
	all, err := stackresources.ExtractResources(pages)
	if err != nil {
		return nil
	}
	var names []string
	for _, r := range all {
		if r.Type != "OS::Heat::DeployedServer" && r.Type != "OS::Nova::Server" {
			continue
		}
		owner := &Stack{env: s.env, Name: s.Name, ID: s.ID}
		for _, l := range r.Links {
			parts := strings.Split(strings.TrimRight(l.Href, "/"), "/")
			if l.Rel == "stack" && len(parts) >= 2 {
				owner = &Stack{env: s.env, Name: parts[len(parts)-2], ID: parts[len(parts)-1]}
			}
		}
		md, err := owner.Metadata(ctx, r.Name)
		if err != nil {
			continue
		}
		var doc struct {
			OCC struct {
				Request struct {
					MetadataURL string `json:"metadata_url"`
				} `json:"request"`
			} `json:"os-collect-config"`
		}
		if json.Unmarshal(md, &doc) != nil || doc.OCC.Request.MetadataURL == "" {
			continue
		}
		// .../v1/AUTH_<project>/<container>/<object>?temp_url_sig=...
		u, err := url.Parse(doc.OCC.Request.MetadataURL)
		if err != nil {
			continue
		}
		if parts := strings.Split(strings.Trim(u.Path, "/"), "/"); len(parts) == 4 {
			names = append(names, parts[2])
		}
	}
	return names
}

// deleteContainers removes the named containers and those Heat named
// after the stack's resources ("<stack>-<resource>-<suffix>"), with their
// objects; missing ones are fine.
func (s *Stack) deleteContainers(ctx context.Context, named []string) error {
	sc := s.env.ObjectStore
	pages, err := containers.List(sc, containers.ListOpts{Prefix: s.Name + "-"}).AllPages(ctx)
	if err != nil {
		return fmt.Errorf("stack %s: listing its containers: %w", s.Name, err)
	}
	prefixed, err := containers.ExtractNames(pages)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, c := range append(named, prefixed...) {
		if seen[c] {
			continue
		}
		seen[c] = true
		opages, err := objects.List(sc, c, objects.ListOpts{}).AllPages(ctx)
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("container %s: %w", c, err)
		}
		objs, err := objects.ExtractNames(opages)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := objects.Delete(ctx, sc, c, o, nil).Err; err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				return fmt.Errorf("container %s object %s: %w", c, o, err)
			}
		}
		if err := containers.Delete(ctx, sc, c).Err; err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return fmt.Errorf("container %s: %w", c, err)
		}
	}
	return nil
}

// bound gives ctx a deadline of DefaultWait when it has none.
func bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultWait)
}

func sleep(ctx context.Context) error { return retry.Sleep(ctx, pollEvery) }

// novaStandIn stands in for OS::Nova::Server where there is no Nova: a
// provider template taking the properties contrib/heat/ostree-server.yaml
// gives its server, wrapping an OS::Heat::DeployedServer whose id is the
// resource's id (OS::stack_id), so the software deployment attaches to it.
const novaStandIn = `heat_template_version: 2018-08-31
description: OS::Nova::Server stand-in for tests without Nova (internal/heattest)
# Heat checks a provider template against the type it stands in for: every
# required parameter must be a property of OS::Nova::Server of the same type,
# and every attribute of OS::Nova::Server must be an output.
parameters:
  name: {type: string}
  image: {type: string}
  flavor: {type: string}
  key_name: {type: string, default: ""}
  networks: {type: comma_delimited_list}
  user_data_format:
    type: string
    constraints: [{allowed_values: [SOFTWARE_CONFIG]}]
  software_config_transport: {type: string}
resources:
  server:
    type: OS::Heat::DeployedServer
    properties:
      name: {get_param: name}
      software_config_transport: {get_param: software_config_transport}
outputs:
  OS::stack_id: {value: {get_resource: server}}
  os_collect_config: {value: {get_attr: [server, os_collect_config]}}
  name: {value: {get_attr: [server, name]}}
  addresses: {value: {}}
  networks: {value: {}}
  first_address: {value: ""}
  instance_name: {value: ""}
  accessIPv4: {value: ""}
  accessIPv6: {value: ""}
  console_urls: {value: {}}
  tags: {value: []}
`

// NovaStandIn returns the environment and files that map OS::Nova::Server
// to a DeployedServer, so ServerTemplate can be created (and its
// deployment run) on a cloud without Nova. It checks the template's
// parameters, conditions and deployment wiring, not Nova's own property
// schema. The server's metadata is then that of the nested resource:
// read it with NestedServer.
func NovaStandIn() StackOpts {
	return StackOpts{
		Environment: map[string]any{"resource_registry": map[string]any{"OS::Nova::Server": "gostree-nova-standin.yaml"}},
		Files:       map[string]string{"gostree-nova-standin.yaml": novaStandIn},
	}
}

// NestedServer returns the stack of the DeployedServer inside a
// NovaStandIn server resource, so Metadata, CollectConfig, AgentConfig
// and HeatLocal can be called on it with ServerResource. It waits
// (bounded) until Heat has created it.
func (s *Stack) NestedServer(ctx context.Context, resource string) (*Stack, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	for {
		pages, err := stackresources.List(s.env.Orchestration, s.Name, s.ID, stackresources.ListOpts{Depth: 1}).AllPages(ctx)
		if err == nil {
			all, err := stackresources.ExtractResources(pages)
			if err != nil {
				return nil, err
			}
			for _, r := range all {
				if r.ParentResource != resource || r.Name != ServerResource {
					continue
				}
				for _, l := range r.Links {
					// .../stacks/<name>/<id>
					parts := strings.Split(strings.TrimRight(l.Href, "/"), "/")
					if l.Rel == "stack" && len(parts) >= 2 {
						return &Stack{env: s.env, Name: parts[len(parts)-2], ID: parts[len(parts)-1]}, nil
					}
				}
			}
		}
		if serr := sleep(ctx); serr != nil {
			if err != nil {
				return nil, fmt.Errorf("stack %s resources: %w", s.Name, heatError(err))
			}
			return nil, fmt.Errorf("stack %s resource %s has no nested %s resource: %w", s.Name, resource, ServerResource, serr)
		}
	}
}
