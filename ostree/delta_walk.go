package ostree

import (
	"context"
	"fmt"
)

// reachableObjects lists the dirtree, dirmeta and content objects of
// commit c (not the commit itself), each once, metadata in walk order
// (parents before children) and content in first-seen order.
func (r *Repo) reachableObjects(ctx context.Context, c Checksum) (meta, content []ObjectName, err error) {
	cm, err := r.LoadCommit(c)
	if err != nil {
		return nil, nil, err
	}
	seen := map[ObjectName]bool{}
	var walk func(tree, dmeta Checksum) error
	walk = func(tree, dmeta Checksum) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		mn := ObjectName{dmeta, ObjDirMeta}
		if !seen[mn] {
			seen[mn] = true
			meta = append(meta, mn)
		}
		tn := ObjectName{tree, ObjDirTree}
		if seen[tn] {
			return nil
		}
		seen[tn] = true
		meta = append(meta, tn)
		dt, err := r.LoadDirTree(tree)
		if err != nil {
			return err
		}
		for _, f := range dt.Files {
			fn := ObjectName{f.Checksum, ObjFile}
			if !seen[fn] {
				seen[fn] = true
				content = append(content, fn)
			}
		}
		for _, d := range dt.Dirs {
			if err := walk(d.Tree, d.Meta); err != nil {
				return fmt.Errorf("%s/: %w", d.Name, err)
			}
		}
		return nil
	}
	if err := walk(cm.RootTree, cm.RootMeta); err != nil {
		return nil, nil, fmt.Errorf("commit %s: %w", c, err)
	}
	return meta, content, nil
}
