package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/store"
	"github.com/gostree/gostree/ostree/store/httpstore"
)

// pullFlags are the options pull and pull-local share.
type pullFlags struct {
	depth              int
	mirror             bool
	commitMetadataOnly bool
	dryRun             bool
	disableDeltas      bool
	requireDeltas      bool
	jobs               int
	lowSpeedTime       time.Duration
}

func (f *pullFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.depth, "depth", 0, "also pull N parent commits (-1: all)")
	fl.BoolVar(&f.mirror, "mirror", false, "write refs to refs/heads (and with no refs, pull every ref and the summary)")
	fl.BoolVar(&f.commitMetadataOnly, "commit-metadata-only", false, "pull commits only, not their trees")
	fl.BoolVar(&f.dryRun, "dry-run", false, "only show what would be pulled")
	fl.IntVar(&f.jobs, "jobs", 32, "objects fetched at once (and connections to the server)")
}

func (f *pullFlags) options() ostree.PullOptions {
	return ostree.PullOptions{
		Depth: f.depth, Mirror: f.mirror, CommitMetadataOnly: f.commitMetadataOnly, DryRun: f.dryRun,
		DisableStaticDeltas: f.disableDeltas, RequireStaticDeltas: f.requireDeltas, Jobs: f.jobs,
	}
}

// openRemoteStore builds the store stack for a remote URL.
func openRemoteStore(rm *ostree.Remote, url string, o *httpstore.Options) (store.Store, error) {
	base := httpstore.Options{UserAgent: "gostree"}
	if o != nil {
		base = *o
	}
	return ostree.RemoteStore(rm, url, base)
}

func newPullCommand(g *globalOptions) *cobra.Command {
	var pf pullFlags
	var rd remotesDir
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] REMOTE [REF[@COMMIT]...]",
		Short: "Download commits and their trees from a remote repository",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			remote, refs := args[0], args[1:]
			if name, ref, ok := strings.Cut(remote, ":"); ok && len(refs) == 0 {
				remote, refs = name, []string{ref}
			}
			rm, err := r.Remote(rd.get(r), remote)
			if err != nil {
				return err
			}
			o := pf.options()
			o.Remote, o.Refs = rm, refs
			// As many connections as objects in flight: on a high-latency link
			// each connection carries one request per round trip.
			ho := httpstore.Options{UserAgent: "gostree", LowSpeedTime: pf.lowSpeedTime, MaxConns: pf.jobs}
			if o.CommitVerifier, o.SummaryVerifier, err = remoteVerifiers(r, rm); err != nil {
				return err
			}
			src, err := openRemoteStore(rm, rm.URL(), &ho)
			if err != nil {
				return err
			}
			if cu := rm.ContentURL(); cu != rm.URL() {
				if o.ContentStore, err = openRemoteStore(rm, cu, &ho); err != nil {
					return err
				}
			}
			stop := progressPrinter(g.stdout, &o)
			res, err := ostree.Pull(cmd.Context(), r, src, o)
			stop()
			if err != nil {
				return err
			}
			printPullResult(g.stdout, res)
			return nil
		},
	}
	pf.add(cmd)
	rd.flag(cmd)
	cmd.Flags().BoolVar(&pf.disableDeltas, "disable-static-deltas", false, "do not use static deltas")
	cmd.Flags().BoolVar(&pf.requireDeltas, "require-static-deltas", false, "fail unless static deltas can be used")
	cmd.Flags().DurationVar(&pf.lowSpeedTime, "low-speed-time", 0, "abandon and retry a transfer slower than 1000 B/s over this time (default 30s)")
	return cmd
}

func newPullLocalCommand(g *globalOptions) *cobra.Command {
	var pf pullFlags
	var remote string
	var untrusted bool
	cmd := &cobra.Command{
		Use:   "pull-local [OPTIONS] SRC_REPO [REF...]",
		Short: "Copy commits and their trees from another local repository",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			src, err := ostree.Open(args[0])
			if err != nil {
				return err
			}
			defer src.Close()
			o := pf.options()
			o.Refs, o.Untrusted = args[1:], untrusted
			if remote != "" {
				if err := ostree.ValidateRemoteName(remote); err != nil {
					return err
				}
				o.Remote = &ostree.Remote{Name: remote}
			}
			stop := progressPrinter(g.stdout, &o)
			res, err := ostree.PullLocal(cmd.Context(), r, src, o)
			stop()
			if err != nil {
				return err
			}
			printPullResult(g.stdout, res)
			return nil
		},
	}
	pf.add(cmd)
	cmd.Flags().StringVar(&remote, "remote", "", "write refs to refs/remotes/REMOTE")
	cmd.Flags().BoolVar(&untrusted, "untrusted", false, "verify every object of the source repository")
	return cmd
}

func printPullResult(w io.Writer, res *ostree.PullResult) {
	for _, l := range res.DryRun {
		fmt.Fprintln(w, l)
	}
}

// isTTY reports whether w is a terminal.
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressPrinter shows a progress line on a terminal (nothing otherwise)
// and returns a function that ends it.
func progressPrinter(w io.Writer, o *ostree.PullOptions) func() {
	if !isTTY(w) {
		return func() {}
	}
	last := 0
	o.Progress = func(p ostree.PullProgress) {
		line := fmt.Sprintf("Receiving objects: %d/%d, %s, %s/s", p.FetchedMetadata+p.FetchedContent, p.Requested,
			formatBytes(float64(p.Bytes)), formatBytes(p.Rate))
		if p.DeltaParts > 0 {
			line = fmt.Sprintf("Receiving delta parts: %d; ", p.DeltaParts) + line
		}
		if p.Done {
			line = fmt.Sprintf("%d metadata, %d content objects fetched; %s transferred in %.0f seconds",
				p.FetchedMetadata, p.FetchedContent, formatBytes(float64(p.Bytes)), p.Elapsed.Seconds())
		}
		pad := ""
		if n := last - len(line); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		last = len(line)
		fmt.Fprintf(w, "\r%s%s", line, pad)
		if p.Done {
			fmt.Fprintln(w)
		}
	}
	return func() {}
}

func formatBytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", n, units[i])
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
