package glance

import "testing"

// FuzzParseSource: ostree_repo values never panic the parser, and an
// accepted one survives a round trip through String.
func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"swift://repo", "swift://repo/os/x86_64/", "https://example.org/repo/", "http://127.0.0.1:8080/v1/AUTH_x/c/", "swift://", "swift://c//d", "ftp://x", "", "swift://a/../b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		src, err := ParseSource(s)
		if err != nil {
			return
		}
		again, err := ParseSource(src.String())
		if err != nil || again != src {
			t.Fatalf("ParseSource(%q) = %+v, but its String %q parses to %+v, %v", s, src, src.String(), again, err)
		}
	})
}

// FuzzRangeStart: Content-Range values never panic, and a parsed start
// is not negative.
func FuzzRangeStart(f *testing.F) {
	for _, s := range []string{"bytes 100-199/200", "bytes 0-0/1", "bytes */200", "bytes -1-2/3", "", "items 1-2/3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := rangeStart(s); ok && n < 0 {
			t.Fatalf("rangeStart(%q) = %d", s, n)
		}
	})
}
