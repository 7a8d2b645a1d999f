package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"snap/internal/backend"
	"snap/internal/backend/local"
)

// forgetFixture is a repository with snapshots of one small tree made at
// chosen times (in UTC: the tests set TZ so that --time and the buckets of
// forget agree whatever zone the machine is in).
type forgetFixture struct {
	repo, src string
	ids       map[string]string // "host when" -> snapshot ID
}

func newForgetFixture(t *testing.T) *forgetFixture {
	t.Helper()
	t.Setenv("TZ", "UTC")
	f := &forgetFixture{repo: filepath.Join(t.TempDir(), "repo"), src: filepath.Join(t.TempDir(), "src"), ids: map[string]string{}}
	writeFiles(t, f.src, map[string]string{"a.txt": "a", "dir/b.txt": "b"})
	mustSnap(t, "init", "-r", f.repo)
	return f
}

// snap makes a snapshot of host at when ("2006-01-02 15:04:05") with tags.
func (f *forgetFixture) snap(t *testing.T, host, when string, tags ...string) string {
	t.Helper()
	args := []string{"--host", host, "--time", when}
	for _, tag := range tags {
		args = append(args, "--tag", tag)
	}
	id := create(t, f.repo, append(args, f.src)...).SnapshotID
	f.ids[host+" "+when] = id
	return id
}

// listIDs returns the IDs 'snap snapshots --json' shows, sorted.
func (f *forgetFixture) listIDs(t *testing.T) []string {
	t.Helper()
	var list []struct {
		ID string `json:"id"`
	}
	out := mustSnap(t, "snapshots", "--json", "-r", f.repo).stdout
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("snapshots --json %q: %v", out, err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

// forgetSorted returns a sorted copy.
func forgetSorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// forgetReport is forget's --json output.
type forgetReport []struct {
	Group map[string]any `json:"group"`
	Keep  []struct {
		ID      string   `json:"id"`
		ShortID string   `json:"short_id"`
		Time    string   `json:"time"`
		Host    string   `json:"host"`
		Reasons []string `json:"reasons"`
	} `json:"keep"`
	Remove []struct {
		ID      string `json:"id"`
		ShortID string `json:"short_id"`
		Time    string `json:"time"`
	} `json:"remove"`
}

func parseForget(t *testing.T, out string) forgetReport {
	t.Helper()
	var rep forgetReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("forget --json output %q: %v", out, err)
	}
	return rep
}

// forgetSection returns the lines of out from the first line starting with
// start up to the next empty line.
func forgetSection(out, start string) string {
	i := strings.Index(out, "\n"+start)
	if i < 0 {
		if !strings.HasPrefix(out, start) {
			return ""
		}
	} else {
		out = out[i+1:]
	}
	if j := strings.Index(out, "\n\n"); j >= 0 {
		out = out[:j]
	}
	return out
}

func TestForgetPolicyDryRunThenReal(t *testing.T) {
	f := newForgetFixture(t)
	for _, when := range []string{"2026-11-27 10:00:00", "2026-11-28 09:00:00", "2026-11-28 18:00:00",
		"2026-11-29 08:00:00", "2026-11-30 14:05:00", "2026-11-30 15:00:00"} {
		f.snap(t, "h1", when)
	}
	other := f.snap(t, "h2", "2026-11-01 00:00:00", "important")
	before := f.listIDs(t)

	r := mustSnap(t, "forget", "-r", f.repo, "--keep-daily", "2", "--dry-run")
	h1 := forgetSection(r.stdout, "snapshots of host h1, paths "+f.src+":")
	keep := forgetSection(h1, "keep 2 snapshots:")
	remove := forgetSection(h1, "would remove 4 snapshots:")
	for _, want := range []struct{ when, reason string }{
		{"2026-11-30 15:00:00", "daily 2026-11-30"},
		{"2026-11-29 08:00:00", "daily 2026-11-29"},
	} {
		line := forgetLine(keep, f.ids["h1 "+want.when][:8])
		if !strings.Contains(line, want.when) || !strings.Contains(line, want.reason) || !strings.Contains(line, f.src) {
			t.Errorf("keep line for %s = %q, want its time, reason %q and path\n%s", want.when, line, want.reason, r.stdout)
		}
	}
	for _, when := range []string{"2026-11-27 10:00:00", "2026-11-28 09:00:00", "2026-11-28 18:00:00", "2026-11-30 14:05:00"} {
		line := forgetLine(remove, f.ids["h1 "+when][:8])
		if !strings.Contains(line, when) || !strings.Contains(line, "h1") || !strings.Contains(line, f.src) {
			t.Errorf("remove line for %s = %q, want ID, time, host and path\n%s", when, line, r.stdout)
		}
	}
	h2 := forgetSection(r.stdout, "snapshots of host h2, paths "+f.src+":")
	if line := forgetLine(h2, other[:8]); !strings.Contains(line, "important") || !strings.Contains(line, "daily 2026-11-01") {
		t.Errorf("h2 group: %q\n%s", line, r.stdout)
	}
	if strings.Contains(h2, "remove") || !strings.Contains(r.stdout, "would remove 4 snapshots in total (dry run") {
		t.Errorf("dry-run summary wrong:\n%s", r.stdout)
	}
	if got := f.listIDs(t); !slices.Equal(got, before) {
		t.Fatalf("dry run changed the repository: %d snapshots, want %d", len(got), len(before))
	}

	r = mustSnap(t, "forget", "-r", f.repo, "--keep-daily", "2")
	if !strings.Contains(r.stdout, "removed 4 snapshots:") || !strings.Contains(r.stdout, "removed 4 snapshots in total") {
		t.Errorf("forget output:\n%s", r.stdout)
	}
	want := forgetSorted(f.ids["h1 2026-11-30 15:00:00"], f.ids["h1 2026-11-29 08:00:00"], other)
	if got := f.listIDs(t); !slices.Equal(got, want) {
		t.Errorf("after forget: %q, want %q", got, want)
	}
	// The data is still there: the kept snapshots restore.
	mustSnap(t, "restore", "-r", f.repo, f.ids["h1 2026-11-29 08:00:00"], "--target", t.TempDir())

	// Running the same policy again removes nothing.
	r = mustSnap(t, "forget", "-r", f.repo, "--keep-daily", "2")
	if !strings.Contains(r.stdout, "removed 0 snapshots in total") {
		t.Errorf("second forget:\n%s", r.stdout)
	}
}

// forgetLine returns the line of text containing s, or "".
func forgetLine(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

func TestForgetJSON(t *testing.T) {
	f := newForgetFixture(t)
	a := f.snap(t, "h1", "2026-11-29 10:00:00")
	b := f.snap(t, "h1", "2026-11-30 14:05:00", "x")
	c := f.snap(t, "h2", "2026-11-30 09:00:00")
	rep := parseForget(t, mustSnap(t, "forget", "-r", f.repo, "--json", "--dry-run", "--keep-last", "1", "--group-by", "host").stdout)
	if len(rep) != 2 {
		t.Fatalf("%d groups, want 2: %+v", len(rep), rep)
	}
	g1, g2 := rep[0], rep[1]
	if g1.Group["host"] != "h1" || len(g1.Group) != 1 || g2.Group["host"] != "h2" {
		t.Errorf("groups = %v, %v; want only the host, h1 then h2", g1.Group, g2.Group)
	}
	if len(g1.Keep) != 1 || g1.Keep[0].ID != b || g1.Keep[0].ShortID != b[:8] || g1.Keep[0].Host != "h1" ||
		!slices.Equal(g1.Keep[0].Reasons, []string{"last snapshot"}) || !strings.HasPrefix(g1.Keep[0].Time, "2026-11-30T14:05:00") {
		t.Errorf("h1 keep = %+v, want %s with reason \"last snapshot\"", g1.Keep, b[:8])
	}
	if len(g1.Remove) != 1 || g1.Remove[0].ID != a || g1.Remove[0].ShortID != a[:8] {
		t.Errorf("h1 remove = %+v, want %s", g1.Remove, a[:8])
	}
	if len(g2.Keep) != 1 || g2.Keep[0].ID != c || g2.Remove == nil || len(g2.Remove) != 0 {
		t.Errorf("h2 = %+v, want %s kept and an empty remove list", g2, c[:8])
	}

	// Grouping by tags splits h1; '' puts everything in one group.
	rep = parseForget(t, mustSnap(t, "forget", "-r", f.repo, "--json", "--dry-run", "--keep-last", "1", "--group-by", "tags").stdout)
	if len(rep) != 2 || len(rep[0].Keep)+len(rep[1].Keep) != 2 {
		t.Errorf("group by tags: %+v", rep)
	}
	rep = parseForget(t, mustSnap(t, "forget", "-r", f.repo, "--json", "--dry-run", "--keep-last", "2", "--group-by", "").stdout)
	if len(rep) != 1 || len(rep[0].Group) != 0 || len(rep[0].Keep) != 2 || len(rep[0].Remove) != 1 || rep[0].Remove[0].ID != a {
		t.Errorf("one group: %+v", rep)
	}

	// Filters: only h2 is looked at.
	rep = parseForget(t, mustSnap(t, "forget", "-r", f.repo, "--json", "--dry-run", "--keep-last", "1", "--host", "h2").stdout)
	if len(rep) != 1 || rep[0].Group["host"] != "h2" {
		t.Errorf("--host h2: %+v", rep)
	}
	rep = parseForget(t, mustSnap(t, "forget", "-r", f.repo, "--json", "--dry-run", "--keep-last", "1", "--host", "nobody").stdout)
	if len(rep) != 0 {
		t.Errorf("no match: %+v, want []", rep)
	}
}

func TestForgetByID(t *testing.T) {
	f := newForgetFixture(t)
	a := f.snap(t, "h1", "2026-11-28 10:00:00")
	b := f.snap(t, "h1", "2026-11-29 10:00:00")
	c := f.snap(t, "h1", "2026-11-30 10:00:00")

	r := snap(t, "forget", "-r", f.repo, "nosuchid")
	if r.code != exitFatal || !strings.Contains(r.stderr, "no matching snapshot") {
		t.Errorf("unknown ID: exit %d, stderr %q", r.code, r.stderr)
	}
	r = snap(t, "forget", "-r", f.repo, b[:8], "--keep-last", "1")
	if r.code != exitFatal || !strings.Contains(r.stderr, "not both") {
		t.Errorf("ID and policy: exit %d, stderr %q", r.code, r.stderr)
	}
	// One bad name among good ones removes nothing.
	r = snap(t, "forget", "-r", f.repo, b[:8], "nosuchid")
	if r.code != exitFatal || !strings.Contains(r.stderr, "nothing was removed") {
		t.Errorf("good and bad IDs: exit %d, stderr %q", r.code, r.stderr)
	}
	if got := f.listIDs(t); !slices.Equal(got, forgetSorted(a, b, c)) {
		t.Fatalf("failed forgets removed snapshots: %q", got)
	}

	r = mustSnap(t, "forget", "-r", f.repo, "--dry-run", b[:8])
	if !strings.Contains(r.stdout, "would remove 1 snapshot:") || !strings.Contains(r.stdout, b[:8]) {
		t.Errorf("dry run by ID:\n%s", r.stdout)
	}
	// A prefix and the same snapshot by its full ID are removed once; even
	// the last snapshot of a group goes when it is named.
	r = mustSnap(t, "forget", "-r", f.repo, b[:8], b, "latest")
	if !strings.Contains(r.stdout, "removed 2 snapshots in total") || !strings.Contains(r.stdout, c[:8]) {
		t.Errorf("forget by ID:\n%s", r.stdout)
	}
	if got := f.listIDs(t); !slices.Equal(got, []string{a}) {
		t.Errorf("after forget by ID: %q, want only %s", got, a[:8])
	}
	rep := parseForget(t, mustSnap(t, "forget", "-r", f.repo, "--json", a[:10]).stdout)
	if len(rep) != 1 || len(rep[0].Keep) != 0 || len(rep[0].Remove) != 1 || rep[0].Remove[0].ID != a {
		t.Errorf("forget --json by ID: %+v", rep)
	}
	if got := f.listIDs(t); len(got) != 0 {
		t.Errorf("snapshots left: %q", got)
	}
}

func TestForgetNeverEmptiesAGroup(t *testing.T) {
	f := newForgetFixture(t)
	f.snap(t, "h1", "2026-11-28 10:00:00")
	newest1 := f.snap(t, "h1", "2026-11-29 10:00:00")
	f.snap(t, "h2", "2026-11-28 11:00:00")
	newest2 := f.snap(t, "h2", "2026-11-30 11:00:00")
	rep := parseForget(t, mustSnap(t, "forget", "-r", f.repo, "--json", "--keep-tag", "nobody-has-this").stdout)
	if len(rep) != 2 {
		t.Fatalf("%d groups, want 2", len(rep))
	}
	for i, want := range []string{newest1, newest2} {
		g := rep[i]
		if len(g.Keep) != 1 || g.Keep[0].ID != want || !slices.Equal(g.Keep[0].Reasons, []string{"newest of the group"}) || len(g.Remove) != 1 {
			t.Errorf("group %v: %+v, want %s kept as the newest of the group", g.Group, g, want[:8])
		}
	}
	if got := f.listIDs(t); !slices.Equal(got, forgetSorted(newest1, newest2)) {
		t.Errorf("left %q, want the newest of each group", got)
	}
	r := mustSnap(t, "forget", "-r", f.repo, "--keep-within", "1h", "--group-by", "")
	if !strings.Contains(r.stdout, "within 1h") || !strings.Contains(r.stdout, "removed 1 snapshot:") || !strings.Contains(r.stdout, newest1[:8]) {
		t.Errorf("keep-within over one group:\n%s", r.stdout)
	}
}

func TestForgetRefusesBadInput(t *testing.T) {
	f := newForgetFixture(t)
	f.snap(t, "h1", "2026-11-29 10:00:00")
	f.snap(t, "h1", "2026-11-30 10:00:00")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{nil, "--keep-last N"},
		{[]string{"--keep-last", "0", "--keep-daily", "0"}, "every --keep-* value is 0"},
		{[]string{"--dry-run"}, "no policy given"},
		{[]string{"--keep-within", "1w"}, "unknown unit"},
		{[]string{"--keep-within-daily", "7"}, "no unit"},
		{[]string{"--keep-daily", "-2"}, "'unlimited'"},
		{[]string{"--keep-daily", "many"}, "'unlimited'"},
		{[]string{"--keep-daily", "1", "--group-by", "host,time"}, "unknown word \"time\""},
	} {
		r := snap(t, append([]string{"forget", "-r", f.repo}, c.args...)...)
		if r.code != exitFatal || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("forget %q: exit %d, stderr %q; want exit 1 saying %q", c.args, r.code, r.stderr, c.msg)
		}
	}
	if got := f.listIDs(t); len(got) != 2 {
		t.Errorf("bad input removed snapshots: %d left", len(got))
	}
	r := snap(t, "forget", "-r", filepath.Join(t.TempDir(), "none"), "--keep-last", "1")
	if r.code != exitNoRepo {
		t.Errorf("missing repository: exit %d, want %d", r.code, exitNoRepo)
	}
	// unlimited is a count.
	r = mustSnap(t, "forget", "-r", f.repo, "--keep-daily", "unlimited")
	if !strings.Contains(r.stdout, "removed 0 snapshots") {
		t.Errorf("--keep-daily unlimited:\n%s", r.stdout)
	}
}

// TestForgetUsesLocalTime: the calendar buckets follow the zone forget runs
// in. 21:00, 22:00 and 23:30 UTC on November 29 are one day in UTC, but
// 23:30 UTC is already November 30 in Berlin.
func TestForgetUsesLocalTime(t *testing.T) {
	if _, err := time.LoadLocation("Europe/Berlin"); err != nil {
		t.Skipf("no zone data for Europe/Berlin on this machine (install tzdata): %v", err)
	}
	f := newForgetFixture(t)
	a := f.snap(t, "h1", "2026-11-29 21:00:00")
	b := f.snap(t, "h1", "2026-11-29 22:00:00")
	c := f.snap(t, "h1", "2026-11-29 23:30:00")
	removed := func() []string {
		var ids []string
		for _, g := range parseForget(t, mustSnap(t, "forget", "-r", f.repo, "--json", "--dry-run", "--keep-daily", "2").stdout) {
			for _, s := range g.Remove {
				ids = append(ids, s.ID)
			}
		}
		return ids
	}
	// UTC: one day; daily 2 keeps 23:30, and, with one count left at the
	// oldest snapshot, 21:00 too.
	if got := removed(); !slices.Equal(got, []string{b}) {
		t.Errorf("TZ=UTC removes %q, want only %s (22:00)", got, b[:8])
	}
	t.Setenv("TZ", "Europe/Berlin")
	if got := removed(); !slices.Equal(got, []string{a}) {
		t.Errorf("TZ=Europe/Berlin removes %q, want only %s (21:00 UTC); %s is a day of its own", got, a[:8], c[:8])
	}
}

// TestForgetLocked: forget removes only under the write lock; a dry run
// needs none.
func TestForgetLocked(t *testing.T) {
	f := newForgetFixture(t)
	f.snap(t, "h1", "2026-11-29 10:00:00")
	f.snap(t, "h1", "2026-11-30 10:00:00")
	unlock, err := local.New(f.repo).Lock(context.Background(), backend.LockInfo{Host: "testhost", PID: 4242, Command: "create", Start: time.Now()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	r := snap(t, "forget", "-r", f.repo, "--keep-last", "1")
	if r.code != exitLocked || !strings.Contains(r.stderr, "4242") {
		t.Errorf("forget while locked: exit %d, stderr %q; want %d naming the holder", r.code, r.stderr, exitLocked)
	}
	if r := mustSnap(t, "forget", "-r", f.repo, "--keep-last", "1", "--dry-run"); !strings.Contains(r.stdout, "would remove 1 snapshot:") {
		t.Errorf("dry run while locked:\n%s", r.stdout)
	}
	if got := f.listIDs(t); len(got) != 2 {
		t.Errorf("%d snapshots left, want 2", len(got))
	}
}
