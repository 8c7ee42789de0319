// Package gvariant implements the GVariant serialisation format used by
// OSTree for every metadata object (commits, dirtrees, dirmeta, file
// headers, summaries, static-delta superblocks and detached metadata).
//
// Only serialised data in normal form is produced, and Unmarshal rejects
// anything that is not in normal form: a value is accepted exactly when
// re-serialising it gives back the same bytes. GVariant carries no type
// information in the data, so the caller always supplies the Type.
//
// Go representation of values, by type code:
//
//	y uint8      b bool       n int16     q uint16
//	i int32      u uint32     x int64     t uint64
//	h int32      d float64    s o g string
//	v Variant    ay []byte    a<T> []any  m<T> Maybe
//	(...) []any  {KV} DictEntry
//
// Integers are written in little-endian order, as every real producer of
// OSTree data does. OSTree stores some fields big-endian by swapping them
// before serialisation; that is the business of package ostree, not this one.
package gvariant
