package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"snap/internal/flock"
)

// State is what a job's runs leave behind for the next run and for
// snap status: $XDG_STATE_HOME/snap/JOB.json (by default
// ~/.local/state/snap/JOB.json). It is JSON so that monitoring can read it.
type State struct {
	Job string `json:"job"`
	// LastRun is the most recent run that got the job's lock.
	LastRun *RunRecord `json:"last_run,omitempty"`
	// LastSuccess is when the last snapshot was written (create exited 0
	// or 3); LastSnapshot is its ID.
	LastSuccess  time.Time `json:"last_success,omitzero"`
	LastSnapshot string    `json:"last_snapshot,omitempty"`
	// LastError is the most recent failure of any step; it stays after
	// later successes, which are newer.
	LastError *ErrorRecord `json:"last_error,omitempty"`
	// DurationS and BytesAdded describe the last run (BytesAdded its
	// snapshot).
	DurationS  float64   `json:"duration_s"`
	BytesAdded int64     `json:"bytes_added"`
	LastPrune  time.Time `json:"last_prune,omitzero"`
	LastCheck  time.Time `json:"last_check,omitzero"`
	// LastCheckPart of CheckParts was read by the last check, which found
	// LastCheckErrors errors; NextCheckPart is the part the next one reads.
	LastCheckPart   int `json:"last_check_part,omitempty"`
	LastCheckErrors int `json:"last_check_errors,omitempty"`
	CheckParts      int `json:"check_parts,omitempty"`
	NextCheckPart   int `json:"next_check_part,omitempty"`
}

// RunRecord summarises one run.
type RunRecord struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Status   string    `json:"status"` // ok, warning, failed, locked or interrupted
	ExitCode int       `json:"exit_code"`
}

// ErrorRecord is a failure and when it happened.
type ErrorRecord struct {
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// StateDir is $XDG_STATE_HOME/snap, by default ~/.local/state/snap.
func StateDir(env Env) (string, error) {
	if x := env.get("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "snap"), nil
	}
	home := env.get("HOME")
	if home == "" {
		return "", errors.New("neither XDG_STATE_HOME nor HOME is set, so there is no place for the state of jobs; set one")
	}
	return filepath.Join(home, ".local", "state", "snap"), nil
}

// StatePath is the state file of job in dir.
func StatePath(dir, job string) string { return filepath.Join(dir, job+".json") }

// LoadState reads job's state; a job that never ran has an empty one.
func LoadState(dir, job string) (*State, error) {
	path := StatePath(dir, job)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{Job: job}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the state of job %s: %w", job, err)
	}
	st := &State{}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("state file %s is damaged (%w); remove it and the next run starts a new one", path, err)
	}
	st.Job = job
	return st, nil
}

// SaveState writes st atomically: a reader (snap status, monitoring) sees
// the old file or the new one, never a part.
func SaveState(dir string, st *State) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save the state of job %s: %w", st.Job, err)
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("save the state of job %s: %w", st.Job, err)
	}
	f, err := os.CreateTemp(dir, "."+st.Job+".json-*")
	if err != nil {
		return fmt.Errorf("save the state of job %s: %w", st.Job, err)
	}
	tmp := f.Name()
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, StatePath(dir, st.Job))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save the state of job %s in %s: %w", st.Job, dir, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: the rename survives a crash
		d.Close()
	}
	return nil
}

// dueSlack lets a step that is due every D run up to this much early.
// Runs start on a schedule and a step records the time its run started,
// so the run one week after a weekly prune starts a few seconds short of
// a week; without slack the prune would wait for the run after that.
func dueSlack(every time.Duration) time.Duration { return min(every/20, time.Hour) }

// PruneDue reports whether run should prune now, and when it next will.
func (j *Job) PruneDue(st *State, now time.Time) (bool, time.Time) {
	if j.PruneEvery <= 0 {
		return false, time.Time{}
	}
	next := st.LastPrune.Add(j.PruneEvery - dueSlack(j.PruneEvery))
	return st.LastPrune.IsZero() || !now.Before(next), next
}

// CheckDue reports whether run should check now, which part of the data
// it reads (1 … CheckParts), and when the next check is due.
func (j *Job) CheckDue(st *State, now time.Time) (due bool, part int, next time.Time) {
	if j.CheckEvery <= 0 {
		return false, 0, time.Time{}
	}
	part = 1
	if st.CheckParts == j.CheckParts && st.NextCheckPart >= 1 && st.NextCheckPart <= j.CheckParts {
		part = st.NextCheckPart
	}
	next = st.LastCheck.Add(j.CheckEvery - dueSlack(j.CheckEvery))
	return st.LastCheck.IsZero() || !now.Before(next), part, next
}

// RecordCheck notes a finished check of part of parts that found errs
// errors, and moves on to the next part. A check that found errors moves
// on too: its errors are reported (and stay in LastError), and staying on
// that part would leave the others unread until the damage is repaired.
func (st *State) RecordCheck(at time.Time, part, parts, errs int) {
	st.LastCheck, st.LastCheckPart, st.CheckParts, st.LastCheckErrors = at, part, parts, errs
	st.NextCheckPart = part%parts + 1
}

// ErrBusy is matched (errors.Is) by the error of LockJob when another run
// of the job holds its lock.
var ErrBusy = errors.New("job is running")

// BusyError names the run that holds a job's lock.
type BusyError struct {
	Job    string
	Holder lockHolder
	Known  bool // false when the holder could not be read
	Waited time.Duration
}

type lockHolder struct {
	PID   int       `json:"pid"`
	Start time.Time `json:"start"`
}

func (e *BusyError) Error() string {
	who := "another run"
	if e.Known {
		who = fmt.Sprintf("pid %d, running since %s", e.Holder.PID, e.Holder.Start.Local().Format("2006-01-02 15:04:05"))
	}
	msg := fmt.Sprintf("job %s is still running (%s)", e.Job, who)
	if e.Waited > 0 {
		msg += fmt.Sprintf("; gave up after waiting %s", e.Waited.Round(time.Second))
	}
	return msg + "; this run did nothing: the next scheduled run continues, or give --lock-wait DURATION to wait longer"
}

// Is makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// LockJob takes the lock that makes runs of one job take turns: an
// flock(2) on JOB.lock in the state directory, which the kernel releases
// when the holder exits however it exits. It waits up to wait, then fails
// with a *BusyError.
func LockJob(ctx context.Context, dir, job string, wait time.Duration) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock job %s: %w", job, err)
	}
	path := filepath.Join(dir, job+".lock")
	f, err := flock.Acquire(ctx, path, lockHolder{PID: os.Getpid(), Start: time.Now()}, wait)
	var held *flock.HeldError
	if errors.As(err, &held) {
		be := &BusyError{Job: job, Waited: held.Waited}
		be.Known = json.Unmarshal(held.Holder, &be.Holder) == nil && be.Holder.PID > 0
		return nil, be
	}
	if err != nil {
		return nil, fmt.Errorf("lock job %s: %w", job, err)
	}
	return func() { f.Close() }, nil
}
