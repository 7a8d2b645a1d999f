package main

// -corpus cipher: the tools back up an eCryptfs lower tree (what ~/.Private
// holds) made from the generated home directory by bench/ecryptfs-gen, and
// the tree is edited with ecryptfs-gen -mutate instead of corpus mutate.
// Per repetition: an initial backup, then h.rounds rounds of one day of
// edits followed by an incremental backup with every tool. Each round's
// real change of the lower files is measured without any tool (lowerdiff.go)
// so that each tool's repository growth can be set against it.

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// roundScenario is the scenario id of round k's incremental backups.
func roundScenario(k int) string { return fmt.Sprintf("round%d", k) }

// lowerTree is the lower tree of one repetition. Every rep converts the
// corpus afresh (before anything is timed) and applies the same rounds, so
// all reps see the same tree states; the name mimics ~/.Private.
func (h *harness) lowerTree(rep int) string {
	return filepath.Join(h.data, "lower", fmt.Sprintf("r%d", rep), ".Private")
}

func (h *harness) ecryptfsArgs(args ...string) []string {
	a := []string{"-seed", fmt.Sprint(h.seed)}
	if h.xattr {
		a = append(a, "-xattr")
	}
	return append(a, args...)
}

// runCipher runs the ciphertext scenarios and writes the report.
func (h *harness) runCipher(info reportInfo, out string) error {
	var convLine string
	for rep := 1; rep <= h.reps; rep++ {
		lower := h.lowerTree(rep)
		if err := os.MkdirAll(filepath.Dir(lower), 0o755); err != nil {
			return err
		}
		b, err := exec.Command(h.ecryptfsBin, h.ecryptfsArgs(h.home, lower)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ecryptfs-gen: %v\n%s", err, b)
		}
		line := strings.TrimSpace(string(b))
		logf("rep %d: ecryptfs-gen: %s", rep, line)
		if rep == 1 {
			convLine, _, _ = strings.Cut(line, " written to ")
		}
	}
	if err := syncNow(); err != nil {
		return err
	}
	st, err := scanLower(h.lowerTree(1), h.xattr)
	if err != nil {
		return err
	}
	xattrNote := ""
	if h.xattr {
		xattrNote = " -xattr"
	}
	info.corpus += fmt.Sprintf("; converted with `ecryptfs-gen -seed %d%s` into an eCryptfs lower tree of %d files, "+
		"%d bytes (%.1f MiB; %s in all), which the tools back up as ~/.Private; edited with "+
		"`ecryptfs-gen -mutate -seed %d%s -round N` for N = 1…%d",
		h.seed, xattrNote, st.count, st.bytes, float64(st.bytes)/(1<<20), convLine,
		h.seed, xattrNote, h.rounds)

	info.loadStart = loadavg()
	start := time.Now()
	for rep := 1; rep <= h.reps; rep++ {
		if err := h.cipherRep(rep); err != nil {
			return err
		}
	}
	logf("all scenarios done in %s", time.Since(start).Round(time.Second))
	info.loadEnd = loadavg()
	info.date = time.Now().Format("2006-01-02 15:04 MST")
	info.cacheNote = "warm. Right before every timed command the lower tree and the tool's repository and cache " +
		"directory were read with `tar -cf - … | cat >/dev/null`, then sync(1) ran. Every repetition converts " +
		"the corpus into a fresh lower tree and uses fresh repositories; nothing is deleted before a timed command; " +
		"the order of the tools rotates between repetitions."

	var table, tsv, rounds bytes.Buffer
	writeCipherTable(&table, info, h.results, h.changes, h.rounds)
	writeTSV(&tsv, h.results)
	writeRoundsTSV(&rounds, h.results, h.changes, info.tools)
	return writeResults(out, table.Bytes(), map[string][]byte{"runs.tsv": tsv.Bytes(), "rounds.tsv": rounds.Bytes()})
}

// cipherRep runs one repetition: initial backups, then h.rounds rounds of
// edits, each measured and followed by every tool's backup.
func (h *harness) cipherRep(rep int) error {
	h.tree = h.lowerTree(rep)
	order := h.participants(rep)
	logf("rep %d/%d, order: %s", rep, h.reps, strings.Join(order, ", "))
	state, err := scanLower(h.tree, h.xattr)
	if err != nil {
		return err
	}

	if err := h.readAndInitial(rep, order); err != nil {
		return err
	}

	for k := 1; k <= h.rounds; k++ {
		b, err := exec.Command(h.ecryptfsBin, h.ecryptfsArgs("-mutate", "-round", fmt.Sprint(k), h.tree)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ecryptfs-gen -mutate: %v\n%s", err, b)
		}
		if err := syncNow(); err != nil {
			return err
		}
		next, err := scanLower(h.tree, h.xattr)
		if err != nil {
			return err
		}
		c := diffLower(state, next)
		c.Rep, c.Round, c.Edits = rep, k, strings.TrimSpace(string(b))
		h.changes = append(h.changes, c)
		state = next
		logf("rep %d round %d: %s; lower files changed: %d bytes in %d files (%d in place, %d replaced, %d new), %d deleted",
			rep, k, c.Edits, c.ChangedBytes, c.Changed, c.InPlace, c.Replaced, c.New, c.Deleted)
		for i, name := range order {
			if t, ok := tools[name]; ok && slices.Contains(h.tools, t) {
				if err := h.backup(rep, i, roundScenario(k), t); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// allowance is what snap may add for a round: 1.1 × the changed bytes plus
// 16 KiB per file edited in place (its header and the chunk of the changed
// extents around the edit).
func (c lowerChange) allowance() float64 {
	return 1.1*float64(c.ChangedBytes) + 16*1024*float64(c.InPlace)
}

// addedBy returns the repository growth of tool's successful backups in a
// scenario, by rep.
func addedBy(results []*Result, scen, tool string) map[int]int64 {
	m := map[int]int64{}
	for _, r := range results {
		if r.Scenario == scen && r.Tool == tool && r.OK() && r.Size >= 0 {
			m[r.Rep] = r.Delta
		}
	}
	return m
}

func medianOf(m map[int]int64) float64 {
	var xs []float64
	for _, v := range m {
		xs = append(xs, float64(v))
	}
	return median(xs)
}

func kib(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.0f", v/1024)
}

// writeCipherTable prints the Markdown report of a -corpus cipher run: the
// timings of every backup, then per round the bytes really changed in the
// lower tree beside each tool's repository growth.
func writeCipherTable(w io.Writer, info reportInfo, results []*Result, changes []lowerChange, rounds int) {
	writeHeader(w, fmt.Sprintf("eCryptfs ciphertext (lower tree of the %s corpus), %d rep(s)", info.size, info.reps), info, results)

	fmt.Fprintln(w, "| scenario | tool | ok/runs | wall s | user s | CPU s | sync s | RSS MiB | read MiB | written MiB | size MiB | added MiB | snap/tool wall | snap/tool added |")
	fmt.Fprintln(w, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	scens := []scenario{{"read", "read lower tree (tar \\| cat)", ""}, {"initial", "initial backup", "repo"}}
	for k := 1; k <= rounds; k++ {
		scens = append(scens, scenario{roundScenario(k), fmt.Sprintf("incremental, round %d", k), "repo"})
	}
	var notes []string
	for _, sc := range scens {
		rows := info.tools
		if sc.id == "read" {
			rows = []string{"tar"}
		}
		snap := summarize(results, sc.id, "snap")
		for _, tool := range rows {
			s := summarize(results, sc.id, tool)
			if s.runs == 0 {
				continue
			}
			for _, n := range s.notes {
				notes = append(notes, fmt.Sprintf("%s, %s: %s", sc.id, tool, n))
			}
			label := tool
			if tool == "tar" {
				label = "tar (baseline)"
			}
			if s.na == s.runs {
				fmt.Fprintf(w, "| %s | %s | n/a | n/a | | | | | | | | | | |\n", sc.title, label)
				continue
			}
			wallR, addR := "—", "—"
			if tool != "snap" && snap.ok > 0 && sc.size != "" {
				wallR = ratio(snap.wall, s.wall)
				addR = ratio(snap.delta, s.delta)
			}
			added := num(s.delta, 2)
			if sc.size == "" {
				added = "—"
			}
			fmt.Fprintf(w, "| %s | %s | %d/%d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				sc.title, label, s.ok, s.runs, secs(s.wall), secs(s.user), secs(s.cpu), secs(s.sync),
				num(s.rss, 0), num(s.in, 1), num(s.out, 1), num(s.size, 1), added, wallR, addR)
		}
	}

	// Bytes per round. The tree states are the same in every rep; the
	// changes measured in rep 1 stand for all (differences are noted).
	byRound := map[int]lowerChange{}
	for _, c := range changes {
		if prev, ok := byRound[c.Round]; !ok {
			byRound[c.Round] = c
		} else if prev.ChangedBytes != c.ChangedBytes || prev.InPlace != c.InPlace || prev.Changed != c.Changed {
			notes = append(notes, fmt.Sprintf("round %d changed %d bytes in %d files (%d in place) in rep %d, but %d bytes in %d files (%d in place) in rep %d: the tree states differ between reps",
				c.Round, c.ChangedBytes, c.Changed, c.InPlace, c.Rep, prev.ChangedBytes, prev.Changed, prev.InPlace, prev.Rep))
		}
	}
	fmt.Fprint(w, "\nBytes per round (KiB = 1024 bytes; × = bytes added / changed bytes):\n\n")
	head := "| round | changed files | in place | changed KiB |"
	sep := "|---|--:|--:|--:|"
	for _, tool := range info.tools {
		head += fmt.Sprintf(" %s KiB | %s × |", tool, tool)
		sep += "--:|--:|"
	}
	fmt.Fprintln(w, head+" snap allowance KiB | snap |")
	fmt.Fprintln(w, sep+"--:|---|")
	var totC lowerChange
	totAdded := map[string]map[int]int64{}
	var edits []string
	for k := 1; k <= rounds; k++ {
		c, ok := byRound[k]
		if !ok {
			continue
		}
		edits = append(edits, fmt.Sprintf("round %d: %s", k, c.Edits))
		totC.ChangedBytes += c.ChangedBytes
		totC.Changed += c.Changed
		totC.InPlace += c.InPlace
		row := fmt.Sprintf("| %d | %d | %d | %s |", k, c.Changed, c.InPlace, kib(float64(c.ChangedBytes)))
		for _, tool := range info.tools {
			added := addedBy(results, roundScenario(k), tool)
			if totAdded[tool] == nil {
				totAdded[tool] = map[int]int64{}
			}
			for rep, v := range added {
				totAdded[tool][rep] += v
			}
			med := medianOf(added)
			row += fmt.Sprintf(" %s | %s |", kib(med), ratio(med, float64(c.ChangedBytes)))
		}
		row += fmt.Sprintf(" %s | %s |", kib(c.allowance()), allowanceCheck(addedBy(results, roundScenario(k), "snap"), changes, k))
		fmt.Fprintln(w, row)
	}
	if len(byRound) > 1 {
		row := fmt.Sprintf("| all | %d | %d | %s |", totC.Changed, totC.InPlace, kib(float64(totC.ChangedBytes)))
		for _, tool := range info.tools {
			// Only reps in which every round's backup succeeded add up.
			complete := map[int]int64{}
			for rep, v := range totAdded[tool] {
				n := 0
				for k := 1; k <= rounds; k++ {
					if _, ok := addedBy(results, roundScenario(k), tool)[rep]; ok {
						n++
					}
				}
				if n == rounds {
					complete[rep] = v
				}
			}
			med := medianOf(complete)
			row += fmt.Sprintf(" %s | %s |", kib(med), ratio(med, float64(totC.ChangedBytes)))
		}
		check := "—"
		if slices.Contains(info.tools, "snap") {
			met, n := 0, 0
			for k := 1; k <= rounds; k++ {
				for rep, v := range addedBy(results, roundScenario(k), "snap") {
					for _, c := range changes {
						if c.Rep == rep && c.Round == k {
							n++
							if float64(v) <= c.allowance() {
								met++
							}
						}
					}
				}
			}
			check = fmt.Sprintf("met in %d/%d", met, n)
		}
		fmt.Fprintf(w, "%s %s | %s |\n", row, kib(totC.allowance()), check)
	}

	fmt.Fprintf(w, `
Edits (ecryptfs-gen -mutate; the same in every rep):
%s

Scenarios: initial = first backup of the lower tree into an empty repository; incremental, round N =
the backup right after the N-th day of edits (ecryptfs-gen -mutate -round N), every tool backing up
the same tree state. Medians over the successful runs; columns as in the plain-corpus table (added =
repository growth, du -sb, so it includes indexes and snapshot metadata; rsync: the new hard-link
tree). snap/tool added = ratio of snap's median growth to the row's.

Bytes per round are measured without any backup tool: the lower tree is scanned before and after the
round (a SHA-256 of every 4 KiB block of every regular file, hard links once), files are matched by
lower name, and every block that differs from the block at the same offset before, or lies beyond
the old end, counts (a new file counts whole, a deleted one 0; in xattr mode a changed user.ecryptfs
value counts its length). changed files = files with such blocks; in place = of them, those with the
same lower name, the same inode and the same header marker (bytes 8–15; in xattr mode those of the
user.ecryptfs value), i.e. written through the mount rather than replaced by a new file with a new
key. snap's allowance is 1.1 × changed + 16 KiB × in-place-edited files; the snap column says
whether its repository growth stayed within it (met) or not (missed) in every rep.
`, "- "+strings.Join(edits, "\n- "))
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		for _, n := range notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}

// allowanceCheck says whether snap's growth in round k stayed within its
// allowance in each rep that has both a backup and a measured change.
func allowanceCheck(added map[int]int64, changes []lowerChange, k int) string {
	met, n := 0, 0
	for _, c := range changes {
		v, ok := added[c.Rep]
		if c.Round != k || !ok {
			continue
		}
		n++
		if float64(v) <= c.allowance() {
			met++
		}
	}
	switch {
	case n == 0:
		return "—"
	case met == n:
		return "met"
	case met == 0:
		return "**missed**"
	}
	return fmt.Sprintf("met in %d/%d reps", met, n)
}

// writeRoundsTSV writes one line per rep and round: the measured change of
// the lower tree and every tool's repository growth, in bytes.
func writeRoundsTSV(w io.Writer, results []*Result, changes []lowerChange, tools []string) {
	head := "rep\tround\tchanged_bytes\tchanged_blocks\tchanged_files\tin_place\treplaced\tnew\tdeleted\ttree_files\ttree_bytes\tsnap_allowance_bytes"
	for _, t := range tools {
		head += "\tadded_" + t
	}
	fmt.Fprintln(w, head+"\tedits")
	for _, c := range changes {
		fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f", c.Rep, c.Round, c.ChangedBytes, c.ChangedBlocks,
			c.Changed, c.InPlace, c.Replaced, c.New, c.Deleted, c.TreeFiles, c.TreeBytes, c.allowance())
		for _, t := range tools {
			if v, ok := addedBy(results, roundScenario(c.Round), t)[c.Rep]; ok {
				fmt.Fprintf(w, "\t%d", v)
			} else {
				fmt.Fprint(w, "\t")
			}
		}
		fmt.Fprintf(w, "\t%s\n", strings.NewReplacer("\t", " ", "\n", " ").Replace(c.Edits))
	}
}
