package gvariant

import (
	"fmt"
	"strings"
	"sync"
)

// Type is a parsed GVariant type. Types are immutable and may be shared.
type Type struct {
	kind   byte    // type code: one of "ybnqihuxtdsogv", 'a', 'm', '(' or '{'
	elem   *Type   // element type of arrays and maybes
	fields []*Type // members of tuples and dict entries
	sig    string
	size   int // fixed size, 0 when the type is variable-sized
	align  int
}

// Kind returns the type code: a basic type letter, 'v', 'a', 'm', '(' or '{'.
func (t *Type) Kind() byte { return t.kind }

// Elem returns the element type of an array or maybe type.
func (t *Type) Elem() *Type { return t.elem }

// Fields returns the member types of a tuple or dict entry.
func (t *Type) Fields() []*Type { return t.fields }

// String returns the type string, e.g. "(a{sv}aya(say)sstayay)".
func (t *Type) String() string { return t.sig }

// FixedSize returns the serialised size of a fixed-size type and true, or
// 0 and false for a variable-sized type.
func (t *Type) FixedSize() (int, bool) { return t.size, t.size > 0 }

// Alignment returns the alignment of the type in bytes.
func (t *Type) Alignment() int { return t.align }

var typeCache sync.Map // string -> *Type

// ParseType parses a type string holding exactly one complete type.
func ParseType(sig string) (*Type, error) { return parseType(sig, true) }

// parseType is ParseType; store says whether a newly parsed type is added
// to the cache. Type strings read from untrusted data (variant contents)
// are not stored, so that such data cannot grow the cache without bound.
func parseType(sig string, store bool) (*Type, error) {
	if v, ok := typeCache.Load(sig); ok {
		return v.(*Type), nil
	}
	t, rest, err := parseOne(sig, 0)
	if err != nil {
		return nil, fmt.Errorf("gvariant: type %q: %w", sig, err)
	}
	if rest != "" {
		return nil, fmt.Errorf("gvariant: type %q: trailing characters %q", sig, rest)
	}
	if store {
		typeCache.Store(sig, t)
	}
	return t, nil
}

// MustType is ParseType for type strings known at compile time; it panics
// on a malformed string.
func MustType(sig string) *Type {
	t, err := ParseType(sig)
	if err != nil {
		panic(err)
	}
	return t
}

const maxTypeDepth = 64

func parseOne(s string, depth int) (*Type, string, error) {
	if depth > maxTypeDepth {
		return nil, "", fmt.Errorf("type nested deeper than %d", maxTypeDepth)
	}
	if s == "" {
		return nil, "", fmt.Errorf("incomplete type")
	}
	c := s[0]
	switch c {
	case 'y', 'b':
		return &Type{kind: c, sig: s[:1], size: 1, align: 1}, s[1:], nil
	case 'n', 'q':
		return &Type{kind: c, sig: s[:1], size: 2, align: 2}, s[1:], nil
	case 'i', 'u', 'h':
		return &Type{kind: c, sig: s[:1], size: 4, align: 4}, s[1:], nil
	case 'x', 't', 'd':
		return &Type{kind: c, sig: s[:1], size: 8, align: 8}, s[1:], nil
	case 's', 'o', 'g':
		return &Type{kind: c, sig: s[:1], align: 1}, s[1:], nil
	case 'v':
		return &Type{kind: c, sig: s[:1], align: 8}, s[1:], nil
	case 'a', 'm':
		e, rest, err := parseOne(s[1:], depth+1)
		if err != nil {
			return nil, "", err
		}
		return &Type{kind: c, elem: e, sig: s[:len(s)-len(rest)], align: e.align}, rest, nil
	case '(':
		rest := s[1:]
		var fields []*Type
		for {
			if rest == "" {
				return nil, "", fmt.Errorf("unterminated tuple")
			}
			if rest[0] == ')' {
				rest = rest[1:]
				break
			}
			f, r, err := parseOne(rest, depth+1)
			if err != nil {
				return nil, "", err
			}
			fields = append(fields, f)
			rest = r
		}
		t := &Type{kind: '(', fields: fields, sig: s[:len(s)-len(rest)]}
		t.layoutTuple()
		return t, rest, nil
	case '{':
		k, rest, err := parseOne(s[1:], depth+1)
		if err != nil {
			return nil, "", err
		}
		if k.kind == 'v' || k.kind == 'a' || k.kind == 'm' || k.kind == '(' || k.kind == '{' {
			return nil, "", fmt.Errorf("dict entry key must be a basic type, not %q", k.sig)
		}
		v, rest, err := parseOne(rest, depth+1)
		if err != nil {
			return nil, "", err
		}
		if rest == "" || rest[0] != '}' {
			return nil, "", fmt.Errorf("dict entry must have exactly two members")
		}
		rest = rest[1:]
		t := &Type{kind: '{', fields: []*Type{k, v}, sig: s[:len(s)-len(rest)]}
		t.layoutTuple()
		return t, rest, nil
	default:
		return nil, "", fmt.Errorf("invalid type character %q", c)
	}
}

func (t *Type) layoutTuple() {
	t.align = 1
	fixed := true
	off := 0
	for _, f := range t.fields {
		if f.align > t.align {
			t.align = f.align
		}
		if f.size == 0 {
			fixed = false
			continue
		}
		off = alignUp(off, f.align) + f.size
	}
	if !fixed {
		return
	}
	if len(t.fields) == 0 {
		t.size = 1 // the unit type () is one zero byte
		return
	}
	t.size = alignUp(off, t.align)
}

func alignUp(n, a int) int { return (n + a - 1) &^ (a - 1) }

// isValidSignature reports whether s is a sequence of complete types, as
// the 'g' type requires.
func isValidSignature(s string) bool {
	for s != "" {
		_, rest, err := parseOne(s, 0)
		if err != nil {
			return false
		}
		s = rest
	}
	return true
}

// isValidObjectPath checks D-Bus object path syntax, as the 'o' type requires.
func isValidObjectPath(s string) bool {
	if s == "/" {
		return true
	}
	if !strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") {
		return false
	}
	for _, el := range strings.Split(s[1:], "/") {
		if el == "" {
			return false
		}
		for i := 0; i < len(el); i++ {
			c := el[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				return false
			}
		}
	}
	return true
}
