package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gostree/gostree/heatmeta"
	"github.com/gostree/gostree/internal/atomicfile"
	"github.com/gostree/gostree/ostree"
)

// StateVersion is the version of state.json this agent writes. A newer
// file is refused (an older agent must not misread it); older versions are
// upgraded when read.
const StateVersion = 1

// Phase is a job's position in the state machine (see the package doc).
type Phase string

const (
	PhaseIdle      Phase = "idle"
	PhaseResolve   Phase = "resolve"
	PhasePull      Phase = "pull"
	PhaseStage     Phase = "stage"
	PhaseReboot    Phase = "reboot"
	PhaseRebooting Phase = "rebooting"
	PhaseVerify    Phase = "verify"
	PhaseRollback  Phase = "rollback"
	PhaseReport    Phase = "report"
)

// State is what the agent keeps across restarts and reboots.
type State struct {
	Version int `json:"version"`
	// Job is the target being worked on, nil when idle.
	Job *Job `json:"job,omitempty"`
	// Blocked is a target that failed or was rolled back: it is not tried
	// again until metadata names another commit.
	Blocked *Blocked `json:"blocked,omitempty"`
	// Handled are the most recent finished requests (deployment id or
	// metadata key), so a finished one is neither redone nor signalled
	// twice. At most maxHandled are kept.
	Handled []Handled `json:"handled,omitempty"`
	// Last is the outcome of the last finished job.
	Last *Handled `json:"last,omitempty"`
	// LastPoll and LastPollError describe the last metadata poll.
	LastPoll      time.Time `json:"last_poll,omitzero"`
	LastPollError string    `json:"last_poll_error,omitempty"`
}

const maxHandled = 64

// Job is one target on its way through the phases.
type Job struct {
	// Key identifies the request: "deployment:ID" for a software
	// deployment, "metadata:COMMIT" for the gostree metadata key.
	Key     string           `json:"key"`
	Desired heatmeta.Desired `json:"desired"`
	Phase   Phase            `json:"phase"`
	Started time.Time        `json:"started"`
	// Attempts counts consecutive failures of the current phase; NextTry
	// is when to try again; LastError is the last failure.
	Attempts  int       `json:"attempts,omitempty"`
	NextTry   time.Time `json:"next_try,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// Source describes where the commit comes from (after resolve).
	Source string `json:"source,omitempty"`
	// Progress of the pull.
	Progress *Progress `json:"progress,omitempty"`
	// Previous is the commit booted when the job started.
	Previous ostree.Checksum `json:"previous_commit,omitzero"`
	// Deployment is the staged deployment's CSUM.SERIAL.
	Deployment string `json:"deployment,omitempty"`
	// Reboot: why we wait (policy decision), the boot id when the reboot
	// was requested and when.
	RebootWait string    `json:"reboot_wait,omitempty"`
	BootID     string    `json:"boot_id,omitempty"`
	RebootAt   time.Time `json:"reboot_at,omitzero"`
	// ApplyRequested is set by `gostree-agent apply` for the manual policy.
	ApplyRequested bool `json:"apply_requested,omitempty"`
	// RollingBack is set once a failed job reboots into the previous
	// deployment.
	RollingBack bool `json:"rolling_back,omitempty"`
	// Outcome is what will be reported (set in verify, rollback or on a
	// permanent failure).
	Outcome *Outcome `json:"outcome,omitempty"`
	// Log is the job's history, sent to Heat as deploy_stdout.
	Log []string `json:"log,omitempty"`
}

// Progress is a pull's progress.
type Progress struct {
	Fetched   int   `json:"fetched"`
	Requested int   `json:"requested"`
	Bytes     int64 `json:"bytes"`
}

// Outcome is the result of a job.
type Outcome struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
	// Booted and Previous are the booted commit after the job and the one
	// before it.
	Booted   ostree.Checksum `json:"booted_commit,omitzero"`
	Previous ostree.Checksum `json:"previous_commit,omitzero"`
	// Log is the job's log, sent as deploy_stdout.
	Log string `json:"log,omitempty"`
	// Signalled is set once the outcome has been sent (or needs no signal).
	Signalled bool `json:"signalled,omitempty"`
}

// Blocked is a target not to retry.
type Blocked struct {
	Commit ostree.Checksum `json:"commit"`
	Key    string          `json:"key"`
	Reason string          `json:"reason"`
	Time   time.Time       `json:"time"`
}

// Handled is a finished request.
type Handled struct {
	Key    string          `json:"key"`
	Commit ostree.Checksum `json:"commit,omitzero"`
	OK     bool            `json:"ok"`
	Reason string          `json:"reason,omitempty"`
	Time   time.Time       `json:"time"`
}

func (s *State) handled(key string) *Handled {
	for i := len(s.Handled) - 1; i >= 0; i-- {
		if s.Handled[i].Key == key {
			return &s.Handled[i]
		}
	}
	return nil
}

func (s *State) addHandled(h Handled) {
	s.Handled = append(s.Handled, h)
	if len(s.Handled) > maxHandled {
		s.Handled = append([]Handled(nil), s.Handled[len(s.Handled)-maxHandled:]...)
	}
	s.Last = &h
}

// statePath is where the state lives.
func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// LoadState reads the state in dir; a missing file is the idle state.
func LoadState(dir string) (*State, error) {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: StateVersion}, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseState(b)
}

// ParseState decodes state.json.
func ParseState(b []byte) (*State, error) {
	var probe struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	if probe.Version < 1 || probe.Version > StateVersion {
		return nil, fmt.Errorf("state file: version %d is not supported (this agent reads 1 to %d)", probe.Version, StateVersion)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	if s.Job != nil {
		switch s.Job.Phase {
		case PhaseResolve, PhasePull, PhaseStage, PhaseReboot, PhaseRebooting, PhaseVerify, PhaseRollback, PhaseReport:
		default:
			return nil, fmt.Errorf("state file: job in unknown phase %q", s.Job.Phase)
		}
		if s.Job.Desired.Commit.IsZero() {
			return nil, errors.New("state file: job without a target commit")
		}
	}
	s.Version = StateVersion
	return &s, nil
}

// SaveState writes the state durably (mode 0600: it holds signal URLs and
// credentials).
func SaveState(dir string, s *State) error {
	s.Version = StateVersion
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(statePath(dir), append(b, '\n'), 0o600)
}
