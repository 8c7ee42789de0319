package sysroot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gostree/gostree/internal/atomicfile"
)

// Boot counting. DeployOptions.BootCountingTries writes the new entry as
// ostree-N-OS+TRIES.conf (systemd's boot assessment naming). With GRUB the
// countdown runs in grub.cfg and grubenv (see grub.go); with systemd-boot
// the boot loader renames the entry itself. Either way the entry stays
// "in assessment" until the booted system declares itself good:

// BlessBoot marks the booted deployment good, as systemd-bless-boot does:
// its BLS entry loses the +LEFT[-DONE] counter (a rename within the live
// boot/loader/entries), and with GRUB the countdown of grub.cfg and the
// grubenv counter of that deployment are dropped. It is idempotent and
// does nothing when the booted deployment is not being counted; the
// counter of another deployment (e.g. the default one GRUB fell back
// from) is left alone. It takes the sysroot lock unless the caller holds
// it. Not booted: ErrNotBooted.
//
// Order, so that a crash at any point is repaired by calling it again:
// grub.cfg without the countdown first (GRUB stops counting), then the
// entry rename, then grubenv.
func (s *Sysroot) BlessBoot(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.lock == nil {
		if err := s.Lock(); err != nil {
			return err
		}
		defer s.Unlock()
	}
	if err := s.Load(); err != nil {
		return err
	}
	b := s.Booted()
	if b == nil {
		return fmt.Errorf("bless boot: %w", ErrNotBooted)
	}
	if b.Entry == nil {
		return fmt.Errorf("bless boot: booted deployment %s has no boot entry", b.Name())
	}
	dir, grub, err := s.grubDir()
	if err != nil {
		return fmt.Errorf("bless boot: %w", err)
	}
	var env *GrubEnv
	envPath := filepath.Join(dir, "grubenv")
	envCounts := false
	if grub {
		env, err = readGrubEnv(envPath)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			env = nil
		case err != nil:
			return fmt.Errorf("bless boot: %w", err)
		default:
			id, _ := env.Get(grubEnvIDVar)
			envCounts = id == grubID(b)
		}
	}
	counted := b.Entry.TriesLeft >= 0
	if !counted && !envCounts {
		return nil
	}
	entries := s.p("boot", fmt.Sprintf("loader.%d", s.BootVersion), "entries")
	if counted {
		blessed := *b.Entry
		blessed.TriesLeft, blessed.TriesDone = -1, 0
		blessed.FileName = counterRE.ReplaceAllString(b.Entry.FileName, ".conf")
		if grub {
			items := s.currentGrubItems()
			for i := range items {
				if items[i].entry == b.Entry {
					items[i].entry = &blessed
				}
			}
			cfg := grubConfig(items, s.grubBootPrefix())
			if err := atomicfile.WriteFile(s.p("boot", fmt.Sprintf("loader.%d", s.BootVersion), "grub.cfg"), cfg, 0o644); err != nil {
				return fmt.Errorf("bless boot: %w", err)
			}
		}
		to := filepath.Join(entries, blessed.FileName)
		if _, err := os.Lstat(to); err == nil {
			return fmt.Errorf("bless boot: cannot rename %s: %s exists", b.Entry.FileName, to)
		}
		if err := os.Rename(filepath.Join(entries, b.Entry.FileName), to); err != nil {
			return fmt.Errorf("bless boot: %w", err)
		}
		if err := atomicfile.SyncDir(entries); err != nil {
			return fmt.Errorf("bless boot: %w", err)
		}
		*b.Entry = blessed
	}
	if envCounts && env.Unset(grubEnvIDVar, grubEnvTriesVar) {
		if err := env.write(envPath); err != nil {
			return fmt.Errorf("bless boot: %w", err)
		}
	}
	return nil
}
