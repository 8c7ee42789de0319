package agent

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// Metrics are the agent's counters, served in the Prometheus text format
// (written by hand: the client library would triple the agent's memory
// for a dozen numbers).
type Metrics struct {
	polls, pollErrors          atomic.Int64
	jobsStarted                atomic.Int64
	jobsOK, jobsFailed         atomic.Int64
	failures                   atomic.Int64
	pulledBytes, pulledObjects atomic.Int64
	deployments, reboots       atomic.Int64
	rollbacks, signalErrors    atomic.Int64

	mu    sync.Mutex
	phase Phase
}

func newMetrics() *Metrics { return &Metrics{phase: PhaseIdle} }

func (m *Metrics) setPhase(p Phase) {
	m.mu.Lock()
	m.phase = p
	m.mu.Unlock()
}

func (m *Metrics) jobDone(ok bool) {
	if ok {
		m.jobsOK.Add(1)
	} else {
		m.jobsFailed.Add(1)
	}
}

var allPhases = []Phase{PhaseIdle, PhaseResolve, PhasePull, PhaseStage, PhaseReboot, PhaseRebooting, PhaseVerify, PhaseRollback, PhaseReport}

// WriteTo writes the metrics in the Prometheus text exposition format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	var n int64
	p := func(format string, a ...any) {
		k, _ := fmt.Fprintf(w, format, a...)
		n += int64(k)
	}
	counter := func(name, help string, v int64) {
		p("# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	counter("gostree_agent_polls_total", "Metadata polls.", m.polls.Load())
	counter("gostree_agent_poll_errors_total", "Metadata sources that failed.", m.pollErrors.Load())
	counter("gostree_agent_jobs_started_total", "Update jobs started.", m.jobsStarted.Load())
	p("# HELP gostree_agent_jobs_finished_total Requests finished, by result.\n# TYPE gostree_agent_jobs_finished_total counter\n")
	p("gostree_agent_jobs_finished_total{result=\"success\"} %d\n", m.jobsOK.Load())
	p("gostree_agent_jobs_finished_total{result=\"failure\"} %d\n", m.jobsFailed.Load())
	counter("gostree_agent_retries_total", "Transient failures retried with backoff.", m.failures.Load())
	counter("gostree_agent_pulled_bytes_total", "Bytes pulled.", m.pulledBytes.Load())
	counter("gostree_agent_pulled_objects_total", "Objects pulled.", m.pulledObjects.Load())
	counter("gostree_agent_deployments_total", "Deployments staged or written.", m.deployments.Load())
	counter("gostree_agent_reboots_total", "Reboots requested into a new deployment.", m.reboots.Load())
	counter("gostree_agent_rollbacks_total", "Deployments that failed after reboot.", m.rollbacks.Load())
	counter("gostree_agent_signal_errors_total", "Signals to Heat that failed.", m.signalErrors.Load())
	m.mu.Lock()
	cur := m.phase
	m.mu.Unlock()
	p("# HELP gostree_agent_phase The phase of the current job (1 for the current one).\n# TYPE gostree_agent_phase gauge\n")
	for _, ph := range allPhases {
		v := 0
		if ph == cur {
			v = 1
		}
		p("gostree_agent_phase{phase=%q} %d\n", string(ph), v)
	}
	return n, nil
}

// ServeHTTP serves the metrics.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.WriteTo(w)
}

// Metrics returns the agent's metrics.
func (a *Agent) Metrics() *Metrics { return a.metrics }
