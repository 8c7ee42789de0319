package ostree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gostree/gostree/internal/atomicfile"
	"github.com/gostree/gostree/internal/keyfile"
	"github.com/gostree/gostree/ostree/store"
	"github.com/gostree/gostree/ostree/store/httpstore"
	"github.com/gostree/gostree/ostree/store/local"
)

// SystemRemotesDir is where the system repository keeps remotes as
// *.conf files, besides its config.
const SystemRemotesDir = "/etc/ostree/remotes.d"

// Remote is a configured remote: a [remote "NAME"] group of the repository
// config or of a *.conf file in the remotes directory. Keys are kept as
// written; the accessors interpret ostree's well-known ones.
type Remote struct {
	Name string
	// File is the remotes.d file the remote was read from, "" for the
	// repository config.
	File string
	keys []remoteKey
}

type remoteKey struct{ k, v string }

// NewRemote returns a remote with the given URL and no other keys.
func NewRemote(name, url string) *Remote {
	r := &Remote{Name: name}
	r.Set("url", url)
	return r
}

// Get returns the raw value of a key.
func (r *Remote) Get(key string) (string, bool) {
	for _, kv := range r.keys {
		if kv.k == key {
			return kv.v, true
		}
	}
	return "", false
}

// Set sets a key (kept in insertion order).
func (r *Remote) Set(key, value string) {
	for i, kv := range r.keys {
		if kv.k == key {
			r.keys[i].v = value
			return
		}
	}
	r.keys = append(r.keys, remoteKey{key, value})
}

// Keys returns the keys in order.
func (r *Remote) Keys() []string {
	out := make([]string, len(r.keys))
	for i, kv := range r.keys {
		out[i] = kv.k
	}
	return out
}

// URL returns the url key.
func (r *Remote) URL() string { v, _ := r.Get("url"); return v }

// ContentURL returns contenturl, or the url when it is not set.
func (r *Remote) ContentURL() string {
	if v, ok := r.Get("contenturl"); ok && v != "" {
		return v
	}
	return r.URL()
}

// Bool parses a boolean key as GLib does ("true"/"false", also 1/0).
func (r *Remote) Bool(key string, def bool) (bool, error) {
	v, ok := r.Get(key)
	if !ok {
		return def, nil
	}
	switch strings.TrimSpace(v) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return def, fmt.Errorf("remote %q: key %s: invalid boolean %q", r.Name, key, v)
}

// GPGVerify reports gpg-verify (default true).
func (r *Remote) GPGVerify() (bool, error) { return r.Bool("gpg-verify", true) }

// GPGVerifySummary reports gpg-verify-summary (default false).
func (r *Remote) GPGVerifySummary() (bool, error) { return r.Bool("gpg-verify-summary", false) }

// SignVerify reports whether sign-verify asks for signapi verification of
// commits: "true" or a list of signature types (e.g. "ed25519").
func (r *Remote) SignVerify() (bool, error) { return r.signVerify("sign-verify") }

// SignVerifySummary is SignVerify for sign-verify-summary.
func (r *Remote) SignVerifySummary() (bool, error) { return r.signVerify("sign-verify-summary") }

func (r *Remote) signVerify(key string) (bool, error) {
	v, ok := r.Get(key)
	if !ok {
		return false, nil
	}
	switch strings.TrimSpace(v) {
	case "", "false", "0":
		return false, nil
	}
	return true, nil
}

// Branches returns the branches key (a ';'-separated list).
func (r *Remote) Branches() []string { return splitList(r.get("branches")) }

func (r *Remote) get(k string) string { v, _ := r.Get(k); return v }

func splitList(v string) []string {
	var out []string
	for _, s := range strings.FieldsFunc(v, func(c rune) bool { return c == ';' || c == ',' }) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func remoteGroup(name string) string { return `remote "` + name + `"` }

func remoteName(group string) (string, bool) {
	rest, ok := strings.CutPrefix(group, `remote "`)
	if !ok || !strings.HasSuffix(rest, `"`) {
		return "", false
	}
	return strings.TrimSuffix(rest, `"`), true
}

// ValidateRemoteName checks a remote name (one ref fragment, as ostree).
func ValidateRemoteName(name string) error {
	if !validRefFragment(name) {
		return fmt.Errorf("invalid remote name %q", name)
	}
	return nil
}

func remotesFromKeyfile(kf *keyfile.File, file string) []*Remote {
	var out []*Remote
	for _, g := range kf.Groups() {
		name, ok := remoteName(g)
		if !ok {
			continue
		}
		rm := &Remote{Name: name, File: file}
		for _, k := range kf.Keys(g) {
			v, _ := kf.String(g, k)
			rm.keys = append(rm.keys, remoteKey{k, v})
		}
		out = append(out, rm)
	}
	return out
}

// DefaultRemotesDir returns the remotes directory ostree uses for this
// repository: SystemRemotesDir for the system repository (/ostree/repo,
// /sysroot/ostree/repo) or when core.add-remotes-config-dir is true, else "".
func (r *Repo) DefaultRemotesDir() string {
	abs, _ := filepath.Abs(r.path)
	def := abs == "/ostree/repo" || abs == "/sysroot/ostree/repo"
	if on, err := r.config.Bool("core", "add-remotes-config-dir", def); err == nil && on {
		return SystemRemotesDir
	}
	return ""
}

// Remotes lists the remotes of the repository config and of the *.conf
// files in remotesDir ("" for none), sorted by name. A name defined twice
// is an error, as in ostree.
func (r *Repo) Remotes(remotesDir string) ([]*Remote, error) {
	all := remotesFromKeyfile(r.config, "")
	if remotesDir != "" {
		ents, err := os.ReadDir(remotesDir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading remotes directory: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".conf") {
				continue
			}
			p := filepath.Join(remotesDir, e.Name())
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", p, err)
			}
			kf, err := keyfile.Parse(b)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			all = append(all, remotesFromKeyfile(kf, p)...)
		}
	}
	seen := map[string]*Remote{}
	for _, rm := range all {
		if prev, ok := seen[rm.Name]; ok {
			return nil, fmt.Errorf("remote %q is defined twice (%s and %s)", rm.Name, where(prev), where(rm))
		}
		seen[rm.Name] = rm
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all, nil
}

func where(rm *Remote) string {
	if rm.File == "" {
		return "repository config"
	}
	return rm.File
}

// Remote returns the named remote.
func (r *Repo) Remote(remotesDir, name string) (*Remote, error) {
	all, err := r.Remotes(remotesDir)
	if err != nil {
		return nil, err
	}
	for _, rm := range all {
		if rm.Name == name {
			return rm, nil
		}
	}
	return nil, fmt.Errorf("remote %q not found: %w", name, ErrNotFound)
}

// ErrRemoteExists is returned by AddRemote for a name already in use.
var ErrRemoteExists = errors.New("remote already exists")

// AddRemote adds a remote: to remotesDir/NAME.conf when remotesDir is
// not "", else to the repository config. It fails with ErrRemoteExists if
// the name is taken.
func (r *Repo) AddRemote(remotesDir string, rm *Remote) error {
	if err := ValidateRemoteName(rm.Name); err != nil {
		return err
	}
	u := rm.URL()
	if u == "" {
		return fmt.Errorf("remote %q: no url", rm.Name)
	}
	if err := validateRemoteURL(u); err != nil {
		return fmt.Errorf("remote %q: %w", rm.Name, err)
	}
	if _, err := r.Remote(remotesDir, rm.Name); err == nil {
		return fmt.Errorf("remote %q: %w", rm.Name, ErrRemoteExists)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if remotesDir != "" {
		kf := keyfile.New()
		for _, kv := range rm.keys {
			kf.Set(remoteGroup(rm.Name), kv.k, kv.v)
		}
		if err := os.MkdirAll(remotesDir, 0o755); err != nil {
			return err
		}
		p := filepath.Join(remotesDir, rm.Name+".conf")
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("remote %q: %s exists: %w", rm.Name, p, ErrRemoteExists)
		}
		return atomicfile.WriteFile(p, kf.Bytes(), 0o644)
	}
	cfg, err := r.reloadConfig()
	if err != nil {
		return err
	}
	for _, kv := range rm.keys {
		cfg.Set(remoteGroup(rm.Name), kv.k, kv.v)
	}
	return r.WriteConfig(cfg)
}

func validateRemoteURL(u string) error {
	for _, p := range []string{"http://", "https://", "file://", "metalink=", "mirrorlist="} {
		if strings.HasPrefix(u, p) {
			return nil
		}
	}
	return fmt.Errorf("invalid url %q: want http://, https:// or file://", u)
}

// DeleteRemote removes a remote from the config or its remotes.d file,
// and the refs under refs/remotes/NAME.
func (r *Repo) DeleteRemote(remotesDir, name string) error {
	rm, err := r.Remote(remotesDir, name)
	if err != nil {
		return err
	}
	if rm.File != "" {
		b, err := os.ReadFile(rm.File)
		if err != nil {
			return err
		}
		kf, err := keyfile.Parse(b)
		if err != nil {
			return fmt.Errorf("%s: %w", rm.File, err)
		}
		kf.DeleteGroup(remoteGroup(name))
		others := false
		for _, g := range kf.Groups() {
			others = others || g != ""
		}
		if !others {
			if err := os.Remove(rm.File); err != nil {
				return err
			}
			if err := atomicfile.SyncDir(filepath.Dir(rm.File)); err != nil {
				return err
			}
		} else if err := atomicfile.WriteFile(rm.File, kf.Bytes(), 0o644); err != nil {
			return err
		}
	} else {
		cfg, err := r.reloadConfig()
		if err != nil {
			return err
		}
		cfg.DeleteGroup(remoteGroup(name))
		if err := r.WriteConfig(cfg); err != nil {
			return err
		}
	}
	refs := filepath.Join(r.path, "refs", "remotes", name)
	if err := os.RemoveAll(refs); err != nil {
		return fmt.Errorf("removing refs of remote %s: %w", name, err)
	}
	return nil
}

// reloadConfig re-reads the config from disk, so that edits made since
// the repository was opened are kept.
func (r *Repo) reloadConfig() (*keyfile.File, error) {
	b, err := os.ReadFile(filepath.Join(r.path, "config"))
	if err != nil {
		return nil, err
	}
	return keyfile.Parse(b)
}

// RemoteStore returns the store for a remote URL (the remote's url or
// contenturl): a directory for file://, else an HTTP(S) store configured
// from the remote's tls-* and proxy keys on top of base.
func RemoteStore(rm *Remote, rawURL string, base httpstore.Options) (store.Store, error) {
	if p, ok := strings.CutPrefix(rawURL, "file://"); ok {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("remote %q: invalid url %q: file:// URLs must be absolute", rm.Name, rawURL)
		}
		return local.New(p), nil
	}
	o := base
	if v, ok := rm.Get("tls-ca-path"); ok {
		o.TLSCAPath = v
	}
	if v, ok := rm.Get("tls-client-cert-path"); ok {
		o.TLSClientCertPath = v
	}
	if v, ok := rm.Get("tls-client-key-path"); ok {
		o.TLSClientKeyPath = v
	}
	perm, err := rm.Bool("tls-permissive", false)
	if err != nil {
		return nil, err
	}
	o.TLSPermissive = o.TLSPermissive || perm
	if v, ok := rm.Get("proxy"); ok && v != "" {
		o.Proxy = v
	}
	s, err := httpstore.New(rawURL, o)
	if err != nil {
		return nil, fmt.Errorf("remote %q: %w", rm.Name, err)
	}
	return s, nil
}
