package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"snap/internal/backend"
	"snap/repo"
	"snap/snapshot"
)

// forgetOptions are the flags of snap forget.
type forgetOptions struct {
	filter                                       snapshot.Filter
	last, hourly, daily, weekly, monthly, yearly keepCount
	within, withinHourly, withinDaily            keepDuration
	withinWeekly, withinMonthly, withinYearly    keepDuration
	keepTags                                     []string
	groupBy                                      string
	dryRun, prune                                bool
	pruneOpts                                    pruneOptions
}

func forgetCmd(g *globals) *cobra.Command {
	c, _ := newForgetCmd(g)
	return c
}

// newForgetCmd returns the forget command and the options its flags set;
// run sets a job's retention through the same flags.
func newForgetCmd(g *globals) (*cobra.Command, *forgetOptions) {
	o := &forgetOptions{groupBy: "host,paths"}
	c := &cobra.Command{
		Use:   "forget [flags] [SNAPSHOT...]",
		Short: "Remove snapshots by a retention policy, or by name",
		Long: `Remove snapshot documents, either those named (an ID prefix, latest or
latest~N) or all that a retention policy does not keep. The data they
referenced stays in the repository until 'snap prune' (or --prune) removes
what no snapshot needs any more.

Snapshots are grouped by --group-by (default host,paths) and the policy is
applied to each group on its own; --host, --tag and --path choose which
snapshots are looked at. A snapshot is kept when any rule keeps it:

  --keep-last N          the N newest snapshots
  --keep-hourly N        the newest snapshot of each of the N newest hours that
                         have snapshots; likewise --keep-daily, --keep-weekly
                         (ISO weeks, Monday to Sunday), --keep-monthly and
                         --keep-yearly. N may be 'unlimited'. Buckets follow
                         the local time zone (set TZ to change it). If a rule
                         still has snapshots to keep when it reaches the
                         oldest snapshot, it keeps that one too (as restic).
  --keep-within D        every snapshot newer than D before the newest snapshot
                         of the group; D is years, months, days and hours,
                         e.g. 2y5m7d3h, 30d, 36h (m is months, there are no
                         weeks: write 7d)
  --keep-within-daily D  the newest snapshot of each day within D; likewise
                         -hourly, -weekly, -monthly and -yearly
  --keep-tag T           snapshots with tag T (repeatable; a,b needs both
                         tags; '' keeps untagged snapshots)

A policy never removes the last snapshot of a group: if it would remove all,
the newest is kept. Snapshots dated after now do not move the windows of the
--keep-within rules (and those rules keep them). Use --dry-run first to see
what would go.`,
		Example: `  snap forget -r /mnt/backup --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --dry-run
  snap forget -r /mnt/backup --keep-within 30d --keep-monthly unlimited
  snap forget -r /mnt/backup 1a2b3c4d latest~3`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return g.forget(cmd, o, args) },
	}
	f := c.Flags()
	f.VarP(&o.last, "keep-last", "l", "keep the `N` newest snapshots (or 'unlimited')")
	f.VarP(&o.hourly, "keep-hourly", "H", "keep the newest snapshot of each of the last `N` hours that have one")
	f.VarP(&o.daily, "keep-daily", "d", "keep the newest snapshot of each of the last `N` days that have one")
	f.VarP(&o.weekly, "keep-weekly", "w", "keep the newest snapshot of each of the last `N` ISO weeks that have one")
	f.VarP(&o.monthly, "keep-monthly", "m", "keep the newest snapshot of each of the last `N` months that have one")
	f.VarP(&o.yearly, "keep-yearly", "y", "keep the newest snapshot of each of the last `N` years that have one")
	f.Var(&o.within, "keep-within", "keep snapshots newer than `DURATION` (e.g. 2y5m7d3h) before the group's newest")
	f.Var(&o.withinHourly, "keep-within-hourly", "keep the newest snapshot of each hour within `DURATION`")
	f.Var(&o.withinDaily, "keep-within-daily", "keep the newest snapshot of each day within `DURATION`")
	f.Var(&o.withinWeekly, "keep-within-weekly", "keep the newest snapshot of each ISO week within `DURATION`")
	f.Var(&o.withinMonthly, "keep-within-monthly", "keep the newest snapshot of each month within `DURATION`")
	f.Var(&o.withinYearly, "keep-within-yearly", "keep the newest snapshot of each year within `DURATION`")
	f.StringArrayVar(&o.keepTags, "keep-tag", nil, "keep snapshots with all of these `TAGS` (a,b; repeatable; '' for untagged)")
	f.StringVarP(&o.groupBy, "group-by", "g", o.groupBy, "apply the policy per group of `FIELDS`: a comma-separated subset of host, paths, tags ('' for one group)")
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "only print what would be removed")
	f.BoolVar(&o.prune, "prune", false, "run prune afterwards to free the space of the removed snapshots")
	addFilterFlags(c, &o.filter)
	addPruneFlags(c, &o.pruneOpts)
	return c, o
}

// keepCount is a --keep-N flag: a number of snapshots or "unlimited".
type keepCount int

func (k *keepCount) String() string {
	if *k == snapshot.Unlimited {
		return "unlimited"
	}
	return strconv.Itoa(int(*k))
}

// Set accepts "unlimited" and, as restic does, -1 for it.
func (k *keepCount) Set(s string) error {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "unlimited") {
		*k = snapshot.Unlimited
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < snapshot.Unlimited {
		return errors.New("want a number of snapshots (0 or more) or 'unlimited'")
	}
	*k = keepCount(n)
	return nil
}

func (k *keepCount) Type() string { return "N" }

// keepDuration is a --keep-within flag.
type keepDuration struct{ d snapshot.Duration }

// String is empty for the zero value so that help shows no default.
func (k *keepDuration) String() string {
	if k.d.Zero() {
		return ""
	}
	return k.d.String()
}

func (k *keepDuration) Set(s string) error {
	d, err := snapshot.ParseDuration(s)
	if err != nil {
		return err
	}
	k.d = d
	return nil
}

func (k *keepDuration) Type() string { return "DURATION" }

// policy turns the flags into a snapshot.Policy; now keeps snapshots dated
// in the future from moving the --keep-within windows.
func (o *forgetOptions) policy(now time.Time) snapshot.Policy {
	p := snapshot.Policy{
		Last: int(o.last), Hourly: int(o.hourly), Daily: int(o.daily),
		Weekly: int(o.weekly), Monthly: int(o.monthly), Yearly: int(o.yearly),
		Within: o.within.d, WithinHourly: o.withinHourly.d, WithinDaily: o.withinDaily.d,
		WithinWeekly: o.withinWeekly.d, WithinMonthly: o.withinMonthly.d, WithinYearly: o.withinYearly.d,
		Now: now,
	}
	for _, t := range o.keepTags {
		p.Tags = append(p.Tags, snapshot.TagSet(strings.Split(t, ",")))
	}
	return p
}

// forgetGroup is what forget does to one group, oldest first in both lists.
type forgetGroup struct {
	key    snapshot.GroupKey
	keep   []snapshot.Decision
	remove []*snapshot.Snapshot
}

func (g *globals) forget(cmd *cobra.Command, o *forgetOptions, args []string) error {
	ctx := cmd.Context()
	// Check the arguments before touching the repository. Any policy flag,
	// even one set to 0, counts as a policy when refusing IDs with one.
	var policyFlags []string
	for _, name := range []string{
		"keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly",
		"keep-within", "keep-within-hourly", "keep-within-daily", "keep-within-weekly",
		"keep-within-monthly", "keep-within-yearly", "keep-tag",
	} {
		if cmd.Flags().Changed(name) {
			policyFlags = append(policyFlags, "--"+name)
		}
	}
	p := o.policy(time.Now())
	switch {
	case len(args) > 0 && len(policyFlags) > 0:
		return fmt.Errorf("forget: give either snapshots to remove or a policy (%s), not both; run two forgets if you need both", strings.Join(policyFlags, ", "))
	case len(args) == 0 && p.Empty():
		return errEmptyPolicy(len(policyFlags) > 0)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("forget: %w", err)
	}
	if _, _, err := snapshot.GroupBy(nil, o.groupBy); err != nil {
		return fmt.Errorf("--group-by: %w", err)
	}

	r, err := g.open(ctx, "")
	if err != nil {
		return err
	}
	defer r.Close()
	// A dry run changes nothing, so it needs no lock and never waits for a
	// running create; a real run decides and removes under the lock, so no
	// other writer can change the snapshot list in between.
	var unlock func() error
	if !o.dryRun {
		if unlock, err = g.lock(ctx, r, "forget"); err != nil {
			return err
		}
		defer func() {
			if unlock != nil {
				unlock()
			}
		}()
	}

	var groups []forgetGroup
	if len(args) > 0 {
		groups, err = forgetByName(ctx, r, o, args)
	} else {
		groups, err = forgetByPolicy(ctx, r, o, p)
	}
	if err != nil {
		return err
	}
	total := 0
	for _, gr := range groups {
		total += len(gr.remove)
	}

	var removeErr error
	removed := 0
	if !o.dryRun {
		removed, removeErr = forgetRemove(ctx, r, groups)
	}
	if err := g.printForget(groups, o, total, removed, removeErr != nil); err != nil {
		return err
	}
	if removeErr != nil {
		return fmt.Errorf("forget: removed %d of %d snapshots, then %w; the others are still there, run forget again", removed, total, removeErr)
	}

	if !o.prune {
		return nil
	}
	po := o.pruneOpts
	po.dryRun = o.dryRun
	if o.dryRun {
		// Prune as if the snapshots were gone, and name the files only they hold.
		var gone []*snapshot.Snapshot
		for _, gr := range groups {
			gone = append(gone, gr.remove...)
		}
		if len(gone) == 0 {
			return nil
		}
		return g.runPrune(ctx, r, &po, gone)
	}
	if removed == 0 {
		if !g.quiet && !g.json {
			fmt.Fprintln(g.stderr, "snap: no snapshots were removed, so there is nothing for --prune to do")
		}
		return nil
	}
	// Still under forget's lock: no backup can start between the two.
	if err := g.runPrune(ctx, r, &po, nil); err != nil {
		return fmt.Errorf("forget: %d snapshots removed, but prune failed: %w", removed, err)
	}
	return nil
}

// errEmptyPolicy explains how to give forget something to do.
func errEmptyPolicy(flagsGiven bool) error {
	why := "no policy given"
	if flagsGiven {
		why = "the policy keeps everything (every --keep-* value is 0)"
	}
	return fmt.Errorf(`forget: %s, so nothing would be removed; give snapshots to remove
(an ID prefix, latest, latest~N), or a policy such as
  --keep-last N, --keep-hourly N, --keep-daily N, --keep-weekly N,
  --keep-monthly N, --keep-yearly N (N may be 'unlimited'),
  --keep-within 30d, --keep-within-daily 7d (also -hourly, -weekly, -monthly, -yearly),
  --keep-tag TAG
and try it with --dry-run first; 'snap forget --help' explains each`, why)
}

// forgetByPolicy applies p to every group of the snapshots passing the filter.
func forgetByPolicy(ctx context.Context, r *repo.Repository, o *forgetOptions, p snapshot.Policy) ([]forgetGroup, error) {
	all, err := snapshot.List(ctx, r)
	if err != nil {
		return nil, err
	}
	var list []*snapshot.Snapshot
	for _, s := range all {
		if o.filter.Match(s) {
			list = append(list, s)
		}
	}
	keys, groups, err := snapshot.GroupBy(list, o.groupBy)
	if err != nil {
		return nil, fmt.Errorf("--group-by: %w", err)
	}
	out := make([]forgetGroup, 0, len(keys))
	for i, key := range keys {
		ds := snapshot.ApplyPolicy(groups[i], p, time.Local)
		slices.Reverse(ds) // print oldest first, as 'snap snapshots' does
		fg := forgetGroup{key: key}
		for _, d := range ds {
			if d.Keep {
				fg.keep = append(fg.keep, d)
			} else {
				fg.remove = append(fg.remove, d.Snapshot)
			}
		}
		out = append(out, fg)
	}
	return out, nil
}

// forgetByName resolves the names given on the command line; each is
// removed, grouped only for the report.
func forgetByName(ctx context.Context, r *repo.Repository, o *forgetOptions, names []string) ([]forgetGroup, error) {
	var list []*snapshot.Snapshot
	seen := map[string]bool{}
	for _, name := range names {
		s, err := snapshot.Find(ctx, r, name, o.filter)
		if err != nil {
			return nil, fmt.Errorf("forget: %w; nothing was removed", err)
		}
		if id := s.ID.String(); !seen[id] {
			seen[id] = true
			list = append(list, s)
		}
	}
	slices.SortStableFunc(list, func(a, b *snapshot.Snapshot) int { return a.Time.Compare(b.Time) })
	keys, groups, err := snapshot.GroupBy(list, o.groupBy)
	if err != nil {
		return nil, fmt.Errorf("--group-by: %w", err)
	}
	out := make([]forgetGroup, 0, len(keys))
	for i, key := range keys {
		out = append(out, forgetGroup{key: key, remove: groups[i]})
	}
	return out, nil
}

// forgetRemove deletes the documents of every group's remove list. On a
// failure it stops, trims each list to what was removed (so the report
// tells the truth) and returns how many were.
func forgetRemove(ctx context.Context, r *repo.Repository, groups []forgetGroup) (int, error) {
	removed := 0
	for gi := range groups {
		for si, s := range groups[gi].remove {
			err := ctx.Err()
			if err == nil {
				err = r.RemoveSnapshotFile(ctx, s.ID)
				if errors.Is(err, backend.ErrNotExist) {
					err = nil // gone already: that is what we wanted
				}
			}
			if err != nil {
				groups[gi].remove = groups[gi].remove[:si]
				for rest := gi + 1; rest < len(groups); rest++ {
					groups[rest].remove = nil
				}
				return removed, fmt.Errorf("removing snapshot %s failed: %w", s.ID.Short(), err)
			}
			removed++
		}
	}
	return removed, nil
}

// forgetSnapJSON is one snapshot in forget's --json output.
type forgetSnapJSON struct {
	ID      string    `json:"id"`
	ShortID string    `json:"short_id"`
	Time    time.Time `json:"time"`
	Host    string    `json:"host"`
	Paths   []string  `json:"paths"`
	Tags    []string  `json:"tags,omitempty"`
	Reasons []string  `json:"reasons,omitempty"`
}

// forgetGroupJSON is one group in forget's --json output; group holds only
// the fields the snapshots were grouped by.
type forgetGroupJSON struct {
	Group  map[string]any   `json:"group"`
	Keep   []forgetSnapJSON `json:"keep"`
	Remove []forgetSnapJSON `json:"remove"`
}

func newForgetSnapJSON(s *snapshot.Snapshot, reasons []string) forgetSnapJSON {
	return forgetSnapJSON{ID: s.ID.String(), ShortID: s.ID.Short(), Time: s.Time, Host: s.Hostname,
		Paths: s.Paths, Tags: s.Tags, Reasons: reasons}
}

// forgetGroupWords lists the valid words of a --group-by value, in order, once each.
func forgetGroupWords(by string) []string {
	var out []string
	for _, w := range strings.Split(by, ",") {
		if w = strings.TrimSpace(w); w != "" && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// printForget prints the report: per group the kept snapshots with their
// reasons and the removed ones. partial says removal stopped early.
func (g *globals) printForget(groups []forgetGroup, o *forgetOptions, total, removed int, partial bool) error {
	words := forgetGroupWords(o.groupBy)
	if g.json {
		out := make([]forgetGroupJSON, 0, len(groups))
		for _, gr := range groups {
			j := forgetGroupJSON{Group: map[string]any{}, Keep: []forgetSnapJSON{}, Remove: []forgetSnapJSON{}}
			for _, w := range words {
				switch w {
				case "host":
					j.Group["host"] = gr.key.Host
				case "paths":
					j.Group["paths"] = forgetNonNil(gr.key.Paths)
				case "tags":
					j.Group["tags"] = forgetNonNil(gr.key.Tags)
				}
			}
			for _, d := range gr.keep {
				j.Keep = append(j.Keep, newForgetSnapJSON(d.Snapshot, d.Reasons))
			}
			for _, s := range gr.remove {
				j.Remove = append(j.Remove, newForgetSnapJSON(s, nil))
			}
			out = append(out, j)
		}
		return printJSON(g.stdout, out)
	}
	if g.quiet {
		return nil
	}
	w := g.stdout
	if len(groups) == 0 {
		_, err := fmt.Fprintln(w, "no snapshots match; nothing to do")
		return err
	}
	verb := "removed"
	if o.dryRun {
		verb = "would remove"
	}
	for _, gr := range groups {
		fmt.Fprintf(w, "%s:\n", forgetGroupHeader(gr.key, words))
		if len(gr.keep) > 0 {
			fmt.Fprintf(w, "keep %s:\n", forgetCount(len(gr.keep)))
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTime\tHost\tTags\tReasons\tPaths")
			for _, d := range gr.keep {
				s := d.Snapshot
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID.Short(), s.Time.Local().Format(time.DateTime),
					s.Hostname, strings.Join(s.Tags, ","), strings.Join(d.Reasons, ", "), strings.Join(s.Paths, ","))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if len(gr.remove) > 0 {
			fmt.Fprintf(w, "%s %s:\n", verb, forgetCount(len(gr.remove)))
			if err := forgetTable(w, gr.remove); err != nil {
				return err
			}
		}
		fmt.Fprintln(w)
	}
	var err error
	switch {
	case o.dryRun:
		_, err = fmt.Fprintf(w, "would remove %s in total (dry run: nothing was changed)\n", forgetCount(total))
	case partial:
		_, err = fmt.Fprintf(w, "removed %d of %d snapshots before an error\n", removed, total)
	default:
		_, err = fmt.Fprintf(w, "removed %s in total\n", forgetCount(removed))
	}
	return err
}

// forgetTable prints snapshots the way 'snap snapshots' does, without sizes.
func forgetTable(w io.Writer, list []*snapshot.Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTime\tHost\tTags\tPaths")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID.Short(), s.Time.Local().Format(time.DateTime),
			s.Hostname, strings.Join(s.Tags, ","), strings.Join(s.Paths, ","))
	}
	return tw.Flush()
}

// forgetGroupHeader names a group: "snapshots of host laptop, paths /home".
func forgetGroupHeader(k snapshot.GroupKey, words []string) string {
	if len(words) == 0 {
		return "all snapshots"
	}
	var parts []string
	for _, w := range words {
		switch w {
		case "host":
			parts = append(parts, "host "+forgetOrNone([]string{k.Host}))
		case "paths":
			parts = append(parts, "paths "+forgetOrNone(k.Paths))
		case "tags":
			parts = append(parts, "tags "+forgetOrNone(k.Tags))
		}
	}
	return "snapshots of " + strings.Join(parts, ", ")
}

// forgetCount says "1 snapshot" or "N snapshots".
func forgetCount(n int) string {
	if n == 1 {
		return "1 snapshot"
	}
	return strconv.Itoa(n) + " snapshots"
}

func forgetOrNone(list []string) string {
	if s := strings.Join(list, ","); s != "" {
		return s
	}
	return "(none)"
}

func forgetNonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
