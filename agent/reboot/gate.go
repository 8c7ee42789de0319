package reboot

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gostree/gostree/heatmeta"
)

// Gate decides when the node may reboot into a staged deployment. The
// gates New returns are safe for concurrent use.
type Gate interface {
	// Check reports whether the node may reboot now. For fleet_lock it
	// tries to take a slot (FleetLock POST /v1/pre-reboot); a lock server
	// saying no is Decision{Now: false}, not an error.
	Check(ctx context.Context, now time.Time) (Decision, error)
	// Release gives the slot back once the node runs the new deployment
	// and passed its checks (FleetLock POST /v1/steady-state); a no-op for
	// other policies. Idempotent; the agent also calls it at start-up when
	// nothing is pending, as Zincati does.
	Release(ctx context.Context) error
	// Describe is a one-line human description for status output
	// ("window Sat,Sun 22:30+60m Europe/Berlin").
	Describe() string
}

// Decision is the answer of Gate.Check.
type Decision struct {
	Now    bool
	Reason string    // why not (or why now), for logs and status
	Next   time.Time // earliest time worth asking again (window opening); zero: next poll
}

// Options are the settings of New that do not come from metadata.
type Options struct {
	// NodeID is the FleetLock client id. Empty: derived from the
	// machine id (MachineIDFile) as an app-specific id, see NodeID.
	NodeID string
	// MachineIDFile is read when NodeID is empty and the policy is
	// fleet_lock; default /etc/machine-id.
	MachineIDFile string
	// HTTPClient is used for fleet_lock (default: a client with the
	// default transport, so TLS is verified). Redirects are never
	// followed (New uses a shallow copy with its own CheckRedirect).
	HTTPClient *http.Client
	// RequestTimeout bounds one FleetLock request unless ctx ends
	// sooner; default 30s.
	RequestTimeout time.Duration
}

// DefaultMachineIDFile is where the machine id is read from.
const DefaultMachineIDFile = "/etc/machine-id"

// ManualReason is Decision.Reason of the manual policy.
const ManualReason = "manual policy: run gostree-agent apply"

// New returns the Gate for a reboot policy. Mode "" means immediate. It
// checks the policy's parameters (windows, time zone, lock server URL and
// group) and, for fleet_lock without Options.NodeID, reads the machine
// id, so a Gate that New returns can always be asked.
func New(p heatmeta.RebootPolicy, o Options) (Gate, error) {
	switch p.Mode {
	case heatmeta.RebootDefault, heatmeta.RebootImmediate:
		return immediateGate{}, nil
	case heatmeta.RebootManual:
		return manualGate{}, nil
	case heatmeta.RebootWindow:
		return newWindowGate(p.Windows, p.TimeZone)
	case heatmeta.RebootFleetLock:
		return newFleetLock(p.FleetLockURL, p.FleetLockGroup, o)
	}
	return nil, fmt.Errorf("reboot policy: unknown mode %q (want immediate, window, fleet_lock or manual)", clip(string(p.Mode)))
}

type immediateGate struct{}

func (immediateGate) Check(context.Context, time.Time) (Decision, error) {
	return Decision{Now: true, Reason: "immediate policy"}, nil
}
func (immediateGate) Release(context.Context) error { return nil }
func (immediateGate) Describe() string              { return "immediate" }

type manualGate struct{}

func (manualGate) Check(context.Context, time.Time) (Decision, error) {
	return Decision{Now: false, Reason: ManualReason}, nil
}
func (manualGate) Release(context.Context) error { return nil }
func (manualGate) Describe() string              { return "manual" }

// clip shortens s for an error message or reason and replaces control
// characters, so text from a server or from metadata cannot mangle a log
// line or a terminal.
func clip(s string) string {
	const max = 200
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if len(out) >= max {
			out = append(out, '…')
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = '?'
		}
		out = append(out, r)
	}
	return string(out)
}
