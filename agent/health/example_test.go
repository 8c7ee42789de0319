package health_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gostree/gostree/agent/health"
)

// What `gostree-agent health-check` does: run the checks, save the report
// for the agent, and fail when a required check failed.
func Example() {
	dir, _ := os.MkdirTemp("", "health-example")
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	required := filepath.Join(dir, "required.d")
	os.Mkdir(required, 0o755)
	os.WriteFile(filepath.Join(required, "10-commit"), []byte("#!/bin/sh\n[ -n \"$GOSTREE_BOOTED_COMMIT\" ]\n"), 0o755)
	os.WriteFile(filepath.Join(required, "20-app"), []byte("#!/bin/sh\necho app not answering >&2\nexit 3\n"), 0o755)

	r, err := health.Run(context.Background(), health.Config{
		RequiredDir: required,
		WantedDir:   filepath.Join(dir, "wanted.d"), // absent: no wanted checks
		Env:         []string{"GOSTREE_BOOTED_COMMIT=0123abcd"},
	})
	if err != nil {
		fmt.Println("cannot run the checks:", err)
		return
	}
	report := filepath.Join(dir, "run", "health.json") // health.DefaultReportPath on a node
	if err := health.SaveReport(report, r); err != nil {
		fmt.Println(err)
		return
	}
	saved, _ := health.LoadReport(report)
	fmt.Println(saved.OK, saved.Summary())
	fmt.Printf("%q\n", saved.Failed()[0].Output)
	// Output:
	// false 1 check failed: required.d/20-app (exit status 3)
	// "app not answering\n"
}
