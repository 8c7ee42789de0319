package heatmeta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Source is one place metadata comes from (os-collect-config's
// "collector"). Fetch returns the current documents, ErrNotModified when
// nothing changed since this value's previous successful Fetch, or an
// error (see IsRetryable; ErrNotConfigured for missing settings).
type Source interface {
	Fetch(ctx context.Context) (Metadata, error)
}

// Metadata is what one Fetch returned: one document for most sources,
// one per file for "local".
type Metadata struct {
	Docs []Doc
}

// Doc is one metadata document, a JSON object.
type Doc struct {
	// Key names the document in the cache and in merges: the source name
	// ("heat", "request", "heat_local", ...), or "local/<file name>".
	Key string
	// Raw is the document, always a JSON object.
	Raw json.RawMessage
}

// maxDocBytes bounds one metadata document (Heat's own limit on a JSON
// body is 1 MiB; metadata with many deployments can be bigger, so allow
// some room).
const maxDocBytes = 16 << 20

// parseObject checks that b is one JSON object and returns it compacted.
func parseObject(b []byte) (json.RawMessage, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field == "" {
			return nil, fmt.Errorf("metadata is a JSON %s, not an object", ute.Value)
		}
		return nil, fmt.Errorf("metadata is not valid JSON: %w", err)
	}
	if m == nil {
		return nil, errors.New("metadata is JSON null, not an object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("metadata is not valid JSON: data after the top-level object")
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, fmt.Errorf("metadata is not valid JSON: %w", err)
	}
	return out.Bytes(), nil
}

// readLimited reads at most maxDocBytes from r.
func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxDocBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDocBytes {
		return nil, fmt.Errorf("metadata larger than %d bytes", maxDocBytes)
	}
	return b, nil
}

// decodeAny decodes JSON keeping numbers exact.
func decodeAny(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// Merge deep-merges documents in order, as os-apply-config merges
// os-collect-config's files: objects are merged key by key, anything else
// (lists included) is replaced by the later value. So the last document
// that has a "deployments" list supplies the whole list, and a "local"
// file can override single settings of a remote document.
func Merge(docs []Doc) (json.RawMessage, error) {
	merged := map[string]any{}
	for _, d := range docs {
		v, err := decodeAny(d.Raw)
		if err != nil {
			return nil, fmt.Errorf("document %s: %w", d.Key, err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("document %s is not a JSON object", d.Key)
		}
		deepMerge(merged, m)
	}
	return marshalJSON(merged)
}

func deepMerge(dst, src map[string]any) {
	for k, sv := range src {
		sm, sIsMap := sv.(map[string]any)
		dm, dIsMap := dst[k].(map[string]any)
		if sIsMap && dIsMap {
			deepMerge(dm, sm)
			continue
		}
		if sIsMap {
			cp := map[string]any{}
			deepMerge(cp, sm)
			dst[k] = cp
			continue
		}
		dst[k] = sv
	}
}

// marshalJSON encodes without HTML escaping.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// jsonEqual compares two JSON texts as values (key order and spacing do
// not matter), as os-collect-config compares parsed documents.
func jsonEqual(a, b []byte) bool {
	va, err := decodeAny(a)
	if err != nil {
		return false
	}
	vb, err := decodeAny(b)
	if err != nil {
		return false
	}
	return valueEqual(va, vb)
}

func valueEqual(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !valueEqual(xv, yv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !valueEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		if xi, err := x.Int64(); err == nil {
			if yi, err := y.Int64(); err == nil {
				return xi == yi
			}
		}
		xf, err1 := x.Float64()
		yf, err2 := y.Float64()
		return err1 == nil && err2 == nil && xf == yf
	default:
		return a == b
	}
}
