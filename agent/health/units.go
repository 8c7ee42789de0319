package health

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// unitProperties are what `systemctl show` is asked for.
const unitProperties = "Id,LoadState,LoadError,ActiveState,SubState,Result,Type,ExecMainStatus,ExecMainStartTimestampMonotonic"

// UnitStatus is what systemd says about a unit (`systemctl show`).
type UnitStatus struct {
	Id          string // the unit's full name ("sshd.service" for "sshd")
	LoadState   string // loaded, not-found, masked, bad-setting, error
	LoadError   string
	ActiveState string // active, reloading, inactive, failed, activating, deactivating
	SubState    string // running, exited, dead, start, auto-restart, …
	Result      string // success, exit-code, signal, timeout, …
	Type        string // for services: simple, exec, forking, oneshot, notify, …
	// ExecMainStatus is the exit status of the main process of the last
	// run, and ExecMainStarted whether it ran at all since boot.
	ExecMainStatus  string
	ExecMainStarted bool
}

// ShowUnit asks systemctl (a path, or a name looked up in PATH; empty
// means "systemctl") for the state of unit. raw is systemctl's answer.
func ShowUnit(ctx context.Context, systemctl, unit string) (st UnitStatus, raw string, err error) {
	if err := validUnitName(unit); err != nil {
		return st, "", err
	}
	if systemctl == "" {
		systemctl = DefaultSystemctl
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, systemctl, "show", "--property="+unitProperties, "--", unit)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		msg := oneLine(stderr.String(), 300)
		if msg != "" {
			return st, stdout.String(), fmt.Errorf("systemctl show %s: %w: %s", unit, err, msg)
		}
		return st, stdout.String(), fmt.Errorf("systemctl show %s: %w", unit, err)
	}
	raw = stdout.String()
	for _, line := range strings.Split(raw, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "Id":
			st.Id = v
		case "LoadState":
			st.LoadState = v
		case "LoadError":
			st.LoadError = v
		case "ActiveState":
			st.ActiveState = v
		case "SubState":
			st.SubState = v
		case "Result":
			st.Result = v
		case "Type":
			st.Type = v
		case "ExecMainStatus":
			st.ExecMainStatus = v
		case "ExecMainStartTimestampMonotonic":
			st.ExecMainStarted = v != "" && v != "0"
		}
	}
	if st.LoadState == "" || st.ActiveState == "" {
		return st, raw, fmt.Errorf("systemctl show %s: answer without LoadState/ActiveState", unit)
	}
	return st, raw, nil
}

// Verdict says whether st is healthy. settled is false while the unit is
// still changing state (activating, deactivating, reloading to a
// maintenance state) and may yet become healthy. The rules:
//   - a unit that is not loaded (not-found, masked, bad-setting) is unhealthy;
//   - active and reloading are healthy, failed is not;
//   - activating and deactivating are not settled (a service in a Restart=
//     loop stays "activating (auto-restart)" and so never settles);
//   - inactive is unhealthy, except for a Type=oneshot service that ran
//     since boot and exited with status 0 and result success: without
//     RemainAfterExit=yes that is how a successful oneshot looks (with it,
//     it stays "active (exited)", which is healthy anyway).
func (st UnitStatus) Verdict() (ok, settled bool, why string) {
	switch st.LoadState {
	case "loaded":
	case "not-found":
		return false, true, "unit not found"
	case "masked":
		return false, true, "unit is masked"
	default:
		why := "unit could not be loaded (" + st.LoadState + ")"
		if st.LoadError != "" {
			why += ": " + st.LoadError
		}
		return false, true, why
	}
	switch st.ActiveState {
	case "active", "reloading", "refreshing":
		return true, true, ""
	case "failed":
		return false, true, "unit is failed (result: " + st.Result + ")"
	case "activating", "deactivating", "maintenance":
		return false, false, fmt.Sprintf("unit is %s (%s)", st.ActiveState, st.SubState)
	case "inactive":
		if !strings.HasSuffix(st.Id, ".service") || st.Type != "oneshot" {
			return false, true, "unit is inactive"
		}
		switch {
		case !st.ExecMainStarted:
			return false, true, "oneshot unit has not run"
		case st.Result == "success" && st.ExecMainStatus == "0":
			return true, true, ""
		default:
			return false, true, fmt.Sprintf("oneshot unit exited with status %s (result: %s)", st.ExecMainStatus, st.Result)
		}
	default:
		return false, true, fmt.Sprintf("unit is in unknown state %q", st.ActiveState)
	}
}

// unitPollMax caps the pause between two looks at a unit that is still
// activating.
const unitPollMax = 2 * time.Second

func runUnits(ctx context.Context, c Config, units []string, required bool) []Check {
	var checks []Check
	for _, u := range units {
		if ctx.Err() != nil {
			break
		}
		checks = append(checks, checkUnit(ctx, c, u, required))
	}
	return checks
}

// checkUnit waits up to c.Timeout for unit to settle and judges it.
func checkUnit(ctx context.Context, c Config, unit string, required bool) (ck Check) {
	ck = Check{Name: "unit:" + unit, Required: required}
	start := time.Now()
	defer func() { ck.Duration = time.Since(start) }()
	cctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	pause := 100 * time.Millisecond
	for {
		st, raw, err := ShowUnit(cctx, c.Systemctl, unit)
		if raw != "" || err == nil {
			ck.Output = clip(raw, MaxOutput, false)
		}
		var ok, settled bool
		var why string
		if err == nil {
			ok, settled, why = st.Verdict()
		}
		switch {
		case ctx.Err() != nil:
			ck.Err = fmt.Sprintf("interrupted: %v", ctx.Err())
			return ck
		case err != nil && cctx.Err() != nil:
			ck.Err = fmt.Sprintf("timed out after %v waiting for systemctl", c.Timeout)
			return ck
		case err != nil:
			ck.Err = err.Error()
			return ck
		case settled:
			ck.OK, ck.Err = ok, why
			return ck
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-cctx.Done():
			t.Stop()
			if ctx.Err() != nil {
				ck.Err = fmt.Sprintf("interrupted: %v", ctx.Err())
			} else {
				ck.Err = fmt.Sprintf("%s after %v", strings.Replace(why, "unit is ", "unit is still ", 1), c.Timeout)
			}
			return ck
		}
		if pause *= 2; pause > unitPollMax {
			pause = unitPollMax
		}
	}
}
