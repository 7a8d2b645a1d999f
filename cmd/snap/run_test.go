package main

// Tests of jobs from the config file: snap run, --job, snap schedule and
// snap status, with the real binary in a home directory of the test's own.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"snap/internal/backend"
	"snap/internal/backend/backendtest"
	"snap/internal/backend/local"
	"snap/internal/config"
	"snap/internal/ecryptfs"
	"snap/repo"
)

// jobHome is a home directory for the snap binary: HOME, XDG_CONFIG_HOME,
// XDG_STATE_HOME and XDG_CACHE_HOME all point into the test's temporary
// directory, so nothing of the user running the tests is read or written.
type jobHome struct {
	dir, home, configFile, stateDir string
	env                             []string
}

func newJobHome(t *testing.T) *jobHome {
	t.Helper()
	dir := t.TempDir()
	h := &jobHome{dir: dir, home: filepath.Join(dir, "home")}
	h.configFile = filepath.Join(h.home, ".config", "snap", "config.toml")
	h.stateDir = filepath.Join(h.home, ".local", "state", "snap")
	if err := os.MkdirAll(filepath.Dir(h.configFile), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "SNAP_REPOSITORY", "SNAP_CONFIG":
		default:
			h.env = append(h.env, kv)
		}
	}
	h.env = append(h.env, "HOME="+h.home, "XDG_CONFIG_HOME="+filepath.Join(h.home, ".config"),
		"XDG_STATE_HOME="+filepath.Join(h.home, ".local", "state"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	return h
}

// writeConfig writes the user's config file.
func (h *jobHome) writeConfig(t *testing.T, text string) {
	t.Helper()
	if err := os.WriteFile(h.configFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// command is the snap binary with args in this home.
func (h *jobHome) command(args ...string) *exec.Cmd {
	cmd := exec.Command(snapBin, args...)
	cmd.Env = h.env
	cmd.Dir = h.home
	return cmd
}

func (h *jobHome) snap(t *testing.T, args ...string) result {
	t.Helper()
	cmd := h.command(args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run snap %v: %v", args, err)
	}
	return result{cmd.ProcessState.ExitCode(), o.String(), e.String()}
}

func (h *jobHome) mustSnap(t *testing.T, args ...string) result {
	t.Helper()
	r := h.snap(t, args...)
	if r.code != 0 {
		t.Fatalf("snap %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// state reads a job's state file.
func (h *jobHome) state(t *testing.T, job string) *config.State {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.stateDir, job+".json"))
	if err != nil {
		t.Fatalf("state of job %s: %v", job, err)
	}
	var st config.State
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("state of job %s: %v", job, err)
	}
	return &st
}

func (h *jobHome) write(t *testing.T, rel, content string) {
	t.Helper()
	p := filepath.Join(h.home, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runSummary is the --json output of snap run.
type runSummary struct {
	ExitCode int `json:"exit_code"`
	Jobs     []struct {
		Job      string `json:"job"`
		Status   string `json:"status"`
		ExitCode int    `json:"exit_code"`
		Error    string `json:"error"`
		Steps    []struct {
			Step, Status, Detail string
			SnapshotID           string `json:"snapshot_id"`
			BytesAdded           *int64 `json:"bytes_added"`
			Part                 string
		} `json:"steps"`
	} `json:"jobs"`
}

func parseRun(t *testing.T, out string) runSummary {
	t.Helper()
	var s runSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("run --json printed %q: %v", out, err)
	}
	return s
}

// stepStatus returns "step=status" for each step of the first job.
func (s runSummary) stepStatus() string {
	var parts []string
	for _, st := range s.Jobs[0].Steps {
		parts = append(parts, st.Step+"="+st.Status)
	}
	return strings.Join(parts, " ")
}

// snapshotCount counts the snapshots of a local repository.
func snapshotCount(t *testing.T, repoDir string) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(repoDir, "snapshots"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// haveSSHD reports whether backendtest.StartSSHD can run a server.
func haveSSHD() bool {
	for _, tool := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false
		}
	}
	if _, err := exec.LookPath("sshd"); err == nil {
		return true
	}
	_, err := os.Stat("/usr/sbin/sshd")
	return err == nil
}

// cipherTree writes an eCryptfs lower tree at ~/.Private and its cleartext
// view at ~/Private, whose files are hard links to the lower files (on a
// real mount a cleartext file has its lower file's inode).
func (h *jobHome) cipherTree(t *testing.T) {
	t.Helper()
	lower, view := filepath.Join(h.home, ".Private"), filepath.Join(h.home, "Private")
	tree, err := ecryptfs.NewTree(lower, 7, ecryptfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range map[string]string{"Documents/tax-2026.txt": "numbers\n", "Mail/inbox": strings.Repeat("mail ", 5000)} {
		if err := tree.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for lowerRel, clearRel := range tree.Map() {
		lp, vp := filepath.Join(lower, lowerRel), filepath.Join(view, clearRel)
		if fi, err := os.Lstat(lp); err != nil {
			t.Fatal(err)
		} else if fi.Mode().IsRegular() {
			os.MkdirAll(filepath.Dir(vp), 0o700)
			if err := os.Link(lp, vp); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// verifyUnits runs systemd-analyze verify on the user units of job, if
// systemd-analyze exists: it must accept them without a complaint.
func verifyUnits(t *testing.T, h *jobHome, job string) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Logf("systemd-analyze not found: the units of job %s are not verified (apt-get install systemd)", job)
		return
	}
	rt := filepath.Join(h.dir, "runtime")
	os.MkdirAll(rt, 0o700)
	dir := filepath.Join(h.home, ".config", "systemd", "user")
	cmd := exec.Command("systemd-analyze", "verify", "--user",
		filepath.Join(dir, "snap-"+job+".timer"), filepath.Join(dir, "snap-"+job+".service"))
	// A user manager needs a runtime directory even to verify.
	cmd.Env = append(h.env, "XDG_RUNTIME_DIR="+rt)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "snap-"+job) {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestRunExampleConfig runs the two jobs of docs/config-example.toml end to
// end: the local job into a local directory, the offsite job into an sftp
// repository on a real sshd (a local directory where sshd is missing),
// then status, --job and a systemd schedule of the documented jobs.
func TestRunExampleConfig(t *testing.T) {
	h := newJobHome(t)
	example, err := os.ReadFile("../../docs/config-example.toml")
	if err != nil {
		t.Fatal(err)
	}
	localRepo := filepath.Join(h.dir, "disk", "snap")
	offsiteDir := filepath.Join(h.dir, "server", "laptop")
	text := string(example)
	replace := func(old, new string) {
		t.Helper()
		if strings.Count(text, old) != 1 {
			t.Fatalf("the example no longer holds %q once", old)
		}
		text = strings.Replace(text, old, new, 1)
	}
	replace(`repository = "/mnt/backup/snap"`, fmt.Sprintf("repository = %q", localRepo))
	offsiteRepo := offsiteDir
	if haveSSHD() {
		srv := backendtest.StartSSHD(t)
		offsiteRepo = srv.Location(offsiteDir)
		replace(`repository = "sftp:backup@nas.example.net:/srv/snap/laptop"`,
			fmt.Sprintf("repository = %q\nssh-command = %q", offsiteRepo, srv.Command()))
	} else {
		t.Log("sshd not found: the offsite job goes to a local directory")
		replace(`repository = "sftp:backup@nas.example.net:/srv/snap/laptop"`, fmt.Sprintf("repository = %q", offsiteRepo))
	}
	h.writeConfig(t, text)
	h.write(t, "Documents/report.txt", "quarterly report\n")
	h.write(t, ".cache/thumbnails/x.png", "cache, excluded by the example\n")
	h.write(t, "project/node_modules/dep/index.js", "excluded too\n")
	h.cipherTree(t)

	h.mustSnap(t, "init", "--job", "local")
	h.mustSnap(t, "init", "--job", "offsite")

	r := h.mustSnap(t, "run", "local")
	t.Logf("snap run local:\n%s%s", r.stdout, r.stderr)
	for _, want := range []string{"local: create     ok", "local: forget     ok", "local: prune      ok", "local: check      ok       part 1/4", "local: ok in "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("run local: no %q in\n%s", want, r.stdout)
		}
	}
	r = h.mustSnap(t, "run", "offsite")
	t.Logf("snap run offsite:\n%s%s", r.stdout, r.stderr)
	if !strings.Contains(r.stdout, "offsite: check      ok       part 1/5") || !strings.Contains(r.stdout, "offsite: ok in ") {
		t.Errorf("run offsite:\n%s", r.stdout)
	}
	// names-from reached create: the cleartext names of the lower tree
	// were recorded from ~/Private.
	if !strings.Contains(r.stderr, "recorded the cleartext names") {
		t.Errorf("run offsite did not record cleartext names from names-from:\n%s", r.stderr)
	}

	// Both again, in one run: prune and check are not due any more.
	r = h.mustSnap(t, "run", "--all", "--json")
	s := parseRun(t, r.stdout)
	if s.ExitCode != 0 || len(s.Jobs) != 2 || s.Jobs[0].Job != "local" || s.Jobs[1].Job != "offsite" {
		t.Fatalf("run --all: %s", r.stdout)
	}
	if got := s.stepStatus(); got != "create=ok forget=ok prune=skipped check=skipped" {
		t.Errorf("second run of local: %s", got)
	}

	st := h.state(t, "local")
	if st.LastSuccess.IsZero() || st.LastRun == nil || st.LastRun.ExitCode != 0 || st.LastPrune.IsZero() ||
		st.LastCheck.IsZero() || st.NextCheckPart != 2 || st.CheckParts != 4 || st.LastSnapshot != s.Jobs[0].Steps[0].SnapshotID {
		t.Errorf("state of local: %+v", st)
	}

	// The local job left out what the example excludes.
	ls := h.mustSnap(t, "ls", "--job", "local", "latest", "-R").stdout
	if !strings.Contains(ls, "Documents/report.txt") || strings.Contains(ls, "thumbnails") || strings.Contains(ls, "node_modules") || strings.Contains(ls, ".Private/") {
		t.Errorf("ls of the local job's snapshot:\n%s", ls)
	}
	// --job takes the repository (and the ssh command) from the config.
	var snaps []struct{ Paths, Tags []string }
	if err := json.Unmarshal([]byte(h.mustSnap(t, "snapshots", "--job", "offsite", "--json").stdout), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 || snaps[0].Paths[0] != filepath.Join(h.home, ".Private") || snaps[0].Tags[0] != "offsite" {
		t.Errorf("snapshots --job offsite: %+v", snaps)
	}

	r = h.mustSnap(t, "status")
	t.Logf("snap status:\n%s", r.stdout)
	for _, want := range []string{"local: last successful backup ", "offsite: last successful backup ", "runs hourly", "runs daily", "next part 2/5"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status: no %q in\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "warning") {
		t.Errorf("status warns about healthy jobs:\n%s", r.stdout)
	}
	var status struct {
		Jobs []struct {
			Job       string
			Overdue   bool
			IntervalS float64 `json:"interval_s"`
			State     config.State
			Warnings  []string
		}
	}
	if err := json.Unmarshal([]byte(h.mustSnap(t, "status", "--json").stdout), &status); err != nil {
		t.Fatal(err)
	}
	if len(status.Jobs) != 2 || status.Jobs[0].IntervalS != 3600 || status.Jobs[1].State.LastSuccess.IsZero() || len(status.Jobs[1].Warnings) != 0 {
		t.Errorf("status --json: %+v", status)
	}

	// The documented jobs scheduled as systemd user timers.
	for _, job := range []string{"local", "offsite"} {
		r = h.mustSnap(t, "schedule", "install", job, "--using", "systemd")
		t.Logf("schedule install %s: %s", job, r.stdout)
		verifyUnits(t, h, job)
	}
	timer, err := os.ReadFile(filepath.Join(h.home, ".config", "systemd", "user", "snap-local.timer"))
	if err != nil || !strings.Contains(string(timer), "\nOnCalendar=*-*-* *:00:00\n") || !strings.Contains(string(timer), "\nPersistent=true\n") {
		t.Errorf("timer of local: %v\n%s", err, timer)
	}
	service, _ := os.ReadFile(filepath.Join(h.home, ".config", "systemd", "user", "snap-offsite.service"))
	if want := "ExecStart=" + snapBin + " --config " + h.configFile + " run offsite\n"; !strings.Contains(string(service), want) {
		t.Errorf("service of offsite lacks %q:\n%s", want, service)
	}
	list := h.mustSnap(t, "schedule", "list").stdout
	if !strings.Contains(list, "local    systemd (not enabled)  *-*-* *:00:00") || !strings.Contains(list, "offsite  systemd (not enabled)  *-*-* 00:00:00") {
		t.Errorf("schedule list:\n%s", list)
	}
	h.mustSnap(t, "schedule", "remove", "local")
	h.mustSnap(t, "schedule", "remove", "offsite")
	if entries, _ := os.ReadDir(filepath.Join(h.home, ".config", "systemd", "user")); len(entries) != 0 {
		t.Errorf("units left after remove: %v", entries)
	}
}

// TestRunBadConfig: each mistake is one clear error with file:line, exit 1,
// and nothing runs: no hook, no snapshot, no state file.
// TestRunPruneBesideReader: a due prune that finds a reader (a restore in
// progress) is skipped, not failed: the job exits 0, its check still runs,
// and the next run prunes.
func TestRunPruneBesideReader(t *testing.T) {
	h := newJobHome(t)
	repoDir := filepath.Join(h.dir, "repo")
	mustSnap(t, "init", "-q", "-r", repoDir)
	h.writeConfig(t, fmt.Sprintf("[jobs.a]\nrepository = %q\nsources = [\"~/data\"]\nprune-every = \"1d\"\ncheck-every = \"1d\"\n[jobs.a.retention]\nkeep-last = 1\n", repoDir))
	for i := range 3 {
		h.write(t, "data/file", strings.Repeat(fmt.Sprint(i), 200<<10))
		mustSnap(t, "create", "-q", "-r", repoDir, filepath.Join(h.home, "data"))
	}
	unlock, err := local.New(repoDir).LockRead(context.Background(), backend.LockInfo{Host: "h", PID: os.Getpid(), Command: "restore"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := h.snap(t, "run", "a", "--json", "--lock-wait", "0s") // run waits 1m by default
	unlock()
	s := parseRun(t, r.stdout)
	if r.code != 0 || s.stepStatus() != "create=ok forget=ok prune=skipped check=ok" || !strings.Contains(r.stdout, "being read by") {
		t.Fatalf("run beside a reader: exit %d, steps %s\n%s%s", r.code, s.stepStatus(), r.stdout, r.stderr)
	}
	if st := h.state(t, "a"); !st.LastPrune.IsZero() {
		t.Errorf("a skipped prune was recorded as done: %+v", st)
	}
	r = h.snap(t, "run", "a", "--json")
	if s := parseRun(t, r.stdout); r.code != 0 || !strings.HasPrefix(strings.SplitN(s.stepStatus(), " ", 4)[2], "prune=ok") {
		t.Fatalf("run after the reader left: exit %d, steps %s\n%s%s", r.code, s.stepStatus(), r.stdout, r.stderr)
	}
}

func TestRunBadConfig(t *testing.T) {
	h := newJobHome(t)
	repoDir := filepath.Join(h.dir, "repo")
	mustSnap(t, "init", "-r", repoDir)
	h.write(t, "data/file", "x")
	sentinel := filepath.Join(h.dir, "before-ran")
	good := fmt.Sprintf("[jobs.a]\nrepository = %q\nsources = [\"~/data\"]\nbefore = \"touch %s\"\nevery = \"hourly\"\n", repoDir, sentinel)
	h.writeConfig(t, good)
	for _, tc := range []struct {
		name, text, want string
	}{
		{"typo", good + "exclude-cache = true\n", "config.toml:6: jobs.a.exclude-cache: unknown key; did you mean exclude-caches?"},
		{"no repository", "[jobs.a]\nsources = [\"~/data\"]\n", "config.toml:1: jobs.a: no repository"},
		{"negative keep", good + "[jobs.a.retention]\nkeep-daily = -1\n", "config.toml:7: jobs.a.retention.keep-daily: -1 is negative"},
		{"relative source", strings.Replace(good, `"~/data"`, `"data"`, 1), `config.toml:3: jobs.a.sources: "data" is a relative path`},
		{"bad cron", strings.Replace(good, `every = "hourly"`, `every = "0 25 * * *"`, 1), `config.toml:5: jobs.a.every: invalid schedule "0 25 * * *": hour 25 is out of range 0-23`},
		{"typo in another job", good + "[jobs.b]\nrepository = \"/r\"\nsource = [\"/s\"]\n", "config.toml:8: jobs.b.source: unknown key; did you mean sources?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.writeConfig(t, tc.text)
			for _, args := range [][]string{{"run", "a"}, {"run", "--all"}, {"snapshots", "--job", "a"}, {"status"}, {"schedule", "install", "a", "--using", "systemd"}} {
				r := h.snap(t, args...)
				if r.code != exitFatal || !strings.Contains(r.stderr, h.configFile+":") || !strings.Contains(r.stderr, tc.want) {
					t.Errorf("snap %s: exit %d, stderr:\n%s\nwant exit 1 and %q", strings.Join(args, " "), r.code, r.stderr, tc.want)
				}
				if r.stdout != "" {
					t.Errorf("snap %s printed %q", strings.Join(args, " "), r.stdout)
				}
			}
			if _, err := os.Stat(sentinel); err == nil {
				t.Error("the before hook ran")
			}
			if _, err := os.Stat(h.stateDir); err == nil {
				t.Error("a state directory was created")
			}
			if n := snapshotCount(t, repoDir); n != 0 {
				t.Errorf("%d snapshots written", n)
			}
			if _, err := os.Stat(filepath.Join(h.home, ".config", "systemd")); err == nil {
				t.Error("units were written")
			}
		})
	}

	// With the good file, mistakes on the command line.
	h.writeConfig(t, good)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"schedule", "install", "a", "--every", "*/7 * * 13 *"}, "--every: invalid schedule \"*/7 * * 13 *\": month 13 is out of range 1-12"},
		{[]string{"schedule", "install", "a", "--every", "fortnightly"}, "a cron expression has 5 fields"},
		{[]string{"run", "nosuch"}, "has no job \"nosuch\"; its jobs are a"},
		{[]string{"snapshots", "--job", "nosuch"}, "--job: " + h.configFile + " has no job \"nosuch\""},
		{[]string{"run"}, "name a job to run"},
		{[]string{"run", "a", "--config", filepath.Join(h.dir, "missing.toml")}, "missing.toml: no such file"},
	} {
		r := h.snap(t, tc.args...)
		if r.code != exitFatal || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("snap %s: exit %d, stderr %q; want exit 1 and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(sentinel); err == nil {
		t.Error("the before hook ran")
	}
}

// TestRunHooks: a before hook that fails aborts the job and says so; an
// after hook that hangs is killed at hook-timeout with its process group;
// on-failure sees what went wrong.
func TestRunHooks(t *testing.T) {
	h := newJobHome(t)
	repoDir := filepath.Join(h.dir, "repo")
	mustSnap(t, "init", "-r", repoDir)
	h.write(t, "data/file", "x")
	failLog := filepath.Join(h.dir, "on-failure.log")
	base := fmt.Sprintf("[jobs.a]\nrepository = %q\nsources = [\"~/data\"]\nhook-timeout = \"1s\"\non-failure = 'echo \"$SNAP_JOB $SNAP_HOOK $SNAP_STATUS $SNAP_EXIT_CODE: $SNAP_ERROR\" >> %s'\n", repoDir, failLog)

	h.writeConfig(t, base+"before = ['true', 'echo mounting; exit 3']\nafter = 'touch after-ran'\n")
	r := h.snap(t, "run", "a")
	t.Logf("failing before hook:\n%s%s", r.stdout, r.stderr)
	if r.code != exitFatal || !strings.Contains(r.stderr, `job a: before: command "echo mounting; exit 3" exited with status 3; the job was aborted and nothing was backed up`) {
		t.Errorf("before hook failed: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "a: create     skipped  a before hook failed") || !strings.Contains(r.stderr, "mounting") {
		t.Errorf("before hook failed: stdout:\n%s", r.stdout)
	}
	if n := snapshotCount(t, repoDir); n != 0 {
		t.Errorf("%d snapshots after a failed before hook", n)
	}
	if _, err := os.Stat(filepath.Join(h.home, "after-ran")); err == nil {
		t.Error("the after hook ran although the before hook failed")
	}
	if log, _ := os.ReadFile(failLog); !strings.HasPrefix(string(log), "a on-failure failed 1: before: command") {
		t.Errorf("on-failure hook wrote %q", log)
	}
	st := h.state(t, "a")
	if st.LastError == nil || !strings.Contains(st.LastError.Message, "exited with status 3") || !st.LastSuccess.IsZero() || st.LastRun.Status != "failed" {
		t.Errorf("state after a failed before hook: %+v", st)
	}

	// An after hook that hangs, with a background child in its group.
	os.Remove(failLog)
	pidFile := filepath.Join(h.dir, "bg.pid")
	h.writeConfig(t, base+fmt.Sprintf("after = 'sleep 300 & echo $! > %s; wait'\n", pidFile))
	start := time.Now()
	r = h.snap(t, "run", "a")
	took := time.Since(start)
	t.Logf("hanging after hook (%v):\n%s%s", took, r.stdout, r.stderr)
	if r.code != exitFatal || !strings.Contains(r.stderr, "was still running after hook-timeout 1s, so it was killed with its process group") {
		t.Errorf("hanging after hook: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if took > 15*time.Second {
		t.Errorf("run took %v with a hook-timeout of 1s", took)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if alive(pid) {
		t.Errorf("the hook's background process %d still runs", pid)
	}
	if n := snapshotCount(t, repoDir); n != 1 {
		t.Errorf("%d snapshots; the backup itself should have succeeded", n)
	}
	if st := h.state(t, "a"); st.LastSuccess.IsZero() || st.LastRun.ExitCode != exitFatal {
		t.Errorf("state after a hanging after hook: %+v", st)
	}
	if log, _ := os.ReadFile(failLog); !strings.Contains(string(log), "a on-failure failed 1: after: command") {
		t.Errorf("on-failure hook wrote %q", log)
	}

	// Hooks that succeed: one line each, and the job's variables.
	h.writeConfig(t, base+"before = 'test \"$SNAP_HOOK\" = before && test -n \"$SNAP_REPOSITORY\"'\nafter = 'echo \"$SNAP_STATUS $SNAP_SNAPSHOT\" > after.txt'\n")
	r = h.mustSnap(t, "run", "a", "--json")
	s := parseRun(t, r.stdout)
	if got := s.stepStatus(); got != "before=ok create=ok forget=skipped prune=skipped check=skipped after=ok" {
		t.Errorf("steps: %s", got)
	}
	if out, _ := os.ReadFile(filepath.Join(h.home, "after.txt")); string(out) != "ok "+s.Jobs[0].Steps[1].SnapshotID+"\n" {
		t.Errorf("after hook saw %q", out)
	}
}

// alive reports whether pid is a process that is not a zombie (a killed
// child of a killed shell may wait for a parent that no longer reaps).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// TestRunOverlap: a second run of a job while the first still runs waits
// --lock-wait, then exits 11 with one clear line, touching nothing; the
// first finishes normally. A repository locked by another writer is 11 too.
func TestRunOverlap(t *testing.T) {
	h := newJobHome(t)
	repoDir := filepath.Join(h.dir, "repo")
	mustSnap(t, "init", "-r", repoDir)
	h.write(t, "data/file", "x")
	started := filepath.Join(h.dir, "started")
	h.writeConfig(t, fmt.Sprintf("[jobs.a]\nrepository = %q\nsources = [\"~/data\"]\nbefore = 'touch %s; sleep 3'\n[jobs.a.retention]\nkeep-last = 3\n", repoDir, started))

	first := h.command("run", "a")
	var firstOut bytes.Buffer
	first.Stdout, first.Stderr = &firstOut, &firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first run did not start its before hook")
		}
	}
	start := time.Now()
	r := h.snap(t, "run", "a", "-q", "--lock-wait", "500ms")
	t.Logf("second run: %s", r.stderr)
	if r.code != exitLocked || !strings.Contains(r.stderr, "job a is still running (pid ") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || r.stdout != "" {
		t.Errorf("second run: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if w := time.Since(start); w < 500*time.Millisecond {
		t.Errorf("the second run gave up after %v, before --lock-wait", w)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first run: %v\n%s", err, firstOut.String())
	}
	if st := h.state(t, "a"); st.LastRun.Status != "ok" || st.LastError != nil {
		t.Errorf("the locked run changed the state: %+v", st)
	}

	// Another writer holds the repository: after the wait, 11.
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) not found: the repository-lock case is not tested")
	}
	h.writeConfig(t, fmt.Sprintf("[jobs.a]\nrepository = %q\nsources = [\"~/data\"]\n", repoDir))
	lockFile := filepath.Join(repoDir, "locks", "write")
	holder := exec.Command("flock", lockFile, "sleep", "10")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); exec.Command("flock", "-n", lockFile, "true").Run() == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("flock(1) did not take the repository lock")
		}
	}
	r = h.snap(t, "run", "a", "--lock-wait", "1s")
	if r.code != exitLocked || !strings.Contains(r.stderr, "snap: job a: create: repository "+repoDir+" is locked") {
		t.Errorf("repository locked: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if st := h.state(t, "a"); st.LastRun.ExitCode != exitLocked || st.LastError == nil {
		t.Errorf("state after a locked repository: %+v", st)
	}
}

// TestRunExitCode checks how the steps' codes make the run's: a warning
// (create's 3) is better than a lock (11), which is better than a failure.
func TestRunExitCode(t *testing.T) {
	for _, tc := range []struct {
		codes []int
		want  int
	}{
		{[]int{0, 0}, 0}, {[]int{0, 3}, 3}, {[]int{3, 11}, 11}, {[]int{11, 1}, 1}, {[]int{1, 3, 0}, 1},
		{[]int{10, 11}, 10}, {[]int{1, 130}, 130},
	} {
		code := exitOK
		for _, c := range tc.codes {
			code = worse(code, c)
		}
		if code != tc.want {
			t.Errorf("%v: %d, want %d", tc.codes, code, tc.want)
		}
		res := []*jobResult{{Job: "a", ExitCode: code, Error: "x"}}
		err := runFailure(res, code)
		if got := exitCode(context.Background(), err); (err == nil) != (code == 0) || (err != nil && got != code) {
			t.Errorf("code %d: error %v gives exit %d", code, err, got)
		}
	}
	if !errors.Is(runFailure([]*jobResult{{ExitCode: exitLocked}}, exitLocked), backend.ErrLocked) ||
		!errors.Is(runFailure([]*jobResult{{ExitCode: exitNoRepo}}, exitNoRepo), repo.ErrNoRepository) {
		t.Error("sentinels")
	}
}

// TestRunJobFlag: --job fills in -r and the job's defaults of create,
// forget and prune; the command line wins.
func TestRunJobFlag(t *testing.T) {
	h := newJobHome(t)
	repoDir, other := filepath.Join(h.dir, "repo"), filepath.Join(h.dir, "other")
	h.write(t, "data/keep.txt", "k")
	h.write(t, "data/skip.tmp", "s")
	h.writeConfig(t, fmt.Sprintf("[jobs.a]\nrepository = %q\nsources = [\"~/data\"]\nexclude = [\"*.tmp\"]\ntags = [\"t1\"]\n[jobs.a.retention]\nkeep-last = 1\n", repoDir))
	h.mustSnap(t, "init", "--job", "a")
	mustSnap(t, "init", "-r", other)
	for range 3 {
		h.mustSnap(t, "create", "--job", "a")
	}
	var snaps []struct {
		Paths, Tags []string
	}
	json.Unmarshal([]byte(h.mustSnap(t, "snapshots", "--job", "a", "--json").stdout), &snaps)
	if len(snaps) != 3 || snaps[0].Paths[0] != filepath.Join(h.home, "data") || snaps[0].Tags[0] != "t1" {
		t.Fatalf("create --job: %+v", snaps)
	}
	if ls := h.mustSnap(t, "ls", "--job", "a", "latest", "-R").stdout; !strings.Contains(ls, "keep.txt") || strings.Contains(ls, "skip.tmp") {
		t.Errorf("create --job ignored the job's exclude:\n%s", ls)
	}
	// The command line wins: -r, a path, a tag.
	h.mustSnap(t, "create", "--job", "a", "-r", other, "--tag", "manual", filepath.Join(h.home, "data", "keep.txt"))
	if n := snapshotCount(t, other); n != 1 {
		t.Errorf("-r with --job: %d snapshots in the other repository", n)
	}
	// forget takes the retention: keep-last 1 of this host and path.
	dry := h.mustSnap(t, "forget", "--job", "a", "--dry-run")
	if !strings.Contains(dry.stdout, "would remove 2 snapshots in total") {
		t.Errorf("forget --job --dry-run:\n%s", dry.stdout)
	}
	if dry := h.mustSnap(t, "forget", "--job", "a", "--dry-run", "--keep-last", "2"); !strings.Contains(dry.stdout, "would remove 1 snapshot in total") {
		t.Errorf("forget --job --keep-last 2 --dry-run:\n%s", dry.stdout)
	}
	// SNAP_CONFIG and --config choose the file.
	moved := filepath.Join(h.dir, "elsewhere.toml")
	os.Rename(h.configFile, moved)
	if r := h.snap(t, "snapshots", "--job", "a"); r.code != exitFatal || !strings.Contains(r.stderr, "no config file") {
		t.Errorf("without a config file: exit %d, %s", r.code, r.stderr)
	}
	h.mustSnap(t, "snapshots", "--job", "a", "--config", moved)
	h.env = append(h.env, "SNAP_CONFIG="+moved)
	h.mustSnap(t, "snapshots", "--job", "a")
}

// TestStatusOverdue: a job whose last success is older than twice its
// interval is overdue; -q prints only the warnings.
func TestStatusOverdue(t *testing.T) {
	h := newJobHome(t)
	h.writeConfig(t, "[jobs.hourly]\nrepository = \"/r\"\nsources = [\"/s\"]\nevery = \"hourly\"\n"+
		"[jobs.daily]\nrepository = \"/r\"\nsources = [\"/s\"]\nevery = \"30 2 * * *\"\n"+
		"[jobs.new]\nrepository = \"/r\"\nsources = [\"/s\"]\n")
	now := time.Now()
	for job, st := range map[string]config.State{
		"hourly": {LastSuccess: now.Add(-26 * time.Hour), LastRun: &config.RunRecord{Start: now.Add(-time.Hour), Status: "failed", ExitCode: 1},
			LastError: &config.ErrorRecord{Message: "create: disk full", Time: now.Add(-time.Hour)}},
		"daily": {LastSuccess: now.Add(-30 * time.Hour), LastRun: &config.RunRecord{Start: now.Add(-30 * time.Hour), Status: "ok"},
			LastCheck: now.Add(-30 * time.Hour), LastCheckErrors: 2, LastCheckPart: 3, CheckParts: 5, NextCheckPart: 4},
	} {
		st.Job = job
		if err := config.SaveState(h.stateDir, &st); err != nil {
			t.Fatal(err)
		}
	}
	r := h.mustSnap(t, "status")
	t.Logf("status:\n%s", r.stdout)
	for _, want := range []string{
		"hourly: last successful backup 26 h ago",
		"warning: hourly: overdue: last successful backup 26 h ago, more than twice its interval (every hourly: 1 h)",
		"warning: hourly: the last run, 1 h ago, failed (exit 1): create: disk full",
		"daily: last successful backup 30 h ago",
		"warning: daily: the last check, 30 h ago, found 2 errors in part 3/5",
		"warning: new: has never run",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status: no %q", want)
		}
	}
	if strings.Contains(r.stdout, "daily: overdue") {
		t.Error("a daily job 30 h after its last success is not overdue yet")
	}
	q := h.mustSnap(t, "status", "-q").stdout
	for _, l := range strings.Split(strings.TrimSpace(q), "\n") {
		if !strings.HasPrefix(l, "warning: ") {
			t.Errorf("status -q printed %q", l)
		}
	}
	var js struct {
		Jobs []struct {
			Job     string
			Overdue bool
		}
	}
	json.Unmarshal([]byte(h.mustSnap(t, "status", "--json", "hourly", "daily").stdout), &js)
	if len(js.Jobs) != 2 || !js.Jobs[0].Overdue || js.Jobs[1].Overdue {
		t.Errorf("status --json: %+v", js)
	}
}

// crontabFixture saves the crontab of the user running the tests and puts it
// back when the test ends, so that no test line is ever left behind.
func crontabFixture(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("crontab"); err != nil {
		t.Skip("crontab not found: install Debian's cron package (apt-get install cron) to test crontab schedules")
	}
	saved, had := readTestCrontab(t)
	t.Cleanup(func() {
		if had {
			cmd := exec.Command("crontab", "-")
			cmd.Stdin = strings.NewReader(saved)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("restore the crontab: %v: %s", err, out)
			}
		} else {
			exec.Command("crontab", "-r").Run()
		}
	})
}

func readTestCrontab(t *testing.T) (string, bool) {
	t.Helper()
	var out, stderr bytes.Buffer
	cmd := exec.Command("crontab", "-l")
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stderr.String(), "no crontab for") {
			return "", false
		}
		t.Fatalf("crontab -l: %v: %s", err, stderr.String())
	}
	return out.String(), true
}

func installTestCrontab(t *testing.T, text string) {
	t.Helper()
	cmd := exec.Command("crontab", "-")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("crontab -: %v: %s", err, out)
	}
}

// TestScheduleCrontab installs and removes crontab lines with the real
// crontab of Debian's cron: the user's own lines stay byte for byte, each
// line cron accepts, and the line it runs is a working command.
func TestScheduleCrontab(t *testing.T) {
	crontabFixture(t)
	h := newJobHome(t)
	repoDir := filepath.Join(h.dir, "repo")
	mustSnap(t, "init", "-r", repoDir)
	h.write(t, "data/file", "x")
	h.writeConfig(t, fmt.Sprintf("[jobs.a]\nrepository = %q\nsources = [\"~/data\"]\nevery = \"daily\"\n[jobs.b]\nrepository = %q\nsources = [\"~/data\"]\n", repoDir, repoDir))

	mine := "# my own jobs\nMAILTO=someone@example.com\n17 3 * * * /usr/bin/true # nightly\n@reboot /bin/echo hi %\n\n"
	installTestCrontab(t, mine)

	r := h.mustSnap(t, "schedule", "install", "a", "--using", "cron")
	t.Logf("install a: %s", r.stdout)
	text, _ := readTestCrontab(t)
	if !strings.HasPrefix(text, mine) {
		t.Fatalf("the user's lines changed:\n%s", text)
	}
	wantLine := regexp.MustCompile(`(?m)^0 0 \* \* \* XDG_STATE_HOME=\S+ XDG_CACHE_HOME=\S+ ` + regexp.QuoteMeta(snapBin) + ` --config ` + regexp.QuoteMeta(h.configFile) + ` run a -q # snap job a$`)
	if !wantLine.MatchString(text) {
		t.Errorf("no line for job a in:\n%s", text)
	}

	// The line runs the job.
	line := wantLine.FindString(text)
	_, command := splitCronLine(line)
	command = strings.ReplaceAll(command, `\%`, "%")
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Env = h.env
	if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("running the crontab line: %v, output %q (want none: -q)", err, out)
	}
	if st := h.state(t, "a"); st.LastRun == nil || st.LastRun.Status != "ok" {
		t.Errorf("the crontab line did not run job a: %+v", st)
	}

	// Expressions cron must accept; installing again replaces the line.
	for _, every := range []string{"*/15 * * * *", "0 0 * jan-mar/2 *", "30 2 * * mon-fri", "0 9-17/2 1,15 * SUN", "@weekly", "weekly", "monthly", "hourly"} {
		h.mustSnap(t, "schedule", "install", "b", "--using", "cron", "--every", every)
	}
	text, _ = readTestCrontab(t)
	if n := strings.Count(text, "# snap job b\n"); n != 1 {
		t.Errorf("%d lines for job b after installing it again:\n%s", n, text)
	}
	list := h.mustSnap(t, "schedule", "list").stdout
	if !strings.Contains(list, "a    cron  0 0 * * *") || !strings.Contains(list, "b    cron  0 * * * *") {
		t.Errorf("schedule list:\n%s", list)
	}
	var entries []scheduled
	if err := json.Unmarshal([]byte(h.mustSnap(t, "schedule", "list", "--json").stdout), &entries); err != nil || len(entries) != 2 || entries[0].Via != "cron" {
		t.Errorf("schedule list --json: %+v, %v", entries, err)
	}

	h.mustSnap(t, "schedule", "remove", "a")
	h.mustSnap(t, "schedule", "remove", "b")
	if text, _ := readTestCrontab(t); text != mine {
		t.Errorf("after remove the crontab is\n%q\nwant the user's own\n%q", text, mine)
	}
	if r := h.snap(t, "schedule", "remove", "a"); r.code != exitFatal || !strings.Contains(r.stderr, "job a is not scheduled") {
		t.Errorf("remove of a job not scheduled: exit %d, %s", r.code, r.stderr)
	}

	// A user without a crontab has none again afterwards.
	exec.Command("crontab", "-r").Run()
	h.mustSnap(t, "schedule", "install", "a", "--using", "cron")
	h.mustSnap(t, "schedule", "remove", "a")
	if text, had := readTestCrontab(t); had {
		t.Errorf("a crontab was left behind: %q", text)
	}
}

// TestScheduleSystemdUnits checks the units of an awkward config path and
// that installing replaces an earlier crontab line of the job.
func TestScheduleSystemdUnits(t *testing.T) {
	h := newJobHome(t)
	cfg := filepath.Join(h.dir, "my config 100%", "$snap.toml")
	os.MkdirAll(filepath.Dir(cfg), 0o755)
	os.WriteFile(cfg, []byte("[jobs.x-1]\nrepository = \"/r\"\nsources = [\"/s\"]\nevery = \"0 0 1 * mon\"\n"), 0o644)
	h.mustSnap(t, "schedule", "install", "x-1", "--using", "systemd", "--config", cfg)
	dir := filepath.Join(h.home, ".config", "systemd", "user")
	service, _ := os.ReadFile(filepath.Join(dir, "snap-x-1.service"))
	want := fmt.Sprintf("ExecStart=%s --config \"%s/my config 100%%%%/$$snap.toml\" run x-1\n", snapBin, h.dir)
	if !strings.Contains(string(service), want) || !strings.Contains(string(service), "Environment=XDG_STATE_HOME="+filepath.Join(h.home, ".local", "state")+"\n") {
		t.Errorf("service lacks %q:\n%s", want, service)
	}
	timer, _ := os.ReadFile(filepath.Join(dir, "snap-x-1.timer"))
	if !strings.Contains(string(timer), "OnCalendar=Mon *-*-* 00:00:00\nOnCalendar=*-*-01 00:00:00\n") {
		t.Errorf("timer:\n%s", timer)
	}
	verifyUnits(t, h, "x-1")

	// A unit snap did not write is not replaced.
	os.WriteFile(filepath.Join(dir, "snap-x-1.timer"), []byte("[Timer]\nOnCalendar=daily\n"), 0o644)
	if r := h.snap(t, "schedule", "install", "x-1", "--using", "systemd", "--config", cfg); r.code != exitFatal || !strings.Contains(r.stderr, "was not written by snap") {
		t.Errorf("foreign unit: exit %d, %s", r.code, r.stderr)
	}
	if r := h.snap(t, "schedule", "remove", "x-1"); r.code != exitFatal || !strings.Contains(r.stderr, "was not written by snap") {
		t.Errorf("remove of a foreign unit: exit %d, %s", r.code, r.stderr)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "snap-x-1.timer")); string(data) != "[Timer]\nOnCalendar=daily\n" {
		t.Errorf("the foreign unit changed: %q", data)
	}
}

// TestScheduleQuoting: arguments with blanks, quotes, % and $ survive
// systemd's and cron's quoting.
func TestScheduleQuoting(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/snap": "/usr/bin/snap", "a b": `"a b"`, `x"y`: `"x\"y"`, "100%": "100%%", "$HOME": "$$HOME", `a\b`: `"a\\b"`, "": `""`,
	} {
		if got := systemdQuote(in); got != want {
			t.Errorf("systemdQuote(%q) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{"/a/b": "/a/b", "a b": "'a b'", "it's": `'it'\''s'`, "$x": "'$x'"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
	s, _ := config.ParseSchedule("hourly")
	line := cronLine("j", s, []string{"/bin/snap", "--config", "/c/100% sure.toml", "run", "j"}, nil)
	if line != `0 * * * * /bin/snap --config '/c/100\% sure.toml' run j -q # snap job j` {
		t.Errorf("cron line %s", line)
	}
	if job := cronJob(line); job != "j" {
		t.Errorf("cronJob: %q", job)
	}
	for _, l := range []string{"# 0 * * * * x # snap job j", "0 * * * * x # snap job j k", "0 * * * * x"} {
		if job := cronJob(l); job != "" {
			t.Errorf("cronJob(%q) = %q, want none", l, job)
		}
	}
	if _, n := withoutJob("a\n0 * * * * x # snap job jj\n0 * * * * y # snap job j\nb", "j"); n != 1 {
		t.Errorf("withoutJob removed %d lines, want only job j's", n)
	}
}
