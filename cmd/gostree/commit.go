package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/gvariant"
	"github.com/gostree/gostree/ostree/sign"
)

type commitOptions struct {
	branch          string
	subject         string
	body            string
	bodyFile        string
	timestamp       string
	parent          string
	trees           []string
	metaStrings     []string
	detachedStrings []string
	ownerUID        int
	ownerGID        int
	noBindings      bool
	bindRefs        []string
	skipUnchanged   bool
	orphan          bool
	canonicalPerms  bool
	noXattrs        bool
	fsync           string
	jobs            int
	signing         signingFlags
}

func newCommitCommand(g *globalOptions) *cobra.Command {
	o := &commitOptions{}
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] [DIR]",
		Short: "Commit a directory tree into the repository",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCommit(cmd, g, o, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.branch, "branch", "b", "", "branch to commit to")
	f.StringVarP(&o.subject, "subject", "s", "", "one-line subject")
	f.StringVarP(&o.body, "body", "m", "", "full description")
	f.StringVarP(&o.bodyFile, "body-file", "F", "", "read the description from FILE")
	f.StringVar(&o.timestamp, "timestamp", "", "override the timestamp (e.g. '2020-01-01 00:00:00 +0000', RFC 3339 or @SECONDS)")
	f.StringVar(&o.parent, "parent", "", "parent commit (CHECKSUM, or 'none')")
	f.StringArrayVar(&o.trees, "tree", nil, "dir=PATH or ref=REV: overlay this tree (repeatable; later ones win)")
	f.StringArrayVar(&o.metaStrings, "add-metadata-string", nil, "KEY=VALUE: add a string metadata key (repeatable)")
	f.StringArrayVar(&o.detachedStrings, "add-detached-metadata-string", nil, "KEY=VALUE: add a string detached metadata key")
	f.IntVar(&o.ownerUID, "owner-uid", -1, "set the owner of every file to UID")
	f.IntVar(&o.ownerGID, "owner-gid", -1, "set the group of every file to GID")
	f.BoolVar(&o.noBindings, "no-bindings", false, "do not add the ostree.ref-binding metadata")
	f.StringArrayVar(&o.bindRefs, "bind-ref", nil, "add REF to the ref binding (repeatable)")
	f.BoolVar(&o.skipUnchanged, "skip-if-unchanged", false, "do not create a commit if the tree equals the parent's")
	f.BoolVar(&o.orphan, "orphan", false, "create a commit that no branch points to")
	f.BoolVar(&o.canonicalPerms, "canonical-permissions", false, "record uid/gid 0 and modes masked with 0755 (automatic in bare-user-only repos)")
	f.BoolVar(&o.noXattrs, "no-xattrs", false, "do not import extended attributes")
	f.StringVar(&o.fsync, "fsync", "", "true or false: whether to sync objects to disk (default: core.fsync)")
	f.IntVar(&o.jobs, "jobs", 0, "parallel hashing/compression jobs (default: number of CPUs)")
	o.signing.addFlags(f)
	return cmd
}

func parseKeyValues(opt string, kvs []string) ([][2]string, error) {
	var out [][2]string
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--%s: missing '=' in %q (want KEY=VALUE)", opt, kv)
		}
		if k == "" {
			return nil, fmt.Errorf("--%s: empty metadata key in %q", opt, kv)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// parseTimestamp accepts the forms people pass to ostree --timestamp.
func parseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "@") {
		n, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("invalid timestamp %q", s)
		}
		return time.Unix(n, 0), nil
	}
	for _, layout := range []string{
		"2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05 -07:00", "2006-01-02 15:04:05 MST",
		time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02",
	} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("could not parse timestamp %q (use e.g. '2020-01-01 00:00:00 +0000')", s)
}

func commitTimestamp(o *commitOptions) (time.Time, error) {
	if o.timestamp != "" {
		return parseTimestamp(o.timestamp)
	}
	if sde, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok {
		n, err := strconv.ParseInt(sde, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("invalid SOURCE_DATE_EPOCH %q: want a number of seconds", sde)
		}
		return time.Unix(n, 0), nil
	}
	return time.Now(), nil
}

func runCommit(cmd *cobra.Command, g *globalOptions, o *commitOptions, args []string) error {
	ctx := cmd.Context()
	if o.branch == "" && !o.orphan {
		return errUsage("a branch is required (-b BRANCH), or --orphan")
	}
	if o.branch != "" {
		if err := ostree.ValidateRefName(o.branch); err != nil {
			return err
		}
	}
	var trees []string
	for _, t := range o.trees {
		if kind, _, ok := strings.Cut(t, "="); !ok || (kind != "dir" && kind != "ref") {
			return fmt.Errorf("invalid --tree=%s: want dir=PATH or ref=REV", t)
		}
		trees = append(trees, t)
	}
	if len(args) == 1 {
		trees = append(trees, "dir="+args[0])
	}
	if len(trees) == 0 {
		return errUsage("no tree to commit: give a DIR or --tree=dir=PATH")
	}
	ts, err := commitTimestamp(o)
	if err != nil {
		return err
	}
	body := o.body
	if o.bodyFile != "" {
		b, err := os.ReadFile(o.bodyFile)
		if err != nil {
			return fmt.Errorf("--body-file: %w", err)
		}
		body = string(b)
	}
	userMeta, err := parseKeyValues("add-metadata-string", o.metaStrings)
	if err != nil {
		return err
	}
	detached, err := parseKeyValues("add-detached-metadata-string", o.detachedStrings)
	if err != nil {
		return err
	}

	signers, err := o.signing.signers(time.Now())
	if err != nil {
		return err
	}

	r, err := g.openRepo()
	if err != nil {
		return err
	}
	defer r.Close()
	switch o.fsync {
	case "":
	case "true", "yes", "1":
		r.SetFsync(true)
	case "false", "no", "0":
		r.SetFsync(false)
	default:
		return fmt.Errorf("--fsync: invalid value %q", o.fsync)
	}

	var parent ostree.Checksum
	switch {
	case o.parent == "none":
	case o.parent != "":
		if parent, err = r.ResolveRev(o.parent); err != nil {
			return fmt.Errorf("--parent: %w", err)
		}
	case o.branch != "":
		c, err := r.ReadRef(ostree.Refspec{Ref: o.branch})
		if err == nil {
			parent = c
		} else if !errors.Is(err, ostree.ErrNotFound) {
			return err
		}
	}

	var md ostree.Metadata
	for _, kv := range userMeta {
		md.Set(kv[0], gvariant.NewVariant("s", kv[1]))
	}
	if !o.noBindings {
		binds := append([]string{}, o.bindRefs...)
		if o.branch != "" {
			binds = append(binds, o.branch)
		}
		sort.Strings(binds)
		bl := make([]any, 0, len(binds))
		for i, b := range binds {
			if i > 0 && binds[i-1] == b {
				continue
			}
			bl = append(bl, b)
		}
		md.Set("ostree.ref-binding", gvariant.NewVariant("as", bl))
		if cid := r.Config().Get("core", "collection-id", ""); cid != "" {
			md.Set("ostree.collection-binding", gvariant.NewVariant("s", cid))
		}
	}

	io := ostree.ImportOptions{OwnerUID: o.ownerUID, OwnerGID: o.ownerGID, NoXattrs: o.noXattrs,
		CanonicalPermissions: o.canonicalPerms || r.Mode() == ostree.ModeBareUserOnly}
	tx, err := r.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Abort()
	mt := ostree.NewMutableTree(ostree.DirMeta{})
	for _, t := range trees {
		kind, v, _ := strings.Cut(t, "=")
		if kind == "ref" {
			c, err := r.ResolveRev(v)
			if err != nil {
				return fmt.Errorf("--tree=ref=%s: %w", v, err)
			}
			if err := mt.ImportCommit(r, c); err != nil {
				return err
			}
			continue
		}
		if err := mt.Import(v, io); err != nil {
			return err
		}
	}
	tree, meta, err := tx.WriteTree(ctx, mt, o.jobs)
	if err != nil {
		return err
	}
	if o.skipUnchanged && !parent.IsZero() {
		pc, err := r.LoadCommit(parent)
		if err != nil {
			return err
		}
		if pc.RootTree == tree && pc.RootMeta == meta {
			tx.Abort()
			fmt.Fprintln(g.stdout, parent)
			return nil
		}
	}
	c, err := tx.WriteCommit(tree, meta, ostree.CommitOptions{
		Subject: o.subject, Body: body, Timestamp: ts, Parent: parent, Metadata: md,
	})
	if err != nil {
		return err
	}
	if len(detached) > 0 {
		var dm ostree.Metadata
		for _, kv := range detached {
			dm.Set(kv[0], gvariant.NewVariant("s", kv[1]))
		}
		if err := tx.WriteCommitMeta(c, dm); err != nil {
			return err
		}
	}
	if o.branch != "" {
		if err := tx.SetRef(ostree.Refspec{Ref: o.branch}, c); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if len(signers) > 0 {
		if err := sign.SignCommit(ctx, r, c, signers); err != nil {
			return err
		}
	}
	fmt.Fprintln(g.stdout, c)
	return nil
}
