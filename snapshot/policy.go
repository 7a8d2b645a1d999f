package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Unlimited is the count of a Policy rule that keeps one snapshot for every
// bucket ("--keep-daily unlimited").
const Unlimited = -1

// Policy says which snapshots of one group to keep; everything it does not
// keep is removed. The rules are independent and their results are ORed: a
// snapshot is kept when any one rule selects it.
//
// The count rules (Hourly … Yearly) walk the snapshots newest first and keep
// a snapshot whenever its calendar bucket (local hour, day, ISO week, month,
// year) differs from the bucket the rule kept last, until the rule's count is
// used up; only buckets that hold snapshots count. Last keeps the Last newest
// snapshots. A count of Unlimited never runs out.
//
// The duration rules are relative to the newest snapshot of the group (not
// to the time forget runs, so a group that stopped getting backups is not
// emptied as time goes by): Within keeps everything newer than that, and
// WithinHourly … WithinYearly keep the newest snapshot of each bucket newer
// than that.
type Policy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int

	Within, WithinHourly, WithinDaily, WithinWeekly, WithinMonthly, WithinYearly Duration

	// Tags keeps every snapshot that has all the tags of any one set.
	Tags []TagSet

	// Now, when set, is the time forget runs. Snapshots dated after it are
	// not used as the newest snapshot that the duration rules count back
	// from: otherwise one snapshot with a wrong clock (or planted by an
	// attacker with --time) would push every real snapshot out of the
	// window. Such snapshots are themselves kept by the duration rules.
	Now time.Time
}

// Empty reports whether the policy has no rule at all, so that applying it
// would keep everything (and a forget with it is almost certainly a mistake).
// A count of 0 and a zero Duration are "no rule".
func (p Policy) Empty() bool {
	for _, n := range []int{p.Last, p.Hourly, p.Daily, p.Weekly, p.Monthly, p.Yearly} {
		if n != 0 {
			return false
		}
	}
	for _, d := range []Duration{p.Within, p.WithinHourly, p.WithinDaily, p.WithinWeekly, p.WithinMonthly, p.WithinYearly} {
		if !d.Zero() {
			return false
		}
	}
	return len(p.Tags) == 0
}

// Validate reports rule values ApplyPolicy cannot honour as written: counts
// below Unlimited and durations with negative parts. ApplyPolicy does not
// fail on them (a negative count other than Unlimited keeps as Unlimited
// does, the safe reading), but a command should refuse them.
func (p Policy) Validate() error {
	counts := []struct {
		name string
		n    int
	}{{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily}, {"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly}}
	for _, c := range counts {
		if c.n < Unlimited {
			return fmt.Errorf("keep %s %d: a count must be 0 or more, or unlimited", c.name, c.n)
		}
	}
	durs := []struct {
		name string
		d    Duration
	}{{"within", p.Within}, {"within hourly", p.WithinHourly}, {"within daily", p.WithinDaily},
		{"within weekly", p.WithinWeekly}, {"within monthly", p.WithinMonthly}, {"within yearly", p.WithinYearly}}
	for _, d := range durs {
		if d.d.Years < 0 || d.d.Months < 0 || d.d.Days < 0 || d.d.Hours < 0 {
			return fmt.Errorf("keep %s: %w: parts must not be negative", d.name, ErrBadDuration)
		}
	}
	return nil
}

// Duration is a calendar duration as --keep-within takes it: years, months,
// days and hours. Years, months and days are calendar steps in the local
// zone (time.AddDate), so "1d" across a DST change is 23 or 25 hours, and
// one month back from March 31 is March 2 or 3, as Go normalizes February 31.
type Duration struct {
	Years, Months, Days, Hours int
}

// Zero reports whether d is empty, which switches its rule off.
func (d Duration) Zero() bool { return d == Duration{} }

// String prints d the way ParseDuration reads it, e.g. "2y5m7d3h"; parts
// that are zero are left out, and the zero Duration is "0h".
func (d Duration) String() string {
	var b strings.Builder
	for _, p := range []struct {
		n    int
		unit byte
	}{{d.Years, 'y'}, {d.Months, 'm'}, {d.Days, 'd'}, {d.Hours, 'h'}} {
		if p.n != 0 {
			b.WriteString(strconv.Itoa(p.n))
			b.WriteByte(p.unit)
		}
	}
	if b.Len() == 0 {
		return "0h"
	}
	return b.String()
}

// before returns the instant d before t, counting calendar steps in loc.
func (d Duration) before(t time.Time, loc *time.Location) time.Time {
	return t.In(loc).AddDate(-d.Years, -d.Months, -d.Days).Add(-time.Duration(d.Hours) * time.Hour)
}

// ErrBadDuration is wrapped by the errors of ParseDuration.
var ErrBadDuration = errors.New("invalid duration")

// maxDurationPart bounds each number of a Duration: larger values are typing
// mistakes, and a bound keeps hours*time.Hour far from overflowing.
const maxDurationPart = 1_000_000

// ParseDuration reads a duration such as "2y5m7d3h": numbers each followed
// by a unit, y (years), m (months, not minutes), d (days) or h (hours), each
// unit at most once, in any order. There are no weeks: write 7d.
func ParseDuration(s string) (Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return Duration{}, fmt.Errorf("%w: empty; write e.g. 7d, 36h or 2y5m7d3h", ErrBadDuration)
	}
	var d Duration
	seen := map[byte]bool{}
	for rest := in; rest != ""; {
		end := 0
		for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
			end++
		}
		if end == 0 {
			return Duration{}, fmt.Errorf("%w %q: expected a number at %q; write e.g. 7d, 36h or 2y5m7d3h", ErrBadDuration, s, rest)
		}
		if end == len(rest) {
			return Duration{}, fmt.Errorf("%w %q: %s has no unit; add y, m, d or h (e.g. %sd for days)", ErrBadDuration, s, rest, rest)
		}
		n, err := strconv.Atoi(rest[:end])
		if err != nil || n > maxDurationPart {
			return Duration{}, fmt.Errorf("%w %q: %s is too large (at most %d per unit)", ErrBadDuration, s, rest[:end], maxDurationPart)
		}
		unit := rest[end]
		if seen[unit] {
			return Duration{}, fmt.Errorf("%w %q: unit %c given twice; add the numbers up", ErrBadDuration, s, unit)
		}
		seen[unit] = true
		switch unit {
		case 'y':
			d.Years = n
		case 'm':
			d.Months = n
		case 'd':
			d.Days = n
		case 'h':
			d.Hours = n
		case '.', ',':
			return Duration{}, fmt.Errorf("%w %q: use whole numbers of a smaller unit (e.g. 36h, not 1.5d)", ErrBadDuration, s)
		default:
			return Duration{}, fmt.Errorf("%w %q: unknown unit %q; use y (years), m (months), d (days) or h (hours), e.g. 7d for a week", ErrBadDuration, s, string(unit))
		}
		rest = rest[end+1:]
	}
	return d, nil
}

// TagSet is one --keep-tag value: a snapshot matches when it has every tag
// of the set. A set with no tags other than "" (--keep-tag "") matches the
// snapshots that have no tags at all, as in restic.
type TagSet []string

// Match reports whether s has all the tags of ts (or, for a set without
// tags, no tags at all).
func (ts TagSet) Match(s *Snapshot) bool {
	want := 0
	for _, t := range ts {
		if t == "" {
			continue
		}
		want++
		if !slices.Contains(s.Tags, t) {
			return false
		}
	}
	return want > 0 || len(s.Tags) == 0
}

// String names the set for reasons and messages: "a,b", or "untagged".
func (ts TagSet) String() string {
	var tags []string
	for _, t := range ts {
		if t != "" {
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 {
		return "untagged"
	}
	return strings.Join(tags, ",")
}

// Decision is what a policy does with one snapshot. Reasons says, for a
// kept snapshot, every rule that selected it (e.g. "daily 2026-11-29",
// "within 2d", "tag important"); it is empty for a snapshot to remove.
type Decision struct {
	Snapshot *Snapshot
	Keep     bool
	Reasons  []string
}

// ReasonNewest is the reason given to the newest snapshot of a group that the
// policy would otherwise empty: a policy never removes a whole group.
const ReasonNewest = "newest of the group"

// ReasonEmptyPolicy is the reason every snapshot is kept for when the policy
// is Empty.
const ReasonEmptyPolicy = "policy is empty"

// bucketRule is one calendar rule while ApplyPolicy walks a group.
type bucketRule struct {
	name   string                 // "daily"
	left   int                    // snapshots the rule may still keep; negative: no limit
	within Duration               // for the within rules: the window; zero for count rules
	bucket func(time.Time) string // the bucket of a local time, also its label
	last   string                 // the bucket the rule kept last
	kept   bool                   // whether last is set
}

func hourBucket(t time.Time) string  { return t.Format("2006-01-02 15:00") }
func dayBucket(t time.Time) string   { return t.Format("2006-01-02") }
func monthBucket(t time.Time) string { return t.Format("2006-01") }
func yearBucket(t time.Time) string  { return strconv.Itoa(t.Year()) }
func weekBucket(t time.Time) string {
	y, w := t.ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

// ApplyPolicy decides for every snapshot of one group whether p keeps it,
// and why. loc is the zone whose calendar the buckets follow (nil means
// time.Local); pass it explicitly so a result does not depend on the machine.
//
// snaps may be in any order; the decisions come newest first (ties in time
// broken by ID, so the result does not depend on the input order). nil
// entries are skipped. If the policy would remove every snapshot of the
// group, the newest is kept with ReasonNewest. An Empty policy keeps all.
func ApplyPolicy(snaps []*Snapshot, p Policy, loc *time.Location) []Decision {
	if loc == nil {
		loc = time.Local
	}
	list := make([]*Snapshot, 0, len(snaps))
	for _, s := range snaps {
		if s != nil {
			list = append(list, s)
		}
	}
	sort.SliceStable(list, func(i, j int) bool {
		if !list[i].Time.Equal(list[j].Time) {
			return list[i].Time.After(list[j].Time)
		}
		return bytes.Compare(list[i].ID[:], list[j].ID[:]) > 0
	})
	out := make([]Decision, len(list))
	for i, s := range list {
		out[i].Snapshot = s
	}
	if len(list) == 0 {
		return out
	}
	if p.Empty() {
		for i := range out {
			out[i].Keep, out[i].Reasons = true, []string{ReasonEmptyPolicy}
		}
		return out
	}

	// The duration rules count back from the newest snapshot that is not in
	// the future. When every snapshot is in the future there is nothing to
	// count back from and all of them are "within", which keeps them: a
	// clock problem must not cost backups.
	var ref time.Time
	haveRef := false
	for _, s := range list {
		if p.Now.IsZero() || !s.Time.After(p.Now) {
			ref, haveRef = s.Time, true
			break
		}
	}
	inWindow := func(t time.Time, d Duration) bool {
		return !haveRef || t.After(d.before(ref, loc))
	}

	counts := []*bucketRule{
		{name: "hourly", left: p.Hourly, bucket: hourBucket},
		{name: "daily", left: p.Daily, bucket: dayBucket},
		{name: "weekly", left: p.Weekly, bucket: weekBucket},
		{name: "monthly", left: p.Monthly, bucket: monthBucket},
		{name: "yearly", left: p.Yearly, bucket: yearBucket},
	}
	withins := []*bucketRule{
		{name: "hourly", within: p.WithinHourly, bucket: hourBucket},
		{name: "daily", within: p.WithinDaily, bucket: dayBucket},
		{name: "weekly", within: p.WithinWeekly, bucket: weekBucket},
		{name: "monthly", within: p.WithinMonthly, bucket: monthBucket},
		{name: "yearly", within: p.WithinYearly, bucket: yearBucket},
	}
	lastReason := "last snapshot"
	if p.Last < 0 || p.Last > 1 {
		lastReason = "last " + strconv.Itoa(p.Last)
		if p.Last < 0 {
			lastReason = "last (unlimited)"
		}
	}

	anyKept := false
	for i, s := range list {
		t := s.Time.In(loc)
		var why []string
		if p.Last < 0 || i < p.Last {
			why = append(why, lastReason)
		}
		for _, r := range counts {
			if r.left == 0 {
				continue
			}
			b := r.bucket(t)
			switch {
			case !r.kept || b != r.last:
				why = append(why, r.name+" "+b)
			case i == len(list)-1:
				// restic's documented rule: a count rule that still has
				// snapshots to keep when it reaches the oldest snapshot
				// keeps it too, so the history reaches back as far as the
				// rule allows even though it shares a bucket with a kept one.
				why = append(why, "oldest "+r.name+" "+b)
			default:
				continue
			}
			r.last, r.kept = b, true
			if r.left > 0 {
				r.left--
			}
		}
		for _, r := range withins {
			if r.within.Zero() || !inWindow(s.Time, r.within) {
				continue
			}
			if b := r.bucket(t); !r.kept || b != r.last {
				why = append(why, fmt.Sprintf("%s %s (within %s)", r.name, b, r.within))
				r.last, r.kept = b, true
			}
		}
		if !p.Within.Zero() && inWindow(s.Time, p.Within) {
			why = append(why, "within "+p.Within.String())
		}
		for _, ts := range p.Tags {
			if ts.Match(s) {
				why = append(why, "tag "+ts.String())
			}
		}
		if len(why) > 0 {
			out[i].Keep, out[i].Reasons = true, why
			anyKept = true
		}
	}
	if !anyKept {
		out[0].Keep, out[0].Reasons = true, []string{ReasonNewest}
	}
	return out
}

// GroupKey names one group of snapshots. Only the fields the grouping uses
// are set; Paths and Tags are sorted, so /a,/b and /b,/a are one group.
type GroupKey struct {
	Host  string
	Paths []string
	Tags  []string
}

// ErrBadGroupBy is wrapped by GroupBy's error for a grouping it does not know.
var ErrBadGroupBy = errors.New("invalid grouping")

// GroupBy splits snaps into groups with the same value of the fields named
// in by, a comma-separated subset of "host", "paths" and "tags" (spaces
// around words are ignored); an empty by puts every snapshot in one group.
// Groups come sorted by key; within a group snapshots keep their input order.
func GroupBy(snaps []*Snapshot, by string) ([]GroupKey, [][]*Snapshot, error) {
	var host, paths, tags bool
	for _, w := range strings.Split(by, ",") {
		switch strings.TrimSpace(w) {
		case "":
		case "host":
			host = true
		case "paths":
			paths = true
		case "tags":
			tags = true
		default:
			return nil, nil, fmt.Errorf("%w %q: unknown word %q; use a comma-separated list of host, paths and tags, or '' for one group", ErrBadGroupBy, by, strings.TrimSpace(w))
		}
	}
	index := map[string]int{}
	var keys []GroupKey
	var groups [][]*Snapshot
	for _, s := range snaps {
		if s == nil {
			continue
		}
		var k GroupKey
		if host {
			k.Host = s.Hostname
		}
		if paths {
			k.Paths = groupSorted(s.Paths)
		}
		if tags {
			k.Tags = groupSorted(s.Tags)
		}
		id := k.id()
		n, ok := index[id]
		if !ok {
			n = len(keys)
			index[id] = n
			keys = append(keys, k)
			groups = append(groups, nil)
		}
		groups[n] = append(groups[n], s)
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(i, j int) bool { return keys[order[i]].id() < keys[order[j]].id() })
	sk := make([]GroupKey, len(keys))
	sg := make([][]*Snapshot, len(keys))
	for i, n := range order {
		sk[i], sg[i] = keys[n], groups[n]
	}
	return sk, sg, nil
}

// id encodes k as a string that is equal exactly when the keys are; NUL
// cannot occur in host names, paths or tags given on a command line.
func (k GroupKey) id() string {
	return k.Host + "\x00" + strings.Join(k.Paths, "\x01") + "\x00" + strings.Join(k.Tags, "\x01")
}

func groupSorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}
