package heatmeta

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ConfigDriveLabel is the filesystem label of a Nova config drive
// (vfat or iso9660). Finding and mounting it (read-only) is the caller's
// job; ConfigDriveSource takes the mount point.
const ConfigDriveLabel = "config-2"

// ConfigDriveSource ("config_drive") reads a mounted config drive:
// openstack/latest/meta_data.json and openstack/latest/user_data. Its
// document is the cfn-init-data part of the user data (the same JSON
// heat_local reads once cloud-init has run, so it bootstraps the
// transport even before cloud-init), plus
//   - "gostree": the server metadata key of that name (Nova keeps server
//     metadata values as strings; ParseMetadataKey accepts a string),
//     unless cfn-init-data has one;
//   - "instance": {uuid, name, hostname, availability_zone, project_id}.
type ConfigDriveSource struct {
	Dir string // mount point
}

var _ Source = (*ConfigDriveSource)(nil)

// ConfigDriveMeta is the part of openstack/latest/meta_data.json used.
type ConfigDriveMeta struct {
	UUID             string            `json:"uuid"`
	Name             string            `json:"name,omitempty"`
	Hostname         string            `json:"hostname,omitempty"`
	AvailabilityZone string            `json:"availability_zone,omitempty"`
	ProjectID        string            `json:"project_id,omitempty"`
	Meta             map[string]string `json:"meta,omitempty"`
}

// ParseConfigDriveMeta parses openstack/latest/meta_data.json.
func ParseConfigDriveMeta(b []byte) (*ConfigDriveMeta, error) {
	obj, err := parseObject(b)
	if err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(obj, &top); err != nil {
		return nil, err
	}
	m := &ConfigDriveMeta{}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"uuid", &m.UUID}, {"name", &m.Name}, {"hostname", &m.Hostname}, {"availability_zone", &m.AvailabilityZone}, {"project_id", &m.ProjectID}} {
		if raw, ok := top[f.name]; ok && !isNull(raw) {
			if err := json.Unmarshal(raw, f.dst); err != nil {
				return nil, fmt.Errorf("meta_data.json: %q is not a string", f.name)
			}
		}
	}
	if m.UUID == "" {
		return nil, errors.New("meta_data.json: no uuid")
	}
	if raw, ok := top["meta"]; ok && !isNull(raw) {
		var meta map[string]any
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, errors.New("meta_data.json: \"meta\" is not an object")
		}
		m.Meta = map[string]string{}
		for k, v := range meta {
			switch x := v.(type) {
			case string:
				m.Meta[k] = x
			default:
				b, _ := marshalJSON(x)
				m.Meta[k] = string(b)
			}
		}
	}
	return m, nil
}

// Fetch reads the drive.
func (s *ConfigDriveSource) Fetch(ctx context.Context) (Metadata, error) {
	if s.Dir == "" {
		return Metadata{}, &Error{Op: "config_drive", Err: fmt.Errorf("no mount point: %w", ErrNotConfigured)}
	}
	base := filepath.Join(s.Dir, "openstack", "latest")
	mb, err := readFileLimited(filepath.Join(base, "meta_data.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return Metadata{}, &Error{Op: "config_drive", Err: fmt.Errorf("%s has no openstack/latest/meta_data.json: %w", s.Dir, ErrNotConfigured)}
	}
	if err != nil {
		return Metadata{}, &Error{Op: "config_drive", Err: err}
	}
	meta, err := ParseConfigDriveMeta(mb)
	if err != nil {
		return Metadata{}, &Error{Op: "config_drive", Err: err}
	}
	doc := map[string]any{}
	ud, err := readFileLimited(filepath.Join(base, "user_data"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Metadata{}, &Error{Op: "config_drive", Err: err}
	}
	if err == nil {
		cfn, err := CFNInitData(ud)
		if err != nil {
			return Metadata{}, &Error{Op: "config_drive", Err: fmt.Errorf("user_data: %w", err)}
		}
		if cfn != nil {
			v, err := decodeAny(cfn)
			if err != nil {
				return Metadata{}, &Error{Op: "config_drive", Err: err}
			}
			doc = v.(map[string]any)
		}
	}
	if g, ok := meta.Meta[MetadataKey]; ok {
		if _, has := doc[MetadataKey]; !has {
			doc[MetadataKey] = g
		}
	}
	doc["instance"] = map[string]any{
		"uuid": meta.UUID, "name": meta.Name, "hostname": meta.Hostname,
		"availability_zone": meta.AvailabilityZone, "project_id": meta.ProjectID,
	}
	raw, err := marshalJSON(doc)
	if err != nil {
		return Metadata{}, &Error{Op: "config_drive", Err: err}
	}
	return Metadata{Docs: []Doc{{Key: "config_drive", Raw: raw}}}, nil
}

// CFNInitData finds the cfn-init-data part (Content-Type
// text/x-cfninitdata, file name cfn-init-data) in Heat-built MIME user
// data and returns it as a JSON object. User data that is not MIME
// multipart, or has no such part, gives nil, nil.
func CFNInitData(userData []byte) (json.RawMessage, error) {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(userData)))
	hdr, err := tp.ReadMIMEHeader()
	if err != nil && !(errors.Is(err, io.EOF) && len(hdr) > 0) {
		return nil, nil // not MIME
	}
	mt, params, err := mime.ParseMediaType(hdr.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return nil, nil
	}
	// The body starts after the header block.
	idx := bytes.Index(userData, []byte("\n\n"))
	if i := bytes.Index(userData, []byte("\r\n\r\n")); i >= 0 && (idx < 0 || i < idx) {
		idx = i + 2
	}
	if idx < 0 {
		return nil, nil
	}
	mr := multipart.NewReader(bytes.NewReader(userData[idx+2:]), params["boundary"])
	for range 256 {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("MIME user data: %w", err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if ct != "text/x-cfninitdata" || p.FileName() != "cfn-init-data" {
			continue
		}
		var r io.Reader = p
		if strings.EqualFold(strings.TrimSpace(p.Header.Get("Content-Transfer-Encoding")), "base64") {
			r = base64.NewDecoder(base64.StdEncoding, p) // skips line breaks
		}
		b, err := readLimited(r)
		if err != nil {
			return nil, fmt.Errorf("cfn-init-data part: %w", err)
		}
		obj, err := parseObject(b)
		if err != nil {
			return nil, fmt.Errorf("cfn-init-data part: %w", err)
		}
		return obj, nil
	}
	return nil, errors.New("MIME user data: too many parts")
}

// FindConfigDrive returns the device labelled config-2 (through
// /dev/disk/by-label, which udev maintains) and, when it is mounted
// already, its mount point from /proc/self/mounts. dev is "" when there is
// no config drive. Mounting it (read-only) is the caller's job.
func FindConfigDrive() (dev, mountPoint string, err error) {
	return findConfigDrive("/dev/disk/by-label", "/proc/self/mounts")
}

func findConfigDrive(byLabel, mounts string) (string, string, error) {
	dev, err := filepath.EvalSymlinks(filepath.Join(byLabel, ConfigDriveLabel))
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("config drive: %w", err)
	}
	b, err := os.ReadFile(mounts)
	if err != nil {
		return dev, "", fmt.Errorf("config drive: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == dev && (f[2] == "iso9660" || f[2] == "vfat") {
			return dev, unescapeMount(f[1]), nil
		}
	}
	return dev, "", nil
}

// unescapeMount undoes the octal escapes (\040 for a space) of
// /proc/self/mounts.
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
