package sysroot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// BootEntry is a Boot Loader Specification entry: "key value" lines in
// file order.
type BootEntry struct {
	FileName string
	Keys     []string
	Values   []string
	// TriesLeft and TriesDone are systemd boot-assessment counters from
	// the file name (ostree-N-OS+LEFT[-DONE].conf); TriesLeft < 0 means
	// no counter.
	TriesLeft, TriesDone int
}

var counterRE = regexp.MustCompile(`\+([0-9]+)(?:-([0-9]+))?\.conf$`)

// ParseBootEntry parses a BLS entry as ostree does: each line is split at
// the first space or tab; lines that do not start with a letter are
// ignored.
func ParseBootEntry(name string, data []byte) (*BootEntry, error) {
	e := &BootEntry{FileName: name, TriesLeft: -1}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || !isLetter(line[0]) {
			continue
		}
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			e.Keys = append(e.Keys, line)
			e.Values = append(e.Values, "")
			continue
		}
		e.Keys = append(e.Keys, line[:i])
		// Surrounding blanks (and a CR of a CRLF file) are not part of a value.
		e.Values = append(e.Values, strings.Trim(line[i+1:], " \t\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("boot entry %s: %w", name, err)
	}
	if m := counterRE.FindStringSubmatch(name); m != nil {
		e.TriesLeft, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			e.TriesDone, _ = strconv.Atoi(m[2])
		}
	}
	return e, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// Get returns the first value of key.
func (e *BootEntry) Get(key string) string {
	for i, k := range e.Keys {
		if k == key {
			return e.Values[i]
		}
	}
	return ""
}

// Set replaces the first value of key or appends it.
func (e *BootEntry) Set(key, value string) {
	for i, k := range e.Keys {
		if k == key {
			e.Values[i] = value
			return
		}
	}
	e.Keys = append(e.Keys, key)
	e.Values = append(e.Values, value)
}

// Bytes serialises the entry in ostree's key order: title, version,
// options, devicetree, linux, initrd (all of them), then the rest in
// their original order.
func (e *BootEntry) Bytes() []byte {
	var b bytes.Buffer
	done := make([]bool, len(e.Keys))
	for _, want := range []string{"title", "version", "options", "devicetree", "linux", "initrd"} {
		for i, k := range e.Keys {
			if k == want && !done[i] {
				fmt.Fprintf(&b, "%s %s\n", k, e.Values[i])
				done[i] = true
			}
		}
	}
	for i, k := range e.Keys {
		if !done[i] {
			fmt.Fprintf(&b, "%s %s\n", k, e.Values[i])
		}
	}
	return b.Bytes()
}

// readEntries loads every ostree-*.conf regular file in dir, sorted as
// ostree orders deployments: by the version key (strverscmp), highest
// first.
func readEntries(dir string) ([]*BootEntry, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*BootEntry
	for _, de := range ents {
		n := de.Name()
		if !strings.HasPrefix(n, "ostree-") || !strings.HasSuffix(n, ".conf") || !de.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		e, err := ParseBootEntry(n, b)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strverscmp(out[i].Get("version"), out[j].Get("version")) > 0
	})
	return out, nil
}

// strverscmp compares version strings like glibc's strverscmp: runs of
// digits compare numerically (leading zeros are fractional parts).
func strverscmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ca, cb := a[i], b[j]
		if isDigit(ca) && isDigit(cb) {
			si, sj := i, j
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na, nb := a[si:i], b[sj:j]
			fa, fb := na[0] == '0', nb[0] == '0'
			if fa || fb {
				// fractional: compare as strings, a longer prefix-equal
				// run is larger only when both are fractional.
				if c := strings.Compare(na, nb); c != 0 {
					if fa && fb {
						return c
					}
					if fa {
						return -1
					}
					return 1
				}
				continue
			}
			na, nb = strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(na) != len(nb) {
				if len(na) < len(nb) {
					return -1
				}
				return 1
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			continue
		}
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
		i++
		j++
	}
	switch {
	case len(a)-i < len(b)-j:
		return -1
	case len(a)-i > len(b)-j:
		return 1
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// splitKargs splits a kernel command line at spaces, keeping quoted
// values together.
func splitKargs(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQuote = !inQuote
			cur.WriteByte(c)
		case (c == ' ' || c == '\t' || c == '\n') && !inQuote:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func kargKey(a string) string {
	k, _, _ := strings.Cut(a, "=")
	return k
}

// kargsReplace sets key=value (or a bare key): the first existing
// argument with that key is replaced and the others removed; otherwise
// the argument is appended.
func kargsReplace(args []string, a string) []string {
	key := kargKey(a)
	out := args[:0:0]
	done := false
	for _, x := range args {
		if kargKey(x) == key {
			if !done {
				out = append(out, a)
				done = true
			}
			continue
		}
		out = append(out, x)
	}
	if !done {
		out = append(out, a)
	}
	return out
}

// kargsDelete removes an exact KEY=VALUE, or every argument with KEY when
// a has no value. It reports whether anything was removed.
func kargsDelete(args []string, a string) ([]string, bool) {
	out := args[:0:0]
	found := false
	for _, x := range args {
		if x == a || (!strings.Contains(a, "=") && kargKey(x) == a) {
			found = true
			continue
		}
		out = append(out, x)
	}
	return out, found
}

// withoutOstree drops the ostree= argument (for comparisons).
func withoutOstree(args []string) []string {
	var out []string
	for _, a := range args {
		if !strings.HasPrefix(a, "ostree=") {
			out = append(out, a)
		}
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
