package sign

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Keys gpg-agent 2.2.40 protected (OCB) with the passphrase "correct
// horse" whose salt or nonce libgcrypt printed as a quoted string with
// \v, \b, \' or \f escapes. The old reader took "\v" for "v" and so
// derived the wrong key or associated data: "wrong passphrase (the
// protected key does not authenticate)" with the right passphrase.
var escapedAgentKeys = []struct{ file, escape string }{
	{"agent-protected-salt-escapes.key", `\v`},
	{"agent-protected-iv-escapes.key", `\v`},
	{"agent-protected-formfeed.key", `\f`},
}

func TestAgentKeyQuotedEscapes(t *testing.T) {
	for _, c := range escapedAgentKeys {
		t.Run(c.file, func(t *testing.T) {
			b := readTestdata(t, c.file)
			if !bytes.Contains(b, []byte(c.escape)) {
				t.Fatalf("%s no longer has a %s escape", c.file, c.escape)
			}
			sk, err := parseAgentKey(b)
			if err != nil || !sk.protected || sk.alg != "rsa" {
				t.Fatalf("%v %+v", err, sk)
			}
			if err := sk.unprotect([]byte("correct horse!")); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
				t.Fatalf("wrong passphrase: %v", err)
			}
			sk, _ = parseAgentKey(b)
			if err := sk.unprotect([]byte("correct horse")); err != nil {
				t.Fatal(err)
			}
			if sk.protected || len(sk.params["d"]) == 0 || len(sk.params["p"]) == 0 {
				t.Fatalf("%+v", sk)
			}
		})
	}
}

// Quoted strings follow libgcrypt's advanced syntax.
func TestParseQuoted(t *testing.T) {
	valid := map[string]string{
		`""`:                       "",
		`"a b"`:                    "a b",
		`"\b\t\v\n\f\r\"\'\\"`:     "\b\t\v\n\f\r\"'\\",
		`"\x00\xA0\xff"`:           "\x00\xa0\xff",
		`"\101\0017\177"`:          "A\x017\x7f",
		"\"a\\\nb\\\r\nc\\\n\rd\"": "abcd",
		"\"\xa1\xfe#|() \"":        "\xa1\xfe#|() ",
		`5"hello"`:                 "hello",
		`3#414243#`:                "ABC",
		`"a\"b" "not this"`:        `a"b`,
		`"\\x41 is no escape"`:     `\x41 is no escape`,
	}
	for in, want := range valid {
		v, _, err := parseSexp([]byte(in), 0)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got, ok := v.([]byte); !ok || string(got) != want {
			t.Errorf("%q: got %q, want %q", in, v, want)
		}
	}
	for _, in := range []string{`"unterminated`, `"escape at end\`, `"\xZ1"`, `"\x4"`, `"\01"`, `"\8"`, `"\q"`, `"\a"`, `"\ "`} {
		if v, _, err := parseSexp([]byte(in), 0); err == nil {
			t.Errorf("%q: parsed as %q, want an error", in, v)
		}
	}
}

// gnupgFold writes "Key:" value as GnuPG's name-value writer does (lines of
// at most 70 columns, the first shortened by the name; a break goes before
// a space among the last 29 columns, else it falls where the line is full),
// so that the unfolding can be checked at every column.
func gnupgFold(value string) string {
	var sb strings.Builder
	sb.WriteString("Created: 20260101T000000\nKey:")
	first := true
	for len(value) > 0 {
		width := 70
		if first {
			width -= len("Key:")
			first = false
		}
		n := len(value)
		if n > width {
			n = width
			for i := width - 1; width-i < 30; i-- {
				if value[i] == ' ' {
					n = i
					break
				}
			}
		}
		sb.WriteString(" " + value[:n] + "\n")
		value = value[n:]
	}
	return sb.String()
}

// Folding puts breaks inside tokens, strings and hex; unfolding must give
// back the value exactly (the old reader joined lines with a space).
func TestExtendedKeyUnfold(t *testing.T) {
	for pad := 0; pad < 80; pad++ {
		value := fmt.Sprintf(`(protected-private-key (rsa (n #%s#)(e #010001#)(protected openpgp-s2k3-ocb-aes ((sha1 "a b\vc(d)e" "65536")#0102#)#%s#)(protected-at "20260101T000000")(comment "%s x")))`,
			strings.Repeat("AB", 40+pad), strings.Repeat("CD", 90), strings.Repeat("z", pad))
		file := gnupgFold(value)
		got, err := extendedKeyValue([]byte(file))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != value {
			t.Fatalf("pad %d: unfolded\n%s\nto\n%s", pad, file, got)
		}
	}
	// A blank continuation line is a newline; the next line's indentation
	// is swallowed; other entries and comments are skipped.
	got, err := extendedKeyValue([]byte("# comment\nDescription: a\n b\nkey: (a\n\n    b)\nToken: x\n"))
	if err != nil || string(got) != "(a\nb)" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := extendedKeyValue([]byte("Created: 1\n Key: (x)\n")); err == nil {
		t.Fatal("a continuation line was taken for a Key: entry")
	}
}

// Keys gpg makes and protects with a passphrase unlock from the GnuPG home,
// whatever the key's values (RSA and Ed25519, S2K counts of several
// lengths): the salt and nonce are random, so each run draws new layouts.
func TestGnuPGHomeProtectedKeysGenerated(t *testing.T) {
	h := newGPGHome(t)
	const pass = "correct horse"
	counts := []int{65536, 1048576, 3000001, 12345678}
	algos := []string{"ed25519", "ed25519", "rsa2048", "ed25519", "rsa1024"}
	var fprs []string
	for i := 0; i < 20; i++ {
		if i%5 == 0 {
			conf := fmt.Sprintf("s2k-count %d\n", counts[(i/5)%len(counts)])
			if err := os.WriteFile(filepath.Join(h.dir, "gpg-agent.conf"), []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			runTool(t, nil, "gpgconf", "--homedir", h.dir, "--kill", "gpg-agent")
		}
		uid := fmt.Sprintf("Key %d <k%d@example.invalid>", i, i)
		mustRun(t, "gpg", "--homedir", h.dir, "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", pass,
			"--quick-gen-key", uid, algos[i%len(algos)], "sign", "never")
		fprs = append(fprs, h.fpr(uid))
	}
	keys, _ := filepath.Glob(filepath.Join(h.dir, "private-keys-v1.d", "*.key"))
	if len(keys) != len(fprs) {
		t.Fatalf("%d key files for %d keys", len(keys), len(fprs))
	}
	for _, f := range keys {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sk, err := parseAgentKey(b)
		if err != nil || !sk.protected {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		if err := sk.unprotect([]byte(pass)); err != nil {
			t.Errorf("%s: %v\n%s", filepath.Base(f), err, b)
		}
	}
	kr, err := LoadGnuPGHome(h.dir, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, fpr := range fprs {
		k, err := kr.SigningKey(fpr, now)
		if err != nil {
			t.Fatalf("%s: %v", fpr, err)
		}
		sig, err := k.Sign([]byte("payload"), SignOptions{Time: now})
		if err != nil {
			t.Fatalf("%s: %v", fpr, err)
		}
		res := (&GPGVerifier{Keyring: kr}).CheckSignatures([]byte("payload"), [][]byte{sig})
		if len(res) != 1 || !res[0].Valid() {
			t.Fatalf("%s: %+v", fpr, res)
		}
	}
}
