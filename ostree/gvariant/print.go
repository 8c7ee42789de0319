package gvariant

import (
	"fmt"
	"strconv"
	"strings"
)

// Print formats a value in GVariant text format with type annotations,
// as g_variant_print(value, TRUE) does (and hence `ostree show`).
func Print(t *Type, v any) string { return Format(t, v, true) }

// Format is g_variant_print(value, annotate): with annotate, values whose
// type the text would not imply get a type prefix. Values inside a
// variant are always annotated.
func Format(t *Type, v any, annotate bool) string {
	var b strings.Builder
	printValue(&b, t, v, annotate)
	return b.String()
}

func printValue(b *strings.Builder, t *Type, v any, annotate bool) {
	switch t.kind {
	case 'b':
		if v.(bool) {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case 'y':
		if annotate {
			b.WriteString("byte ")
		}
		fmt.Fprintf(b, "0x%02x", v.(uint8))
	case 'n':
		if annotate {
			b.WriteString("int16 ")
		}
		fmt.Fprint(b, v)
	case 'q':
		if annotate {
			b.WriteString("uint16 ")
		}
		fmt.Fprint(b, v)
	case 'i':
		fmt.Fprint(b, v)
	case 'h':
		if annotate {
			b.WriteString("handle ")
		}
		fmt.Fprint(b, v)
	case 'u':
		if annotate {
			b.WriteString("uint32 ")
		}
		fmt.Fprint(b, v)
	case 'x':
		if annotate {
			b.WriteString("int64 ")
		}
		fmt.Fprint(b, v)
	case 't':
		if annotate {
			b.WriteString("uint64 ")
		}
		fmt.Fprint(b, v)
	case 'd':
		s := strconv.FormatFloat(v.(float64), 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEnN") {
			s += ".0"
		}
		b.WriteString(s)
	case 's':
		b.WriteString(quote(v.(string)))
	case 'o':
		if annotate {
			b.WriteString("objectpath ")
		}
		b.WriteString(quote(v.(string)))
	case 'g':
		if annotate {
			b.WriteString("signature ")
		}
		b.WriteString(quote(v.(string)))
	case 'v':
		x := v.(Variant)
		b.WriteByte('<')
		printValue(b, x.Type, x.Value, true)
		b.WriteByte('>')
	case 'm':
		x := v.(Maybe)
		if annotate {
			b.WriteString("@" + t.sig + " ")
		}
		if !x.Valid {
			b.WriteString("nothing")
			return
		}
		// GLib writes "just" only where the child's text would otherwise
		// be ambiguous: when it ends in "nothing".
		child := Format(t.elem, x.Value, false)
		if strings.HasSuffix(child, "nothing") {
			b.WriteString("just ")
		}
		b.WriteString(child)
	case 'a':
		printArray(b, t, v, annotate)
	case '(':
		x := v.([]any)
		b.WriteByte('(')
		for i, f := range t.fields {
			if i > 0 {
				b.WriteString(", ")
			}
			printValue(b, f, x[i], annotate)
		}
		if len(t.fields) == 1 {
			b.WriteByte(',')
		}
		b.WriteByte(')')
	case '{':
		x := v.(DictEntry)
		b.WriteByte('{')
		printValue(b, t.fields[0], x.Key, annotate)
		b.WriteString(", ")
		printValue(b, t.fields[1], x.Value, annotate)
		b.WriteByte('}')
	}
}

func printArray(b *strings.Builder, t *Type, v any, annotate bool) {
	var items []any
	if t.elem.kind == 'y' {
		bs := v.([]byte)
		if len(bs) == 0 {
			if annotate {
				b.WriteString("@ay ")
			}
			b.WriteString("[]")
			return
		}
		// GLib prints a byte array that is a NUL-terminated printable
		// string as b'...'.
		if bs[len(bs)-1] == 0 && isPrintable(bs[:len(bs)-1]) {
			b.WriteString("b" + quote(string(bs[:len(bs)-1])))
			return
		}
		for _, x := range bs {
			items = append(items, x)
		}
	} else {
		items = v.([]any)
	}
	if len(items) == 0 {
		if annotate {
			b.WriteString("@" + t.sig + " ")
		}
		if t.elem.kind == '{' {
			b.WriteString("{}")
		} else {
			b.WriteString("[]")
		}
		return
	}
	if t.elem.kind == '{' {
		b.WriteByte('{')
		for i, it := range items {
			if i > 0 {
				b.WriteString(", ")
			}
			e := it.(DictEntry)
			printValue(b, t.elem.fields[0], e.Key, annotate && i == 0)
			b.WriteString(": ")
			printValue(b, t.elem.fields[1], e.Value, annotate && i == 0)
		}
		b.WriteByte('}')
		return
	}
	b.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		printValue(b, t.elem, it, annotate && i == 0)
	}
	b.WriteByte(']')
}

func isPrintable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == 0 {
			return false
		}
	}
	return true
}

// quote renders a string as GLib does: single quotes unless the string
// contains a single quote and no double quote.
func quote(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\a':
			b.WriteString(`\a`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\v':
			b.WriteString(`\v`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}
