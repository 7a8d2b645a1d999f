package main

// snap status: how the jobs of the config file are doing, from their state
// files, with a warning for each job that is overdue or failing.

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"snap/internal/config"
)

func statusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status [JOB...]",
		Short: "Show when each job last succeeded; warn about overdue and failing jobs",
		Long: `Status prints, for each job of the config file (or those named), when it last
made a snapshot, the last error, and when it last pruned and checked, from the
job's state file ($XDG_STATE_HOME/snap/JOB.json, by default
~/.local/state/snap/JOB.json). It warns when a job has not succeeded for more
than twice its interval (the job's every key), when its last run failed, and
when its last check found errors. -q prints only the warnings, so
'snap status -q' from cron mails only when something needs attention.`,
		Annotations: map[string]string{ownJobArg: "yes"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.status(args, time.Now())
		},
	}
}

// jobStatus is one job in status --json.
type jobStatus struct {
	Job        string        `json:"job"`
	Repository string        `json:"repository"`
	Every      string        `json:"every,omitempty"`
	IntervalS  float64       `json:"interval_s,omitempty"`
	State      *config.State `json:"state"`
	Overdue    bool          `json:"overdue"`
	Warnings   []string      `json:"warnings"`
}

func (g *globals) status(names []string, now time.Time) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	if len(names) == 0 {
		names = cfg.Order
	}
	var jobs []*config.Job
	for _, n := range names {
		j, err := cfg.Job(n)
		if err != nil {
			return err
		}
		jobs = append(jobs, j)
	}
	dir, err := config.StateDir(configEnv())
	if err != nil {
		return err
	}
	var out []jobStatus
	for _, j := range jobs {
		out = append(out, jobStatusOf(j, dir, now))
	}
	if g.json {
		return printJSON(g.stdout, map[string]any{"jobs": out})
	}
	w := g.stdout
	for _, s := range out {
		if !g.quiet {
			printJobStatus(g, s, now)
		}
		for _, warn := range s.Warnings {
			fmt.Fprintf(w, "warning: %s: %s\n", s.Job, warn)
		}
	}
	return nil
}

func jobStatusOf(j *config.Job, dir string, now time.Time) jobStatus {
	s := jobStatus{Job: j.Name, Repository: j.Repository, Warnings: []string{}}
	st, err := config.LoadState(dir, j.Name)
	if err != nil {
		s.Warnings = append(s.Warnings, err.Error())
		st = &config.State{Job: j.Name}
	}
	s.State = st
	var interval time.Duration
	if j.Every != nil {
		interval = j.Every.Interval()
		s.Every, s.IntervalS = j.Every.String(), interval.Seconds()
	}
	switch {
	case st.LastSuccess.IsZero() && st.LastRun == nil:
		s.Warnings = append(s.Warnings, fmt.Sprintf("has never run; run it with 'snap run %s', schedule it with 'snap schedule install %s'", j.Name, j.Name))
	case st.LastSuccess.IsZero():
		s.Warnings = append(s.Warnings, "has never made a snapshot")
	case interval > 0 && now.Sub(st.LastSuccess) > 2*interval:
		s.Overdue = true
		s.Warnings = append(s.Warnings, fmt.Sprintf("overdue: last successful backup %s, more than twice its interval (every %s: %s); is it scheduled ('snap schedule list') and does it succeed?",
			ago(now, st.LastSuccess), j.Every, formatAgo(interval)))
	}
	if r := st.LastRun; r != nil && r.ExitCode != exitOK {
		how := map[string]string{"warning": "had warnings", "locked": "found the repository locked", "interrupted": "was interrupted"}[r.Status]
		if how == "" {
			how = "failed"
		}
		msg := fmt.Sprintf("the last run, %s, %s (exit %d)", ago(now, r.Start), how, r.ExitCode)
		if e := st.LastError; e != nil && !e.Time.Before(r.Start) {
			msg += ": " + e.Message
		}
		s.Warnings = append(s.Warnings, msg)
	}
	if st.LastCheckErrors > 0 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("the last check, %s, found %s in part %d/%d; run 'snap check --job %s --read-data'",
			ago(now, st.LastCheck), plural(st.LastCheckErrors, "error"), st.LastCheckPart, st.CheckParts, j.Name))
	}
	return s
}

func printJobStatus(g *globals, s jobStatus, now time.Time) {
	w, st := g.stdout, s.State
	line := s.Job + ": "
	if st.LastSuccess.IsZero() {
		line += "no successful backup yet"
	} else {
		line += fmt.Sprintf("last successful backup %s (%s)", ago(now, st.LastSuccess), st.LastSuccess.Local().Format("2006-01-02 15:04"))
	}
	if st.LastRun != nil {
		line += fmt.Sprintf("; last run %s, %s, took %.1fs, added %s", ago(now, st.LastRun.Start), st.LastRun.Status, st.DurationS, formatBytes(st.BytesAdded))
	}
	if s.Every != "" {
		line += "; runs " + s.Every
	}
	fmt.Fprintln(w, line)
	if e := st.LastError; e != nil {
		fmt.Fprintf(w, "  last error %s: %s\n", ago(now, e.Time), e.Message)
	}
	var parts []string
	if !st.LastPrune.IsZero() {
		parts = append(parts, "last prune "+ago(now, st.LastPrune))
	}
	if !st.LastCheck.IsZero() {
		parts = append(parts, fmt.Sprintf("last check %s (part %d/%d, %s); next part %d/%d",
			ago(now, st.LastCheck), st.LastCheckPart, st.CheckParts, plural(st.LastCheckErrors, "error"), st.NextCheckPart, st.CheckParts))
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "  %s\n", strings.Join(parts, "; "))
	}
}

// ago says how long before now t was: "40 s ago", "12 min ago", "26 h
// ago" (hours up to two days), "9 d ago".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "in the future (" + t.Local().Format("2006-01-02 15:04") + ")"
	}
	return formatAgo(d) + " ago"
}

func formatAgo(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d d", int(d.Hours()/24))
}
