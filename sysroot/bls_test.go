package sysroot

import (
	"os"
	"strings"
	"testing"

	"github.com/gostree/gostree/ostree"
)

func TestParseBootEntryRoundTrip(t *testing.T) {
	in := "title TestOS 3 (ostree:0)\nversion 3\noptions root=LABEL=rootfs quiet ostree=/ostree/boot.1/testos/7a4f/0\nlinux /ostree/testos-7a4f/vmlinuz-5.10.0-test\ninitrd /ostree/testos-7a4f/initramfs-5.10.0-test.img\n"
	e, err := ParseBootEntry("ostree-3-testos.conf", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(e.Bytes()); got != in {
		t.Fatalf("round trip:\n%s", got)
	}
	if e.TriesLeft != -1 {
		t.Errorf("no counter expected, got %d", e.TriesLeft)
	}
	// ostree's parser: split at the first space or tab, skip lines not
	// starting with a letter; our writer puts keys in ostree's order.
	e, _ = ParseBootEntry("ostree-2-os+2-1.conf", []byte("# comment\nfoo bar baz\n\tindented x\nlinux\t/k\ntitle T\n"))
	if e.Get("foo") != "bar baz" || e.Get("linux") != "/k" || e.Get("indented") != "" {
		t.Errorf("parsed %v %v", e.Keys, e.Values)
	}
	if e.TriesLeft != 2 || e.TriesDone != 1 {
		t.Errorf("counter %d-%d", e.TriesLeft, e.TriesDone)
	}
	if got := string(e.Bytes()); got != "title T\nlinux /k\nfoo bar baz\n" {
		t.Errorf("order: %q", got)
	}
}

func TestStrverscmp(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1", "2", -1}, {"10", "9", 1}, {"2", "2", 0}, {"100", "99", 1}, {"1.10", "1.9", 1},
		{"a", "b", -1}, {"", "1", -1}, {"01", "1", -1},
	} {
		if got := strverscmp(c.a, c.b); got != c.want {
			t.Errorf("strverscmp(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := strverscmp(c.b, c.a); got != -c.want {
			t.Errorf("strverscmp(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

func TestKargs(t *testing.T) {
	args := splitKargs(`root=/dev/vda  quiet console=tty0 foo="a b" console=ttyS0`)
	if strings.Join(args, "|") != `root=/dev/vda|quiet|console=tty0|foo="a b"|console=ttyS0` {
		t.Fatalf("split: %q", args)
	}
	args = kargsReplace(args, "console=hvc0")
	if strings.Join(args, " ") != `root=/dev/vda quiet console=hvc0 foo="a b"` {
		t.Errorf("replace: %q", args)
	}
	args = kargsReplace(args, "new=1")
	args, ok := kargsDelete(args, "quiet")
	if !ok || strings.Join(args, " ") != `root=/dev/vda console=hvc0 foo="a b" new=1` {
		t.Errorf("delete: %q", args)
	}
	if _, ok := kargsDelete(args, "absent"); ok {
		t.Error("deleted an absent argument")
	}
}

func TestParseOSRelease(t *testing.T) {
	m := parseOSRelease("# c\nNAME=\"Debian GNU/Linux\"\nPRETTY_NAME='Deb 12'\nID=debian\nBAD LINE\nX=\"say \\\"hi\\\"\"\n")
	if m["NAME"] != "Debian GNU/Linux" || m["PRETTY_NAME"] != "Deb 12" || m["ID"] != "debian" || m["X"] != `say "hi"` {
		t.Errorf("%v", m)
	}
}

func FuzzParseBootEntry(f *testing.F) {
	f.Add("ostree-1-testos.conf", "title TestOS 1 (ostree:0)\nversion 1\noptions root=LABEL=rootfs quiet ostree=/ostree/boot.1/testos/ef33/0\nlinux /ostree/testos-ef33/vmlinuz\ninitrd /ostree/testos-ef33/initramfs.img\n")
	f.Add("ostree-2-os+3-1.conf", "\x00\ttitle\n\n#x\nk")
	f.Add("ostree-3.conf", "options \"a b\" c=\"d e\"\n")
	f.Fuzz(func(t *testing.T, name, data string) {
		e, err := ParseBootEntry(name, []byte(data))
		if err != nil {
			return
		}
		// Serialising and parsing again is stable.
		e2, err := ParseBootEntry(name, e.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if string(e2.Bytes()) != string(e.Bytes()) {
			t.Fatalf("not stable: %q vs %q", e.Bytes(), e2.Bytes())
		}
		_ = splitKargs(e.Get("options"))
		_ = ostreeKargRE.FindStringSubmatch(e.Get("options"))
	})
}

func FuzzSplitKargs(f *testing.F) {
	f.Add(`root=/dev/vda quiet foo="a b" ostree=/ostree/boot.0/os/abc/0`)
	f.Add(`"unterminated x=1`)
	f.Fuzz(func(t *testing.T, s string) {
		args := splitKargs(s)
		for _, a := range args {
			if a == "" {
				t.Fatal("empty argument")
			}
		}
		again := splitKargs(strings.Join(args, " "))
		if strings.Join(again, "\x00") != strings.Join(args, "\x00") {
			t.Fatalf("not stable: %q vs %q", args, again)
		}
	})
}

func FuzzStagedState(f *testing.F) {
	s := &Sysroot{opts: Options{RunDir: f.TempDir()}}
	c, _ := ostree.ParseChecksum(strings.Repeat("ab", 32))
	d := &Deployment{OSName: "os", Checksum: c, Serial: 1, BootCsum: strings.Repeat("cd", 32), Kargs: []string{"root=/dev/vda", "quiet"}}
	if err := s.writeStaged(d, &Deployment{OSName: "os", Checksum: c}, 3); err != nil {
		f.Fatal(err)
	}
	valid, err := os.ReadFile(s.stagedPath())
	if err != nil {
		f.Fatal(err)
	}
	st, err := decodeStagedState(valid, "seed")
	if err != nil || st.target.Name() != d.Name() || st.merge == nil || st.tries != 3 || strings.Join(st.kargs, " ") != "root=/dev/vda quiet" {
		f.Fatalf("round trip: %+v %v", st, err)
	}
	f.Add(valid)
	f.Add([]byte{})
	f.Add([]byte("not a variant"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeStagedState(data, "fuzz")
		if err == nil && st.target == nil {
			t.Fatal("no target without error")
		}
	})
}
