package swift

import (
	"strings"
	"testing"
)

// FuzzParseInfo: /info answers never panic the parser, and what it
// accepts has usable limits.
func FuzzParseInfo(f *testing.F) {
	f.Add(`{"swift": {"max_file_size": 5368709122, "max_object_name_length": 1024, "container_listing_limit": 10000}, "tempurl": {"allowed_digests": ["sha256", "sha512"]}, "staticweb": {}, "bulk_delete": {"max_deletes_per_request": 10000}}`)
	f.Add(`{"swift": {}}`)
	f.Add(`{"tempurl": {}}`)
	f.Add(`{"swift": {"max_file_size": -1}}`)
	f.Add(`[]`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, s string) {
		l, err := parseInfo(strings.NewReader(s))
		if err != nil {
			return
		}
		if l.MaxFileSize <= 0 || l.MaxObjectNameLength <= 0 || l.ContainerListingLimit <= 0 {
			t.Fatalf("accepted %q with limits %+v", s, l)
		}
	})
}

// FuzzPrefix: a prefix is either refused or made of clean path elements
// ending in "/".
func FuzzPrefix(f *testing.F) {
	for _, s := range []string{"", "repo", "/repo/", "a/b/c/", "a//b", "../x", "a/./b", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := cleanPrefix(s)
		if err != nil || p == "" {
			return
		}
		if !strings.HasSuffix(p, "/") || strings.HasPrefix(p, "/") || strings.Contains(p, "//") {
			t.Fatalf("cleanPrefix(%q) = %q", s, p)
		}
		for _, el := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
			if el == "." || el == ".." {
				t.Fatalf("cleanPrefix(%q) = %q", s, p)
			}
		}
	})
}
