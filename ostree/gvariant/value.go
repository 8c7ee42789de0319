package gvariant

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Variant is a value of type 'v': a value together with its own type.
type Variant struct {
	Type  *Type
	Value any
}

// NewVariant returns a Variant of the type given by sig.
func NewVariant(sig string, v any) Variant { return Variant{Type: MustType(sig), Value: v} }

// DictEntry is a value of a dict-entry type {KV}.
type DictEntry struct {
	Key   any
	Value any
}

// Maybe is a value of a maybe type: Valid is false for Nothing.
type Maybe struct {
	Valid bool
	Value any
}

// ErrNotNormal is wrapped by every Unmarshal error caused by data that is
// not GVariant normal form for the requested type.
var ErrNotNormal = errors.New("not normal form")

// Marshal serialises v as type t in normal form.
func Marshal(t *Type, v any) ([]byte, error) {
	return appendValue(nil, t, v)
}

// MustMarshal is Marshal for values built by this program; it panics when
// v does not match t, which is a programming error.
func MustMarshal(t *Type, v any) []byte {
	b, err := Marshal(t, v)
	if err != nil {
		panic(err)
	}
	return b
}

func typeErr(t *Type, v any) error {
	return fmt.Errorf("gvariant: cannot serialise %T as %q", v, t.sig)
}

// appendValue appends the serialisation of v to buf. The value is laid out
// as if buf[start] were offset 0, where start is len(buf) on entry; callers
// guarantee that start is suitably aligned relative to its container.
func appendValue(buf []byte, t *Type, v any) ([]byte, error) {
	switch t.kind {
	case 'y':
		x, ok := v.(uint8)
		if !ok {
			return nil, typeErr(t, v)
		}
		return append(buf, x), nil
	case 'b':
		x, ok := v.(bool)
		if !ok {
			return nil, typeErr(t, v)
		}
		if x {
			return append(buf, 1), nil
		}
		return append(buf, 0), nil
	case 'n':
		x, ok := v.(int16)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint16(buf, uint16(x)), nil
	case 'q':
		x, ok := v.(uint16)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint16(buf, x), nil
	case 'i', 'h':
		x, ok := v.(int32)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint32(buf, uint32(x)), nil
	case 'u':
		x, ok := v.(uint32)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint32(buf, x), nil
	case 'x':
		x, ok := v.(int64)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint64(buf, uint64(x)), nil
	case 't':
		x, ok := v.(uint64)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint64(buf, x), nil
	case 'd':
		x, ok := v.(float64)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint64(buf, math.Float64bits(x)), nil
	case 's', 'o', 'g':
		x, ok := v.(string)
		if !ok {
			return nil, typeErr(t, v)
		}
		if err := checkString(t.kind, x); err != nil {
			return nil, err
		}
		buf = append(buf, x...)
		return append(buf, 0), nil
	case 'v':
		x, ok := v.(Variant)
		if !ok || x.Type == nil {
			return nil, typeErr(t, v)
		}
		buf, err := appendValue(buf, x.Type, x.Value)
		if err != nil {
			return nil, err
		}
		buf = append(buf, 0)
		return append(buf, x.Type.sig...), nil
	case 'm':
		x, ok := v.(Maybe)
		if !ok {
			return nil, typeErr(t, v)
		}
		if !x.Valid {
			return buf, nil
		}
		buf, err := appendValue(buf, t.elem, x.Value)
		if err != nil {
			return nil, err
		}
		if t.elem.size == 0 {
			buf = append(buf, 0)
		}
		return buf, nil
	case 'a':
		return appendArray(buf, t, v)
	case '(':
		x, ok := v.([]any)
		if !ok || len(x) != len(t.fields) {
			return nil, typeErr(t, v)
		}
		return appendTuple(buf, t, x)
	case '{':
		x, ok := v.(DictEntry)
		if !ok {
			return nil, typeErr(t, v)
		}
		return appendTuple(buf, t, []any{x.Key, x.Value})
	}
	return nil, typeErr(t, v)
}

func checkString(kind byte, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("gvariant: string is not valid UTF-8")
	}
	if bytes.IndexByte([]byte(s), 0) >= 0 {
		return fmt.Errorf("gvariant: string contains a NUL byte")
	}
	switch kind {
	case 'o':
		if !isValidObjectPath(s) {
			return fmt.Errorf("gvariant: %q is not a valid object path", s)
		}
	case 'g':
		if !isValidSignature(s) {
			return fmt.Errorf("gvariant: %q is not a valid signature", s)
		}
	}
	return nil
}

func pad(buf []byte, start, align int) []byte {
	for (len(buf)-start)%align != 0 {
		buf = append(buf, 0)
	}
	return buf
}

func appendArray(buf []byte, t *Type, v any) ([]byte, error) {
	if t.elem.kind == 'y' {
		x, ok := v.([]byte)
		if !ok {
			return nil, typeErr(t, v)
		}
		return append(buf, x...), nil
	}
	x, ok := v.([]any)
	if !ok {
		return nil, typeErr(t, v)
	}
	start := len(buf)
	var err error
	if t.elem.size > 0 {
		for _, e := range x {
			if buf, err = appendValue(buf, t.elem, e); err != nil {
				return nil, err
			}
		}
		return buf, nil
	}
	var ends []int
	if len(x) <= 16 {
		var a [16]int
		ends = a[:0]
	}
	for _, e := range x {
		buf = pad(buf, start, t.elem.align)
		if buf, err = appendValue(buf, t.elem, e); err != nil {
			return nil, err
		}
		ends = append(ends, len(buf)-start)
	}
	return appendOffsets(buf, start, ends, false), nil
}

func appendTuple(buf []byte, t *Type, x []any) ([]byte, error) {
	start := len(buf)
	if len(t.fields) == 0 {
		return append(buf, 0), nil
	}
	var a [8]int
	ends := a[:0]
	var err error
	for i, f := range t.fields {
		buf = pad(buf, start, f.align)
		if buf, err = appendValue(buf, f, x[i]); err != nil {
			return nil, err
		}
		if f.size == 0 && i != len(t.fields)-1 {
			ends = append(ends, len(buf)-start)
		}
	}
	if t.size > 0 {
		return pad(buf, start, t.align), nil
	}
	return appendOffsets(buf, start, ends, true), nil
}

// offsetWidth returns the framing-offset width for a container whose total
// serialised size is size.
func offsetWidth(size int) int {
	switch {
	case size == 0:
		return 0
	case size <= 0xff:
		return 1
	case size <= 0xffff:
		return 2
	case uint64(size) <= 0xffffffff:
		return 4
	}
	return 8
}

func appendOffsets(buf []byte, start int, ends []int, reverse bool) []byte {
	if len(ends) == 0 {
		return buf
	}
	body := len(buf) - start
	w := 1
	for ; w < 8; w *= 2 {
		if uint64(body+len(ends)*w) <= uint64(1)<<(8*w)-1 {
			break
		}
	}
	put := func(o int) {
		for i := 0; i < w; i++ {
			buf = append(buf, byte(uint64(o)>>(8*i)))
		}
	}
	if reverse {
		for i := len(ends) - 1; i >= 0; i-- {
			put(ends[i])
		}
	} else {
		for _, o := range ends {
			put(o)
		}
	}
	return buf
}

// Unmarshal parses data as a value of type t. It fails unless data is the
// normal-form serialisation of the value it encodes. Byte arrays in the
// result alias data.
func Unmarshal(t *Type, data []byte) (any, error) {
	v, err := decode(t, data, 0)
	if err != nil {
		return nil, err
	}
	again, err := Marshal(t, v)
	if err != nil || !bytes.Equal(again, data) {
		return nil, fmt.Errorf("gvariant: %q: %w", t.sig, ErrNotNormal)
	}
	return v, nil
}

func notNormal(t *Type, why string) error {
	return fmt.Errorf("gvariant: %q: %s: %w", t.sig, why, ErrNotNormal)
}

const maxDepth = 128

func decode(t *Type, d []byte, depth int) (any, error) {
	if depth > maxDepth {
		return nil, notNormal(t, "nested too deeply")
	}
	if t.size > 0 && len(d) != t.size {
		return nil, notNormal(t, fmt.Sprintf("fixed-size value has %d bytes, want %d", len(d), t.size))
	}
	switch t.kind {
	case 'y':
		return d[0], nil
	case 'b':
		if d[0] > 1 {
			return nil, notNormal(t, "boolean is neither 0 nor 1")
		}
		return d[0] == 1, nil
	case 'n':
		return int16(binary.LittleEndian.Uint16(d)), nil
	case 'q':
		return binary.LittleEndian.Uint16(d), nil
	case 'i', 'h':
		return int32(binary.LittleEndian.Uint32(d)), nil
	case 'u':
		return binary.LittleEndian.Uint32(d), nil
	case 'x':
		return int64(binary.LittleEndian.Uint64(d)), nil
	case 't':
		return binary.LittleEndian.Uint64(d), nil
	case 'd':
		return math.Float64frombits(binary.LittleEndian.Uint64(d)), nil
	case 's', 'o', 'g':
		if len(d) == 0 || d[len(d)-1] != 0 {
			return nil, notNormal(t, "string is not NUL-terminated")
		}
		s := string(d[:len(d)-1])
		if err := checkString(t.kind, s); err != nil {
			return nil, notNormal(t, err.Error())
		}
		return s, nil
	case 'v':
		i := bytes.LastIndexByte(d, 0)
		if i < 0 {
			return nil, notNormal(t, "variant has no type string")
		}
		ct, err := parseType(string(d[i+1:]), false)
		if err != nil {
			return nil, notNormal(t, "variant type string is invalid")
		}
		cv, err := decode(ct, d[:i], depth+1)
		if err != nil {
			return nil, err
		}
		return Variant{Type: ct, Value: cv}, nil
	case 'm':
		if len(d) == 0 {
			return Maybe{}, nil
		}
		if t.elem.size == 0 {
			if d[len(d)-1] != 0 {
				return nil, notNormal(t, "maybe lacks its trailing zero byte")
			}
			d = d[:len(d)-1]
		}
		cv, err := decode(t.elem, d, depth+1)
		if err != nil {
			return nil, err
		}
		return Maybe{Valid: true, Value: cv}, nil
	case 'a':
		return decodeArray(t, d, depth)
	case '(', '{':
		vals, err := decodeTuple(t, d, depth)
		if err != nil {
			return nil, err
		}
		if t.kind == '{' {
			return DictEntry{Key: vals[0], Value: vals[1]}, nil
		}
		return vals, nil
	}
	return nil, notNormal(t, "unknown type")
}

func readOffset(d []byte) int {
	var o uint64
	for i := len(d) - 1; i >= 0; i-- {
		o = o<<8 | uint64(d[i])
	}
	if o > math.MaxInt32*2 { // larger than any slice we would accept
		return -1
	}
	return int(o)
}

func decodeArray(t *Type, d []byte, depth int) (any, error) {
	e := t.elem
	if e.kind == 'y' {
		return d, nil
	}
	if e.size > 0 {
		if len(d)%e.size != 0 {
			return nil, notNormal(t, "array length is not a multiple of the element size")
		}
		out := make([]any, 0, len(d)/e.size)
		for i := 0; i < len(d); i += e.size {
			v, err := decode(e, d[i:i+e.size], depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	if len(d) == 0 {
		return []any{}, nil
	}
	w := offsetWidth(len(d))
	if len(d) < w {
		return nil, notNormal(t, "array shorter than its framing offset")
	}
	last := readOffset(d[len(d)-w:])
	if last < 0 || last > len(d)-w {
		return nil, notNormal(t, "framing offset out of range")
	}
	table := len(d) - last
	if table%w != 0 || table/w == 0 {
		return nil, notNormal(t, "bad framing offset table")
	}
	n := table / w
	out := make([]any, 0, n)
	start := 0
	for i := 0; i < n; i++ {
		end := readOffset(d[last+i*w : last+(i+1)*w])
		start = alignUp(start, e.align)
		if end < 0 || start > end || end > last {
			return nil, notNormal(t, "framing offset out of range")
		}
		v, err := decode(e, d[start:end], depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		start = end
	}
	return out, nil
}

func decodeTuple(t *Type, d []byte, depth int) ([]any, error) {
	if len(t.fields) == 0 {
		if len(d) != 1 || d[0] != 0 {
			return nil, notNormal(t, "unit value is not a single zero byte")
		}
		return []any{}, nil
	}
	w := offsetWidth(len(d))
	tableStart := len(d)
	pos := 0
	out := make([]any, len(t.fields))
	for i, f := range t.fields {
		pos = alignUp(pos, f.align)
		var end int
		switch {
		case f.size > 0:
			end = pos + f.size
		case i == len(t.fields)-1:
			end = tableStart
		default:
			if tableStart-w < pos {
				return nil, notNormal(t, "framing offsets overlap the data")
			}
			tableStart -= w
			end = readOffset(d[tableStart : tableStart+w])
		}
		if end < 0 || pos > end || end > tableStart {
			return nil, notNormal(t, "member extends outside the tuple")
		}
		v, err := decode(f, d[pos:end], depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = v
		pos = end
	}
	return out, nil
}
