package heatmeta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Source names, as os-collect-config's collectors (plus config_drive,
// which os-collect-config only had inside ec2).
const (
	SourceHeatLocal   = "heat_local"
	SourceConfigDrive = "config_drive"
	SourceEC2         = "ec2"
	SourceCFN         = "cfn"
	SourceHeat        = "heat"
	SourceRequest     = "request"
	SourceLocal       = "local"
)

// DefaultCollectors is the default order. Later documents override
// earlier ones when merged, so remote Heat metadata overrides the
// first-boot copy and local files override everything. ec2 is not in it
// (os-collect-config has it): nothing the agent needs comes from there,
// and off OpenStack every poll would wait for 169.254.169.254 until it
// times out. List it explicitly to use it.
var DefaultCollectors = []string{SourceHeatLocal, SourceConfigDrive, SourceCFN, SourceHeat, SourceRequest, SourceLocal}

// knownSources are all source names.
var knownSources = []string{SourceHeatLocal, SourceConfigDrive, SourceEC2, SourceCFN, SourceHeat, SourceRequest, SourceLocal}

// Config selects and configures the sources. Field names follow
// os-collect-config's options (JSON/YAML keys in snake_case), so the
// "os-collect-config" metadata key can be read into the same types.
type Config struct {
	Collectors  []string          `json:"collectors,omitempty" yaml:"collectors,omitempty"`
	HeatLocal   HeatLocalConfig   `json:"heat_local,omitempty" yaml:"heat_local,omitempty"`
	Local       LocalConfig       `json:"local,omitempty" yaml:"local,omitempty"`
	ConfigDrive ConfigDriveConfig `json:"config_drive,omitempty" yaml:"config_drive,omitempty"`
	EC2         EC2Config         `json:"ec2,omitempty" yaml:"ec2,omitempty"`
	Heat        HeatConfig        `json:"heat,omitempty" yaml:"heat,omitempty"`
	Request     RequestConfig     `json:"request,omitempty" yaml:"request,omitempty"`
	CFN         CFNConfig         `json:"cfn,omitempty" yaml:"cfn,omitempty"`
	// IgnoreTransport stops following the "os-collect-config" key of
	// metadata (collectors and heat/request/cfn settings).
	IgnoreTransport bool `json:"ignore_transport,omitempty" yaml:"ignore_transport,omitempty"`
}

// HeatLocalConfig configures heat_local.
type HeatLocalConfig struct {
	Path []string `json:"path,omitempty" yaml:"path,omitempty"`
}

// LocalConfig configures local.
type LocalConfig struct {
	Path []string `json:"path,omitempty" yaml:"path,omitempty"`
}

// ConfigDriveConfig configures config_drive: the mount point of the
// drive labelled config-2 (mounting is the caller's job).
type ConfigDriveConfig struct {
	Dir string `json:"dir,omitempty" yaml:"dir,omitempty"`
}

// EC2Config configures ec2. Tests must point MetadataURL at 127.0.0.1.
type EC2Config struct {
	MetadataURL string `json:"metadata_url,omitempty" yaml:"metadata_url,omitempty"`
}

// HeatConfig configures heat (Heat's POLL_SERVER_HEAT settings, plus
// other ways to log in).
type HeatConfig struct {
	AuthURL                     string `json:"auth_url,omitempty" yaml:"auth_url,omitempty"`
	UserID                      string `json:"user_id,omitempty" yaml:"user_id,omitempty"`
	Username                    string `json:"username,omitempty" yaml:"username,omitempty"`
	UserDomainID                string `json:"user_domain_id,omitempty" yaml:"user_domain_id,omitempty"`
	UserDomainName              string `json:"user_domain_name,omitempty" yaml:"user_domain_name,omitempty"`
	Password                    string `json:"password,omitempty" yaml:"password,omitempty"`
	ProjectID                   string `json:"project_id,omitempty" yaml:"project_id,omitempty"`
	TrustID                     string `json:"trust_id,omitempty" yaml:"trust_id,omitempty"`
	ApplicationCredentialID     string `json:"application_credential_id,omitempty" yaml:"application_credential_id,omitempty"`
	ApplicationCredentialSecret string `json:"application_credential_secret,omitempty" yaml:"application_credential_secret,omitempty"`
	RegionName                  string `json:"region_name,omitempty" yaml:"region_name,omitempty"`
	Interface                   string `json:"interface,omitempty" yaml:"interface,omitempty"`
	StackID                     string `json:"stack_id,omitempty" yaml:"stack_id,omitempty"`
	ResourceName                string `json:"resource_name,omitempty" yaml:"resource_name,omitempty"`
}

// RequestConfig configures request (POLL_TEMP_URL).
type RequestConfig struct {
	MetadataURL string `json:"metadata_url,omitempty" yaml:"metadata_url,omitempty"`
}

// CFNConfig configures cfn (POLL_SERVER_CFN).
type CFNConfig struct {
	MetadataURL     string   `json:"metadata_url,omitempty" yaml:"metadata_url,omitempty"`
	HintPath        string   `json:"heat_metadata_hint,omitempty" yaml:"heat_metadata_hint,omitempty"`
	AccessKeyID     string   `json:"access_key_id,omitempty" yaml:"access_key_id,omitempty"`
	SecretAccessKey string   `json:"secret_access_key,omitempty" yaml:"secret_access_key,omitempty"`
	StackName       string   `json:"stack_name,omitempty" yaml:"stack_name,omitempty"`
	Path            []string `json:"path,omitempty" yaml:"path,omitempty"`
}

// NewSource builds the named source from the configuration.
func (c Config) NewSource(name string, hc *http.Client) (Source, error) {
	switch name {
	case SourceHeatLocal:
		return &HeatLocalSource{Paths: c.HeatLocal.Path}, nil
	case SourceLocal:
		return &LocalSource{Dirs: c.Local.Path}, nil
	case SourceConfigDrive:
		return &ConfigDriveSource{Dir: c.ConfigDrive.Dir}, nil
	case SourceEC2:
		return &EC2Source{URL: c.EC2.MetadataURL, ConfigDriveDir: c.ConfigDrive.Dir, Client: hc}, nil
	case SourceRequest:
		return &RequestSource{URL: c.Request.MetadataURL, Client: hc}, nil
	case SourceCFN:
		return &CFNSource{MetadataURL: c.CFN.MetadataURL, HintPath: c.CFN.HintPath, AccessKeyID: c.CFN.AccessKeyID,
			SecretAccessKey: c.CFN.SecretAccessKey, StackName: c.CFN.StackName, Paths: c.CFN.Path, Client: hc}, nil
	case SourceHeat:
		h := c.Heat
		return &HeatSource{AuthURL: h.AuthURL, UserID: h.UserID, Username: h.Username, UserDomainID: h.UserDomainID,
			UserDomainName: h.UserDomainName, Password: h.Password, ProjectID: h.ProjectID, TrustID: h.TrustID,
			ApplicationCredentialID: h.ApplicationCredentialID, ApplicationCredentialSecret: h.ApplicationCredentialSecret,
			RegionName: h.RegionName, Interface: h.Interface, StackID: h.StackID, ResourceName: h.ResourceName, Client: hc}, nil
	}
	return nil, fmt.Errorf("unknown metadata source %q (known: %s)", clip(name), strings.Join(knownSources, ", "))
}

// section returns the settings a source depends on, to tell when it must
// be rebuilt.
func (c Config) section(name string) any {
	switch name {
	case SourceHeatLocal:
		return c.HeatLocal
	case SourceLocal:
		return c.Local
	case SourceConfigDrive:
		return c.ConfigDrive
	case SourceEC2:
		return []any{c.EC2, c.ConfigDrive}
	case SourceRequest:
		return c.Request
	case SourceCFN:
		return c.CFN
	case SourceHeat:
		return c.Heat
	}
	return nil
}

// Validate checks the collector names.
func (c Config) Validate() error {
	seen := map[string]bool{}
	for _, n := range c.collectors() {
		if _, err := c.NewSource(n, nil); err != nil {
			return err
		}
		if seen[n] {
			return fmt.Errorf("metadata source %q listed twice", n)
		}
		seen[n] = true
	}
	return nil
}

func (c Config) collectors() []string {
	if c.Collectors == nil {
		return DefaultCollectors
	}
	return c.Collectors
}

// transportKey is the metadata key Heat uses to (re)configure the agent.
const transportKey = "os-collect-config"

// transportSources may change the transport: not ec2 (an unauthenticated
// link-local service on some clouds).
var transportSources = map[string]bool{
	SourceHeatLocal: true, SourceConfigDrive: true, SourceHeat: true, SourceRequest: true, SourceCFN: true, SourceLocal: true,
}

// ApplyTransport returns base with the allow-listed settings of the
// "os-collect-config" object of merged metadata applied: "collectors"
// and the "heat", "request" and "cfn" connection settings. A section
// that is null turns that transport off (Heat nulls the old transport
// when it switches). Everything else is ignored and its key returned in
// ignored (for logging); unknown collectors are dropped and listed too.
func ApplyTransport(base Config, occ json.RawMessage) (cfg Config, ignored []string, err error) {
	cfg = base
	if len(occ) == 0 || isNull(occ) {
		return cfg, nil, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(occ, &top); err != nil || top == nil {
		return base, nil, fmt.Errorf("%s: not an object", transportKey)
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		raw := top[k]
		switch k {
		case "collectors":
			if isNull(raw) {
				continue
			}
			var list []string
			if err := json.Unmarshal(raw, &list); err != nil {
				var one string
				if err := json.Unmarshal(raw, &one); err != nil {
					return base, nil, fmt.Errorf("%s.collectors: not a list of names", transportKey)
				}
				list = []string{one}
			}
			var out []string
			for _, n := range list {
				if _, err := base.NewSource(n, nil); err != nil || slices.Contains(out, n) {
					ignored = append(ignored, "collectors: "+clip(n))
					continue
				}
				out = append(out, n)
			}
			cfg.Collectors = out
		case SourceHeat:
			var h HeatConfig
			var extra []string
			if extra, err = strictSection(raw, &h, "auth_url", "user_id", "password", "project_id", "stack_id", "resource_name", "region_name"); err != nil {
				return base, nil, fmt.Errorf("%s.heat: %w", transportKey, err)
			}
			ignored = append(ignored, prefixAll("heat.", extra)...)
			cfg.Heat = h
		case SourceRequest:
			var r RequestConfig
			var extra []string
			if extra, err = strictSection(raw, &r, "metadata_url"); err != nil {
				return base, nil, fmt.Errorf("%s.request: %w", transportKey, err)
			}
			ignored = append(ignored, prefixAll("request.", extra)...)
			cfg.Request = r
		case SourceCFN:
			var c cfnSection
			var extra []string
			if extra, err = strictSection(raw, &c, "metadata_url", "access_key_id", "secret_access_key", "stack_name", "path"); err != nil {
				return base, nil, fmt.Errorf("%s.cfn: %w", transportKey, err)
			}
			ignored = append(ignored, prefixAll("cfn.", extra)...)
			cfg.CFN = CFNConfig{MetadataURL: c.MetadataURL, HintPath: base.CFN.HintPath, AccessKeyID: c.AccessKeyID,
				SecretAccessKey: c.SecretAccessKey, StackName: c.StackName, Path: c.Path}
		default:
			ignored = append(ignored, clip(k))
		}
	}
	return cfg, ignored, nil
}

// cfnSection accepts "path" as one string or a list.
type cfnSection struct {
	MetadataURL     string     `json:"metadata_url"`
	AccessKeyID     string     `json:"access_key_id"`
	SecretAccessKey string     `json:"secret_access_key"`
	StackName       string     `json:"stack_name"`
	Path            stringList `json:"path"`
}

type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*l = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("want a string or a list of strings")
	}
	*l = many
	return nil
}

// strictSection decodes the allowed keys of raw into dst (null → zero
// value) and returns the other keys.
func strictSection(raw json.RawMessage, dst any, allowed ...string) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errors.New("not an object")
	}
	keep := map[string]json.RawMessage{}
	var extra []string
	for k, v := range m {
		if slices.Contains(allowed, k) {
			if !isNull(v) {
				keep[k] = v
			}
		} else {
			extra = append(extra, clip(k))
		}
	}
	sort.Strings(extra)
	b, _ := json.Marshal(keep)
	if err := json.Unmarshal(b, dst); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return nil, fmt.Errorf("%s: want a %s", ute.Field, ute.Type)
		}
		return nil, err
	}
	return extra, nil
}

func prefixAll(p string, l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = p + s
	}
	return out
}

// SourceError is the failure of one source in one Collect.
type SourceError struct {
	Source string
	Err    error
}

func (e *SourceError) Error() string { return "metadata source " + e.Source + ": " + e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// Retryable reports whether polling again later may help.
func (e *SourceError) Retryable() bool { return IsRetryable(e.Err) }

// Collection is the outcome of one Collect.
type Collection struct {
	// Docs are the documents in source order: fresh ones, and for sources
	// that failed or answered "not modified", their latest cached copy.
	Docs []Doc
	// Stale are the keys of Docs served from the cache because their
	// source failed this time.
	Stale []string
	// ChangedKeys are the keys whose value differs from the last
	// committed (applied) one.
	ChangedKeys []string
	// Errors are the sources that failed (ErrNotConfigured ones are not
	// listed: an unconfigured source is normal).
	Errors []*SourceError
	// Merged is the deep merge of Docs (see Merge).
	Merged json.RawMessage
	// Collectors is the source order used, after following the
	// transport named in metadata; Ignored lists os-collect-config
	// settings that were not applied.
	Collectors []string
	Ignored    []string
	// Time is when the collection finished.
	Time time.Time
}

// Changed reports whether any document differs from what was last
// applied successfully.
func (r *Collection) Changed() bool { return len(r.ChangedKeys) > 0 }

// Wanted parses what the merged metadata asks for.
func (r *Collection) Wanted() (*Wanted, error) { return ParseWanted(r.Merged) }

// Collector polls the configured sources in order, caches what they
// return, and follows transport changes found in the metadata. One
// failing source never stops the others: its error is in
// Collection.Errors and its last cached documents stand in for it.
type Collector struct {
	base  Config
	cache *Cache
	hc    *http.Client

	mu        sync.Mutex
	sources   map[string]builtSource
	effective *Config // transport in use after the last Collect
	now       func() time.Time
}

type builtSource struct {
	fingerprint string
	src         Source
}

// CollectorOptions configure NewCollector.
type CollectorOptions struct {
	// Config is the agent's own configuration; the metadata's
	// os-collect-config key is applied on top of it.
	Config Config
	// Cache is where documents are kept (required).
	Cache *Cache
	// HTTPClient is used by every HTTP source (default: a client with a
	// 30 s timeout, proxy from the environment).
	HTTPClient *http.Client
}

// NewCollector checks the configuration and returns a Collector.
func NewCollector(o CollectorOptions) (*Collector, error) {
	if o.Cache == nil {
		return nil, errors.New("heatmeta: CollectorOptions.Cache is required")
	}
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	hc := o.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		hc = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	return &Collector{base: o.Config, cache: o.Cache, hc: hc, sources: map[string]builtSource{}, now: time.Now}, nil
}

// maxTransportRounds bounds how many transport changes one Collect
// follows (heat_local → cfn → request is two).
const maxTransportRounds = 4

// Collect polls every source once (more when the metadata moves the
// agent to another transport) and returns the documents. The error is
// only for the cache failing; source failures are in Collection.Errors.
func (c *Collector) Collect(ctx context.Context) (*Collection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := c.base
	if c.effective != nil {
		cfg = *c.effective
	}
	var (
		res     *Collection
		ignored []string
	)
	for round := 0; ; round++ {
		var err error
		res, err = c.pollAll(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if c.base.IgnoreTransport || round >= maxTransportRounds {
			break
		}
		next, ign, terr := c.transportFrom(res)
		if terr != nil {
			res.Errors = append(res.Errors, &SourceError{Source: transportKey, Err: terr})
			break
		}
		ignored = ign
		if sameTransport(next, cfg) {
			break
		}
		cfg = next
	}
	res.Ignored = ignored
	res.Collectors = slices.Clone(cfg.collectors())
	c.effective = &cfg
	merged, err := Merge(res.Docs)
	if err != nil {
		return nil, err
	}
	res.Merged = merged
	res.Time = c.now()
	return res, nil
}

func sameTransport(a, b Config) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// transportFrom applies the os-collect-config key of the documents of
// trusted sources on top of the base configuration. The bootstrap
// documents (heat_local, config_drive: their latest cached copies, when
// they are among the configured sources) are the lowest layer even when
// the current transport no longer polls them, so a remote document
// without an os-collect-config key does not send the agent back to its
// defaults.
func (c *Collector) transportFrom(res *Collection) (Config, []string, error) {
	var trusted []Doc
	for _, name := range []string{SourceHeatLocal, SourceConfigDrive} {
		if !slices.Contains(c.base.collectors(), name) {
			continue
		}
		if raw, err := c.cache.Latest(name); err == nil {
			trusted = append(trusted, Doc{Key: name, Raw: raw})
		}
	}
	for _, d := range res.Docs {
		src, _, _ := strings.Cut(d.Key, "/")
		if transportSources[src] {
			trusted = append(trusted, d)
		}
	}
	merged, err := Merge(trusted)
	if err != nil {
		return c.base, nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(merged, &top); err != nil {
		return c.base, nil, err
	}
	return ApplyTransport(c.base, top[transportKey])
}

func (c *Collector) source(cfg Config, name string) (Source, error) {
	fp, _ := json.Marshal(cfg.section(name))
	if b, ok := c.sources[name]; ok && b.fingerprint == string(fp) {
		return b.src, nil
	}
	s, err := cfg.NewSource(name, c.hc)
	if err != nil {
		return nil, err
	}
	c.sources[name] = builtSource{fingerprint: string(fp), src: s}
	return s, nil
}

func (c *Collector) pollAll(ctx context.Context, cfg Config) (*Collection, error) {
	res := &Collection{}
	for _, name := range cfg.collectors() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		docs, fresh, err := c.fetchOne(ctx, res, cfg, name)
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			var changed bool
			if fresh {
				changed, err = c.cache.Store(d.Key, d.Raw)
			} else {
				changed, err = c.cache.Changed(d.Key, d.Raw)
			}
			if err != nil {
				return nil, err
			}
			if changed {
				res.ChangedKeys = append(res.ChangedKeys, d.Key)
			}
			res.Docs = append(res.Docs, d)
		}
	}
	return res, nil
}

// fetchOne polls one source and returns its documents: fresh ones, or
// cached ones standing in when it failed or said "not modified" (a
// failure is added to res). The error is for the cache failing only.
func (c *Collector) fetchOne(ctx context.Context, res *Collection, cfg Config, name string) (docs []Doc, fresh bool, err error) {
	src, err := c.source(cfg, name)
	if err != nil {
		res.Errors = append(res.Errors, &SourceError{Source: name, Err: err})
		return nil, false, nil
	}
	if name == SourceEC2 {
		// Immutable once fetched, as os-collect-config treats it.
		if raw, err := c.cache.Latest(SourceEC2); err == nil {
			return []Doc{{Key: SourceEC2, Raw: raw}}, false, nil
		}
	}
	md, ferr := src.Fetch(ctx)
	switch {
	case ferr == nil:
		return md.Docs, true, nil
	case errors.Is(ferr, ErrNotConfigured):
		return nil, false, nil
	case errors.Is(ferr, ErrNotModified):
		cached, err := c.cached(name)
		if err != nil {
			return nil, false, err
		}
		if len(cached) == 0 {
			if f, ok := src.(interface{ Forget() }); ok {
				f.Forget()
			}
			res.Errors = append(res.Errors, &SourceError{Source: name, Err: &Error{Op: name, Retryable: true,
				Err: errors.New("server says not modified but nothing is cached; refetching next time")}})
		}
		return cached, false, nil
	}
	res.Errors = append(res.Errors, &SourceError{Source: name, Err: ferr})
	cached, err := c.cached(name)
	if err != nil {
		return nil, false, err
	}
	for _, d := range cached {
		res.Stale = append(res.Stale, d.Key)
	}
	return cached, false, nil
}

// cached returns the latest cached documents of a source: its own key,
// or every "local/…" key for local.
func (c *Collector) cached(name string) ([]Doc, error) {
	if name != SourceLocal {
		raw, err := c.cache.Latest(name)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errCorrupt) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []Doc{{Key: name, Raw: raw}}, nil
	}
	keys, err := c.cache.Keys()
	if err != nil {
		return nil, err
	}
	var docs []Doc
	for _, k := range keys {
		if strings.HasPrefix(k, SourceLocal+"/") {
			raw, err := c.cache.Latest(k)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errCorrupt) {
				continue
			}
			if err != nil {
				return nil, err
			}
			docs = append(docs, Doc{Key: k, Raw: raw})
		}
	}
	return docs, nil
}

// Commit records every document of r as applied successfully: call it
// after the agent acted on r (and, for deployments, signalled). Until
// then the same documents keep showing up as changed.
func (c *Collector) Commit(r *Collection) error {
	for _, d := range r.Docs {
		if err := c.cache.Commit(d.Key, d.Raw); err != nil {
			return err
		}
	}
	return nil
}
