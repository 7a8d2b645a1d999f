package config

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseScheduleErrors(t *testing.T) {
	for spec, want := range map[string]string{
		"":                     "has 5 fields",
		"0 0 * *":              "this has 4",
		"0 0 * * * *":          "this has 6",
		"60 * * * *":           "minute 60 is out of range 0-59",
		"* 24 * * *":           "hour 24 is out of range 0-23",
		"0 0 0 * *":            "day of month 0 is out of range 1-31",
		"0 0 * 13 *":           "month 13 is out of range 1-12",
		"0 0 * * 8":            "day of week 8 is out of range 0-7",
		"0 0 * * monday":       `day of week "monday": not a number or a name (sun…sat)`,
		"a * * * *":            `minute "a": not a number`,
		"-1 * * * *":           "minute: missing number",
		"1- * * * *":           "minute: missing number",
		"5/10 * * * *":         "a step needs * or a range before it",
		"*/0 * * * *":          `step "0" is not a whole number of 1 or more`,
		"*/60 * * * *":         "step 60 is wider than the range 0-59",
		"5-1 * * * *":          "starts after it ends",
		"0 0 * * fri-mon":      "starts after it ends",
		"1,,2 * * * *":         "empty list element",
		"0 0 31 2 *":           "no such date exists",
		"0 0 30,31 2 *":        "no such date exists",
		"@reboot":              "unknown name",
		"every day":            "has 5 fields",
		"0 0 * * +1":           "not a number",
		"0 0 1-40 * *":         "out of range",
		"0 0 * jan-feb/2/3 *":  "not a whole number",
		"0 0 * * sun-sat/8":    "wider than the range",
		"0 0 */2,31-30 * *":    "starts after it ends",
		"0 0 * * 1-5/0":        "not a whole number of 1 or more",
		"0 0 1 1 * extra args": "this has 7",
	} {
		_, err := ParseSchedule(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error containing %q", spec, err, want)
		}
	}
}

// TestOnCalendar checks conversions and the cron semantics they keep.
func TestOnCalendar(t *testing.T) {
	for spec, want := range map[string][]string{
		"hourly":              {"*-*-* *:00:00"},
		"daily":               {"*-*-* 00:00:00"},
		"weekly":              {"Mon *-*-* 00:00:00"},
		"monthly":             {"*-*-01 00:00:00"},
		"@weekly":             {"Sun *-*-* 00:00:00"},
		"@yearly":             {"*-01-01 00:00:00"},
		"*/15 * * * *":        {"*-*-* *:00/15:00"},
		"5-59/15 * * * *":     {"*-*-* *:05/15:00"},
		"0,30 9-17 * * 1-5":   {"Mon..Fri *-*-* 09..17:00,30:00"},
		"30 2 * * SAT,sun":    {"Sat,Sun *-*-* 02:30:00"},
		"0 0 * * 0-7/2":       {"Tue,Thu,Sat,Sun *-*-* 00:00:00"},
		"0 3 1,15 * *":        {"*-*-01,15 03:00:00"},
		"0 0 */2 * 1":         {"Mon *-*-01/2 00:00:00"},
		"0 0 1 * mon":         {"Mon *-*-* 00:00:00", "*-*-01 00:00:00"},
		"0 0 1-31 * mon":      {"*-*-* 00:00:00"},
		"15 4 * jan-mar/2 *":  {"*-01,03-* 04:15:00"},
		"0 12 * * 1,2,3,5":    {"Mon..Wed,Fri *-*-* 12:00:00"},
		"1,2,3,10 0 * * *":    {"*-*-* 00:01..03,10:00"},
		"0 0-23/6 * 12 *":     {"*-12-* 00/6:00:00"},
		"0 0 29 2 *":          {"*-02-29 00:00:00"},
		"7 7 7 7 7":           {"Sun *-07-* 07:07:00", "*-07-07 07:07:00"},
		" 0   1  *  *  * ":    {"*-*-* 01:00:00"},
		"0 0 * * mon-fri,sun": {"Mon..Fri,Sun *-*-* 00:00:00"},
	} {
		s, err := ParseSchedule(spec)
		if err != nil {
			t.Errorf("%q: %v", spec, err)
			continue
		}
		if got := s.OnCalendar(); !slices.Equal(got, want) {
			t.Errorf("%q: OnCalendar %q, want %q", spec, got, want)
		}
	}
}

func TestScheduleMatches(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		spec, from string
		next       []string
	}{
		// Both day fields restricted: either matches (2026-12-07 is a Monday).
		{"0 0 1 * mon", "2026-12-01 00:00", []string{"2026-12-07 00:00", "2026-12-14 00:00", "2026-12-21 00:00", "2026-12-28 00:00", "2027-01-01 00:00", "2027-01-04 00:00"}},
		// A starred day field: both must match.
		{"0 0 */2 * 1", "2026-12-01 00:00", []string{"2026-12-07 00:00", "2026-12-21 00:00", "2027-01-11 00:00"}},
		{"30 2 * * 1-5", "2026-12-04 03:00", []string{"2026-12-07 02:30", "2026-12-08 02:30"}},
		{"*/20 1 * * *", "2026-12-01 00:59", []string{"2026-12-01 01:00", "2026-12-01 01:20", "2026-12-01 01:40", "2026-12-02 01:00"}},
		{"0 0 29 2 *", "2026-12-01 00:00", []string{"2028-02-29 00:00", "2032-02-29 00:00"}},
	} {
		s, err := ParseSchedule(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		cur := at(tc.from)
		for _, w := range tc.next {
			cur = s.Next(cur)
			if !cur.Equal(at(w)) {
				t.Errorf("%q: next %v, want %s", tc.spec, cur, w)
				break
			}
			if !s.Matches(cur) {
				t.Errorf("%q: Next returned %v, which does not match", tc.spec, cur)
			}
		}
	}
}

func TestInterval(t *testing.T) {
	day := 24 * time.Hour
	for spec, want := range map[string]time.Duration{
		"hourly": time.Hour, "daily": day, "weekly": 7 * day, "monthly": 31 * day,
		"*/15 * * * *": 15 * time.Minute, "30 2 * * 1-5": 3 * day, "0 9,17 * * *": 16 * time.Hour,
		"0 0 29 2 *": (366 + 3*365) * day, "0 0 1 1,7 *": 184 * day,
	} {
		s, err := ParseSchedule(spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Interval(); got != want {
			t.Errorf("%q: interval %v, want %v", spec, got, want)
		}
	}
}

// TestOnCalendarAgainstSystemd has systemd compute the next elapses of the
// converted calendar events and compares them with cron's, as Next gives
// them. It skips where systemd-analyze is missing.
func TestOnCalendarAgainstSystemd(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not found (apt-get install systemd); the conversions are still checked by TestOnCalendar")
	}
	const iterations = 25
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, spec := range []string{
		"hourly", "daily", "weekly", "monthly", "@yearly", "*/15 * * * *", "5-59/15 * * * *",
		"0,30 9-17 * * 1-5", "30 2 * * sat,sun", "0 0 * * 0-7/2", "0 3 1,15 * *", "0 0 */2 * 1",
		"0 0 1 * mon", "15 4 * jan-mar/2 *", "0 0-23/6 * 12 *", "7 7 7 7 7", "0 0 29 2 *", "1,2,3,10 0 * * *",
	} {
		s, err := ParseSchedule(spec)
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"calendar", "--iterations=" + strconv.Itoa(iterations), "--base-time=@" + strconv.FormatInt(base.Unix(), 10)}
		cmd := exec.Command("systemd-analyze", append(args, s.OnCalendar()...)...)
		cmd.Env = append(os.Environ(), "TZ=UTC")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: systemd-analyze %q: %v\n%s", spec, s.OnCalendar(), err, out)
		}
		var got []time.Time
		for _, l := range strings.Split(string(out), "\n") {
			_, v, ok := strings.Cut(l, ": ")
			if l = strings.TrimSpace(l); !ok || !(strings.HasPrefix(l, "Next elapse:") || strings.HasPrefix(l, "Iter. #")) {
				continue
			}
			tm, err := time.Parse("Mon 2006-01-02 15:04:05 MST", strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("%q: systemd-analyze printed %q: %v", spec, l, err)
			}
			if !slices.ContainsFunc(got, tm.Equal) {
				got = append(got, tm)
			}
		}
		slices.SortFunc(got, func(a, b time.Time) int { return a.Compare(b) })
		got = got[:min(len(got), iterations)]
		cur := base
		for i, g := range got {
			cur = s.Next(cur)
			if !cur.Equal(g) {
				t.Errorf("%q (OnCalendar %q): elapse %d is %v, cron runs at %v", spec, s.OnCalendar(), i+1, g, cur)
				break
			}
		}
	}
}
