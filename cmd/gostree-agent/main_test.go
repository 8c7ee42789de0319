package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gostree/gostree/sysroot"
)

func agentCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// scratch returns a config file for an agent on an empty scratch sysroot
// whose metadata comes from a local directory.
func scratch(t *testing.T, doc string) (cfg, meta string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	sr := filepath.Join(dir, "sysroot")
	if err := sysroot.InitFS(sr); err != nil {
		t.Fatal(err)
	}
	meta = filepath.Join(dir, "meta")
	os.MkdirAll(meta, 0o755)
	if doc != "" {
		os.WriteFile(filepath.Join(meta, "doc.json"), []byte(doc), 0o600)
	}
	cfg = filepath.Join(dir, "agent.yaml")
	y := "state_dir: " + dir + "/state\nrun_dir: " + dir + "/run\nsysroot: " + sr + "\nremote: \"\"\nallow_unsigned: true\nrepo_url: http://127.0.0.1:9/repo\n" +
		"metadata:\n  collectors: [local]\n  local:\n    path: [" + meta + "]\n"
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, meta
}

func TestConfigErrorsAreClear(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.yaml")
	os.WriteFile(p, []byte("poll_interval: soon\n"), 0o600)
	_, stderr, code := agentCmd(t, "--config", p, "status")
	if code == 0 || !strings.Contains(stderr, p) || !strings.Contains(stderr, "soon") {
		t.Fatalf("code %d, stderr %q", code, stderr)
	}
}

func TestStatusCheckPrintMetadata(t *testing.T) {
	doc := `{"deployments": [{"id": "d1", "name": "os", "group": "ostree", "inputs": [
	  {"name": "ostree_commit", "value": "` + strings.Repeat("ab", 32) + `"},
	  {"name": "deploy_signal_id", "value": "http://127.0.0.1:9/v1/AUTH_x/c/o?temp_url_sig=SECRETSIG&temp_url_expires=1"},
	  {"name": "deploy_signal_verb", "value": "PUT"}]}]}`
	cfg, _ := scratch(t, doc)
	out, stderr, code := agentCmd(t, "--config", cfg, "print-metadata")
	if code != 0 || strings.Contains(out, "SECRETSIG") || !strings.Contains(out, "ostree_commit") {
		t.Fatalf("print-metadata: %d %q %q", code, out, stderr)
	}
	out, stderr, code = agentCmd(t, "--config", cfg, "check", "--json")
	if code != 0 || strings.Contains(out, "SECRETSIG") {
		t.Fatalf("check: %d %q", code, stderr)
	}
	var plan struct {
		Action, Reason, Request string
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil || plan.Request != "deployment:d1" || plan.Action != "deploy" {
		t.Fatalf("check: %+v %v\n%s", plan, err, out)
	}
	out, stderr, code = agentCmd(t, "--config", cfg, "status", "--json")
	if code != 0 || !strings.Contains(out, `"deployments"`) || strings.Contains(out, "SECRETSIG") {
		t.Fatalf("status: %d %q %q", code, out, stderr)
	}
	out, _, code = agentCmd(t, "--config", cfg, "status")
	if code != 0 || !strings.Contains(out, "Phase:    idle") {
		t.Fatalf("status: %d %q", code, out)
	}
	// apply with nothing pending says so
	_, stderr, code = agentCmd(t, "--config", cfg, "apply")
	if code == 0 || !strings.Contains(stderr, "nothing to apply") {
		t.Fatalf("apply: %d %q", code, stderr)
	}
}

func TestOneAgentPerStateDir(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockAgent(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := lockAgent(dir); err == nil || !strings.Contains(err.Error(), "another gostree-agent") {
		t.Fatalf("second lock: %v", err)
	}
}

func TestHealthCheckExitStatus(t *testing.T) {
	cfg, _ := scratch(t, "")
	dir := filepath.Dir(cfg)
	req := filepath.Join(dir, "required.d")
	os.MkdirAll(req, 0o755)
	os.WriteFile(filepath.Join(req, "10-fail"), []byte("#!/bin/sh\necho broken\nexit 2\n"), 0o755)
	f, _ := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("health:\n  required_dir: " + req + "\n  wanted_dir: " + dir + "/wanted.d\n")
	f.Close()
	out, _, code := agentCmd(t, "--config", cfg, "health-check")
	if code != 1 || !strings.Contains(out, "required.d/10-fail") {
		t.Fatalf("health-check: %d %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "run", "health.json")); err != nil {
		t.Fatalf("no report saved: %v", err)
	}
	os.WriteFile(filepath.Join(req, "10-fail"), []byte("#!/bin/sh\nexit 0\n"), 0o755)
	if _, _, code := agentCmd(t, "--config", cfg, "health-check"); code != 0 {
		t.Fatalf("passing health-check exited %d", code)
	}
}
