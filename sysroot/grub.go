package sysroot

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gostree/gostree/internal/atomicfile"
)

// GRUB support. GRUB builds without the blscfg command (Debian's 2.06
// among them) cannot read the BLS entries, so, like ostree's grub2
// backend, gostree writes a grub.cfg listing the same entries whenever it
// writes a new deployment list.
//
// Where. As ostree does for BIOS GRUB, the generated file lives next to
// the entries, in boot/loader.N/grub.cfg, and GRUB reads it through the
// symlink boot/grub/grub.cfg -> ../loader/grub.cfg (boot/grub2 on Fedora-
// style systems). The file is written (atomicfile: temporary file,
// fsync, rename) into the new boot/loader.N before the durability barrier,
// so the one rename that switches boot/loader switches the entries and the
// grub.cfg together: GRUB always sees either the old or the new list, and
// both name complete deployments (deployments are removed only by the
// cleanup after the switch). A regular boot/grub/grub.cfg (left by an
// installer) is replaced by that symlink, also before the switch, and only
// after the current boot/loader has a grub.cfg for the current entries, so
// the link never names a missing file while a deployment is bootable.
//
// When. As ostree 2022.7 decides (sysroot.bootloader in the repository
// config): "grub2" always; "auto" (the default) when boot/grub/grub.cfg or
// boot/grub2/grub.cfg exists (a dangling symlink counts: it is the link
// this code makes); "none", "syslinux", "uboot" and "zipl" write the BLS
// entries only (gostree has no native syslinux, U-Boot or zipl backend).
// GRUB for EFI with grub.cfg on the FAT ESP is not handled.
//
// Boot counting. A default entry written with a boot counter (its file
// name ends in +LEFT[-DONE].conf, DeployOptions.BootCountingTries) gets a
// countdown in grub.cfg kept in GRUB's environment block boot/grub/grubenv
// (load_env/save_env; Debian's GRUB has no arithmetic, so the countdown is
// spelled out): the variable gostree_boot_id names the counted deployment
// and gostree_tries_left its remaining tries. Every boot of that entry
// uses one try; when none are left GRUB boots entry 1, the previous
// deployment, until the list changes. Sysroot.BlessBoot (bootcount.go)
// ends the countdown once the booted system is healthy.

const (
	grubEnvIDVar    = "gostree_boot_id"
	grubEnvTriesVar = "gostree_tries_left"
	// grubLinkTarget is what boot/grub/grub.cfg points to.
	grubLinkTarget = "../loader/grub.cfg"
	// maxGrubTries bounds the countdown spelled out in grub.cfg.
	maxGrubTries = 64
)

// grubDir reports whether the sysroot boots through GRUB and, if so, the
// GRUB directory (boot/grub or boot/grub2) holding grub.cfg and grubenv.
func (s *Sysroot) grubDir() (string, bool, error) {
	mode := strings.TrimSpace(s.repo.Config().Get("sysroot", "bootloader", "auto"))
	exists := func(rel string) bool {
		_, err := os.Lstat(s.p("boot", rel))
		return err == nil
	}
	switch mode {
	case "none", "syslinux", "uboot", "zipl":
		return "", false, nil
	case "auto", "":
		for _, d := range []string{"grub2", "grub"} {
			if exists(d + "/grub.cfg") {
				return s.p("boot", d), true, nil
			}
		}
		return "", false, nil
	case "grub2":
		for _, d := range []string{"grub2", "grub"} {
			if exists(d + "/grub.cfg") {
				return s.p("boot", d), true, nil
			}
		}
		if st, err := os.Stat(s.p("boot", "grub2")); err == nil && st.IsDir() {
			return s.p("boot", "grub2"), true, nil
		}
		return s.p("boot", "grub"), true, nil
	}
	return "", false, fmt.Errorf("invalid bootloader configuration %q in %s (sysroot.bootloader: want none, auto, grub2, syslinux, uboot or zipl)",
		mode, filepath.Join(s.repo.Path(), "config"))
}

// grubItem is one menu entry: a BLS entry and the deployment it boots.
type grubItem struct {
	entry *BootEntry
	// id names the deployment (OS/CSUM.SERIAL) for the boot counter.
	id string
}

func grubID(d *Deployment) string { return d.OSName + "/" + d.Name() }

// grubQuote quotes s as one word of GRUB's shell-like script language.
func grubQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// grubConfig renders grub.cfg for the entries in boot order (the first
// is the default). bootPrefix ("" or "/boot") is put before the entries'
// paths, which are relative to the /boot file system.
func grubConfig(items []grubItem, bootPrefix string) []byte {
	var b bytes.Buffer
	b.WriteString(`# Written by gostree from the boot loader entries (boot/loader/entries) whenever the
# deployment list changes; GRUB reads it through boot/grub/grub.cfg -> ../loader/grub.cfg.
# Do not edit: local settings (serial console, timeout, ...) go into custom.cfg beside
# boot/grub/grub.cfg, which is sourced before the menu.
set default=0
set timeout=5
if [ -f "${config_directory}/custom.cfg" ]; then
  source "${config_directory}/custom.cfg"
fi
`)
	if len(items) > 1 && items[0].entry.TriesLeft >= 0 {
		n := items[0].entry.TriesLeft
		if n > maxGrubTries {
			n = maxGrubTries
		}
		id := grubQuote(items[0].id)
		env := `"${config_directory}/grubenv"`
		fmt.Fprintf(&b, `# Boot counting: the default entry has %d tries to be marked good (gostree BlessBoot),
# then GRUB boots the previous deployment. GRUB's terminal wraps at 80 columns: short messages.
load_env -f %s %s %s
if [ "${%s}" != %s ]; then
  set %s=%s
  set %s=%d
fi
if [ "${%s}" = 0 ]; then
  set default=1
  echo "gostree: no boot tries left: booting the previous deployment"
else
`, n, env, grubEnvIDVar, grubEnvTriesVar,
			grubEnvIDVar, id, grubEnvIDVar, id, grubEnvTriesVar, n,
			grubEnvTriesVar)
		for i := n; i >= 1; i-- {
			kw := "elif"
			if i == n {
				kw = "if"
			}
			fmt.Fprintf(&b, "  %s [ \"${%s}\" = %d ]; then\n    set %s=%d\n", kw, grubEnvTriesVar, i, grubEnvTriesVar, i-1)
		}
		fmt.Fprintf(&b, `  else
    set %s=0
  fi
  echo "gostree: boot counting: ${%s} tries left after this boot"
  save_env -f %s %s %s
fi
`, grubEnvTriesVar, grubEnvTriesVar, env, grubEnvIDVar, grubEnvTriesVar)
	}
	for i, it := range items {
		e := it.entry
		title := e.Get("title")
		if title == "" {
			title = "(Untitled)"
		}
		fmt.Fprintf(&b, "menuentry %s --id %s {\n", grubQuote(title), grubQuote("gostree-"+strconv.Itoa(i)))
		if dt := e.Get("devicetree"); dt != "" {
			fmt.Fprintf(&b, "  devicetree %s\n", grubQuote(bootPrefix+dt))
		}
		b.WriteString("  linux " + grubQuote(bootPrefix+e.Get("linux")))
		for _, a := range splitKargs(e.Get("options")) {
			b.WriteString(" " + grubQuote(a))
		}
		b.WriteString("\n")
		var initrds []string
		for k, key := range e.Keys {
			if key == "initrd" {
				for _, f := range strings.Fields(e.Values[k]) {
					initrds = append(initrds, grubQuote(bootPrefix+f))
				}
			}
		}
		if len(initrds) > 0 {
			b.WriteString("  initrd " + strings.Join(initrds, " ") + "\n")
		}
		b.WriteString("}\n")
	}
	return b.Bytes()
}

func (s *Sysroot) grubBootPrefix() string {
	if on, err := s.repo.Config().Bool("sysroot", "bootprefix", false); err == nil && on {
		return "/boot"
	}
	return ""
}

// syncGrub is called by writeDeployments once the new entries are in
// boot/loader.BV (not yet live): it writes boot/loader.BV/grub.cfg for
// them, creates grubenv when an entry is counted and makes
// boot/grub/grub.cfg the link to ../loader/grub.cfg. Everything it writes
// becomes live with the boot/loader switch.
func (s *Sysroot) syncGrub(bv int, preps []*prepared, entries []*BootEntry) error {
	dir, on, err := s.grubDir()
	if err != nil || !on {
		return err
	}
	items := make([]grubItem, len(entries))
	counted := false
	for i, e := range entries {
		items[i] = grubItem{entry: e, id: grubID(preps[i].d)}
		counted = counted || e.TriesLeft >= 0
	}
	cfg := grubConfig(items, s.grubBootPrefix())
	if err := atomicfile.WriteFile(s.p("boot", fmt.Sprintf("loader.%d", bv), "grub.cfg"), cfg, 0o644); err != nil {
		return fmt.Errorf("writing grub.cfg: %w", err)
	}
	crashPoint("grub.cfg written")
	if counted {
		if _, err := os.Lstat(filepath.Join(dir, "grubenv")); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			env := &GrubEnv{}
			if err := env.write(filepath.Join(dir, "grubenv")); err != nil {
				return err
			}
		}
	}
	return s.ensureGrubLink(dir)
}

// currentGrubItems lists the live entries (boot/loader) with their
// deployments, in boot order.
func (s *Sysroot) currentGrubItems() []grubItem {
	var items []grubItem
	for _, d := range s.nonStaged() {
		if d.Entry != nil {
			items = append(items, grubItem{entry: d.Entry, id: grubID(d)})
		}
	}
	return items
}

// ensureGrubLink makes DIR/grub.cfg the symlink to ../loader/grub.cfg,
// first giving the live boot/loader a grub.cfg if it has none.
func (s *Sysroot) ensureGrubLink(dir string) error {
	link := filepath.Join(dir, "grub.cfg")
	if t, err := os.Readlink(link); err == nil && t == grubLinkTarget {
		return nil
	}
	if _, ok, err := readVersionLink(s.p("boot", "loader"), "loader."); err == nil && ok {
		cur := s.p("boot", "loader", "grub.cfg")
		if _, err := os.Lstat(cur); errors.Is(err, fs.ErrNotExist) {
			if err := atomicfile.WriteFile(cur, grubConfig(s.currentGrubItems(), s.grubBootPrefix()), 0o644); err != nil {
				return fmt.Errorf("writing grub.cfg: %w", err)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := atomicfile.Symlink(grubLinkTarget, link); err != nil {
		return err
	}
	crashPoint("grub.cfg linked")
	return nil
}

// GrubEnv is a GRUB environment block (grubenv): "# GRUB Environment
// Block" then name=value lines, padded with '#' to a fixed size (1024
// bytes) because GRUB's save_env rewrites the file's sectors in place.
type GrubEnv struct {
	Names  []string
	Values []string
}

const (
	grubEnvHeader = "# GRUB Environment Block\n"
	grubEnvSize   = 1024
)

// ParseGrubEnv parses an environment block as GRUB does: lines after the
// header, '#' lines skipped, "name=value" with backslash escapes.
func ParseGrubEnv(b []byte) (*GrubEnv, error) {
	if !bytes.HasPrefix(b, []byte(grubEnvHeader)) {
		return nil, errors.New("grubenv: missing the \"# GRUB Environment Block\" header")
	}
	e := &GrubEnv{}
	rest := b[len(grubEnvHeader):]
	for len(rest) > 0 {
		// A line ends at an unescaped newline.
		var line []byte
		i := 0
		for ; i < len(rest); i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				line = append(line, rest[i+1])
				i++
				continue
			}
			if rest[i] == '\n' {
				break
			}
			line = append(line, rest[i])
		}
		raw := rest[:i]
		if i < len(rest) {
			i++
		}
		rest = rest[i:]
		if len(raw) == 0 || raw[0] == '#' {
			continue
		}
		name, value, ok := bytes.Cut(line, []byte("="))
		if !ok || len(name) == 0 {
			return nil, fmt.Errorf("grubenv: invalid line %q (want name=value)", raw)
		}
		e.Set(string(name), string(value))
	}
	return e, nil
}

// Get returns the value of name and whether it is set.
func (e *GrubEnv) Get(name string) (string, bool) {
	for i, n := range e.Names {
		if n == name {
			return e.Values[i], true
		}
	}
	return "", false
}

// Set sets name (replacing its value when present).
func (e *GrubEnv) Set(name, value string) {
	for i, n := range e.Names {
		if n == name {
			e.Values[i] = value
			return
		}
	}
	e.Names = append(e.Names, name)
	e.Values = append(e.Values, value)
}

// Unset removes names; it reports whether any was set.
func (e *GrubEnv) Unset(names ...string) bool {
	changed := false
	for _, name := range names {
		for i := 0; i < len(e.Names); i++ {
			if e.Names[i] == name {
				e.Names = append(e.Names[:i], e.Names[i+1:]...)
				e.Values = append(e.Values[:i], e.Values[i+1:]...)
				changed = true
				i--
			}
		}
	}
	return changed
}

// Bytes serialises the block, padded to 1024 bytes.
func (e *GrubEnv) Bytes() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(grubEnvHeader)
	esc := strings.NewReplacer(`\`, `\\`, "\n", "\\\n")
	for i, n := range e.Names {
		if n == "" || strings.ContainsAny(n, "=\n\\") || n[0] == '#' {
			return nil, fmt.Errorf("grubenv: invalid variable name %q", n)
		}
		b.WriteString(n + "=" + esc.Replace(e.Values[i]) + "\n")
	}
	if b.Len() > grubEnvSize {
		return nil, fmt.Errorf("grubenv: %d bytes of variables do not fit in the %d-byte block", b.Len(), grubEnvSize)
	}
	b.Write(bytes.Repeat([]byte("#"), grubEnvSize-b.Len()))
	return b.Bytes(), nil
}

func (e *GrubEnv) write(path string) error {
	b, err := e.Bytes()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o644)
}

func readGrubEnv(path string) (*GrubEnv, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	e, err := ParseGrubEnv(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}
