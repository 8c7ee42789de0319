package nginx

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestServes(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello"), []byte("hi\n"), 0o644)
	s := Start(t, dir, Options{AccessLog: true})
	resp, err := http.Get(s.URL + "hello")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hi\n" {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
	resp, err = http.Get(s.URL + "missing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("missing file: got %d", resp.StatusCode)
	}
	var reqs []string
	for i := 0; i < 100 && len(reqs) < 2; i++ { // nginx logs after responding
		reqs = s.Requests(t)
		time.Sleep(10 * time.Millisecond)
	}
	if len(reqs) != 2 || reqs[0] != "GET /hello 200 -" {
		t.Fatalf("access log: %q", reqs)
	}
}
