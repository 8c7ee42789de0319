package heatmeta

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	var m map[string]any
	json.Unmarshal(readSample(t, "server-metadata.json"), &m)
	occ := m["os-collect-config"].(map[string]any)
	occ["heat"] = map[string]any{"user_id": "u1", "password": "hunter2-stack-user", "auth_url": "http://127.0.0.1:5000/v3"}
	occ["cfn"] = map[string]any{"access_key_id": "AK", "secret_access_key": "cfn-secret-key-9"}
	deps := m["deployments"].([]any)
	d := deps[1].(map[string]any)
	d["inputs"] = append(d["inputs"].([]any), map[string]any{"name": "deploy_password", "value": "deploy-pw-31337"})
	raw, _ := json.Marshal(m)
	out, err := Redact(raw)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, secret := range []string{"hunter2-stack-user", "cfn-secret-key-9", "deploy-pw-31337", "temp_url_sig", "8f2c1d0e9b8a", "1d2c3b4a5f6e"} {
		if strings.Contains(s, secret) {
			t.Errorf("%q left in %s", secret, s)
		}
	}
	for _, keep := range []string{commitA, "exampleos/x86_64/stable", "http://127.0.0.1:8080/v1/AUTH_6a1b/", "Europe/Berlin", "http://127.0.0.1:5000/v3"} {
		if !strings.Contains(s, keep) {
			t.Errorf("%q lost", keep)
		}
	}
	w, err := ParseWanted(out)
	if err != nil || len(w.Deployments) != 1 {
		t.Fatalf("redacted document no longer parses: %v", err)
	}
}
