package glance

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/gostree/gostree/internal/retry"
	"github.com/gostree/gostree/ostree"
)

// Payload properties: an image may carry, as its data, a self-contained
// static delta (inline superblock) to the commit, from scratch or from
// the commit in ostree_delta_from.
const (
	PropPayload   = "ostree_payload"
	PropDeltaFrom = "ostree_delta_from"
	// PayloadStaticDelta is the value of ostree_payload for a static delta.
	PayloadStaticDelta = "static-delta"
)

// Payload is image data to upload with Publish.
type Payload struct {
	// Data is the content (an inline static-delta superblock), Size bytes.
	Data io.ReadSeeker
	Size int64
	// From is the delta's base commit, zero for a from-scratch delta.
	From ostree.Checksum
}

// uploadPayload uploads the image data; the caller deletes the image if it
// fails, so nothing is published half-way. A failed upload is repeated
// only while Glance has the image "queued" (no data yet: Glance returns a
// failed upload's image there); an "active" image of the payload's size
// means an earlier attempt's upload succeeded but its answer was lost.
func (c *Client) uploadPayload(ctx context.Context, id string, p *Payload) error {
	tries := 0
	err := c.do(ctx, func(ctx context.Context) error {
		tries++
		if tries > 1 {
			img, err := images.Get(ctx, c.c, id).Extract()
			if err != nil {
				return err
			}
			switch img.Status {
			case images.ImageStatusQueued:
			case images.ImageStatusActive:
				if img.SizeBytes == p.Size {
					return nil
				}
				return fmt.Errorf("image %s is active with %d bytes, the payload has %d", id, img.SizeBytes, p.Size)
			case images.ImageStatusSaving, images.ImageStatusImporting:
				// Still storing an earlier attempt's data: ask again later.
				return &cutError{fmt.Errorf("image %s is still %s the data of an earlier attempt", id, img.Status)}
			default:
				return fmt.Errorf("image %s is %s after a failed upload", id, img.Status)
			}
		}
		if _, err := p.Data.Seek(0, io.SeekStart); err != nil {
			return err
		}
		return imagedata.Upload(ctx, c.c, id, io.LimitReader(p.Data, p.Size)).Err
	})
	return describe(err)
}

// ErrPayload is wrapped by payload download and verification failures.
var ErrPayload = errors.New("image payload")

// DownloadOptions control DownloadPayload.
type DownloadOptions struct {
	// Retries is how many times a cut transfer is resumed (default 5).
	Retries int
	// Backoff before the first retry (default 200 ms, doubling up to 32
	// times that, each ±50 %).
	Backoff time.Duration
}

// DownloadPayload downloads the image data of v into f. A partial f (from
// an earlier, interrupted call) is resumed with a Range request, and a
// transfer cut mid-way is resumed the same way, up to o.Retries times.
// The complete file is checked against the image's size and Glance's
// os_hash_value (sha512/sha256) before DownloadPayload returns; a mismatch
// truncates f, so the next try starts over.
func (c *Client) DownloadPayload(ctx context.Context, v *Version, f *os.File, o DownloadOptions) error {
	if !v.HasPayload() {
		return fmt.Errorf("image %s: %w: the image has no payload", v.ImageID, ErrPayload)
	}
	if o.Retries == 0 {
		o.Retries = 5
	}
	if o.Backoff == 0 {
		o.Backoff = 200 * time.Millisecond
	}
	policy := retry.Policy{Retries: o.Retries, Base: o.Backoff, Max: o.Backoff << 5}
	url := c.c.ServiceURL("images", v.ImageID, "file")
	var lastErr error
	for attempt := 0; attempt <= o.Retries; attempt++ {
		if attempt > 0 {
			if err := policy.Wait(ctx, attempt); err != nil {
				return err
			}
		}
		off, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return err
		}
		if off > v.PayloadSize {
			if err := truncate(f); err != nil {
				return err
			}
			off = 0
		}
		if off == v.PayloadSize && off > 0 {
			break
		}
		lastErr = c.fetchFrom(ctx, url, f, off)
		if lastErr == nil {
			break
		}
		if !IsRetryable(lastErr) || ctx.Err() != nil {
			return fmt.Errorf("image %s: %w: %w", v.ImageID, ErrPayload, lastErr)
		}
	}
	if lastErr != nil {
		return fmt.Errorf("image %s: %w: gave up after %d retries: %w", v.ImageID, ErrPayload, o.Retries, lastErr)
	}
	return verifyPayload(v, f)
}

// fetchFrom appends the image data from offset off to f.
func (c *Client) fetchFrom(ctx context.Context, url string, f *os.File, off int64) error {
	h := map[string]string{}
	if off > 0 {
		h["Range"] = "bytes=" + strconv.FormatInt(off, 10) + "-"
	}
	resp, err := c.c.Get(ctx, url, nil, &gophercloud.RequestOpts{KeepResponseBody: true, MoreHeaders: h, OkCodes: []int{200, 206}})
	if err != nil {
		return describe(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		if off > 0 { // the server ignored the range: start over
			if err := truncate(f); err != nil {
				return err
			}
		}
	case http.StatusPartialContent:
		start, ok := rangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != off {
			return fmt.Errorf("asked for bytes from %d, got Content-Range %q", off, resp.Header.Get("Content-Range"))
		}
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		return &cutError{err}
	}
	return nil
}

type cutError struct{ err error }

func (e *cutError) Error() string { return "transfer failed: " + e.err.Error() }
func (e *cutError) Unwrap() error { return e.err }

func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func truncate(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// verifyPayload checks f's size and Glance's multihash of the image data.
func verifyPayload(v *Version, f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != v.PayloadSize {
		return fmt.Errorf("image %s: %w: %d bytes downloaded, the image has %d", v.ImageID, ErrPayload, fi.Size(), v.PayloadSize)
	}
	var h hash.Hash
	switch v.PayloadHashAlgo {
	case "sha512":
		h = sha512.New()
	case "sha256":
		h = sha256.New()
	default:
		return fmt.Errorf("image %s: %w: no sha256/sha512 os_hash_value to check the download against (os_hash_algo %q)", v.ImageID, ErrPayload, v.PayloadHashAlgo)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != v.PayloadHash {
		if err := truncate(f); err != nil {
			return err
		}
		return fmt.Errorf("image %s: %w: the download's %s %s differs from the image's os_hash_value %s", v.ImageID, ErrPayload, v.PayloadHashAlgo, got, v.PayloadHash)
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// ApplyOptions control ApplyPayload.
type ApplyOptions struct {
	// Verifier, if set, checks the commit's signatures (from the delta's
	// detached metadata) before anything is written.
	Verifier ostree.CommitVerifier
	// Ref, if set, is pointed at the commit in the same transaction.
	Ref *ostree.Refspec
}

// ApplyPayload applies a downloaded payload of v (an inline static delta)
// to repo in one transaction: nothing is written unless the delta is the
// one the image names (to v.Commit, from v.PayloadFrom, which repo must
// have), self-contained, every object matches its checksum and, with a
// Verifier, the commit's signature is valid.
func ApplyPayload(ctx context.Context, repo *ostree.Repo, v *Version, f *os.File, o ApplyOptions) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(f, ostree.MaxDeltaSuperblockSize+1))
	if err != nil {
		return err
	}
	if len(b) > ostree.MaxDeltaSuperblockSize {
		return fmt.Errorf("image %s: %w: larger than %d bytes", v.ImageID, ErrPayload, ostree.MaxDeltaSuperblockSize)
	}
	d, err := ostree.ParseStaticDelta(b)
	if err != nil {
		return fmt.Errorf("image %s: %w: %w", v.ImageID, ErrPayload, err)
	}
	if d.To != v.Commit || d.From != v.PayloadFrom {
		return fmt.Errorf("image %s: %w: it is the delta %s, but the image names commit %s (from %s)", v.ImageID, ErrPayload, d.Name(), v.Commit, v.PayloadFrom)
	}
	if !d.From.IsZero() {
		ok, err := repo.HasObject(ostree.ObjectName{Checksum: d.From, Type: ostree.ObjCommit})
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("image %s: %w: a delta from commit %s, which this repository does not have", v.ImageID, ErrPayload, d.From)
		}
	}
	if o.Verifier != nil {
		var detached ostree.Metadata
		if len(d.CommitMeta) > 0 {
			if detached, err = ostree.DecodeMetadata(d.CommitMeta); err != nil {
				return fmt.Errorf("image %s: %w: detached metadata: %w", v.ImageID, ErrPayload, err)
			}
		}
		if err := o.Verifier.VerifyCommit(ctx, d.To, d.Commit, detached); err != nil {
			return fmt.Errorf("image %s: %w", v.ImageID, err)
		}
	}
	txn, err := repo.Begin(ctx)
	if err != nil {
		return err
	}
	notSelfContained := func(_ context.Context, p string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("the payload is not self-contained: it needs %s", p)
	}
	if err := txn.ApplyStaticDeltaSuperblock(ctx, d, notSelfContained, ostree.DeltaApplyOptions{}); err != nil {
		txn.Abort()
		return fmt.Errorf("image %s: %w: %w", v.ImageID, ErrPayload, err)
	}
	if o.Ref != nil {
		if err := txn.SetRef(*o.Ref, d.To); err != nil {
			txn.Abort()
			return err
		}
	}
	return txn.Commit()
}
