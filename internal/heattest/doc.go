// Package heattest drives real Heat stacks for live tests: the Heat of
// scripts/openstack-up.sh on 127.0.0.1, found through $GOSTREE_OPENSTACK_RC
// like the other live tests (internal/osauth/osauthtest).
//
// Open skips the test when there is no local OpenStack or no Heat in its
// catalog, unless CI=true or GOSTREE_TEST_HEAT=1 (then it fails: `make
// test` starts Heat, so its absence is a bug). Stacks are created from the
// templates in contrib/heat (Template), updated with PATCH semantics
// (`openstack stack update --existing`), waited for with bounded polls and
// deleted when the test ends.
//
// A node's agent is bootstrapped from the server resource's
// os-collect-config settings (Stack.CollectConfig, AgentConfig,
// HeatLocal), so a test agent polls the stack exactly like a real node:
// over POLL_TEMP_URL (a Swift TempURL) or POLL_SERVER_HEAT (the Heat API
// with the stack-domain user Heat made for the server).
//
// Typical use in a live test:
//
//	env := heattest.Open(t)
//	tmpl, _ := heattest.Template(heattest.DeployedServerTemplate)
//	s, err := env.CreateStack(ctx, "gostree-agent", tmpl, map[string]any{"ostree_commit": c1})
//	boot, err := s.HeatLocal(ctx, heattest.ServerResource) // write to the node's heat_local path
//	// ... the agent collects, deploys, signals ...
//	status, reason, err := s.Wait(ctx, heattest.CreateComplete)
//	err = s.Update(ctx, map[string]any{"ostree_commit": c2})
//	status, reason, err = s.Wait(ctx, heattest.UpdateComplete, heattest.UpdateFailed)
package heattest
