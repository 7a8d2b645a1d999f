package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Result is one timed command: a row of runs.tsv.
type Result struct {
	Rep      int
	Order    int // position of the tool in this rep's rotation
	Scenario string
	Tool     string
	Status   string // "ok", "fail(N)", "n/a" (command not implemented)

	Wall    float64 // s, measured here with the monotonic clock
	Elapsed float64 // s, as GNU time reports it (0.01 s resolution)
	User    float64 // s
	Sys     float64 // s
	MaxRSS  int64   // KiB
	FSIn    int64   // 512-byte blocks read from disk ("File system inputs")
	FSOut   int64   // 512-byte blocks written ("File system outputs")
	Sync    float64 // s taken by a sync(1) right after the command

	Size  int64   // repository bytes after the command, or restored bytes; -1 if none
	Delta int64   // change of the repository size caused by the command; 0 if none
	Load  float64 // 1-minute load average just before the command
	Note  string  // shown under the table: warnings, failures, verification problems
	Info  string  // runs.tsv only: details such as snap's own JSON summary

	Stdout string // path of the command's captured stdout
}

// OK says whether the run counts towards the medians.
func (r *Result) OK() bool { return r.Status == "ok" }

// CPU is user plus system time.
func (r *Result) CPU() float64 { return r.User + r.Sys }

// timeBin is GNU time; bash's builtin and BusyBox's time lack -v.
const timeBin = "/usr/bin/time"

// command is a program to run with extra environment and working directory.
type command struct {
	argv []string
	env  []string // added to the harness's environment
	dir  string   // working directory; "" = inherit
}

// measure runs c under GNU time, then times a sync(1), because tools differ
// in whether they fsync their output or leave dirty pages behind. Output goes
// to logBase.out and logBase.err.
func measure(c command, logBase string) (*Result, error) {
	tf := logBase + ".time"
	args := append([]string{"-v", "-o", tf, "--"}, c.argv...)
	cmd := exec.Command(timeBin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Dir = c.dir
	out, err := os.Create(logBase + ".out")
	if err != nil {
		return nil, err
	}
	defer out.Close()
	errf, err := os.Create(logBase + ".err")
	if err != nil {
		return nil, err
	}
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf

	start := time.Now()
	runErr := cmd.Run()
	wall := time.Since(start).Seconds()

	syncStart := time.Now()
	if err := exec.Command("sync").Run(); err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	res := &Result{Wall: wall, Sync: time.Since(syncStart).Seconds(), Size: -1, Stdout: logBase + ".out"}

	tv, err := os.ReadFile(tf)
	if err != nil {
		return nil, fmt.Errorf("%s left no report (%v): %w", timeBin, runErr, err)
	}
	exit, err := parseTimeV(tv, res)
	if err != nil {
		return nil, err
	}
	res.Status = "ok"
	if exit != 0 {
		res.Status = fmt.Sprintf("fail(%d)", exit)
	}
	return res, nil
}

// parseTimeV fills res from GNU time -v output and returns the exit status.
func parseTimeV(tv []byte, res *Result) (exit int, err error) {
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(tv))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "Command terminated by signal") {
			exit = 128
			found++
			continue
		}
		// The elapsed label contains colons itself, so split at the last ": ".
		i := strings.LastIndex(line, ": ")
		if i < 0 {
			continue
		}
		key, val := line[:i], line[i+2:]
		switch {
		case key == "User time (seconds)":
			res.User, err = strconv.ParseFloat(val, 64)
		case key == "System time (seconds)":
			res.Sys, err = strconv.ParseFloat(val, 64)
		case strings.HasPrefix(key, "Elapsed (wall clock) time"):
			res.Elapsed, err = parseClock(val)
		case key == "Maximum resident set size (kbytes)":
			res.MaxRSS, err = strconv.ParseInt(val, 10, 64)
		case key == "File system inputs":
			res.FSIn, err = strconv.ParseInt(val, 10, 64)
		case key == "File system outputs":
			res.FSOut, err = strconv.ParseInt(val, 10, 64)
		case key == "Exit status":
			exit, err = strconv.Atoi(val)
		default:
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("time -v: %q: %w", line, err)
		}
		found++
	}
	if found < 7 {
		return 0, fmt.Errorf("time -v output incomplete:\n%s", tv)
	}
	return exit, nil
}

// parseClock reads GNU time's "h:mm:ss" or "m:ss.ss".
func parseClock(s string) (float64, error) {
	var total float64
	for _, part := range strings.Split(s, ":") {
		v, err := strconv.ParseFloat(part, 64)
		if err != nil {
			return 0, err
		}
		total = total*60 + v
	}
	return total, nil
}

// runQuiet runs an untimed helper command, logging its output to logBase.
func runQuiet(c command, logBase string) error {
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Dir = c.dir
	f, err := os.Create(logBase + ".log")
	if err != nil {
		return err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w (see %s.log)", strings.Join(c.argv, " "), err, logBase)
	}
	return nil
}

// warm reads every file under paths once, the way the timed baseline does
// (tar | cat; GNU tar skips reading data when writing to /dev/null itself),
// so the page cache holds them. The cache is reclaimed after about a minute
// idle on these machines and borg evicts what it reads, so this runs right
// before every timed command. Missing paths are skipped.
func warm(paths ...string) error {
	var existing []string
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			existing = append(existing, p)
		}
	}
	if len(existing) == 0 {
		return nil
	}
	args := append([]string{"-c", `tar -cf - "$@" 2>/dev/null | cat >/dev/null`, "warm"}, existing...)
	return exec.Command("sh", args...).Run()
}

// loadavg returns the 1-minute load average. Other processes on this
// 2-core machine (a colleague's test suite) inflate wall times; the report
// shows the load so such runs can be recognised.
func loadavg() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return math.NaN()
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return math.NaN()
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// syncNow flushes dirty pages so the next timed command does not pay for the
// previous one's writes.
func syncNow() error { return exec.Command("sync").Run() }

// duBytes is `du -sb`: apparent bytes with hard-linked files counted once,
// which is how the rsync method's repository of hard-linked trees is sized.
func duBytes(path string) (int64, error) {
	out, err := exec.Command("du", "-sb", path).Output()
	if err != nil {
		return 0, fmt.Errorf("du -sb %s: %w", path, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0, fmt.Errorf("du -sb %s: no output", path)
	}
	return strconv.ParseInt(f[0], 10, 64)
}

// lastLine returns the last non-empty line of a file (snap's JSON summary).
func lastLine(path string) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// grepFile says whether the file contains s, ignoring case.
func grepFile(path, s string) bool {
	data, _ := os.ReadFile(path)
	return bytes.Contains(bytes.ToLower(data), bytes.ToLower([]byte(s)))
}

// copyLogs copies the logs of a failed run to dir so they survive cleanup.
func copyLogs(logBase, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	for _, ext := range []string{".out", ".err", ".time", ".log"} {
		if data, err := os.ReadFile(logBase + ext); err == nil {
			_ = os.WriteFile(filepath.Join(dir, filepath.Base(logBase)+ext), data, 0o644)
		}
	}
}
