package keyfile

import (
	"strings"
	"testing"
)

func TestParseAndRewrite(t *testing.T) {
	in := "# top comment\n[core]\nrepo_version=1\nmode=archive-z2\n\n[remote \"origin\"]\nurl=http://127.0.0.1/repo\ngpg-verify=false\n"
	f, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if v := f.Get("core", "mode", ""); v != "archive-z2" {
		t.Errorf("mode = %q", v)
	}
	if b, err := f.Bool(`remote "origin"`, "gpg-verify", true); err != nil || b {
		t.Errorf("gpg-verify = %v %v", b, err)
	}
	if got := string(f.Bytes()); got != in {
		t.Errorf("rewrite changed the file:\n%s", got)
	}
	f.Set("core", "fsync", "false")
	f.Set("new", "k", " leading space and\nnewline")
	g, err := Parse(f.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := g.String("new", "k"); v != " leading space and\nnewline" {
		t.Errorf("escaped round trip = %q", v)
	}
	if strings.Join(g.Keys("core"), ",") != "repo_version,mode,fsync" {
		t.Errorf("keys = %v", g.Keys("core"))
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"k=v\n", "[core\n", "[a]\nnovalue\n", "[a]\n=v\n", "[a]\n[a]\n"} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestList(t *testing.T) {
	f := New()
	f.SetList("g", "l", []string{"a", "b;c"})
	if got := f.List("g", "l"); len(got) != 2 || got[0] != "a" {
		t.Errorf("list = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[core]\nrepo_version=1\nmode=bare\n"))
	f.Add([]byte("# c\n[origin]\nrefspec=os:main\n[libostree-transient]\npinned=true\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := Parse(data)
		if err != nil {
			return
		}
		again, err := Parse(kf.Bytes())
		if err != nil {
			t.Fatalf("re-parse of serialised file failed: %v", err)
		}
		for _, g := range kf.Groups() {
			for _, k := range kf.Keys(g) {
				a, _ := kf.Raw(g, k)
				b, _ := again.Raw(g, k)
				if a != b {
					t.Fatalf("[%s] %s: %q became %q", g, k, a, b)
				}
			}
		}
	})
}
