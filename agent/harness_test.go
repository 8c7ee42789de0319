package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/gostree/gostree/heatmeta"
	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/gvariant"
	"github.com/gostree/gostree/ostree/sign"
	"github.com/gostree/gostree/sysroot"
	"github.com/gostree/gostree/sysroot/etcmerge"
)

// env is a scratch node: a sysroot booted (by the RunDir/RootDir hooks)
// into v1, a signed archive repository as the source, metadata in a local
// directory, a Heat-like signal receiver and a fake reboot.
type env struct {
	t        *testing.T
	dir      string
	sysroot  string
	runDir   string
	rootLink string
	bootID   string
	src      string // archive repo
	meta     string // local metadata dir
	key      *sign.Ed25519SecretKey
	commits  map[int]ostree.Checksum
	signals  *signalSink
	cfg      Config
	required string // health required.d
	// fallback makes the next reboot come up in the previous deployment
	// (a boot counter running out).
	fallback bool
	reboots  int
	rebootFn func() error
}

type signalSink struct {
	mu   sync.Mutex
	got  map[string][]map[string]any
	srv  *httptest.Server
	fail int // answer 503 to the next N signals
}

func newSignalSink(t *testing.T) *signalSink {
	s := &signalSink{got: map[string][]map[string]any{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.fail > 0 {
			s.fail--
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			http.Error(w, "bad json", 400)
			return
		}
		s.got[r.URL.Path] = append(s.got[r.URL.Path], m)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *signalSink) for_(name string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.got["/v1/AUTH_test/signals/"+name]...)
}

func writeTree(t *testing.T, dir string, v int) {
	t.Helper()
	w := func(rel, content string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w("usr/lib/modules/6.1.0/vmlinuz", fmt.Sprintf("kernel %d\n", v/10))
	w("usr/lib/modules/6.1.0/initramfs.img", "initramfs\n")
	w("usr/lib/os-release", fmt.Sprintf("ID=agenttest\nVERSION_ID=%d\n", v))
	w("usr/etc/motd", fmt.Sprintf("version %d\n", v))
	w("usr/etc/app.conf", "setting=default\n")
	w(fmt.Sprintf("usr/share/app/v%d.txt", v), strings.Repeat("x", 100*v))
}

func commitTree(t *testing.T, r *ostree.Repo, dir string, v int, ts time.Time) ostree.Checksum {
	t.Helper()
	ctx := context.Background()
	tx, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	mt := ostree.NewMutableTree(ostree.DirMeta{})
	if err := mt.Import(dir, ostree.ImportOptions{OwnerUID: 0, OwnerGID: 0}); err != nil {
		t.Fatal(err)
	}
	tree, meta, err := tx.WriteTree(ctx, mt, 2)
	if err != nil {
		t.Fatal(err)
	}
	var md ostree.Metadata
	md.Set("version", gvariant.NewVariant("s", fmt.Sprint(v)))
	c, err := tx.WriteCommit(tree, meta, ostree.CommitOptions{Subject: fmt.Sprintf("v%d", v), Timestamp: ts, Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"os/stable", fmt.Sprintf("os/v%d", v)} {
		if err := tx.SetRef(ostree.Refspec{Ref: ref}, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return c
}

// newEnv builds the node booted into v1 with v2 and v3 (and v0, older) in
// the source repository, all signed.
func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (deployments keep file owners)")
	}
	dir := t.TempDir()
	e := &env{t: t, dir: dir, sysroot: filepath.Join(dir, "sysroot"), runDir: filepath.Join(dir, "run"),
		rootLink: filepath.Join(dir, "root"), bootID: filepath.Join(dir, "boot_id"), src: filepath.Join(dir, "src"),
		meta: filepath.Join(dir, "meta"), commits: map[int]ostree.Checksum{}, required: filepath.Join(dir, "required.d")}
	for _, d := range []string{e.sysroot, e.runDir, e.meta, e.required} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	seed := make([]byte, 32)
	copy(seed, "gostree agent test key seed.....")
	var err error
	if e.key, err = sign.Ed25519KeyFromSeed(seed); err != nil {
		t.Fatal(err)
	}
	src, err := ostree.Init(e.src, ostree.ModeArchive, ostree.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, v := range []int{1, 2, 3, 4, 0} {
		td := filepath.Join(dir, fmt.Sprintf("tree%d", v))
		writeTree(t, td, v)
		c := commitTree(t, src, td, v, base.Add(time.Duration(v)*24*time.Hour))
		if err := sign.SignCommit(context.Background(), src, c, []sign.Signer{sign.Ed25519Signer{Key: e.key}}); err != nil {
			t.Fatal(err)
		}
		e.commits[v] = c
	}
	src.Close()

	t.Setenv("OSTREE_SYSROOT_DEBUG", "mutable-deployments")
	if err := sysroot.InitFS(e.sysroot); err != nil {
		t.Fatal(err)
	}
	s := e.open()
	if err := s.InitOS("testos"); err != nil {
		t.Fatal(err)
	}
	rm := ostree.NewRemote("gostree", "file://"+e.src)
	rm.Set("gpg-verify", "false")
	rm.Set("sign-verify", "true")
	rm.Set("verification-ed25519-key", e.key.Public().String())
	if err := s.Repo().AddRemote("", rm); err != nil {
		t.Fatal(err)
	}
	srcRepo, err := ostree.Open(e.src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ostree.PullLocal(context.Background(), s.Repo(), srcRepo, ostree.PullOptions{Refs: []string{e.commits[1].String()}}); err != nil {
		t.Fatal(err)
	}
	srcRepo.Close()
	if _, err := s.Deploy(context.Background(), sysroot.DeployOptions{OSName: "testos", Revision: e.commits[1].String()}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	e.bootInto(0)
	if err := os.WriteFile(filepath.Join(e.runDir, "ostree-booted"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.signals = newSignalSink(t)

	cfg := DefaultConfig()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.RunDir = filepath.Join(dir, "agent-run")
	cfg.Sysroot = e.sysroot
	cfg.PollInterval = time.Second
	cfg.MaxBackoff = 4 * time.Second
	cfg.Metadata.Collectors = []string{"local"}
	cfg.Metadata.Local.Path = []string{e.meta}
	cfg.Health.RequiredDir = e.required
	cfg.Health.WantedDir = filepath.Join(dir, "wanted.d")
	cfg.Health.Timeout = 30 * time.Second
	cfg.Health.ReportWait = 0
	f := false
	cfg.Reboot.WarnUsers = &f
	e.cfg = cfg
	return e
}

func (e *env) open() *sysroot.Sysroot {
	e.t.Helper()
	s, err := sysroot.Open(e.sysroot, sysroot.Options{RunDir: e.runDir, RootDir: e.rootLink, MutableDeployments: true})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := s.Lock(); err != nil {
		e.t.Fatal(err)
	}
	if err := s.Load(); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// bootInto points the fake root at deployment i of the list and starts a
// new boot (new boot id, empty /run/ostree).
func (e *env) bootInto(i int) {
	e.t.Helper()
	s := e.open()
	d := s.Deployments[i]
	p := s.DeploymentPath(d)
	s.Close()
	os.Remove(e.rootLink)
	if err := os.Symlink(p, e.rootLink); err != nil {
		e.t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(e.runDir, "ostree"))
	os.RemoveAll(e.cfg.RunDir)
	e.reboots++
	if err := os.WriteFile(e.bootID, []byte(fmt.Sprintf("6f1c1b5e-0000-4000-8000-%012d\n", e.reboots)), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// Reboot implements reboot.Rebooter: finalize the staged deployment as the
// shutdown service would, then boot the default entry (or the next one
// when fallback is set).
func (e *env) Reboot(ctx context.Context, reason string) error {
	if e.rebootFn != nil {
		if err := e.rebootFn(); err != nil {
			return err
		}
	}
	s := e.open()
	if s.Staged() != nil {
		if _, err := s.FinalizeStaged(ctx, etcmerge.Options{}); err != nil {
			s.Close()
			return err
		}
	}
	s.Close()
	i := 0
	if e.fallback {
		i = 1
		e.fallback = false
	}
	e.bootInto(i)
	return nil
}

func (e *env) booted() ostree.Checksum {
	s := e.open()
	defer s.Close()
	b := s.Booted()
	if b == nil {
		e.t.Fatal("not booted")
	}
	return b.Checksum
}

func (e *env) defaultCommit() ostree.Checksum {
	s := e.open()
	defer s.Close()
	for _, d := range s.Deployments {
		if !d.Staged {
			return d.Checksum
		}
	}
	return ostree.Checksum{}
}

// setMetadata writes a deployment of group ostree with the given inputs
// (a signal URL is added unless given).
func (e *env) setMetadata(id, name string, inputs map[string]any) {
	e.t.Helper()
	if _, ok := inputs["deploy_signal_id"]; !ok {
		inputs["deploy_signal_id"] = e.signals.srv.URL + "/v1/AUTH_test/signals/" + name + "?temp_url_sig=s3cr3t&temp_url_expires=2000000000"
		inputs["deploy_signal_verb"] = "PUT"
		inputs["deploy_signal_transport"] = "TEMP_URL_SIGNAL"
	}
	var ins []map[string]any
	for k, v := range inputs {
		ins = append(ins, map[string]any{"name": k, "value": v})
	}
	doc := map[string]any{"deployments": []any{map[string]any{
		"id": id, "name": name, "group": "ostree", "inputs": ins, "outputs": []any{},
	}}}
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(filepath.Join(e.meta, "heat.json"), b, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) setHealth(ok bool) {
	e.t.Helper()
	code := 0
	if !ok {
		code = 3
	}
	script := fmt.Sprintf("#!/bin/sh\necho checking $GOSTREE_BOOTED_COMMIT\nexit %d\n", code)
	if err := os.WriteFile(filepath.Join(e.required, "10-app"), []byte(script), 0o755); err != nil {
		e.t.Fatal(err)
	}
}

type testLogger struct{ t *testing.T }

func (l testLogger) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (e *env) agent() *Agent {
	e.t.Helper()
	l := logrus.New()
	l.Out = testLogger{e.t}
	l.SetLevel(logrus.DebugLevel)
	a, err := New(Options{Config: e.cfg, Logger: l, Sysroot: sysroot.Options{RunDir: e.runDir, RootDir: e.rootLink, MutableDeployments: true},
		Rebooter: e, BootIDPath: e.bootID, Sleep: func(context.Context, time.Duration) error { return nil },
		UtmpPath:  filepath.Join(e.dir, "no-utmp"),
		Signaller: &heatmeta.Signaller{Attempts: 3, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// steps runs up to n steps (a new agent each time when fresh: a restart)
// until the agent is idle, ignoring waits.
func (e *env) steps(a *Agent, n int, fresh bool) *Agent {
	e.t.Helper()
	for i := 0; i < n; i++ {
		if fresh {
			a = e.agent()
		}
		if _, err := a.Step(context.Background()); err != nil {
			e.t.Fatal(err)
		}
		st := a.State()
		if st.Job == nil {
			return a
		}
		if st.Job.NextTry.After(time.Now()) {
			// skip the backoff in tests
			a.mu.Lock()
			a.st.Job.NextTry = time.Time{}
			a.mu.Unlock()
			if err := a.save(); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	return a
}
