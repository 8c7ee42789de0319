// Command gostree-agent is the in-instance update agent: it polls Heat
// metadata, and when a stack asks for another OSTree commit it pulls,
// verifies and stages it, reboots according to the reboot policy, checks the
// new deployment's health and reports to Heat — or rolls back. The engine is
// package agent; this command wires configuration, logging, signals and
// systemd around it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	// The agent evaluates reboot windows in IANA time zones; images
	// without /usr/share/zoneinfo still need them.
	_ "time/tzdata"

	"github.com/gostree/gostree/agent"
	"github.com/gostree/gostree/sysroot"
)

// globals are the flags every subcommand shares.
type globals struct {
	configPath string
	logFormat  string
	logLevel   string
	// test hooks (hidden): a scratch sysroot that looks booted, and a
	// fake boot id.
	runDir, rootDir, bootIDFile string

	stdout, stderr io.Writer
}

func (g *globals) loadConfig() (agent.Config, error) {
	cfg, err := agent.LoadConfig(g.configPath)
	if err != nil {
		return cfg, err
	}
	if g.logFormat != "" {
		cfg.Log.Format = g.logFormat
	}
	if g.logLevel != "" {
		cfg.Log.Level = g.logLevel
	}
	return cfg, cfg.Validate()
}

func (g *globals) logger(cfg *agent.Config) (*logrus.Logger, error) {
	l := logrus.New()
	l.Out = g.stderr
	switch cfg.Log.Format {
	case "json":
		l.Formatter = &logrus.JSONFormatter{}
	default:
		l.Formatter = &logrus.TextFormatter{FullTimestamp: true, DisableColors: true}
	}
	lvl, err := logrus.ParseLevel(cfg.Log.Level)
	if err != nil {
		return nil, fmt.Errorf("config: log.level: %w", err)
	}
	l.SetLevel(lvl)
	return l, nil
}

func (g *globals) options(cfg agent.Config, log logrus.FieldLogger) agent.Options {
	return agent.Options{
		Config:     cfg,
		Logger:     log,
		Sysroot:    sysroot.Options{RunDir: g.runDir, RootDir: g.rootDir, AllowUnbootedStage: false},
		BootIDPath: g.bootIDFile,
	}
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "gostree-agent",
		Short: "Keep this node on the OSTree commit its Heat stack asks for",
		Long: `gostree-agent polls Heat metadata (as os-collect-config did). When a software
deployment of group "ostree" (or the "gostree" server metadata key) names another
commit, it resolves the source (Glance image, Swift container, repository URL),
pulls and verifies the commit, stages it as a new deployment, reboots according
to the reboot policy, runs the health checks, and signals the result to Heat —
or rolls back to the previous deployment.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.configPath, "config", "c", agent.DefaultConfigPath, "configuration file (its PATH.d/*.yaml drop-ins are read too)")
	pf.StringVar(&g.logFormat, "log-format", "", "log format: text or json (default: from the configuration)")
	pf.StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warning, error (default: from the configuration)")
	pf.StringVar(&g.runDir, "run-dir", os.Getenv("GOSTREE_RUN_DIR"), "replace /run when detecting the booted deployment (tests)")
	pf.StringVar(&g.rootDir, "root-dir", os.Getenv("GOSTREE_ROOT_DIR"), "replace / when detecting the booted deployment (tests)")
	pf.StringVar(&g.bootIDFile, "boot-id-file", os.Getenv("GOSTREE_BOOT_ID_FILE"), "file holding the boot id (tests; default /proc/sys/kernel/random/boot_id)")
	for _, n := range []string{"run-dir", "root-dir", "boot-id-file"} {
		pf.MarkHidden(n)
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.AddCommand(newRunCommand(g), newOnceCommand(g), newCheckCommand(g), newStatusCommand(g),
		newPrintMetadataCommand(g), newApplyCommand(g), newHealthCheckCommand(g))
	return root
}

// exitError carries an exit status without another message.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintln(stderr, "gostree-agent:", err)
		return 1
	}
	return 0
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
