package gvariant_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/gostree/gostree/ostree/gvariant"
)

// fuzzTypes are the types FuzzUnmarshal decodes with; the first input byte
// selects one (modulo the length).
var fuzzTypes = []string{
	"(a{sv}aya(say)sstayay)", // 0 commit
	"(a(say)a(sayay))",       // 1 dirtree
	"(uuua(ayay))",           // 2 dirmeta, user.ostreemeta
	"(tuuuusa(ayay))",        // 3 archive file header
	"(uuuusa(ayay))",         // 4 file header
	"a{sv}",                  // 5 commitmeta, delta index
	"(a(s(taya{sv}))a{sv})",  // 6 summary
	"a(ayay)",                // 7 xattrs
	"v",                      // 8 any type at all
	"a(say)", "a(sayay)", "ay", "as", "aay", "av",
	"y", "b", "n", "q", "i", "u", "x", "t", "d", "h", "s", "o", "g",
	"()", "a()", "(y())", "(yu)", "(ty)", "(ss)", "(sy)", "{sv}",
	"my", "ms", "mmy", "mas", "m(uy)", "mv", "ams",
	"(a{sv}tayay(a{sv}aya(say)sstayay)aya(uayttay)a(yaytt))",
}

func fuzzTypeIndex(sig string) uint8 {
	for i, s := range fuzzTypes {
		if s == sig {
			return uint8(i)
		}
	}
	panic("no fuzz type " + sig)
}

func FuzzUnmarshal(f *testing.F) {
	types := make([]*gvariant.Type, len(fuzzTypes))
	for i, s := range fuzzTypes {
		types[i] = gvariant.MustType(s)
	}

	// Real objects.
	for name, data := range loadVectors(f) {
		switch {
		case strings.HasSuffix(name, ".commit"):
			f.Add(fuzzTypeIndex("(a{sv}aya(say)sstayay)"), data)
		case strings.HasSuffix(name, ".dirtree"):
			f.Add(fuzzTypeIndex("(a(say)a(sayay))"), data)
		case strings.HasSuffix(name, ".dirmeta"):
			f.Add(fuzzTypeIndex("(uuua(ayay))"), data)
			f.Add(fuzzTypeIndex("a(ayay)"), data[12:])
		case strings.HasSuffix(name, ".filez"):
			n := int(data[0])<<24 | int(data[1])<<16 | int(data[2])<<8 | int(data[3])
			f.Add(fuzzTypeIndex("(tuuuusa(ayay))"), data[8:8+n])
			f.Add(fuzzTypeIndex("(uuuusa(ayay))"), data[16:8+n])
		case strings.HasPrefix(name, "summary"):
			f.Add(fuzzTypeIndex("(a(s(taya{sv}))a{sv})"), data)
		case strings.HasPrefix(name, "delta-indexes/"):
			f.Add(fuzzTypeIndex("a{sv}"), data)
		}
	}
	// Every round-trip example, as itself and wrapped in a variant.
	for _, rt := range roundTrips {
		typ := gvariant.MustType(rt.sig)
		b, err := gvariant.Marshal(typ, rt.val)
		if err != nil {
			f.Fatal(err)
		}
		for i, s := range fuzzTypes {
			if s == rt.sig {
				f.Add(uint8(i), b)
			}
		}
		f.Add(fuzzTypeIndex("v"), gvariant.MustMarshal(gvariant.MustType("v"), gvariant.Variant{Type: typ, Value: rt.val}))
	}
	// Garbage.
	for _, g := range []string{"", "\x00", "\xff", "\x00\x00\x00\x00", "\xff\xff\xff\xff\xff\xff\xff\xff\xff",
		"a\x00", "\x00(", "\x00a{sv}", "\x01\x00b", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"} {
		for i := 0; i < 9; i++ {
			f.Add(uint8(i), []byte(g))
		}
	}

	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		typ := types[int(which)%len(types)]
		v, err := gvariant.Unmarshal(typ, data)
		if err != nil {
			if !errors.Is(err, gvariant.ErrNotNormal) {
				t.Fatalf("Unmarshal(%q, %x): error %v does not wrap ErrNotNormal", typ, data, err)
			}
			return
		}
		b, err := gvariant.Marshal(typ, v)
		if err != nil {
			t.Fatalf("Marshal(%q) of a decoded value: %v", typ, err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("Marshal(%q, Unmarshal(%x)) = %x", typ, data, b)
		}
		if sz, ok := typ.FixedSize(); ok && len(data) != sz {
			t.Fatalf("fixed-size %q accepted %d bytes", typ, len(data))
		}
		// A decoded variant's type string must parse back to itself.
		if x, ok := v.(gvariant.Variant); ok {
			if again, err := gvariant.ParseType(x.Type.String()); err != nil || again.String() != x.Type.String() {
				t.Fatalf("variant type %q: %v", x.Type, err)
			}
		}
	})
}

// FuzzParseType checks that ParseType never panics and that an accepted
// type prints back as the input.
func FuzzParseType(f *testing.F) {
	for _, s := range fuzzTypes {
		f.Add(s)
	}
	for _, s := range []string{"", "a", "(", "{sv", "{vs}", "(s", "x y", "z", "((((", "{yy}", "mmm"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sig string) {
		typ, err := gvariant.ParseType(sig)
		if err != nil {
			return
		}
		if typ.String() != sig {
			t.Fatalf("ParseType(%q).String() = %q", sig, typ)
		}
		if a := typ.Alignment(); a != 1 && a != 2 && a != 4 && a != 8 {
			t.Fatalf("%q: alignment %d", sig, a)
		}
		if sz, ok := typ.FixedSize(); ok && sz%typ.Alignment() != 0 {
			t.Fatalf("%q: size %d not a multiple of alignment %d", sig, sz, typ.Alignment())
		}
	})
}
