package heatmeta

import (
	"encoding/json"
	"net/url"
	"strings"
)

// Redact returns a copy of a metadata document fit for printing or
// logging (print-metadata, debug logs): values of keys that name secrets
// (password, secret, token, ...), the values of inputs such as
// deploy_password and deploy_signal_id, and the query of every URL that
// carries a signature (Swift TempURLs, CFN presigned URLs) are replaced.
func Redact(doc json.RawMessage) (json.RawMessage, error) {
	v, err := decodeAny(doc)
	if err != nil {
		return nil, err
	}
	return marshalJSON(redactValue(v))
}

const redacted = "<redacted>"

func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "secret", "token", "passcode", "private_key"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// secretInputs are deployment inputs whose value is a credential.
var secretInputs = map[string]bool{"deploy_password": true, "deploy_signal_id": true}

func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		name, _ := x["name"].(string)
		for k, val := range x {
			switch {
			case secretKey(k):
				out[k] = redacted
			case k == "value" && secretInputs[name]:
				if s, ok := val.(string); ok && isURL(s) {
					out[k] = RedactURL(s)
				} else {
					out[k] = redacted
				}
			default:
				out[k] = redactValue(val)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactValue(e)
		}
		return out
	case string:
		if strings.Contains(x, "://") && strings.Contains(x, "?") {
			if u, err := url.Parse(x); err == nil && u.Host != "" && signedQuery(u.Query()) {
				return RedactURL(x)
			}
		}
		return x
	}
	return v
}

func signedQuery(q url.Values) bool {
	for k := range q {
		lk := strings.ToLower(k)
		if strings.Contains(lk, "sig") || strings.Contains(lk, "accesskey") || strings.Contains(lk, "token") || strings.Contains(lk, "credential") {
			return true
		}
	}
	return false
}

func isURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && u.Host != ""
}
