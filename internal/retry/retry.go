// Package retry runs an operation again after transient failures, with a
// bounded number of attempts and jittered exponential backoff. It is what
// the OpenStack clients (packages swift and glance, internal/osauth) use
// for calls that are safe to repeat.
package retry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy says how often and how long to wait.
type Policy struct {
	// Retries is how many times a failed attempt is repeated (0: the
	// default 4; negative: never).
	Retries int
	// Base is the delay before the first retry, doubled for each further
	// one up to Max, each with ±50 % jitter (default 250 ms).
	Base time.Duration
	// Max bounds one delay (default 4 s).
	Max time.Duration
}

// Default is the policy of the zero Policy: 4 retries after about 0.25,
// 0.5, 1 and 2 s (3.75 s of waiting in all, ±50 %).
var Default = Policy{Retries: 4, Base: 250 * time.Millisecond, Max: 4 * time.Second}

func (p Policy) norm() Policy {
	switch {
	case p.Retries == 0:
		p.Retries = Default.Retries
	case p.Retries < 0:
		p.Retries = 0
	}
	if p.Base <= 0 {
		p.Base = Default.Base
	}
	if p.Max <= 0 {
		p.Max = Default.Max
	}
	return p
}

// Attempts is the largest number of attempts Do makes.
func (p Policy) Attempts() int { return p.norm().Retries + 1 }

// Delay is the wait before retry number n (1 for the first retry),
// jittered by ±50 %.
func (p Policy) Delay(n int) time.Duration {
	p = p.norm()
	d := p.Base << min(max(n-1, 0), 20)
	if d > p.Max || d <= 0 {
		d = p.Max
	}
	return d/2 + rand.N(d+1)
}

// Wait sleeps before retry number n; it returns ctx's error if ctx ends
// first.
func (p Policy) Wait(ctx context.Context, n int) error {
	return Sleep(ctx, p.Delay(n))
}

// Sleep waits d; it returns ctx's error if ctx ends first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// GaveUpError is returned by Do when every attempt failed with a
// retryable error; it wraps the last one.
type GaveUpError struct {
	Attempts int
	Err      error
}

func (e *GaveUpError) Error() string {
	return fmt.Sprintf("%v (gave up after %d attempts)", e.Err, e.Attempts)
}

func (e *GaveUpError) Unwrap() error { return e.Err }

// Do calls fn until it succeeds, fails with an error retryable does not
// accept, ctx ends, or the policy's attempts are used up (then the error
// is a *GaveUpError wrapping the last failure). A permanent failure is
// returned as fn returned it.
func Do(ctx context.Context, p Policy, retryable func(error) bool, fn func(ctx context.Context) error) error {
	p = p.norm()
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return err
		}
		if attempt >= p.Retries {
			if attempt == 0 {
				return err
			}
			return &GaveUpError{Attempts: attempt + 1, Err: err}
		}
		if werr := p.Wait(ctx, attempt+1); werr != nil {
			return fmt.Errorf("%w (while waiting to retry: %w)", err, werr)
		}
	}
}
