package ostree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"github.com/gostree/gostree/internal/atomicfile"
)

// ValidateRefName checks a ref name against ostree's grammar: fragments
// separated by single '/', each matching [\w\d][-._\w\d]*.
func ValidateRefName(ref string) error {
	if ref == "" {
		return fmt.Errorf("invalid ref name: empty")
	}
	for _, frag := range strings.Split(ref, "/") {
		if !validRefFragment(frag) {
			return fmt.Errorf("invalid ref name %q", ref)
		}
	}
	return nil
}

func validRefFragment(frag string) bool {
	if frag == "" {
		return false
	}
	for i, c := range frag {
		word := unicode.IsLetter(c) || unicode.IsDigit(c) || c == '_' || unicode.Is(unicode.Mn, c) || unicode.Is(unicode.Pc, c)
		if i == 0 && !word {
			return false
		}
		if !word && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// Refspec is [REMOTE:]REF.
type Refspec struct {
	Remote string
	Ref    string
}

// String formats the refspec as ostree does.
func (r Refspec) String() string {
	if r.Remote == "" {
		return r.Ref
	}
	return r.Remote + ":" + r.Ref
}

// ParseRefspec parses [REMOTE:]REF and validates both parts.
func ParseRefspec(s string) (Refspec, error) {
	var rs Refspec
	if remote, ref, ok := strings.Cut(s, ":"); ok {
		if !validRefFragment(remote) {
			return rs, fmt.Errorf("invalid remote name %q in refspec %q", remote, s)
		}
		rs.Remote, rs.Ref = remote, ref
	} else {
		rs.Ref = s
	}
	if err := ValidateRefName(rs.Ref); err != nil {
		return rs, err
	}
	return rs, nil
}

func (r *Repo) refPath(rs Refspec) string {
	if rs.Remote != "" {
		return filepath.Join(r.path, "refs", "remotes", rs.Remote, filepath.FromSlash(rs.Ref))
	}
	return filepath.Join(r.path, "refs", "heads", filepath.FromSlash(rs.Ref))
}

// ReadRef returns the commit a ref points at.
func (r *Repo) ReadRef(rs Refspec) (Checksum, error) {
	b, err := os.ReadFile(r.refPath(rs))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
			return Checksum{}, fmt.Errorf("refspec '%s' not found: %w", rs, ErrNotFound)
		}
		return Checksum{}, fmt.Errorf("reading ref %s: %w", rs, err)
	}
	s := strings.TrimRight(string(b), "\n")
	c, err := ParseChecksum(s)
	if err != nil {
		return Checksum{}, fmt.Errorf("ref %s: invalid rev %q: not a checksum", rs, truncate(s, 64))
	}
	return c, nil
}

var errNotDir = errors.New("not a directory")

// ResolveRev turns a revision into a commit checksum: a full checksum, a
// unique checksum prefix of at least 4 hex digits, a refspec, with any
// number of trailing '^' meaning "parent of".
func (r *Repo) ResolveRev(rev string) (Checksum, error) {
	base := strings.TrimRight(rev, "^")
	ups := len(rev) - len(base)
	c, err := r.resolveBase(base)
	if err != nil {
		return c, err
	}
	for i := 0; i < ups; i++ {
		cm, err := r.LoadCommit(c)
		if err != nil {
			return c, fmt.Errorf("resolving %s: %w", rev, err)
		}
		if !cm.HasParent() {
			return c, fmt.Errorf("resolving %s: commit %s has no parent: %w", rev, c, ErrNotFound)
		}
		c = cm.Parent
	}
	return c, nil
}

func (r *Repo) resolveBase(rev string) (Checksum, error) {
	if IsValidChecksum(rev) {
		return ParseChecksum(rev)
	}
	rs, err := ParseRefspec(rev)
	if err == nil {
		c, err := r.ReadRef(rs)
		if err == nil || !errors.Is(err, ErrNotFound) {
			return c, err
		}
		if remote, ref, ok := strings.Cut(rs.Ref, "/"); ok && rs.Remote == "" {
			// Like ostree, an unqualified "REMOTE/REF" may name a
			// remote-tracking ref.
			if c, err := r.ReadRef(Refspec{Remote: remote, Ref: ref}); err == nil {
				return c, nil
			}
		}
	}
	if len(rev) >= 4 && len(rev) < 64 && isLowerHex(rev) {
		if c, err := r.resolvePrefix(rev); err == nil {
			return c, nil
		} else if !errors.Is(err, ErrNotFound) {
			return c, err
		}
	}
	return Checksum{}, fmt.Errorf("refspec '%s' not found: %w", rev, ErrNotFound)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func (r *Repo) resolvePrefix(prefix string) (Checksum, error) {
	dir := filepath.Join(r.path, "objects", prefix[:2])
	ents, err := os.ReadDir(dir)
	if err != nil {
		return Checksum{}, fmt.Errorf("no commit with prefix %s: %w", prefix, ErrNotFound)
	}
	var found []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasSuffix(n, ".commit") && strings.HasPrefix(prefix[:2]+n, prefix) {
			found = append(found, prefix[:2]+strings.TrimSuffix(n, ".commit"))
		}
	}
	switch len(found) {
	case 0:
		return Checksum{}, fmt.Errorf("no commit with prefix %s: %w", prefix, ErrNotFound)
	case 1:
		return ParseChecksum(found[0])
	}
	return Checksum{}, fmt.Errorf("ambiguous commit prefix %s: %d commits match", prefix, len(found))
}

// ListRefs returns local refs (refs/heads) and, with remotes, remote refs
// as "REMOTE:REF", each mapped to its commit. Hidden files are skipped.
// prefix limits the listing to refs below that name.
func (r *Repo) ListRefs(prefix string, remotes bool) (map[string]Checksum, error) {
	out := map[string]Checksum{}
	if err := r.walkRefs(filepath.Join(r.path, "refs", "heads"), "", prefix, out); err != nil {
		return nil, err
	}
	if remotes {
		ents, err := os.ReadDir(filepath.Join(r.path, "refs", "remotes"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range ents {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			sub := map[string]Checksum{}
			if err := r.walkRefs(filepath.Join(r.path, "refs", "remotes", e.Name()), "", "", sub); err != nil {
				return nil, err
			}
			for k, v := range sub {
				name := e.Name() + ":" + k
				if prefix == "" || strings.HasPrefix(name, prefix) {
					out[name] = v
				}
			}
		}
	}
	return out, nil
}

func (r *Repo) walkRefs(dir, rel, prefix string, out map[string]Checksum) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		name := e.Name()
		if rel != "" {
			name = rel + "/" + name
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.IsDir() {
			if err := r.walkRefs(p, name, prefix, out); err != nil {
				return err
			}
			continue
		}
		if prefix != "" && name != prefix && !strings.HasPrefix(name, prefix+"/") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		c, err := ParseChecksum(strings.TrimRight(string(b), "\n"))
		if err != nil {
			return fmt.Errorf("ref %s: invalid rev %q", name, truncate(strings.TrimSpace(string(b)), 64))
		}
		out[name] = c
	}
	return nil
}

// SortedRefNames returns the keys of a ref map in order.
func SortedRefNames(m map[string]Checksum) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SetRef points a ref at a commit (atomically), or deletes it when c is
// the zero checksum. The commit need not be checked here; transactions
// publish refs only after their objects.
func (r *Repo) SetRef(rs Refspec, c Checksum) error {
	if err := ValidateRefName(rs.Ref); err != nil {
		return err
	}
	p := r.refPath(rs)
	if c.IsZero() {
		if err := os.Remove(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("ref %s: %w", rs, ErrNotFound)
			}
			return err
		}
		// Sync the nearest directory that still exists after the empty
		// ones were removed.
		return atomicfile.SyncDir(r.pruneEmptyRefDirs(filepath.Dir(p)))
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("writing ref %s: %w", rs, err)
	}
	if st, err := os.Lstat(p); err == nil && st.IsDir() {
		return fmt.Errorf("writing ref %s: a ref directory of that name exists", rs)
	}
	return atomicfile.WriteFile(p, []byte(c.String()+"\n"), 0o644)
}

// pruneEmptyRefDirs removes dir and its parents while they are empty
// (stopping at refs/heads and refs/remotes) and returns the first
// directory it left in place.
func (r *Repo) pruneEmptyRefDirs(dir string) string {
	stop := map[string]bool{
		filepath.Join(r.path, "refs", "heads"):   true,
		filepath.Join(r.path, "refs", "remotes"): true,
	}
	for !stop[dir] && strings.HasPrefix(dir, filepath.Join(r.path, "refs")) {
		if os.Remove(dir) != nil {
			return dir
		}
		dir = filepath.Dir(dir)
	}
	return dir
}
