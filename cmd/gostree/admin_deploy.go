package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/internal/keyfile"
	"github.com/gostree/gostree/sysroot"
)

// deployFlags are shared by deploy, switch and upgrade.
type deployFlags struct {
	o          sysroot.DeployOptions
	originFile string
}

func (f *deployFlags) register(cmd *cobra.Command, all bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.o.OSName, "os", "", "use a different stateroot than the booted one")
	fl.BoolVar(&f.o.Retain, "retain", false, "do not delete previous deployments")
	fl.BoolVar(&f.o.RetainPending, "retain-pending", false, "do not delete pending deployments")
	fl.BoolVar(&f.o.RetainRollback, "retain-rollback", false, "do not delete rollback deployments")
	fl.BoolVar(&f.o.Stage, "stage", false, "complete the deployment at shutdown (admin finalize-staged)")
	fl.BoolVar(&f.o.LockFinalization, "lock-finalization", false, "with --stage: do not finalize at shutdown until RUNDIR/ostree/staged-deployment-locked is removed")
	fl.BoolVar(&f.o.NoPrune, "no-prune", false, "do not prune the repository afterwards")
	fl.BoolVar(&f.o.Etc.OstreeCompat, "etc-ostree-compat", false, "merge /etc exactly as ostree 2022.7, dropping mode-only and directory-permission changes")
	fl.IntVar(&f.o.BootCountingTries, "boot-counting", 0, "write the new boot entry with a systemd boot-assessment counter of N tries")
	if !all {
		return
	}
	fl.StringVar(&f.originFile, "origin-file", "", "use this keyfile as the origin")
	fl.StringArrayVar(&f.o.Karg, "karg", nil, "set kernel argument KEY=VALUE (replacing the key)")
	fl.StringArrayVar(&f.o.KargAppend, "karg-append", nil, "append kernel argument")
	fl.StringArrayVar(&f.o.KargDelete, "karg-delete", nil, "delete kernel argument")
	fl.BoolVar(&f.o.KargNone, "karg-none", false, "start from no kernel arguments")
	fl.BoolVar(&f.o.KargProcCmdline, "karg-proc-cmdline", false, "start from the current /proc/cmdline")
	fl.BoolVar(&f.o.NotAsDefault, "not-as-default", false, "add the deployment after the booted/merge one instead of first")
	fl.BoolVar(&f.o.NoMerge, "no-merge", false, "do not merge /etc or kernel arguments from the current deployment")
}

func (a *adminOptions) runDeploy(cmd *cobra.Command, f *deployFlags) error {
	if f.originFile != "" {
		b, err := os.ReadFile(f.originFile)
		if err != nil {
			return fmt.Errorf("reading origin file: %w", err)
		}
		kf, err := keyfile.Parse(b)
		if err != nil {
			return fmt.Errorf("origin file %s: %w", f.originFile, err)
		}
		f.o.Origin = kf
	}
	s, err := a.open(true)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.Deploy(cmd.Context(), f.o)
	if err != nil {
		return err
	}
	if res.VarIgnored {
		a.printf("note: Deploying commit %s which contains content in /var that will be ignored.\n", res.Deployment.Checksum)
	}
	a.printEtcResult(res.Etc)
	if res.Write == nil {
		a.printf("Staged deployment %s; it is finalized at shutdown (admin finalize-staged)\n", res.Deployment.Name())
		return nil
	}
	a.printWrite(res.Write)
	return nil
}

func newAdminDeployCommand(a *adminOptions) *cobra.Command {
	f := &deployFlags{}
	cmd := &cobra.Command{
		Use:   "deploy REFSPEC|CHECKSUM",
		Short: "Check out a commit as a new deployment and make it the default",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.o.Revision = args[0]
			return a.runDeploy(cmd, f)
		},
	}
	f.register(cmd, true)
	return cmd
}
