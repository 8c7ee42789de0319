package sysroot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gostree/gostree/ostree"
)

// ErrBadTree is wrapped by errors about a commit that cannot be deployed.
var ErrBadTree = errors.New("commit cannot be deployed")

// kernelLayout describes the boot files of a tree, as paths relative to
// the deployment root and the names they get in /boot/ostree/OS-BOOTCSUM.
type kernelLayout struct {
	BootCsum string
	Kver     string
	// Files maps source (relative to the deployment) -> destination name.
	Kernel, Initramfs, Devicetree, Hmac                 string
	KernelName, InitramfsName, DevicetreeName, HmacName string
}

func (k *kernelLayout) files() [][2]string {
	var out [][2]string
	for _, f := range [][2]string{{k.Kernel, k.KernelName}, {k.Initramfs, k.InitramfsName}, {k.Devicetree, k.DevicetreeName}, {k.Hmac, k.HmacName}} {
		if f[0] != "" {
			out = append(out, f)
		}
	}
	return out
}

// treeEntry is a name in a dirtree.
type treeEntry struct {
	files map[string]ostree.Checksum
	dirs  map[string]ostree.PathEntry
	order []string // directory names in dirtree order
}

func loadTreeEntry(r *ostree.Repo, pe ostree.PathEntry) (*treeEntry, error) {
	dt, err := r.LoadDirTree(pe.Tree)
	if err != nil {
		return nil, err
	}
	te := &treeEntry{files: map[string]ostree.Checksum{}, dirs: map[string]ostree.PathEntry{}}
	for _, f := range dt.Files {
		te.files[f.Name] = f.Checksum
	}
	for _, d := range dt.Dirs {
		te.dirs[d.Name] = ostree.PathEntry{IsDir: true, Tree: d.Tree, Meta: d.Meta}
		te.order = append(te.order, d.Name)
	}
	return te, nil
}

// commitLayout inspects a commit before anything is written: where /etc
// lives and which kernel it boots. Errors wrap ErrBadTree.
type commitLayout struct {
	commit   *ostree.Commit
	kernel   kernelLayout
	etcOnly  bool // the tree has /etc but no /usr/etc (renamed on deploy)
	hasEtc   bool
	hasVar   bool
	kernelFS map[string]ostree.Checksum // boot file source -> content object
}

func inspectCommit(ctx context.Context, r *ostree.Repo, c ostree.Checksum) (*commitLayout, error) {
	cm, err := r.LoadCommit(c)
	if err != nil {
		return nil, err
	}
	root := ostree.PathEntry{IsDir: true, Tree: cm.RootTree, Meta: cm.RootMeta}
	rt, err := loadTreeEntry(r, root)
	if err != nil {
		return nil, err
	}
	cl := &commitLayout{commit: cm, kernelFS: map[string]ostree.Checksum{}}
	_, hasEtc := rt.dirs["etc"]
	_, cl.hasVar = rt.dirs["var"]
	if v, ok := rt.dirs["var"]; ok {
		vt, err := loadTreeEntry(r, v)
		if err != nil {
			return nil, err
		}
		cl.hasVar = len(vt.files)+len(vt.dirs) > 0
	}
	hasUsrEtc := false
	if pe, err := r.ResolvePath(cm.RootTree, cm.RootMeta, "usr/etc"); err == nil && pe.IsDir {
		hasUsrEtc = true
	}
	if hasEtc && hasUsrEtc {
		return nil, fmt.Errorf("%w: tree contains both /etc and /usr/etc", ErrBadTree)
	}
	cl.etcOnly = hasEtc
	cl.hasEtc = hasEtc || hasUsrEtc
	k, err := findKernelInCommit(r, cm)
	if err != nil {
		return nil, err
	}
	cl.kernel = *k
	return cl, nil
}

// findKernelInCommit looks for usr/lib/modules/$KVER/vmlinuz (the modern
// layout) and then the legacy usr/lib/ostree-boot or boot with
// vmlinuz-...-$BOOTCSUM names, and computes the bootcsum.
func findKernelInCommit(r *ostree.Repo, cm *ostree.Commit) (*kernelLayout, error) {
	var found []*kernelLayout
	var sums []map[string]ostree.Checksum
	if pe, err := r.ResolvePath(cm.RootTree, cm.RootMeta, "usr/lib/modules"); err == nil && pe.IsDir {
		mt, err := loadTreeEntry(r, pe)
		if err != nil {
			return nil, err
		}
		for _, kver := range mt.order {
			kt, err := loadTreeEntry(r, mt.dirs[kver])
			if err != nil {
				return nil, err
			}
			if _, ok := kt.files["vmlinuz"]; !ok {
				continue
			}
			base := "usr/lib/modules/" + kver + "/"
			k := &kernelLayout{Kver: kver, Kernel: base + "vmlinuz", KernelName: "vmlinuz-" + kver}
			m := map[string]ostree.Checksum{k.Kernel: kt.files["vmlinuz"]}
			for _, n := range []string{"initramfs.img", "initramfs"} {
				if c, ok := kt.files[n]; ok {
					k.Initramfs, k.InitramfsName = base+n, "initramfs-"+kver+".img"
					m[k.Initramfs] = c
					break
				}
			}
			if c, ok := kt.files["devicetree"]; ok {
				k.Devicetree, k.DevicetreeName = base+"devicetree", "devicetree-"+kver
				m[k.Devicetree] = c
			}
			if c, ok := kt.files[".vmlinuz.hmac"]; ok {
				k.Hmac, k.HmacName = base+".vmlinuz.hmac", ".vmlinuz-"+kver+".hmac"
				m[k.Hmac] = c
			}
			found = append(found, k)
			sums = append(sums, m)
		}
	}
	if len(found) > 1 {
		var names []string
		for _, k := range found {
			names = append(names, k.Kver)
		}
		return nil, fmt.Errorf("%w: the tree has %d kernels (usr/lib/modules/{%s}/vmlinuz); exactly one is supported", ErrBadTree, len(found), strings.Join(names, ","))
	}
	if len(found) == 1 {
		k := found[0]
		h := sha256.New()
		for _, src := range []string{k.Kernel, k.Initramfs, k.Devicetree} {
			if src == "" {
				continue
			}
			if err := hashContent(r, sums[0][src], h); err != nil {
				return nil, err
			}
		}
		k.BootCsum = hex.EncodeToString(h.Sum(nil))
		return k, nil
	}
	for _, dir := range []string{"usr/lib/ostree-boot", "boot"} {
		pe, err := r.ResolvePath(cm.RootTree, cm.RootMeta, dir)
		if err != nil || !pe.IsDir {
			continue
		}
		bt, err := loadTreeEntry(r, pe)
		if err != nil {
			return nil, err
		}
		var names []string
		for n := range bt.files {
			names = append(names, n)
		}
		sort.Strings(names)
		k := &kernelLayout{}
		for _, n := range names {
			i := strings.LastIndex(n, "-")
			if i < 0 {
				continue
			}
			csum := n[i+1:]
			var slot *string
			var dst *string
			switch {
			case strings.HasPrefix(n, "vmlinuz-"):
				slot, dst = &k.Kernel, &k.KernelName
			case strings.HasPrefix(n, "initramfs-"):
				slot, dst = &k.Initramfs, &k.InitramfsName
			case strings.HasPrefix(n, "devicetree-"):
				slot, dst = &k.Devicetree, &k.DevicetreeName
			default:
				continue
			}
			if *slot != "" {
				continue
			}
			if k.BootCsum != "" && csum != k.BootCsum {
				return nil, fmt.Errorf("%w: mismatched boot checksums in %s (%s vs %s)", ErrBadTree, dir, k.BootCsum, csum)
			}
			k.BootCsum = csum
			*slot, *dst = dir+"/"+n, n[:i]
		}
		if k.Kernel != "" {
			if len(k.BootCsum) != 64 {
				return nil, fmt.Errorf("%w: legacy kernel name %s has no checksum suffix", ErrBadTree, k.KernelName)
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: no kernel found (expected usr/lib/modules/$KVER/vmlinuz)", ErrBadTree)
}

func hashContent(r *ostree.Repo, c ostree.Checksum, w io.Writer) error {
	obj, err := r.OpenContent(c)
	if err != nil {
		return err
	}
	defer obj.Close()
	if obj.Content == nil {
		return nil
	}
	_, err = io.Copy(w, obj.Content)
	return err
}

// findKernelInDeployment finds the boot files of an existing deployment
// on disk (for deployments written by someone else, or re-installing the
// kernel into /boot).
func findKernelInDeployment(dir string) (*kernelLayout, error) {
	mods := filepath.Join(dir, "usr/lib/modules")
	ents, err := os.ReadDir(mods)
	if err == nil {
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			base := "usr/lib/modules/" + e.Name() + "/"
			if st, err := os.Lstat(filepath.Join(dir, base, "vmlinuz")); err != nil || !st.Mode().IsRegular() {
				continue
			}
			kver := e.Name()
			k := &kernelLayout{Kver: kver, Kernel: base + "vmlinuz", KernelName: "vmlinuz-" + kver}
			for _, n := range []string{"initramfs.img", "initramfs"} {
				if _, err := os.Lstat(filepath.Join(dir, base, n)); err == nil {
					k.Initramfs, k.InitramfsName = base+n, "initramfs-"+kver+".img"
					break
				}
			}
			if _, err := os.Lstat(filepath.Join(dir, base, "devicetree")); err == nil {
				k.Devicetree, k.DevicetreeName = base+"devicetree", "devicetree-"+kver
			}
			if _, err := os.Lstat(filepath.Join(dir, base, ".vmlinuz.hmac")); err == nil {
				k.Hmac, k.HmacName = base+".vmlinuz.hmac", ".vmlinuz-"+kver+".hmac"
			}
			return k, nil
		}
	}
	for _, sub := range []string{"usr/lib/ostree-boot", "boot"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			continue
		}
		k := &kernelLayout{}
		for _, e := range ents {
			n := e.Name()
			i := strings.LastIndex(n, "-")
			if i < 0 {
				continue
			}
			switch {
			case strings.HasPrefix(n, "vmlinuz-") && k.Kernel == "":
				k.Kernel, k.KernelName, k.BootCsum = sub+"/"+n, n[:i], n[i+1:]
			case strings.HasPrefix(n, "initramfs-") && k.Initramfs == "":
				k.Initramfs, k.InitramfsName = sub+"/"+n, n[:i]
			case strings.HasPrefix(n, "devicetree-") && k.Devicetree == "":
				k.Devicetree, k.DevicetreeName = sub+"/"+n, n[:i]
			}
		}
		if k.Kernel != "" {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: no kernel found in deployment %s", ErrBadTree, dir)
}
