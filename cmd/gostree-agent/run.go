package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/gostree/gostree/agent"
)

func newRunCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run as a daemon: poll, update, report (systemd Type=notify)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAgent(cmd.Context(), true, func(ctx context.Context, a *agent.Agent, cfg *agent.Config) error {
				if cfg.Metrics.Listen != "" {
					ln, err := net.Listen("tcp", cfg.Metrics.Listen)
					if err != nil {
						return fmt.Errorf("metrics: %w", err)
					}
					mux := http.NewServeMux()
					mux.Handle("/metrics", a.Metrics())
					srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
					go srv.Serve(ln)
					defer srv.Close()
				}
				wake := make(chan struct{}, 1)
				sig := make(chan os.Signal, 1)
				signal.Notify(sig, syscall.SIGUSR1, syscall.SIGHUP)
				defer signal.Stop(sig)
				go func() {
					for range sig {
						select {
						case wake <- struct{}{}:
						default:
						}
					}
				}()
				return a.Run(ctx, wake)
			})
		},
	}
}

func newOnceCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "once",
		Short: "Poll once and move any pending update as far as it can go now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withAgent(cmd.Context(), true, func(ctx context.Context, a *agent.Agent, _ *agent.Config) error {
				_, err := a.Step(ctx)
				if err != nil {
					return err
				}
				st := a.State()
				if st.Job != nil && st.Job.LastError != "" {
					return fmt.Errorf("%s: %s (will be retried)", st.Job.Phase, st.Job.LastError)
				}
				if st.LastPollError != "" {
					fmt.Fprintln(g.stderr, "gostree-agent: metadata:", st.LastPollError)
				}
				return nil
			})
		},
	}
}

// withAgent loads the configuration, sets up logging, takes the agent lock
// (one agent per state directory) when exclusive, prepares the config
// drive, builds the agent and runs fn.
func (g *globals) withAgent(ctx context.Context, exclusive bool, fn func(context.Context, *agent.Agent, *agent.Config) error) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	log, err := g.logger(&cfg)
	if err != nil {
		return err
	}
	if exclusive {
		unlock, err := lockAgent(cfg.StateDir)
		if err != nil {
			return err
		}
		defer unlock()
	}
	unmount, err := agent.PrepareConfigDrive(&cfg)
	if err != nil {
		log.WithError(err).Warn("config drive unavailable")
	}
	defer unmount()
	a, err := agent.New(g.options(cfg, log))
	if err != nil {
		return err
	}
	return fn(ctx, a, &cfg)
}

// lockAgent takes STATE_DIR/agent.lock (flock, not blocking) and writes the
// pid into it, so a second agent fails at once and `apply` can wake the
// running one.
func lockAgent(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, "agent.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another gostree-agent is running with state directory %s (pid %s)", dir, lockPID(p))
		}
		return nil, err
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

func lockPID(p string) string {
	b, _ := os.ReadFile(p)
	n, err := strconv.Atoi(string(trimSpace(b)))
	if err != nil {
		return "unknown"
	}
	return strconv.Itoa(n)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
