// Command gostree is an OSTree-compatible command line tool: the common
// subset of ostree's verbs and flags, backed by the pure-Go repository in
// package ostree.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
)

// globalOptions are the options every subcommand accepts.
type globalOptions struct {
	repo   string
	stdout io.Writer
	stderr io.Writer
}

func (g *globalOptions) openRepo() (*ostree.Repo, error) {
	path := g.repo
	if path == "" {
		path = os.Getenv("OSTREE_REPO")
	}
	if path == "" {
		if _, err := os.Stat("/ostree/repo/config"); err == nil {
			path = "/ostree/repo"
		} else {
			return nil, errors.New("no repository given: use --repo=PATH (or set OSTREE_REPO)")
		}
	}
	return ostree.Open(path)
}

func newRootCommand(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:           "gostree",
		Short:         "Manage OSTree repositories (an ostree-compatible tool in pure Go)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.repo, "repo", "", "path to the OSTree repository (default: $OSTREE_REPO, or /ostree/repo)")
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.AddCommand(
		newInitCommand(g),
		newCommitCommand(g),
		newCheckoutCommand(g),
		newLogCommand(g),
		newLsCommand(g),
		newCatCommand(g),
		newShowCommand(g),
		newRefsCommand(g),
		newRevParseCommand(g),
		newConfigCommand(g),
		newFsckCommand(g),
		newPruneCommand(g),
		newSummaryCommand(g),
		newGPGSignCommand(g),
		newSignCommand(g),
		newRemoteCommand(g),
		newPullCommand(g),
		newPullLocalCommand(g),
		newAdminCommand(g),
		newSwiftCommand(g),
		newGlanceCommand(g),
		newStaticDeltaCommand(g),
	)
	return root
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globalOptions{stdout: stdout, stderr: stderr}
	root := newRootCommand(g)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

// exitError carries a specific exit status.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
