package agent

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadyBeforeWaitingForHealthReport: after the reboot into a new
// deployment, the daemon's first step waits for the health report of
// gostree-healthcheck.service, a unit that starts only after
// multi-user.target, which waits for the agent to be ready. READY=1 must
// therefore reach systemd before that wait, not after the step.
func TestReadyBeforeWaitingForHealthReport(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	e := newEnv(t)
	e.setHealth(true)
	e.setMetadata("dep-1", "os_image", inputsFor(e.commits[2]))
	// Up to the reboot (no NOTIFY_SOCKET yet: Step alone sends nothing).
	a := e.agent()
	for i := 0; i < 20; i++ {
		if _, err := a.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
		if j := a.State().Job; j != nil && j.Phase == PhaseRebooting {
			break
		}
	}
	if j := a.State().Job; j == nil || j.Phase != PhaseRebooting {
		t.Fatalf("job not rebooting: %+v", j)
	}

	// The daemon of the new boot, waiting for the report.
	t.Setenv("NOTIFY_SOCKET", sock)
	e.cfg.Health.ReportWait = time.Hour
	a = e.agent()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []string
	waited := false
	a.o.Sleep = func(context.Context, time.Duration) error {
		waited = true
		buf := make([]byte, 4096)
		for {
			conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := conn.Read(buf)
			if err != nil {
				break
			}
			got = append(got, string(buf[:n]))
		}
		cancel()
		return ctx.Err()
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, nil) }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return")
	}
	if !waited {
		t.Fatal("the agent did not wait for the health report")
	}
	if !strings.Contains(strings.Join(got, "\n"), "READY=1") {
		t.Fatalf("no READY=1 before waiting for the health report; notifications: %q", got)
	}
}
