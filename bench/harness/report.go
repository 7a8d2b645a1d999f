package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
)

// scenario is one row group of the table.
type scenario struct {
	id    string
	title string
	size  string // what the size column holds for this scenario
}

// scenarios in table order. "round" (the untimed-for-the-table backups of
// the forget/prune preparation) appears only in runs.tsv.
var scenarios = []scenario{
	{"read", "read corpus (tar \\| cat)", ""},
	{"initial", "initial backup", "repo"},
	{"nochange", "no-change backup", "repo"},
	{"incremental", "incremental (1 day of edits)", "repo"},
	{"restore", "full restore", "restored"},
	{"prune", "forget --keep-last 3 + prune", "repo"},
	{"random", "initial backup, incompressible", "repo"},
}

// baselines names the non-backup command that each scenario is compared with.
var baselines = map[string]string{"read": "tar", "nochange": "find", "restore": "cp -a"}

// median of xs; NaN when empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// summary is the medians of one scenario and tool over its successful runs.
type summary struct {
	runs, ok, na                        int
	wall, user, cpu, sync, rss, in, out float64
	size, delta                         float64 // NaN if not applicable
	notes                               []string
}

func summarize(results []*Result, scen, tool string) summary {
	var s summary
	var wall, user, cpu, sync, rss, in, out, size, delta []float64
	for _, r := range results {
		if r.Scenario != scen || r.Tool != tool {
			continue
		}
		s.runs++
		if r.Status == "n/a" {
			s.na++
		}
		if r.Note != "" && !slices.Contains(s.notes, r.Note) {
			s.notes = append(s.notes, r.Note)
		}
		if !r.OK() {
			continue
		}
		s.ok++
		wall = append(wall, r.Wall)
		user = append(user, r.User)
		cpu = append(cpu, r.CPU())
		sync = append(sync, r.Sync)
		rss = append(rss, float64(r.MaxRSS)/1024)
		in = append(in, float64(r.FSIn)*512/(1<<20))
		out = append(out, float64(r.FSOut)*512/(1<<20))
		if r.Size >= 0 {
			size = append(size, float64(r.Size)/(1<<20))
			if scen != "restore" {
				delta = append(delta, float64(r.Delta)/(1<<20))
			}
		}
	}
	s.wall, s.user, s.cpu, s.sync = median(wall), median(user), median(cpu), median(sync)
	s.rss, s.in, s.out = median(rss), median(in), median(out)
	s.size, s.delta = median(size), median(delta)
	return s
}

func num(v float64, prec int) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// secs prints seconds with enough digits for the tiny corpus's short runs.
func secs(v float64) string {
	if !math.IsNaN(v) && v < 10 {
		return num(v, 3)
	}
	return num(v, 2)
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// reportInfo is the context printed above the table.
type reportInfo struct {
	size, date, commit, corpus, cacheNote string
	reps                                  int
	loadStart, loadEnd                    float64 // 1-minute load averages
	versions                              []string
	tools                                 []string // tools in table order
	createNote                            string   // file creation speed probed before creating many files
	randomNote                            string   // snap's speed on the random file against chunk+hash
	randomBytes                           int64    // size of the random file
	chunkHashMBps                         float64  // chunk+hash rate measured before the run; 0 if not
}

// machine describes the CPU, core count, memory and kernel.
func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%s, %d cores%s, Linux %s", model, runtime.NumCPU(), mem, strings.TrimSpace(string(kernel)))
}

// writeHeader prints the title and the context of a report: machine,
// commit, corpus, tool versions, cache state and the load during the run.
func writeHeader(w io.Writer, title string, info reportInfo, results []*Result) {
	fmt.Fprintf(w, "# snap benchmark: %s\n\n", title)
	fmt.Fprintf(w, "Machine: %s. Date: %s. Commit: %s.\n\n", machine(), info.date, info.commit)
	fmt.Fprintf(w, "Corpus: %s.\n\n", info.corpus)
	fmt.Fprintf(w, "Tools: %s.\n\n", strings.Join(info.versions, "; "))
	fmt.Fprintf(w, "Cache: %s\n\n", info.cacheNote)
	peak := 0.0
	for _, r := range results {
		if r.Load > peak {
			peak = r.Load
		}
	}
	fmt.Fprintf(w, "Load (1-minute average): %.2f at the start, %.2f at the end, at most %.2f before a timed command.\n\n",
		info.loadStart, info.loadEnd, peak)
	if info.createNote != "" {
		fmt.Fprintf(w, "File creation per file, measured with %d empty files right before: %s (slower than %s means a recent mass delete, trap 1 of BENCHMARKING.md; the harness waits up to %s for it to pass).\n\n",
			probeFiles, info.createNote, slowCreate, createWait)
	}
	if peak >= 1 {
		fmt.Fprintf(w, "**Warning:** other processes were running (load up to %.2f on %d cores); wall times are "+
			"inflated and unreliable, CPU times less so. Rerun on an idle machine.\n\n", peak, runtime.NumCPU())
	}
}

// writeTable prints the Markdown report.
func writeTable(w io.Writer, info reportInfo, results []*Result) {
	writeHeader(w, fmt.Sprintf("%s corpus, %d rep(s)", info.size, info.reps), info, results)
	fmt.Fprintln(w, "| scenario | tool | ok/runs | wall s | user s | CPU s | sync s | RSS MiB | read MiB | written MiB | size MiB | added MiB | snap/tool wall | snap/tool size |")
	fmt.Fprintln(w, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	var notes []string
	for _, sc := range scenarios {
		rows := slices.Clone(info.tools)
		if b, ok := baselines[sc.id]; ok {
			rows = append(rows, b)
		}
		if sc.id == "read" {
			rows = []string{"tar"}
		}
		snap := summarize(results, sc.id, "snap")
		for _, tool := range rows {
			s := summarize(results, sc.id, tool)
			if s.runs == 0 {
				continue
			}
			label := tool
			if b, ok := baselines[sc.id]; ok && b == tool {
				label = tool + " (baseline)"
			}
			status := fmt.Sprintf("%d/%d", s.ok, s.runs)
			for _, n := range s.notes {
				notes = append(notes, fmt.Sprintf("%s, %s: %s", sc.id, tool, n))
			}
			if s.na == s.runs {
				fmt.Fprintf(w, "| %s | %s | n/a | n/a | | | | | | | | | | |\n", sc.title, label)
				continue
			}
			wallR, sizeR := "—", "—"
			if tool != "snap" && snap.ok > 0 {
				wallR = ratio(snap.wall, s.wall)
				sizeR = ratio(snap.size, s.size)
			}
			added := num(s.delta, 1)
			if sc.size == "" || sc.id == "restore" {
				added = "—"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				sc.title, label, status, secs(s.wall), secs(s.user), secs(s.cpu), secs(s.sync),
				num(s.rss, 0), num(s.in, 1), num(s.out, 1), num(s.size, 1), added, wallR, sizeR)
		}
	}
	writeTargets(w, info, results)
	fmt.Fprint(w, `
Scenarios: initial = first backup into an empty repository; no-change = the same tree again (the
find baseline stats every file, the least a backup must do); incremental = after one simulated day
of edits (corpus mutate); full restore = latest snapshot into a fresh directory, verified against
the corpus afterwards (cp -a is the baseline); forget + prune = keep the last 3 of 13 snapshots
(10 more edit/backup rounds first; rsync: rm -rf of the old trees, borg: prune + compact).

Medians over the successful runs. wall = elapsed time of the command alone; CPU = user + system;
sync = a sync(1) run right after the command (pending writes the tool left behind); RSS = peak
resident set; read/written MiB = GNU time's file system inputs/outputs (blocks that really went to
or came from disk, so a cold read shows here); size = repository size (du -sb) after the command, or
for restores the restored tree (du -sb, hard links counted once: a tool that expands hard links
shows more); added = change of the repository size caused by the command (negative: freed).
snap/tool = ratio of snap's median to the row's median (below 1: snap is faster or smaller).
initial backup, incompressible = one file of random bytes (like a VM image) into a fresh repository.
`)
	if info.randomNote != "" {
		fmt.Fprintln(w, "\n"+info.randomNote)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		for _, n := range notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}

// tsvHeader names the columns of runs.tsv.
const tsvHeader = "rep\torder\tscenario\ttool\tstatus\twall_s\telapsed_s\tuser_s\tsys_s\tcpu_s\tmax_rss_kib\tfs_in_blocks\tfs_out_blocks\tsync_s\tsize_bytes\tdelta_bytes\tload1\tnote"

func writeTSV(w io.Writer, results []*Result) {
	fmt.Fprintln(w, tsvHeader)
	for _, r := range results {
		note := r.Note
		if r.Info != "" {
			note = strings.TrimPrefix(note+"; "+r.Info, "; ")
		}
		note = strings.NewReplacer("\t", " ", "\n", " ").Replace(note)
		fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\t%.4f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t%.4f\t%d\t%d\t%.2f\t%s\n",
			r.Rep, r.Order, r.Scenario, r.Tool, r.Status, r.Wall, r.Elapsed, r.User, r.Sys, r.CPU(),
			r.MaxRSS, r.FSIn, r.FSOut, r.Sync, r.Size, r.Delta, r.Load, note)
	}
}
