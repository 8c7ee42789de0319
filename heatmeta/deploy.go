package heatmeta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gostree/gostree/ostree"
)

// GroupOstree is the software-config group the agent acts as the hook of.
const GroupOstree = "ostree"

// MetadataKey is the top-level server metadata key for the
// fire-and-forget case (no software deployment, no signal).
const MetadataKey = "gostree"

// Deployment is one item of the "deployments" list as Heat renders it
// for SoftwareDeployment/StructuredDeployment (heat/engine/api.py
// format_software_config).
type Deployment struct {
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	Group        string          `json:"group"`
	CreationTime string          `json:"creation_time,omitempty"`
	Config       json.RawMessage `json:"config,omitempty"`
	Options      json.RawMessage `json:"options,omitempty"`
	Inputs       []Input         `json:"inputs"`
	Outputs      []Output        `json:"outputs"`
}

// Input is one deployment input. Value is raw JSON: Heat passes strings
// for String inputs but numbers, booleans, lists and maps for the other
// types.
type Input struct {
	Name            string          `json:"name"`
	Type            string          `json:"type,omitempty"`
	Value           json.RawMessage `json:"value,omitempty"`
	Description     string          `json:"description,omitempty"`
	Default         json.RawMessage `json:"default,omitempty"`
	ReplaceOnChange bool            `json:"replace_on_change,omitempty"`
}

// Output is a declared deployment output. An output with ErrorOutput set
// that is present in a signal makes Heat mark the deployment FAILED.
type Output struct {
	Name        string `json:"name"`
	Type        string `json:"type,omitempty"`
	Description string `json:"description,omitempty"`
	ErrorOutput bool   `json:"error_output,omitempty"`
}

// input returns the last input called name (heat-config-notify builds a
// dict, so a later duplicate wins).
func (d *Deployment) input(name string) (json.RawMessage, bool) {
	var v json.RawMessage
	found := false
	for _, in := range d.Inputs {
		if in.Name == name {
			v, found = in.Value, true
		}
	}
	return v, found
}

// Inputs are the name→value view of a deployment's inputs or of the
// "gostree" metadata key.
type inputs interface {
	input(name string) (json.RawMessage, bool)
}

type mapInputs map[string]json.RawMessage

func (m mapInputs) input(name string) (json.RawMessage, bool) {
	v, ok := m[name]
	return v, ok
}

// InputError names the deployment and input that is wrong.
type InputError struct {
	Where string // "deployment os-image (6f0c…)" or "metadata key gostree"
	Input string // input name, "" for the deployment as a whole
	Err   error
}

func (e *InputError) Error() string {
	if e.Input == "" {
		return e.Where + ": " + e.Err.Error()
	}
	return e.Where + ": input " + e.Input + ": " + e.Err.Error()
}

func (e *InputError) Unwrap() error { return e.Err }

// Origin says where a Desired came from.
type Origin string

const (
	// OriginDeployment is a software deployment of group ostree: Heat
	// waits for its signal.
	OriginDeployment Origin = "deployment"
	// OriginMetadataKey is the plain "gostree" metadata key: nobody waits.
	OriginMetadataKey Origin = "metadata"
)

// PayloadKind says where the commit's objects come from.
type PayloadKind string

const (
	PayloadDefault PayloadKind = ""       // the agent's configured remote
	PayloadGlance  PayloadKind = "glance" // GlanceImageID
	PayloadSwift   PayloadKind = "swift"  // SwiftContainer (+ SwiftPrefix)
	PayloadURL     PayloadKind = "url"    // RepoURL
)

// Payload names the place to pull from.
type Payload struct {
	Kind           PayloadKind `json:"kind,omitempty"`
	GlanceImageID  string      `json:"glance_image_id,omitempty"`
	SwiftContainer string      `json:"swift_container,omitempty"`
	SwiftPrefix    string      `json:"swift_prefix,omitempty"`
	RepoURL        string      `json:"ostree_repo_url,omitempty"`
}

// RebootMode is the reboot policy.
type RebootMode string

const (
	RebootDefault   RebootMode = ""           // the agent's configured policy
	RebootImmediate RebootMode = "immediate"  // reboot as soon as staged
	RebootWindow    RebootMode = "window"     // only inside Windows
	RebootFleetLock RebootMode = "fleet_lock" // take a FleetLock slot first
	RebootManual    RebootMode = "manual"     // stage only; an operator applies
)

// RebootPolicy is the reboot policy with its parameters.
type RebootPolicy struct {
	Mode RebootMode `json:"mode,omitempty"`
	// Windows and TimeZone for RebootWindow (Zincati's "periodic"
	// strategy: weekly windows in a time zone, default UTC).
	Windows  []Window `json:"windows,omitempty"`
	TimeZone string   `json:"time_zone,omitempty"`
	// FleetLockURL (base URL of the lock server) and FleetLockGroup
	// (default "default") for RebootFleetLock.
	FleetLockURL   string `json:"fleet_lock_url,omitempty"`
	FleetLockGroup string `json:"fleet_lock_group,omitempty"`
}

// Window is a weekly maintenance window: on each of Days, from Start
// (time of day) for Length.
type Window struct {
	Days   []time.Weekday `json:"days"`
	Start  time.Duration  `json:"start"`
	Length time.Duration  `json:"length"`
}

// Desired is what a stack asks the node to run.
type Desired struct {
	Origin Origin `json:"origin"`
	// DeploymentID (the derived config id: a new one for every change of
	// inputs), DeploymentName and Action (deploy_action: CREATE, UPDATE,
	// DELETE, SUSPEND, RESUME) are set for OriginDeployment.
	DeploymentID   string `json:"deployment_id,omitempty"`
	DeploymentName string `json:"deployment_name,omitempty"`
	Action         string `json:"action,omitempty"`
	// ServerID is deploy_server_id: the server (or deployed server) the
	// deployment is for.
	ServerID string `json:"server_id,omitempty"`
	// Commit is the exact target (input ostree_commit, required).
	Commit  ostree.Checksum `json:"commit"`
	Ref     string          `json:"ref,omitempty"`
	Version string          `json:"version,omitempty"`
	Payload Payload         `json:"payload"`
	Reboot  RebootPolicy    `json:"reboot"`
	// AllowDowngrade permits a target older than the booted commit.
	AllowDowngrade bool `json:"allow_downgrade,omitempty"`
	// Signal says how to report the result (NO_SIGNAL for the metadata
	// key).
	Signal SignalTarget `json:"signal"`
	// Outputs are the outputs the deployment declares.
	Outputs []Output `json:"outputs,omitempty"`
}

// DeploymentRequest is one ostree-group deployment found in metadata.
// When its inputs are wrong, Err says which and Desired is nil, but Signal
// is still filled in when the deploy_* inputs allow it, so the agent can
// report the failure to Heat.
type DeploymentRequest struct {
	Deployment Deployment
	Desired    *Desired
	Signal     SignalTarget
	Err        error
}

// Wanted is everything the merged metadata asks of the agent.
type Wanted struct {
	// Deployments are the deployments of group ostree, in metadata order
	// (Heat sorts them by config name). Other groups are ignored.
	Deployments []DeploymentRequest
	// Key is the "gostree" metadata key, nil when absent or invalid.
	Key *Desired
	// KeyErr is why the "gostree" key is invalid.
	KeyErr error
	// Problems are items of the deployments list that could not be read
	// at all (not an object); they cannot be signalled.
	Problems []error
}

// ParseWanted reads what a merged metadata document (see Merge) asks
// for. The error is for a document that is not a JSON object or whose
// "deployments" is not a list; problems with single deployments are in
// the result.
func ParseWanted(doc json.RawMessage) (*Wanted, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if top == nil {
		return nil, errors.New("metadata is JSON null, not an object")
	}
	w := &Wanted{}
	if raw, ok := top["deployments"]; ok && !isNull(raw) {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("metadata: \"deployments\" is not a list")
		}
		for i, item := range items {
			req, ours, err := parseDeploymentItem(item)
			if err != nil {
				w.Problems = append(w.Problems, fmt.Errorf("deployments[%d]: %w", i, err))
				continue
			}
			if ours {
				w.Deployments = append(w.Deployments, req)
			}
		}
	}
	if raw, ok := top[MetadataKey]; ok && !isNull(raw) {
		w.Key, w.KeyErr = ParseMetadataKey(raw)
	}
	return w, nil
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// parseDeploymentItem reads one deployments[] item. ours is false for
// items of other groups, which are not looked at further.
func parseDeploymentItem(item json.RawMessage) (DeploymentRequest, bool, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(item, &fields); err != nil || fields == nil {
		return DeploymentRequest{}, false, errors.New("not a JSON object")
	}
	group := "Heat::Ungrouped"
	if g, ok := fields["group"]; ok && !isNull(g) {
		if err := json.Unmarshal(g, &group); err != nil {
			return DeploymentRequest{}, false, nil // not a string: not ours
		}
	}
	if group != GroupOstree {
		return DeploymentRequest{}, false, nil
	}
	var req DeploymentRequest
	var d Deployment
	if err := json.Unmarshal(item, &d); err != nil {
		var name string
		json.Unmarshal(fields["name"], &name)
		req.Deployment = Deployment{Name: name, Group: group}
		req.Err = &InputError{Where: describeDeployment(req.Deployment), Err: fmt.Errorf("malformed deployment: %w", err)}
		return req, true, nil
	}
	req.Deployment = d
	where := describeDeployment(d)
	sig, err := parseSignal(&d, where)
	req.Signal = sig
	if err != nil {
		req.Err = err
		return req, true, nil
	}
	if d.ID == "" {
		req.Err = &InputError{Where: where, Err: errors.New("deployment has no id")}
		return req, true, nil
	}
	des, err := parseDesired(&d, where)
	if err != nil {
		req.Err = err
		return req, true, nil
	}
	des.Origin = OriginDeployment
	des.DeploymentID = d.ID
	des.DeploymentName = d.Name
	des.Action, _, _ = stringInput(&d, "deploy_action", where)
	des.ServerID, _, _ = stringInput(&d, "deploy_server_id", where)
	des.Signal = sig
	des.Outputs = d.Outputs
	req.Desired = des
	return req, true, nil
}

func describeDeployment(d Deployment) string {
	s := "deployment"
	if d.Name != "" {
		s += " " + strconv.Quote(d.Name)
	}
	if d.ID != "" {
		s += " (" + d.ID + ")"
	}
	return s
}

// ParseMetadataKey reads the "gostree" metadata key: an object with the
// same fields as the deployment inputs (ostree_commit, ...), or a string
// holding that object as JSON (Nova server metadata values, as seen on a
// config drive, are strings).
func ParseMetadataKey(raw json.RawMessage) (*Desired, error) {
	where := "metadata key " + MetadataKey
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, &InputError{Where: where, Err: errors.New("not a JSON object")}
	}
	des, err := parseDesired(mapInputs(m), where)
	if err != nil {
		return nil, err
	}
	des.Origin = OriginMetadataKey
	des.Signal = SignalTarget{Transport: NoSignal}
	return des, nil
}

// stringInput returns a scalar input as text: strings as they are,
// numbers and booleans as their JSON text; absent, null and "" give ok
// false.
func stringInput(in inputs, name, where string) (string, bool, error) {
	raw, found := in.input(name)
	if !found || len(raw) == 0 || isNull(raw) {
		return "", false, nil
	}
	v, err := decodeAny(raw)
	if err != nil {
		return "", false, &InputError{Where: where, Input: name, Err: err}
	}
	switch x := v.(type) {
	case string:
		return x, x != "", nil
	case json.Number:
		return x.String(), true, nil
	case bool:
		return strconv.FormatBool(x), true, nil
	}
	return "", false, &InputError{Where: where, Input: name, Err: errors.New("want a string, got a JSON list or object")}
}

var (
	uuidRE      = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)
	lockGroupRE = regexp.MustCompile(`^[a-zA-Z0-9.-]+$`)
)

// parseDesired reads the ostree_* inputs.
func parseDesired(in inputs, where string) (*Desired, error) {
	get := func(name string) (string, bool, error) { return stringInput(in, name, where) }
	bad := func(name string, format string, a ...any) error {
		return &InputError{Where: where, Input: name, Err: fmt.Errorf(format, a...)}
	}
	d := &Desired{}
	c, ok, err := get("ostree_commit")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, bad("ostree_commit", "missing (an exact 64-hex-digit commit checksum is required)")
	}
	if d.Commit, err = ostree.ParseChecksum(c); err != nil {
		return nil, &InputError{Where: where, Input: "ostree_commit", Err: err}
	}
	if d.Ref, _, err = get("ostree_ref"); err != nil {
		return nil, err
	}
	if d.Ref != "" {
		if err := ostree.ValidateRefName(d.Ref); err != nil {
			return nil, &InputError{Where: where, Input: "ostree_ref", Err: err}
		}
	}
	if d.Version, _, err = get("ostree_version"); err != nil {
		return nil, err
	}
	if len(d.Version) > 256 {
		return nil, bad("ostree_version", "longer than 256 characters")
	}

	// Payload: at most one of the three.
	img, hasImg, err := get("glance_image_id")
	if err != nil {
		return nil, err
	}
	cont, hasCont, err := get("swift_container")
	if err != nil {
		return nil, err
	}
	prefix, hasPrefix, err := get("swift_prefix")
	if err != nil {
		return nil, err
	}
	repo, hasRepo, err := get("ostree_repo_url")
	if err != nil {
		return nil, err
	}
	n := 0
	for _, b := range []bool{hasImg, hasCont, hasRepo} {
		if b {
			n++
		}
	}
	if n > 1 {
		return nil, bad("glance_image_id", "give only one of glance_image_id, swift_container, ostree_repo_url")
	}
	switch {
	case hasImg:
		if !uuidRE.MatchString(img) {
			return nil, bad("glance_image_id", "%q is not an image UUID", clip(img))
		}
		d.Payload = Payload{Kind: PayloadGlance, GlanceImageID: strings.ToLower(img)}
	case hasCont:
		if strings.Contains(cont, "/") || len(cont) > 256 || strings.ContainsAny(cont, "\x00\n") {
			return nil, bad("swift_container", "%q is not a Swift container name", clip(cont))
		}
		d.Payload = Payload{Kind: PayloadSwift, SwiftContainer: cont}
	case hasRepo:
		u, err := url.Parse(repo)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
			return nil, bad("ostree_repo_url", "want an http, https or file URL")
		}
		d.Payload = Payload{Kind: PayloadURL, RepoURL: repo}
	}
	if hasPrefix {
		if !hasCont {
			return nil, bad("swift_prefix", "given without swift_container")
		}
		if strings.HasPrefix(prefix, "/") || strings.Contains(prefix, "..") || len(prefix) > 1024 {
			return nil, bad("swift_prefix", "%q is not a relative object name prefix", clip(prefix))
		}
		d.Payload.SwiftPrefix = prefix
	}
	if src, ok, err := get("source"); err != nil {
		return nil, err
	} else if ok {
		switch PayloadKind(src) {
		case PayloadGlance, PayloadSwift, PayloadURL:
		default:
			return nil, bad("source", "%q is not glance, swift or url", clip(src))
		}
		if PayloadKind(src) != d.Payload.Kind {
			return nil, bad("source", "says %q but the inputs name %s", src, kindOrNone(d.Payload.Kind))
		}
	}

	if d.Reboot, err = parseReboot(in, where); err != nil {
		return nil, err
	}
	if s, ok, err := get("allow_downgrade"); err != nil {
		return nil, err
	} else if ok {
		b, err := strconv.ParseBool(strings.ToLower(s))
		if err != nil {
			return nil, bad("allow_downgrade", "%q is not true or false", clip(s))
		}
		d.AllowDowngrade = b
	}
	return d, nil
}

func kindOrNone(k PayloadKind) string {
	if k == "" {
		return "no payload"
	}
	return string(k)
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func parseReboot(in inputs, where string) (RebootPolicy, error) {
	var p RebootPolicy
	bad := func(name string, format string, a ...any) error {
		return &InputError{Where: where, Input: name, Err: fmt.Errorf(format, a...)}
	}
	mode, _, err := stringInput(in, "reboot_policy", where)
	if err != nil {
		return p, err
	}
	p.Mode = RebootMode(mode)
	switch p.Mode {
	case RebootDefault, RebootImmediate, RebootManual:
	case RebootWindow:
		raw, found := in.input("reboot_window")
		if !found || isNull(raw) {
			return p, bad("reboot_window", "missing (reboot_policy window needs windows)")
		}
		if p.Windows, err = parseWindows(raw); err != nil {
			return p, &InputError{Where: where, Input: "reboot_window", Err: err}
		}
		tz, ok, err := stringInput(in, "reboot_time_zone", where)
		if err != nil {
			return p, err
		}
		if !ok {
			tz = "UTC"
		}
		if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
			return p, bad("reboot_time_zone", "unknown time zone %q", clip(tz))
		}
		p.TimeZone = tz
	case RebootFleetLock:
		u, ok, err := stringInput(in, "fleet_lock_url", where)
		if err != nil {
			return p, err
		}
		if !ok {
			return p, bad("fleet_lock_url", "missing (reboot_policy fleet_lock needs the lock server URL)")
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return p, bad("fleet_lock_url", "want an http or https URL")
		}
		p.FleetLockURL = u
		g, ok, err := stringInput(in, "fleet_lock_group", where)
		if err != nil {
			return p, err
		}
		if !ok {
			g = "default"
		}
		if !lockGroupRE.MatchString(g) {
			return p, bad("fleet_lock_group", "%q: only letters, digits, '.' and '-' are allowed", clip(g))
		}
		p.FleetLockGroup = g
	default:
		return p, bad("reboot_policy", "%q is not immediate, window, fleet_lock or manual", clip(mode))
	}
	return p, nil
}

// windowJSON is one window as written in metadata.
type windowJSON struct {
	Days          json.RawMessage `json:"days"`
	StartTime     string          `json:"start_time"`
	LengthMinutes json.Number     `json:"length_minutes"`
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// parseWindows reads reboot_window: one object or a list of objects
// {days: ["Mon", ...] or "Mon,Tue", start_time: "HH:MM", length_minutes: N},
// or a string holding that JSON (a Heat String input).
func parseWindows(raw json.RawMessage) ([]Window, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	raw = bytes.TrimSpace(raw)
	var list []windowJSON
	if len(raw) > 0 && raw[0] == '{' {
		var one windowJSON
		if err := strictUnmarshal(raw, &one); err != nil {
			return nil, err
		}
		list = []windowJSON{one}
	} else if err := strictUnmarshal(raw, &list); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errors.New("no windows")
	}
	if len(list) > 64 {
		return nil, errors.New("more than 64 windows")
	}
	var out []Window
	for i, wj := range list {
		w, err := wj.window()
		if err != nil {
			return nil, fmt.Errorf("window %d: %w", i, err)
		}
		out = append(out, w)
	}
	return out, nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("want {\"days\", \"start_time\", \"length_minutes\"} objects: %w", err)
	}
	return nil
}

func (wj windowJSON) window() (Window, error) {
	var w Window
	var names []string
	if err := json.Unmarshal(wj.Days, &names); err != nil {
		var s string
		if err := json.Unmarshal(wj.Days, &s); err != nil {
			return w, errors.New("days: want a list of day names or \"Mon,Tue\"")
		}
		names = strings.Split(s, ",")
	}
	seen := map[time.Weekday]bool{}
	for _, n := range names {
		d, ok := dayNames[strings.ToLower(strings.TrimSpace(n))]
		if !ok {
			return w, fmt.Errorf("days: %q is not a day of the week", clip(n))
		}
		if !seen[d] {
			seen[d] = true
			w.Days = append(w.Days, d)
		}
	}
	if len(w.Days) == 0 {
		return w, errors.New("days: none given")
	}
	t, err := time.Parse("15:04", wj.StartTime)
	if err != nil {
		return w, fmt.Errorf("start_time: %q is not HH:MM", clip(wj.StartTime))
	}
	w.Start = time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
	m, err := strconv.Atoi(string(wj.LengthMinutes))
	if err != nil || m < 1 || m > 7*24*60 {
		return w, fmt.Errorf("length_minutes: %q is not a number of minutes between 1 and 10080", clip(string(wj.LengthMinutes)))
	}
	w.Length = time.Duration(m) * time.Minute
	return w, nil
}

// ParseRebootPolicy reads a reboot policy given as the inputs a deployment
// would carry (reboot_policy, reboot_window, reboot_time_zone,
// fleet_lock_url, fleet_lock_group), each a JSON value; where names the
// place for errors ("config reboot"). The agent reads its configured
// default policy through it, so both are checked alike.
func ParseRebootPolicy(where string, in map[string]json.RawMessage) (RebootPolicy, error) {
	return parseReboot(mapInputs(in), where)
}
