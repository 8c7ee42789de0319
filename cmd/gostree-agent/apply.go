package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/agent"
	"github.com/gostree/gostree/ostree"
)

func newApplyCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apply [COMMIT]",
		Short: "Reboot into the staged update now (for the manual reboot policy)",
		Long: `Ask the agent to reboot into the pending update now, whatever the reboot
policy says. With COMMIT, only if that is the pending update. A running agent is
woken at once (SIGUSR1); without one, this command moves the update on itself.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			var c ostree.Checksum
			if len(args) == 1 {
				if c, err = ostree.ParseChecksum(args[0]); err != nil {
					return fmt.Errorf("COMMIT: %w", err)
				}
			}
			if err := agent.RequestApply(&cfg, c); err != nil {
				return err
			}
			unlock, err := lockAgent(cfg.StateDir)
			if err != nil {
				// a daemon holds the lock: wake it
				pid, perr := strconv.Atoi(lockPID(filepath.Join(cfg.StateDir, "agent.lock")))
				if perr != nil {
					return err
				}
				if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
					return fmt.Errorf("waking gostree-agent (pid %d): %w", pid, err)
				}
				fmt.Fprintf(g.stdout, "apply requested; gostree-agent (pid %d) reboots into the update now\n", pid)
				return nil
			}
			unlock()
			fmt.Fprintln(g.stdout, "apply requested; no agent is running, applying now")
			return g.withAgent(cmd.Context(), true, func(ctx context.Context, a *agent.Agent, _ *agent.Config) error {
				_, err := a.Step(ctx)
				return err
			})
		},
	}
	return cmd
}
