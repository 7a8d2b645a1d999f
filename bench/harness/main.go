// Command harness runs snap's benchmark scenarios against snap and its peers
// (restic, borg, rsync hard-link trees) on one generated corpus, and writes
// a Markdown table of medians plus the raw per-run numbers. bench/run builds
// the binaries and calls it; see bench/README.md.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

// corpusMiB is the approximate size of each corpus, for the disk-space check.
var corpusMiB = map[string]int64{"tiny": 20, "small": 200, "large": 2000}

type harness struct {
	data      string // work dir for trees, repos, restores, tool state, logs
	home      string // the generated home directory (corpus gen)
	tree      string // what every tool backs up: home, or with -corpus cipher the current rep's lower tree
	random    string // the incompressible scenario's tree (random.go), or "" for none
	corpusBin string
	tools     []*tool
	reps      int
	rounds    int
	seed      uint64
	verify    string
	failLogs  string // where logs of failed runs are copied
	repos     map[string]*repo
	results   []*Result
	creates   []string // file creation speed measured before the corpus and each rep's restores

	// -corpus cipher only (cipher.go)
	xattr       bool   // headers in the user.ecryptfs xattr (ecryptfs-gen -xattr)
	ecryptfsBin string // bench/ecryptfs-gen
	changes     []lowerChange
}

func run() error {
	size := flag.String("size", "small", "corpus size: tiny, small or large")
	reps := flag.Int("reps", 3, "repetitions of every measurement")
	toolList := flag.String("tools", "snap,restic,borg,rsync", "tools to compare")
	work := flag.String("work", "", "work directory (must not exist or be empty); required")
	bin := flag.String("bin", "", "directory with the snap, restic and corpus binaries (else $PATH)")
	out := flag.String("out", "", "results directory for table.md and runs.tsv; required")
	commit := flag.String("commit", "unknown", "commit being measured, for the header")
	seed := flag.Uint64("seed", 1, "corpus seed")
	rounds := flag.Int("rounds", 0, "edit/backup rounds: before forget+prune (home, default 10), or each measured (cipher, default 5)")
	corpusKind := flag.String("corpus", "home", "what the tools back up: home (the generated home directory) or cipher (its eCryptfs lower tree, edited with ecryptfs-gen -mutate)")
	xattr := flag.Bool("xattr", false, "with -corpus cipher: headers in the user.ecryptfs xattr (mount option ecryptfs_xattr_metadata)")
	verify := flag.String("verify", "full", "check restores: full (contents), meta (sizes, mtimes), none")
	settle := flag.Duration("settle", -1, "wait until this long after the last bench cleanup before creating files (-1: 7m, or 0 for tiny)")
	quietWait := flag.Duration("quiet-wait", -1, "wait up to this long for the 1-minute load average to fall below 0.5 before starting (-1: 5m, or 0 for tiny)")
	randomSize := flag.Int64("random", -1, "MiB of the incompressible file backed up in scenario random (-1: 128, 512 or 1024 by size; 0: skip it)")
	chunkHash := flag.Float64("chunkhash", 0, "MB/s of BenchmarkChunkAndHash on this machine, to compare the random scenario with")
	flag.Parse()
	if *work == "" || *out == "" || flag.NArg() > 0 {
		flag.Usage()
		return fmt.Errorf("need -work and -out")
	}
	if _, ok := corpusMiB[*size]; !ok {
		return fmt.Errorf("unknown size %q", *size)
	}
	cipher := *corpusKind == "cipher"
	if !cipher && *corpusKind != "home" {
		return fmt.Errorf("unknown -corpus %q: want home or cipher", *corpusKind)
	}
	if *xattr && !cipher {
		return fmt.Errorf("-xattr needs -corpus cipher")
	}
	minRounds, defRounds := 4, 10
	if cipher {
		minRounds, defRounds = 3, 5
	}
	if *rounds == 0 {
		*rounds = defRounds
	}
	if *reps < 1 || *rounds < minRounds {
		return fmt.Errorf("need -reps >= 1 and -rounds >= %d", minRounds)
	}

	h := &harness{data: filepath.Join(*work, "data"), reps: *reps, rounds: *rounds, seed: *seed,
		verify: *verify, failLogs: filepath.Join(*out, "failed-logs"), repos: map[string]*repo{},
		xattr: *xattr}
	h.home = filepath.Join(h.data, "tree", "home")
	h.tree = h.home
	var err error
	if h.corpusBin, err = findBin(*bin, "corpus"); err != nil {
		return err
	}
	if cipher {
		if h.ecryptfsBin, err = findBin(*bin, "ecryptfs-gen"); err != nil {
			return err
		}
	}
	for _, name := range strings.Split(*toolList, ",") {
		t, ok := tools[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("unknown tool %q (have %s)", name, strings.Join(toolOrder, ", "))
		}
		if t.bin, err = findBin(*bin, t.name); err != nil {
			return err
		}
		if !slices.Contains(h.tools, t) {
			h.tools = append(h.tools, t)
		}
	}
	slices.SortFunc(h.tools, func(a, b *tool) int {
		return slices.Index(toolOrder, a.name) - slices.Index(toolOrder, b.name)
	})
	if _, err := os.Stat(timeBin); err != nil {
		return fmt.Errorf("%s (GNU time) is missing: apt-get install time", timeBin)
	}
	if ents, _ := os.ReadDir(h.data); len(ents) > 0 {
		return fmt.Errorf("%s is not empty", h.data)
	}
	if *randomSize < 0 {
		*randomSize = randomMiB[*size]
	}
	if cipher {
		*randomSize = 0 // the cipher run has scenarios of its own
	}
	rsync := false
	for _, t := range h.tools {
		rsync = rsync || t.name == "rsync"
	}
	need := spaceNeeded(*size, *reps, len(h.tools), rsync, cipher, *rounds, *randomSize)
	if err := checkSpace(*work, need); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, d := range []string{"tree", "repos", "restores", "state", "logs"} {
		if err := os.MkdirAll(filepath.Join(h.data, d), 0o755); err != nil {
			return err
		}
	}
	waitSettle(*settle, *size)
	if *quietWait < 0 {
		*quietWait = 5 * time.Minute
		if *size == "tiny" {
			*quietWait = 0
		}
	}
	if waited, load := waitQuiet(*quietWait, loadavg, time.Sleep); waited > 0 {
		logf("waited %s for the machine to quieten; load now %.2f (-quiet-wait 0 skips)", waited.Round(time.Second), load)
	}
	if err := h.checkCreates("corpus", filepath.Join(h.data, "tree")); err != nil {
		return err
	}

	genOut, err := exec.Command(h.corpusBin, "gen", "-size", *size, "-seed", fmt.Sprint(*seed), h.home).CombinedOutput()
	if err != nil {
		return fmt.Errorf("corpus gen: %v\n%s", err, genOut)
	}
	corpusLine := strings.TrimSpace(string(genOut))
	logf("%s", corpusLine)
	if *randomSize > 0 {
		h.random = filepath.Join(h.data, "random")
		if err := writeRandom(h.random, *randomSize, *seed); err != nil {
			return fmt.Errorf("write the random file: %w", err)
		}
		corpusLine += fmt.Sprintf("; scenario random: one file of %d MiB of random bytes", *randomSize)
	}
	if err := syncNow(); err != nil {
		return err
	}

	info := reportInfo{size: *size, reps: *reps, commit: *commit, corpus: "`corpus gen` → " + corpusLine}
	for _, t := range h.tools {
		info.tools = append(info.tools, t.name)
		info.versions = append(info.versions, version(t))
	}
	if cipher {
		return h.runCipher(info, *out)
	}

	info.loadStart = loadavg()
	start := time.Now()
	for rep := 1; rep <= h.reps; rep++ {
		if err := h.rep(rep); err != nil {
			return err
		}
	}
	for rep := 1; rep <= h.reps; rep++ {
		if err := h.pruneRep(rep); err != nil {
			return err
		}
	}
	logf("all scenarios done in %s", time.Since(start).Round(time.Second))

	info.loadEnd = loadavg()
	info.date = time.Now().Format("2006-01-02 15:04 MST")
	info.cacheNote = "warm. Right before every timed command the corpus (for backups, find, cp -a, tar) and the " +
		"tool's repository and cache directory (for backups, restores, prune) were read with " +
		"`tar -cf - … | cat >/dev/null`, then sync(1) ran. Every repository and restore directory is fresh, " +
		"nothing is deleted before a timed command, and the order of the tools rotates between repetitions."
	info.createNote = strings.Join(h.creates, "; ")
	info.randomNote = randomNote(h.results, *randomSize<<20, *chunkHash)
	info.randomBytes, info.chunkHashMBps = *randomSize<<20, *chunkHash
	var table bytes.Buffer
	writeTable(&table, info, h.results)
	var tsv bytes.Buffer
	writeTSV(&tsv, h.results)
	return writeResults(*out, table.Bytes(), map[string][]byte{"runs.tsv": tsv.Bytes()})
}

// writeResults writes table.md and the other files into the results
// directory and prints the table.
func writeResults(out string, table []byte, files map[string][]byte) error {
	files["table.md"] = table
	var names []string
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			return err
		}
		names = append(names, filepath.Join(out, name))
	}
	slices.Sort(names)
	fmt.Print(string(table))
	logf("wrote %s", strings.Join(names, ", "))
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// spaceNeeded estimates the MiB a run takes on disk: the corpus, every
// repetition's repositories and restores, which are all kept until the end
// so nothing is deleted right before a timed command.
func spaceNeeded(size string, reps, ntools int, rsync, cipher bool, rounds int, randomMiB int64) int64 {
	corpus, r := corpusMiB[size], int64(reps)
	// Per rep: one repository per tool (at most ~1.5× the corpus with rsync's
	// changed trees) and one restore per tool plus cp -a.
	need := corpus * (2 + r*(int64(ntools)*5/2+1))
	if rsync && !cipher {
		// rsync's tree of each edit round holds a fresh copy of every changed
		// file, the VM image and database whole: about half the corpus (a
		// large run with 2 reps ran out of disk without this).
		need += corpus * r * int64(rounds) / 2
	}
	if cipher {
		// Per rep: a lower tree (≈1.8× the corpus, incompressible) and one
		// repository of it per tool, and rsync copies the edited disk
		// image and database whole every round.
		need = corpus * (1 + r*(2+2*int64(ntools)+int64(rounds)))
	}
	// The random file, and one repository of it per tool and rep.
	return need + randomMiB*(1+r*int64(ntools))
}

// checkSpace refuses to start when the disk holding work has less than need
// MiB free.
func checkSpace(work string, need int64) error {
	var st syscall.Statfs_t
	dir := work
	for {
		if err := syscall.Statfs(dir, &st); err == nil {
			break
		}
		if dir = filepath.Dir(dir); dir == "/" || dir == "." {
			break
		}
	}
	free := int64(st.Bavail) * st.Bsize >> 20
	if free < need {
		return fmt.Errorf("%s has %d MiB free, the run needs about %d MiB", work, free, need)
	}
	return nil
}

// stampFile records when the last bench run deleted its work directory.
var stampFile = filepath.Join(os.TempDir(), "snapbench-last-cleanup")

// waitSettle waits out the window after a mass delete in which this
// machine's file system creates files 20–30× slower (BENCHMARKING.md, trap 1).
func waitSettle(settle time.Duration, size string) {
	if settle < 0 {
		settle = 7 * time.Minute
		if size == "tiny" {
			settle = 0
		}
	}
	data, err := os.ReadFile(stampFile)
	if err != nil || settle == 0 {
		return
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return
	}
	if wait := settle - time.Since(time.Unix(sec, 0)); wait > 0 {
		logf("a bench work directory was deleted %s ago; waiting %s so file creation is at full speed (-settle 0 skips)",
			time.Since(time.Unix(sec, 0)).Round(time.Second), wait.Round(time.Second))
		time.Sleep(wait)
	}
}

// quietLoad is the 1-minute load average below which the machine counts
// as idle enough to start timing.
const quietLoad = 0.5

// waitQuiet waits, up to limit, for load() to fall below quietLoad, and
// returns how long it waited and the last load seen. Right after a large
// delete the kernel discards the freed blocks (the disk is mounted with
// discard) and keeps a core busy for minutes: a run started 20 minutes
// after the previous one's 60 GB cleanup met a load of 1.2 with nothing
// else running. A run that starts anyway shows its load in the table.
func waitQuiet(limit time.Duration, load func() float64, sleep func(time.Duration)) (time.Duration, float64) {
	const poll = 10 * time.Second
	var waited time.Duration
	l := load()
	for l >= quietLoad && waited < limit {
		sleep(poll)
		waited += poll
		l = load()
	}
	return waited, l
}

// participants returns this rep's rotation of tools and baselines. Rotating
// spreads the effects of order (borg evicting the page cache, writeback of
// the previous run) over all tools.
func (h *harness) participants(rep int) []string {
	var p []string
	for _, t := range h.tools {
		p = append(p, t.name)
	}
	p = append(p, "tar", "find", "cp -a")
	k := (rep - 1) % len(p)
	return slices.Concat(p[k:], p[:k])
}

func (h *harness) repoOf(t *tool, rep int) *repo {
	return h.repos[fmt.Sprintf("%s-r%d", t.name, rep)]
}

func logName(scen, tool string, rep int, extra string) string {
	return fmt.Sprintf("%s-%s-r%d%s", scen, strings.ReplaceAll(tool, " ", ""), rep, extra)
}

// timed warms the given paths, syncs, runs c under measurement and records
// the result. okExit lists exit codes that count as success with a warning.
func (h *harness) timed(rep, order int, scen, tool string, c command, okExit []int, warmPaths ...string) (*Result, error) {
	if err := warm(warmPaths...); err != nil {
		return nil, fmt.Errorf("warm: %w", err)
	}
	if err := syncNow(); err != nil {
		return nil, err
	}
	base := filepath.Join(h.data, "logs", logName(scen, tool, rep, ""))
	load := loadavg()
	res, err := measure(c, base)
	if err != nil {
		return nil, err
	}
	res.Rep, res.Order, res.Scenario, res.Tool, res.Load = rep, order, scen, tool, load
	if !res.OK() {
		var code int
		fmt.Sscanf(res.Status, "fail(%d)", &code)
		switch {
		case slices.Contains(okExit, code):
			res.Status, res.Note = "ok", fmt.Sprintf("exit %d (warning)", code)
		case tool == "snap" && notImplemented(base) != "":
			res.Status, res.Note = "n/a", "not implemented yet (snap said: "+notImplemented(base)+")"
		default:
			copyLogs(base, h.failLogs)
			res.Note = "failed; logs in " + filepath.Join(h.failLogs, filepath.Base(base)) + ".*"
		}
	}
	h.results = append(h.results, res)
	logf("rep %d %-11s %-6s %-8s wall %7.3f s  cpu %7.3f s  sync %.3f s  %s", rep, scen, tool, res.Status,
		res.Wall, res.CPU(), res.Sync, res.Note)
	return res, nil
}

// notImplemented returns the message by which snap said that (part of) a
// command does not exist yet, or "". snap is written alongside this harness;
// a missing feature is "n/a" in the table rather than a failure.
func notImplemented(logBase string) string {
	for _, msg := range []string{"unknown command", "not implemented", "not available yet"} {
		if grepFile(logBase+".err", msg) || grepFile(logBase+".out", msg) {
			return msg
		}
	}
	return ""
}

// rep runs one repetition of every scenario except forget+prune.
// readAndInitial times reading the tree (the floor for any full backup)
// and every tool's initial backup into a fresh repository.
func (h *harness) readAndInitial(rep int, order []string) error {
	tarCmd := command{argv: []string{"sh", "-c", `tar -cf - "$1" | cat >/dev/null`, "tar", h.tree}}
	if _, err := h.timed(rep, slices.Index(order, "tar"), "read", "tar", tarCmd, nil, h.tree); err != nil {
		return err
	}
	for i, name := range order {
		t, ok := tools[name]
		if !ok || !slices.Contains(h.tools, t) {
			continue
		}
		if _, err := h.newRepo(t, rep); err != nil {
			return err
		}
		if err := h.backup(rep, i, "initial", t); err != nil {
			return err
		}
	}
	return nil
}

func (h *harness) rep(rep int) error {
	order := h.participants(rep)
	logf("rep %d/%d, order: %s", rep, h.reps, strings.Join(order, ", "))

	if err := h.readAndInitial(rep, order); err != nil {
		return err
	}

	for i, name := range order {
		if name == "find" {
			c := command{argv: []string{"sh", "-c", `find "$1" -printf '%s %T@ %C@ %i\n' >/dev/null`, "find", h.tree}}
			if _, err := h.timed(rep, i, "nochange", "find", c, nil, h.tree); err != nil {
				return err
			}
		} else if t, ok := tools[name]; ok && slices.Contains(h.tools, t) {
			if err := h.backup(rep, i, "nochange", t); err != nil {
				return err
			}
		}
	}

	if err := h.mutate(h.seed*100000 + uint64(rep)); err != nil {
		return err
	}
	for i, name := range order {
		if t, ok := tools[name]; ok && slices.Contains(h.tools, t) {
			if err := h.backup(rep, i, "incremental", t); err != nil {
				return err
			}
		}
	}

	if err := h.checkCreates(fmt.Sprintf("rep %d restores", rep), filepath.Join(h.data, "restores")); err != nil {
		return err
	}
	for i, name := range order {
		target := filepath.Join(h.data, "restores", strings.ReplaceAll(name, " ", "")+"-r"+fmt.Sprint(rep))
		if err := os.Mkdir(target, 0o755); err != nil {
			return err
		}
		var res *Result
		var root string
		var err error
		if name == "cp -a" {
			root = filepath.Join(target, filepath.Base(h.tree))
			res, err = h.timed(rep, i, "restore", name, command{argv: []string{"cp", "-a", h.tree, target + "/"}}, nil, h.tree)
		} else if t, ok := tools[name]; ok && slices.Contains(h.tools, t) {
			r := h.repoOf(t, rep)
			var c command
			c, root = t.restore(t, r, h.tree, target)
			res, err = h.timed(rep, i, "restore", name, c, t.okExit, r.dir, r.state)
		} else {
			continue
		}
		if err != nil {
			return err
		}
		if res.OK() {
			h.checkRestore(res, root)
		}
	}
	if h.random != "" {
		return h.randomRep(rep, order)
	}
	return nil
}

// newRepo creates t's fresh repository for rep (init is not timed).
func (h *harness) newRepo(t *tool, rep int) (*repo, error) {
	r, err := h.newRepoNamed(t, rep, "")
	if err == nil {
		h.repos[fmt.Sprintf("%s-r%d", t.name, rep)] = r
	}
	return r, err
}

// newRepoNamed creates a fresh repository of t for rep whose directory
// names end in suffix.
func (h *harness) newRepoNamed(t *tool, rep int, suffix string) (*repo, error) {
	name := t.name + "-r" + fmt.Sprint(rep) + suffix
	r := &repo{dir: filepath.Join(h.data, "repos", name), state: filepath.Join(h.data, "state", name), xattrs: h.xattr}
	if err := os.MkdirAll(r.state, 0o755); err != nil {
		return nil, err
	}
	t.setup(t, r)
	if err := runQuiet(t.init(t, r), filepath.Join(h.data, "logs", logName("init", t.name, rep, suffix))); err != nil {
		return nil, fmt.Errorf("%s init: %w", t.name, err)
	}
	return r, nil
}

// checkRestore records the restored size and compares the restored tree
// with the corpus, which has not changed since the last backup.
func (h *harness) checkRestore(res *Result, root string) {
	if _, err := os.Lstat(root); err != nil {
		res.Status, res.Note = "fail(restore)", "restored tree not found at "+root
		return
	}
	if n, err := duBytes(root); err == nil {
		res.Size = n
	}
	if h.verify == "none" {
		return
	}
	probs, err := verifyRestore(h.tree, root, h.verify == "full")
	if err != nil {
		probs = "error: " + err.Error()
	}
	if probs == "" {
		res.Info = "verify: ok"
		return
	}
	res.Note = strings.TrimPrefix(res.Note+"; verify: "+probs, "; ")
	logf("  %s restore: verify: %s", res.Tool, probs)
}

// backup runs one timed backup of the corpus into t's repository of rep and
// records the repository growth.
func (h *harness) backup(rep, order int, scen string, t *tool) error {
	r := h.repoOf(t, rep)
	before, err := duBytes(r.dir)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("s%d", len(r.snaps)+1)
	res, err := h.timed(rep, order, scen, t.name, t.backup(t, r, h.tree, name), t.okExit, h.tree, r.dir, r.state)
	if err != nil {
		return err
	}
	h.afterBackup(res, r, name, before)
	return nil
}

// afterBackup sizes the repository and keeps snap's own summary.
func (h *harness) afterBackup(res *Result, r *repo, name string, before int64) {
	if res.OK() {
		r.snaps = append(r.snaps, name)
	}
	if after, err := duBytes(r.dir); err == nil {
		res.Size, res.Delta = after, after-before
	}
	if res.Tool == "snap" && res.OK() {
		var sum map[string]any
		dec := json.NewDecoder(strings.NewReader(lastLine(res.Stdout)))
		dec.UseNumber() // print byte counts as integers, not 1.2e+07
		if err := dec.Decode(&sum); err != nil {
			res.Note = "snap printed no JSON summary on its last line"
		} else {
			res.Info = fmt.Sprintf("snap: files_new=%v files_changed=%v bytes_read=%v bytes_added=%v bytes_stored=%v",
				sum["files_new"], sum["files_changed"], sum["bytes_read"], sum["bytes_added"], sum["bytes_stored"])
		}
	}
}

// mutate applies one day of edits to the corpus (untimed) and flushes them.
func (h *harness) mutate(seed uint64) error {
	out, err := exec.Command(h.corpusBin, "mutate", "-seed", fmt.Sprint(seed), h.tree).CombinedOutput()
	if err != nil {
		return fmt.Errorf("corpus mutate: %v\n%s", err, out)
	}
	logf("%s", strings.TrimSpace(string(out)))
	return syncNow()
}

// pruneRep adds h.rounds edit/backup rounds to rep's repositories (every
// tool backs up the same tree state in each round), then times forget+prune
// keeping the last 3. It runs after all other scenarios because rsync's
// prune is a mass delete, which would slow file creation in the next
// scenario (BENCHMARKING.md, trap 1).
func (h *harness) pruneRep(rep int) error {
	order := h.participants(rep)
	logf("rep %d/%d: %d edit/backup rounds, then forget+prune", rep, h.reps, h.rounds)
	for k := 1; k <= h.rounds; k++ {
		if err := h.mutate(h.seed*100000 + uint64(rep)*1000 + uint64(k)); err != nil {
			return err
		}
		for i, name := range order {
			t, ok := tools[name]
			if !ok || !slices.Contains(h.tools, t) {
				continue
			}
			// Not warmed: these runs only prepare the repositories. They are
			// kept in runs.tsv as scenario "round" and left out of the table.
			r := h.repoOf(t, rep)
			before, err := duBytes(r.dir)
			if err != nil {
				return err
			}
			snapName := fmt.Sprintf("s%d", len(r.snaps)+1)
			base := filepath.Join(h.data, "logs", logName("round", t.name, rep, fmt.Sprintf("-%d", k)))
			load := loadavg()
			res, err := measure(t.backup(t, r, h.tree, snapName), base)
			if err != nil {
				return err
			}
			res.Rep, res.Order, res.Scenario, res.Tool, res.Load = rep, i, "round", t.name, load
			var code int
			fmt.Sscanf(res.Status, "fail(%d)", &code)
			if slices.Contains(t.okExit, code) {
				res.Status = "ok"
			}
			if !res.OK() {
				copyLogs(base, h.failLogs)
			}
			h.afterBackup(res, r, snapName, before)
			h.results = append(h.results, res)
		}
	}
	for i, name := range order {
		t, ok := tools[name]
		if !ok || !slices.Contains(h.tools, t) {
			continue
		}
		r := h.repoOf(t, rep)
		before, err := duBytes(r.dir)
		if err != nil {
			return err
		}
		res, err := h.timed(rep, i, "prune", name, t.prune(t, r, 3), t.okExit, r.dir, r.state)
		if err != nil {
			return err
		}
		if after, err := duBytes(r.dir); err == nil {
			res.Size, res.Delta = after, after-before
		}
		if res.OK() {
			r.snaps = r.snaps[max(0, len(r.snaps)-3):]
		}
	}
	return nil
}

// checkCreates waits while file creation in dir is slow (see creates.go) and
// records the speed found for the report.
func (h *harness) checkCreates(what, dir string) error {
	per, waited, err := waitForCreates(dir, what, probeCreates, time.Sleep)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("%s %s", what, per.Round(time.Microsecond))
	if waited > 0 {
		note += fmt.Sprintf(" (after waiting %s)", waited)
	}
	h.creates = append(h.creates, note)
	return nil
}
