package main

// snap schedule: run jobs from a systemd user timer or, where systemd does
// not run the user's session, from the user's crontab.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"snap/internal/config"
)

const (
	viaAuto    = "auto"
	viaSystemd = "systemd"
	viaCron    = "cron"
)

// cronMarker ends each crontab line snap writes, followed by the job name:
// remove and list recognise their lines by it and leave all others alone.
const cronMarker = " # snap job "

type scheduleOptions struct {
	every string
	using string
}

func scheduleCmd(g *globals) *cobra.Command {
	own := map[string]string{ownJobArg: "yes"}
	c := &cobra.Command{
		Use:   "schedule",
		Short: "Run jobs of the config file from a systemd timer or cron",
		Long: `Schedule makes the system run 'snap run JOB' at the job's times: with a systemd
user timer (~/.config/systemd/user/snap-JOB.timer and .service, Persistent=true so a
run missed while the machine was off happens at the next boot) when systemd runs
the user's session, otherwise with a line in the user's crontab tagged
'# snap job JOB'. The command uses the absolute paths of this snap binary and of
the config file.`,
		Annotations: own,
	}
	o := &scheduleOptions{}
	install := &cobra.Command{
		Use:   "install JOB",
		Short: "Run a job at its times (--every, default: the job's every)",
		Long: `Install writes the systemd units or the crontab line that run 'snap run JOB'
and, for systemd, enables the timer. --every is hourly, daily (00:00), weekly
(Monday 00:00), monthly (the 1st, 00:00) or a cron expression such as
"30 2 * * *"; the default is the job's every key, which 'snap status' uses to
tell whether the job is overdue. Installing again replaces the job's schedule.`,
		Example: `  snap schedule install local
  snap schedule install offsite --every "30 12 * * 1-5"`,
		Args:        cobra.ExactArgs(1),
		Annotations: own,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.scheduleInstall(cmd.Context(), o, args[0])
		},
	}
	install.Flags().StringVar(&o.every, "every", "", "hourly, daily, weekly, monthly or a cron expression (default: the job's every)")
	install.Flags().StringVar(&o.using, "using", viaAuto, "systemd, cron, or auto: systemd when it runs the user's session")
	list := &cobra.Command{
		Use:         "list",
		Short:       "List the jobs snap has scheduled",
		Args:        cobra.NoArgs,
		Annotations: own,
		RunE:        func(cmd *cobra.Command, _ []string) error { return g.scheduleList(cmd.Context()) },
	}
	remove := &cobra.Command{
		Use:         "remove JOB",
		Short:       "Stop running a job: remove its timer or crontab line",
		Args:        cobra.ExactArgs(1),
		Annotations: own,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.scheduleRemove(cmd.Context(), args[0])
		},
	}
	c.AddCommand(install, list, remove)
	return c
}

// unitDir is where systemd looks for the user's units:
// $XDG_CONFIG_HOME/systemd/user, by default ~/.config/systemd/user.
func unitDir() (string, error) {
	env := configEnv()
	if x := env.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "systemd", "user"), nil
	}
	home := env.Getenv("HOME")
	if home == "" {
		return "", errors.New("neither XDG_CONFIG_HOME nor HOME is set, so there is no directory for systemd units")
	}
	return filepath.Join(home, ".config", "systemd", "user"), nil
}

// systemdUserRunning reports whether systemd manages this user's session,
// so that 'systemctl --user' reaches a manager that runs timers.
func systemdUserRunning() bool {
	if _, err := exec.LookPath("systemctl"); err != nil {
		return false
	}
	if fi, err := os.Stat("/run/systemd/system"); err != nil || !fi.IsDir() {
		return false // systemd is not PID 1
	}
	rt := os.Getenv("XDG_RUNTIME_DIR")
	if rt == "" {
		rt = fmt.Sprintf("/run/user/%d", os.Getuid())
	}
	_, err := os.Stat(filepath.Join(rt, "systemd", "private"))
	return err == nil
}

func haveCrontab() bool {
	_, err := exec.LookPath("crontab")
	return err == nil
}

// scheduledCommand is the command line a timer or cron runs: absolute
// paths, since neither starts in the directory of the shell that installed
// it.
func (g *globals) scheduledCommand(cfg *config.Config, job string) ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the path of the snap binary for the schedule: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return []string{exe, "--config", cfg.Path, "run", job}, nil
}

// scheduleEnv is the environment a scheduled run needs to use the same
// directories as snap does here: the state file 'snap status' reads, and
// the index cache of remote repositories (without it a run would rebuild
// the index from the packs). Variables are passed only when set here,
// since cron and systemd do not share the shell's environment.
func scheduleEnv() []string {
	var env []string
	for _, k := range []string{"XDG_STATE_HOME", "XDG_CACHE_HOME"} {
		if v := os.Getenv(k); filepath.IsAbs(v) {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (g *globals) scheduleInstall(ctx context.Context, o *scheduleOptions, name string) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	job, err := cfg.Job(name)
	if err != nil {
		return err
	}
	sched := job.Every
	if o.every != "" {
		if sched, err = config.ParseSchedule(o.every); err != nil {
			return fmt.Errorf("--every: %w", err)
		}
	}
	if sched == nil {
		return fmt.Errorf("job %s has no every key, so give --every hourly, daily, weekly, monthly or a cron expression (or add every = \"daily\" to [jobs.%s] in %s, which 'snap status' also uses)", name, name, cfg.Path)
	}
	argv, err := g.scheduledCommand(cfg, name)
	if err != nil {
		return err
	}
	via := o.using
	switch via {
	case viaAuto:
		switch {
		case systemdUserRunning():
			via = viaSystemd
		case haveCrontab():
			via = viaCron
		default:
			return errors.New("systemd does not run this user's session and there is no crontab command: install cron (apt-get install cron), or give --using systemd to write the units anyway")
		}
	case viaSystemd:
	case viaCron:
		if !haveCrontab() {
			return errors.New("--using cron: there is no crontab command; install cron (apt-get install cron)")
		}
	default:
		return fmt.Errorf("--using %q: want auto, systemd or cron", o.using)
	}
	if via == viaSystemd {
		err = g.installSystemd(ctx, name, sched, argv)
		if err == nil && haveCrontab() {
			// One schedule per job: an earlier crontab line would run it twice.
			if removed, cerr := removeCronLines(ctx, name); cerr == nil && removed > 0 && !g.quiet {
				fmt.Fprintf(g.stderr, "snap: removed the earlier crontab line of job %s\n", name)
			}
		}
		return err
	}
	if err := g.installCron(ctx, name, sched, argv); err != nil {
		return err
	}
	if dir, err := unitDir(); err == nil {
		if _, err := os.Stat(filepath.Join(dir, unitName(name, "timer"))); err == nil {
			if err := g.removeSystemd(ctx, name, dir); err == nil && !g.quiet {
				fmt.Fprintf(g.stderr, "snap: removed the earlier systemd timer of job %s\n", name)
			}
		}
	}
	return nil
}

func unitName(job, kind string) string { return "snap-" + job + "." + kind }

// unitMarker is the first line of each unit snap writes.
func unitMarker(job string) string {
	return fmt.Sprintf("# snap job %s: written by 'snap schedule install %s'; 'snap schedule remove %s' removes it", job, job, job)
}

// systemdQuote quotes one word of ExecStart= or Environment=: % and $ are
// doubled (they start specifiers and variables), and words with blanks,
// quotes or backslashes go in double quotes.
func systemdQuote(word string) string {
	w := strings.NewReplacer("%", "%%", "$", "$$").Replace(word)
	if w != "" && !strings.ContainsAny(w, " \t\n\"'\\;") {
		return w
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`).Replace(w) + `"`
}

// systemdUnits returns the service and the timer of a job.
func systemdUnits(job string, sched *config.Schedule, argv, env []string) (service, timer string) {
	var exec []string
	for _, a := range argv {
		exec = append(exec, systemdQuote(a))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n[Unit]\nDescription=snap backup job %s\n\n[Service]\nType=oneshot\nExecStart=%s\n", unitMarker(job), job, strings.Join(exec, " "))
	for _, kv := range env {
		fmt.Fprintf(&b, "Environment=%s\n", systemdQuote(kv))
	}
	b.WriteString("# A backup should not slow down interactive work.\nNice=10\nIOSchedulingClass=best-effort\nIOSchedulingPriority=7\n")
	service = b.String()

	b.Reset()
	fmt.Fprintf(&b, "%s\n[Unit]\nDescription=Schedule of snap backup job %s (%s)\n\n[Timer]\n", unitMarker(job), job, sched)
	for _, cal := range sched.OnCalendar() {
		fmt.Fprintf(&b, "OnCalendar=%s\n", cal)
	}
	b.WriteString("# A run missed while the machine was off happens at the next start.\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n")
	return service, b.String()
}

// writeOwnFile writes path atomically, refusing to replace a file that
// snap did not write (its first line is not marker).
func writeOwnFile(path, marker, content string) error {
	if old, err := os.ReadFile(path); err == nil {
		if first, _, _ := strings.Cut(string(old), "\n"); first != marker {
			return fmt.Errorf("%s exists and was not written by snap; move it away first", path)
		}
	}
	tmp := path + ".snap-new"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// systemctl runs systemctl --user with args.
func systemctl(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "systemctl", append([]string{"--user"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl --user %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (g *globals) installSystemd(ctx context.Context, job string, sched *config.Schedule, argv []string) error {
	dir, err := unitDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	service, timer := systemdUnits(job, sched, argv, scheduleEnv())
	servicePath, timerPath := filepath.Join(dir, unitName(job, "service")), filepath.Join(dir, unitName(job, "timer"))
	if err := writeOwnFile(servicePath, unitMarker(job), service); err != nil {
		return err
	}
	if err := writeOwnFile(timerPath, unitMarker(job), timer); err != nil {
		return err
	}
	cal := strings.Join(sched.OnCalendar(), "; ")
	if !systemdUserRunning() {
		if !g.quiet {
			fmt.Fprintf(g.stdout, "wrote %s and %s (OnCalendar=%s)\nsystemd does not run this session, so the timer is not enabled yet; where it does, run:\n  systemctl --user daemon-reload && systemctl --user enable --now %s\n",
				servicePath, timerPath, cal, unitName(job, "timer"))
		}
		return nil
	}
	if err := systemctl(ctx, "daemon-reload"); err != nil {
		return fmt.Errorf("wrote %s, but %w", timerPath, err)
	}
	if err := systemctl(ctx, "enable", "--now", unitName(job, "timer")); err != nil {
		return fmt.Errorf("wrote %s, but %w", timerPath, err)
	}
	if !g.quiet {
		fmt.Fprintf(g.stdout, "job %s runs %s (OnCalendar=%s) from the systemd user timer %s\n", job, sched, cal, timerPath)
	}
	return nil
}

// removeSystemd disables and deletes a job's units.
func (g *globals) removeSystemd(ctx context.Context, job, dir string) error {
	timerPath := filepath.Join(dir, unitName(job, "timer"))
	servicePath := filepath.Join(dir, unitName(job, "service"))
	for _, p := range []string{timerPath, servicePath} {
		if data, err := os.ReadFile(p); err == nil {
			if first, _, _ := strings.Cut(string(data), "\n"); first != unitMarker(job) {
				return fmt.Errorf("%s was not written by snap; remove it yourself", p)
			}
		}
	}
	running := systemdUserRunning()
	if running {
		if err := systemctl(ctx, "disable", "--now", unitName(job, "timer")); err != nil {
			return err
		}
	}
	// Written by 'systemctl enable'; gone with disable, but not without systemd.
	os.Remove(filepath.Join(dir, "timers.target.wants", unitName(job, "timer")))
	for _, p := range []string{timerPath, servicePath} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	if running {
		return systemctl(ctx, "daemon-reload")
	}
	return nil
}

// shellQuote quotes a word for sh.
func shellQuote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:@,+") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// cronLine is the crontab line of a job. -q because cron mails whatever a
// job prints: it should print only when something is wrong.
func cronLine(job string, sched *config.Schedule, argv, env []string) string {
	var words []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		words = append(words, k+"="+shellQuote(v))
	}
	for _, a := range argv {
		words = append(words, shellQuote(a))
	}
	words = append(words, "-q")
	// cron turns an unescaped % into a newline.
	cmd := strings.ReplaceAll(strings.Join(words, " "), "%", `\%`)
	return sched.Cron() + " " + cmd + cronMarker + job
}

// readCrontab returns the user's crontab; no crontab reads as empty.
func readCrontab(ctx context.Context) (string, error) {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "crontab", "-l")
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stderr.String(), "no crontab for") {
			return "", nil
		}
		return "", fmt.Errorf("crontab -l: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// writeCrontab installs text as the user's crontab; an empty one is
// removed, so that a user who had none has none again.
func writeCrontab(ctx context.Context, text string) error {
	if strings.TrimSpace(text) == "" {
		out, err := exec.CommandContext(ctx, "crontab", "-r").CombinedOutput()
		if err != nil && !strings.Contains(string(out), "no crontab for") {
			return fmt.Errorf("crontab -r: %w: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if !strings.HasSuffix(text, "\n") {
		text += "\n" // cron ignores a last line without a newline
	}
	cmd := exec.CommandContext(ctx, "crontab", "-")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("crontab refused the new table (%w): %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// cronJob returns the job a crontab line was written for, or "".
func cronJob(line string) string {
	i := strings.LastIndex(line, cronMarker)
	if i < 0 || strings.HasPrefix(strings.TrimSpace(line), "#") {
		return ""
	}
	name := strings.TrimSpace(line[i+len(cronMarker):])
	if config.CheckJobName(name) != nil {
		return ""
	}
	return name
}

// withoutJob removes the lines of job from a crontab, keeping every other
// byte as it was.
func withoutJob(text, job string) (string, int) {
	lines := strings.SplitAfter(text, "\n")
	var b strings.Builder
	removed := 0
	for _, l := range lines {
		if cronJob(strings.TrimRight(l, "\n")) == job {
			removed++
			continue
		}
		b.WriteString(l)
	}
	return b.String(), removed
}

func removeCronLines(ctx context.Context, job string) (int, error) {
	text, err := readCrontab(ctx)
	if err != nil {
		return 0, err
	}
	rest, removed := withoutJob(text, job)
	if removed == 0 {
		return 0, nil
	}
	return removed, writeCrontab(ctx, rest)
}

func (g *globals) installCron(ctx context.Context, job string, sched *config.Schedule, argv []string) error {
	text, err := readCrontab(ctx)
	if err != nil {
		return err
	}
	rest, _ := withoutJob(text, job)
	if rest != "" && !strings.HasSuffix(rest, "\n") {
		rest += "\n"
	}
	line := cronLine(job, sched, argv, scheduleEnv())
	if err := writeCrontab(ctx, rest+line+"\n"); err != nil {
		return err
	}
	if !g.quiet {
		fmt.Fprintf(g.stdout, "job %s runs %s from the crontab:\n  %s\n", job, sched, line)
	}
	return nil
}

func (g *globals) scheduleRemove(ctx context.Context, job string) error {
	if err := config.CheckJobName(job); err != nil {
		return err
	}
	found := false
	dir, err := unitDir()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, unitName(job, "timer"))); err == nil {
		if err := g.removeSystemd(ctx, job, dir); err != nil {
			return err
		}
		found = true
		if !g.quiet {
			fmt.Fprintf(g.stdout, "removed the systemd timer of job %s\n", job)
		}
	}
	if haveCrontab() {
		n, err := removeCronLines(ctx, job)
		if err != nil {
			return err
		}
		if n > 0 {
			found = true
			if !g.quiet {
				fmt.Fprintf(g.stdout, "removed the crontab line of job %s\n", job)
			}
		}
	}
	if !found {
		return fmt.Errorf("job %s is not scheduled: there is no %s in %s and no crontab line ending in '%s%s'", job, unitName(job, "timer"), dir, strings.TrimSpace(cronMarker), job)
	}
	return nil
}

// scheduled is one entry of schedule list.
type scheduled struct {
	Job     string `json:"job"`
	Via     string `json:"via"`
	When    string `json:"when"`
	Command string `json:"command"`
	Enabled *bool  `json:"enabled,omitempty"` // systemd: is the timer enabled
	File    string `json:"file,omitempty"`
}

func (g *globals) scheduleList(ctx context.Context) error {
	var list []scheduled
	dir, err := unitDir()
	if err != nil {
		return err
	}
	timers, _ := filepath.Glob(filepath.Join(dir, "snap-*.timer"))
	sort.Strings(timers)
	for _, t := range timers {
		job := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(t), "snap-"), ".timer")
		data, err := os.ReadFile(t)
		if err != nil || !strings.HasPrefix(string(data), unitMarker(job)+"\n") {
			continue
		}
		e := scheduled{Job: job, Via: viaSystemd, File: t}
		var cals []string
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "OnCalendar="); ok {
				cals = append(cals, v)
			}
		}
		e.When = strings.Join(cals, "; ")
		if svc, err := os.ReadFile(filepath.Join(dir, unitName(job, "service"))); err == nil {
			for _, l := range strings.Split(string(svc), "\n") {
				if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
					e.Command = v
				}
			}
		}
		_, err = os.Lstat(filepath.Join(dir, "timers.target.wants", filepath.Base(t)))
		enabled := err == nil
		e.Enabled = &enabled
		list = append(list, e)
	}
	if haveCrontab() {
		text, err := readCrontab(ctx)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(text, "\n") {
			job := cronJob(l)
			if job == "" {
				continue
			}
			when, cmd := splitCronLine(l[:strings.LastIndex(l, cronMarker)])
			list = append(list, scheduled{Job: job, Via: viaCron, When: when, Command: cmd})
		}
	}
	if g.json {
		if list == nil {
			list = []scheduled{}
		}
		return printJSON(g.stdout, list)
	}
	if len(list) == 0 {
		if !g.quiet {
			fmt.Fprintln(g.stdout, "no job is scheduled; 'snap schedule install JOB' schedules one")
		}
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Job\tVia\tWhen\tCommand")
	for _, e := range list {
		via := e.Via
		if e.Enabled != nil && !*e.Enabled {
			via += " (not enabled)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Job, via, e.When, e.Command)
	}
	return tw.Flush()
}

// splitCronLine splits a crontab entry into its time fields (five, or one
// @name) and its command.
func splitCronLine(line string) (when, command string) {
	rest := strings.TrimLeft(line, " \t")
	n := 5
	if strings.HasPrefix(rest, "@") {
		n = 1
	}
	var fields []string
	for range n {
		end := strings.IndexAny(rest, " \t")
		if end < 0 {
			end = len(rest)
		}
		fields = append(fields, rest[:end])
		rest = strings.TrimLeft(rest[end:], " \t")
	}
	return strings.Join(fields, " "), strings.TrimSpace(rest)
}
