package keyfile

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

type line struct {
	key, value string // key == "" for comments and blank lines
	raw        string
}

type group struct {
	name  string
	lines []line
}

// File is a parsed key file.
type File struct {
	head   []line // comments before the first group
	groups []*group
}

// New returns an empty key file.
func New() *File { return &File{} }

// Parse parses key file text.
func Parse(data []byte) (*File, error) {
	f := &File{}
	var cur *group
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		raw := sc.Text()
		s := strings.TrimSpace(raw)
		switch {
		case s == "" || s[0] == '#':
			l := line{raw: raw}
			if cur == nil {
				f.head = append(f.head, l)
			} else {
				cur.lines = append(cur.lines, l)
			}
		case s[0] == '[':
			if !strings.HasSuffix(s, "]") || len(s) < 3 {
				return nil, fmt.Errorf("line %d: invalid group header %q", n, raw)
			}
			name := s[1 : len(s)-1]
			if strings.ContainsAny(name, "[]") {
				return nil, fmt.Errorf("line %d: invalid group name %q", n, name)
			}
			if f.group(name) != nil {
				return nil, fmt.Errorf("line %d: duplicate group [%s]", n, name)
			}
			cur = &group{name: name}
			f.groups = append(f.groups, cur)
		default:
			if cur == nil {
				return nil, fmt.Errorf("line %d: key outside of any group: %q", n, raw)
			}
			k, v, ok := strings.Cut(s, "=")
			if !ok {
				return nil, fmt.Errorf("line %d: expected KEY=VALUE, got %q", n, raw)
			}
			k = strings.TrimSpace(k)
			if k == "" {
				return nil, fmt.Errorf("line %d: empty key", n)
			}
			v = strings.TrimLeft(v, " \t")
			cur.setRaw(k, v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

func (g *group) setRaw(k, v string) {
	for i := range g.lines {
		if g.lines[i].key == k {
			g.lines[i].value = v
			return
		}
	}
	g.lines = append(g.lines, line{key: k, value: v})
}

func (f *File) group(name string) *group {
	for _, g := range f.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

// Groups returns the group names in file order.
func (f *File) Groups() []string {
	out := make([]string, len(f.groups))
	for i, g := range f.groups {
		out[i] = g.name
	}
	return out
}

// HasGroup reports whether the group exists.
func (f *File) HasGroup(name string) bool { return f.group(name) != nil }

// Keys returns the keys of a group in file order.
func (f *File) Keys(groupName string) []string {
	g := f.group(groupName)
	if g == nil {
		return nil
	}
	var out []string
	for _, l := range g.lines {
		if l.key != "" {
			out = append(out, l.key)
		}
	}
	return out
}

// Raw returns the unescaped-as-stored value of a key.
func (f *File) Raw(groupName, key string) (string, bool) {
	g := f.group(groupName)
	if g == nil {
		return "", false
	}
	for _, l := range g.lines {
		if l.key == key {
			return l.value, true
		}
	}
	return "", false
}

// String returns a string value with GLib escapes (\s \n \t \r \\) decoded.
func (f *File) String(groupName, key string) (string, bool) {
	v, ok := f.Raw(groupName, key)
	if !ok {
		return "", false
	}
	return unescape(v), true
}

// Get returns a string value or def when the key is absent.
func (f *File) Get(groupName, key, def string) string {
	if v, ok := f.String(groupName, key); ok {
		return v
	}
	return def
}

// Bool returns a boolean value ("true"/"false", also 1/0 as GLib accepts).
func (f *File) Bool(groupName, key string, def bool) (bool, error) {
	v, ok := f.Raw(groupName, key)
	if !ok {
		return def, nil
	}
	switch strings.TrimSpace(v) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return def, fmt.Errorf("[%s] %s: invalid boolean %q", groupName, key, v)
}

// Int returns an integer value.
func (f *File) Int(groupName, key string, def int64) (int64, error) {
	v, ok := f.Raw(groupName, key)
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return def, fmt.Errorf("[%s] %s: invalid integer %q", groupName, key, v)
	}
	return n, nil
}

// List returns a ';'-separated list value (GLib string lists; ostree also
// accepts ',' in some keys, which callers handle).
func (f *File) List(groupName, key string) []string {
	v, ok := f.Raw(groupName, key)
	if !ok || v == "" {
		return nil
	}
	var out []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v) && v[i+1] == ';':
			cur.WriteByte(';')
			i++
		case v[i] == '\\' && i+1 < len(v):
			cur.WriteByte(v[i])
			cur.WriteByte(v[i+1])
			i++
		case v[i] == ';':
			out = append(out, unescape(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(v[i])
		}
	}
	if cur.Len() > 0 {
		out = append(out, unescape(cur.String()))
	}
	return out
}

// Set sets a string value, creating the group (at the end) if needed.
func (f *File) Set(groupName, key, value string) {
	g := f.group(groupName)
	if g == nil {
		g = &group{name: groupName}
		f.groups = append(f.groups, g)
	}
	g.setRaw(key, escape(value))
}

// SetBool sets a boolean value.
func (f *File) SetBool(groupName, key string, v bool) { f.Set(groupName, key, strconv.FormatBool(v)) }

// SetList sets a ';'-terminated list value.
func (f *File) SetList(groupName, key string, vals []string) {
	var b strings.Builder
	for _, v := range vals {
		b.WriteString(strings.ReplaceAll(escape(v), ";", "\\;"))
		b.WriteByte(';')
	}
	g := f.group(groupName)
	if g == nil {
		g = &group{name: groupName}
		f.groups = append(f.groups, g)
	}
	g.setRaw(key, b.String())
}

// Delete removes a key; it reports whether it existed.
func (f *File) Delete(groupName, key string) bool {
	g := f.group(groupName)
	if g == nil {
		return false
	}
	for i, l := range g.lines {
		if l.key == key {
			g.lines = append(g.lines[:i], g.lines[i+1:]...)
			return true
		}
	}
	return false
}

// DeleteGroup removes a group; it reports whether it existed.
func (f *File) DeleteGroup(name string) bool {
	for i, g := range f.groups {
		if g.name == name {
			f.groups = append(f.groups[:i], f.groups[i+1:]...)
			return true
		}
	}
	return false
}

// Bytes serialises the file. Groups are separated by a blank line, as
// GLib writes them.
func (f *File) Bytes() []byte {
	var b bytes.Buffer
	for _, l := range f.head {
		b.WriteString(l.raw)
		b.WriteByte('\n')
	}
	for i, g := range f.groups {
		if i > 0 && !endsWithBlank(b.Bytes()) {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "[%s]\n", g.name)
		for _, l := range g.lines {
			if l.key == "" {
				if strings.TrimSpace(l.raw) == "" {
					continue // blank separators are regenerated
				}
				b.WriteString(l.raw)
			} else {
				b.WriteString(l.key + "=" + l.value)
			}
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func endsWithBlank(b []byte) bool {
	return len(b) == 0 || bytes.HasSuffix(b, []byte("\n\n"))
}

func unescape(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 's':
			b.WriteByte(' ')
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '\\':
			b.WriteByte('\\')
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' && i == 0:
			b.WriteString(`\s`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\\':
			b.WriteString(`\\`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
