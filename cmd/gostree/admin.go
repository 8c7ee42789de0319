package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/sysroot"
	"github.com/gostree/gostree/sysroot/etcmerge"
)

// adminOptions are shared by every `admin` subcommand.
type adminOptions struct {
	g                  *globalOptions
	sysroot            string
	runDir             string
	rootDir            string
	allowUnbootedStage bool
}

func newAdminCommand(g *globalOptions) *cobra.Command {
	a := &adminOptions{g: g}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage a sysroot: deployments, boot entries, /etc (as `ostree admin`)",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&a.sysroot, "sysroot", "/", "the sysroot directory")
	pf.StringVar(&a.runDir, "run-dir", "", "use this instead of /run for ostree-booted and the staged deployment (tests; env GOSTREE_RUN_DIR)")
	pf.StringVar(&a.rootDir, "root-dir", "", "use this instead of / to detect the booted deployment (tests; env GOSTREE_ROOT_DIR)")
	pf.BoolVar(&a.allowUnbootedStage, "allow-unbooted-stage", false, "allow --stage on a sysroot that is not booted (tests, image builds; env GOSTREE_ALLOW_UNBOOTED_STAGE=1)")
	for _, n := range []string{"run-dir", "root-dir", "allow-unbooted-stage"} {
		pf.MarkHidden(n)
	}
	cmd.AddCommand(
		newAdminInitFSCommand(a),
		newAdminOSInitCommand(a),
		newAdminDeployCommand(a),
		newAdminStatusCommand(a),
		newAdminUndeployCommand(a),
		newAdminPinCommand(a),
		newAdminSetOriginCommand(a),
		newAdminSwitchCommand(a),
		newAdminUpgradeCommand(a),
		newAdminCleanupCommand(a),
		newAdminConfigDiffCommand(a),
		newAdminKargsCommand(a),
		newAdminFinalizeStagedCommand(a),
		newAdminRollbackCommand(a),
		newAdminInstallCommand(a),
	)
	return cmd
}

// open opens the sysroot; with lock it also takes the sysroot lock.
// Either way the deployments are loaded.
func (a *adminOptions) open(lock bool) (*sysroot.Sysroot, error) {
	o := sysroot.Options{RunDir: a.runDir, RootDir: a.rootDir, AllowUnbootedStage: a.allowUnbootedStage}
	if o.RunDir == "" {
		o.RunDir = os.Getenv("GOSTREE_RUN_DIR")
	}
	if o.RootDir == "" {
		o.RootDir = os.Getenv("GOSTREE_ROOT_DIR")
	}
	if os.Getenv("GOSTREE_ALLOW_UNBOOTED_STAGE") == "1" {
		o.AllowUnbootedStage = true
	}
	s, err := sysroot.Open(a.sysroot, o)
	if err != nil {
		return nil, err
	}
	if lock {
		if err := s.Lock(); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.Load(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (a *adminOptions) printf(format string, args ...any) {
	fmt.Fprintf(a.g.stdout, format, args...)
}

func parseIndex(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid deployment index %q: want a number >= 0", s)
	}
	return n, nil
}

// printEtcResult prints the merge summary and the notes as ostree-style
// lines.
func (a *adminOptions) printEtcResult(r *etcmerge.Result) {
	if r == nil {
		return
	}
	if r.Diff != nil {
		a.printf("Copying /etc changes: %d modified, %d removed, %d added\n", len(r.Diff.Modified), len(r.Diff.Removed), len(r.Diff.Added))
	}
	for _, n := range r.Notes {
		a.printf("note: /etc/%s\n", n)
	}
}

func (a *adminOptions) printWrite(w *sysroot.WriteResult) {
	if w == nil {
		return
	}
	a.printf("%s\n", w.String())
	if w.Cleanup != nil && w.Cleanup.Prune != nil && w.Cleanup.Prune.FreedBytes > 0 {
		a.printf("Freed objects: %s\n", adminFormatSize(w.Cleanup.Prune.FreedBytes))
	}
}

// adminFormatSize is GLib's g_format_size (SI units, one decimal).
func adminFormatSize(n uint64) string {
	if n < 1000 {
		if n == 1 {
			return "1 byte"
		}
		return fmt.Sprintf("%d bytes", n)
	}
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB"}
	f := float64(1000)
	for i, u := range units {
		if i == len(units)-1 || float64(n) < f*1000 {
			return fmt.Sprintf("%.1f %s", float64(n)/f, u)
		}
		f *= 1000
	}
	return ""
}
