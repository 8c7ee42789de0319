package ostree

import (
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/gostree/gostree/ostree/gvariant"
)

// GVariant types of the metadata objects.
var (
	typeDirMeta       = gvariant.MustType("(uuua(ayay))")
	typeDirTree       = gvariant.MustType("(a(say)a(sayay))")
	typeCommit        = gvariant.MustType("(a{sv}aya(say)sstayay)")
	typeFileHeader    = gvariant.MustType("(uuuusa(ayay))")
	typeArchiveHeader = gvariant.MustType("(tuuuusa(ayay))")
	typeVardict       = gvariant.MustType("a{sv}")
	typeXattrs        = gvariant.MustType("a(ayay)")
)

// ErrCorrupt is wrapped by every error about an object or file whose bytes
// are malformed or do not match their checksum. Such errors are permanent.
var ErrCorrupt = errors.New("corrupted object")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Limits applied to metadata decoding.
const (
	// MaxMetadataSize is the largest metadata object accepted (as ostree's
	// OSTREE_MAX_METADATA_SIZE, 10 MiB).
	MaxMetadataSize = 10 << 20
)

// Mode bits.
const (
	sIFMT   = 0o170000
	sIFDIR  = 0o040000
	sIFREG  = 0o100000
	sIFLNK  = 0o120000
	modeMax = sIFMT | 0o7777
)

// Xattr is one extended attribute. Name is stored without the trailing NUL
// byte that the on-disk encoding carries.
type Xattr struct {
	Name  string
	Value []byte
}

// Xattrs is a list of extended attributes, sorted by name.
type Xattrs []Xattr

// Sort orders xattrs by name (bytewise, as strcmp).
func (x Xattrs) Sort() { sort.Slice(x, func(i, j int) bool { return x[i].Name < x[j].Name }) }

func (x Xattrs) gv() []any {
	out := make([]any, len(x))
	for i, a := range x {
		name := make([]byte, len(a.Name)+1)
		copy(name, a.Name)
		out[i] = []any{name, a.Value}
	}
	return out
}

func xattrsFromGV(v any) (Xattrs, error) {
	arr := v.([]any)
	if len(arr) == 0 {
		return nil, nil
	}
	out := make(Xattrs, len(arr))
	for i, e := range arr {
		t := e.([]any)
		name := t[0].([]byte)
		if len(name) < 2 || name[len(name)-1] != 0 || strings.IndexByte(string(name[:len(name)-1]), 0) >= 0 {
			return nil, corrupt("invalid xattr name %q", name)
		}
		out[i] = Xattr{Name: string(name[:len(name)-1]), Value: t[1].([]byte)}
		if i > 0 && out[i-1].Name >= out[i].Name {
			return nil, corrupt("xattrs not sorted or duplicated at %q", out[i].Name)
		}
	}
	return out, nil
}

// EncodeXattrs serialises xattrs as a(ayay). They must be sorted.
func EncodeXattrs(x Xattrs) []byte { return gvariant.MustMarshal(typeXattrs, x.gv()) }

// DecodeXattrs parses a(ayay).
func DecodeXattrs(b []byte) (Xattrs, error) {
	v, err := gvariant.Unmarshal(typeXattrs, b)
	if err != nil {
		return nil, corrupt("xattrs: %v", err)
	}
	return xattrsFromGV(v)
}

// DirMeta is the metadata of a directory: ownership, mode and xattrs.
type DirMeta struct {
	UID, GID uint32
	Mode     uint32 // full st_mode, including S_IFDIR
	Xattrs   Xattrs
}

// Encode serialises the dirmeta object.
func (m *DirMeta) Encode() []byte {
	return gvariant.MustMarshal(typeDirMeta, []any{
		bits.ReverseBytes32(m.UID), bits.ReverseBytes32(m.GID), bits.ReverseBytes32(m.Mode), m.Xattrs.gv()})
}

// Validate checks the mode is a directory mode with no stray bits.
func (m *DirMeta) Validate() error {
	if m.Mode&sIFMT != sIFDIR {
		return corrupt("invalid directory mode 0%o: not a directory", m.Mode)
	}
	if m.Mode&^modeMax != 0 {
		return corrupt("invalid mode 0%o; invalid bits in mode", m.Mode)
	}
	return nil
}

// DecodeDirMeta parses and validates a dirmeta object.
func DecodeDirMeta(b []byte) (*DirMeta, error) {
	v, err := gvariant.Unmarshal(typeDirMeta, b)
	if err != nil {
		return nil, corrupt("dirmeta: %v", err)
	}
	t := v.([]any)
	x, err := xattrsFromGV(t[3])
	if err != nil {
		return nil, err
	}
	m := &DirMeta{
		UID:    bits.ReverseBytes32(t[0].(uint32)),
		GID:    bits.ReverseBytes32(t[1].(uint32)),
		Mode:   bits.ReverseBytes32(t[2].(uint32)),
		Xattrs: x,
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// TreeFile is a file entry of a dirtree.
type TreeFile struct {
	Name     string
	Checksum Checksum // content object
}

// TreeDir is a subdirectory entry of a dirtree.
type TreeDir struct {
	Name string
	Tree Checksum // dirtree object
	Meta Checksum // dirmeta object
}

// DirTree lists a directory's files and subdirectories, each sorted by name.
type DirTree struct {
	Files []TreeFile
	Dirs  []TreeDir
}

// Sort orders the entries by name, as ostree writes them.
func (t *DirTree) Sort() {
	sort.Slice(t.Files, func(i, j int) bool { return t.Files[i].Name < t.Files[j].Name })
	sort.Slice(t.Dirs, func(i, j int) bool { return t.Dirs[i].Name < t.Dirs[j].Name })
}

// Encode serialises the dirtree. Entries must be sorted and valid.
func (t *DirTree) Encode() []byte {
	files := make([]any, len(t.Files))
	for i, f := range t.Files {
		files[i] = []any{f.Name, f.Checksum[:]}
	}
	dirs := make([]any, len(t.Dirs))
	for i, d := range t.Dirs {
		dirs[i] = []any{d.Name, d.Tree[:], d.Meta[:]}
	}
	return gvariant.MustMarshal(typeDirTree, []any{files, dirs})
}

// ValidateFilename checks a single path component as ostree does, and
// additionally refuses the empty name.
func ValidateFilename(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("invalid empty filename")
	case name == ".":
		return fmt.Errorf("invalid self-referential filename '.'")
	case name == "..":
		return fmt.Errorf("invalid path uplink filename '..'")
	case strings.IndexByte(name, '/') >= 0:
		return fmt.Errorf("invalid / in filename %s", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("invalid UTF-8 in filename %q", name)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("invalid NUL in filename %q", name)
	}
	return nil
}

// Validate checks names (valid, sorted, unique, not both a file and a
// directory).
func (t *DirTree) Validate() error {
	for i, f := range t.Files {
		if err := ValidateFilename(f.Name); err != nil {
			return corrupt("dirtree: %v", err)
		}
		if i > 0 && t.Files[i-1].Name >= f.Name {
			return corrupt("dirtree: files not sorted or duplicated at %q", f.Name)
		}
	}
	for i, d := range t.Dirs {
		if err := ValidateFilename(d.Name); err != nil {
			return corrupt("dirtree: %v", err)
		}
		if i > 0 && t.Dirs[i-1].Name >= d.Name {
			return corrupt("dirtree: directories not sorted or duplicated at %q", d.Name)
		}
	}
	// Both lists are sorted: merge-walk to find a name in both.
	i, j := 0, 0
	for i < len(t.Files) && j < len(t.Dirs) {
		switch {
		case t.Files[i].Name == t.Dirs[j].Name:
			return corrupt("dirtree: %q is both a file and a directory", t.Files[i].Name)
		case t.Files[i].Name < t.Dirs[j].Name:
			i++
		default:
			j++
		}
	}
	return nil
}

// DecodeDirTree parses and validates a dirtree object.
func DecodeDirTree(b []byte) (*DirTree, error) {
	v, err := gvariant.Unmarshal(typeDirTree, b)
	if err != nil {
		return nil, corrupt("dirtree: %v", err)
	}
	top := v.([]any)
	fs, ds := top[0].([]any), top[1].([]any)
	t := &DirTree{Files: make([]TreeFile, len(fs)), Dirs: make([]TreeDir, len(ds))}
	for i, e := range fs {
		f := e.([]any)
		c, err := ChecksumFromBytes(f[1].([]byte))
		if err != nil {
			return nil, corrupt("dirtree: file %q: %v", f[0], err)
		}
		t.Files[i] = TreeFile{Name: f[0].(string), Checksum: c}
	}
	for i, e := range ds {
		d := e.([]any)
		tc, err := ChecksumFromBytes(d[1].([]byte))
		if err != nil {
			return nil, corrupt("dirtree: directory %q: %v", d[0], err)
		}
		mc, err := ChecksumFromBytes(d[2].([]byte))
		if err != nil {
			return nil, corrupt("dirtree: directory %q: %v", d[0], err)
		}
		t.Dirs[i] = TreeDir{Name: d[0].(string), Tree: tc, Meta: mc}
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// MetaEntry is one key of an a{sv} metadata dictionary.
type MetaEntry struct {
	Key   string
	Value gvariant.Variant
}

// Metadata is an a{sv} dictionary in its stored order (ostree keeps
// insertion order for commit metadata; readers must not assume an order).
type Metadata []MetaEntry

// Lookup returns the first value stored under key.
func (m Metadata) Lookup(key string) (gvariant.Variant, bool) {
	for _, e := range m {
		if e.Key == key {
			return e.Value, true
		}
	}
	return gvariant.Variant{}, false
}

// String returns the string value of key, if it is present and of type s.
func (m Metadata) String(key string) (string, bool) {
	v, ok := m.Lookup(key)
	if !ok || v.Type.String() != "s" {
		return "", false
	}
	return v.Value.(string), true
}

// Set replaces key's value, or appends it.
func (m *Metadata) Set(key string, v gvariant.Variant) {
	for i := range *m {
		if (*m)[i].Key == key {
			(*m)[i].Value = v
			return
		}
	}
	*m = append(*m, MetaEntry{key, v})
}

// Delete removes key.
func (m *Metadata) Delete(key string) {
	out := (*m)[:0]
	for _, e := range *m {
		if e.Key != key {
			out = append(out, e)
		}
	}
	*m = out
}

func (m Metadata) gv() []any {
	out := make([]any, len(m))
	for i, e := range m {
		out[i] = gvariant.DictEntry{Key: e.Key, Value: e.Value}
	}
	return out
}

func metadataFromGV(v any) Metadata {
	arr := v.([]any)
	if len(arr) == 0 {
		return nil
	}
	out := make(Metadata, len(arr))
	for i, e := range arr {
		d := e.(gvariant.DictEntry)
		out[i] = MetaEntry{Key: d.Key.(string), Value: d.Value.(gvariant.Variant)}
	}
	return out
}

// EncodeMetadata serialises an a{sv} dictionary (e.g. commitmeta).
func EncodeMetadata(m Metadata) ([]byte, error) { return gvariant.Marshal(typeVardict, m.gv()) }

// DecodeMetadata parses an a{sv} dictionary (e.g. a .commitmeta object).
func DecodeMetadata(b []byte) (Metadata, error) {
	v, err := gvariant.Unmarshal(typeVardict, b)
	if err != nil {
		return nil, corrupt("a{sv}: %v", err)
	}
	return metadataFromGV(v), nil
}

// Commit is a commit object.
type Commit struct {
	Metadata  Metadata
	Parent    Checksum // zero when there is no parent
	Related   []RelatedObject
	Subject   string
	Body      string
	Timestamp uint64 // seconds since the epoch, UTC
	RootTree  Checksum
	RootMeta  Checksum
}

// RelatedObject is an entry of a commit's (unused in practice) related list.
type RelatedObject struct {
	Name     string
	Checksum []byte
}

// HasParent reports whether the commit names a parent.
func (c *Commit) HasParent() bool { return !c.Parent.IsZero() }

// Version returns the commit's "version" metadata, or "".
func (c *Commit) Version() string {
	v, _ := c.Metadata.String("version")
	return v
}

// ContentChecksum is sha256(root dirtree ‖ root dirmeta), as `ostree log`
// prints it.
func (c *Commit) ContentChecksum() Checksum {
	var b [64]byte
	copy(b[:32], c.RootTree[:])
	copy(b[32:], c.RootMeta[:])
	return SumBytes(b[:])
}

// Encode serialises the commit.
func (c *Commit) Encode() ([]byte, error) {
	if err := c.validateMetadata(); err != nil {
		return nil, err
	}
	var parent []byte
	if c.HasParent() {
		parent = c.Parent[:]
	}
	rel := make([]any, len(c.Related))
	for i, r := range c.Related {
		rel[i] = []any{r.Name, r.Checksum}
	}
	return gvariant.Marshal(typeCommit, []any{
		c.Metadata.gv(), parent, rel, c.Subject, c.Body, bits.ReverseBytes64(c.Timestamp), c.RootTree[:], c.RootMeta[:]})
}

func (c *Commit) validateMetadata() error {
	for _, e := range c.Metadata {
		if e.Key == "" {
			return corrupt("commit: empty metadata key")
		}
	}
	return nil
}

// DecodeCommit parses and validates a commit object.
func DecodeCommit(b []byte) (*Commit, error) {
	v, err := gvariant.Unmarshal(typeCommit, b)
	if err != nil {
		return nil, corrupt("commit: %v", err)
	}
	t := v.([]any)
	c := &Commit{
		Metadata:  metadataFromGV(t[0]),
		Subject:   t[3].(string),
		Body:      t[4].(string),
		Timestamp: bits.ReverseBytes64(t[5].(uint64)),
	}
	if err := c.validateMetadata(); err != nil {
		return nil, err
	}
	if p := t[1].([]byte); len(p) != 0 {
		if c.Parent, err = ChecksumFromBytes(p); err != nil {
			return nil, corrupt("commit parent: %v", err)
		}
		if c.Parent.IsZero() {
			return nil, corrupt("commit parent is all zeros")
		}
	}
	for _, e := range t[2].([]any) {
		r := e.([]any)
		c.Related = append(c.Related, RelatedObject{Name: r[0].(string), Checksum: r[1].([]byte)})
	}
	if c.RootTree, err = ChecksumFromBytes(t[6].([]byte)); err != nil {
		return nil, corrupt("commit root dirtree: %v", err)
	}
	if c.RootMeta, err = ChecksumFromBytes(t[7].([]byte)); err != nil {
		return nil, corrupt("commit root dirmeta: %v", err)
	}
	return c, nil
}
