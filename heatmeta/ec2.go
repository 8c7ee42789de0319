package heatmeta

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// DefaultEC2URL is the EC2-compatible metadata service of Nova.
const DefaultEC2URL = "http://169.254.169.254/latest/meta-data"

// EC2Source ("ec2") reads the EC2-style metadata tree: first from a
// mounted config drive (ec2/latest/meta-data.json), else by walking
// <URL>/ (lines ending in "/" are directories; "0=name" entries, as in
// public-keys, are directories named "0"). The collector treats its
// result as immutable, as os-collect-config does: once cached it is not
// fetched again.
type EC2Source struct {
	URL            string // default DefaultEC2URL
	ConfigDriveDir string // mount point of the config drive, "" for none
	Client         *http.Client
	// Timeout bounds the whole walk (default 10 s, as os-collect-config).
	Timeout time.Duration
}

var _ Source = (*EC2Source)(nil)

// Limits of the walk, so a misbehaving server cannot make it endless.
const (
	ec2MaxDepth   = 8
	ec2MaxEntries = 1024
)

// Fetch reads the tree.
func (s *EC2Source) Fetch(ctx context.Context) (Metadata, error) {
	const op = "ec2"
	if s.ConfigDriveDir != "" {
		b, err := readFileLimited(filepath.Join(s.ConfigDriveDir, "ec2", "latest", "meta-data.json"))
		if err == nil {
			obj, err := parseObject(b)
			if err != nil {
				return Metadata{}, &Error{Op: op, Err: fmt.Errorf("config drive ec2/latest/meta-data.json: %w", err)}
			}
			return Metadata{Docs: []Doc{{Key: "ec2", Raw: obj}}}, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return Metadata{}, &Error{Op: op, Err: err}
		}
	}
	base := s.URL
	if base == "" {
		base = DefaultEC2URL
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return Metadata{}, &Error{Op: op, Err: errors.New("metadata_url is not an http or https URL")}
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n := 0
	tree, err := s.walk(ctx, strings.TrimRight(base, "/")+"/", 0, &n)
	if err != nil {
		return Metadata{}, err
	}
	raw, err := marshalJSON(tree)
	if err != nil {
		return Metadata{}, &Error{Op: op, Err: err}
	}
	return Metadata{Docs: []Doc{{Key: "ec2", Raw: raw}}}, nil
}

func (s *EC2Source) get(ctx context.Context, u string) (string, error) {
	op := "ec2 " + RedactURL(u)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", &Error{Op: op, Err: err}
	}
	resp, err := client(s.Client).Do(req)
	if err != nil {
		return "", httpError(op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", statusErr(op, resp.StatusCode)
	}
	b, err := readLimited(resp.Body)
	if err != nil {
		return "", httpError(op, err)
	}
	return string(b), nil
}

func (s *EC2Source) walk(ctx context.Context, dirURL string, depth int, n *int) (map[string]any, error) {
	if depth >= ec2MaxDepth {
		return nil, &Error{Op: "ec2", Err: fmt.Errorf("metadata tree deeper than %d levels", ec2MaxDepth)}
	}
	listing, err := s.get(ctx, dirURL)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, line := range strings.Split(listing, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		*n++
		if *n > ec2MaxEntries {
			return nil, &Error{Op: "ec2", Err: fmt.Errorf("metadata tree has more than %d entries", ec2MaxEntries)}
		}
		if i := strings.IndexByte(line, '='); i >= 0 {
			line = line[:i] + "/"
		}
		name := strings.TrimSuffix(line, "/")
		if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
			return nil, &Error{Op: "ec2", Err: fmt.Errorf("bad entry %q in %s", clip(line), RedactURL(dirURL))}
		}
		sub := dirURL + url.PathEscape(name)
		if strings.HasSuffix(line, "/") {
			v, err := s.walk(ctx, sub+"/", depth+1, n)
			if err != nil {
				return nil, err
			}
			out[name] = v
			continue
		}
		v, err := s.get(ctx, sub)
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}
