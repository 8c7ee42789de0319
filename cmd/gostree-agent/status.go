package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/agent"
	"github.com/gostree/gostree/sysroot"
)

// deploymentView is one deployment in status output.
type deploymentView struct {
	OSName  string `json:"osname"`
	Commit  string `json:"commit"`
	Serial  int    `json:"serial"`
	Version string `json:"version,omitempty"`
	Booted  bool   `json:"booted,omitempty"`
	Staged  bool   `json:"staged,omitempty"`
	Pinned  bool   `json:"pinned,omitempty"`
}

type statusView struct {
	Deployments []deploymentView `json:"deployments"`
	Agent       json.RawMessage  `json:"agent"`
}

func newStatusCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the deployments and what the agent is doing (or did last)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			st, err := agent.LoadStatus(&cfg)
			if err != nil {
				return err
			}
			var deps []deploymentView
			s, err := sysroot.Open(cfg.Sysroot, sysroot.Options{RunDir: g.runDir, RootDir: g.rootDir})
			if err != nil {
				return err
			}
			err = s.Load()
			if err == nil {
				for _, d := range s.Deployments {
					deps = append(deps, deploymentView{OSName: d.OSName, Commit: d.Checksum.String(), Serial: d.Serial,
						Version: d.Version, Booted: d.Booted, Staged: d.Staged, Pinned: d.Pinned()})
				}
			}
			s.Close()
			if err != nil {
				return err
			}
			raw, err := st.RedactedJSON()
			if err != nil {
				return err
			}
			if asJSON {
				b, err := json.MarshalIndent(statusView{Deployments: deps, Agent: raw}, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, string(b))
				return nil
			}
			printStatus(g.stdout, deps, st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (secrets such as signal URLs are left out)")
	return cmd
}

func printStatus(w io.Writer, deps []deploymentView, st *agent.Status) {
	fmt.Fprintln(w, "Deployments:")
	if len(deps) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, d := range deps {
		mark := " "
		var tags []string
		if d.Booted {
			mark = "*"
		}
		if d.Staged {
			tags = append(tags, "staged")
		}
		if d.Pinned {
			tags = append(tags, "pinned")
		}
		t := ""
		if len(tags) > 0 {
			t = " (" + strings.Join(tags, ", ") + ")"
		}
		fmt.Fprintf(w, "%s %s %s.%d%s\n", mark, d.OSName, d.Commit, d.Serial, t)
		if d.Version != "" {
			fmt.Fprintf(w, "    Version: %s\n", d.Version)
		}
	}
	fmt.Fprintln(w, "Agent:")
	if j := st.Job; j != nil {
		fmt.Fprintf(w, "  Phase:    %s\n", j.Phase)
		fmt.Fprintf(w, "  Target:   %s (%s)\n", j.Desired.Commit, j.Key)
		if j.Source != "" {
			fmt.Fprintf(w, "  Source:   %s\n", j.Source)
		}
		if p := j.Progress; p != nil && j.Phase == agent.PhasePull {
			fmt.Fprintf(w, "  Progress: %d/%d objects, %d bytes\n", p.Fetched, p.Requested, p.Bytes)
		}
		if j.RebootWait != "" {
			fmt.Fprintf(w, "  Waiting:  %s\n", j.RebootWait)
		}
		if j.LastError != "" {
			fmt.Fprintf(w, "  Error:    %s (attempt %d, next try %s)\n", j.LastError, j.Attempts, j.NextTry.Local().Format(time.DateTime))
		}
		if o := j.Outcome; o != nil {
			fmt.Fprintf(w, "  Outcome:  %s\n", outcomeText(o.OK, o.Reason))
		}
	} else {
		fmt.Fprintln(w, "  Phase:    idle")
	}
	if l := st.Last; l != nil {
		fmt.Fprintf(w, "  Last:     %s %s: %s\n", l.Time.Local().Format(time.DateTime), l.Key, outcomeText(l.OK, l.Reason))
	}
	if b := st.Blocked; b != nil {
		fmt.Fprintf(w, "  Blocked:  %s: %s\n", b.Commit, b.Reason)
	}
	if !st.LastPoll.IsZero() {
		fmt.Fprintf(w, "  Polled:   %s\n", st.LastPoll.Local().Format(time.DateTime))
	}
	if st.LastPollError != "" {
		fmt.Fprintf(w, "  Metadata: %s\n", st.LastPollError)
	}
}

func outcomeText(ok bool, reason string) string {
	if ok {
		return "succeeded: " + reason
	}
	return "FAILED: " + reason
}
