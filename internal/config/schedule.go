package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrBadSchedule is wrapped by every error ParseSchedule returns.
var ErrBadSchedule = errors.New("invalid schedule")

// Schedule is when a job runs: a five-field cron expression, as Debian's
// cron reads it, or one of the names hourly, daily, weekly and monthly.
type Schedule struct {
	spec string // as written
	cron string // the five fields for a crontab line

	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	// domStar and dowStar record that the field began with '*'. Cron
	// matches a day when both day fields match if either is starred, and
	// when either matches otherwise ("0 0 1 * mon" is the 1st and every
	// Monday); OnCalendar and Matches follow the same rule.
	domStar, dowStar bool
}

// scheduleNames are the names --every and the every key accept besides a
// cron expression. They mean what systemd's calendar shorthands mean
// (weekly is Monday 00:00), so a job runs at the same time whether cron or
// a systemd timer starts it.
var scheduleNames = map[string]string{
	"hourly":  "0 * * * *",
	"daily":   "0 0 * * *",
	"weekly":  "0 0 * * 1",
	"monthly": "0 0 1 * *",
}

// cronAliases are cron's own @ names, with cron's meanings.
var cronAliases = map[string]string{
	"@hourly":   "0 * * * *",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@weekly":   "0 0 * * 0",
	"@monthly":  "0 0 1 * *",
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
}

type cronField struct {
	name   string
	lo, hi int
	names  []string // names[i] is value lo+i
}

var (
	fieldMinute = cronField{name: "minute", lo: 0, hi: 59}
	fieldHour   = cronField{name: "hour", lo: 0, hi: 23}
	fieldDom    = cronField{name: "day of month", lo: 1, hi: 31}
	fieldMonth  = cronField{name: "month", lo: 1, hi: 12,
		names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}}
	// Day of week 7 is Sunday again, as in cron.
	fieldDow = cronField{name: "day of week", lo: 0, hi: 7,
		names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}}
)

// ParseSchedule reads hourly, daily, weekly, monthly, one of cron's @hourly
// … @annually, or a cron expression of five fields: minute (0-59), hour
// (0-23), day of month (1-31), month (1-12 or jan-dec) and day of week (0-7
// or sun-sat, 0 and 7 both Sunday). A field is a comma-separated list of
// '*', a value N, a range N-M, and '*' or a range followed by /STEP. It
// refuses what Debian's cron refuses and also what cron accepts but never
// or not evidently runs: reversed ranges, steps wider than their range, and
// dates that do not exist (31 February).
func ParseSchedule(spec string) (*Schedule, error) {
	text := strings.TrimSpace(spec)
	cron := text
	if c, ok := scheduleNames[strings.ToLower(text)]; ok {
		cron = c
	} else if c, ok := cronAliases[strings.ToLower(text)]; ok {
		cron = c
	} else if strings.HasPrefix(text, "@") {
		return nil, fmt.Errorf("%w %q: unknown name; use hourly, daily, weekly, monthly, @yearly or a cron expression such as \"30 2 * * *\"", ErrBadSchedule, spec)
	}
	fields := strings.Fields(cron)
	if len(fields) != 5 {
		return nil, fmt.Errorf("%w %q: a cron expression has 5 fields (minute hour day-of-month month day-of-week), this has %d; or use hourly, daily, weekly or monthly", ErrBadSchedule, spec, len(fields))
	}
	s := &Schedule{spec: text, cron: strings.Join(fields, " ")}
	var err error
	for i, p := range []struct {
		f   cronField
		dst *uint64
	}{{fieldMinute, &s.minute}, {fieldHour, &s.hour}, {fieldDom, &s.dom}, {fieldMonth, &s.month}, {fieldDow, &s.dow}} {
		if *p.dst, err = parseCronField(fields[i], p.f); err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrBadSchedule, spec, err)
		}
	}
	if s.dow&(1<<7) != 0 {
		s.dow = s.dow&^(1<<7) | 1
	}
	s.domStar = strings.HasPrefix(fields[2], "*")
	s.dowStar = strings.HasPrefix(fields[4], "*")
	if _, ok := s.gaps(); !ok {
		return nil, fmt.Errorf("%w %q: no such date exists (day of month %s in month %s), so it would never run", ErrBadSchedule, spec, fields[2], fields[3])
	}
	return s, nil
}

func parseCronField(text string, f cronField) (uint64, error) {
	var set uint64
	for _, elem := range strings.Split(text, ",") {
		if elem == "" {
			return 0, fmt.Errorf("%s %q: empty list element", f.name, text)
		}
		base, stepText, hasStep := strings.Cut(elem, "/")
		start, end := f.lo, f.hi
		ranged := true
		if base != "*" {
			a, b, isRange := strings.Cut(base, "-")
			var err error
			if start, err = f.value(a); err != nil {
				return 0, err
			}
			end, ranged = start, isRange
			if isRange {
				if end, err = f.value(b); err != nil {
					return 0, err
				}
				if end < start {
					return 0, fmt.Errorf("%s %q: the range %s starts after it ends (cron would never run it); write it as a list, e.g. %d-%d,%d-%d", f.name, elem, base, start, f.hi, f.lo, end)
				}
			}
		}
		step := 1
		if hasStep {
			if !ranged {
				return 0, fmt.Errorf("%s %q: a step needs * or a range before it (cron refuses N/STEP); write */%s or %s-%d/%s", f.name, elem, stepText, base, f.hi, stepText)
			}
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("%s %q: step %q is not a whole number of 1 or more", f.name, elem, stepText)
			}
			if n > end-start {
				return 0, fmt.Errorf("%s %q: step %d is wider than the range %d-%d, so it would match only %d", f.name, elem, n, start, end, start)
			}
			step = n
		}
		for v := start; v <= end; v += step {
			set |= 1 << uint(v)
		}
	}
	return set, nil
}

// value reads one number or three-letter name of the field.
func (f cronField) value(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("%s: missing number", f.name)
	}
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.lo + i, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || strings.ContainsAny(s, "+-") {
		if f.names != nil {
			return 0, fmt.Errorf("%s %q: not a number or a name (%s…%s)", f.name, s, f.names[0], f.names[len(f.names)-1])
		}
		return 0, fmt.Errorf("%s %q: not a number", f.name, s)
	}
	if n < f.lo || n > f.hi {
		return 0, fmt.Errorf("%s %d is out of range %d-%d", f.name, n, f.lo, f.hi)
	}
	return n, nil
}

// String returns the schedule as written.
func (s *Schedule) String() string { return s.spec }

// Cron returns the five cron fields, for a crontab line.
func (s *Schedule) Cron() string { return s.cron }

func has(set uint64, v int) bool { return set&(1<<uint(v)) != 0 }

// dayMatches applies cron's rule for the two day fields.
func (s *Schedule) dayMatches(t time.Time) bool {
	if !has(s.month, int(t.Month())) {
		return false
	}
	dom, dow := has(s.dom, t.Day()), has(s.dow, int(t.Weekday()))
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// Matches reports whether cron would start the job in the minute of t.
func (s *Schedule) Matches(t time.Time) bool {
	return has(s.minute, t.Minute()) && has(s.hour, t.Hour()) && s.dayMatches(t)
}

// times lists the minutes of a matching day at which the job runs, in order.
func (s *Schedule) times() []int {
	var out []int
	for h := 0; h < 24; h++ {
		if !has(s.hour, h) {
			continue
		}
		for m := 0; m < 60; m++ {
			if has(s.minute, m) {
				out = append(out, h*60+m)
			}
		}
	}
	return out
}

// searchDays bounds how far Next and Interval look: 28 years repeat every
// pattern of weekdays and leap days (between 1901 and 2099).
const searchDays = 28*365 + 7

// Next returns the first time after t at which the job runs, in t's
// location, or the zero time if there is none within 28 years.
func (s *Schedule) Next(t time.Time) time.Time {
	times := s.times()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	for i := 0; i <= searchDays; i++ {
		d := day.AddDate(0, 0, i)
		if !s.dayMatches(d) {
			continue
		}
		for _, m := range times {
			at := time.Date(d.Year(), d.Month(), d.Day(), m/60, m%60, 0, 0, t.Location())
			if at.After(t) {
				return at
			}
		}
	}
	return time.Time{}
}

// Interval is the longest time between two runs: a job is late when its
// last run is older than that.
func (s *Schedule) Interval() time.Duration {
	d, _ := s.gaps()
	return d
}

// gaps computes Interval in UTC over 28 years; ok is false when no day in
// them matches.
func (s *Schedule) gaps() (time.Duration, bool) {
	times := s.times()
	widest := 0
	for i := 1; i < len(times); i++ {
		widest = max(widest, times[i]-times[i-1])
	}
	start := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	last := -1
	for i := 0; i <= searchDays; i++ {
		if !s.dayMatches(start.AddDate(0, 0, i)) {
			continue
		}
		if last >= 0 {
			widest = max(widest, (i-last)*24*60-times[len(times)-1]+times[0])
		}
		last = i
	}
	if last < 0 {
		return 0, false
	}
	if widest == 0 { // one run in 28 years at most: call it that long
		widest = searchDays * 24 * 60
	}
	return time.Duration(widest) * time.Minute, true
}

// OnCalendar returns the systemd OnCalendar= values that start the job when
// cron would: one, or two when both day fields restrict (cron runs on
// either, a calendar event needs both).
func (s *Schedule) OnCalendar() []string {
	clock := fmt.Sprintf("%s:%s:00", calendarValues(s.hour, 0, 23), calendarValues(s.minute, 0, 59))
	month := calendarValues(s.month, 1, 12)
	full := func(set uint64, lo, hi int) bool { return set == fullSet(lo, hi) }
	dom := calendarValues(s.dom, 1, 31)
	weekdays := calendarWeekdays(s.dow)
	if s.domStar || s.dowStar || full(s.dom, 1, 31) || full(s.dow, 0, 6) {
		if !(s.domStar || s.dowStar) {
			// Either day field is every day: cron's "or" is every day.
			dom, weekdays = "*", ""
		}
		spec := fmt.Sprintf("*-%s-%s %s", month, dom, clock)
		if weekdays != "" {
			spec = weekdays + " " + spec
		}
		return []string{spec}
	}
	return []string{
		fmt.Sprintf("%s *-%s-* %s", weekdays, month, clock),
		fmt.Sprintf("*-%s-%s %s", month, dom, clock),
	}
}

func fullSet(lo, hi int) uint64 {
	return (uint64(1)<<uint(hi+1) - 1) &^ (uint64(1)<<uint(lo) - 1)
}

// calendarValues writes a set of a systemd calendar component: *, a
// repetition start/step when the set is every step-th value from start to
// the end of the field, or a list of values and start..end ranges.
func calendarValues(set uint64, lo, hi int) string {
	if set == fullSet(lo, hi) {
		return "*"
	}
	var vals []int
	for v := lo; v <= hi; v++ {
		if has(set, v) {
			vals = append(vals, v)
		}
	}
	if len(vals) >= 3 {
		step := vals[1] - vals[0]
		progression := step > 1 && hi-vals[len(vals)-1] < step
		for i := 2; i < len(vals) && progression; i++ {
			progression = vals[i]-vals[i-1] == step
		}
		if progression {
			return fmt.Sprintf("%02d/%d", vals[0], step)
		}
	}
	var parts []string
	for i := 0; i < len(vals); {
		j := i
		for j+1 < len(vals) && vals[j+1] == vals[j]+1 {
			j++
		}
		if j-i >= 2 {
			parts = append(parts, fmt.Sprintf("%02d..%02d", vals[i], vals[j]))
		} else {
			for k := i; k <= j; k++ {
				parts = append(parts, fmt.Sprintf("%02d", vals[k]))
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// calendarWeekdays writes a day-of-week set (bit 0 Sunday) the way systemd
// reads it, Monday first; "" for every day.
func calendarWeekdays(set uint64) string {
	if set&fullSet(0, 6) == fullSet(0, 6) {
		return ""
	}
	names := []string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
	in := func(i int) bool { return has(set, (i+1)%7) } // i: 0 Monday … 6 Sunday
	var parts []string
	for i := 0; i < 7; {
		if !in(i) {
			i++
			continue
		}
		j := i
		for j+1 < 7 && in(j+1) {
			j++
		}
		if j-i >= 2 {
			parts = append(parts, names[i]+".."+names[j])
		} else {
			for k := i; k <= j; k++ {
				parts = append(parts, names[k])
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
