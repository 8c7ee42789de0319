package sysroot

import (
	"errors"
	"io/fs"
	"os"
)

// UnlockFinalization removes RUNDIR/ostree/staged-deployment-locked, so the
// staged deployment is finalized at the next shutdown (the agent stages
// with LockFinalization and unlocks right before it reboots, so an
// unrelated reboot does not apply an update outside its reboot policy).
// Unlocking when nothing is locked is not an error.
func (s *Sysroot) UnlockFinalization() error {
	err := os.Remove(s.stagedLockedPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
