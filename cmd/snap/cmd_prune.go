package main

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"snap/internal/pattern"
	"snap/repo"
	"snap/snapshot"
)

type pruneOptions struct {
	maxUnused     string
	maxRepackSize string
	dryRun        bool
}

func pruneCmd(g *globals) *cobra.Command {
	c, _ := newPruneCmd(g)
	return c
}

// newPruneCmd returns the prune command and the options its flags set (run
// sets a job's prune settings through them).
func newPruneCmd(g *globals) (*cobra.Command, *pruneOptions) {
	o := &pruneOptions{}
	c := &cobra.Command{
		Use:   "prune",
		Short: "Delete data no snapshot references, giving space back",
		Long: `Prune deletes packs that hold only data no snapshot references and repacks partly used packs
until the unused space left is below --max-unused. New packs are durable and indexed before any old
pack is deleted, so an interrupted prune never loses data a snapshot references. --dry-run says
what would be deleted and how much space it frees.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			r, release, err := g.openLocked(ctx, "prune")
			if err != nil {
				return err
			}
			defer release()
			return g.runPrune(ctx, r, o, nil)
		},
	}
	addPruneFlags(c, o)
	c.Flags().BoolVarP(&o.dryRun, "dry-run", "n", false, "only say what would be deleted and repacked")
	return c, o
}

func addPruneFlags(c *cobra.Command, o *pruneOptions) {
	c.Flags().StringVar(&o.maxUnused, "max-unused", "5%", "unused space to tolerate in partly used packs: a percentage of the used data, a size, or 'unlimited'")
	c.Flags().StringVar(&o.maxRepackSize, "max-repack-size", "", "rewrite at most this much pack data in one run (e.g. 2G)")
}

func (o *pruneOptions) repoOptions() (repo.PruneOptions, error) {
	var po repo.PruneOptions
	switch s := strings.TrimSpace(o.maxUnused); {
	case s == "unlimited":
		po.MaxUnusedBytes = -1
	case strings.HasSuffix(s, "%"):
		f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil || f < 0 || f >= 100 {
			return po, fmt.Errorf("--max-unused %q: want a percentage below 100%%, a size or 'unlimited'", o.maxUnused)
		}
		po.MaxUnusedFraction = f / 100
		if f == 0 {
			po.MaxUnusedFraction, po.MaxUnusedBytes = 0, 0
		}
	default:
		n, err := pattern.ParseSize(s)
		if err != nil {
			return po, fmt.Errorf("--max-unused %q: want a percentage, a size or 'unlimited'", o.maxUnused)
		}
		po.MaxUnusedBytes = n
	}
	if o.maxRepackSize != "" {
		n, err := pattern.ParseSize(o.maxRepackSize)
		if err != nil {
			return po, fmt.Errorf("--max-repack-size %q: %w", o.maxRepackSize, err)
		}
		po.MaxRepackBytes = n
	}
	return po, nil
}

// runPrune prunes r, which the caller has locked. removed are snapshots a
// forget is about to remove (only in a dry run, where they still exist):
// they count as gone, and the files only they hold are listed.
func (g *globals) runPrune(ctx context.Context, r *repo.Repository, o *pruneOptions, removed []*snapshot.Snapshot) error {
	plan, lost, err := g.pruneRepo(ctx, r, o, removed)
	if err != nil {
		return err
	}
	return g.printPrune(plan, lost, o, removed)
}

// pruneRepo is the body of prune: it plans and (unless o.dryRun) carries
// out the prune of r, which the caller has locked, and prints nothing. For
// removed see runPrune.
func (g *globals) pruneRepo(ctx context.Context, r *repo.Repository, o *pruneOptions, removed []*snapshot.Snapshot) (*repo.PrunePlan, []snapshot.LostFile, error) {
	po, err := o.repoOptions()
	if err != nil {
		return nil, nil, err
	}
	all, err := snapshot.List(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	gone := map[string]bool{}
	for _, s := range removed {
		gone[s.ID.String()] = true
	}
	var kept []*snapshot.Snapshot
	for _, s := range all {
		if !gone[s.ID.String()] {
			kept = append(kept, s)
		}
	}
	used, err := snapshot.UsedBlobs(ctx, r, kept)
	if err != nil {
		return nil, nil, fmt.Errorf("prune: %w", err)
	}
	plan, err := r.PlanPrune(ctx, used, po)
	if err != nil {
		return nil, nil, fmt.Errorf("prune: %w", err)
	}
	var lost []snapshot.LostFile
	if len(removed) > 0 {
		if lost, err = snapshot.LostFiles(ctx, r, removed, used); err != nil {
			return nil, nil, err
		}
		if err := g.useNames(r, removed...); err != nil {
			return nil, nil, err
		}
	}
	if !o.dryRun && len(plan.Delete)+len(plan.Repack) > 0 {
		release, err := g.excludeReaders(ctx, r, "prune")
		if err != nil {
			return nil, nil, fmt.Errorf("prune: %w", err)
		}
		defer release()
		if err := r.Prune(ctx, plan, nil); err != nil {
			return nil, nil, err
		}
	}
	return plan, lost, nil
}

// printPrune reports what pruneRepo did or would do.
func (g *globals) printPrune(plan *repo.PrunePlan, lost []snapshot.LostFile, o *pruneOptions, removed []*snapshot.Snapshot) error {
	if g.json {
		return printJSON(g.stdout, map[string]any{
			"message_type": "prune", "dry_run": o.dryRun,
			"packs": plan.Packs, "total_bytes": plan.TotalBytes, "used_blobs": plan.UsedBlobs, "used_bytes": plan.UsedBytes,
			"unused_blobs": plan.UnusedBlobs, "unused_bytes": plan.UnusedBytes,
			"delete_packs": len(plan.Delete), "delete_bytes": plan.DeleteBytes,
			"repack_packs": len(plan.Repack), "repack_bytes": plan.RepackBytes, "repack_copied_bytes": plan.RepackUsedBytes,
			"freed_bytes": plan.FreedBytes, "remaining_unused_bytes": plan.RemainingUnused,
			"unrecoverable_files": lost,
		})
	}
	if g.quiet {
		return nil
	}
	w := g.stdout
	would := ""
	if o.dryRun {
		would = "would "
	}
	fmt.Fprintf(w, "repository: %d packs, %s; in use %s in %d blobs, unused %s in %d blobs\n",
		plan.Packs, formatBytes(plan.TotalBytes), formatBytes(plan.UsedBytes), plan.UsedBlobs, formatBytes(plan.UnusedBytes), plan.UnusedBlobs)
	fmt.Fprintf(w, "%sdelete %d packs (%s) and repack %d packs (%s, copying %s)\n",
		would, len(plan.Delete), formatBytes(plan.DeleteBytes), len(plan.Repack), formatBytes(plan.RepackBytes), formatBytes(plan.RepackUsedBytes))
	fmt.Fprintf(w, "%sfree %s; %s of unused data stays in partly used packs\n", would, formatBytes(plan.FreedBytes), formatBytes(plan.RemainingUnused))
	if len(removed) > 0 {
		printLost(g, lost, o.dryRun)
	}
	return nil
}

// printLost lists files that exist only in removed snapshots, grouped by
// directory with sizes (in cleartext names when a name map is in use).
func printLost(g *globals, lost []snapshot.LostFile, dryRun bool) {
	w := g.stdout
	verb := "become"
	if !dryRun {
		verb = "became"
	}
	if len(lost) == 0 {
		fmt.Fprintf(w, "no file %s unrecoverable: every file of the removed snapshots is still in a kept one\n", verb)
		return
	}
	byDir := map[string][]snapshot.LostFile{}
	var dirs []string
	var total uint64
	for _, lf := range lost {
		d := path.Dir(lf.Path)
		if _, ok := byDir[d]; !ok {
			dirs = append(dirs, d)
		}
		byDir[d] = append(byDir[d], lf)
		total += lf.Size
	}
	sort.Strings(dirs)
	fmt.Fprintf(w, "%d files (%s) %s unrecoverable; they exist only in the removed snapshots:\n", len(lost), formatBytes(int64(total)), verb)
	for _, d := range dirs {
		var sum uint64
		for _, lf := range byDir[d] {
			sum += lf.Size
		}
		fmt.Fprintf(w, "  %s  (%d files, %s)\n", g.shown(strings.TrimSuffix(d, "/")+"/"), len(byDir[d]), formatBytes(int64(sum)))
		for _, lf := range byDir[d] {
			fmt.Fprintf(w, "    %-40s %10s  in %s\n", g.shown(path.Base(lf.Path)), formatBytes(int64(lf.Size)), strings.Join(lf.Snapshots, ", "))
		}
	}
}
