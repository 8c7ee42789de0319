package gvariant_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/bits"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/gostree/gostree/ostree/gvariant"
)

// ---------------------------------------------------------------------------
// Helpers

// unhex decodes hex with optional spaces, newlines and '|' separators.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.NewReplacer(" ", "", "\n", "", "\t", "", "|", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

var (
	vecHeaderRe = regexp.MustCompile(`^(objects/[0-9a-f]{2}/[0-9a-f]{62}\.[a-z]+)\s+size=(\d+)`)
	vecHexRe    = regexp.MustCompile(`^[0-9a-f]+$`)
)

// loadVectors returns the object files of ../testdata/vectors/{objects-archive,xattr-vector}.txt
// keyed by path ("objects/xx/yyy.commit"), and the hex blocks of summary.txt
// keyed by their "## " section title.
func loadVectors(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, file := range []string{"objects-archive.txt", "xattr-vector.txt", "summary.txt"} {
		f, err := os.Open("../testdata/vectors/" + file)
		if err != nil {
			t.Fatal(err)
		}
		cur := ""
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if m := vecHeaderRe.FindStringSubmatch(line); m != nil {
				cur = m[1]
				continue
			}
			if strings.HasPrefix(line, "## ") {
				cur = ""
				if file == "summary.txt" {
					cur = line[3:]
				}
				continue
			}
			if cur != "" && vecHexRe.MatchString(line) {
				b, err := hex.DecodeString(line)
				if err != nil {
					t.Fatal(err)
				}
				out[cur] = append(out[cur], b...)
				continue
			}
			if file != "summary.txt" || strings.HasPrefix(line, "decoded") {
				cur = ""
			}
		}
		f.Close()
	}
	return out
}

// vectorByPrefix returns the one vector whose key starts with prefix.
func vectorByPrefix(t testing.TB, vecs map[string][]byte, prefix string) []byte {
	t.Helper()
	var found []byte
	n := 0
	for k, v := range vecs {
		if strings.HasPrefix(k, prefix) {
			found = v
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d vectors match %q", n, prefix)
	}
	return found
}

// normalize replaces nil byte slices and nil []any by empty ones, so that
// values can be compared with reflect.DeepEqual.
func normalize(v any) any {
	switch x := v.(type) {
	case []byte:
		if x == nil {
			return []byte{}
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case gvariant.Variant:
		return gvariant.Variant{Type: x.Type, Value: normalize(x.Value)}
	case gvariant.DictEntry:
		return gvariant.DictEntry{Key: normalize(x.Key), Value: normalize(x.Value)}
	case gvariant.Maybe:
		if !x.Valid {
			return gvariant.Maybe{}
		}
		return gvariant.Maybe{Valid: true, Value: normalize(x.Value)}
	}
	return v
}

func be32(x uint32) uint32 { return bits.ReverseBytes32(x) }
func be64(x uint64) uint64 { return bits.ReverseBytes64(x) }

func seq(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

// ---------------------------------------------------------------------------
// Round trips

type roundTrip struct {
	name string
	sig  string
	val  any
	hex  string // expected serialisation; "" = only check the round trip
}

func sum32(b byte) []byte { return seq(32, b) }

var roundTrips = []roundTrip{
	// Basic types.
	{"y", "y", uint8(0x2a), "2a"},
	{"y max", "y", uint8(0xff), "ff"},
	{"b true", "b", true, "01"},
	{"b false", "b", false, "00"},
	{"n", "n", int16(-2), "feff"},
	{"n min", "n", int16(math.MinInt16), "0080"},
	{"q", "q", uint16(0x1234), "3412"},
	{"i", "i", int32(-1), "ffffffff"},
	{"i min", "i", int32(math.MinInt32), "00000080"},
	{"u", "u", uint32(0x01020304), "04030201"},
	{"x", "x", int64(-2), "feffffffffffffff"},
	{"t", "t", uint64(1577836800), "00e10b5e00000000"},
	{"t max", "t", uint64(math.MaxUint64), "ffffffffffffffff"},
	{"d", "d", 1.5, "000000000000f83f"},
	{"d -0", "d", math.Copysign(0, -1), "0000000000000080"},
	{"d inf", "d", math.Inf(1), "000000000000f07f"},
	{"h", "h", int32(3), "03000000"},
	{"s empty", "s", "", "00"},
	{"s", "s", "hello", "68656c6c6f00"},
	{"s utf8", "s", "héllo ✓", ""},
	{"o root", "o", "/", "2f00"},
	{"o", "o", "/org/example_1", "2f6f72672f6578616d706c655f3100"},
	{"g empty", "g", "", "00"},
	{"g", "g", "a{sv}", "617b73767d00"},
	{"g multi", "g", "ssa(say)", ""},

	// Variants.
	{"v u", "v", gvariant.NewVariant("u", uint32(7)), "07000000 00 75"},
	{"v s", "v", gvariant.NewVariant("s", "2.0"), "322e3000 00 73"},
	{"v v y", "v", gvariant.NewVariant("v", gvariant.NewVariant("y", uint8(1))), "01 00 79 00 76"},
	{"v unit", "v", gvariant.NewVariant("()", []any{}), "00 00 2829"},
	{"v as empty", "v", gvariant.NewVariant("as", []any{}), "00 6173"},
	{"v ay", "v", gvariant.NewVariant("ay", []byte{1, 2}), "0102 00 6179"},
	{"v a{sv}", "v", gvariant.NewVariant("a{sv}", []any{
		gvariant.DictEntry{Key: "k", Value: gvariant.NewVariant("b", true)}}), ""},
	{"v deep", "v", gvariant.NewVariant("v", gvariant.NewVariant("v", gvariant.NewVariant("(sv)",
		[]any{"x", gvariant.NewVariant("mv", gvariant.Maybe{Valid: true, Value: gvariant.NewVariant("t", uint64(9))})}))), ""},

	// Arrays.
	{"ay empty", "ay", []byte{}, ""},
	{"ay", "ay", []byte{1, 2, 3}, "010203"},
	{"au", "au", []any{uint32(1), uint32(2)}, "01000000 02000000"},
	{"au empty", "au", []any{}, ""},
	{"ab", "ab", []any{true, false}, "0100"},
	{"as empty", "as", []any{}, ""},
	{"as one empty string", "as", []any{""}, "00 01"},
	{"as", "as", []any{"a", "bc"}, "6100 626300 02 05"},
	{"aay", "aay", []any{[]byte{}, []byte{}}, "00 00"},
	{"aay 2", "aay", []any{[]byte{1}, []byte{2, 3}}, "01 0203 01 03"},
	{"a(say)", "a(say)", []any{[]any{"B", sum32(0xaa)}}, "4200" + strings.Repeat("aa", 32) + "02 23"},
	{"a(say) empty", "a(say)", []any{}, ""},
	{"a(sayay)", "a(sayay)", []any{[]any{"d", []byte{1, 2}, []byte{3, 4}}}, "6400 0102 0304 04 02 08"},
	{"a(sayay) empty", "a(sayay)", []any{}, ""},
	{"a(ayay)", "a(ayay)", []any{[]any{[]byte("user.dir\x00"), []byte("d")}}, "757365722e64697200 64 09 0b"},
	{"a{sv}", "a{sv}", []any{gvariant.DictEntry{Key: "a", Value: gvariant.NewVariant("s", "b")}},
		"6100 000000000000 62000073 02 0d"},
	{"a{sv} two", "a{sv}", []any{
		gvariant.DictEntry{Key: "version", Value: gvariant.NewVariant("s", "2.0")},
		gvariant.DictEntry{Key: "ostree.ref-binding", Value: gvariant.NewVariant("as", []any{"main"})}}, ""},
	{"a{sv} empty", "a{sv}", []any{}, ""},
	{"a{ss}", "a{ss}", []any{gvariant.DictEntry{Key: "k", Value: "v"}}, "6b00 7600 02 05"},
	{"a{uy}", "a{uy}", []any{gvariant.DictEntry{Key: uint32(1), Value: uint8(2)}}, "01000000 02 000000"},
	{"av", "av", []any{gvariant.NewVariant("y", uint8(1)), gvariant.NewVariant("as", []any{"x"})},
		"010079 0000000000 780002 00 6173 03 0e"},
	{"aav", "aav", []any{[]any{}, []any{gvariant.NewVariant("b", true)}}, ""},
	{"a(us)", "a(us)", []any{[]any{uint32(1), "a"}, []any{uint32(2), "b"}},
		"01000000 6100 0000 02000000 6200 06 0e"},
	{"a(uuu)", "a(uuu)", []any{[]any{uint32(1), uint32(2), uint32(3)}}, "01000000 02000000 03000000"},

	// Tuples and the unit type.
	{"unit", "()", []any{}, "00"},
	{"a()", "a()", []any{[]any{}, []any{}}, "0000"},
	{"a() empty", "a()", []any{}, ""},
	{"(y())", "(y())", []any{uint8(1), []any{}}, "0100"},
	{"(()s)", "(()s)", []any{[]any{}, "a"}, "00 6100"},
	{"(yu)", "(yu)", []any{uint8(1), uint32(2)}, "01 000000 02000000"},
	{"(uy)", "(uy)", []any{uint32(2), uint8(1)}, "02000000 01 000000"},
	{"(ty)", "(ty)", []any{uint64(1), uint8(2)}, "0100000000000000 02 00000000000000"},
	{"(ss)", "(ss)", []any{"a", "b"}, "6100 6200 02"},
	{"(sy)", "(sy)", []any{"a", uint8(5)}, "6100 05 02"},
	{"(ayayay)", "(ayayay)", []any{[]byte{1}, []byte{2}, []byte{3}}, "01 02 03 02 01"},
	{"(ay) empty", "(ay)", []any{[]byte{}}, ""},
	{"(yv)", "(yv)", []any{uint8(1), gvariant.NewVariant("y", uint8(2))}, "01 00000000000000 02 00 79"},
	{"{sv}", "{sv}", gvariant.DictEntry{Key: "a", Value: gvariant.NewVariant("y", uint8(1))}, "6100 000000000000 01 00 79 02"},
	{"{yy}", "{yy}", gvariant.DictEntry{Key: uint8(1), Value: uint8(2)}, "0102"},

	// Maybe types.
	{"my nothing", "my", gvariant.Maybe{}, ""},
	{"my just", "my", gvariant.Maybe{Valid: true, Value: uint8(5)}, "05"},
	{"mu just", "mu", gvariant.Maybe{Valid: true, Value: uint32(5)}, "05000000"},
	{"ms nothing", "ms", gvariant.Maybe{}, ""},
	{"ms just empty", "ms", gvariant.Maybe{Valid: true, Value: ""}, "00 00"},
	{"ms just", "ms", gvariant.Maybe{Valid: true, Value: "a"}, "6100 00"},
	{"mmy just nothing", "mmy", gvariant.Maybe{Valid: true, Value: gvariant.Maybe{}}, "00"},
	{"mmy just just", "mmy", gvariant.Maybe{Valid: true, Value: gvariant.Maybe{Valid: true, Value: uint8(7)}}, "07 00"},
	{"mas just empty", "mas", gvariant.Maybe{Valid: true, Value: []any{}}, "00"},
	{"m(uy)", "m(uy)", gvariant.Maybe{Valid: true, Value: []any{uint32(1), uint8(2)}}, "01000000 02 000000"},
	{"ams", "ams", []any{gvariant.Maybe{}, gvariant.Maybe{Valid: true, Value: "x"}}, "7800 00 00 03"},
	{"mv", "mv", gvariant.Maybe{Valid: true, Value: gvariant.NewVariant("y", uint8(1))}, "01 00 79 00"},

	// The OSTree object types.
	{"dirmeta", "(uuua(ayay))", []any{uint32(0), uint32(0), be32(0o40755), []any{}}, "00000000 00000000 000041ed"},
	{"dirmeta xattr", "(uuua(ayay))", []any{uint32(0), uint32(0), be32(0o40755),
		[]any{[]any{[]byte("user.dir\x00"), []byte("d")}}},
		"00000000 00000000 000041ed 757365722e6469720064090b"},
	{"file header", "(uuuusa(ayay))", []any{uint32(0), uint32(0), be32(0o100644), uint32(0), "", []any{}},
		"00000000 00000000 000081a4 00000000 00 11"},
	{"file header symlink", "(uuuusa(ayay))", []any{uint32(0), uint32(0), be32(0o120777), uint32(0), "hello.txt", []any{}},
		"00000000 00000000 0000a1ff 00000000 68656c6c6f2e74787400 1a"},
	{"archive header", "(tuuuusa(ayay))", []any{be64(12), uint32(0), uint32(0), be32(0o100644), uint32(0), "", []any{}},
		"000000000000000c 00000000 00000000 000081a4 00000000 00 19"},
	{"archive header xattrs", "(tuuuusa(ayay))", []any{be64(2), uint32(0), uint32(0), be32(0o100644), uint32(0), "",
		[]any{[]any{[]byte("user.a\x00"), []byte("1")}, []any{[]byte("user.b\x00"), []byte("2")}}},
		"0000000000000002 00000000 00000000 000081a4 00000000 00 757365722e610031 07 757365722e620032 07 09 12 19"},
	{"empty dirtree", "(a(say)a(sayay))", []any{[]any{}, []any{}}, "00"},
	{"dirtree", "(a(say)a(sayay))", []any{
		[]any{[]any{"f", sum32(1)}},
		[]any{[]any{"d", sum32(2), sum32(3)}}}, ""},
	{"commit A", "(a{sv}aya(say)sstayay)", []any{
		[]any{}, []byte{}, []any{}, "Test subject", "Test body", be64(1577836800),
		unhexS("56f76038b1fbf62d140705e19ed8dddf29af1c43dc6e0b425eec7914a9ea62c1"),
		unhexS("446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488")},
		"54657374207375626a65637400 5465737420626f647900 00 000000005e0be100" +
			"56f76038b1fbf62d140705e19ed8dddf29af1c43dc6e0b425eec7914a9ea62c1" +
			"446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488" +
			"40170d000000"},
	{"commit with related", "(a{sv}aya(say)sstayay)", []any{
		[]any{gvariant.DictEntry{Key: "version", Value: gvariant.NewVariant("s", "1")}},
		sum32(9), []any{[]any{"rel", sum32(8)}}, "", "", uint64(0), sum32(1), sum32(2)}, ""},
	{"summary", "(a(s(taya{sv}))a{sv})", []any{
		[]any{[]any{"main", []any{uint64(174), sum32(0x0f), []any{
			gvariant.DictEntry{Key: "ostree.commit.timestamp", Value: gvariant.NewVariant("t", be64(1577923200))}}}}},
		[]any{gvariant.DictEntry{Key: "ostree.summary.mode", Value: gvariant.NewVariant("s", "archive-z2")}}}, ""},
	{"summary empty", "(a(s(taya{sv}))a{sv})", []any{[]any{}, []any{}}, "00"},
	{"delta superblock", "(a{sv}tayay(a{sv}aya(say)sstayay)aya(uayttay)a(yaytt))", []any{
		[]any{}, uint64(1), sum32(1), sum32(2),
		[]any{[]any{}, []byte{}, []any{}, "s", "b", uint64(3), sum32(4), sum32(5)},
		[]byte{},
		[]any{[]any{uint32(0), sum32(6), uint64(7), uint64(8), []byte{9}}},
		[]any{[]any{uint8(1), sum32(7), uint64(1), uint64(2)}}}, ""},
}

func unhexS(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTrips {
		t.Run(tc.name, func(t *testing.T) {
			typ, err := gvariant.ParseType(tc.sig)
			if err != nil {
				t.Fatal(err)
			}
			b, err := gvariant.Marshal(typ, tc.val)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if tc.hex != "" {
				if want := unhex(t, tc.hex); !bytes.Equal(b, want) {
					t.Fatalf("Marshal = %x, want %x", b, want)
				}
			}
			if sz, ok := typ.FixedSize(); ok && len(b) != sz {
				t.Errorf("fixed-size type serialised to %d bytes, want %d", len(b), sz)
			}
			v, err := gvariant.Unmarshal(typ, b)
			if err != nil {
				t.Fatalf("Unmarshal(%x): %v", b, err)
			}
			if got, want := normalize(v), normalize(tc.val); !reflect.DeepEqual(got, want) {
				t.Errorf("Unmarshal = %#v, want %#v", got, want)
			}
			again, err := gvariant.Marshal(typ, v)
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("re-Marshal = %x, %v; want %x", again, err, b)
			}
			// The value must also survive inside a variant and an array.
			vb, err := gvariant.Marshal(gvariant.MustType("v"), gvariant.Variant{Type: typ, Value: tc.val})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := gvariant.Unmarshal(gvariant.MustType("v"), vb); err != nil {
				t.Errorf("as variant %x: %v", vb, err)
			}
			at := gvariant.MustType("a" + tc.sig)
			var arr any = []any{tc.val, tc.val}
			if tc.sig == "y" { // ay is a []byte
				arr = []byte{tc.val.(uint8), tc.val.(uint8)}
			}
			ab, err := gvariant.Marshal(at, arr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := gvariant.Unmarshal(at, ab); err != nil {
				t.Errorf("as array %x: %v", ab, err)
			}
		})
	}
}

func TestMarshalTypeMismatch(t *testing.T) {
	cases := []struct {
		sig string
		val any
	}{
		{"y", 1},
		{"u", int32(1)},
		{"b", uint8(1)},
		{"s", []byte("x")},
		{"s", "a\x00b"},
		{"s", "\xff"},
		{"o", "not/a/path"},
		{"o", "/trailing/"},
		{"o", "/a//b"},
		{"o", "/a-b"},
		{"g", "("},
		{"g", "{sv"},
		{"v", uint8(1)},
		{"v", gvariant.Variant{}},
		{"v", gvariant.Variant{Type: gvariant.MustType("u"), Value: "x"}},
		{"ay", []any{uint8(1)}},
		{"as", []string{"x"}},
		{"(ss)", []any{"a"}},
		{"(ss)", []any{"a", "b", "c"}},
		{"{sv}", []any{"a", gvariant.NewVariant("y", uint8(1))}},
		{"my", uint8(1)},
		{"my", gvariant.Maybe{Valid: true, Value: "x"}},
		{"a{sv}", []any{gvariant.DictEntry{Key: "a", Value: "b"}}},
	}
	for _, tc := range cases {
		if b, err := gvariant.Marshal(gvariant.MustType(tc.sig), tc.val); err == nil {
			t.Errorf("Marshal(%q, %#v) = %x, want an error", tc.sig, tc.val, b)
		}
	}
}

// ---------------------------------------------------------------------------
// The worked examples of ostree-format.md §1.6 and the real objects

func TestWorkedExamples(t *testing.T) {
	vecs := loadVectors(t)

	// Dirmeta of every directory of tree A: 12 bytes.
	dirmeta := vectorByPrefix(t, vecs, "objects/44/6a0ef1")
	want := unhex(t, "00000000 00000000 000041ed")
	if !bytes.Equal(dirmeta, want) {
		t.Fatalf("dirmeta vector = %x", dirmeta)
	}
	b := gvariant.MustMarshal(gvariant.MustType("(uuua(ayay))"), []any{uint32(0), uint32(0), be32(0o40755), []any{}})
	if !bytes.Equal(b, want) {
		t.Errorf("dirmeta = %x, want %x", b, want)
	}

	// Dirtree of /sub/deeper: 73 bytes.
	deeper := vectorByPrefix(t, vecs, "objects/14/b99b25")
	if len(deeper) != 73 {
		t.Fatalf("deeper dirtree is %d bytes", len(deeper))
	}
	B := unhexS("d35b286e2bb3f11c0c8ae7d5ac7e1ca3b79e653e904031984111963ab0d3ace4")
	a := unhexS("e000a47a36168c51fe11770372f3f0f4edacb46eb349d9be2aae027ea0a045f8")
	want = unhex(t, "4200"+hex.EncodeToString(B)+"02"+"6100"+hex.EncodeToString(a)+"02"+"2346"+"48")
	if !bytes.Equal(deeper, want) {
		t.Fatalf("deeper vector = %x\nwant %x", deeper, want)
	}
	dt := gvariant.MustType("(a(say)a(sayay))")
	val := []any{[]any{[]any{"B", B}, []any{"a", a}}, []any{}}
	if b := gvariant.MustMarshal(dt, val); !bytes.Equal(b, want) {
		t.Errorf("deeper dirtree = %x\nwant %x", b, want)
	}
	got, err := gvariant.Unmarshal(dt, deeper)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normalize(got), normalize(val)) {
		t.Errorf("decoded deeper dirtree = %#v", got)
	}

	// Empty dirtree: the single byte 00.
	if b := gvariant.MustMarshal(dt, []any{[]any{}, []any{}}); !bytes.Equal(b, []byte{0}) {
		t.Errorf("empty dirtree = %x", b)
	}
	if e := vectorByPrefix(t, vecs, "objects/6e/340b9c"); !bytes.Equal(e, []byte{0}) {
		t.Errorf("empty dirtree vector = %x", e)
	}
}

// TestVectorObjects decodes and re-encodes every metadata object and
// archive header in the vectors with its GVariant type.
func TestVectorObjects(t *testing.T) {
	vecs := loadVectors(t)
	types := map[string]string{
		".commit":  "(a{sv}aya(say)sstayay)",
		".dirtree": "(a(say)a(sayay))",
		".dirmeta": "(uuua(ayay))",
		".filez":   "(tuuuusa(ayay))",
	}
	n := 0
	for name, data := range vecs {
		var sig string
		switch {
		case strings.HasPrefix(name, "summary"):
			sig = "(a(s(taya{sv}))a{sv})"
		case strings.HasPrefix(name, "delta-indexes/"):
			sig = "a{sv}"
		default:
			sig = types[name[strings.LastIndexByte(name, '.'):]]
		}
		if sig == "" {
			t.Fatalf("no type for %s", name)
		}
		if sig == "(tuuuusa(ayay))" {
			hl := int(data[0])<<24 | int(data[1])<<16 | int(data[2])<<8 | int(data[3])
			data = data[8 : 8+hl]
		}
		typ := gvariant.MustType(sig)
		v, err := gvariant.Unmarshal(typ, data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if b, err := gvariant.Marshal(typ, v); err != nil || !bytes.Equal(b, data) {
			t.Errorf("%s: re-encoding = %x, %v\nwant %x", name, b, err, data)
		}
		n++
	}
	if n < 20 {
		t.Errorf("only %d vector objects", n)
	}
}

// ---------------------------------------------------------------------------
// Framing-offset width transitions

func offsetAt(b []byte, w int) int {
	o := 0
	for i := w - 1; i >= 0; i-- {
		o = o<<8 | int(b[len(b)-w+i])
	}
	return o
}

func TestOffsetWidth(t *testing.T) {
	str := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name  string
		sig   string
		val   any
		size  int // total serialised size
		width int // framing-offset width
		last  int // value of the last offset in the table
	}{
		// as with one string of L bytes: body L+1, one offset.
		{"as 255", "as", []any{str(253)}, 255, 1, 254},
		{"as 257", "as", []any{str(254)}, 257, 2, 255},
		{"as 65535", "as", []any{str(65532)}, 65535, 2, 65533},
		{"as 65538", "as", []any{str(65533)}, 65538, 4, 65534},
		// (ss): one offset (end of the first string), stored last.
		{"(ss) 255", "(ss)", []any{str(100), str(152)}, 255, 1, 101},
		{"(ss) 257", "(ss)", []any{str(100), str(153)}, 257, 2, 101},
		{"(ss) 65535", "(ss)", []any{str(30000), str(35531)}, 65535, 2, 30001},
		{"(ss) 65538", "(ss)", []any{str(30000), str(35532)}, 65538, 4, 30001},
		// aay with n one-byte elements: body n, n offsets.
		{"aay 254", "aay", repeatAny(127, []byte{1}), 254, 1, 127},
		{"aay 384", "aay", repeatAny(128, []byte{1}), 384, 2, 128},
		// a(say) of dirtree-like entries of 35 bytes each (2 + 32 + 1 offset).
		{"a(say) 7", "a(say)", repeatAny(7, []any{"f", sum32(1)}), 7*35 + 7, 1, 245},
		{"a(say) 8", "a(say)", repeatAny(8, []any{"f", sum32(1)}), 8*35 + 16, 2, 280},
		// a{sv}: entry = key "ab\0", padding to 8, variant (L bytes + "\0ay"),
		// one offset: L+12 bytes; the array adds one offset.
		{"a{sv} 255", "a{sv}", []any{gvariant.DictEntry{Key: "ab", Value: gvariant.NewVariant("ay", seq(242, 7))}}, 255, 1, 254},
		{"a{sv} 257", "a{sv}", []any{gvariant.DictEntry{Key: "ab", Value: gvariant.NewVariant("ay", seq(243, 7))}}, 257, 2, 255},
		// Here the entry itself needs 2-byte offsets (257 bytes).
		{"a{sv} 259", "a{sv}", []any{gvariant.DictEntry{Key: "ab", Value: gvariant.NewVariant("ay", seq(244, 7))}}, 259, 2, 257},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			typ := gvariant.MustType(tc.sig)
			b, err := gvariant.Marshal(typ, tc.val)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != tc.size {
				t.Fatalf("size %d, want %d", len(b), tc.size)
			}
			if got := offsetAt(b, tc.width); got != tc.last {
				t.Errorf("last offset (width %d) = %d, want %d", tc.width, got, tc.last)
			}
			v, err := gvariant.Unmarshal(typ, b)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(normalize(v), normalize(tc.val)) {
				t.Errorf("value differs after round trip")
			}
		})
	}
}

func repeatAny(n int, v any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// reframe rewrites the framing-offset table of a serialised array of
// variable-size elements (offsets in element order) with width w.
func reframe(body []byte, ends []int, w int) []byte {
	out := append([]byte(nil), body...)
	for _, e := range ends {
		for i := 0; i < w; i++ {
			out = append(out, byte(e>>(8*i)))
		}
	}
	return out
}

// TestOffsetWidthNotMinimal checks that the same value framed with a wider
// (or too narrow) offset width than the minimal one is refused.
func TestOffsetWidthNotMinimal(t *testing.T) {
	as := gvariant.MustType("as")
	for _, tc := range []struct {
		name string
		l    int // string length
		w    int // framing width to try
	}{
		{"small with width 2", 1, 2},
		{"small with width 4", 1, 4},
		{"small with width 8", 1, 8},
		{"253 with width 2", 253, 2},
		{"254 with width 1", 254, 1},
		{"254 with width 4", 254, 4},
		{"65532 with width 4", 65532, 4},
		{"65533 with width 2", 65533, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := append([]byte(strings.Repeat("x", tc.l)), 0)
			b := reframe(body, []int{len(body)}, tc.w)
			if _, err := gvariant.Unmarshal(as, b); !errors.Is(err, gvariant.ErrNotNormal) {
				t.Errorf("Unmarshal = %v, want ErrNotNormal", err)
			}
		})
	}
	// And tuples: (ss) ("a", "b") with a 2-byte offset.
	if _, err := gvariant.Unmarshal(gvariant.MustType("(ss)"), unhex(t, "6100 6200 0200")); !errors.Is(err, gvariant.ErrNotNormal) {
		t.Errorf("(ss) with width 2: %v", err)
	}
}

// ---------------------------------------------------------------------------
// Non-normal input

func TestUnmarshalNotNormal(t *testing.T) {
	vecs := loadVectors(t)
	commitA := vectorByPrefix(t, vecs, "objects/51/005217")
	deeper := vectorByPrefix(t, vecs, "objects/14/b99b25")
	xdirmeta := vectorByPrefix(t, vecs, "objects/8f/deb13a")
	summary := vectorByPrefix(t, vecs, "summary of the archive repo")
	mut := func(b []byte, i int, v byte) []byte {
		c := append([]byte(nil), b...)
		if i < 0 {
			i += len(c)
		}
		c[i] = v
		return c
	}
	cases := []struct {
		name string
		sig  string
		data []byte
	}{
		// Padding.
		{"non-zero padding in fixed tuple", "(yu)", unhex(t, "01 010000 02000000")},
		{"non-zero trailing padding of fixed tuple", "(uy)", unhex(t, "02000000 01 000100")},
		{"non-zero padding before t", "(ty)", unhex(t, "0100000000000000 02 00000000000001")},
		{"non-zero padding between array elements", "a(us)", unhex(t, "01000000 6100 0001 02000000 6200 06 0e")},
		{"non-zero padding before variant", "(yv)", unhex(t, "01 00000000000001 02 00 79")},
		{"non-zero padding in dict entry", "a{sv}", unhex(t, "6100 000000000100 62000073 02 0d")},
		{"non-zero padding in commit", "(a{sv}aya(say)sstayay)", mut(commitA, 0x17, 1)},
		// Trailing bytes.
		{"trailing byte after fixed value", "u", unhex(t, "0100000000")},
		{"trailing byte after last fixed member", "(sy)", unhex(t, "6100 05 00 02")},
		{"trailing byte after dirtree", "(a(say)a(sayay))", append(append([]byte(nil), deeper...), 0)},
		{"trailing byte after commit", "(a{sv}aya(say)sstayay)", append(append([]byte(nil), commitA...), 0)},
		{"trailing zero after empty dirtree", "(a(say)a(sayay))", unhex(t, "0000")},
		{"bytes after fixed array", "au", unhex(t, "01000000 02")},
		{"trailing zero after string", "s", unhex(t, "6100 00")},
		{"trailing bytes after summary", "(a(s(taya{sv}))a{sv})", append(append([]byte(nil), summary...), 0, 0)},
		// Framing offsets.
		{"array offset beyond end", "as", unhex(t, "6100 09")},
		{"array offset zero", "as", unhex(t, "6100 00")},
		{"array offsets backwards", "aay", unhex(t, "01 02 03 | 02 01 03")},
		{"array offset into table", "aay", unhex(t, "01 02 | 03 02")},
		{"array offset table not a multiple", "aay", unhex(t, "01 02 | 01 02 01")},
		{"tuple offset beyond end", "(ss)", unhex(t, "6100 6200 09")},
		{"tuple offsets backwards", "(ayayay)", unhex(t, "01 02 03 | 01 02")},
		{"tuple offset into table", "(ayay)", unhex(t, "01 02 | 03")},
		{"tuple offset table overlaps data", "(sss)", unhex(t, "00")},
		{"dirtree outer offset into table", "(a(say)a(sayay))", mut(deeper, -1, 0x49)},
		{"dirtree inner offset into table", "(a(say)a(sayay))", mut(deeper, -3, 0x47)},
		{"dirtree inner offsets backwards", "(a(say)a(sayay))", mut(mut(deeper, -3, 0x46), -2, 0x23)},
		{"dirtree inner offset beyond", "(a(say)a(sayay))", mut(deeper, -2, 0x50)},
		{"dirtree element string offset", "(a(say)a(sayay))", mut(deeper, 34, 0x03)},
		{"commit offset beyond", "(a{sv}aya(say)sstayay)", mut(commitA, -6, 0x70)},
		{"dirmeta xattr offset", "(uuua(ayay))", mut(xdirmeta, -1, 0x0c)},
		{"dirmeta xattr name offset", "(uuua(ayay))", mut(xdirmeta, -2, 0x0b)},
		{"empty container with offset width 2", "(ss)", unhex(t, "0000 0000")},
		{"array of 2-byte offsets when 1 would do", "as", unhex(t, "6100 0200")},
		// Fixed sizes.
		{"fixed array not a multiple", "au", unhex(t, "0100000002")},
		{"fixed tuple array not a multiple", "a(uy)", unhex(t, "01000000 02 000000 01000000")},
		{"u too short", "u", unhex(t, "010000")},
		{"t too long", "t", unhex(t, "000000000000000000")},
		{"y empty", "y", nil},
		{"fixed tuple too short", "(uuu)", unhex(t, "00000000 00000000 000000")},
		{"unit empty", "()", nil},
		{"unit too long", "()", unhex(t, "0000")},
		{"unit not zero", "()", unhex(t, "01")},
		{"dirmeta too short", "(uuua(ayay))", unhex(t, "00000000 00000000 0000")},
		{"fixed tuple one byte", "(ty)", unhex(t, "01")},
		// Strings.
		{"string without NUL", "s", []byte("abc")},
		{"empty string data", "s", nil},
		{"string embedded NUL", "s", unhex(t, "6100 6200")},
		{"string invalid UTF-8", "s", unhex(t, "ff00")},
		{"string overlong UTF-8", "s", unhex(t, "c080 00")},
		{"string surrogate", "s", unhex(t, "eda080 00")},
		{"string truncated UTF-8", "s", unhex(t, "e282 00")},
		{"object path invalid", "o", []byte("foo\x00")},
		{"object path trailing slash", "o", []byte("/a/\x00")},
		{"signature invalid", "g", []byte("(\x00")},
		{"signature incomplete", "g", []byte("a\x00")},
		{"dirtree name invalid UTF-8", "(a(say)a(sayay))", mut(deeper, 0, 0xff)},
		{"dirtree name embedded NUL", "(a(say)a(sayay))", mut(deeper, 0, 0x00)},
		// Booleans.
		{"bool 2", "b", unhex(t, "02")},
		{"bool ff", "b", unhex(t, "ff")},
		{"bool array", "ab", unhex(t, "00 01 02")},
		// Variants.
		{"variant empty", "v", nil},
		{"variant no separator", "v", unhex(t, "05")},
		{"variant empty type", "v", unhex(t, "05 00")},
		{"variant invalid type", "v", unhex(t, "05 00 7a")},
		{"variant two types", "v", unhex(t, "05 00 7979")},
		{"variant incomplete type", "v", unhex(t, "00 61")},
		{"variant type unterminated tuple", "v", unhex(t, "00 28")},
		{"variant type does not fit data", "v", unhex(t, "05 00 75")},
		{"variant type with space", "v", unhex(t, "05 00 2079")},
		{"variant bad child", "v", unhex(t, "02 00 62")},
		{"variant in dict with bad type", "a{sv}", unhex(t, "6100 000000000000 620000 7a 02 0d")},
		// Maybe.
		{"maybe fixed too long", "my", unhex(t, "0505")},
		{"maybe fixed too short", "mu", unhex(t, "050000")},
		{"maybe variable no trailing zero", "ms", unhex(t, "6100 01")},
		{"maybe variable only the string", "ms", unhex(t, "6100")},
		{"maybe fixed tuple wrong size", "m(uy)", unhex(t, "01000000 02")},
		{"maybe in array bad", "amy", unhex(t, "0505 02")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := gvariant.Unmarshal(gvariant.MustType(tc.sig), tc.data)
			if err == nil {
				t.Fatalf("Unmarshal(%q, %x) = %#v, want an error", tc.sig, tc.data, v)
			}
			if !errors.Is(err, gvariant.ErrNotNormal) {
				t.Errorf("error %v does not wrap ErrNotNormal", err)
			}
		})
	}
}

// TestUnmarshalErrorMessages checks that errors caught while decoding say
// what is wrong.
func TestUnmarshalErrorMessages(t *testing.T) {
	cases := []struct {
		sig  string
		data string
		want string
	}{
		{"b", "02", "boolean"},
		{"s", "616263", "NUL"},
		{"s", "ff00", "UTF-8"},
		{"s", "610062 00", "NUL"},
		{"u", "0100", "fixed-size"},
		{"au", "010000", "multiple"},
		{"v", "05", "type string"},
		{"v", "0500 7a", "type string"},
		{"ms", "6101", "trailing zero"},
		{"as", "6100 09", "offset"},
		{"()", "01", "unit"},
	}
	for _, tc := range cases {
		_, err := gvariant.Unmarshal(gvariant.MustType(tc.sig), unhex(t, tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Unmarshal(%q, %s) = %v, want an error mentioning %q", tc.sig, tc.data, err, tc.want)
		}
	}
}

// TestUnmarshalDeepNesting makes sure deeply nested variants are refused
// rather than overflowing the stack.
func TestUnmarshalDeepNesting(t *testing.T) {
	v := gvariant.NewVariant("y", uint8(1))
	for i := 0; i < 200; i++ {
		v = gvariant.Variant{Type: gvariant.MustType("v"), Value: v}
	}
	b, err := gvariant.Marshal(gvariant.MustType("v"), v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gvariant.Unmarshal(gvariant.MustType("v"), b); !errors.Is(err, gvariant.ErrNotNormal) {
		t.Errorf("200 nested variants: %v", err)
	}
	// 100 levels are fine.
	v = gvariant.NewVariant("y", uint8(1))
	for i := 0; i < 100; i++ {
		v = gvariant.Variant{Type: gvariant.MustType("v"), Value: v}
	}
	b = gvariant.MustMarshal(gvariant.MustType("v"), v)
	if _, err := gvariant.Unmarshal(gvariant.MustType("v"), b); err != nil {
		t.Errorf("100 nested variants: %v", err)
	}
}

// TestUnmarshalAliases documents that byte arrays alias the input.
func TestUnmarshalAliases(t *testing.T) {
	data := []byte{1, 2, 3}
	v, err := gvariant.Unmarshal(gvariant.MustType("ay"), data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.([]byte), data) {
		t.Errorf("got %x", v)
	}
}

// ---------------------------------------------------------------------------
// ParseType

func TestParseType(t *testing.T) {
	valid := []struct {
		sig   string
		size  int // 0 = variable
		align int
		kind  byte
	}{
		{"y", 1, 1, 'y'}, {"b", 1, 1, 'b'}, {"n", 2, 2, 'n'}, {"q", 2, 2, 'q'},
		{"i", 4, 4, 'i'}, {"u", 4, 4, 'u'}, {"h", 4, 4, 'h'},
		{"x", 8, 8, 'x'}, {"t", 8, 8, 't'}, {"d", 8, 8, 'd'},
		{"s", 0, 1, 's'}, {"o", 0, 1, 'o'}, {"g", 0, 1, 'g'}, {"v", 0, 8, 'v'},
		{"ay", 0, 1, 'a'}, {"au", 0, 4, 'a'}, {"at", 0, 8, 'a'}, {"as", 0, 1, 'a'},
		{"my", 0, 1, 'm'}, {"mt", 0, 8, 'm'}, {"ms", 0, 1, 'm'}, {"mmy", 0, 1, 'm'},
		{"()", 1, 1, '('}, {"(())", 1, 1, '('}, {"(y())", 2, 1, '('},
		{"(uuu)", 12, 4, '('}, {"(yu)", 8, 4, '('}, {"(uy)", 8, 4, '('},
		{"(ty)", 16, 8, '('}, {"(yt)", 16, 8, '('}, {"(yyy)", 3, 1, '('}, {"(qy)", 4, 2, '('},
		{"(sy)", 0, 1, '('}, {"(yv)", 0, 8, '('},
		{"{yy}", 2, 1, '{'}, {"{sv}", 0, 8, '{'}, {"{ys}", 0, 1, '{'}, {"{ut}", 16, 8, '{'},
		{"a{sv}", 0, 8, 'a'}, {"a(say)", 0, 1, 'a'}, {"a(sayay)", 0, 1, 'a'}, {"a(ayay)", 0, 1, 'a'},
		{"(uuua(ayay))", 0, 4, '('}, {"(uuuusa(ayay))", 0, 4, '('}, {"(tuuuusa(ayay))", 0, 8, '('},
		{"(a(say)a(sayay))", 0, 1, '('}, {"(a{sv}aya(say)sstayay)", 0, 8, '('},
		{"(a(s(taya{sv}))a{sv})", 0, 8, '('}, {"a(uayttay)", 0, 8, 'a'},
		{"(a{sv}tayay(a{sv}aya(say)sstayay)aya(uayttay)a(yaytt))", 0, 8, '('},
		{"a{s(ss)}", 0, 1, 'a'}, {"m(ss)", 0, 1, 'm'}, {"a{oa{sv}}", 0, 8, 'a'},
	}
	for _, tc := range valid {
		typ, err := gvariant.ParseType(tc.sig)
		if err != nil {
			t.Errorf("ParseType(%q): %v", tc.sig, err)
			continue
		}
		if typ.String() != tc.sig {
			t.Errorf("ParseType(%q).String() = %q", tc.sig, typ.String())
		}
		if typ.Kind() != tc.kind {
			t.Errorf("%q: Kind = %c, want %c", tc.sig, typ.Kind(), tc.kind)
		}
		size, fixed := typ.FixedSize()
		if size != tc.size || fixed != (tc.size > 0) {
			t.Errorf("%q: FixedSize = %d, %v; want %d", tc.sig, size, fixed, tc.size)
		}
		if typ.Alignment() != tc.align {
			t.Errorf("%q: Alignment = %d, want %d", tc.sig, typ.Alignment(), tc.align)
		}
		if again := gvariant.MustType(tc.sig); again.String() != tc.sig {
			t.Errorf("MustType(%q) = %q", tc.sig, again)
		}
	}

	// Members and elements.
	c := gvariant.MustType("(a{sv}aya(say)sstayay)")
	var got []string
	for _, f := range c.Fields() {
		got = append(got, f.String())
	}
	if want := []string{"a{sv}", "ay", "a(say)", "s", "s", "t", "ay", "ay"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Fields = %q", got)
	}
	if e := c.Fields()[0].Elem(); e.String() != "{sv}" || e.Fields()[0].String() != "s" || e.Fields()[1].String() != "v" {
		t.Errorf("a{sv} element = %v", e)
	}
	if e := gvariant.MustType("mas").Elem(); e.String() != "as" || e.Elem().String() != "s" {
		t.Errorf("mas element = %v", e)
	}

	invalid := []string{
		"", "a", "m", "(", "((", "(s", "(ss", ")", "(s))", "{sv", "{vs}", "{s}", "{}", "{svv}", "{ayy}", "{(y)y}",
		"{msy}", "{{yy}y}", "{sv}}", "x y", " y", "y ", "z", "A", "yy", "ss", "as)", "a{sv}s", "}", "aaa",
		"\x00", "s\x00", "r", "e", "?", "*", "mmm", strings.Repeat("a", 100) + "y", strings.Repeat("(", 100) + strings.Repeat(")", 100),
	}
	for _, sig := range invalid {
		if typ, err := gvariant.ParseType(sig); err == nil {
			t.Errorf("ParseType(%q) = %v, want an error", sig, typ)
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("MustType(\"(\") did not panic")
			}
		}()
		gvariant.MustType("(")
	}()
}
