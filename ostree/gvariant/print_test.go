package gvariant

import "testing"

// Expected strings are what GLib's g_variant_print prints (checked with
// `ostree show` / `ostree summary --view` on ostree 2022.7).
func TestPrint(t *testing.T) {
	cases := []struct {
		sig      string
		v        any
		annotate bool
		want     string
	}{
		{"s", "1.0", true, "'1.0'"},
		{"s", "it's", true, `"it's"`},
		{"as", []any{}, true, "@as []"},
		{"as", []any{"main"}, true, "['main']"},
		{"a{sv}", []any{}, true, "@a{sv} {}"},
		{"a{sv}", []any{}, false, "{}"},
		{"a{sv}", []any{DictEntry{"k", NewVariant("t", uint64(5))}}, true, "{'k': <uint64 5>}"},
		{"mu", Maybe{Valid: true, Value: uint32(5)}, true, "@mu 5"},
		{"mu", Maybe{Valid: true, Value: uint32(5)}, false, "5"},
		{"mu", Maybe{}, true, "@mu nothing"},
		{"mmu", Maybe{Valid: true, Value: Maybe{}}, false, "just nothing"},
		{"t", uint64(7), true, "uint64 7"},
		{"t", uint64(7), false, "7"},
		{"b", true, true, "true"},
		{"ay", []byte("abc\x00"), true, "b'abc'"},
		{"ay", []byte{1, 2}, true, "[byte 0x01, 0x02]"},
		{"ay", []byte{1, 2}, false, "[0x01, 0x02]"},
		{"(su)", []any{"a", uint32(1)}, true, "('a', uint32 1)"},
		{"(s)", []any{"a"}, true, "('a',)"},
		{"v", NewVariant("as", []any{}), false, "<@as []>"},
	}
	for _, c := range cases {
		if got := Format(MustType(c.sig), c.v, c.annotate); got != c.want {
			t.Errorf("Format(%s, %v, %v) = %s, want %s", c.sig, c.v, c.annotate, got, c.want)
		}
	}
}
