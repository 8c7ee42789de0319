package main

import (
	"fmt"
	"time"
)

func errUsage(format string, args ...any) error {
	return exitError{code: 1, msg: fmt.Sprintf(format, args...)}
}

// formatTimestamp formats commit times as ostree does.
func formatTimestamp(ts uint64) string {
	return time.Unix(int64(ts), 0).UTC().Format("2006-01-02 15:04:05 -0700")
}
