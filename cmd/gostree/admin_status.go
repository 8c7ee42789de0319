package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/sysroot"
)

type statusDeployment struct {
	Index      int      `json:"index"`
	OSName     string   `json:"osname"`
	Checksum   string   `json:"checksum"`
	Serial     int      `json:"serial"`
	Version    string   `json:"version,omitempty"`
	Refspec    string   `json:"origin_refspec,omitempty"`
	BootCsum   string   `json:"bootcsum,omitempty"`
	Kargs      []string `json:"kargs,omitempty"`
	Booted     bool     `json:"booted"`
	Pending    bool     `json:"pending"`
	Rollback   bool     `json:"rollback"`
	Staged     bool     `json:"staged"`
	Pinned     bool     `json:"pinned"`
	TriesLeft  *int     `json:"boot_tries_left,omitempty"`
	TriesDone  *int     `json:"boot_tries_done,omitempty"`
	EntryFile  string   `json:"boot_entry,omitempty"`
	Deployment string   `json:"path"`
}

type statusJSON struct {
	BootVersion    int                `json:"bootversion"`
	SubBootVersion int                `json:"subbootversion"`
	Deployments    []statusDeployment `json:"deployments"`
}

func newAdminStatusCommand(a *adminOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List deployments (booted *, pending, rollback, staged, pinned)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.open(false)
			if err != nil {
				return err
			}
			defer s.Close()
			if asJSON {
				out := statusJSON{BootVersion: s.BootVersion, SubBootVersion: s.SubBootVersion, Deployments: []statusDeployment{}}
				for _, d := range s.Deployments {
					sd := statusDeployment{Index: d.Index, OSName: d.OSName, Checksum: d.Checksum.String(), Serial: d.Serial,
						Version: d.Version, Refspec: d.Refspec(), BootCsum: d.BootCsum, Kargs: d.Kargs, Booted: d.Booted,
						Pending: s.IsPending(d), Rollback: s.IsRollback(d), Staged: d.Staged, Pinned: d.Pinned(),
						Deployment: s.DeploymentPath(d)}
					if d.Entry != nil {
						sd.EntryFile = d.Entry.FileName
						if d.Entry.TriesLeft >= 0 {
							l, dn := d.Entry.TriesLeft, d.Entry.TriesDone
							sd.TriesLeft, sd.TriesDone = &l, &dn
						}
					}
					out.Deployments = append(out.Deployments, sd)
				}
				enc := json.NewEncoder(a.g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			printStatus(a, s)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printStatus prints the deployments as `ostree admin status` (2022.7).
func printStatus(a *adminOptions, s *sysroot.Sysroot) {
	if len(s.Deployments) == 0 {
		a.printf("No deployments.\n")
		return
	}
	for _, d := range s.Deployments {
		mark := ' '
		if d.Booted {
			mark = '*'
		}
		suffix := ""
		switch {
		case d.Staged:
			suffix = " (staged)"
		case s.IsPending(d):
			suffix = " (pending)"
		case s.IsRollback(d):
			suffix = " (rollback)"
		}
		a.printf("%c %s %s%s\n", mark, d.OSName, d.Name(), suffix)
		if d.Version != "" {
			a.printf("    Version: %s\n", d.Version)
		}
		if d.Pinned() {
			a.printf("    Pinned: yes\n")
		}
		if d.Entry != nil && d.Entry.TriesLeft >= 0 {
			a.printf("    Boot counter: %d tries left, %d done\n", d.Entry.TriesLeft, d.Entry.TriesDone)
		}
		switch {
		case d.Origin == nil:
			a.printf("    origin: none\n")
		case d.Refspec() == "":
			a.printf("    origin: <unknown origin type>\n")
		default:
			a.printf("    origin refspec: %s\n", d.Refspec())
		}
	}
}
