package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"snap/chunk"
	"snap/index"
	"snap/internal/pattern"
	"snap/repo"
	"snap/snapshot"
)

type checkOptions struct {
	readData bool
	subset   string
}

func checkCmd(g *globals) *cobra.Command {
	o := &checkOptions{}
	c := &cobra.Command{
		Use:   "check",
		Short: "Verify the repository's structure and, optionally, its data",
		Long: `Check verifies the config, every snapshot and every tree it references, that every referenced
blob is in the index and in a pack, and that the index matches the pack trailers. --read-data also
reads every pack and verifies every blob's checksum and SHA-256; --read-data-subset reads a part:
n/m (the nth of m parts, so m runs cover everything), a percentage (10%) or a size (5G).
Each problem is reported with the snapshots and files it affects. Exit code 1 on any error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return g.check(cmd.Context(), o) },
	}
	c.Flags().BoolVar(&o.readData, "read-data", false, "read and verify all data")
	c.Flags().StringVar(&o.subset, "read-data-subset", "", "read and verify a subset of the packs: n/m, P% or SIZE")
	return c
}

// errCheckFailed is returned when check found errors (each printed already).
var errCheckFailed = errors.New("check found errors")

func (g *globals) check(ctx context.Context, o *checkOptions) error {
	r, release, err := g.openRead(ctx, "check")
	if err != nil {
		return err
	}
	defer release()
	say := func(severity, msg string) {
		if g.json {
			printJSON(g.stdout, map[string]any{"message_type": "finding", "severity": severity, "message": msg})
		} else if severity == repo.SeverityError || !g.quiet {
			fmt.Fprintf(g.stdout, "%s: %s\n", severity, msg)
		}
	}
	progress := func(format string, args ...any) {
		if !g.quiet && !g.json {
			fmt.Fprintf(g.stdout, format+"\n", args...)
		}
	}
	res, err := g.checkRepo(ctx, r, o, say, progress)
	if err != nil {
		return err
	}
	if res.errors > 0 {
		return fmt.Errorf("%d errors: %w", res.errors, errCheckFailed)
	}
	progress("no errors found")
	return nil
}

// checkResult sums up a check.
type checkResult struct {
	errors                int   // findings of severity error
	packsRead, packsTotal int   // packs whose data was read, of all packs
	bytesRead             int64 // the size of the packs read
}

// checkRepo is the body of check: it checks r, which the caller has opened
// (and may have locked), reporting each finding through report and each stage
// through progress.
func (g *globals) checkRepo(ctx context.Context, r *repo.Repository, o *checkOptions, report func(severity, msg string), progress func(format string, args ...any)) (*checkResult, error) {
	r.BypassCaches() // damage in the repository must not hide behind a cached copy
	res := &checkResult{}
	say := func(severity, msg string) {
		if severity == repo.SeverityError {
			res.errors++
		}
		report(severity, msg)
	}
	progress("checking packs and index")
	bad := map[chunk.ID]bool{}
	err := r.CheckPacks(ctx, func(f repo.Finding) {
		for _, b := range f.Blobs {
			bad[b] = true
		}
		say(f.Severity, f.Msg)
	})
	if err != nil {
		return nil, err
	}

	progress("checking snapshots and trees")
	var snaps []*snapshot.Snapshot
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		sn, err := snapshot.Load(ctx, r, id)
		if err != nil {
			say(repo.SeverityError, err.Error())
			continue
		}
		snaps = append(snaps, sn)
	}
	if err := g.useNames(r, snaps...); err != nil {
		return nil, err
	}
	_, err = snapshot.CheckTrees(ctx, r, snaps, func(p snapshot.TreeProblem) {
		say(repo.SeverityError, fmt.Sprintf("snapshot %s: %s: %v", p.Snapshot.ID.Short(), g.shown(p.Path), p.Err))
	})
	if err != nil {
		return nil, err
	}

	if o.readData || o.subset != "" {
		packs, err := r.PackList()
		if err != nil {
			return nil, err
		}
		chosen, err := choosePacks(packs, o.subset)
		if err != nil {
			return nil, err
		}
		var size int64
		for _, p := range chosen {
			size += p.Size
		}
		res.packsRead, res.packsTotal, res.bytesRead = len(chosen), len(packs), size
		progress("reading %d of %d packs (%s)", len(chosen), len(packs), formatBytes(size))
		for _, p := range chosen {
			damaged, err := r.CheckPackData(ctx, p)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			for _, b := range damaged {
				bad[b] = true
			}
			if err != nil || len(damaged) > 0 {
				msg := fmt.Sprintf("pack %s: %d damaged blobs", p.ID.Short(), len(damaged))
				if err != nil {
					msg = err.Error()
					if len(damaged) > 0 {
						msg += fmt.Sprintf("; %d damaged blobs", len(damaged))
					}
				}
				say(repo.SeverityError, msg+fmt.Sprintf("; salvage the rest with 'snap repair packs %s'", p.ID.Short()))
			}
		}
	}
	if len(bad) > 0 {
		hit, err := snapshot.AffectedPaths(ctx, r, snaps, bad)
		if err != nil {
			return nil, err
		}
		byPath := map[string][]string{}
		var paths []string
		for _, a := range hit {
			if _, ok := byPath[a.Path]; !ok {
				paths = append(paths, a.Path)
			}
			byPath[a.Path] = append(byPath[a.Path], a.Snapshot.ID.Short())
		}
		sort.Strings(paths)
		for _, p := range paths {
			say(repo.SeverityError, fmt.Sprintf("damaged: %s (in snapshots %s)", g.shown(p), strings.Join(byPath[p], ", ")))
		}
		if len(paths) > 0 {
			say(repo.SeverityNote, "after 'snap repair packs', 'snap repair snapshots' makes every other file restorable")
		}
	}
	return res, nil
}

// choosePacks selects the packs --read-data-subset names (all for "").
func choosePacks(packs []index.PackInfo, subset string) ([]index.PackInfo, error) {
	subset = strings.TrimSpace(subset)
	if subset == "" {
		return packs, nil
	}
	if n, m, ok := strings.Cut(subset, "/"); ok {
		ni, err1 := strconv.Atoi(n)
		mi, err2 := strconv.Atoi(m)
		if err1 != nil || err2 != nil || mi < 1 || ni < 1 || ni > mi {
			return nil, fmt.Errorf("--read-data-subset %q: want n/m with 1 <= n <= m", subset)
		}
		// By ID, not by position: the parts stay the same as packs come and go.
		var out []index.PackInfo
		for _, p := range packs {
			if int(binary.BigEndian.Uint32(p.ID[:4])%uint32(mi)) == ni-1 {
				out = append(out, p)
			}
		}
		return out, nil
	}
	shuffled := append([]index.PackInfo(nil), packs...)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if pct, ok := strings.CutSuffix(subset, "%"); ok {
		f, err := strconv.ParseFloat(pct, 64)
		if err != nil || f <= 0 || f > 100 {
			return nil, fmt.Errorf("--read-data-subset %q: want a percentage in (0, 100]", subset)
		}
		n := int(float64(len(packs))*f/100 + 0.999)
		return shuffled[:min(n, len(shuffled))], nil
	}
	limit, err := pattern.ParseSize(subset)
	if err != nil {
		return nil, fmt.Errorf("--read-data-subset %q: want n/m, a percentage or a size", subset)
	}
	var out []index.PackInfo
	var total int64
	for _, p := range shuffled {
		if total+p.Size > limit && len(out) > 0 {
			break
		}
		out = append(out, p)
		total += p.Size
	}
	return out, nil
}
