package main

import (
	"fmt"
	"io"
	"path"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/gvariant"
)

type lsOptions struct {
	recursive, checksum, dirOnly, xattrs, nulNames bool
}

func newLsCommand(g *globalOptions) *cobra.Command {
	o := &lsOptions{}
	cmd := &cobra.Command{
		Use:   "ls [OPTIONS] REV [PATH...]",
		Short: "List the contents of a commit",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, _, cm, err := g.openCommit(args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			paths := args[1:]
			if len(paths) == 0 {
				paths = []string{"/"}
			}
			l := &lister{r: r, o: o, w: g.stdout}
			for _, p := range paths {
				if err := l.list(cm, p); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.recursive, "recursive", "R", false, "list directories recursively")
	f.BoolVarP(&o.checksum, "checksum", "C", false, "show object checksums")
	f.BoolVarP(&o.dirOnly, "dironly", "d", false, "list a directory itself, not its contents")
	f.BoolVarP(&o.xattrs, "xattrs", "X", false, "show extended attributes")
	f.BoolVar(&o.nulNames, "nul-filenames-only", false, "print only file names, NUL-separated")
	return cmd
}

type lister struct {
	r *ostree.Repo
	o *lsOptions
	w io.Writer
}

func (l *lister) list(cm *ostree.Commit, p string) error {
	p = path.Clean("/" + p)
	e, err := l.r.ResolvePath(cm.RootTree, cm.RootMeta, p)
	if err != nil {
		return err
	}
	if !e.IsDir {
		return l.printFile(p, e.File)
	}
	if err := l.printDir(p, e.Tree, e.Meta); err != nil {
		return err
	}
	if l.o.dirOnly {
		return nil
	}
	return l.walk(p, e.Tree, l.o.recursive)
}

func (l *lister) walk(dir string, tree ostree.Checksum, recurse bool) error {
	dt, err := l.r.LoadDirTree(tree)
	if err != nil {
		return err
	}
	// ostree lists files and directories together in name order.
	fi, di := 0, 0
	for fi < len(dt.Files) || di < len(dt.Dirs) {
		if di >= len(dt.Dirs) || (fi < len(dt.Files) && dt.Files[fi].Name < dt.Dirs[di].Name) {
			f := dt.Files[fi]
			fi++
			if err := l.printFile(path.Join(dir, f.Name), f.Checksum); err != nil {
				return err
			}
			continue
		}
		d := dt.Dirs[di]
		di++
		p := path.Join(dir, d.Name)
		if err := l.printDir(p, d.Tree, d.Meta); err != nil {
			return err
		}
		if recurse {
			if err := l.walk(p, d.Tree, true); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *lister) printDir(p string, tree, meta ostree.Checksum) error {
	if l.o.nulNames {
		fmt.Fprintf(l.w, "%s\x00", p)
		return nil
	}
	dm, err := l.r.LoadDirMeta(meta)
	if err != nil {
		return err
	}
	fmt.Fprintf(l.w, "d%05o %d %d %6d ", dm.Mode&0o7777, dm.UID, dm.GID, 0)
	if l.o.checksum {
		fmt.Fprintf(l.w, "%s %s ", tree, meta)
	}
	if l.o.xattrs {
		fmt.Fprintf(l.w, "%s ", formatXattrs(dm.Xattrs))
	}
	fmt.Fprintln(l.w, p)
	return nil
}

func (l *lister) printFile(p string, sum ostree.Checksum) error {
	if l.o.nulNames {
		fmt.Fprintf(l.w, "%s\x00", p)
		return nil
	}
	obj, err := l.r.OpenContent(sum)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	obj.Close()
	fi := obj.Info
	kind := byte('-')
	if fi.IsSymlink() {
		kind = 'l'
	}
	fmt.Fprintf(l.w, "%c%05o %d %d %6d ", kind, fi.Mode&0o7777, fi.UID, fi.GID, fi.Size)
	if l.o.checksum {
		fmt.Fprintf(l.w, "%s ", sum)
	}
	if l.o.xattrs {
		fmt.Fprintf(l.w, "%s ", formatXattrs(fi.Xattrs))
	}
	if fi.IsSymlink() {
		fmt.Fprintf(l.w, "%s -> %s\n", p, fi.SymlinkTarget)
	} else {
		fmt.Fprintln(l.w, p)
	}
	return nil
}

func formatXattrs(x ostree.Xattrs) string {
	v, err := gvariant.Unmarshal(gvariant.MustType("a(ayay)"), ostree.EncodeXattrs(x))
	if err != nil {
		return "?"
	}
	return gvariant.Print(gvariant.MustType("a(ayay)"), v)
}
