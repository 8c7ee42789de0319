package heatmeta

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

const commitA = "3a1c5e0f9b7d2c4a6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d"

func readSample(t testing.TB, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseWantedSample(t *testing.T) {
	w, err := ParseWanted(readSample(t, "server-metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Deployments) != 1 || len(w.Problems) != 0 || w.Key != nil || w.KeyErr != nil {
		t.Fatalf("got %+v", w)
	}
	r := w.Deployments[0]
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	d := r.Desired
	if d.Commit.String() != commitA || d.Ref != "exampleos/x86_64/stable" || d.Version != "2026.11.1" {
		t.Errorf("target: %+v", d)
	}
	if d.Origin != OriginDeployment || d.DeploymentID != "6f0c2b1a-9d8e-4f7a-b6c5-d4e3f2a1b0c9" || d.DeploymentName != "os_image" || d.Action != "UPDATE" {
		t.Errorf("identity: %+v", d)
	}
	if d.Payload != (Payload{Kind: PayloadGlance, GlanceImageID: "0b5e7a3c-1d2f-4e6a-8b9c-0d1e2f3a4b5c"}) {
		t.Errorf("payload: %+v", d.Payload)
	}
	want := Window{Days: []time.Weekday{time.Saturday, time.Sunday}, Start: 22*time.Hour + 30*time.Minute, Length: time.Hour}
	if d.Reboot.Mode != RebootWindow || d.Reboot.TimeZone != "Europe/Berlin" || len(d.Reboot.Windows) != 1 ||
		d.Reboot.Windows[0].Start != want.Start || d.Reboot.Windows[0].Length != want.Length ||
		len(d.Reboot.Windows[0].Days) != 2 || d.Reboot.Windows[0].Days[1] != time.Sunday {
		t.Errorf("reboot: %+v", d.Reboot)
	}
	if d.AllowDowngrade || d.ServerID != "1f0d7c43-2e4f-4b4f-a6c3-4f7d1d9e2a11" {
		t.Errorf("allow_downgrade %v server %q", d.AllowDowngrade, d.ServerID)
	}
	// The agent persists what it works on (in a 0600 state file): the
	// JSON form must round-trip.
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back Desired
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(&back, d) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back, *d)
	}
	s := d.Signal
	if s.Transport != TempURLSignal || s.Verb != "PUT" || !strings.Contains(s.URL, "temp_url_sig=") || s.StackID != "overcloud-Compute-0/9b2d7d1e-6a4c-4b8e-8f0e-3c1d2b7a9e55" {
		t.Errorf("signal: %+v", s)
	}
	if len(d.Outputs) != 3 || !d.Outputs[2].ErrorOutput {
		t.Errorf("outputs: %+v", d.Outputs)
	}
	// Secrets stay out of the printed forms.
	for _, f := range []string{s.String(), s.GoString()} {
		if strings.Contains(f, "temp_url_sig") || strings.Contains(f, "8f2c1d0e") {
			t.Errorf("signal target printed with its signature: %s", f)
		}
	}
}

// dep builds a metadata document with one deployment of group g.
func dep(g string, inputs map[string]any) json.RawMessage {
	var in []map[string]any
	for k, v := range inputs {
		in = append(in, map[string]any{"name": k, "value": v, "type": "String"})
	}
	doc := map[string]any{"deployments": []any{map[string]any{
		"id": "d1", "name": "os_image", "group": g, "inputs": in, "outputs": nil, "options": nil, "config": "",
	}}}
	b, _ := json.Marshal(doc)
	return b
}

func TestParseWantedBadInputs(t *testing.T) {
	signal := map[string]any{
		"deploy_signal_transport": "CFN_SIGNAL",
		"deploy_signal_id":        "http://127.0.0.1:8000/v1/signal/arn%3Aopenstack%3Aheat%3A%3Ap%3Astacks%2Fs%2Fid%2Fresources%2Fos_image?Timestamp=2026&SignatureMethod=HmacSHA256&AWSAccessKeyId=k&SignatureVersion=2&Signature=abc",
	}
	cases := []struct {
		name   string
		inputs map[string]any
		input  string // the input the error must name
		frag   string
	}{
		{"missing commit", map[string]any{}, "ostree_commit", "missing"},
		{"short commit", map[string]any{"ostree_commit": "3a1c5e0f"}, "ostree_commit", "64"},
		{"uppercase commit", map[string]any{"ostree_commit": strings.ToUpper(commitA)}, "ostree_commit", "hex"},
		{"commit as list", map[string]any{"ostree_commit": []string{commitA}}, "ostree_commit", "want a string"},
		{"bad ref", map[string]any{"ostree_commit": commitA, "ostree_ref": "a//b"}, "ostree_ref", ""},
		{"two payloads", map[string]any{"ostree_commit": commitA, "glance_image_id": "0b5e7a3c-1d2f-4e6a-8b9c-0d1e2f3a4b5c", "swift_container": "c"}, "glance_image_id", "only one"},
		{"bad image id", map[string]any{"ostree_commit": commitA, "glance_image_id": "latest"}, "glance_image_id", "UUID"},
		{"prefix alone", map[string]any{"ostree_commit": commitA, "swift_prefix": "repo/"}, "swift_prefix", "without swift_container"},
		{"container slash", map[string]any{"ostree_commit": commitA, "swift_container": "a/b"}, "swift_container", ""},
		{"repo url scheme", map[string]any{"ostree_commit": commitA, "ostree_repo_url": "ftp://x/repo"}, "ostree_repo_url", "http"},
		{"source mismatch", map[string]any{"ostree_commit": commitA, "source": "swift", "glance_image_id": "0b5e7a3c-1d2f-4e6a-8b9c-0d1e2f3a4b5c"}, "source", "glance"},
		{"bad policy", map[string]any{"ostree_commit": commitA, "reboot_policy": "whenever"}, "reboot_policy", "whenever"},
		{"window missing", map[string]any{"ostree_commit": commitA, "reboot_policy": "window"}, "reboot_window", "missing"},
		{"window bad day", map[string]any{"ostree_commit": commitA, "reboot_policy": "window", "reboot_window": `{"days": ["Funday"], "start_time": "01:00", "length_minutes": 30}`}, "reboot_window", "Funday"},
		{"window bad time", map[string]any{"ostree_commit": commitA, "reboot_policy": "window", "reboot_window": map[string]any{"days": "Mon", "start_time": "25:00", "length_minutes": 30}}, "reboot_window", "start_time"},
		{"window bad tz", map[string]any{"ostree_commit": commitA, "reboot_policy": "window", "reboot_window": map[string]any{"days": "Mon", "start_time": "01:00", "length_minutes": 30}, "reboot_time_zone": "Mars/Olympus"}, "reboot_time_zone", "Mars"},
		{"fleet lock no url", map[string]any{"ostree_commit": commitA, "reboot_policy": "fleet_lock"}, "fleet_lock_url", "missing"},
		{"fleet lock bad group", map[string]any{"ostree_commit": commitA, "reboot_policy": "fleet_lock", "fleet_lock_url": "http://127.0.0.1:1/", "fleet_lock_group": "a b"}, "fleet_lock_group", ""},
		{"downgrade word", map[string]any{"ostree_commit": commitA, "allow_downgrade": "perhaps"}, "allow_downgrade", "perhaps"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := map[string]any{}
			for k, v := range signal {
				in[k] = v
			}
			for k, v := range c.inputs {
				in[k] = v
			}
			w, err := ParseWanted(dep("ostree", in))
			if err != nil {
				t.Fatal(err)
			}
			if len(w.Deployments) != 1 {
				t.Fatalf("deployments: %+v", w)
			}
			r := w.Deployments[0]
			var ie *InputError
			if !errors.As(r.Err, &ie) || ie.Input != c.input || r.Desired != nil {
				t.Fatalf("err = %v (%#v), want one naming input %s", r.Err, r.Err, c.input)
			}
			if !strings.Contains(r.Err.Error(), c.frag) || !strings.Contains(r.Err.Error(), `deployment "os_image" (d1)`) {
				t.Errorf("error %q lacks %q or the deployment", r.Err, c.frag)
			}
			// The failure can still be signalled.
			if r.Signal.Transport != CFNSignal || r.Signal.Verb != "POST" {
				t.Errorf("signal target lost: %v", r.Signal)
			}
		})
	}
}

func TestParseWantedSignalInputs(t *testing.T) {
	base := map[string]any{"ostree_commit": commitA}
	with := func(kv map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range kv {
			m[k] = v
		}
		return m
	}
	ok := []struct {
		in   map[string]any
		want Transport
	}{
		{with(nil), NoSignal},
		{with(map[string]any{"deploy_signal_transport": "NO_SIGNAL"}), NoSignal},
		{with(map[string]any{"deploy_signal_id": "https://h/v1/AUTH_a/c/o?temp_url_sig=x", "deploy_signal_verb": "PUT"}), TempURLSignal},
		{with(map[string]any{"deploy_signal_id": "https://h:8000/v1/signal/arn?Signature=x"}), CFNSignal},
		{with(map[string]any{"deploy_signal_transport": "HEAT_SIGNAL", "deploy_auth_url": "http://127.0.0.1:5000/v3", "deploy_user_id": "u",
			"deploy_password": "p", "deploy_project_id": "pr", "deploy_stack_id": "s/i", "deploy_resource_name": "r"}), HeatSignal},
		{with(map[string]any{"deploy_signal_transport": "ZAQAR_SIGNAL", "deploy_queue_id": "q"}), ZaqarSignal},
	}
	for i, c := range ok {
		w, err := ParseWanted(dep("ostree", c.in))
		if err != nil || len(w.Deployments) != 1 || w.Deployments[0].Err != nil {
			t.Fatalf("%d: %v %+v", i, err, w)
		}
		if got := w.Deployments[0].Desired.Signal.Transport; got != c.want {
			t.Errorf("%d: transport %s, want %s", i, got, c.want)
		}
	}
	bad := []struct {
		in    map[string]any
		input string
	}{
		{with(map[string]any{"deploy_signal_transport": "TEMP_URL_SIGNAL"}), "deploy_signal_id"},
		{with(map[string]any{"deploy_signal_transport": "CFN_SIGNAL", "deploy_signal_id": "not a url"}), "deploy_signal_id"},
		{with(map[string]any{"deploy_signal_id": "https://h/x", "deploy_signal_verb": "DELETE"}), "deploy_signal_verb"},
		{with(map[string]any{"deploy_signal_transport": "HEAT_SIGNAL", "deploy_auth_url": "http://h/v3", "deploy_user_id": "u", "deploy_project_id": "p", "deploy_stack_id": "s/i", "deploy_resource_name": "r"}), "deploy_password"},
		{with(map[string]any{"deploy_signal_transport": "HEAT_SIGNAL", "deploy_auth_url": "http://h/v3", "deploy_user_id": "u", "deploy_password": "p", "deploy_project_id": "p", "deploy_stack_id": "noslash", "deploy_resource_name": "r"}), "deploy_stack_id"},
		{with(map[string]any{"deploy_signal_transport": "PIGEON"}), "deploy_signal_transport"},
	}
	for i, c := range bad {
		w, err := ParseWanted(dep("ostree", c.in))
		if err != nil {
			t.Fatal(err)
		}
		var ie *InputError
		if !errors.As(w.Deployments[0].Err, &ie) || ie.Input != c.input {
			t.Errorf("%d: err %v, want input %s", i, w.Deployments[0].Err, c.input)
		}
	}
}

func TestParseWantedOtherGroupsAndProblems(t *testing.T) {
	doc := `{"deployments": [
		{"id": "a", "name": "s", "group": "script", "inputs": "not even a list", "config": "#!/bin/sh"},
		{"id": "b", "name": "oac", "config": {"x": 1}},
		{"id": "c", "name": "weird", "group": 7},
		"not an object",
		{"id": "d", "name": "bad", "group": "ostree", "inputs": {"ostree_commit": "x"}}
	]}`
	w, err := ParseWanted(json.RawMessage(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Problems) != 1 || !strings.Contains(w.Problems[0].Error(), "deployments[3]") {
		t.Errorf("problems: %v", w.Problems)
	}
	if len(w.Deployments) != 1 || w.Deployments[0].Err == nil || !strings.Contains(w.Deployments[0].Err.Error(), "malformed") {
		t.Errorf("deployments: %+v", w.Deployments)
	}
	for _, bad := range []string{`[]`, `null`, `{"deployments": {"not": "a list"}}`, `{`} {
		if _, err := ParseWanted(json.RawMessage(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestParseMetadataKey(t *testing.T) {
	obj := `{"gostree": {"ostree_commit": "` + commitA + `", "ostree_repo_url": "http://127.0.0.1:8081/repo", "reboot_policy": "fleet_lock",
		"fleet_lock_url": "http://127.0.0.1:9000", "allow_downgrade": "True"}}`
	w, err := ParseWanted(json.RawMessage(obj))
	if err != nil || w.KeyErr != nil || w.Key == nil {
		t.Fatalf("%v %v", err, w.KeyErr)
	}
	k := w.Key
	if k.Origin != OriginMetadataKey || k.Signal.Transport != NoSignal || k.Payload.Kind != PayloadURL ||
		k.Reboot.FleetLockGroup != "default" || !k.AllowDowngrade {
		t.Errorf("got %+v", k)
	}
	// Nova server metadata (config drive) keeps values as strings.
	inner, _ := json.Marshal(`{"ostree_commit":"` + commitA + `","swift_container":"repo","swift_prefix":"x86_64/"}`)
	w, err = ParseWanted(json.RawMessage(`{"gostree": ` + string(inner) + `}`))
	if err != nil || w.KeyErr != nil || w.Key.Payload != (Payload{Kind: PayloadSwift, SwiftContainer: "repo", SwiftPrefix: "x86_64/"}) {
		t.Fatalf("%v %v %+v", err, w.KeyErr, w.Key)
	}
	w, err = ParseWanted(json.RawMessage(`{"gostree": {"ostree_ref": "a/b"}}`))
	var ie *InputError
	if err != nil || !errors.As(w.KeyErr, &ie) || ie.Input != "ostree_commit" || !strings.Contains(w.KeyErr.Error(), "metadata key gostree") {
		t.Fatalf("%v %v", err, w.KeyErr)
	}
}

func TestMergeLikeOsApplyConfig(t *testing.T) {
	got, err := Merge([]Doc{
		{Key: "heat_local", Raw: json.RawMessage(`{"a": {"x": 1, "y": [1, 2]}, "deployments": [1], "big": 12345678901234567890}`)},
		{Key: "request", Raw: json.RawMessage(`{"a": {"y": [3], "z": "s"}, "deployments": [2, 3]}`)},
		{Key: "local/override", Raw: json.RawMessage(`{"a": {"x": null}}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a": {"x": null, "y": [3], "z": "s"}, "big": 12345678901234567890, "deployments": [2, 3]}`
	if !jsonEqual(got, []byte(want)) {
		t.Fatalf("merged %s, want %s", got, want)
	}
	if !strings.Contains(string(got), "12345678901234567890") {
		t.Errorf("big number not kept exactly: %s", got)
	}
}
