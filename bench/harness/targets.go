package main

import (
	"fmt"
	"io"
	"math"
)

// target is one goal of the benchmark issue: snap's median in a scenario
// divided by another row's median must stay at or below limit.
type target struct {
	what   string // as the issue words it
	scen   string
	tool   string // the row snap is compared with
	metric string // "wall", "added", "size" or "rss"
	limit  float64
	corpus string // the corpus the issue sets it for; "" for any
}

// targets are the issue's, in its order. The incompressible-data target,
// a share of the chunk+hash rate, is judged apart (it needs that rate).
var targets = []target{
	{what: "initial backup: wall ≤ 0.6 × restic", scen: "initial", tool: "restic", metric: "wall", limit: 0.6},
	{what: "initial backup: wall ≤ 0.4 × borg", scen: "initial", tool: "borg", metric: "wall", limit: 0.4},
	{what: "no-change backup: wall ≤ 1.5 × find", scen: "nochange", tool: "find", metric: "wall", limit: 1.5},
	{what: "no-change backup: wall ≤ 0.5 × restic", scen: "nochange", tool: "restic", metric: "wall", limit: 0.5},
	{what: "incremental: wall ≤ 0.6 × restic", scen: "incremental", tool: "restic", metric: "wall", limit: 0.6},
	{what: "incremental: bytes added ≤ restic", scen: "incremental", tool: "restic", metric: "added", limit: 1},
	{what: "incremental: bytes added ≤ 0.2 × rsync --link-dest", scen: "incremental", tool: "rsync", metric: "added", limit: 0.2},
	{what: "repository after 10 rounds + prune ≤ restic", scen: "prune", tool: "restic", metric: "size", limit: 1},
	{what: "repository after 10 rounds + prune ≤ borg", scen: "prune", tool: "borg", metric: "size", limit: 1},
	{what: "full restore: wall ≤ 0.6 × restic", scen: "restore", tool: "restic", metric: "wall", limit: 0.6},
	{what: "full restore: wall ≤ 1.5 × cp -a", scen: "restore", tool: "cp -a", metric: "wall", limit: 1.5},
	{what: "peak RSS of the initial backup ≤ 0.5 × restic", scen: "initial", tool: "restic", metric: "rss", limit: 0.5, corpus: "large"},
}

// incompressibleShare is the least share of the chunk+hash rate that snap
// must reach on the random file.
const incompressibleShare = 0.6

// value is the median of metric in s; NaN when s has none.
func (t target) value(s summary) float64 {
	switch t.metric {
	case "wall":
		return s.wall
	case "added":
		return s.delta
	case "size":
		return s.size
	case "rss":
		return s.rss
	}
	return math.NaN()
}

// verdict is "met", "missed" or "not measured" for a measured ratio.
func verdict(ratio, limit float64, atLeast bool) string {
	switch {
	case math.IsNaN(ratio) || math.IsInf(ratio, 0):
		return "not measured"
	case atLeast && ratio >= limit, !atLeast && ratio <= limit:
		return "met"
	}
	return "**missed**"
}

// writeTargets prints each target of the benchmark issue with the ratio
// this run measured and whether it was met, so that a missed target shows
// in the table itself.
func writeTargets(w io.Writer, info reportInfo, results []*Result) {
	fmt.Fprintln(w, "\nTargets of the benchmark issue, judged on this run's medians (a ratio near its limit can fall")
	fmt.Fprintln(w, "either way from run to run on a noisy machine):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | snap/other | verdict |")
	fmt.Fprintln(w, "|---|--:|---|")
	snapBy := map[string]summary{}
	for _, t := range targets {
		snap, ok := snapBy[t.scen]
		if !ok {
			snap = summarize(results, t.scen, "snap")
			snapBy[t.scen] = snap
		}
		other := summarize(results, t.scen, t.tool)
		r := math.NaN()
		if snap.ok > 0 && other.ok > 0 {
			r = t.value(snap) / t.value(other)
		}
		v := verdict(r, t.limit, false)
		if t.corpus != "" && t.corpus != info.size && v != "not measured" {
			v += fmt.Sprintf(" (set for the %s corpus)", t.corpus)
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.what, ratioOrDash(r), v)
	}
	share := math.NaN()
	if s := summarize(results, "random", "snap"); s.ok > 0 && s.wall > 0 && info.chunkHashMBps > 0 && info.randomBytes > 0 {
		share = float64(info.randomBytes) / 1e6 / s.wall / info.chunkHashMBps
	}
	fmt.Fprintf(w, "| initial backup, incompressible: ≥ %.0f %% of chunking + SHA-256 on all cores | %s | %s |\n",
		100*incompressibleShare, ratioOrDash(share), verdict(share, incompressibleShare, true))
}

func ratioOrDash(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "—"
	}
	return fmt.Sprintf("%.2f", r)
}
