package health

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults used for the zero values of Config fields, and where the
// healthcheck unit saves its report.
const (
	DefaultRequiredDir = "/etc/gostree/health/required.d"
	DefaultWantedDir   = "/etc/gostree/health/wanted.d"
	// DefaultTimeout bounds each check. Five minutes is long enough for a
	// check that waits for a service to answer on a slow first boot (cloud
	// instances regenerate keys, grow file systems and fetch metadata
	// then) and short enough that a hung check does not hold back the
	// rollback of a broken deployment for long.
	DefaultTimeout    = 5 * time.Minute
	DefaultSystemctl  = "systemctl"
	DefaultReportPath = "/run/gostree-agent/health.json"
	// MaxOutput is the most output kept per check: the tail of it.
	MaxOutput = 64 << 10
)

// Config says which checks Run runs. The zero value runs the scripts in
// the default directories and no unit checks.
type Config struct {
	RequiredDir   string   // scripts that must pass; default DefaultRequiredDir
	WantedDir     string   // scripts whose failure is reported only; default DefaultWantedDir
	RequiredUnits []string // systemd units that must be active (or, for Type=oneshot, exited successfully)
	WantedUnits   []string
	Timeout       time.Duration // per check (a script's run, or the wait for a unit); default DefaultTimeout
	Systemctl     string        // path of systemctl; default "systemctl" (looked up in PATH)
	Env           []string      // extra environment for scripts, "KEY=value" (the agent passes GOSTREE_BOOTED_COMMIT etc.)
	BootIDPath    string        // where Report.BootID is read; default BootIDPath (tests point it at a file of their own)
}

// Check is the result of one check.
type Check struct {
	Name     string        // "required.d/10-network" or "unit:sshd.service"
	Required bool          // a failure makes the report not OK
	OK       bool          //
	Output   string        // combined stdout and stderr (scripts) or systemctl's answer (units): the tail, at most MaxOutput bytes, valid UTF-8
	Err      string        // why it failed ("exit status 3", "timed out after 1m0s", "unit is failed (result: exit-code)"); empty when OK
	Duration time.Duration //
}

// Report is the result of one Run.
type Report struct {
	OK      bool     // every required check passed
	Checks  []Check  // in the order they ran
	Skipped []string // entries of the check directories that were not run, with the reason: "required.d/README (not executable)"
	BootID  string   // /proc/sys/kernel/random/boot_id at the time of the run; empty if it could not be read
	Time    time.Time
}

// Failed returns the required checks that failed.
func (r Report) Failed() []Check { return r.filter(true) }

// WantedFailed returns the wanted (not required) checks that failed.
func (r Report) WantedFailed() []Check { return r.filter(false) }

func (r Report) filter(required bool) []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK && c.Required == required {
			out = append(out, c)
		}
	}
	return out
}

// Summary describes the report in one line, e.g.
// "2 checks failed: required.d/10-net (exit status 1), unit:foo.service (unit is failed (result: exit-code))";
// failures of wanted checks are appended after a semicolon.
func (r Report) Summary() string {
	failed, wanted := r.Failed(), r.WantedFailed()
	required := 0
	for _, c := range r.Checks {
		if c.Required {
			required++
		}
	}
	var s string
	switch {
	case len(r.Checks) == 0:
		s = "no health checks configured"
	case len(failed) > 0:
		s = fmt.Sprintf("%s failed: %s", plural(len(failed), "check"), list(failed))
	case len(wanted) == 0:
		s = fmt.Sprintf("%s passed", plural(len(r.Checks), "check"))
	default:
		s = fmt.Sprintf("all %s passed", plural(required, "required check"))
	}
	if len(wanted) > 0 {
		s += fmt.Sprintf("; %s failed: %s", plural(len(wanted), "wanted check"), list(wanted))
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func list(cs []Check) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s (%s)", c.Name, oneLine(c.Err, 200))
	}
	return strings.Join(parts, ", ")
}

// oneLine folds s onto one line and shortens it to about max bytes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		cut := max
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Validate reports a configuration Run refuses: a negative timeout, a unit
// name systemd would not accept, an environment entry without '='.
func (c Config) Validate() error {
	if c.Timeout < 0 {
		return fmt.Errorf("health: negative timeout %v", c.Timeout)
	}
	for _, units := range [][]string{c.RequiredUnits, c.WantedUnits} {
		for _, u := range units {
			if err := validUnitName(u); err != nil {
				return err
			}
		}
	}
	for _, e := range c.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || strings.ContainsRune(e, 0) {
			return fmt.Errorf("health: environment entry %q is not KEY=value", e)
		}
	}
	return nil
}

// validUnitName accepts what systemd accepts in a unit name
// (unit_name_is_valid: letters, digits and ":-_.\@", at most 255 bytes).
func validUnitName(u string) error {
	if u == "" {
		return errors.New("health: empty unit name")
	}
	if len(u) > 255 {
		return fmt.Errorf("health: unit name %.40q… is longer than 255 bytes", u)
	}
	for _, r := range u {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":-_.\\@", r)
		if !ok {
			return fmt.Errorf("health: unit name %q contains %q, which systemd does not allow in unit names", u, r)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.RequiredDir == "" {
		c.RequiredDir = DefaultRequiredDir
	}
	if c.WantedDir == "" {
		c.WantedDir = DefaultWantedDir
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Systemctl == "" {
		c.Systemctl = DefaultSystemctl
	}
	if c.BootIDPath == "" {
		c.BootIDPath = BootIDPath
	}
	return c
}

// Run runs the checks: the scripts of RequiredDir, then RequiredUnits,
// then the scripts of WantedDir, then WantedUnits, one at a time, each
// bounded by Timeout. Every check runs even after a required one failed,
// so that the report is complete. A check that cannot be run (a refused
// script, an unreadable directory, systemctl failing) is a failed check,
// not an error: Run returns an error only for an invalid Config or when
// ctx ends before the checks are done (then with the partial report).
func Run(ctx context.Context, c Config) (Report, error) {
	if err := c.Validate(); err != nil {
		return Report{}, err
	}
	c = c.withDefaults()
	r := Report{Time: time.Now().UTC().Round(0)}
	r.BootID, _ = readBootID(c.BootIDPath)
	steps := []func() ([]Check, []string){
		func() ([]Check, []string) { return runDir(ctx, c, c.RequiredDir, true) },
		func() ([]Check, []string) { return runUnits(ctx, c, c.RequiredUnits, true), nil },
		func() ([]Check, []string) { return runDir(ctx, c, c.WantedDir, false) },
		func() ([]Check, []string) { return runUnits(ctx, c, c.WantedUnits, false), nil },
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return interrupted(r, err)
		}
		checks, skipped := step()
		r.Checks = append(r.Checks, checks...)
		r.Skipped = append(r.Skipped, skipped...)
	}
	if err := ctx.Err(); err != nil {
		return interrupted(r, err)
	}
	return finish(r), nil
}

// interrupted returns the partial report of a run cut short; it is never
// OK, whatever the checks that did run found.
func interrupted(r Report, err error) (Report, error) {
	r = finish(r)
	r.OK = false
	return r, fmt.Errorf("health checks interrupted: %w", err)
}

func finish(r Report) Report {
	r.OK = len(r.Failed()) == 0
	return r
}
