package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gostree/gostree/heatmeta"
	"github.com/gostree/gostree/internal/osauth"
)

// Default locations.
const (
	DefaultConfigPath = "/etc/gostree/agent.yaml"
	DefaultStateDir   = "/var/lib/gostree-agent"
	DefaultRunDir     = "/run/gostree-agent"
)

// Config is the agent's configuration: /etc/gostree/agent.yaml and the
// drop-ins in /etc/gostree/agent.yaml.d/*.yaml, applied in name order on
// top of it (a key set in a drop-in replaces the same key; lists are
// replaced whole). etc/gostree/agent.yaml in the source tree documents
// every key.
type Config struct {
	// StateDir keeps the agent's state and the metadata cache (0700).
	StateDir string `yaml:"state_dir"`
	// RunDir keeps per-boot files: the health report, the mounted config
	// drive.
	RunDir string `yaml:"run_dir"`
	// Sysroot is the OSTree system root ("/" on a booted node).
	Sysroot string `yaml:"sysroot"`
	// OSName is the stateroot to deploy into; "" means the booted one.
	OSName string `yaml:"osname"`
	// Remote names the remote of the sysroot's repository whose
	// signature settings (gpg-verify, sign-verify) and keys every pulled
	// commit must satisfy, whatever the source; refs are written as
	// REMOTE:REF. Its URL is the default source.
	Remote string `yaml:"remote"`
	// RepoURL is the default source when metadata names none (default:
	// the remote's url).
	RepoURL string `yaml:"repo_url"`
	// AllowUnsigned accepts commits without signatures when Remote is
	// empty. Off by default: signatures are checked unless this is set.
	AllowUnsigned bool `yaml:"allow_unsigned"`

	// PollInterval is the time between metadata polls (default 30 s).
	PollInterval time.Duration `yaml:"poll_interval"`
	// MaxBackoff caps the wait after failures (default 10 min).
	MaxBackoff time.Duration `yaml:"max_backoff"`

	Metadata  heatmeta.Config `yaml:"metadata"`
	OpenStack OpenStackConfig `yaml:"openstack"`
	Pull      PullConfig      `yaml:"pull"`
	Deploy    DeployConfig    `yaml:"deploy"`
	Reboot    RebootConfig    `yaml:"reboot"`
	Health    HealthConfig    `yaml:"health"`
	Log       LogConfig       `yaml:"log"`
	Metrics   MetricsConfig   `yaml:"metrics"`

	// Files are the files the configuration was read from.
	Files []string `yaml:"-"`
}

// OpenStackConfig selects credentials for Glance and Swift sources, as the
// openstack CLI does (clouds.yaml cloud, else OS_* variables).
type OpenStackConfig struct {
	Cloud  string `yaml:"cloud"`
	CACert string `yaml:"cacert"`
	Region string `yaml:"region"`
	// SwiftPublicURL is the storage URL (…/v1/AUTH_project) of public
	// containers: with it, a swift_container source is read anonymously
	// over plain HTTP and no credentials are needed.
	SwiftPublicURL string `yaml:"swift_public_url"`
}

// PullConfig tunes pulls.
type PullConfig struct {
	// Jobs is the number of objects fetched at once (default 16).
	Jobs int `yaml:"jobs"`
	// LowSpeedTime abandons and retries a stalled transfer (default 30 s).
	LowSpeedTime time.Duration `yaml:"low_speed_time"`
}

// DeployConfig tunes deployments.
type DeployConfig struct {
	// BootCountingTries writes new boot entries with a boot counter of
	// that many tries (0: none). With a counter, a deployment that never
	// reaches boot-complete falls back to the previous one by itself.
	BootCountingTries int `yaml:"boot_counting_tries"`
	// Stage stages the deployment (finalized at shutdown) on a booted
	// system; "false" writes the boot entries at once. Default true.
	Stage *bool `yaml:"stage"`
}

// RebootConfig is the default reboot policy (metadata may choose another)
// and how to reboot.
type RebootConfig struct {
	// Policy: immediate, window, fleet_lock or manual (default immediate).
	Policy string `yaml:"policy"`
	// Windows for the window policy, e.g.
	//   - {days: [Sat, Sun], start_time: "02:00", length_minutes: 120}
	Windows  []WindowConfig `yaml:"windows"`
	TimeZone string         `yaml:"time_zone"`
	// FleetLockURL and FleetLockGroup for fleet_lock.
	FleetLockURL   string `yaml:"fleet_lock_url"`
	FleetLockGroup string `yaml:"fleet_lock_group"`
	// NodeID is the FleetLock client id (default: derived from
	// /etc/machine-id).
	NodeID string `yaml:"node_id"`
	// Command reboots the machine (default: systemctl reboot).
	Command []string `yaml:"command"`
	// WarnUsers writes a warning to logged-in users' terminals, then
	// waits Delay before rebooting (default true, 60 s).
	WarnUsers *bool         `yaml:"warn_users"`
	Delay     time.Duration `yaml:"delay"`
}

// WindowConfig is a weekly reboot window.
type WindowConfig struct {
	Days          []string `yaml:"days" json:"days"`
	StartTime     string   `yaml:"start_time" json:"start_time"`
	LengthMinutes int      `yaml:"length_minutes" json:"length_minutes"`
}

// HealthConfig configures the checks after a new deployment booted.
type HealthConfig struct {
	RequiredDir   string        `yaml:"required_dir"`
	WantedDir     string        `yaml:"wanted_dir"`
	RequiredUnits []string      `yaml:"required_units"`
	WantedUnits   []string      `yaml:"wanted_units"`
	Timeout       time.Duration `yaml:"timeout"`
	// ReportWait is how long the agent waits for the report of
	// gostree-healthcheck.service for this boot before running the checks
	// itself (default 0: do not wait).
	ReportWait time.Duration `yaml:"report_wait"`
}

// LogConfig selects the log format (text or json) and level.
type LogConfig struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// MetricsConfig enables the Prometheus endpoint (e.g. 127.0.0.1:9273);
// empty disables it.
type MetricsConfig struct {
	Listen string `yaml:"listen"`
}

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	return Config{
		StateDir:     DefaultStateDir,
		RunDir:       DefaultRunDir,
		Sysroot:      "/",
		Remote:       "gostree",
		PollInterval: 30 * time.Second,
		MaxBackoff:   10 * time.Minute,
		Pull:         PullConfig{Jobs: 16},
		Reboot:       RebootConfig{Policy: "immediate", Delay: 60 * time.Second},
		Log:          LogConfig{Format: "text", Level: "info"},
		Health:       HealthConfig{ReportWait: 10 * time.Minute},
	}
}

// LoadConfig reads path (default DefaultConfigPath) and its drop-in
// directory PATH.d/*.yaml on top of the defaults. A missing main file is
// fine (defaults); a file that holds secrets (passwords, keys, a TempURL)
// must not be readable by group or others.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	if path == "" {
		path = DefaultConfigPath
	}
	files := []string{}
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("config: %w", err)
	}
	dropins, err := filepath.Glob(filepath.Join(path+".d", "*.yaml"))
	if err != nil {
		return c, err
	}
	sort.Strings(dropins)
	files = append(files, dropins...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		if err := decodeConfig(b, &c); err != nil {
			return c, fmt.Errorf("config %s: %w", f, err)
		}
		var alone Config
		if err := decodeConfig(b, &alone); err == nil && alone.hasSecrets() {
			if err := osauth.CheckSecretFile(f); err != nil {
				return c, fmt.Errorf("config %s holds secrets: %w", f, err)
			}
		}
		c.Files = append(c.Files, f)
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// ParseConfig reads one YAML document on top of the defaults (for tests
// and `check --config -`).
func ParseConfig(b []byte) (Config, error) {
	c := DefaultConfig()
	if err := decodeConfig(b, &c); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func decodeConfig(b []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (c *Config) hasSecrets() bool {
	m := c.Metadata
	return m.Heat.Password != "" || m.Heat.ApplicationCredentialSecret != "" || m.CFN.SecretAccessKey != "" ||
		strings.Contains(m.Request.MetadataURL, "temp_url_sig")
}

// Validate checks the configuration and names the first wrong key.
func (c *Config) Validate() error {
	bad := func(key, format string, a ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, a...))
	}
	if c.StateDir == "" || !filepath.IsAbs(c.StateDir) {
		return bad("state_dir", "must be an absolute path, not %q", c.StateDir)
	}
	if c.RunDir == "" || !filepath.IsAbs(c.RunDir) {
		return bad("run_dir", "must be an absolute path, not %q", c.RunDir)
	}
	if c.Sysroot == "" || !filepath.IsAbs(c.Sysroot) {
		return bad("sysroot", "must be an absolute path, not %q", c.Sysroot)
	}
	if c.PollInterval < time.Second {
		return bad("poll_interval", "at least 1s (got %s)", c.PollInterval)
	}
	if c.MaxBackoff < c.PollInterval {
		return bad("max_backoff", "must not be shorter than poll_interval")
	}
	if c.Remote == "" && !c.AllowUnsigned {
		return bad("remote", "required: the remote whose keys verify commits (or set allow_unsigned: true to accept unsigned commits)")
	}
	if c.Pull.Jobs < 1 || c.Pull.Jobs > 256 {
		return bad("pull.jobs", "between 1 and 256 (got %d)", c.Pull.Jobs)
	}
	if c.Deploy.BootCountingTries < 0 || c.Deploy.BootCountingTries > 99 {
		return bad("deploy.boot_counting_tries", "between 0 and 99 (got %d)", c.Deploy.BootCountingTries)
	}
	if _, err := c.RebootPolicy(); err != nil {
		return fmt.Errorf("config: reboot: %w", err)
	}
	if c.Reboot.Delay < 0 {
		return bad("reboot.delay", "must not be negative")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return bad("log.format", "text or json, not %q", c.Log.Format)
	}
	if c.Metrics.Listen != "" {
		host, _, err := net.SplitHostPort(c.Metrics.Listen)
		if err != nil {
			return bad("metrics.listen", "%v", err)
		}
		_ = host
	}
	if err := c.Metadata.Validate(); err != nil {
		return fmt.Errorf("config: metadata: %w", err)
	}
	return nil
}

// RebootPolicy returns the configured default reboot policy in heatmeta's
// form, so it is read exactly like a reboot_policy from metadata.
func (c *Config) RebootPolicy() (heatmeta.RebootPolicy, error) {
	in := map[string]json.RawMessage{}
	set := func(k string, v any) {
		b, _ := json.Marshal(v)
		in[k] = b
	}
	if c.Reboot.Policy != "" {
		set("reboot_policy", c.Reboot.Policy)
	}
	if len(c.Reboot.Windows) > 0 {
		set("reboot_window", c.Reboot.Windows)
	}
	if c.Reboot.TimeZone != "" {
		set("reboot_time_zone", c.Reboot.TimeZone)
	}
	if c.Reboot.FleetLockURL != "" {
		set("fleet_lock_url", c.Reboot.FleetLockURL)
	}
	if c.Reboot.FleetLockGroup != "" {
		set("fleet_lock_group", c.Reboot.FleetLockGroup)
	}
	return heatmeta.ParseRebootPolicy("config reboot", in)
}

func (c *Config) stage() bool { return c.Deploy.Stage == nil || *c.Deploy.Stage }

func (c *Config) warnUsers() bool { return c.Reboot.WarnUsers == nil || *c.Reboot.WarnUsers }
