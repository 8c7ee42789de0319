package reboot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gostree/gostree/heatmeta"
)

// MaxWindowLength is the longest window New accepts: a week.
const MaxWindowLength = 7 * 24 * time.Hour

// windowGate is the window policy: weekly windows in one time zone.
type windowGate struct {
	windows []heatmeta.Window
	loc     *time.Location
}

func newWindowGate(ws []heatmeta.Window, zone string) (*windowGate, error) {
	if len(ws) == 0 {
		return nil, errors.New("reboot policy window: no windows given")
	}
	loc, err := loadZone(zone)
	if err != nil {
		return nil, err
	}
	g := &windowGate{loc: loc}
	for i, w := range ws {
		if len(w.Days) == 0 {
			return nil, fmt.Errorf("reboot policy window %d: no days given", i)
		}
		for _, d := range w.Days {
			if d < time.Sunday || d > time.Saturday {
				return nil, fmt.Errorf("reboot policy window %d: %d is not a day of the week (0 Sunday .. 6 Saturday)", i, int(d))
			}
		}
		if w.Start < 0 || w.Start >= 24*time.Hour {
			return nil, fmt.Errorf("reboot policy window %d: start %v is not a time of day (00:00 to 23:59)", i, w.Start)
		}
		if w.Length < time.Minute || w.Length > MaxWindowLength {
			return nil, fmt.Errorf("reboot policy window %d: length %v is not between 1 minute and 7 days", i, w.Length)
		}
		w.Days = append([]time.Weekday(nil), w.Days...)
		g.windows = append(g.windows, w)
	}
	return g, nil
}

// loadZone resolves an IANA zone name; "" is UTC. "Local" is refused:
// the policy must mean the same on every node.
func loadZone(zone string) (*time.Location, error) {
	if zone == "" {
		return time.UTC, nil
	}
	if zone == "Local" {
		return nil, errors.New("reboot policy window: time zone \"Local\" is not allowed; name an IANA zone such as Europe/Berlin or UTC")
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("reboot policy window: unknown time zone %q: %w", clip(zone), err)
	}
	return loc, nil
}

// Check is Now inside a window; otherwise Next is when the next window
// opens.
func (g *windowGate) Check(_ context.Context, now time.Time) (Decision, error) {
	open, end, next := g.evaluate(now)
	if open != nil {
		return Decision{Now: true, Reason: fmt.Sprintf("inside reboot window %s %s until %s",
			describeWindow(*open), g.loc.String(), end.In(g.loc).Format(reasonTime))}, nil
	}
	return Decision{Reason: "outside reboot windows (" + g.Describe() + "); next opens " + next.In(g.loc).Format(reasonTime), Next: next}, nil
}

const reasonTime = "Mon 2006-01-02 15:04 MST"

// evaluate returns the window containing now (nil if none) and when the
// open windows containing now close (the latest end), and the start of
// the next window after now.
func (g *windowGate) evaluate(now time.Time) (open *heatmeta.Window, end, next time.Time) {
	y, m, d := now.In(g.loc).Date()
	base := time.Date(y, m, d, 0, 0, 0, 0, time.UTC) // calendar arithmetic only
	// A window lasts at most 7 days, so one that started 8 days ago is
	// over, and every window opens within the next 7 days.
	for off := -8; off <= 8; off++ {
		day := base.AddDate(0, 0, off)
		for i := range g.windows {
			w := &g.windows[i]
			if !slices.Contains(w.Days, day.Weekday()) {
				continue
			}
			s := wallClock(day, w.Start, g.loc)
			e := s.Add(w.Length)
			if !now.Before(s) && now.Before(e) && e.After(end) {
				open, end = w, e
			}
			if s.After(now) && (next.IsZero() || s.Before(next)) {
				next = s
			}
		}
	}
	return open, end, next
}

// wallClock is the instant at which the clock in loc shows time of day
// tod on the calendar day of day (whose zone is ignored). When that wall
// time happens twice (clocks going back), it is the first time; when it
// does not happen (clocks going forward), it is as far after the jump as
// tod is into the skipped interval (02:30 in a skipped 02:00-03:00 is
// 03:30 after the jump). time.Date alone leaves both cases unspecified
// (and in practice differs between zones east and west of UTC).
func wallClock(day time.Time, tod time.Duration, loc *time.Location) time.Time {
	y, m, d := day.Date()
	wall := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(tod)
	guess := time.Date(y, m, d, 0, 0, 0, 0, loc).Add(tod)
	// The offsets in effect around that time: zone transitions are
	// months apart, and a jump is at most a few hours.
	var offsets []int
	for _, p := range []time.Duration{-6 * time.Hour, 0, 6 * time.Hour} {
		_, off := guess.Add(p).In(loc).Zone()
		if !slices.Contains(offsets, off) {
			offsets = append(offsets, off)
		}
	}
	var first time.Time
	for _, off := range offsets {
		c := wall.Add(-time.Duration(off) * time.Second).In(loc)
		if sameWall(c, wall) && (first.IsZero() || c.Before(first)) {
			first = c
		}
	}
	if !first.IsZero() {
		return first
	}
	// In a gap: read the wall time with the offset before the jump (the
	// smaller one).
	return wall.Add(-time.Duration(slices.Min(offsets)) * time.Second).In(loc)
}

// sameWall reports whether t (in its zone) shows the date and time of
// wall (in UTC).
func sameWall(t, wall time.Time) bool {
	y, m, d := t.Date()
	wy, wm, wd := wall.Date()
	return y == wy && m == wm && d == wd && t.Hour() == wall.Hour() && t.Minute() == wall.Minute() && t.Second() == wall.Second()
}

func (g *windowGate) Release(context.Context) error { return nil }

// Describe is "window Sat,Sun 22:30+60m Europe/Berlin", windows separated by ", ".
func (g *windowGate) Describe() string {
	parts := make([]string, len(g.windows))
	for i, w := range g.windows {
		parts[i] = describeWindow(w)
	}
	return "window " + strings.Join(parts, ", ") + " " + g.loc.String()
}

func describeWindow(w heatmeta.Window) string {
	days := make([]string, len(w.Days))
	for i, d := range w.Days {
		days[i] = d.String()[:3]
	}
	start := fmt.Sprintf("%02d:%02d", int(w.Start/time.Hour), int(w.Start%time.Hour/time.Minute))
	if sec := w.Start % time.Minute; sec != 0 {
		start += fmt.Sprintf(":%02d", int(sec/time.Second))
	}
	length := w.Length.String()
	if w.Length%time.Minute == 0 {
		length = fmt.Sprintf("%dm", int(w.Length/time.Minute))
	}
	return strings.Join(days, ",") + " " + start + "+" + length
}
