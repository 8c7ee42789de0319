package ostree

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gostree/gostree/internal/atomicfile"
	"github.com/gostree/gostree/ostree/gvariant"
)

// Well-known keys of the summary file.
const (
	SummaryKeyMode            = "ostree.summary.mode"
	SummaryKeyLastModified    = "ostree.summary.last-modified"
	SummaryKeyExpires         = "ostree.summary.expires"
	SummaryKeyTombstone       = "ostree.summary.tombstone-commits"
	SummaryKeyIndexedDeltas   = "ostree.summary.indexed-deltas"
	SummaryKeyStaticDeltas    = "ostree.static-deltas"
	SummaryKeyCollectionID    = "ostree.summary.collection-id"
	SummaryKeyCollectionMap   = "ostree.summary.collection-map"
	SummaryRefKeyTimestamp    = "ostree.commit.timestamp"
	SummaryRefKeyVersion      = "ostree.commit.version"
	summaryTypeSig            = "(a(s(taya{sv}))a{sv})"
	summaryRefsSig            = "a(s(taya{sv}))"
	summaryCollectionMapSig   = "a{sa(s(taya{sv}))}"
	maxGDateTimeUnix          = 253402300799 // 9999-12-31T23:59:59Z, GLib's limit
	summaryFileName           = "summary"
	summarySigFileName        = "summary.sig"
	staticDeltaSuperblockName = "superblock"
)

var (
	typeSummary       = gvariant.MustType(summaryTypeSig)
	typeSummaryRefs   = gvariant.MustType(summaryRefsSig)
	typeCollectionMap = gvariant.MustType(summaryCollectionMapSig)
)

// Summary is a parsed summary file: the refs a repository serves and
// repository-wide metadata.
type Summary struct {
	// Refs are the refs of the repository (of its own collection, if it
	// has one), sorted by name.
	Refs []SummaryRef
	// Metadata is the additional-metadata dictionary, in stored order.
	Metadata Metadata
	// Collections holds the refs of other collections listed under
	// ostree.summary.collection-map, sorted by collection ID.
	Collections []SummaryCollection
}

// SummaryRef is one ref of a summary.
type SummaryRef struct {
	Name string
	// Size is the size in bytes of the .commit object; pull refuses a
	// larger commit.
	Size     uint64
	Checksum Checksum
	// Metadata holds ostree.commit.timestamp and, when the commit has a
	// version, ostree.commit.version.
	Metadata Metadata
}

// SummaryCollection is the refs of one collection in the collection map.
type SummaryCollection struct {
	ID   string
	Refs []SummaryRef
}

// Timestamp returns the commit timestamp recorded for the ref.
func (s SummaryRef) Timestamp() (time.Time, bool) {
	if v, ok := s.Metadata.Lookup(SummaryRefKeyTimestamp); ok && v.Type.String() == "t" {
		return time.Unix(int64(bits.ReverseBytes64(v.Value.(uint64))), 0).UTC(), true
	}
	return time.Time{}, false
}

// Version returns the commit's version recorded for the ref, or "".
func (s SummaryRef) Version() string {
	v, _ := s.Metadata.String(SummaryRefKeyVersion)
	return v
}

// Lookup finds a ref of the summary's main list.
func (s *Summary) Lookup(name string) (SummaryRef, bool) {
	i := sort.Search(len(s.Refs), func(i int) bool { return s.Refs[i].Name >= name })
	if i < len(s.Refs) && s.Refs[i].Name == name {
		return s.Refs[i], true
	}
	return SummaryRef{}, false
}

// beTime reads a big-endian uint64 timestamp from the metadata.
func (m Metadata) beTime(key string) (time.Time, bool) {
	if v, ok := m.Lookup(key); ok && v.Type.String() == "t" {
		return time.Unix(int64(bits.ReverseBytes64(v.Value.(uint64))), 0).UTC(), true
	}
	return time.Time{}, false
}

// LastModified returns ostree.summary.last-modified.
func (s *Summary) LastModified() (time.Time, bool) { return s.Metadata.beTime(SummaryKeyLastModified) }

// Expires returns ostree.summary.expires.
func (s *Summary) Expires() (time.Time, bool) { return s.Metadata.beTime(SummaryKeyExpires) }

// Mode returns ostree.summary.mode (the server's core.mode), or "".
func (s *Summary) Mode() string { v, _ := s.Metadata.String(SummaryKeyMode); return v }

// CollectionID returns ostree.summary.collection-id, or "".
func (s *Summary) CollectionID() string { v, _ := s.Metadata.String(SummaryKeyCollectionID); return v }

// StaticDeltas returns the ostree.static-deltas map: delta name
// ("TO" or "FROM-TO") to the checksum of its superblock.
func (s *Summary) StaticDeltas() map[string]Checksum {
	v, ok := s.Metadata.Lookup(SummaryKeyStaticDeltas)
	if !ok || v.Type.String() != "a{sv}" {
		return nil
	}
	out := map[string]Checksum{}
	for _, e := range metadataFromGV(v.Value) {
		if e.Value.Type.String() != "ay" {
			continue
		}
		if c, err := ChecksumFromBytes(e.Value.Value.([]byte)); err == nil {
			out[e.Key] = c
		}
	}
	return out
}

func summaryRefsGV(refs []SummaryRef) []any {
	out := make([]any, len(refs))
	for i, r := range refs {
		out[i] = []any{r.Name, []any{r.Size, append([]byte(nil), r.Checksum[:]...), r.Metadata.gv()}}
	}
	return out
}

// Encode serialises the summary. Refs must be sorted by name; the
// metadata is written in its stored order (Collections are not written
// separately: they are the ostree.summary.collection-map entry).
func (s *Summary) Encode() ([]byte, error) {
	if err := checkSummaryRefs(s.Refs); err != nil {
		return nil, err
	}
	return gvariant.Marshal(typeSummary, []any{summaryRefsGV(s.Refs), s.Metadata.gv()})
}

func checkSummaryRefs(refs []SummaryRef) error {
	for i, r := range refs {
		if err := ValidateRefName(r.Name); err != nil {
			return corrupt("summary: %v", err)
		}
		if i > 0 && refs[i-1].Name >= r.Name {
			return corrupt("summary: refs not sorted or duplicated at %q", r.Name)
		}
		for _, e := range r.Metadata {
			if e.Key == "" {
				return corrupt("summary: ref %s: empty metadata key", r.Name)
			}
		}
	}
	return nil
}

func summaryRefsFromGV(v any) ([]SummaryRef, error) {
	arr := v.([]any)
	out := make([]SummaryRef, len(arr))
	for i, e := range arr {
		t := e.([]any)
		inner := t[1].([]any)
		c, err := ChecksumFromBytes(inner[1].([]byte))
		if err != nil {
			return nil, corrupt("summary: ref %q: %v", t[0], err)
		}
		out[i] = SummaryRef{Name: t[0].(string), Size: inner[0].(uint64), Checksum: c, Metadata: metadataFromGV(inner[2])}
	}
	if err := checkSummaryRefs(out); err != nil {
		return nil, err
	}
	return out, nil
}

// DecodeSummary parses and validates a summary file: GVariant normal form
// of (a(s(taya{sv}))a{sv}), ref names valid, sorted and unique, 32-byte
// checksums, and well-typed values for the keys ostree interprets.
func DecodeSummary(b []byte) (*Summary, error) {
	v, err := gvariant.Unmarshal(typeSummary, b)
	if err != nil {
		return nil, corrupt("summary: %v", err)
	}
	top := v.([]any)
	s := &Summary{Metadata: metadataFromGV(top[1])}
	if s.Refs, err = summaryRefsFromGV(top[0]); err != nil {
		return nil, err
	}
	for _, e := range s.Metadata {
		want := ""
		switch e.Key {
		case "":
			return nil, corrupt("summary: empty metadata key")
		case SummaryKeyMode, SummaryKeyCollectionID:
			want = "s"
		case SummaryKeyLastModified, SummaryKeyExpires:
			want = "t"
		case SummaryKeyTombstone, SummaryKeyIndexedDeltas:
			want = "b"
		case SummaryKeyStaticDeltas:
			want = "a{sv}"
		case SummaryKeyCollectionMap:
			want = summaryCollectionMapSig
		}
		if want != "" && e.Value.Type.String() != want {
			return nil, corrupt("summary: %s has type %s, want %s", e.Key, e.Value.Type, want)
		}
	}
	if v, ok := s.Metadata.Lookup(SummaryKeyCollectionMap); ok {
		for i, e := range v.Value.([]any) {
			d := e.(gvariant.DictEntry)
			id := d.Key.(string)
			if i > 0 && s.Collections[i-1].ID >= id {
				return nil, corrupt("summary: collection map not sorted or duplicated at %q", id)
			}
			refs, err := summaryRefsFromGV(d.Value)
			if err != nil {
				return nil, fmt.Errorf("collection %s: %w", id, err)
			}
			s.Collections = append(s.Collections, SummaryCollection{ID: id, Refs: refs})
		}
	}
	for name := range s.StaticDeltas() {
		if err := validateDeltaName(name); err != nil {
			return nil, corrupt("summary: %v", err)
		}
	}
	return s, nil
}

func validateDeltaName(name string) error {
	from, to, ok := strings.Cut(name, "-")
	if !ok {
		to, from = from, ""
	}
	if from != "" && !IsValidChecksum(from) || !IsValidChecksum(to) {
		return fmt.Errorf("invalid static delta name %q", truncate(name, 140))
	}
	return nil
}

// ReadSummary reads and parses the repository's summary file.
func (r *Repo) ReadSummary() (*Summary, error) {
	b, err := os.ReadFile(filepath.Join(r.path, summaryFileName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("repository %s has no summary: %w", r.path, ErrNotFound)
		}
		return nil, err
	}
	return DecodeSummary(b)
}

// SummaryOptions controls RegenerateSummary.
type SummaryOptions struct {
	// Now is the generation time written as ostree.summary.last-modified;
	// zero means the current time.
	Now time.Time
	// AdditionalMetadata is inserted first, as ostree's
	// `summary -u --add-metadata`; ostree's own keys override it.
	AdditionalMetadata Metadata
}

// RegenerateSummary writes the summary file as ostree 2022.7's
// ostree_repo_regenerate_summary does, byte for byte: the local refs
// (refs/heads, or with core.collection-id every ref of that collection),
// each with the size of its commit object, checksum, timestamp and
// version; then ostree.static-deltas (unless core.no-deltas-in-summary),
// ostree.summary.last-modified, .mode (the raw core.mode string),
// .tombstone-commits, .indexed-deltas, .collection-id and .collection-map,
// in GLib's hash-table order (see gvDict). A stale summary.sig is removed.
// It returns the new summary bytes.
//
// Like `ostree summary -u` it also regenerates delta-indexes/ (see
// RegenerateDeltaIndexes); unlike it, it does not commit the
// ostree-metadata ref of repositories with a collection ID.
func (r *Repo) RegenerateSummary(ctx context.Context, o SummaryOptions) ([]byte, error) {
	unlock, err := r.Lock(ctx, LockShared)
	if err != nil {
		return nil, err
	}
	defer unlock()
	b, err := r.buildSummary(o)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(r.path, summaryFileName), b, 0o644); err != nil {
		return nil, fmt.Errorf("writing summary: %w", err)
	}
	if err := os.Remove(filepath.Join(r.path, summarySigFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("removing stale summary.sig: %w", err)
	}
	if err := r.RegenerateDeltaIndexes(ctx); err != nil {
		return nil, fmt.Errorf("regenerating delta-indexes: %w", err)
	}
	return b, nil
}

func (r *Repo) buildSummary(o SummaryOptions) ([]byte, error) {
	cfg := r.config
	dict := newGVDict()
	for _, e := range o.AdditionalMetadata {
		if e.Key == "" {
			return nil, fmt.Errorf("summary metadata: empty key")
		}
		dict.insert(e.Key, e.Value)
	}
	mainCID, _ := cfg.String("core", "collection-id")
	var refs []SummaryRef
	if mainCID == "" {
		heads, err := r.ListRefs("", false)
		if err != nil {
			return nil, err
		}
		for _, name := range SortedRefNames(heads) {
			e, err := r.summaryRefEntry(name, heads[name])
			if err != nil {
				return nil, err
			}
			refs = append(refs, e)
		}
	}
	noDeltas, err := cfg.Bool("core", "no-deltas-in-summary", false)
	if err != nil {
		return nil, err
	}
	if !noDeltas {
		deltas, err := r.listStaticDeltas()
		if err != nil {
			return nil, err
		}
		dd := newGVDict()
		for _, d := range deltas {
			sb, err := os.ReadFile(filepath.Join(r.path, d.dir, staticDeltaSuperblockName))
			if err != nil {
				return nil, fmt.Errorf("static delta %s: %w", d.name, err)
			}
			sum := SumBytes(sb)
			dd.insert(d.name, gvariant.NewVariant("ay", sum[:]))
		}
		if len(deltas) > 0 {
			dict.insert(SummaryKeyStaticDeltas, gvariant.NewVariant("a{sv}", dd.end().gv()))
		}
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	dict.insert(SummaryKeyLastModified, gvariant.NewVariant("t", bits.ReverseBytes64(uint64(now.Unix()))))
	dict.insert(SummaryKeyMode, gvariant.NewVariant("s", cfg.Get("core", "mode", "bare")))
	tomb, err := cfg.Bool("core", "tombstone-commits", false)
	if err != nil {
		return nil, err
	}
	dict.insert(SummaryKeyTombstone, gvariant.NewVariant("b", tomb))
	dict.insert(SummaryKeyIndexedDeltas, gvariant.NewVariant("b", true))

	colls, err := r.listCollectionRefs(mainCID)
	if err != nil {
		return nil, err
	}
	var ids []string
	for id := range colls {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var cmap []any
	for _, id := range ids {
		m := colls[id]
		var entries []SummaryRef
		for _, name := range SortedRefNames(m) {
			e, err := r.summaryRefEntry(name, m[name])
			if err != nil {
				return nil, err
			}
			entries = append(entries, e)
		}
		if id == mainCID {
			refs = entries
			continue
		}
		cmap = append(cmap, gvariant.DictEntry{Key: id, Value: summaryRefsGV(entries)})
	}
	if mainCID != "" {
		dict.insert(SummaryKeyCollectionID, gvariant.NewVariant("s", mainCID))
	}
	if len(cmap) > 0 {
		dict.insert(SummaryKeyCollectionMap, gvariant.Variant{Type: typeCollectionMap, Value: cmap})
	}
	s := &Summary{Refs: refs, Metadata: dict.end()}
	return s.Encode()
}

// summaryRefEntry builds a ref's entry as ostree's summary_add_ref_entry.
func (r *Repo) summaryRefEntry(name string, c Checksum) (SummaryRef, error) {
	b, err := r.readVerified(ObjectName{c, ObjCommit})
	if err != nil {
		return SummaryRef{}, fmt.Errorf("ref %s: %w", name, err)
	}
	cm, err := DecodeCommit(b)
	if err != nil {
		return SummaryRef{}, fmt.Errorf("ref %s: commit %s: %w", name, c, err)
	}
	d := newGVDict()
	if cm.Timestamp <= maxGDateTimeUnix {
		d.insert(SummaryRefKeyTimestamp, gvariant.NewVariant("t", bits.ReverseBytes64(cm.Timestamp)))
	}
	if v, ok := cm.Metadata.String("version"); ok {
		d.insert(SummaryRefKeyVersion, gvariant.NewVariant("s", v))
	}
	return SummaryRef{Name: name, Size: uint64(len(b)), Checksum: c, Metadata: d.end()}, nil
}

// listCollectionRefs returns collection ID → ref → commit for the refs
// that belong to a collection: refs/heads when the repository has a
// collection ID, refs/mirrors/ID/…, and refs/remotes/R/… of remotes
// configured with a collection-id (later sources win, as in ostree).
func (r *Repo) listCollectionRefs(mainCID string) (map[string]map[string]Checksum, error) {
	out := map[string]map[string]Checksum{}
	add := func(id, dir string) error {
		m := out[id]
		if m == nil {
			m = map[string]Checksum{}
		}
		if err := r.walkRefs(dir, "", "", m); err != nil {
			return err
		}
		if len(m) > 0 {
			out[id] = m
		}
		return nil
	}
	if mainCID != "" {
		if err := add(mainCID, filepath.Join(r.path, "refs", "heads")); err != nil {
			return nil, err
		}
	}
	for _, sub := range []string{"mirrors", "remotes"} {
		ents, err := os.ReadDir(filepath.Join(r.path, "refs", sub))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			id := e.Name()
			if sub == "remotes" {
				var ok bool
				id, ok = r.config.String(`remote "`+e.Name()+`"`, "collection-id")
				if !ok || !validCollectionID(id) {
					continue
				}
			}
			if err := add(id, filepath.Join(r.path, "refs", sub, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// validCollectionID checks the collection-ID grammar (a D-Bus interface
// name: two or more dot-separated elements of [A-Za-z0-9_], not starting
// with a digit, at most 255 bytes).
func validCollectionID(s string) bool {
	if len(s) == 0 || len(s) > 255 {
		return false
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || p[0] >= '0' && p[0] <= '9' {
			return false
		}
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				return false
			}
		}
	}
	return true
}

type staticDelta struct {
	name     string // "TO" or "FROM-TO", hex
	from, to Checksum
	dir      string // relative to the repository
}

// decodeDeltaB64 decodes ostree's "modified base64" of a checksum
// ('/' written as '_', no padding).
func decodeDeltaB64(s string) (Checksum, bool) {
	b, err := base64.RawStdEncoding.DecodeString(strings.ReplaceAll(s, "_", "/"))
	if err != nil || len(b) != 32 {
		return Checksum{}, false
	}
	var c Checksum
	copy(c[:], b)
	return c, true
}

// listStaticDeltas lists deltas/XX/REST directories that hold a
// superblock, as ostree_repo_list_static_delta_names. Directories whose
// name does not decode are skipped.
func (r *Repo) listStaticDeltas() ([]staticDelta, error) {
	top := filepath.Join(r.path, "deltas")
	d1s, err := os.ReadDir(top)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []staticDelta
	for _, d1 := range d1s {
		if !d1.IsDir() {
			continue
		}
		d2s, err := os.ReadDir(filepath.Join(top, d1.Name()))
		if err != nil {
			return nil, err
		}
		for _, d2 := range d2s {
			if !d2.IsDir() {
				continue
			}
			rel := filepath.Join("deltas", d1.Name(), d2.Name())
			if _, err := os.Stat(filepath.Join(r.path, rel, staticDeltaSuperblockName)); err != nil {
				continue
			}
			full := d1.Name() + d2.Name()
			d := staticDelta{dir: rel}
			var ok bool
			if fromS, toS, dash := strings.Cut(full, "-"); dash {
				var ok2 bool
				d.from, ok = decodeDeltaB64(fromS)
				d.to, ok2 = decodeDeltaB64(toS)
				ok = ok && ok2
				d.name = d.from.String() + "-" + d.to.String()
			} else {
				d.to, ok = decodeDeltaB64(full)
				d.name = d.to.String()
			}
			if ok {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// String formats the summary as `ostree summary --view` does. Times are
// shown in the local time zone, like ostree.
func (s *Summary) String() string {
	var b strings.Builder
	main := s.CollectionID()
	viewRefs(&b, main, s.Refs)
	for _, c := range s.Collections {
		viewRefs(&b, c.ID, c.Refs)
	}
	for _, e := range s.Metadata {
		pretty, val := "", ""
		switch e.Key {
		case SummaryKeyStaticDeltas:
			pretty, val = "Static Deltas", printPlain(e.Value)
		case SummaryKeyLastModified:
			pretty, val = "Last-Modified", viewTime(e.Value)
		case SummaryKeyExpires:
			pretty, val = "Expires", viewTime(e.Value)
		case SummaryKeyCollectionID:
			pretty, val = "Collection ID", fmt.Sprint(e.Value.Value)
		case SummaryKeyCollectionMap:
			pretty, val = "Collection Map", "(printed above)"
		case SummaryKeyMode:
			pretty = "Repository Mode"
			m, _ := e.Value.Value.(string)
			if _, err := ParseRepoMode(m); err != nil && m != "bare-split-xattrs" {
				val = "Invalid (‘" + m + "’)"
			} else {
				val = m
			}
		case SummaryKeyTombstone:
			pretty, val = "Has Tombstone Commits", "No"
			if v, _ := e.Value.Value.(bool); v {
				val = "Yes"
			}
		default:
			val = printPlain(e.Value)
		}
		if pretty != "" {
			fmt.Fprintf(&b, "%s (%s): %s\n", pretty, e.Key, val)
		} else {
			fmt.Fprintf(&b, "%s: %s\n", e.Key, val)
		}
	}
	return b.String()
}

func viewRefs(b *strings.Builder, collection string, refs []SummaryRef) {
	for _, r := range refs {
		if collection == "" {
			fmt.Fprintf(b, "* %s\n", r.Name)
		} else {
			fmt.Fprintf(b, "* (%s, %s)\n", collection, r.Name)
		}
		fmt.Fprintf(b, "    Latest Commit (%s):\n      %s\n", formatSize(r.Size), r.Checksum)
		for _, e := range r.Metadata {
			switch e.Key {
			case SummaryRefKeyTimestamp:
				fmt.Fprintf(b, "    Timestamp (%s): %s\n", e.Key, viewTime(e.Value))
			case SummaryRefKeyVersion:
				fmt.Fprintf(b, "    Version (%s): %v\n", e.Key, e.Value.Value)
			default:
				fmt.Fprintf(b, "    %s: %s\n", e.Key, printPlain(e.Value))
			}
		}
		b.WriteString("\n")
	}
}

// viewTime formats a big-endian uint64 timestamp as ostree's
// uint64_secs_to_iso8601: local time, "%FT%T%:::z".
func viewTime(v gvariant.Variant) string {
	x, ok := v.Value.(uint64)
	if !ok {
		return "invalid"
	}
	secs := bits.ReverseBytes64(x)
	if secs > maxGDateTimeUnix {
		return "invalid"
	}
	t := time.Unix(int64(secs), 0).In(time.Local)
	return t.Format("2006-01-02T15:04:05") + formatOffsetMinimal(t)
}

// formatOffsetMinimal is GLib's %:::z: +hh, with :mm and :ss only when
// needed.
func formatOffsetMinimal(t time.Time) string {
	_, off := t.Zone()
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	s := fmt.Sprintf("%c%02d", sign, off/3600)
	if off%3600 != 0 {
		s += fmt.Sprintf(":%02d", off%3600/60)
		if off%60 != 0 {
			s += fmt.Sprintf(":%02d", off%60)
		}
	}
	return s
}

// formatSize is GLib's g_format_size (SI units, one decimal).
func formatSize(n uint64) string {
	if n < 1000 {
		if n == 1 {
			return "1 byte"
		}
		return fmt.Sprintf("%d bytes", n)
	}
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB"}
	f := float64(1000)
	for i, u := range units {
		if i == len(units)-1 || float64(n) < f*1000 {
			return fmt.Sprintf("%.1f %s", float64(n)/f, u)
		}
		f *= 1000
	}
	return ""
}

// printPlain is g_variant_print(value, FALSE), which ostree uses for
// metadata values it does not know.
func printPlain(v gvariant.Variant) string { return gvariant.Format(v.Type, v.Value, false) }

// gvDict reproduces the iteration order of GLib's GVariantDict, which
// ostree uses to build the a{sv} dictionaries of the summary file: the
// entries live in a GHashTable keyed by g_str_hash, and g_variant_dict_end
// emits them in bucket order. Serialising a summary byte-for-byte like
// ostree therefore needs GHashTable's exact layout: open addressing with
// quadratic probing, (hash * 11) % prime bucket selection, 8 initial
// buckets, growth when 15/16 of the buckets are used and the in-place
// rehash of GLib ≥ 2.60. This is GLib 2.74's algorithm (Debian 12, the
// platform of ostree 2022.7); the summary vectors in testdata/vectors
// confirm it.
type gvDict struct {
	hashes    []uint32 // 0 unused, 1 tombstone, ≥2 a real hash
	slots     []int    // index into entries
	entries   []MetaEntry
	shift     uint
	mod, mask uint32
	nnodes    int
	noccupied int
}

// primeMod is GLib's prime_mod table: the largest prime below 1<<shift.
var primeMod = [...]uint32{1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521,
	131071, 262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213, 33554393, 67108859,
	134217689, 268435399, 536870909, 1073741789, 2147483647}

const ghashMinShift = 3

func newGVDict() *gvDict {
	d := &gvDict{}
	d.setShift(ghashMinShift)
	d.hashes = make([]uint32, 1<<d.shift)
	d.slots = make([]int, 1<<d.shift)
	return d
}

func (d *gvDict) setShift(shift uint) {
	d.shift = shift
	d.mod = primeMod[shift]
	d.mask = 1<<shift - 1
}

func (d *gvDict) size() int { return 1 << d.shift }

// gStrHash is GLib's g_str_hash (djb2 over signed chars).
func gStrHash(s string) uint32 {
	h := uint32(5381)
	for i := 0; i < len(s); i++ {
		h = h<<5 + h + uint32(int32(int8(s[i])))
	}
	return h
}

func (d *gvDict) index(h uint32) uint32 { return (h * 11) % d.mod }

func (d *gvDict) lookup(key string) (uint32, uint32) {
	h := gStrHash(key)
	if h < 2 {
		h = 2
	}
	i := d.index(h)
	step := uint32(0)
	tomb, haveTomb := uint32(0), false
	for d.hashes[i] != 0 {
		if d.hashes[i] == h && d.entries[d.slots[i]].Key == key {
			return i, h
		}
		if d.hashes[i] == 1 && !haveTomb {
			tomb, haveTomb = i, true
		}
		step++
		i = (i + step) & d.mask
	}
	if haveTomb {
		return tomb, h
	}
	return i, h
}

// insert is g_variant_dict_insert_value: an existing key keeps its bucket
// and gets the new value.
func (d *gvDict) insert(key string, v gvariant.Variant) {
	i, h := d.lookup(key)
	old := d.hashes[i]
	if old >= 2 {
		d.entries[d.slots[i]].Value = v
		return
	}
	d.entries = append(d.entries, MetaEntry{Key: key, Value: v})
	d.hashes[i] = h
	d.slots[i] = len(d.entries) - 1
	d.nnodes++
	if old == 0 {
		d.noccupied++
		d.maybeResize()
	}
}

func (d *gvDict) maybeResize() {
	size := d.size()
	if (size > d.nnodes*4 && size > 1<<ghashMinShift) || size <= d.noccupied+d.noccupied/16 {
		d.resize()
	}
}

func (d *gvDict) resize() {
	oldSize := d.size()
	n := int(float64(d.nnodes) * 1.333)
	shift := uint(0)
	for ; n != 0; n >>= 1 {
		shift++
	}
	if shift < ghashMinShift {
		shift = ghashMinShift
	}
	d.setShift(shift)
	newSize := d.size()
	if newSize > oldSize {
		d.hashes = append(d.hashes, make([]uint32, newSize-oldSize)...)
		d.slots = append(d.slots, make([]int, newSize-oldSize)...)
	}
	moved := make([]bool, max(newSize, oldSize))
	for i := 0; i < oldSize; i++ {
		nodeHash := d.hashes[i]
		if nodeHash < 2 {
			d.hashes[i] = 0
			continue
		}
		if moved[i] {
			continue
		}
		d.hashes[i] = 0
		slot := d.slots[i]
		for {
			hv := d.index(nodeHash)
			step := uint32(0)
			for moved[hv] {
				step++
				hv = (hv + step) & d.mask
			}
			moved[hv] = true
			replaced := d.hashes[hv]
			d.hashes[hv] = nodeHash
			if replaced < 2 {
				d.slots[hv] = slot
				break
			}
			nodeHash = replaced
			slot, d.slots[hv] = d.slots[hv], slot
		}
	}
	if newSize < oldSize {
		d.hashes = d.hashes[:newSize]
		d.slots = d.slots[:newSize]
	}
	d.noccupied = d.nnodes
}

// end returns the entries in GLib's iteration order (g_variant_dict_end).
func (d *gvDict) end() Metadata {
	out := make(Metadata, 0, d.nnodes)
	for i, h := range d.hashes {
		if h >= 2 {
			out = append(out, d.entries[d.slots[i]])
		}
	}
	return out
}
