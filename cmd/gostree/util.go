package main

import (
	"fmt"
	"time"

	"github.com/gostree/gostree/ostree"
)

func errUsage(format string, args ...any) error {
	return exitError{code: 1, msg: fmt.Sprintf(format, args...)}
}

// formatTimestamp formats commit times as ostree does.
func formatTimestamp(ts uint64) string {
	return time.Unix(int64(ts), 0).UTC().Format("2006-01-02 15:04:05 -0700")
}

// openCommit opens the repository and loads the commit rev names. The
// caller closes the repository.
func (g *globalOptions) openCommit(rev string) (*ostree.Repo, ostree.Checksum, *ostree.Commit, error) {
	r, err := g.openRepo()
	if err != nil {
		return nil, ostree.Checksum{}, nil, err
	}
	c, err := r.ResolveRev(rev)
	if err == nil {
		var cm *ostree.Commit
		if cm, err = r.LoadCommit(c); err == nil {
			return r, c, cm, nil
		}
	}
	r.Close()
	return nil, c, nil, err
}
