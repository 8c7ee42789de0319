package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/gostree/gostree/heatmeta"
)

// PrepareConfigDrive makes the config drive readable for the config_drive
// source when the configuration does not name a mount point: the drive
// labelled config-2 is used where it is mounted already, or mounted
// read-only (iso9660, else vfat; nodev, nosuid, noexec) under
// RUN_DIR/config-drive. Without a config drive nothing happens. The
// returned function unmounts what this call mounted.
func PrepareConfigDrive(cfg *Config) (func(), error) {
	none := func() {}
	cols := cfg.Metadata.Collectors
	if len(cols) == 0 {
		cols = heatmeta.DefaultCollectors
	}
	if !slices.Contains(cols, heatmeta.SourceConfigDrive) || cfg.Metadata.ConfigDrive.Dir != "" {
		return none, nil
	}
	dev, mp, err := heatmeta.FindConfigDrive()
	if err != nil {
		return none, fmt.Errorf("config drive: %w", err)
	}
	if dev == "" {
		return none, nil
	}
	if mp != "" {
		cfg.Metadata.ConfigDrive.Dir = mp
		return none, nil
	}
	dir := filepath.Join(cfg.RunDir, "config-drive")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return none, fmt.Errorf("config drive: %w", err)
	}
	flags := uintptr(unix.MS_RDONLY | unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC)
	var errs []error
	for _, fs := range []string{"iso9660", "vfat"} {
		err := unix.Mount(dev, dir, fs, flags, "")
		if err == nil {
			cfg.Metadata.ConfigDrive.Dir = dir
			return func() { unix.Unmount(dir, 0) }, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", fs, err))
	}
	return none, fmt.Errorf("config drive %s: cannot mount it read-only: %w", dev, errors.Join(errs...))
}
