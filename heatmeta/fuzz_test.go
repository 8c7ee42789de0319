package heatmeta

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func seedFiles(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile("testdata/" + n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseWanted(f *testing.F) {
	seedFiles(f, "server-metadata.json")
	f.Add([]byte(dep("ostree", map[string]any{"ostree_commit": commitA, "swift_container": "c", "swift_prefix": "p/",
		"reboot_policy": "fleet_lock", "fleet_lock_url": "http://127.0.0.1:1", "deploy_signal_transport": "HEAT_SIGNAL",
		"deploy_auth_url": "http://127.0.0.1:5000/v3", "deploy_user_id": "u", "deploy_password": "p", "deploy_project_id": "x",
		"deploy_stack_id": "s/i", "deploy_resource_name": "r"})))
	f.Add([]byte(dep("ostree", map[string]any{"ostree_commit": commitA, "reboot_policy": "window",
		"reboot_window": `{"days": "Mon,Wed", "start_time": "03:00", "length_minutes": "90"}`})))
	f.Add([]byte(`{"gostree": "{\"ostree_commit\": \"` + commitA + `\"}", "deployments": null}`))
	f.Add([]byte(`{"deployments": [{"group": "ostree"}, 1, null, {"group": "script"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ParseWanted(b)
		if err != nil {
			return
		}
		w2, _ := ParseWanted(b)
		if !reflect.DeepEqual(w.Deployments, w2.Deployments) {
			t.Fatal("not deterministic")
		}
		check := func(d *Desired) {
			if d.Commit.IsZero() && d.Commit.String() != strings.Repeat("0", 64) {
				t.Fatal("zero commit accepted")
			}
			switch d.Payload.Kind {
			case PayloadDefault:
				if d.Payload != (Payload{}) {
					t.Fatalf("payload %+v", d.Payload)
				}
			case PayloadGlance:
				if d.Payload.GlanceImageID == "" {
					t.Fatal("glance without id")
				}
			case PayloadSwift:
				if d.Payload.SwiftContainer == "" || strings.Contains(d.Payload.SwiftContainer, "/") {
					t.Fatal("bad container")
				}
			case PayloadURL:
				if d.Payload.RepoURL == "" {
					t.Fatal("url without url")
				}
			default:
				t.Fatalf("kind %q", d.Payload.Kind)
			}
			switch d.Reboot.Mode {
			case RebootDefault, RebootImmediate, RebootManual:
			case RebootWindow:
				if len(d.Reboot.Windows) == 0 || d.Reboot.TimeZone == "" {
					t.Fatal("window without windows")
				}
			case RebootFleetLock:
				if d.Reboot.FleetLockURL == "" || d.Reboot.FleetLockGroup == "" {
					t.Fatal("fleet lock without url")
				}
			default:
				t.Fatalf("mode %q", d.Reboot.Mode)
			}
			if _, err := json.Marshal(d); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range w.Deployments {
			if (r.Desired == nil) == (r.Err == nil) {
				t.Fatalf("desired %v with err %v", r.Desired, r.Err)
			}
			if r.Desired != nil {
				check(r.Desired)
				if r.Desired.Signal.Transport == "" {
					t.Fatal("no transport")
				}
			}
		}
		if w.Key != nil {
			check(w.Key)
		}
	})
}

func FuzzConfigDriveMeta(f *testing.F) {
	seedFiles(f, "meta_data.json")
	f.Add([]byte(`{"uuid": "u", "meta": {"gostree": {"nested": true}, "n": 1}}`))
	f.Add([]byte(`{"uuid": 5}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseConfigDriveMeta(b)
		if err == nil && m.UUID == "" {
			t.Fatal("accepted without uuid")
		}
	})
}

func FuzzCFNResponse(f *testing.F) {
	f.Add([]byte(`<DescribeStackResourceResponse><DescribeStackResourceResult><StackResourceDetail><Metadata>{"deployments": [], "os-collect-config": {"cfn": {"path": "server.Metadata"}}}</Metadata></StackResourceDetail></DescribeStackResourceResult></DescribeStackResourceResponse>`), "Metadata", "")
	f.Add([]byte(`<DescribeStackResourceResponse><DescribeStackResourceResult><StackResourceDetail><Metadata>{"a": {"b": {"c": 1}}}</Metadata></StackResourceDetail></DescribeStackResourceResult></DescribeStackResourceResponse>`), "Metadata", "a.b")
	f.Add([]byte(`<DescribeStackResourceResponse><DescribeStackResourceResult><StackResourceDetail><Metadata/></StackResourceDetail></DescribeStackResourceResult></DescribeStackResourceResponse>`), "Metadata", "")
	f.Add([]byte(`<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>`), "Metadata", "")
	f.Fuzz(func(t *testing.T, b []byte, field, sub string) {
		obj, err := ParseCFNResponse(b, field, sub)
		if err != nil {
			return
		}
		if _, err := parseObject(obj); err != nil {
			t.Fatalf("result %q is not an object: %v", obj, err)
		}
	})
}

func FuzzCFNInitData(f *testing.F) {
	seedFiles(f, "user_data.mime")
	f.Add([]byte("#!/bin/sh\necho hi\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: text/x-cfninitdata\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"cfn-init-data\"\n\ne30=\n--B--\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		obj, err := CFNInitData(b)
		if err != nil || obj == nil {
			return
		}
		if _, err := parseObject(obj); err != nil {
			t.Fatalf("result %q is not an object: %v", obj, err)
		}
	})
}

func FuzzApplyTransport(f *testing.F) {
	f.Add([]byte(`{"collectors": ["request", "local"], "request": {"metadata_url": "http://127.0.0.1/x"}, "heat": null, "cfn": null}`))
	f.Add([]byte(`{"collectors": "heat", "heat": {"auth_url": "http://127.0.0.1:5000/v3", "user_id": "u", "password": "p", "project_id": "p", "stack_id": "s/i", "resource_name": "r", "region_name": "R"}, "command": "x"}`))
	f.Add([]byte(`{"cfn": {"path": ["a.Metadata", "b.Metadata"], "metadata_url": "http://127.0.0.1:8000/v1/"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		base := Config{Collectors: []string{"heat_local"}}
		cfg, _, err := ApplyTransport(base, b)
		if err != nil {
			if !reflect.DeepEqual(cfg, base) {
				t.Fatal("config changed on error")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("result invalid: %v", err)
		}
		for _, n := range cfg.collectors() {
			if !slices.Contains(knownSources, n) {
				t.Fatalf("collector %q", n)
			}
		}
	})
}

func FuzzEncodeOutcome(f *testing.F) {
	f.Add("staged\nbooted\n", "", 0, 1000)
	f.Add(strings.Repeat("ü<", 3000), strings.Repeat("x", 5000), 1, 2000)
	f.Fuzz(func(t *testing.T, stdout, stderr string, code int, max int) {
		if max < 200 || max > 1<<20 {
			return
		}
		b, err := EncodeOutcome(Outcome{StatusCode: code, Stdout: stdout, Stderr: stderr, Outputs: map[string]any{"booted_commit": commitA}}, max)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > max || !json.Valid(b) {
			t.Fatalf("%d bytes (max %d), valid %v", len(b), max, json.Valid(b))
		}
	})
}

func FuzzRedact(f *testing.F) {
	seedFiles(f, "server-metadata.json", "meta_data.json")
	f.Add([]byte(`{"x": ["https://h/p?Signature=abc", {"name": "deploy_password", "value": 5}], "Password": null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := Redact(b)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q", out)
		}
		again, err := Redact(out)
		if err != nil || !jsonEqual(again, out) {
			t.Fatalf("not idempotent: %s vs %s (%v)", out, again, err)
		}
	})
}
