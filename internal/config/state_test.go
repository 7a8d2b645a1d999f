package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStateRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "snap")
	st, err := LoadState(dir, "local")
	if err != nil || st.Job != "local" || st.LastRun != nil || !st.LastSuccess.IsZero() {
		t.Fatalf("state of a job that never ran: %+v, %v", st, err)
	}
	now := time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)
	st.LastRun = &RunRecord{Start: now, End: now.Add(time.Minute), Status: "ok"}
	st.LastSuccess, st.BytesAdded, st.DurationS = now, 1234, 60
	st.LastError = &ErrorRecord{Message: "create: disk full", Time: now.Add(-time.Hour)}
	st.RecordCheck(now, 5, 5, 0)
	if err := SaveState(dir, st); err != nil {
		t.Fatal(err)
	}
	back, err := LoadState(dir, "local")
	if err != nil {
		t.Fatal(err)
	}
	if !back.LastSuccess.Equal(now) || back.BytesAdded != 1234 || back.LastError.Message != "create: disk full" ||
		back.NextCheckPart != 1 || back.LastCheckPart != 5 || back.CheckParts != 5 {
		t.Errorf("read back %+v", back)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state directory holds %d entries, want only local.json (no temporary files)", len(entries))
	}

	os.WriteFile(StatePath(dir, "local"), []byte("{not json"), 0o600)
	if _, err := LoadState(dir, "local"); err == nil || !strings.Contains(err.Error(), "is damaged") || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("damaged state file: %v", err)
	}
}

func TestStateDir(t *testing.T) {
	env := func(vars map[string]string) Env { return Env{Getenv: func(k string) string { return vars[k] }} }
	if d, _ := StateDir(env(map[string]string{"HOME": "/h"})); d != "/h/.local/state/snap" {
		t.Errorf("default: %q", d)
	}
	if d, _ := StateDir(env(map[string]string{"HOME": "/h", "XDG_STATE_HOME": "/s"})); d != "/s/snap" {
		t.Errorf("XDG_STATE_HOME: %q", d)
	}
	// The spec says a relative XDG_STATE_HOME is to be ignored.
	if d, _ := StateDir(env(map[string]string{"HOME": "/h", "XDG_STATE_HOME": "rel"})); d != "/h/.local/state/snap" {
		t.Errorf("relative XDG_STATE_HOME: %q", d)
	}
	if _, err := StateDir(env(nil)); err == nil {
		t.Error("no HOME and no XDG_STATE_HOME: no error")
	}
}

func TestDue(t *testing.T) {
	week := 7 * 24 * time.Hour
	j := &Job{PruneEvery: week, CheckEvery: week, CheckParts: 3}
	st := &State{}
	now := time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)
	if due, _ := j.PruneDue(st, now); !due {
		t.Error("never pruned: prune not due")
	}
	if due, part, _ := j.CheckDue(st, now); !due || part != 1 {
		t.Errorf("never checked: due %v part %d", due, part)
	}
	st.LastPrune = now
	st.RecordCheck(now, 1, 3, 0)
	if due, next := j.PruneDue(st, now.Add(time.Hour)); due || !next.After(now.Add(6*24*time.Hour)) {
		t.Errorf("an hour after a prune: due %v, next %v", due, next)
	}
	// The run a week later starts a few seconds before the week is over.
	later := now.Add(week - 5*time.Second)
	if due, _ := j.PruneDue(st, later); !due {
		t.Error("a week later (less a few seconds): prune not due")
	}
	for _, want := range []int{2, 3, 1, 2} {
		due, part, _ := j.CheckDue(st, later)
		if !due || part != want {
			t.Fatalf("check: due %v part %d, want part %d", due, part, want)
		}
		st.RecordCheck(later, part, j.CheckParts, 0)
		later = later.Add(week)
	}
	// Fewer parts than before: start again at 1.
	j.CheckParts = 2
	st.NextCheckPart = 3
	if _, part, _ := j.CheckDue(st, later); part != 1 {
		t.Errorf("after check-subset-parts changed: part %d, want 1", part)
	}
	if due, _ := (&Job{}).PruneDue(st, now); due {
		t.Error("no prune-every: prune due")
	}
}

func TestLockJob(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	unlock, err := LockJob(ctx, dir, "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file, so a second open in this
	// process contends like another process would.
	start := time.Now()
	_, err = LockJob(ctx, dir, "a", 300*time.Millisecond)
	var be *BusyError
	if !errors.Is(err, ErrBusy) || !errors.As(err, &be) || !be.Known || be.Holder.PID != os.Getpid() {
		t.Fatalf("second lock: %v", err)
	}
	if w := time.Since(start); w < 300*time.Millisecond {
		t.Errorf("gave up after %v, before the wait", w)
	}
	if !strings.Contains(err.Error(), "job a is still running") || !strings.Contains(err.Error(), "--lock-wait") {
		t.Errorf("message: %v", err)
	}
	if u, err := LockJob(ctx, dir, "b", 0); err != nil {
		t.Errorf("another job: %v", err)
	} else {
		u()
	}
	unlock()
	u, err := LockJob(ctx, dir, "a", 0)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	u()
}
