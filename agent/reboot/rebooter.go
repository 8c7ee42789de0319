package reboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Rebooter performs the reboot.
type Rebooter interface {
	Reboot(ctx context.Context, reason string) error
}

// RebootReasonEnv is the environment variable through which
// CommandRebooter passes the reason to the command.
const RebootReasonEnv = "GOSTREE_REBOOT_REASON"

// CommandRebooter returns a Rebooter that runs argv (default: systemctl
// reboot) with the reason in $GOSTREE_REBOOT_REASON, stdin empty and
// stdout discarded. A command that fails gives an error with its exit
// status and its standard error (the first 4 KiB). systemctl reboot
// returns once the reboot is queued: success means the machine is going
// down, not that it is down. A command still running when ctx ends is
// killed.
func CommandRebooter(argv ...string) Rebooter {
	if len(argv) == 0 {
		argv = []string{"systemctl", "reboot"}
	}
	return &commandRebooter{argv: append([]string(nil), argv...)}
}

type commandRebooter struct{ argv []string }

// maxStderr is how much of the command's standard error is kept.
const maxStderr = 4 << 10

func (c *commandRebooter) Reboot(ctx context.Context, reason string) error {
	if c.argv[0] == "" {
		return errors.New("reboot command: empty program name")
	}
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Env = append(os.Environ(), RebootReasonEnv+"="+strings.ReplaceAll(reason, "\x00", " "))
	stderr := &capBuffer{max: maxStderr}
	cmd.Stderr = stderr
	// A child that keeps stderr open after the command exits must not
	// keep Reboot waiting.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		msg := oneLine(stderr.String())
		if msg != "" {
			return fmt.Errorf("reboot command %q: %w: %s", strings.Join(c.argv, " "), err, msg)
		}
		return fmt.Errorf("reboot command %q: %w", strings.Join(c.argv, " "), err)
	}
	return nil
}

func (c *commandRebooter) String() string { return strings.Join(c.argv, " ") }

// capBuffer keeps the first max bytes written to it and discards the rest
// (the command never blocks on a full pipe). It is only an io.Writer (no
// ReadFrom that io.Copy would use instead of Write).
type capBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.truncated = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *capBuffer) String() string {
	s := b.buf.String()
	if b.truncated {
		s += " …"
	}
	return s
}

// oneLine turns command output into one line: lines joined with "; ",
// other control characters replaced.
func oneLine(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, strings.Join(lines, "; "))
}
