package sysroot

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Linux's FIFREEZE and FITHAW ioctls (linux/fs.h: _IOWR('X', 119/120, int)).
const (
	ioctlFIFREEZE = 0xC0045877
	ioctlFITHAW   = 0xC0045878
)

// checkpointBoot makes the switch visible to a bootloader that does not
// replay the filesystem journal (GRUB reads ext4 without it): when /boot
// is a filesystem of its own, a freeze/thaw cycle forces the journal to be
// checkpointed into place, as ostree does. Without it, a power cut right
// after the switch could leave GRUB reading the old entries while Linux
// (replaying the journal) sees the new ones, and the cleanup that follows
// removes what the old entries point at. Filesystems that cannot be
// frozen (EOPNOTSUPP, or EPERM in a container) are left alone: syncfs has
// already made the data durable for anything that replays the journal.
// The freeze lasts two system calls; a failed thaw is retried.
func (s *Sysroot) checkpointBoot() error {
	if on, err := s.repo.Config().Bool("core", "fsync", true); err == nil && !on {
		return nil
	}
	var sys, boot unix.Stat_t
	if err := unix.Stat(s.path, &sys); err != nil {
		return err
	}
	if err := unix.Stat(s.p("boot"), &boot); err != nil {
		return err
	}
	if sys.Dev == boot.Dev {
		return nil // /boot on the sysroot's filesystem: freezing it would freeze the whole system
	}
	return freezeThaw(s.p("boot"))
}

func freezeThaw(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("checkpointing %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.IoctlSetInt(fd, ioctlFIFREEZE, 0); err != nil {
		switch {
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOTTY), errors.Is(err, unix.EPERM),
			errors.Is(err, unix.EINVAL), errors.Is(err, unix.EBUSY):
			return nil
		}
		return fmt.Errorf("freezing %s: %w", dir, err)
	}
	var thawErr error
	for range 10 {
		if thawErr = unix.IoctlSetInt(fd, ioctlFITHAW, 0); thawErr == nil || errors.Is(thawErr, unix.EINVAL) {
			return nil // EINVAL: not frozen (any more)
		}
	}
	return fmt.Errorf("thawing %s: %w (the filesystem may still be frozen: run fsfreeze --unfreeze %s)", dir, thawErr, dir)
}
