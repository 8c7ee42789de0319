package agent

import (
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestMetricsExposition(t *testing.T) {
	m := newMetrics()
	m.polls.Add(3)
	m.jobDone(true)
	m.jobDone(false)
	m.setPhase(PhasePull)
	srv := httptest.NewServer(m)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("content type %q", ct)
	}
	text := string(b)
	for _, want := range []string{
		"gostree_agent_polls_total 3\n",
		`gostree_agent_jobs_finished_total{result="success"} 1` + "\n",
		`gostree_agent_jobs_finished_total{result="failure"} 1` + "\n",
		`gostree_agent_phase{phase="pull"} 1` + "\n",
		`gostree_agent_phase{phase="idle"} 0` + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q", want)
		}
	}
	// every sample line is NAME[{labels}] VALUE, every family has HELP and TYPE
	line := regexp.MustCompile(`^(# (HELP|TYPE) gostree_agent_[a-z_]+ .+|gostree_agent_[a-z_]+(\{[a-z]+="[a-z]+"\})? [0-9]+)$`)
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if !line.MatchString(l) {
			t.Errorf("malformed line %q", l)
		}
	}
	if n := strings.Count(text, "# TYPE "); n != strings.Count(text, "# HELP ") || n < 10 {
		t.Errorf("%d TYPE lines", n)
	}
}
