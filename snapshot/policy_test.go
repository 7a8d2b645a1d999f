package snapshot

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	// The zone database is compiled into the test binary so that the DST
	// cases run (and mean the same) on machines without /usr/share/zoneinfo.
	_ "time/tzdata"

	"snap/chunk"
)

// policyLayout prints a snapshot time in the test's zone; the zone abbreviation
// tells the two 02:30 of a fall-back night apart.
const policyLayout = "2006-01-02 15:04 MST"

func policyBerlin(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatalf("load Europe/Berlin (embedded through time/tzdata): %v", err)
	}
	return loc
}

// policySnap makes a snapshot at the instant at; its ID is derived from
// the time and tags so IDs are unique and the same in every run.
func policySnap(at time.Time, tags ...string) *Snapshot {
	s := &Snapshot{Time: at, Hostname: "h", Paths: []string{"/data"}, Tags: tags}
	s.ID = chunk.Hash([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + strings.Join(tags, ",")))
	return s
}

// policyAt parses a wall-clock time "2006-01-02 15:04" in loc. An ambiguous time
// (the repeated hour of a fall-back night) resolves to the first one, as Go does.
func policyAt(t testing.TB, loc *time.Location, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// policySeries makes one snapshot every step of real time from first to last
// (both included), leaving out those inside any of the [from, to) gaps.
func policySeries(first, last time.Time, step time.Duration, gaps ...[2]time.Time) []*Snapshot {
	var out []*Snapshot
next:
	for ts := first; !ts.After(last); ts = ts.Add(step) {
		for _, g := range gaps {
			if !ts.Before(g[0]) && ts.Before(g[1]) {
				continue next
			}
		}
		out = append(out, policySnap(ts))
	}
	return out
}

// policyEveryHour lists the wall times of hourly snapshots from first to last,
// newest first, in policyLayout: the expectation for a contiguous stretch.
func policyEveryHour(t testing.TB, loc *time.Location, first, last string) []string {
	var out []string
	for ts := policyAt(t, loc, last); !ts.Before(policyAt(t, loc, first)); ts = ts.Add(-time.Hour) {
		out = append(out, ts.In(loc).Format(policyLayout))
	}
	return out
}

// policyKept lists the kept snapshots of ds in policyLayout, newest first.
func policyKept(ds []Decision, loc *time.Location) []string {
	var out []string
	for _, d := range ds {
		if d.Keep {
			out = append(out, d.Snapshot.Time.In(loc).Format(policyLayout))
		}
	}
	return out
}

// policyReasonsAt returns the reasons of the snapshot at wall time w (in policyLayout).
func policyReasonsAt(ds []Decision, loc *time.Location, w string) ([]string, bool) {
	for _, d := range ds {
		if d.Snapshot.Time.In(loc).Format(policyLayout) == w {
			return d.Reasons, true
		}
	}
	return nil, false
}

// policyDiff describes how got differs from want, briefly.
func policyDiff(got, want []string) string {
	in := func(list []string) map[string]bool {
		m := map[string]bool{}
		for _, s := range list {
			m[s] = true
		}
		return m
	}
	g, w := in(got), in(want)
	var extra, missing []string
	for _, s := range got {
		if !w[s] {
			extra = append(extra, s)
		}
	}
	for _, s := range want {
		if !g[s] {
			missing = append(missing, s)
		}
	}
	short := func(l []string) string {
		if len(l) > 8 {
			return strings.Join(l[:8], ", ") + fmt.Sprintf(" and %d more", len(l)-8)
		}
		return strings.Join(l, ", ")
	}
	if len(extra) == 0 && len(missing) == 0 {
		return "same snapshots in another order"
	}
	return fmt.Sprintf("kept but not wanted: [%s]; wanted but not kept: [%s]", short(extra), short(missing))
}

type policyCase struct {
	name        string
	p           Policy
	want        []string            // kept snapshots, newest first
	onlyReasons bool                // check wantReasons only, not want
	wantReasons map[string][]string // reasons of some snapshots
}

func policyRunCases(t *testing.T, loc *time.Location, snaps []*Snapshot, cases []policyCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := ApplyPolicy(snaps, c.p, loc)
			if len(ds) != len(snaps) {
				t.Fatalf("%d decisions for %d snapshots", len(ds), len(snaps))
			}
			got := policyKept(ds, loc)
			if !c.onlyReasons && !slices.Equal(got, c.want) {
				t.Errorf("kept %d snapshots, want %d; %s", len(got), len(c.want), policyDiff(got, c.want))
			}
			for w, want := range c.wantReasons {
				r, ok := policyReasonsAt(ds, loc, w)
				if !ok {
					t.Errorf("no snapshot at %s", w)
				} else if !slices.Equal(r, want) {
					t.Errorf("reasons for %s = %q, want %q", w, r, want)
				}
			}
		})
	}
}

// TestPolicyTwoYearsHourly applies policies to two years of hourly
// snapshots in Berlin (two DST changes a year) with two gaps: all of August
// 2027, and 2028-12-25 to 2028-12-27. The newest snapshot is 2028-12-31
// 23:30 CET, a Sunday, the last day of ISO week 2028-W52; 2027-01-01 was a
// Friday, so the first three days belong to ISO week 2026-W53.
func TestPolicyTwoYearsHourly(t *testing.T) {
	loc := policyBerlin(t)
	snaps := policySeries(policyAt(t, loc, "2027-01-01 00:30"), policyAt(t, loc, "2028-12-31 23:30"), time.Hour,
		[2]time.Time{policyAt(t, loc, "2027-08-01 00:00"), policyAt(t, loc, "2027-09-01 00:00")},
		[2]time.Time{policyAt(t, loc, "2028-12-25 00:00"), policyAt(t, loc, "2028-12-28 00:00")})
	tag := func(w string, tags ...string) {
		for i, s := range snaps {
			if s.Time.In(loc).Format(policyLayout) == w {
				snaps[i] = policySnap(s.Time, tags...)
				return
			}
		}
		t.Fatalf("no snapshot at %s to tag", w)
	}
	tag("2027-05-05 12:30 CEST", "important")
	tag("2027-03-03 03:30 CET", "a", "b")
	tag("2027-04-04 04:30 CEST", "a")
	// Shuffle: ApplyPolicy must not depend on the input order.
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(snaps), func(i, j int) { snaps[i], snaps[j] = snaps[j], snaps[i] })

	var untaggedTimes []time.Time
	for _, s := range snaps {
		if len(s.Tags) == 0 {
			untaggedTimes = append(untaggedTimes, s.Time)
		}
	}
	slices.SortFunc(untaggedTimes, func(a, b time.Time) int { return b.Compare(a) })
	var untagged []string
	for _, ts := range untaggedTimes {
		untagged = append(untagged, ts.In(loc).Format(policyLayout))
	}
	// 2028-12-31 23:30 - 1y = 2027-12-31, - 5m = 2027-07-31, - 7d =
	// 2027-07-24 23:30, - 3h = 2027-07-24 20:30 (CEST, excluded); minus
	// the two gaps.
	withinLong := slices.Concat(policyEveryHour(t, loc, "2028-12-28 00:30", "2028-12-31 23:30"),
		policyEveryHour(t, loc, "2027-09-01 00:30", "2028-12-24 23:30"),
		policyEveryHour(t, loc, "2027-07-24 21:30", "2027-07-31 23:30"))

	cases := []policyCase{
		{name: "last 3", p: Policy{Last: 3},
			want: []string{"2028-12-31 23:30 CET", "2028-12-31 22:30 CET", "2028-12-31 21:30 CET"},
			wantReasons: map[string][]string{
				"2028-12-31 23:30 CET": {"last 3"},
				"2028-12-31 20:30 CET": nil,
			}},
		{name: "last 1", p: Policy{Last: 1},
			want:        []string{"2028-12-31 23:30 CET"},
			wantReasons: map[string][]string{"2028-12-31 23:30 CET": {"last snapshot"}}},
		{name: "daily 7 counts only days with snapshots", p: Policy{Daily: 7},
			want: []string{"2028-12-31 23:30 CET", "2028-12-30 23:30 CET", "2028-12-29 23:30 CET", "2028-12-28 23:30 CET",
				"2028-12-24 23:30 CET", "2028-12-23 23:30 CET", "2028-12-22 23:30 CET"},
			wantReasons: map[string][]string{"2028-12-24 23:30 CET": {"daily 2028-12-24"}}},
		{name: "within-daily 7d counts calendar days", p: Policy{WithinDaily: Duration{Days: 7}},
			// The window starts after 2028-12-24 23:30; that snapshot sits
			// exactly on the edge and is out, as in restic.
			want: []string{"2028-12-31 23:30 CET", "2028-12-30 23:30 CET", "2028-12-29 23:30 CET", "2028-12-28 23:30 CET"},
			wantReasons: map[string][]string{
				"2028-12-28 23:30 CET": {"daily 2028-12-28 (within 7d)"},
				"2028-12-28 22:30 CET": nil,
			}},
		{name: "hourly 3", p: Policy{Hourly: 3},
			want:        []string{"2028-12-31 23:30 CET", "2028-12-31 22:30 CET", "2028-12-31 21:30 CET"},
			wantReasons: map[string][]string{"2028-12-31 21:30 CET": {"hourly 2028-12-31 21:00"}}},
		{name: "weekly 4", p: Policy{Weekly: 4},
			want: []string{"2028-12-31 23:30 CET", "2028-12-24 23:30 CET", "2028-12-17 23:30 CET", "2028-12-10 23:30 CET"},
			wantReasons: map[string][]string{
				"2028-12-31 23:30 CET": {"weekly 2028-W52"},
				"2028-12-10 23:30 CET": {"weekly 2028-W49"},
			}},
		{name: "weekly unlimited names ISO years", p: Policy{Weekly: Unlimited},
			onlyReasons: true, // the count is checked below
			wantReasons: map[string][]string{
				"2027-01-03 23:30 CET": {"weekly 2026-W53"},
				"2027-01-01 00:30 CET": {"oldest weekly 2026-W53"},
				"2028-01-02 23:30 CET": {"weekly 2027-W52"},
				"2027-01-10 23:30 CET": {"weekly 2027-W01"},
			}},
		{name: "monthly 18 skips the empty August 2027", p: Policy{Monthly: 18},
			want: []string{
				"2028-12-31 23:30 CET", "2028-11-30 23:30 CET", "2028-10-31 23:30 CET", "2028-09-30 23:30 CEST",
				"2028-08-31 23:30 CEST", "2028-07-31 23:30 CEST", "2028-06-30 23:30 CEST", "2028-05-31 23:30 CEST",
				"2028-04-30 23:30 CEST", "2028-03-31 23:30 CEST", "2028-02-29 23:30 CET", "2028-01-31 23:30 CET",
				"2027-12-31 23:30 CET", "2027-11-30 23:30 CET", "2027-10-31 23:30 CET", "2027-09-30 23:30 CEST",
				"2027-07-31 23:30 CEST", "2027-06-30 23:30 CEST",
			},
			wantReasons: map[string][]string{"2028-02-29 23:30 CET": {"monthly 2028-02"}}},
		{name: "yearly unlimited keeps the oldest too", p: Policy{Yearly: Unlimited},
			want: []string{"2028-12-31 23:30 CET", "2027-12-31 23:30 CET", "2027-01-01 00:30 CET"},
			wantReasons: map[string][]string{
				"2027-12-31 23:30 CET": {"yearly 2027"},
				"2027-01-01 00:30 CET": {"oldest yearly 2027"},
			}},
		{name: "yearly 5 with two years keeps the oldest", p: Policy{Yearly: 5},
			want: []string{"2028-12-31 23:30 CET", "2027-12-31 23:30 CET", "2027-01-01 00:30 CET"}},
		{name: "yearly 2 is used up before the oldest", p: Policy{Yearly: 2},
			want: []string{"2028-12-31 23:30 CET", "2027-12-31 23:30 CET"}},
		{name: "within 2d is exclusive at its start", p: Policy{Within: Duration{Days: 2}},
			want:        policyEveryHour(t, loc, "2028-12-30 00:30", "2028-12-31 23:30"),
			wantReasons: map[string][]string{"2028-12-30 00:30 CET": {"within 2d"}, "2028-12-29 23:30 CET": nil}},
		{name: "within 1y5m7d3h", p: Policy{Within: Duration{Years: 1, Months: 5, Days: 7, Hours: 3}},
			want: withinLong},
		{name: "tags", p: Policy{Tags: []TagSet{{"important"}, {"a", "b"}}},
			want: []string{"2027-05-05 12:30 CEST", "2027-03-03 03:30 CET"},
			wantReasons: map[string][]string{
				"2027-05-05 12:30 CEST": {"tag important"},
				"2027-03-03 03:30 CET":  {"tag a,b"},
				"2027-04-04 04:30 CEST": nil,
			}},
		{name: "empty tag keeps the untagged", p: Policy{Tags: []TagSet{{""}}},
			want: untagged, wantReasons: map[string][]string{"2028-12-31 23:30 CET": {"tag untagged"}}},
		{name: "a tag nobody has still keeps the newest", p: Policy{Tags: []TagSet{{"nope"}}},
			want:        []string{"2028-12-31 23:30 CET"},
			wantReasons: map[string][]string{"2028-12-31 23:30 CET": {ReasonNewest}}},
		{name: "daily weekly monthly yearly", p: Policy{Daily: 7, Weekly: 4, Monthly: 6, Yearly: Unlimited},
			want: []string{
				"2028-12-31 23:30 CET", "2028-12-30 23:30 CET", "2028-12-29 23:30 CET", "2028-12-28 23:30 CET",
				"2028-12-24 23:30 CET", "2028-12-23 23:30 CET", "2028-12-22 23:30 CET",
				"2028-12-17 23:30 CET", "2028-12-10 23:30 CET",
				"2028-11-30 23:30 CET", "2028-10-31 23:30 CET", "2028-09-30 23:30 CEST", "2028-08-31 23:30 CEST", "2028-07-31 23:30 CEST",
				"2027-12-31 23:30 CET", "2027-01-01 00:30 CET",
			},
			wantReasons: map[string][]string{
				"2028-12-31 23:30 CET": {"daily 2028-12-31", "weekly 2028-W52", "monthly 2028-12", "yearly 2028"},
				"2028-12-24 23:30 CET": {"daily 2028-12-24", "weekly 2028-W51"},
				"2028-11-30 23:30 CET": {"monthly 2028-11"},
				"2027-01-01 00:30 CET": {"oldest yearly 2027"},
			}},
	}
	policyRunCases(t, loc, snaps, cases)
	t.Run("weekly unlimited count", func(t *testing.T) {
		ds := ApplyPolicy(snaps, Policy{Weekly: Unlimited}, loc)
		// 2026-W53 to 2028-W52 is 1 + 52 + 52 = 105 weeks; the four weeks
		// wholly inside August 2027 (W31 to W34: Aug 2 to Aug 29) have no
		// snapshots, and the oldest snapshot is kept as well.
		if n := len(policyKept(ds, loc)); n != 105-4+1 {
			t.Errorf("kept %d snapshots, want %d", n, 105-4+1)
		}
	})
}

// TestPolicyDST checks the buckets and windows on the nights Berlin changes
// its clocks: 2027-03-28 02:00 CET becomes 03:00 CEST, and 2027-10-31
// 03:00 CEST becomes 02:00 CET, so 02:30 happens twice.
func TestPolicyDST(t *testing.T) {
	loc := policyBerlin(t)
	fall := policySeries(policyAt(t, loc, "2027-10-29 00:30"), policyAt(t, loc, "2027-10-31 05:30"), time.Hour)
	dayOf25 := policyEveryHour(t, loc, "2027-10-30 06:30", "2027-10-31 05:30")
	if len(dayOf25) != 25 || dayOf25[3] != "2027-10-31 02:30 CET" || dayOf25[4] != "2027-10-31 02:30 CEST" {
		t.Fatalf("the expectation itself is wrong: %q", dayOf25)
	}
	policyRunCases(t, loc, fall, []policyCase{
		{name: "the repeated hour is one bucket", p: Policy{Hourly: 7},
			want: []string{"2027-10-31 05:30 CET", "2027-10-31 04:30 CET", "2027-10-31 03:30 CET",
				"2027-10-31 02:30 CET", "2027-10-31 01:30 CEST", "2027-10-31 00:30 CEST", "2027-10-30 23:30 CEST"},
			wantReasons: map[string][]string{
				"2027-10-31 02:30 CET":  {"hourly 2027-10-31 02:00"},
				"2027-10-31 02:30 CEST": nil,
			}},
		{name: "hours of within are real hours", p: Policy{Within: Duration{Hours: 3}},
			want: []string{"2027-10-31 05:30 CET", "2027-10-31 04:30 CET", "2027-10-31 03:30 CET"}},
		{name: "a day of within is 25 hours that night", p: Policy{Within: Duration{Days: 1}},
			// From 2027-10-30 05:30 CEST (excluded) to 2027-10-31 05:30 CET,
			// with 02:30 twice.
			want: dayOf25},
		{name: "daily unlimited", p: Policy{Daily: Unlimited},
			want:        []string{"2027-10-31 05:30 CET", "2027-10-30 23:30 CEST", "2027-10-29 23:30 CEST", "2027-10-29 00:30 CEST"},
			wantReasons: map[string][]string{"2027-10-29 00:30 CEST": {"oldest daily 2027-10-29"}}},
	})

	spring := policySeries(policyAt(t, loc, "2027-03-28 00:30"), policyAt(t, loc, "2027-03-28 04:30"), time.Hour)
	policyRunCases(t, loc, spring, []policyCase{
		{name: "the skipped hour has no bucket", p: Policy{Hourly: 3},
			want:        []string{"2027-03-28 04:30 CEST", "2027-03-28 03:30 CEST", "2027-03-28 01:30 CET"},
			wantReasons: map[string][]string{"2027-03-28 03:30 CEST": {"hourly 2027-03-28 03:00"}}},
		{name: "hours of within are real hours in spring", p: Policy{Within: Duration{Hours: 2}},
			want: []string{"2027-03-28 04:30 CEST", "2027-03-28 03:30 CEST"}},
	})

	// The zone decides the day: 00:30 CET on March 28 is still March 27 in UTC.
	days := []*Snapshot{
		policySnap(policyAt(t, loc, "2027-03-27 12:00")),
		policySnap(policyAt(t, loc, "2027-03-28 00:30")),
		policySnap(policyAt(t, loc, "2027-03-28 04:30")),
	}
	policyRunCases(t, loc, days, []policyCase{{name: "days in Berlin", p: Policy{Daily: 2},
		want: []string{"2027-03-28 04:30 CEST", "2027-03-27 12:00 CET"}}})
	policyRunCases(t, time.UTC, days, []policyCase{{name: "days in UTC", p: Policy{Daily: 2},
		want: []string{"2027-03-28 02:30 UTC", "2027-03-27 23:30 UTC"}}})
}

// TestPolicyLeapDay runs policies on daily snapshots at noon around
// 2028-02-29, cutting the series at different newest snapshots.
func TestPolicyLeapDay(t *testing.T) {
	loc := policyBerlin(t)
	// Step by calendar days, not 24 hours, to stay at noon across DST.
	var all []*Snapshot
	for d := policyAt(t, loc, "2027-02-20 12:00"); !d.After(policyAt(t, loc, "2028-03-31 12:00")); d = d.AddDate(0, 0, 1) {
		all = append(all, policySnap(d))
	}
	upTo := func(last string) []*Snapshot {
		end := policyAt(t, loc, last)
		var out []*Snapshot
		for _, s := range all {
			if !s.Time.After(end) {
				out = append(out, s)
			}
		}
		return out
	}
	everyDay := func(first, last string) []string {
		var out []string
		for d := policyAt(t, loc, last); !d.Before(policyAt(t, loc, first)); d = d.AddDate(0, 0, -1) {
			out = append(out, d.Format(policyLayout))
		}
		return out
	}
	policyRunCases(t, loc, upTo("2028-03-01 12:00"), []policyCase{
		{name: "daily 3 counts the leap day", p: Policy{Daily: 3},
			want:        []string{"2028-03-01 12:00 CET", "2028-02-29 12:00 CET", "2028-02-28 12:00 CET"},
			wantReasons: map[string][]string{"2028-02-29 12:00 CET": {"daily 2028-02-29"}}},
		{name: "within 2d", p: Policy{Within: Duration{Days: 2}},
			want: []string{"2028-03-01 12:00 CET", "2028-02-29 12:00 CET"}},
	})
	policyRunCases(t, loc, upTo("2028-02-29 12:00"), []policyCase{
		// 2028-02-29 minus a year is 2027-02-29, which Go (and restic)
		// normalize to 2027-03-01; the window starts after it.
		{name: "within 1y from a leap day", p: Policy{Within: Duration{Years: 1}},
			want: everyDay("2027-03-02 12:00", "2028-02-29 12:00")},
		{name: "monthly 2", p: Policy{Monthly: 2},
			want:        []string{"2028-02-29 12:00 CET", "2028-01-31 12:00 CET"},
			wantReasons: map[string][]string{"2028-02-29 12:00 CET": {"monthly 2028-02"}}},
		{name: "within-yearly 1y", p: Policy{WithinYearly: Duration{Years: 1}},
			want:        []string{"2028-02-29 12:00 CET", "2027-12-31 12:00 CET"},
			wantReasons: map[string][]string{"2027-12-31 12:00 CET": {"yearly 2027 (within 1y)"}}},
	})
	policyRunCases(t, loc, upTo("2028-03-31 12:00"), []policyCase{
		// March 31 minus a month is "February 31", normalized to March 2.
		{name: "within 1m from March 31", p: Policy{Within: Duration{Months: 1}},
			want: everyDay("2028-03-03 12:00", "2028-03-31 12:00")},
		{name: "within-monthly 2m", p: Policy{WithinMonthly: Duration{Months: 2}},
			want: []string{"2028-03-31 12:00 CEST", "2028-02-29 12:00 CET"}},
	})
	policyRunCases(t, loc, upTo("2027-03-01 12:00"), []policyCase{
		{name: "no leap day in 2027", p: Policy{Daily: 2},
			want: []string{"2027-03-01 12:00 CET", "2027-02-28 12:00 CET"}},
	})
}

// TestPolicyFutureSnapshot: with Now set, a snapshot dated in the future
// does not move the window of the duration rules, and is kept itself.
func TestPolicyFutureSnapshot(t *testing.T) {
	loc := time.UTC
	var snaps []*Snapshot
	for d := 1; d <= 30; d++ {
		snaps = append(snaps, policySnap(time.Date(2026, 11, d, 12, 0, 0, 0, loc)))
	}
	snaps = append(snaps, policySnap(time.Date(2030, 1, 1, 0, 0, 0, 0, loc)))
	p := Policy{Within: Duration{Days: 7}, Now: time.Date(2026, 12, 1, 0, 0, 0, 0, loc)}
	want := []string{"2030-01-01 00:00 UTC", "2026-11-30 12:00 UTC", "2026-11-29 12:00 UTC", "2026-11-28 12:00 UTC",
		"2026-11-27 12:00 UTC", "2026-11-26 12:00 UTC", "2026-11-25 12:00 UTC", "2026-11-24 12:00 UTC"}
	if got := policyKept(ApplyPolicy(snaps, p, loc), loc); !slices.Equal(got, want) {
		t.Errorf("with Now: kept %q, want %q", got, want)
	}
	p.Now = time.Time{}
	if got := policyKept(ApplyPolicy(snaps, p, loc), loc); !slices.Equal(got, want[:1]) {
		t.Errorf("without Now: kept %q, want only the future one %q", got, want[:1])
	}
	// Only snapshots in the future: nothing to count back from, keep them all.
	p.Now = time.Date(2020, 1, 1, 0, 0, 0, 0, loc)
	if got := policyKept(ApplyPolicy(snaps[:3], p, loc), loc); len(got) != 3 {
		t.Errorf("all in the future: kept %q, want all 3", got)
	}
}

// TestPolicyBadInput: odd input never panics and errs on keeping.
func TestPolicyBadInput(t *testing.T) {
	loc := time.UTC
	if ds := ApplyPolicy(nil, Policy{Last: 1}, loc); len(ds) != 0 {
		t.Errorf("no snapshots: %d decisions", len(ds))
	}
	s1 := policySnap(time.Date(2026, 1, 1, 0, 0, 0, 0, loc))
	s2 := policySnap(time.Date(2026, 1, 2, 0, 0, 0, 0, loc))
	ds := ApplyPolicy([]*Snapshot{nil, s1, nil, s2}, Policy{Last: 1}, nil)
	if len(ds) != 2 || ds[0].Snapshot != s2 || !ds[0].Keep || ds[1].Keep {
		t.Errorf("nil entries: got %+v", ds)
	}
	for _, d := range ApplyPolicy([]*Snapshot{s1, s2}, Policy{}, loc) {
		if !d.Keep || !slices.Equal(d.Reasons, []string{ReasonEmptyPolicy}) {
			t.Errorf("empty policy: %+v, want kept with %q", d, ReasonEmptyPolicy)
		}
	}
	// A negative count other than Unlimited keeps like Unlimited.
	for _, d := range ApplyPolicy([]*Snapshot{s1, s2}, Policy{Daily: -7}, loc) {
		if !d.Keep {
			t.Errorf("daily -7 removes %v", d.Snapshot.Time)
		}
	}
	// Two snapshots at the same time: the order is by ID, whatever came in.
	s3 := policySnap(s2.Time, "x")
	a := ApplyPolicy([]*Snapshot{s2, s3}, Policy{Last: 1}, loc)
	b := ApplyPolicy([]*Snapshot{s3, s2}, Policy{Last: 1}, loc)
	if a[0].Snapshot != b[0].Snapshot {
		t.Errorf("tie broken by input order")
	}
	if err := (Policy{Daily: -2}).Validate(); err == nil {
		t.Error("Validate accepted daily -2")
	}
	if err := (Policy{Within: Duration{Days: -1}}).Validate(); !errors.Is(err, ErrBadDuration) {
		t.Errorf("Validate(within -1d) = %v, want ErrBadDuration", err)
	}
	if err := (Policy{Daily: Unlimited, Within: Duration{Days: 1}}).Validate(); err != nil {
		t.Errorf("Validate(good policy) = %v", err)
	}
	if !(Policy{}).Empty() || !(Policy{Now: time.Now()}).Empty() || (Policy{Tags: []TagSet{{""}}}).Empty() || (Policy{Yearly: Unlimited}).Empty() {
		t.Error("Empty is wrong")
	}
}

// policySingleRules splits p into one policy per rule it has.
func policySingleRules(p Policy) map[string]Policy {
	out := map[string]Policy{}
	for name, n := range map[string]int{"last": p.Last, "hourly": p.Hourly, "daily": p.Daily, "weekly": p.Weekly, "monthly": p.Monthly, "yearly": p.Yearly} {
		if n == 0 {
			continue
		}
		var q Policy
		switch name {
		case "last":
			q.Last = n
		case "hourly":
			q.Hourly = n
		case "daily":
			q.Daily = n
		case "weekly":
			q.Weekly = n
		case "monthly":
			q.Monthly = n
		case "yearly":
			q.Yearly = n
		}
		out[name] = q
	}
	for name, d := range map[string]Duration{"within": p.Within, "within-hourly": p.WithinHourly, "within-daily": p.WithinDaily,
		"within-weekly": p.WithinWeekly, "within-monthly": p.WithinMonthly, "within-yearly": p.WithinYearly} {
		if d.Zero() {
			continue
		}
		var q Policy
		switch name {
		case "within":
			q.Within = d
		case "within-hourly":
			q.WithinHourly = d
		case "within-daily":
			q.WithinDaily = d
		case "within-weekly":
			q.WithinWeekly = d
		case "within-monthly":
			q.WithinMonthly = d
		case "within-yearly":
			q.WithinYearly = d
		}
		out[name] = q
	}
	for i, ts := range p.Tags {
		out[fmt.Sprintf("tag %d", i)] = Policy{Tags: []TagSet{ts}}
	}
	for name, q := range out {
		q.Now = p.Now
		out[name] = q
	}
	return out
}

// TestPolicyProperty: on random groups and random policies, the combined
// policy keeps every snapshot that any one of its rules keeps on its own,
// keeps at least one, keeps exactly the Last newest through keep-last, and
// does not depend on the input order.
func TestPolicyProperty(t *testing.T) {
	loc := policyBerlin(t)
	rng := rand.New(rand.NewPCG(20261130, 42))
	start := policyAt(t, loc, "2026-01-01 00:00")
	count := func() int {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return Unlimited
		}
		return 1 + rng.IntN(12)
	}
	dur := func() Duration {
		if rng.IntN(3) == 0 {
			return Duration{}
		}
		return Duration{Years: rng.IntN(2), Months: rng.IntN(3), Days: rng.IntN(10), Hours: rng.IntN(30)}
	}
	tagNames := []string{"a", "b", "c"}
	for iter := 0; iter < 300; iter++ {
		n := 1 + rng.IntN(150)
		span := time.Duration(1+rng.IntN(3*365*24)) * time.Hour
		var snaps []*Snapshot
		for range n {
			ts := start.Add(time.Duration(rng.Int64N(int64(span))))
			var tags []string
			for _, tg := range tagNames {
				if rng.IntN(4) == 0 {
					tags = append(tags, tg)
				}
			}
			snaps = append(snaps, policySnap(ts, tags...))
		}
		p := Policy{Last: count(), Hourly: count(), Daily: count(), Weekly: count(), Monthly: count(), Yearly: count(),
			Within: dur(), WithinHourly: dur(), WithinDaily: dur(), WithinWeekly: dur(), WithinMonthly: dur(), WithinYearly: dur()}
		for range rng.IntN(3) {
			var ts TagSet
			for _, tg := range tagNames {
				if rng.IntN(2) == 0 {
					ts = append(ts, tg)
				}
			}
			if len(ts) == 0 {
				ts = TagSet{""}
			}
			p.Tags = append(p.Tags, ts)
		}
		if rng.IntN(3) == 0 {
			p.Now = start.Add(time.Duration(rng.Int64N(int64(span))))
		}

		ds := ApplyPolicy(snaps, p, loc)
		keep := map[chunk.ID]bool{}
		for i, d := range ds {
			if d.Keep {
				keep[d.Snapshot.ID] = true
				if len(d.Reasons) == 0 {
					t.Fatalf("iter %d: kept %s without a reason", iter, d.Snapshot.Time.In(loc).Format(policyLayout))
				}
			}
			if i > 0 && d.Snapshot.Time.After(ds[i-1].Snapshot.Time) {
				t.Fatalf("iter %d: decisions not newest first", iter)
			}
			if p.Last != 0 && (p.Last == Unlimited || i < p.Last) != slices.Contains(d.Reasons, policyLastReason(p.Last)) {
				t.Fatalf("iter %d: snapshot %d of %d, keep-last %d, reasons %q", iter, i, len(ds), p.Last, d.Reasons)
			}
		}
		if len(ds) != n || len(keep) == 0 {
			t.Fatalf("iter %d: %d decisions for %d snapshots, %d kept", iter, len(ds), n, len(keep))
		}
		for name, q := range policySingleRules(p) {
			for _, d := range ApplyPolicy(snaps, q, loc) {
				if d.Keep && !slices.Equal(d.Reasons, []string{ReasonNewest}) && !keep[d.Snapshot.ID] {
					t.Fatalf("iter %d: rule %s alone keeps %s (%q) but the policy %+v removes it",
						iter, name, d.Snapshot.Time.In(loc).Format(policyLayout), d.Reasons, p)
				}
			}
		}
		shuffled := slices.Clone(snaps)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		again := ApplyPolicy(shuffled, p, loc)
		for i := range ds {
			if ds[i].Snapshot != again[i].Snapshot || ds[i].Keep != again[i].Keep || !slices.Equal(ds[i].Reasons, again[i].Reasons) {
				t.Fatalf("iter %d: result depends on the input order at %d", iter, i)
			}
		}
	}
}

func policyLastReason(n int) string {
	switch {
	case n == 1:
		return "last snapshot"
	case n < 0:
		return "last (unlimited)"
	}
	return fmt.Sprintf("last %d", n)
}

func TestPolicyParseDuration(t *testing.T) {
	good := []struct {
		in   string
		want Duration
		str  string
	}{
		{"2y5m7d3h", Duration{2, 5, 7, 3}, "2y5m7d3h"},
		{"7d", Duration{Days: 7}, "7d"},
		{"36h", Duration{Hours: 36}, "36h"},
		{"1y", Duration{Years: 1}, "1y"},
		{"3h2y", Duration{Years: 2, Hours: 3}, "2y3h"},
		{" 1m ", Duration{Months: 1}, "1m"},
		{"0d", Duration{}, "0h"},
		{"1000000h", Duration{Hours: 1000000}, "1000000h"},
	}
	for _, c := range good {
		got, err := ParseDuration(c.in)
		if err != nil || got != c.want || got.String() != c.str {
			t.Errorf("ParseDuration(%q) = %+v (%s), %v; want %+v (%s)", c.in, got, got, err, c.want, c.str)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "empty"},
		{"   ", "empty"},
		{"1w", "unknown unit"},
		{"5", "has no unit"},
		{"d", "expected a number"},
		{"-1d", "expected a number"},
		{"1.5d", "whole numbers"},
		{"1d1d", "given twice"},
		{"1D", "unknown unit"},
		{"2d 3h", "expected a number"},
		{"1000001h", "too large"},
		{"99999999999999999999999y", "too large"},
	}
	for _, c := range bad {
		_, err := ParseDuration(c.in)
		if !errors.Is(err, ErrBadDuration) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseDuration(%q) error = %v, want ErrBadDuration saying %q", c.in, err, c.msg)
		}
	}
}

func TestPolicyGroupBy(t *testing.T) {
	mk := func(host string, paths, tags []string) *Snapshot {
		s := policySnap(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), tags...)
		s.Hostname, s.Paths = host, paths
		s.ID = chunk.Hash([]byte(fmt.Sprint(host, paths, tags)))
		return s
	}
	a := mk("laptop", []string{"/b", "/a"}, []string{"x"})
	b := mk("laptop", []string{"/a", "/b"}, nil)
	c := mk("server", []string{"/a", "/b"}, []string{"x"})
	d := mk("laptop", []string{"/c"}, []string{"y", "x"})
	snaps := []*Snapshot{a, b, nil, c, d}
	cases := []struct {
		by     string
		keys   []GroupKey
		groups [][]*Snapshot
	}{
		{"host,paths", []GroupKey{{Host: "laptop", Paths: []string{"/a", "/b"}}, {Host: "laptop", Paths: []string{"/c"}}, {Host: "server", Paths: []string{"/a", "/b"}}},
			[][]*Snapshot{{a, b}, {d}, {c}}},
		{" host ", []GroupKey{{Host: "laptop"}, {Host: "server"}}, [][]*Snapshot{{a, b, d}, {c}}},
		{"", []GroupKey{{}}, [][]*Snapshot{{a, b, c, d}}},
		{"tags", []GroupKey{{}, {Tags: []string{"x"}}, {Tags: []string{"x", "y"}}}, [][]*Snapshot{{b}, {a, c}, {d}}},
		{"paths,tags,host", []GroupKey{
			{Host: "laptop", Paths: []string{"/a", "/b"}},
			{Host: "laptop", Paths: []string{"/a", "/b"}, Tags: []string{"x"}},
			{Host: "laptop", Paths: []string{"/c"}, Tags: []string{"x", "y"}},
			{Host: "server", Paths: []string{"/a", "/b"}, Tags: []string{"x"}},
		}, [][]*Snapshot{{b}, {a}, {d}, {c}}},
	}
	for _, c := range cases {
		keys, groups, err := GroupBy(snaps, c.by)
		if err != nil {
			t.Errorf("GroupBy(%q): %v", c.by, err)
			continue
		}
		if fmt.Sprint(keys) != fmt.Sprint(c.keys) || len(groups) != len(c.groups) {
			t.Errorf("GroupBy(%q) keys = %v, want %v", c.by, keys, c.keys)
			continue
		}
		for i := range groups {
			if !slices.Equal(groups[i], c.groups[i]) {
				t.Errorf("GroupBy(%q) group %d has %d snapshots, want %d", c.by, i, len(groups[i]), len(c.groups[i]))
			}
		}
	}
	if !slices.Equal(a.Paths, []string{"/b", "/a"}) {
		t.Errorf("GroupBy sorted the snapshot's own paths: %v", a.Paths)
	}
	for _, by := range []string{"hosts", "host,path", "time"} {
		if _, _, err := GroupBy(snaps, by); !errors.Is(err, ErrBadGroupBy) {
			t.Errorf("GroupBy(%q) error = %v, want ErrBadGroupBy", by, err)
		}
	}
	if keys, groups, err := GroupBy(nil, "host"); err != nil || len(keys) != 0 || len(groups) != 0 {
		t.Errorf("GroupBy(nil) = %v, %v, %v", keys, groups, err)
	}
}
