package heatmeta_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gostree/gostree/heatmeta"
)

// The agent's loop body: collect, see what the stack asks for, act,
// report, commit.
func Example() {
	dir, _ := os.MkdirTemp("", "heatmeta-example")
	defer os.RemoveAll(dir)
	local := filepath.Join(dir, "local-data")
	os.Mkdir(local, 0o700)
	os.WriteFile(filepath.Join(local, "target"), []byte(`{"gostree": {
		"ostree_commit": "3a1c5e0f9b7d2c4a6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d",
		"ostree_ref": "exampleos/x86_64/stable", "ostree_repo_url": "http://127.0.0.1:8081/repo",
		"reboot_policy": "manual"}}`), 0o600)

	cache, _ := heatmeta.OpenCache(filepath.Join(dir, "state"))
	c, _ := heatmeta.NewCollector(heatmeta.CollectorOptions{Cache: cache, Config: heatmeta.Config{
		Collectors: []string{heatmeta.SourceHeatLocal, heatmeta.SourceLocal},
		HeatLocal:  heatmeta.HeatLocalConfig{Path: []string{filepath.Join(dir, "cfn-init-data")}},
		Local:      heatmeta.LocalConfig{Path: []string{local}},
	}})
	ctx := context.Background()
	for round := range 2 {
		res, err := c.Collect(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, e := range res.Errors {
			fmt.Println("source failed:", e, "retry:", e.Retryable())
		}
		if !res.Changed() {
			fmt.Println(round, "nothing changed")
			continue
		}
		w, _ := res.Wanted()
		for _, d := range w.Deployments {
			_ = d // deploy d.Desired, then Signaller.Send(ctx, d.Signal, outcome)
		}
		if w.Key != nil {
			fmt.Println(round, "target", w.Key.Commit.Short(), w.Key.Ref, w.Key.Payload.Kind, w.Key.Reboot.Mode)
		}
		// ... pull, deploy, reboot, verify ...
		if err := (&heatmeta.Signaller{}).Send(ctx, w.Key.Signal, heatmeta.Outcome{}); err != nil {
			fmt.Println(err)
		}
		c.Commit(res)
	}
	// Output:
	// 0 target 3a1c5e0f9b exampleos/x86_64/stable url manual
	// 1 nothing changed
}
