package heatmeta

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// serverMetadata is the sample with its request transport pointed at u.
func serverMetadata(t *testing.T, u string) []byte {
	var m map[string]any
	if err := json.Unmarshal(readSample(t, "server-metadata.json"), &m); err != nil {
		t.Fatal(err)
	}
	m["os-collect-config"].(map[string]any)["request"] = map[string]any{"metadata_url": u}
	b, _ := json.Marshal(m)
	return b
}

type collectorEnv struct {
	t         *testing.T
	dir       string
	heatLocal string
	localDir  string
	sw        *fakeSwift
	c         *Collector
	cache     *Cache
}

func newCollectorEnv(t *testing.T, cfg Config) *collectorEnv {
	dir := t.TempDir()
	e := &collectorEnv{t: t, dir: dir, heatLocal: filepath.Join(dir, "cfn-init-data"), localDir: filepath.Join(dir, "local-data"), sw: newFakeSwift(t)}
	os.MkdirAll(e.localDir, 0o700)
	if cfg.Collectors == nil {
		cfg.Collectors = []string{SourceHeatLocal, SourceRequest, SourceLocal}
	}
	cfg.HeatLocal.Path = []string{e.heatLocal}
	cfg.Local.Path = []string{e.localDir}
	var err error
	if e.cache, err = OpenCache(filepath.Join(dir, "state")); err != nil {
		t.Fatal(err)
	}
	if e.c, err = NewCollector(CollectorOptions{Config: cfg, Cache: e.cache}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *collectorEnv) collect() *Collection {
	e.t.Helper()
	r, err := e.c.Collect(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func keys(docs []Doc) []string {
	var k []string
	for _, d := range docs {
		k = append(k, d.Key)
	}
	return k
}

func TestCollectorBootstrapAndSteadyState(t *testing.T) {
	e := newCollectorEnv(t, Config{})
	u := e.sw.url("server-meta")
	writeFile(t, e.heatLocal, `{"os-collect-config": {"collectors": ["request", "local"], "request": {"metadata_url": "`+u+`"}}}`, 0o600)
	e.sw.put("server-meta", serverMetadata(t, u))
	writeFile(t, filepath.Join(e.localDir, "override"), `{"gostree": {"ostree_commit": "`+commitA+`"}}`, 0o600)

	r := e.collect()
	if !slices.Equal(r.Collectors, []string{"request", "local"}) || !slices.Equal(keys(r.Docs), []string{"request", "local/override"}) {
		t.Fatalf("collectors %v docs %v errors %v", r.Collectors, keys(r.Docs), r.Errors)
	}
	if len(r.Errors) != 0 || !r.Changed() {
		t.Fatalf("errors %v changed %v", r.Errors, r.ChangedKeys)
	}
	w, err := r.Wanted()
	if err != nil || len(w.Deployments) != 1 || w.Deployments[0].Err != nil || w.Key == nil {
		t.Fatalf("wanted: %v %+v", err, w)
	}
	if err := e.c.Commit(r); err != nil {
		t.Fatal(err)
	}

	// Steady state: one conditional GET, answered 304; nothing changed.
	gets := e.sw.gets
	r = e.collect()
	if r.Changed() || len(r.Errors) != 0 || e.sw.gets != gets+1 || e.sw.notMod != 1 {
		t.Fatalf("steady state: changed %v errors %v, %d GETs (%d 304)", r.ChangedKeys, r.Errors, e.sw.gets-gets, e.sw.notMod)
	}
	if !slices.Equal(keys(r.Docs), []string{"request", "local/override"}) {
		t.Fatalf("docs %v", keys(r.Docs))
	}

	// A stack update: changed until committed.
	upd := strings.Replace(string(serverMetadata(t, u)), commitA, strings.Repeat("b", 64), 1)
	e.sw.put("server-meta", []byte(upd))
	for range 2 {
		r = e.collect()
		if !slices.Equal(r.ChangedKeys, []string{"request"}) {
			t.Fatalf("changed %v", r.ChangedKeys)
		}
	}
	w, _ = r.Wanted()
	if w.Deployments[0].Desired.Commit.String() != strings.Repeat("b", 64) {
		t.Fatalf("new target not seen")
	}
	e.c.Commit(r)
	if r = e.collect(); r.Changed() {
		t.Fatalf("changed after commit: %v", r.ChangedKeys)
	}
}

func TestCollectorFailingSourceDoesNotBlock(t *testing.T) {
	e := newCollectorEnv(t, Config{})
	u := e.sw.url("server-meta")
	writeFile(t, e.heatLocal, `{"os-collect-config": {"collectors": ["heat_local", "request", "local"], "request": {"metadata_url": "`+u+`"}}}`, 0o600)
	e.sw.put("server-meta", serverMetadata(t, u))
	writeFile(t, filepath.Join(e.localDir, "x"), `{"x": 1}`, 0o600)
	e.c.Commit(e.collect())

	// Swift down: the request error is reported, its cached document
	// stands in, and local is still read.
	writeFile(t, filepath.Join(e.localDir, "x"), `{"x": 2}`, 0o600)
	e.sw.failNext = []int{503}
	r := e.collect()
	if len(r.Errors) != 1 || r.Errors[0].Source != "request" || !r.Errors[0].Retryable() {
		t.Fatalf("errors: %v", r.Errors)
	}
	if strings.Contains(r.Errors[0].Error(), "temp_url_sig") {
		t.Errorf("error shows the TempURL: %v", r.Errors[0])
	}
	if !slices.Equal(r.Stale, []string{"request"}) || !slices.Equal(r.ChangedKeys, []string{"local/x"}) {
		t.Fatalf("stale %v changed %v", r.Stale, r.ChangedKeys)
	}
	w, err := r.Wanted()
	if err != nil || len(w.Deployments) != 1 {
		t.Fatalf("deployment lost while Swift is down: %v %+v", err, w)
	}
	// Bad JSON in a local file: only local fails.
	writeFile(t, filepath.Join(e.localDir, "x"), `{`, 0o600)
	r = e.collect()
	if len(r.Errors) != 1 || r.Errors[0].Source != "local" || r.Errors[0].Retryable() {
		t.Fatalf("errors: %v", r.Errors)
	}
	if !slices.Contains(keys(r.Docs), "request") {
		t.Fatal("request doc missing")
	}
}

func TestCollectorSwitchesTransport(t *testing.T) {
	fc := newFakeCloud(t)
	e := newCollectorEnv(t, Config{})
	u := e.sw.url("server-meta")
	writeFile(t, e.heatLocal, `{"os-collect-config": {"collectors": ["request", "local"], "request": {"metadata_url": "`+u+`"}}}`, 0o600)
	e.sw.put("server-meta", serverMetadata(t, u))
	if r := e.collect(); !slices.Equal(r.Collectors, []string{"request", "local"}) {
		t.Fatalf("collectors %v", r.Collectors)
	}
	// Heat moves the server to POLL_SERVER_HEAT and nulls the old
	// transport.
	var m map[string]any
	json.Unmarshal(serverMetadata(t, u), &m)
	m["os-collect-config"] = map[string]any{
		"collectors": []string{"heat", "local"}, "request": nil,
		"heat": map[string]any{"auth_url": fc.authURL(), "user_id": fc.userID, "password": fc.password, "project_id": fc.projectID,
			"stack_id": fc.stack, "resource_name": fc.resource, "region_name": "RegionOne"},
		"command": "rm -rf /", "cachedir": "/tmp/evil",
	}
	b, _ := json.Marshal(m)
	e.sw.put("server-meta", b)
	fc.setMetadata(string(b))
	r := e.collect()
	if !slices.Equal(r.Collectors, []string{"heat", "local"}) || !slices.Equal(keys(r.Docs), []string{"heat"}) || len(r.Errors) != 0 {
		t.Fatalf("collectors %v docs %v errors %v", r.Collectors, keys(r.Docs), r.Errors)
	}
	if !slices.Equal(r.Ignored, []string{"cachedir", "command"}) {
		t.Errorf("ignored %v", r.Ignored)
	}
	// Stays on heat; the token is reused.
	r = e.collect()
	if !slices.Equal(r.Collectors, []string{"heat", "local"}) || fc.auths != 1 || fc.metaGets != 2 {
		t.Fatalf("collectors %v auths %d gets %d", r.Collectors, fc.auths, fc.metaGets)
	}
	// A restart (new Collector on the same state) finds its way back.
	c2, _ := NewCollector(CollectorOptions{Config: Config{Collectors: []string{SourceHeatLocal, SourceRequest, SourceLocal},
		HeatLocal: HeatLocalConfig{Path: []string{e.heatLocal}}, Local: LocalConfig{Path: []string{e.localDir}}}, Cache: e.cache})
	r, err := c2.Collect(ctx)
	if err != nil || !slices.Equal(r.Collectors, []string{"heat", "local"}) {
		t.Fatalf("after restart: %v %v %v", err, r.Collectors, r.Errors)
	}
}

func TestCollectorEC2CannotChangeTransport(t *testing.T) {
	drive := t.TempDir()
	writeFile(t, filepath.Join(drive, "ec2", "latest", "meta-data.json"),
		`{"hostname": "h", "os-collect-config": {"collectors": ["request"], "request": {"metadata_url": "http://127.0.0.1:1/evil"}}}`, 0o600)
	e := newCollectorEnv(t, Config{Collectors: []string{SourceEC2, SourceLocal}, ConfigDrive: ConfigDriveConfig{Dir: drive}})
	r := e.collect()
	if len(r.Errors) != 0 || !slices.Equal(r.Collectors, []string{"ec2", "local"}) || !slices.Equal(keys(r.Docs), []string{"ec2"}) {
		t.Fatalf("ec2 changed the transport: %v %v %v", r.Collectors, keys(r.Docs), r.Errors)
	}
	// ec2 is immutable once cached: the drive is not read again.
	os.RemoveAll(filepath.Join(drive, "ec2"))
	r = e.collect()
	if len(r.Errors) != 0 || !slices.Equal(keys(r.Docs), []string{"ec2"}) {
		t.Fatalf("%v %v", r.Errors, keys(r.Docs))
	}
}

func TestCollectorNotModifiedWithoutCache(t *testing.T) {
	e := newCollectorEnv(t, Config{Collectors: []string{SourceRequest}})
	e.c.base.Request.MetadataURL = e.sw.url("m")
	e.sw.put("m", []byte(`{"a": 1}`))
	e.collect()
	os.RemoveAll(e.cache.Dir())
	os.MkdirAll(e.cache.Dir(), 0o700)
	r := e.collect()
	if len(r.Errors) != 1 || !r.Errors[0].Retryable() {
		t.Fatalf("errors %v", r.Errors)
	}
	r = e.collect()
	if len(r.Errors) != 0 || !slices.Equal(keys(r.Docs), []string{"request"}) {
		t.Fatalf("not recovered: %v %v", r.Errors, keys(r.Docs))
	}
}

func TestApplyTransport(t *testing.T) {
	base := Config{Collectors: []string{"heat_local", "local"}, CFN: CFNConfig{HintPath: "/hint"}}
	got, ign, err := ApplyTransport(base, json.RawMessage(`{"collectors": ["ec2", "zaqar", "cfn", "cfn", "local"],
		"cfn": {"metadata_url": "http://127.0.0.1:8000/v1/", "access_key_id": "a", "secret_access_key": "s", "stack_name": "st", "path": "server.Metadata", "ca_certificate": "/x"},
		"polling_interval": 1, "heat": null}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Collectors, []string{"ec2", "cfn", "local"}) || got.CFN.HintPath != "/hint" || !slices.Equal(got.CFN.Path, []string{"server.Metadata"}) || got.CFN.StackName != "st" {
		t.Errorf("cfg %+v", got)
	}
	if !slices.Equal(ign, []string{"cfn.ca_certificate", "collectors: zaqar", "collectors: cfn", "polling_interval"}) {
		t.Errorf("ignored %q", ign)
	}
	for _, bad := range []string{`[]`, `{"collectors": 5}`, `{"heat": "x"}`, `{"heat": {"password": 5}}`, `{"cfn": {"path": [1]}}`} {
		if _, _, err := ApplyTransport(base, json.RawMessage(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
