package reboot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCommandRebooter(t *testing.T) {
	out := filepath.Join(t.TempDir(), "reason")
	r := CommandRebooter("/bin/sh", "-c", `printf %s "$GOSTREE_REBOOT_REASON" > "$0"`, out)
	if err := r.Reboot(context.Background(), "staged 0123abcd (window Sat 22:30+60m UTC)"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "staged 0123abcd (window Sat 22:30+60m UTC)" {
		t.Fatalf("the command saw reason %q (%v)", b, err)
	}
}

func TestCommandRebooterFailures(t *testing.T) {
	ctx := context.Background()
	err := CommandRebooter("/bin/sh", "-c", "echo 'Failed to reboot: Access denied' >&2; echo 'second line' >&2; exit 3").Reboot(ctx, "r")
	if err == nil || !strings.Contains(err.Error(), "exit status 3: Failed to reboot: Access denied; second line") {
		t.Fatalf("failing command: %v", err)
	}
	err = CommandRebooter("/nonexistent/reboot-helper").Reboot(ctx, "r")
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "/nonexistent/reboot-helper") {
		t.Fatalf("missing command: %v", err)
	}
	// A flood on stderr is cut, and the command is not blocked by it.
	err = CommandRebooter("/bin/sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' >&2; i=$((i+1)); done; exit 1").Reboot(ctx, "r")
	if err == nil || len(err.Error()) > 2*maxStderr || !strings.HasSuffix(err.Error(), "…") {
		t.Fatalf("flood: %d bytes: ...%s", len(err.Error()), err.Error()[len(err.Error())-100:])
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := CommandRebooter("/bin/sh", "-c", "exit 0").Reboot(cctx, "r"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if err := CommandRebooter("").Reboot(ctx, "r"); err == nil || !strings.Contains(err.Error(), "empty program name") {
		t.Fatalf("empty argv[0]: %v", err)
	}
}

func TestCommandRebooterDefault(t *testing.T) {
	r := CommandRebooter().(*commandRebooter)
	if !slices.Equal(r.argv, []string{"systemctl", "reboot"}) || r.String() != "systemctl reboot" {
		t.Fatalf("default argv %q", r.argv)
	}
	// The caller's slice is copied.
	argv := []string{"/bin/true"}
	r = CommandRebooter(argv...).(*commandRebooter)
	argv[0] = "/bin/false"
	if r.argv[0] != "/bin/true" {
		t.Fatal("argv not copied")
	}
}
