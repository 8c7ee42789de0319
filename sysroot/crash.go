package sysroot

import (
	"os"
	"strconv"
	"sync"
	"syscall"
)

// Crash points let the crash-safety harness stop an operation at every
// step boundary deterministically: with GOSTREE_CRASH_AT=K in the
// environment, the process kills itself with SIGKILL at the K-th crash
// point it reaches (counted from 1). Without the variable this is a no-op.
var crash struct {
	once sync.Once
	at   int
	n    int
	mu   sync.Mutex
}

func crashPoint(name string) {
	crash.once.Do(func() {
		crash.at, _ = strconv.Atoi(os.Getenv("GOSTREE_CRASH_AT"))
	})
	if crash.at <= 0 {
		return
	}
	crash.mu.Lock()
	crash.n++
	hit := crash.n == crash.at
	crash.mu.Unlock()
	if hit {
		if os.Getenv("GOSTREE_CRASH_VERBOSE") != "" {
			os.Stderr.WriteString("crash point " + strconv.Itoa(crash.at) + ": " + name + "\n")
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
