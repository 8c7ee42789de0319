package ostree

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
)

// vectorObject is one object file from testdata/vectors/*.txt, which were
// produced by ostree 2022.7 (see testdata/vectors/README.md).
type vectorObject struct {
	Path string
	Data []byte
}

var objHeaderRe = regexp.MustCompile(`^(objects/[0-9a-f]{2}/[0-9a-f]{62}\.[a-z]+)\s+size=(\d+)`)

func loadVectorObjects(t testing.TB, file string) []vectorObject {
	t.Helper()
	f, err := os.Open("testdata/vectors/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vectorObject
	var cur *vectorObject
	sc := bufio.NewScanner(f)
	hexLine := regexp.MustCompile(`^[0-9a-f]+$`)
	for sc.Scan() {
		line := sc.Text()
		if m := objHeaderRe.FindStringSubmatch(line); m != nil {
			out = append(out, vectorObject{Path: m[1]})
			cur = &out[len(out)-1]
			continue
		}
		if cur != nil && hexLine.MatchString(line) {
			b, err := hex.DecodeString(line)
			if err != nil {
				t.Fatal(err)
			}
			cur.Data = append(cur.Data, b...)
			continue
		}
		cur = nil
	}
	return out
}

func TestVectorsMetadataRoundTrip(t *testing.T) {
	objs := append(loadVectorObjects(t, "objects-archive.txt"), loadVectorObjects(t, "xattr-vector.txt")...)
	if len(objs) < 10 {
		t.Fatalf("parsed only %d objects", len(objs))
	}
	seen := map[string]int{}
	for _, o := range objs {
		name := strings.TrimPrefix(o.Path, "objects/")
		sum := strings.Replace(name[:strings.IndexByte(name, '.')], "/", "", 1)
		ext := name[strings.IndexByte(name, '.')+1:]
		seen[ext]++
		var again []byte
		switch ext {
		case "commit":
			c, err := DecodeCommit(o.Data)
			if err != nil {
				t.Fatalf("%s: %v", o.Path, err)
			}
			if again, err = c.Encode(); err != nil {
				t.Fatal(err)
			}
		case "dirtree":
			d, err := DecodeDirTree(o.Data)
			if err != nil {
				t.Fatalf("%s: %v", o.Path, err)
			}
			again = d.Encode()
		case "dirmeta":
			d, err := DecodeDirMeta(o.Data)
			if err != nil {
				t.Fatalf("%s: %v", o.Path, err)
			}
			again = d.Encode()
		case "filez":
			fi, content, err := DecodeArchiveObject(o.Data)
			if err != nil {
				t.Fatalf("%s: %v", o.Path, err)
			}
			c, err := ContentChecksum(fi, bytes.NewReader(content))
			if err != nil {
				t.Fatal(err)
			}
			if c.String() != sum {
				t.Errorf("%s: content checksum %s", o.Path, c)
			}
			continue
		default:
			continue
		}
		if !bytes.Equal(again, o.Data) {
			t.Errorf("%s: re-encoding differs:\n got %x\nwant %x", o.Path, again, o.Data)
		}
		if got := SumBytes(o.Data).String(); got != sum {
			t.Errorf("%s: checksum %s", o.Path, got)
		}
	}
	for _, ext := range []string{"commit", "dirtree", "dirmeta", "filez"} {
		if seen[ext] == 0 {
			t.Errorf("no %s objects in the vectors", ext)
		}
	}
}

func TestVectorsCommitA(t *testing.T) {
	var c Commit
	c.Subject, c.Body = "Test subject", "Test body"
	c.Timestamp = 1577836800
	c.RootTree, _ = ParseChecksum("56f76038b1fbf62d140705e19ed8dddf29af1c43dc6e0b425eec7914a9ea62c1")
	c.RootMeta, _ = ParseChecksum("446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488")
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if got := SumBytes(b).String(); got != "51005217f27bcba5bf8fe61d8e9e5c4320be286d68fbac6164262f4a141e70fe" {
		t.Errorf("commit A = %s", got)
	}
	if got := c.ContentChecksum().String(); got != "4e59efc8136e5ed75a67d467ca22392cc6548c611f9a12c9a24babd41d06d280" {
		t.Errorf("content checksum = %s", got)
	}
	if got := SumBytes((&DirTree{}).Encode()).String(); got != "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d" {
		t.Errorf("empty dirtree = %s", got)
	}
}

func TestVectorsContentObjects(t *testing.T) {
	f, err := os.ReadFile("testdata/vectors/content-objects.txt")
	if err != nil {
		t.Fatal(err)
	}
	sections := strings.Split(string(f), "\n### ")[1:]
	if len(sections) < 9 {
		t.Fatalf("found %d sections", len(sections))
	}
	field := func(s, re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("no %q in %q", re, s)
		}
		return m[1]
	}
	for _, s := range sections {
		mode := field(s, `mode=0(\d+)`)
		var fi FileInfo
		for _, ch := range mode {
			fi.Mode = fi.Mode*8 + uint32(ch-'0')
		}
		var content []byte
		if fi.IsSymlink() {
			fi.SymlinkTarget = field(s, `symlink-target='([^']*)'`)
		} else if h := field(s, `content \(\d+ bytes\): (\S+)`); h != "(empty)" {
			content, _ = hex.DecodeString(h)
		}
		fi.Size = int64(len(content))
		wantHeader := field(s, `\):\n([0-9a-f\n]+?)\nchecksum`)
		if got := hex.EncodeToString(fi.FileHeader()); got != strings.ReplaceAll(wantHeader, "\n", "") {
			t.Errorf("%s: header %s want %s", strings.SplitN(s, "\n", 2)[0], got, wantHeader)
		}
		sum, err := ContentChecksum(&fi, bytes.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		if want := field(s, `checksum = [^=]*= ([0-9a-f]{64})`); sum.String() != want {
			t.Errorf("%s: checksum %s want %s", strings.SplitN(s, "\n", 2)[0], sum, want)
		}
		if m := regexp.MustCompile(`user.ostreemeta = ([0-9a-f]+)`).FindStringSubmatch(s); m != nil {
			if hex.EncodeToString(fi.BareUserMeta()) != m[1] {
				t.Errorf("bare-user meta %x want %s", fi.BareUserMeta(), m[1])
			}
		}
	}
}
