package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

var errTransient = errors.New("transient")
var errPermanent = errors.New("permanent")

func isTransient(err error) bool { return errors.Is(err, errTransient) }

func TestDo(t *testing.T) {
	fast := Policy{Retries: 3, Base: time.Microsecond, Max: time.Millisecond}
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		fails     int   // transient failures before success
		final     error // returned after the transient failures (nil: success)
		wantCalls int
		wantErr   error
		gaveUp    bool
	}{
		{"success", 0, nil, 1, nil, false},
		{"recovers", 2, nil, 3, nil, false},
		{"recovers on the last attempt", 3, nil, 4, nil, false},
		{"gives up", 10, nil, 4, errTransient, true},
		{"permanent at once", 0, errPermanent, 1, errPermanent, false},
		{"permanent after transient", 1, errPermanent, 2, errPermanent, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := Do(ctx, fast, isTransient, func(context.Context) error {
				calls++
				if calls <= tc.fails {
					return errTransient
				}
				return tc.final
			})
			if calls != tc.wantCalls {
				t.Errorf("%d calls, want %d", calls, tc.wantCalls)
			}
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			var g *GaveUpError
			if errors.As(err, &g) != tc.gaveUp || tc.gaveUp && g.Attempts != 4 {
				t.Errorf("error %v: gave up = %v, want %v after 4 attempts", err, errors.As(err, &g), tc.gaveUp)
			}
		})
	}
}

func TestDoNoRetries(t *testing.T) {
	calls := 0
	err := Do(context.Background(), Policy{Retries: -1}, isTransient, func(context.Context) error { calls++; return errTransient })
	var g *GaveUpError
	if calls != 1 || !errors.Is(err, errTransient) || errors.As(err, &g) {
		t.Fatalf("Retries -1: %d calls, %v", calls, err)
	}
}

func TestDoCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Do(ctx, Policy{Retries: 5, Base: time.Hour, Max: time.Hour}, isTransient, func(context.Context) error {
		calls++
		cancel()
		return errTransient
	})
	if calls != 1 || !errors.Is(err, errTransient) {
		t.Fatalf("canceled: %d calls, %v", calls, err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel2() }()
	err = Do(ctx2, Policy{Retries: 5, Base: time.Hour, Max: time.Hour}, isTransient, func(context.Context) error { return errTransient })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errTransient) {
		t.Fatalf("canceled while waiting: %v", err)
	}
}

func TestDelay(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for n := 1; n <= 30; n++ {
		want := min(p.Base<<(n-1), p.Max)
		if n > 20 {
			want = p.Max
		}
		for i := 0; i < 20; i++ {
			if d := p.Delay(n); d < want/2 || d > want+want/2 {
				t.Fatalf("Delay(%d) = %v, want %v ±50%%", n, d, want)
			}
		}
	}
	if Default.Attempts() != 5 || (Policy{}).Attempts() != 5 || (Policy{Retries: -1}).Attempts() != 1 {
		t.Fatal("Attempts")
	}
}
