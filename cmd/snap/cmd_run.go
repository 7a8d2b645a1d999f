package main

// snap run: the jobs of the config file (internal/config) run without
// wrapper scripts. One run of a job is, under one repository lock: create,
// forget by the job's retention, prune when due, a rotating partial check
// when due; around it the job's hooks; after it the job's state file.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"snap/internal/backend"
	"snap/internal/config"
	"snap/repo"
)

// jobOptions are the --config and --job flags, and what --job chose.
type jobOptions struct {
	configFlag string      // --config
	name       string      // --job
	job        *config.Job // the job, for create's default sources
}

// ownJobArg marks commands that take jobs as arguments and read the config
// file themselves, so that applyJob leaves them alone.
const ownJobArg = "snap-reads-jobs"

// runLockWait is run's default --lock-wait: long enough for an overlapping
// run that is about to finish, short enough that cron's next run is not
// queued behind a stuck one.
const runLockWait = "1m"

// hookKillGrace is how long a hook that overran its timeout gets between
// SIGTERM and SIGKILL.
const hookKillGrace = 5 * time.Second

// configEnv is what the config package reads from the environment.
func configEnv() config.Env {
	return config.Env{Getenv: func(k string) string {
		v := os.Getenv(k)
		if k == "HOME" && v == "" {
			if u, err := user.Current(); err == nil {
				v = u.HomeDir
			}
		}
		return v
	}, Euid: os.Geteuid()}
}

// loadConfig finds and reads the config file; any error in it is an error
// here, so that a broken file runs nothing.
func (g *globals) loadConfig() (*config.Config, error) {
	env := configEnv()
	path, err := config.Locate(g.jobs.configFlag, env)
	if err != nil {
		return nil, err
	}
	return config.Load(path, env)
}

// applyJob implements --job for every command that does not take jobs
// itself: the job's repository unless -r was given, and the job's settings
// as defaults of create (options and sources), forget (retention, limited to
// this host and the job's paths) and prune. It runs before the command.
func (g *globals) applyJob(cmd *cobra.Command, args []string) error {
	if g.jobs.name == "" || cmd.Annotations[ownJobArg] != "" {
		return nil
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	job, err := cfg.Job(g.jobs.name)
	if err != nil {
		return fmt.Errorf("--job: %w", err)
	}
	if !cmd.Flags().Changed("repo") {
		g.repo = job.Repository
	}
	setRemoteFlags(cmd.Flags(), job)
	switch cmd.Name() {
	case "create":
		g.jobs.job = job
		return g.setJobFlags(cmd, job, job.CreateFlags())
	case "forget":
		if len(args) > 0 {
			return nil // snapshots named on the command line
		}
		var flags []config.Flag
		if !slices.ContainsFunc(forgetPolicyFlags, cmd.Flags().Changed) {
			flags = slices.Clone(job.Retention) // else the user's policy replaces the job's
		}
		if !cmd.Flags().Changed("host") && !cmd.Flags().Changed("path") {
			host, _ := os.Hostname()
			flags = append(flags, config.Flag{Name: "host", Value: host})
			for _, p := range job.Sources {
				flags = append(flags, config.Flag{Name: "path", Value: p})
			}
		}
		return g.setJobFlags(cmd, job, flags)
	case "prune":
		return g.setJobFlags(cmd, job, job.PruneFlags())
	}
	return nil
}

// forgetPolicyFlags are forget's flags that make up a policy.
var forgetPolicyFlags = []string{
	"keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly",
	"keep-within", "keep-within-hourly", "keep-within-daily", "keep-within-weekly",
	"keep-within-monthly", "keep-within-yearly", "keep-tag",
}

// setJobFlags sets the flags of cmd from a job, except those given on the
// command line. A flag this build of snap lacks is skipped with a note.
func (g *globals) setJobFlags(cmd *cobra.Command, job *config.Job, flags []config.Flag) error {
	given := map[string]bool{}
	cmd.Flags().Visit(func(f *pflag.Flag) { given[f.Name] = true })
	for _, f := range flags {
		if given[f.Name] {
			continue
		}
		if cmd.Flags().Lookup(f.Name) == nil {
			if !g.quiet {
				fmt.Fprintf(g.stderr, "snap: note: job %s sets %s, but this snap's %s has no --%s; it is not used\n", job.Name, f.Name, cmd.Name(), f.Name)
			}
			continue
		}
		if err := cmd.Flags().Set(f.Name, f.Value); err != nil {
			return fmt.Errorf("job %s (line %d of the config file): %s %q: %w", job.Name, job.Line, f.Name, f.Value, err)
		}
	}
	return nil
}

// setRemoteFlags gives the global flags of remote repositories the job's
// values, unless they were given on the command line.
func setRemoteFlags(flags *pflag.FlagSet, job *config.Job) {
	if f := flags.Lookup("ssh-command"); f != nil && !f.Changed {
		v := f.DefValue
		if job.SSHCommand != "" {
			v = job.SSHCommand
		}
		f.Value.Set(v) // Value.Set, unlike FlagSet.Set, leaves Changed false for the next job
	}
}

type runOptions struct {
	all bool
}

func runCmd(g *globals) *cobra.Command {
	o := &runOptions{}
	c := &cobra.Command{
		Use:   "run JOB... | --all",
		Short: "Run jobs of the config file: back up, forget, and prune and check when due",
		Long: `Run runs jobs of the config file (--config tells where it is looked for):
  before hooks, then under one repository lock
  create     a snapshot of the job's sources with its excludes and tags
  forget     snapshots of this host and these sources by the job's retention
  prune      when prune-every has passed since the last prune
  check      when check-every has passed: part n of check-subset-parts of the
             data (check --read-data-subset n/m), n rotating from run to run
then after hooks (when the before hooks succeeded), and on-failure hooks when
anything failed. It prints one line per step and a final line (--json: one
object), and writes the job's state file, which 'snap status' reads.

Runs of one job take turns: a run that finds another still running waits up
to --lock-wait (1m for run) and then exits 11, doing nothing.

Exit code: the worst of the steps: 0 all ok; 3 snapshot written but some
files could not be read (the other steps still run); 11 locked by another
run or writer; 10 no repository; 1 anything else.`,
		Example: `  snap run local
  snap run --all -q              # from cron: prints only problems`,
		Annotations: map[string]string{ownJobArg: "yes"},
		RunE:        func(cmd *cobra.Command, args []string) error { return g.runJobs(cmd, o, args) },
	}
	c.Flags().BoolVar(&o.all, "all", false, "run every job of the config file, in the file's order")
	return c
}

// stepResult is one line of run's summary.
type stepResult struct {
	Step   string `json:"step"`
	Status string `json:"status"` // ok, warning, failed, skipped
	Detail string `json:"detail"`

	SnapshotID string         `json:"snapshot_id,omitempty"`
	BytesAdded *int64         `json:"bytes_added,omitempty"`
	Removed    []string       `json:"removed,omitempty"`
	Part       string         `json:"part,omitempty"`
	Findings   []checkFinding `json:"findings,omitempty"`

	code int // exit code this step alone would give
}

type checkFinding struct {
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// jobResult is the outcome of one job.
type jobResult struct {
	Job       string        `json:"job"`
	Status    string        `json:"status"` // ok, warning, failed, locked, interrupted
	ExitCode  int           `json:"exit_code"`
	Error     string        `json:"error,omitempty"`
	Start     time.Time     `json:"start"`
	DurationS float64       `json:"duration_s"`
	Steps     []*stepResult `json:"steps"`

	errs []string // the failures, for the error message and the state file
}

func (r *jobResult) step(name, status, detail string, code int) *stepResult {
	s := &stepResult{Step: name, Status: status, Detail: detail, code: code}
	r.Steps = append(r.Steps, s)
	if code != exitOK {
		r.errs = append(r.errs, name+": "+detail)
	}
	return s
}

// codeRank orders exit codes from best to worst, for the code of a run.
func codeRank(code int) int {
	switch code {
	case exitOK:
		return 0
	case exitPartial:
		return 1
	case exitLocked:
		return 2
	case exitNoRepo:
		return 3
	case exitInterrupted:
		return 5
	}
	return 4
}

func worse(a, b int) int {
	if codeRank(b) > codeRank(a) {
		return b
	}
	return a
}

// failCode is the exit code of a step that failed with err: exitCode's,
// except that a failure is never a mere warning.
func failCode(ctx context.Context, err error) int {
	if code := exitCode(ctx, err); code != exitOK && code != exitPartial {
		return code
	}
	return exitFatal
}

func statusOf(code int) string {
	switch code {
	case exitOK:
		return "ok"
	case exitPartial:
		return "warning"
	case exitLocked:
		return "locked"
	case exitInterrupted:
		return "interrupted"
	}
	return "failed"
}

func (g *globals) runJobs(cmd *cobra.Command, o *runOptions, args []string) error {
	ctx := cmd.Context()
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	names := args
	switch {
	case o.all && len(args) > 0:
		return errors.New("give job names or --all, not both")
	case o.all:
		names = cfg.Order
	case len(args) == 0 && g.jobs.name != "":
		names = []string{g.jobs.name}
	case len(args) == 0:
		return fmt.Errorf("name a job to run (snap run NAME) or give --all; the jobs of %s are %s", cfg.Path, strings.Join(cfg.Order, ", "))
	}
	var jobs []*config.Job
	for _, n := range names {
		j, err := cfg.Job(n)
		if err != nil {
			return err
		}
		jobs = append(jobs, j)
	}
	if !cmd.Flags().Changed("lock-wait") {
		g.lockWait = runLockWait
	}
	wait, err := time.ParseDuration(g.lockWait)
	if err != nil {
		return fmt.Errorf("--lock-wait %q: %w", g.lockWait, err)
	}
	stateDir, err := config.StateDir(configEnv())
	if err != nil {
		return err
	}
	var results []*jobResult
	code := exitOK
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		res := g.runJob(ctx, cmd, j, stateDir, wait)
		results = append(results, res)
		code = worse(code, res.ExitCode)
	}
	if ctx.Err() != nil {
		code = exitInterrupted
	}
	if err := g.printRun(results, code); err != nil {
		return err
	}
	return runFailure(results, code)
}

// runError is the error of a run that did not fully succeed: a message
// naming each failed job, matching the sentinel that exitCode maps to the
// run's exit code.
type runError struct {
	msg      string
	sentinel error
}

func (e *runError) Error() string { return e.msg }
func (e *runError) Unwrap() error { return e.sentinel }

func runFailure(results []*jobResult, code int) error {
	if code == exitOK {
		return nil
	}
	var lines []string
	for _, r := range results {
		if r.ExitCode != exitOK && r.ExitCode != exitPartial {
			lines = append(lines, fmt.Sprintf("job %s: %s", r.Job, r.Error))
		}
	}
	// main prints "snap: " before the message; the same before each line.
	e := &runError{msg: strings.Join(lines, "\nsnap: ")}
	switch code {
	case exitPartial:
		e.msg, e.sentinel = "some files could not be read", errPartial
	case exitLocked:
		e.sentinel = backend.ErrLocked
	case exitNoRepo:
		e.sentinel = repo.ErrNoRepository
	case exitInterrupted:
		e.sentinel = context.Canceled
	}
	if e.msg == "" {
		e.msg = "interrupted"
	}
	return e
}

// runJob runs one job and records it in the job's state file.
func (g *globals) runJob(ctx context.Context, cmd *cobra.Command, j *config.Job, stateDir string, wait time.Duration) *jobResult {
	res := &jobResult{Job: j.Name, Start: time.Now(), Steps: []*stepResult{}}
	finish := func() *jobResult {
		code := exitOK
		for _, s := range res.Steps {
			code = worse(code, s.code)
		}
		if ctx.Err() != nil {
			code = exitInterrupted
		}
		res.ExitCode, res.Status = code, statusOf(code)
		res.Error = strings.Join(res.errs, "; ")
		res.DurationS = time.Since(res.Start).Seconds()
		return res
	}

	unlockJob, err := config.LockJob(ctx, stateDir, j.Name, wait)
	if err != nil {
		// Another run of this job owns its state and hooks: touch neither.
		code := exitCode(ctx, err)
		if errors.Is(err, config.ErrBusy) {
			code = exitLocked
		}
		res.step("lock", statusOf(code), err.Error(), code)
		return finish()
	}
	defer unlockJob()
	st, err := config.LoadState(stateDir, j.Name)
	if err != nil {
		fmt.Fprintf(g.stderr, "snap: warning: %v\n", err)
		st = &config.State{Job: j.Name}
	}

	env := hookEnv(j)
	if g.runHooks(ctx, res, "before", j.Before, j.HookTimeout, env) {
		g.runRepoSteps(ctx, cmd, j, st, res)
		finish()
		g.runHooks(ctx, res, "after", j.After, j.HookTimeout, resultEnv(env, res))
	} else {
		for _, name := range []string{"create", "forget", "prune", "check"} {
			res.step(name, "skipped", "a before hook failed", exitOK)
		}
	}
	if finish(); res.ExitCode != exitOK && len(j.OnFailure) > 0 {
		// The failure hooks must see the failure even when interrupted.
		hookCtx := context.WithoutCancel(ctx)
		g.runHooks(hookCtx, res, "on-failure", j.OnFailure, j.HookTimeout, resultEnv(env, res))
	}
	finish()

	end := time.Now()
	st.LastRun = &config.RunRecord{Start: res.Start, End: end, Status: res.Status, ExitCode: res.ExitCode}
	st.DurationS = res.DurationS
	if res.Error != "" {
		st.LastError = &config.ErrorRecord{Message: res.Error, Time: end}
	}
	if err := config.SaveState(stateDir, st); err != nil {
		res.step("state", "failed", err.Error()+"; 'snap status' and the next run's prune and check schedule do not know about this run", exitFatal)
		finish()
	}
	return res
}

// hookEnv is the environment of a job's hooks.
func hookEnv(j *config.Job) []string {
	return append(os.Environ(), "SNAP_JOB="+j.Name, "SNAP_REPOSITORY="+j.Repository)
}

// resultEnv adds how the run went, for after and on-failure hooks.
func resultEnv(env []string, res *jobResult) []string {
	env = append(slices.Clone(env), "SNAP_STATUS="+res.Status, fmt.Sprintf("SNAP_EXIT_CODE=%d", res.ExitCode), "SNAP_ERROR="+res.Error)
	for _, s := range res.Steps {
		if s.SnapshotID != "" {
			env = append(env, "SNAP_SNAPSHOT="+s.SnapshotID)
		}
	}
	return env
}

// runHooks runs the commands of one hook in order and reports whether all
// succeeded; a hook without commands succeeds and prints no line.
func (g *globals) runHooks(ctx context.Context, res *jobResult, name string, cmds []string, timeout time.Duration, env []string) bool {
	if len(cmds) == 0 {
		return true
	}
	env = append(slices.Clone(env), "SNAP_HOOK="+name)
	for _, c := range cmds {
		if err := runHook(ctx, c, timeout, env, g.stderr); err != nil {
			msg := fmt.Sprintf("command %q %v", c, err)
			if name == "before" {
				msg += "; the job was aborted and nothing was backed up"
			}
			code := failCode(ctx, err)
			res.step(name, statusOf(code), msg, code)
			return false
		}
	}
	res.step(name, "ok", plural(len(cmds), "command"), exitOK)
	return true
}

// runHook runs command with /bin/sh -c in a process group of its own, its
// output going to out. A hook still running after timeout, or when ctx ends,
// is stopped with its whole group (SIGTERM, then SIGKILL): a hook that
// started background processes must not leave them behind holding the
// backup disk or our output open.
func runHook(ctx context.Context, command string, timeout time.Duration, env []string, out io.Writer) error {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Output is copied through a pipe when out is not a file; a process
	// that keeps the pipe open must not keep Wait waiting.
	cmd.WaitDelay = hookKillGrace
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("could not start: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var why error
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return fmt.Errorf("was killed by signal %v", ws.Signal())
			}
			return fmt.Errorf("exited with status %d", ee.ExitCode())
		}
		return fmt.Errorf("failed: %w", err)
	case <-timer.C:
		why = fmt.Errorf("was still running after hook-timeout %s, so it was killed with its process group", timeout)
	case <-ctx.Done():
		why = fmt.Errorf("was stopped: %w", ctx.Err())
	}
	pgid := cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	exited := false
	select {
	case <-done:
		exited = true
	case <-time.After(hookKillGrace):
	}
	// Also after the leader exited: others of its group may still run.
	syscall.Kill(-pgid, syscall.SIGKILL)
	if !exited {
		<-done
	}
	return why
}

// runRepoSteps runs create, forget, prune and check under one lock, and
// notes their results in st. The repository is closed when it returns, so
// that after hooks may unmount it.
func (g *globals) runRepoSteps(ctx context.Context, cmd *cobra.Command, j *config.Job, st *config.State, res *jobResult) {
	skipRest := func(why string, from int) {
		for _, name := range []string{"create", "forget", "prune", "check"}[from:] {
			res.step(name, "skipped", why, exitOK)
		}
	}
	fail := func(name string, err error) {
		code := failCode(ctx, err)
		res.step(name, statusOf(code), err.Error(), code)
	}

	cc, co := newCreateCmd(g)
	if err := g.setJobFlags(cc, j, j.CreateFlags()); err != nil {
		fail("create", err)
		skipRest("create failed", 1)
		return
	}
	g.repo = j.Repository
	setRemoteFlags(cmd.Flags(), j)
	in, err := g.createPrepare(co, j.Sources)
	if err != nil {
		fail("create", err)
		skipRest("create failed", 1)
		return
	}
	r, err := g.open(ctx, "")
	if err != nil {
		if errors.Is(err, repo.ErrNoRepository) {
			err = fmt.Errorf("%w; create it once with 'snap init --job %s'", err, j.Name)
		}
		fail("create", err)
		skipRest("no repository", 1)
		return
	}
	defer r.Close()
	unlock, err := g.lock(ctx, r, "run "+j.Name)
	if err != nil {
		fail("create", err)
		skipRest("the repository is locked", 1)
		return
	}
	defer unlock()

	// create
	sn, err := g.createSnapshot(ctx, r, co, in)
	if err != nil {
		fail("create", err)
		skipRest("create failed", 1)
		return
	}
	s := sn.Summary
	detail := fmt.Sprintf("snapshot %s: %d new, %d changed, %d unchanged files; added %s in %.1fs",
		sn.ID.Short(), s.FilesNew, s.FilesChanged, s.FilesUnchanged, formatBytes(s.BytesAdded), s.Duration)
	status, code := "ok", exitOK
	if perr := createPartial(sn); perr != nil {
		status, code, detail = "warning", exitPartial, perr.Error()+" (each is named above)"
	}
	step := res.step("create", status, detail, code)
	step.SnapshotID, step.BytesAdded = sn.ID.String(), &s.BytesAdded
	st.LastSuccess, st.LastSnapshot, st.BytesAdded = res.Start, sn.ID.String(), s.BytesAdded

	// forget
	if len(j.Retention) == 0 {
		res.step("forget", "skipped", "the job has no retention", exitOK)
	} else if err := g.runForgetStep(ctx, r, j, in, res); err != nil {
		fail("forget", err)
		skipRest("forget failed", 2)
		return
	}

	// prune
	if due, next := j.PruneDue(st, res.Start); j.PruneEvery == 0 {
		res.step("prune", "skipped", "the job has no prune-every", exitOK)
	} else if !due {
		res.step("prune", "skipped", fmt.Sprintf("not due until %s (prune-every %s)", next.Local().Format("2006-01-02 15:04"), formatInterval(j.PruneEvery)), exitOK)
	} else {
		pc, po := newPruneCmd(g)
		err := g.setJobFlags(pc, j, j.PruneFlags())
		var plan *repo.PrunePlan
		if err == nil {
			plan, _, err = g.pruneRepo(ctx, r, po, nil)
		}
		var locked *backend.LockedError
		switch {
		case errors.As(err, &locked) && locked.Readers:
			// Someone is restoring: not a failure of the job. The prune
			// is still due, so the next run tries again.
			res.step("prune", "skipped", err.Error()+"; the next run prunes", exitOK)
		case err != nil:
			fail("prune", err)
			skipRest("prune failed", 3)
			return
		default:
			st.LastPrune = res.Start
			res.step("prune", "ok", fmt.Sprintf("deleted %d packs and repacked %d; freed %s", len(plan.Delete), len(plan.Repack), formatBytes(plan.FreedBytes)), exitOK)
		}
	}

	// check
	due, part, next := j.CheckDue(st, res.Start)
	switch {
	case j.CheckEvery == 0:
		res.step("check", "skipped", "the job has no check-every", exitOK)
	case !due:
		res.step("check", "skipped", fmt.Sprintf("not due until %s (check-every %s; next part %d/%d)", next.Local().Format("2006-01-02 15:04"), formatInterval(j.CheckEvery), part, j.CheckParts), exitOK)
	default:
		g.runCheckStep(ctx, r, j, st, res, part)
	}
}

// runForgetStep removes the snapshots of the job's group (this host, the
// job's paths) that its retention does not keep. Other groups in the
// repository (other hosts, other jobs) are not touched.
func (g *globals) runForgetStep(ctx context.Context, r *repo.Repository, j *config.Job, in *createInput, res *jobResult) error {
	fc, fo := newForgetCmd(g)
	if err := g.setJobFlags(fc, j, j.Retention); err != nil {
		return err
	}
	p := fo.policy(time.Now())
	if err := p.Validate(); err != nil {
		return err
	}
	fo.filter.Hosts = []string{in.host}
	groups, err := forgetByPolicy(ctx, r, fo, p)
	if err != nil {
		return err
	}
	paths := slices.Sorted(slices.Values(in.paths))
	var mine []forgetGroup
	for _, gr := range groups {
		if gr.key.Host == in.host && slices.Equal(gr.key.Paths, paths) {
			mine = append(mine, gr)
		}
	}
	total, kept := 0, 0
	for _, gr := range mine {
		total += len(gr.remove)
		kept += len(gr.keep)
	}
	removed, err := forgetRemove(ctx, r, mine)
	if err != nil {
		return fmt.Errorf("removed %d of %d snapshots, then %w", removed, total, err)
	}
	step := res.step("forget", "ok", fmt.Sprintf("removed %s, kept %d", plural(removed, "snapshot"), kept), exitOK)
	for _, gr := range mine {
		for _, s := range gr.remove {
			step.Removed = append(step.Removed, s.ID.String())
		}
	}
	return nil
}

// runCheckStep reads part of check-subset-parts of the data and moves the
// rotation on. Findings go to stderr (errors even with -q), so that cron
// mails them and --json output stays one object.
func (g *globals) runCheckStep(ctx context.Context, r *repo.Repository, j *config.Job, st *config.State, res *jobResult, part int) {
	subset := fmt.Sprintf("%d/%d", part, j.CheckParts)
	var findings []checkFinding
	say := func(severity, msg string) {
		findings = append(findings, checkFinding{severity, msg})
		if severity == repo.SeverityError || (!g.quiet && !g.json) {
			fmt.Fprintf(g.stderr, "snap: job %s: check: %s: %s\n", j.Name, severity, msg)
		}
	}
	cr, err := g.checkRepo(ctx, r, &checkOptions{subset: subset}, say, func(string, ...any) {})
	if err != nil {
		code := failCode(ctx, err)
		step := res.step("check", statusOf(code), fmt.Sprintf("part %s: %v", subset, err), code)
		step.Part, step.Findings = subset, findings
		return
	}
	st.RecordCheck(res.Start, part, j.CheckParts, cr.errors)
	read := fmt.Sprintf("part %s: read %d of %d packs (%s)", subset, cr.packsRead, cr.packsTotal, formatBytes(cr.bytesRead))
	var step *stepResult
	if cr.errors > 0 {
		step = res.step("check", "failed", fmt.Sprintf("%s; %s found (each named above); 'snap check --job %s --read-data' checks everything", read, plural(cr.errors, "error"), j.Name), exitFatal)
	} else {
		step = res.step("check", "ok", read+"; no errors", exitOK)
	}
	step.Part, step.Findings = subset, findings
}

// printRun prints run's summary: one line per step and one per job, and a
// total for several jobs; --json prints one object.
func (g *globals) printRun(results []*jobResult, code int) error {
	if g.json {
		return printJSON(g.stdout, map[string]any{"message_type": "run", "jobs": results, "exit_code": code, "status": statusOf(code)})
	}
	if g.quiet {
		return nil
	}
	w := g.stdout
	for _, r := range results {
		for _, s := range r.Steps {
			fmt.Fprintf(w, "%s: %-10s %-8s %s\n", r.Job, s.Step, s.Status, s.Detail)
		}
		line := fmt.Sprintf("%s: %s in %.1fs", r.Job, r.Status, r.DurationS)
		if r.ExitCode != exitOK {
			line += fmt.Sprintf(" (exit %d)", r.ExitCode)
		}
		fmt.Fprintln(w, line)
	}
	if len(results) > 1 {
		counts := map[string]int{}
		var order []string
		for _, r := range results {
			if counts[r.Status] == 0 {
				order = append(order, r.Status)
			}
			counts[r.Status]++
		}
		var parts []string
		for _, s := range order {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
		_, err := fmt.Fprintf(w, "%s: %s (exit %d)\n", plural(len(results), "job"), strings.Join(parts, ", "), code)
		return err
	}
	return nil
}

// plural says "1 snapshot" or "N snapshots".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// formatInterval prints a duration in the units of the config file.
func formatInterval(d time.Duration) string {
	if day := 24 * time.Hour; d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}
