package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/agent/health"
)

func newHealthCheckCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "health-check",
		Short: "Run the health checks and save this boot's report (gostree-healthcheck.service)",
		Long: `Run the required.d/wanted.d scripts and unit checks of the configuration, save the
report to RUN_DIR/health.json for the agent, print a summary, and exit 1 when a
required check failed — which keeps boot-complete.target from being reached.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			hc := health.Config{RequiredDir: cfg.Health.RequiredDir, WantedDir: cfg.Health.WantedDir,
				RequiredUnits: cfg.Health.RequiredUnits, WantedUnits: cfg.Health.WantedUnits,
				Timeout: cfg.Health.Timeout, BootIDPath: g.bootIDFile}
			r, runErr := health.Run(cmd.Context(), hc)
			if err := health.SaveReport(filepath.Join(cfg.RunDir, "health.json"), r); err != nil && runErr == nil {
				return err
			}
			if runErr != nil {
				return runErr
			}
			for _, c := range r.Checks {
				state := "ok"
				if !c.OK {
					state = "FAILED (" + c.Err + ")"
				}
				fmt.Fprintf(g.stdout, "%-40s %s\n", c.Name, state)
			}
			fmt.Fprintln(g.stdout, r.Summary())
			if !r.OK {
				return &exitError{code: 1}
			}
			return nil
		},
	}
}
