package swift

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Limits are a Swift cluster's constraints and features, from GET /info.
type Limits struct {
	MaxFileSize           int64
	MaxObjectNameLength   int
	ContainerListingLimit int
	// TempURLDigests lists the digests the cluster accepts for TempURLs
	// (nil when tempurl is not enabled).
	TempURLDigests []string
	StaticWeb      bool
	// MaxDeletesPerRequest of bulk delete, 0 when bulk delete is off.
	MaxDeletesPerRequest int
}

// DefaultLimits are Swift's defaults, used when /info is not exposed.
var DefaultLimits = Limits{MaxFileSize: 5368709122, MaxObjectNameLength: 1024, ContainerListingLimit: 10000}

// GetLimits reads /info of the cluster serving endpoint (an object-store
// URL such as http://host:8080/v1/AUTH_x). A cluster that hides /info
// (404) gets DefaultLimits.
func GetLimits(ctx context.Context, client *http.Client, endpoint string) (Limits, error) {
	i := strings.Index(endpoint, "/v1/")
	if i < 0 {
		return Limits{}, fmt.Errorf("swift: endpoint %q has no /v1/ path", endpoint)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint[:i]+"/info", nil)
	if err != nil {
		return Limits{}, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return Limits{}, fmt.Errorf("swift: GET /info: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return DefaultLimits, nil
	}
	if resp.StatusCode != http.StatusOK {
		return Limits{}, fmt.Errorf("swift: GET /info: HTTP %d", resp.StatusCode)
	}
	l, err := parseInfo(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Limits{}, fmt.Errorf("swift: GET /info: %w", err)
	}
	return l, nil
}

// parseInfo parses the JSON of /info.
func parseInfo(r io.Reader) (Limits, error) {
	var doc struct {
		Swift struct {
			MaxFileSize           int64 `json:"max_file_size"`
			MaxObjectNameLength   int   `json:"max_object_name_length"`
			ContainerListingLimit int   `json:"container_listing_limit"`
		} `json:"swift"`
		TempURL *struct {
			AllowedDigests []string `json:"allowed_digests"`
		} `json:"tempurl"`
		StaticWeb  *struct{} `json:"staticweb"`
		BulkDelete *struct {
			MaxDeletesPerRequest int `json:"max_deletes_per_request"`
		} `json:"bulk_delete"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return Limits{}, err
	}
	l := DefaultLimits
	if doc.Swift.MaxFileSize > 0 {
		l.MaxFileSize = doc.Swift.MaxFileSize
	}
	if doc.Swift.MaxObjectNameLength > 0 {
		l.MaxObjectNameLength = doc.Swift.MaxObjectNameLength
	}
	if doc.Swift.ContainerListingLimit > 0 {
		l.ContainerListingLimit = doc.Swift.ContainerListingLimit
	}
	if doc.TempURL != nil {
		l.TempURLDigests = doc.TempURL.AllowedDigests
		if l.TempURLDigests == nil {
			l.TempURLDigests = []string{"sha1", "sha256", "sha512"}
		}
	}
	l.StaticWeb = doc.StaticWeb != nil
	if doc.BulkDelete != nil {
		l.MaxDeletesPerRequest = doc.BulkDelete.MaxDeletesPerRequest
	}
	return l, nil
}
