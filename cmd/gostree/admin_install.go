package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/sysroot"
)

// installOptions are the flags of `admin install`.
type installOptions struct {
	osname     string
	kargs      []string
	size       string
	bootSize   string
	bootloader string
	grubCustom string
	grubLib    string
}

const (
	installSector    = 512
	installBootStart = 2048 // 1 MiB: the gap before p1 holds GRUB's core.img
)

func newAdminInstallCommand(a *adminOptions) *cobra.Command {
	o := &installOptions{}
	cmd := &cobra.Command{
		Use:   "install [OPTIONS] SRC_REPO REF DISK.img",
		Short: "Make a bootable disk image (MBR, /boot and root ext4, GRUB for BIOS) holding one deployment of REF",
		Long: `Make a bootable disk image file holding one deployment of REF from SRC_REPO.

A sysroot is prepared in a staging directory next to DISK.img (init-fs, os-init, a pull of REF
from SRC_REPO, deploy with the given kernel arguments), then written into the image without
mounting anything: an MBR with p1 = /boot (ext4, label "boot", bootable) and p2 = the physical
root (ext4, label "root"), each made by mkfs.ext4 -d at its offset. With --bootloader=grub-bios
(the default) GRUB for BIOS is installed by hand: its modules in /boot/grub/i386-pc, core.img
(grub-mkimage: biosdisk, part_msdos, ext2; prefix (hd0,msdos1)/grub) in the gap before p1 and
boot.img's code in the MBR; /boot/grub/grub.cfg is the link to ../loader/grub.cfg that gostree
rewrites at every deployment change. Needs mkfs.ext4 (e2fsprogs) and, for GRUB, grub-mkimage and
Debian's grub-pc-bin. DISK.img must not exist.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runInstall(cmd.Context(), o, args[0], args[1], args[2])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.osname, "os", "", "the stateroot to create and deploy into (required)")
	f.StringArrayVar(&o.kargs, "karg", nil, "kernel argument KEY=VALUE of the deployment (repeatable), e.g. root=LABEL=root")
	f.StringVar(&o.size, "size", "4G", "size of the image (K, M, G suffixes; whole MiB)")
	f.StringVar(&o.bootSize, "boot-size", "512M", "size of the /boot partition")
	f.StringVar(&o.bootloader, "bootloader", "grub-bios", "grub-bios or none (BLS entries only)")
	f.StringVar(&o.grubCustom, "grub-custom", "", "a file installed as /boot/grub/custom.cfg (sourced by gostree's grub.cfg: serial console, timeout)")
	f.StringVar(&o.grubLib, "grub-dir", "/usr/lib/grub/i386-pc", "GRUB's i386-pc directory (modules, boot.img)")
	return cmd
}

// installParseSize reads 4G, 512M, 65536K or a byte count; the result is a
// whole number of MiB.
func installParseSize(s string) (int64, error) {
	mult := int64(1)
	num := s
	switch {
	case strings.HasSuffix(s, "G"):
		mult, num = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		mult, num = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "K"):
		mult, num = 1<<10, strings.TrimSuffix(s, "K")
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("invalid size %q: want a positive number with an optional K, M or G suffix", s)
	}
	if n*mult%(1<<20) != 0 {
		return 0, fmt.Errorf("invalid size %q: must be a whole number of MiB", s)
	}
	return n * mult, nil
}

func (a *adminOptions) runInstall(ctx context.Context, o *installOptions, srcPath, ref, disk string) (err error) {
	if o.osname == "" {
		return errUsage("admin install: --os is required")
	}
	if o.bootloader != "grub-bios" && o.bootloader != "none" {
		return errUsage("admin install: --bootloader must be grub-bios or none, not %q", o.bootloader)
	}
	size, err := installParseSize(o.size)
	if err != nil {
		return err
	}
	bootSize, err := installParseSize(o.bootSize)
	if err != nil {
		return err
	}
	rootStart := int64(installBootStart)*installSector + bootSize
	if size < rootStart+64<<20 {
		return fmt.Errorf("admin install: a %s image leaves less than 64 MiB for the root partition after a %s /boot", o.size, o.bootSize)
	}
	if _, err := os.Lstat(disk); err == nil {
		return fmt.Errorf("admin install: %s exists; remove it first (install writes new image files only)", disk)
	}
	for _, tool := range []string{"mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("admin install: %s not found (Debian package e2fsprogs)", tool)
		}
	}
	grub := o.bootloader == "grub-bios"
	if grub {
		if _, err := exec.LookPath("grub-mkimage"); err != nil {
			return errors.New("admin install: grub-mkimage not found (Debian package grub-common)")
		}
		if _, err := os.Stat(filepath.Join(o.grubLib, "boot.img")); err != nil {
			return fmt.Errorf("admin install: no GRUB for BIOS in %s (Debian package grub-pc-bin), or use --bootloader=none", o.grubLib)
		}
	}
	src, err := ostree.Open(srcPath)
	if err != nil {
		return err
	}
	defer src.Close()

	stage, err := os.MkdirTemp(filepath.Dir(disk), ".gostree-install-")
	if err != nil {
		return fmt.Errorf("admin install: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(stage); rerr != nil && err == nil {
			err = fmt.Errorf("admin install: removing the staging directory: %w", rerr)
		}
	}()
	root := filepath.Join(stage, "root")
	d, err := installSysroot(ctx, o, src, ref, root, grub)
	if err != nil {
		return fmt.Errorf("admin install: %w", err)
	}
	// The two file systems are made from separate trees: boot/ moves out
	// and the root keeps an empty mount point.
	bootDir := filepath.Join(stage, "boot")
	if err := os.Rename(filepath.Join(root, "boot"), bootDir); err != nil {
		return fmt.Errorf("admin install: %w", err)
	}
	if err := os.Mkdir(filepath.Join(root, "boot"), 0o755); err != nil {
		return fmt.Errorf("admin install: %w", err)
	}

	created := false
	defer func() {
		if err != nil && created {
			os.Remove(disk)
		}
	}()
	img, err := os.OpenFile(disk, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("admin install: %w", err)
	}
	created = true
	defer img.Close()
	if err := img.Truncate(size); err != nil {
		return fmt.Errorf("admin install: %w", err)
	}
	mbr := makeMBR(d.Checksum, bootSize/installSector, (size-rootStart)/installSector)
	if _, err := img.WriteAt(mbr, 0); err != nil {
		return fmt.Errorf("admin install: %w", err)
	}
	for _, p := range []struct {
		label, dir string
		off, n     int64
	}{{"boot", bootDir, installBootStart * installSector, bootSize}, {"root", root, rootStart, size - rootStart}} {
		out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", p.label, "-E", fmt.Sprintf("offset=%d", p.off),
			"-d", p.dir, disk, fmt.Sprintf("%dk", p.n/1024)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("admin install: mkfs.ext4 of %s: %v: %s", p.label, err, strings.TrimSpace(string(out)))
		}
	}
	if st, err := img.Stat(); err != nil || st.Size() != size {
		return fmt.Errorf("admin install: mkfs.ext4 changed the size of %s", disk)
	}
	if grub {
		if err := installGrubBIOS(ctx, img, o.grubLib, filepath.Join(stage, "core.img")); err != nil {
			return fmt.Errorf("admin install: %w", err)
		}
	}
	if err := img.Sync(); err != nil {
		return fmt.Errorf("admin install: %w", err)
	}
	a.printf("Installed %s (%s) of %s into %s: /boot %s, root %s, bootloader %s\n",
		d.Name(), ref, o.osname, disk, o.bootSize, adminFormatSize(uint64(size-rootStart)), o.bootloader)
	return nil
}

// installSysroot prepares the sysroot tree at root with one deployment.
func installSysroot(ctx context.Context, o *installOptions, src *ostree.Repo, ref, root string, grub bool) (*sysroot.Deployment, error) {
	if err := sysroot.InitFS(root); err != nil {
		return nil, err
	}
	// The staging tree is copied by mkfs: the deployment stays deletable
	// (no immutable flag) and nothing needs to be synced on the way.
	s, err := sysroot.Open(root, sysroot.Options{MutableDeployments: true})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := s.Lock(); err != nil {
		return nil, err
	}
	s.Repo().SetFsync(false)
	s.Repo().Config().Set("core", "fsync", "false") // in memory only: the image's config keeps the default
	if err := s.InitOS(o.osname); err != nil {
		return nil, err
	}
	if _, err := ostree.PullLocal(ctx, s.Repo(), src, ostree.PullOptions{Refs: []string{ref}}); err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	if grub {
		gdir := filepath.Join(root, "boot", "grub")
		if err := os.MkdirAll(filepath.Join(gdir, "i386-pc"), 0o755); err != nil {
			return nil, err
		}
		mods, err := filepath.Glob(filepath.Join(o.grubLib, "*.mod"))
		if err != nil {
			return nil, err
		}
		lsts, _ := filepath.Glob(filepath.Join(o.grubLib, "*.lst"))
		for _, m := range append(mods, lsts...) {
			if err := installCopyFile(m, filepath.Join(gdir, "i386-pc", filepath.Base(m)), 0o644); err != nil {
				return nil, err
			}
		}
		if o.grubCustom != "" {
			if err := installCopyFile(o.grubCustom, filepath.Join(gdir, "custom.cfg"), 0o644); err != nil {
				return nil, err
			}
		}
		// gostree detects GRUB by this link and writes loader.N/grub.cfg.
		if err := os.Symlink("../loader/grub.cfg", filepath.Join(gdir, "grub.cfg")); err != nil {
			return nil, err
		}
	}
	res, err := s.Deploy(ctx, sysroot.DeployOptions{OSName: o.osname, Revision: ref, Karg: o.kargs})
	if err != nil {
		return nil, err
	}
	if grub {
		if _, err := os.Stat(filepath.Join(root, "boot", "loader", "grub.cfg")); err != nil {
			return nil, fmt.Errorf("no grub.cfg was generated: %w", err)
		}
	}
	return res.Deployment, nil
}

// makeMBR returns sector 0: a DOS partition table with p1 (bootable,
// Linux) of bootSectors at 1 MiB and p2 (Linux) of rootSectors after it.
// The disk identifier comes from the commit, so images are reproducible.
func makeMBR(c ostree.Checksum, bootSectors, rootSectors int64) []byte {
	b := make([]byte, installSector)
	copy(b[440:444], c[:4])
	entry := func(i int, boot bool, start, n int64) {
		e := b[446+16*i : 446+16*(i+1)]
		if boot {
			e[0] = 0x80
		}
		copy(e[1:4], []byte{0xfe, 0xff, 0xff}) // CHS unused: LBA only
		e[4] = 0x83
		copy(e[5:8], []byte{0xfe, 0xff, 0xff})
		binary.LittleEndian.PutUint32(e[8:12], uint32(start))
		binary.LittleEndian.PutUint32(e[12:16], uint32(n))
	}
	entry(0, true, installBootStart, bootSectors)
	entry(1, false, installBootStart+bootSectors, rootSectors)
	b[510], b[511] = 0x55, 0xaa
	return b
}

// installGrubBIOS writes boot.img's code into the MBR (its first 440
// bytes; the disk identifier and the partition table stay) and core.img
// from LBA 1 on, where boot.img looks for it.
func installGrubBIOS(ctx context.Context, img *os.File, grubLib, core string) error {
	out, err := exec.CommandContext(ctx, "grub-mkimage", "-O", "i386-pc", "-d", grubLib, "-o", core,
		"-p", "(hd0,msdos1)/grub", "biosdisk", "part_msdos", "ext2").CombinedOutput()
	if err != nil {
		return fmt.Errorf("grub-mkimage: %v: %s", err, strings.TrimSpace(string(out)))
	}
	c, err := os.ReadFile(core)
	if err != nil {
		return err
	}
	if int64(len(c)) > (installBootStart-1)*installSector {
		return fmt.Errorf("GRUB's core.img (%d bytes) does not fit before the first partition", len(c))
	}
	bootImg, err := os.ReadFile(filepath.Join(grubLib, "boot.img"))
	if err != nil {
		return err
	}
	if len(bootImg) != installSector {
		return fmt.Errorf("%s: %d bytes, want 512", filepath.Join(grubLib, "boot.img"), len(bootImg))
	}
	if _, err := img.WriteAt(bootImg[:440], 0); err != nil {
		return err
	}
	_, err = img.WriteAt(c, installSector)
	return err
}

func installCopyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
