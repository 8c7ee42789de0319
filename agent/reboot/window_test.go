package reboot

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones below must not depend on the host's /usr/share/zoneinfo

	"github.com/gostree/gostree/heatmeta"
)

func win(start string, minutes int, days ...time.Weekday) heatmeta.Window {
	t, err := time.Parse("15:04", start)
	if err != nil {
		panic(err)
	}
	return heatmeta.Window{Days: days, Start: time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute,
		Length: time.Duration(minutes) * time.Minute}
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWindowCheck(t *testing.T) {
	sat, sun, mon, wed := time.Saturday, time.Sunday, time.Monday, time.Wednesday
	// 2026-11-28 is a Saturday. Europe/Berlin: summer time starts
	// 2026-03-29 01:00Z (02:00 CET -> 03:00 CEST) and ends 2026-10-25
	// 01:00Z (03:00 CEST -> 02:00 CET). America/New_York starts summer
	// time 2026-03-08 07:00Z (02:00 EST -> 03:00 EDT). Lord Howe Island
	// moves its clocks by 30 minutes: back on 2026-04-05 at 15:00Z (02:00
	// +11 -> 01:30 +10:30).
	tests := []struct {
		name     string
		zone     string
		windows  []heatmeta.Window
		now      string
		wantNow  bool
		wantNext string // when !wantNow
	}{
		{"inside", "UTC", []heatmeta.Window{win("22:30", 60, sat, sun)}, "2026-11-28T22:45:00Z", true, ""},
		{"at the start", "UTC", []heatmeta.Window{win("22:30", 60, sat, sun)}, "2026-11-28T22:30:00Z", true, ""},
		{"at the end", "UTC", []heatmeta.Window{win("22:30", 60, sat, sun)}, "2026-11-28T23:30:00Z", false, "2026-11-29T22:30:00Z"},
		{"before, same day", "UTC", []heatmeta.Window{win("22:30", 60, sat, sun)}, "2026-11-28T21:00:00Z", false, "2026-11-28T22:30:00Z"},
		{"after the last day: next week", "UTC", []heatmeta.Window{win("22:30", 60, sat, sun)}, "2026-11-29T23:31:00Z", false, "2026-12-05T22:30:00Z"},
		{"crosses midnight", "UTC", []heatmeta.Window{win("23:45", 60, wed)}, "2026-11-26T00:30:00Z", true, ""},
		{"crosses the week boundary Sat->Sun", "UTC", []heatmeta.Window{win("23:00", 120, sat)}, "2026-11-29T00:59:00Z", true, ""},
		{"crosses the week boundary Sun->Mon", "UTC", []heatmeta.Window{win("23:30", 60, sun)}, "2026-11-30T00:10:00Z", true, ""},
		{"crossed window over", "UTC", []heatmeta.Window{win("23:30", 60, sun)}, "2026-11-30T00:30:00Z", false, "2026-12-06T23:30:00Z"},
		{"a whole week is always open", "UTC", []heatmeta.Window{win("00:00", 7*24*60, mon)}, "2026-11-29T12:00:00Z", true, ""},
		{"earliest of several windows", "UTC", []heatmeta.Window{win("22:30", 60, sat), win("03:00", 30, wed, mon)}, "2026-11-29T12:00:00Z", false, "2026-11-30T03:00:00Z"},
		{"zone offset", "Europe/Berlin", []heatmeta.Window{win("22:30", 60, sat)}, "2026-11-28T21:45:00Z", true, ""},
		{"zone offset, before", "Europe/Berlin", []heatmeta.Window{win("22:30", 60, sat)}, "2026-11-28T21:00:00Z", false, "2026-11-28T21:30:00Z"},
		{"zone moves the weekday", "Pacific/Kiritimati", []heatmeta.Window{win("00:00", 60, mon)}, "2026-11-29T10:30:00Z", true, ""},
		{"zone moves the weekday, before", "Pacific/Kiritimati", []heatmeta.Window{win("00:00", 60, mon)}, "2026-11-29T09:00:00Z", false, "2026-11-29T10:00:00Z"},
		{"half-hour zone", "Asia/Kolkata", []heatmeta.Window{win("03:00", 30, sat)}, "2026-11-27T21:40:00Z", true, ""},
		// Spring forward: 02:30 does not exist, the window opens at 03:30 CEST.
		{"DST gap: not yet", "Europe/Berlin", []heatmeta.Window{win("02:30", 60, sun)}, "2026-03-29T01:15:00Z", false, "2026-03-29T01:30:00Z"},
		{"DST gap: open", "Europe/Berlin", []heatmeta.Window{win("02:30", 60, sun)}, "2026-03-29T01:45:00Z", true, ""},
		{"DST gap: closed after 60 real minutes", "Europe/Berlin", []heatmeta.Window{win("02:30", 60, sun)}, "2026-03-29T02:30:00Z", false, "2026-04-05T00:30:00Z"},
		// A window across the jump lasts its length in real time: 01:30 CET + 60m = 03:30 CEST.
		{"across the DST jump", "Europe/Berlin", []heatmeta.Window{win("01:30", 60, sun)}, "2026-03-29T01:15:00Z", true, ""},
		{"across the DST jump, over", "Europe/Berlin", []heatmeta.Window{win("01:30", 60, sun)}, "2026-03-29T01:30:00Z", false, "2026-04-04T23:30:00Z"},
		{"DST gap New York", "America/New_York", []heatmeta.Window{win("02:15", 60, sun)}, "2026-03-08T07:10:00Z", false, "2026-03-08T07:15:00Z"},
		// Fall back: 02:30 happens twice; the window opens at the first (CEST).
		{"DST overlap: first occurrence", "Europe/Berlin", []heatmeta.Window{win("02:30", 30, sun)}, "2026-10-25T00:45:00Z", true, ""},
		{"DST overlap: not again at the second", "Europe/Berlin", []heatmeta.Window{win("02:30", 30, sun)}, "2026-10-25T01:40:00Z", false, "2026-11-01T01:30:00Z"},
		{"DST overlap: next is the first occurrence", "Europe/Berlin", []heatmeta.Window{win("02:30", 30, sun)}, "2026-10-24T12:00:00Z", false, "2026-10-25T00:30:00Z"},
		{"30-minute DST overlap", "Australia/Lord_Howe", []heatmeta.Window{win("01:45", 10, sun)}, "2026-04-04T14:50:00Z", true, ""},
		{"30-minute DST overlap, second occurrence", "Australia/Lord_Howe", []heatmeta.Window{win("01:45", 10, sun)}, "2026-04-04T15:20:00Z", false, "2026-04-11T15:15:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow, Windows: tt.windows, TimeZone: tt.zone}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			now := utc(tt.now)
			d, err := g.Check(context.Background(), now)
			if err != nil {
				t.Fatal(err)
			}
			if d.Now != tt.wantNow {
				t.Fatalf("Now = %v, want %v (%s)", d.Now, tt.wantNow, d.Reason)
			}
			if tt.wantNow {
				if !d.Next.IsZero() || !strings.HasPrefix(d.Reason, "inside reboot window ") {
					t.Fatalf("decision %+v", d)
				}
				return
			}
			if want := utc(tt.wantNext); !d.Next.Equal(want) {
				t.Fatalf("Next = %v, want %v (%s)", d.Next.UTC(), want, d.Reason)
			}
			if !strings.Contains(d.Reason, "next opens") {
				t.Fatalf("reason %q", d.Reason)
			}
			// Asking again at Next gives Now, a moment before does not.
			if d2, _ := g.Check(context.Background(), d.Next); !d2.Now {
				t.Fatalf("not open at Next %v: %s", d.Next, d2.Reason)
			}
			if d2, _ := g.Check(context.Background(), d.Next.Add(-time.Second)); d2.Now {
				t.Fatalf("open before Next %v", d.Next)
			}
		})
	}
}

// TestWindowSweep walks a year in 10-minute steps through zones with DST
// and checks the decisions against each other: open only on the windows'
// local days, Next always later than now and at most a week ahead, every
// announced opening really open, and open for as many samples as the
// windows are long.
func TestWindowSweep(t *testing.T) {
	for _, zone := range []string{"Europe/Berlin", "America/Santiago", "Australia/Lord_Howe"} {
		g, err := New(heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow, TimeZone: zone,
			Windows: []heatmeta.Window{win("02:30", 45, time.Sunday, time.Saturday), win("23:50", 20, time.Wednesday)}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		loc, _ := time.LoadLocation(zone)
		var lastOpen time.Time
		open := 0
		for now := utc("2026-01-01T00:00:00Z"); now.Before(utc("2027-01-01T00:00:00Z")); now = now.Add(10 * time.Minute) {
			d, err := g.Check(context.Background(), now)
			if err != nil {
				t.Fatal(err)
			}
			if d.Now {
				open++
				if !d.Next.IsZero() {
					t.Fatalf("%s %v: Now with Next", zone, now)
				}
				if wd := now.In(loc).Weekday(); wd != time.Sunday && wd != time.Saturday && wd != time.Wednesday && wd != time.Thursday {
					t.Fatalf("%s %v (%v local): open on %v", zone, now, now.In(loc), wd)
				}
				continue
			}
			if !d.Next.After(now) || d.Next.Sub(now) > 7*24*time.Hour {
				t.Fatalf("%s %v: Next %v", zone, now, d.Next)
			}
			if d.Next != lastOpen {
				lastOpen = d.Next
				if d2, _ := g.Check(context.Background(), d.Next); !d2.Now {
					t.Fatalf("%s: not open at Next %v", zone, d.Next)
				}
			}
		}
		// Each week: 5 samples in each 45-minute window (02:30 to 03:10)
		// and 2 in the 20-minute one (23:50, 00:00); 52 weeks and a day.
		if open < 52*12-2 || open > 53*12 {
			t.Fatalf("%s: open in %d samples", zone, open)
		}
	}
}

func TestWindowDescribe(t *testing.T) {
	g, err := New(heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow, TimeZone: "Europe/Berlin",
		Windows: []heatmeta.Window{win("22:30", 60, time.Saturday, time.Sunday)}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := g.Describe(), "window Sat,Sun 22:30+60m Europe/Berlin"; got != want {
		t.Fatalf("Describe = %q, want %q", got, want)
	}
	g, _ = New(heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow,
		Windows: []heatmeta.Window{win("22:30", 90, time.Saturday), win("03:05", 30, time.Wednesday)}}, Options{})
	if got, want := g.Describe(), "window Sat 22:30+90m, Wed 03:05+30m UTC"; got != want {
		t.Fatalf("Describe = %q, want %q", got, want)
	}
	d, _ := g.Check(context.Background(), utc("2026-11-28T22:45:00Z"))
	if want := "inside reboot window Sat 22:30+90m UTC until Sun 2026-11-29 00:00 UTC"; d.Reason != want {
		t.Fatalf("Reason = %q, want %q", d.Reason, want)
	}
	if err := g.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNewRejects(t *testing.T) {
	w := []heatmeta.Window{win("22:30", 60, time.Saturday)}
	tests := []struct {
		name string
		p    heatmeta.RebootPolicy
		want string
	}{
		{"unknown mode", heatmeta.RebootPolicy{Mode: "sometimes"}, `unknown mode "sometimes"`},
		{"unknown zone", heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow, Windows: w, TimeZone: "Mars/Olympus_Mons"}, `unknown time zone "Mars/Olympus_Mons"`},
		{"Local zone", heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow, Windows: w, TimeZone: "Local"}, `"Local" is not allowed`},
		{"no windows", heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow}, "no windows"},
		{"no days", heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow, Windows: []heatmeta.Window{win("01:00", 5)}}, "window 0: no days"},
		{"bad day", heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow, Windows: []heatmeta.Window{win("01:00", 5, 7)}}, "7 is not a day of the week"},
		{"start past midnight", heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow, Windows: []heatmeta.Window{{Days: []time.Weekday{1}, Start: 24 * time.Hour, Length: time.Hour}}}, "is not a time of day"},
		{"negative start", heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow, Windows: []heatmeta.Window{{Days: []time.Weekday{1}, Start: -time.Minute, Length: time.Hour}}}, "is not a time of day"},
		{"zero length", heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow, Windows: []heatmeta.Window{win("01:00", 0, 1)}}, "length 0s is not between"},
		{"too long", heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow, Windows: []heatmeta.Window{win("01:00", 7*24*60+1, 1)}}, "is not between 1 minute and 7 days"},
		{"second window bad", heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow, Windows: append(w, win("01:00", 5))}, "window 1: no days"},
		{"lock URL scheme", heatmeta.RebootPolicy{Mode: heatmeta.RebootFleetLock, FleetLockURL: "ftp://lock.example/"}, "want http:// or https://"},
		{"lock URL no host", heatmeta.RebootPolicy{Mode: heatmeta.RebootFleetLock, FleetLockURL: "http:///x"}, "want http:// or https://"},
		{"lock URL empty", heatmeta.RebootPolicy{Mode: heatmeta.RebootFleetLock}, "want http:// or https://"},
		{"lock URL unparsable", heatmeta.RebootPolicy{Mode: heatmeta.RebootFleetLock, FleetLockURL: "http://[::1"}, "bad lock server URL"},
		{"lock URL query", heatmeta.RebootPolicy{Mode: heatmeta.RebootFleetLock, FleetLockURL: "https://lock.example/?x=1"}, "no query or fragment"},
		{"lock URL credentials not shown", heatmeta.RebootPolicy{Mode: heatmeta.RebootFleetLock, FleetLockURL: "https://u:secret@lock.example/#f"}, "https://u:xxxxx@lock.example/#f"},
		{"lock group", heatmeta.RebootPolicy{Mode: heatmeta.RebootFleetLock, FleetLockURL: "https://lock.example/", FleetLockGroup: "a b"}, `group "a b": only letters`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(tt.p, Options{NodeID: "n1"})
			if err == nil {
				t.Fatalf("accepted: %s", g.Describe())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

func TestImmediateAndManual(t *testing.T) {
	for _, mode := range []heatmeta.RebootMode{heatmeta.RebootDefault, heatmeta.RebootImmediate} {
		g, err := New(heatmeta.RebootPolicy{Mode: mode}, Options{MachineIDFile: "/nonexistent"})
		if err != nil {
			t.Fatal(err)
		}
		d, err := g.Check(context.Background(), time.Now())
		if err != nil || !d.Now || g.Describe() != "immediate" || g.Release(context.Background()) != nil {
			t.Fatalf("%q: %+v %v %q", mode, d, err, g.Describe())
		}
	}
	g, err := New(heatmeta.RebootPolicy{Mode: heatmeta.RebootManual}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := g.Check(context.Background(), time.Now())
	if err != nil || d.Now || d.Reason != "manual policy: run gostree-agent apply" || !d.Next.IsZero() || g.Describe() != "manual" {
		t.Fatalf("manual: %+v %v %q", d, err, g.Describe())
	}
	if err := g.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func ExampleNew_window() {
	p := heatmeta.RebootPolicy{Mode: heatmeta.RebootWindow, TimeZone: "Europe/Berlin",
		Windows: []heatmeta.Window{{Days: []time.Weekday{time.Saturday, time.Sunday}, Start: 22*time.Hour + 30*time.Minute, Length: time.Hour}}}
	g, err := New(p, Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println(g.Describe())
	d, _ := g.Check(context.Background(), time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)) // a Thursday
	fmt.Println(d.Now, d.Next.UTC())
	fmt.Println(d.Reason)
	// Output:
	// window Sat,Sun 22:30+60m Europe/Berlin
	// false 2026-11-28 21:30:00 +0000 UTC
	// outside reboot windows (window Sat,Sun 22:30+60m Europe/Berlin); next opens Sat 2026-11-28 22:30 CET
}
