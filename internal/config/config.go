// Package config reads snap's job file, config.toml: for each job the
// repository, the directories to back up and how (the options of snap
// create), how long to keep snapshots (the rules of snap forget), when to
// prune and to check, when the job runs, and commands to run around it.
// It also parses cron expressions and turns them into systemd calendar
// events, and keeps each job's state file (last success, last error, when
// prune and check last ran).
//
// Decoding is strict, because a typo in a backup configuration otherwise
// shows up months later as a missing file: an unknown key, a value of the
// wrong type and a value that fails validation are all errors naming the
// file, the line and the key, and a file with any error runs nothing.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"snap/internal/pattern"
	"snap/snapshot"
)

// SystemFile is the config file of system jobs, read by root when root has
// no file of its own.
const SystemFile = "/etc/snap/config.toml"

// DefaultHookTimeout bounds a hook command that sets no hook-timeout.
const DefaultHookTimeout = 10 * time.Minute

// Config is a decoded config file.
type Config struct {
	Path  string          // the file read
	Jobs  map[string]*Job // by name
	Order []string        // job names in the order of the file
}

// Job finds the job called name.
func (c *Config) Job(name string) (*Job, error) {
	if j, ok := c.Jobs[name]; ok {
		return j, nil
	}
	return nil, fmt.Errorf("%s has no job %q; its jobs are %s", c.Path, name, strings.Join(c.Order, ", "))
}

// Flag is a command-line flag of a snap command and its value, as a job's
// settings are handed to create, forget and prune.
type Flag struct {
	Name, Value string
}

// Job is one [jobs.NAME] table. Paths are absolute, with ~ expanded.
type Job struct {
	Name string
	Line int // of the table, for messages

	Repository string
	Sources    []string

	// The options of snap create, under the same names.
	Exclude, IExclude, ExcludeFile, IExcludeFile, ExcludeIfPresent []string
	ExcludeCaches, OneFileSystem, ATime                            bool
	ExcludeLargerThan                                              string
	Tags                                                           []string
	// NamesFrom is the cleartext view of a ciphertext (eCryptfs lower)
	// source, handed to create as --names-from when create has that flag.
	NamesFrom string
	// SSHCommand is --ssh-command for an sftp: repository.
	SSHCommand string

	// Every is when the job runs (the every key), or nil.
	Every *Schedule

	// Retention holds the forget flags of [jobs.NAME.retention], in the
	// order of the file; none means run does not forget.
	Retention []Flag

	// PruneEvery is how often run prunes (0: never); MaxUnused and
	// MaxRepackSize are prune's flags ("" for prune's defaults).
	PruneEvery               time.Duration
	MaxUnused, MaxRepackSize string

	// CheckEvery is how often run checks (0: never), reading part n of
	// CheckParts of the data each time, n rotating.
	CheckEvery time.Duration
	CheckParts int

	// Hook commands, each run by /bin/sh -c.
	Before, After, OnFailure []string
	HookTimeout              time.Duration
}

// CreateFlags returns the job's settings as flags of snap create.
func (j *Job) CreateFlags() []Flag {
	var out []Flag
	add := func(name string, vals ...string) {
		for _, v := range vals {
			out = append(out, Flag{name, v})
		}
	}
	add("exclude", j.Exclude...)
	add("iexclude", j.IExclude...)
	add("exclude-file", j.ExcludeFile...)
	add("iexclude-file", j.IExcludeFile...)
	add("exclude-if-present", j.ExcludeIfPresent...)
	if j.ExcludeCaches {
		add("exclude-caches", "true")
	}
	if j.ExcludeLargerThan != "" {
		add("exclude-larger-than", j.ExcludeLargerThan)
	}
	if j.OneFileSystem {
		add("one-file-system", "true")
	}
	if j.ATime {
		add("atime", "true")
	}
	add("tag", j.Tags...)
	if j.NamesFrom != "" {
		add("names-from", j.NamesFrom)
	}
	return out
}

// PruneFlags returns the job's settings as flags of snap prune.
func (j *Job) PruneFlags() []Flag {
	var out []Flag
	if j.MaxUnused != "" {
		out = append(out, Flag{"max-unused", j.MaxUnused})
	}
	if j.MaxRepackSize != "" {
		out = append(out, Flag{"max-repack-size", j.MaxRepackSize})
	}
	return out
}

// Env is what Locate and Load need from the process environment, passed in
// so that tests can give their own.
type Env struct {
	Getenv func(string) string
	Euid   int
	// SystemFile replaces the SystemFile constant (for tests).
	SystemFile string
}

func (e Env) get(k string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(k)
}

// UserFile is the user's config file: $XDG_CONFIG_HOME/snap/config.toml,
// by default ~/.config/snap/config.toml.
func UserFile(env Env) (string, error) {
	if x := env.get("XDG_CONFIG_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "snap", "config.toml"), nil
	}
	home := env.get("HOME")
	if home == "" {
		return "", errors.New("neither XDG_CONFIG_HOME nor HOME is set, so there is no config file to read; give --config FILE")
	}
	return filepath.Join(home, ".config", "snap", "config.toml"), nil
}

// Locate finds the config file, in this order: flag (--config), then
// $SNAP_CONFIG, then the user's file (UserFile), then, for root only and
// only when root has no file of its own, /etc/snap/config.toml. The path
// returned is absolute: it goes into crontab lines and systemd units, which
// run in another directory.
func Locate(flag string, env Env) (string, error) {
	for _, p := range []string{flag, env.get("SNAP_CONFIG")} {
		if p != "" {
			abs, err := filepath.Abs(p)
			if err != nil {
				return "", fmt.Errorf("config file %s: %w", p, err)
			}
			return abs, nil
		}
	}
	user, err := UserFile(env)
	if err != nil {
		return "", err
	}
	tried := []string{user}
	if _, err := os.Stat(user); err == nil {
		return user, nil
	}
	if env.Euid == 0 {
		system := env.SystemFile
		if system == "" {
			system = SystemFile
		}
		if _, err := os.Stat(system); err == nil {
			return system, nil
		}
		tried = append(tried, system)
	}
	what := tried[0] + " does not exist"
	if len(tried) > 1 {
		what = "neither " + strings.Join(tried, " nor ") + " exists"
	}
	return "", fmt.Errorf("no config file: %s; write one (docs/config-example.toml is an example) or give --config FILE", what)
}

// Error is one problem of a config file.
type Error struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted, e.g. jobs.local.retention.keep-daily; may be empty
	Msg  string
	Err  error // the underlying error, if any
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Key != "" {
		loc += ": " + e.Key
	}
	return loc + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// maxErrors bounds the errors reported for one file; a file with more is
// probably not a config file at all.
const maxErrors = 20

// Load reads and validates the config file at path. A leading ~ in a path
// value is the home directory: env's HOME.
func Load(path string, env Env) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	return Parse(path, data, env)
}

// Parse decodes and validates data, the content of the file path. Every
// problem is an *Error; several are joined with errors.Join in the order of
// the file.
func Parse(path string, data []byte, env Env) (*Config, error) {
	var raw map[string]any
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			// The toml package counts a newline that ends a line as the
			// start of the next, so that "[jobs.a" is an error on the
			// line after it; count from the offset instead.
			line := pe.Position.Line
			if s := pe.Position.Start; s >= 0 && s <= len(data) {
				line = bytes.Count(data[:s], []byte("\n")) + 1
			}
			return nil, &Error{File: path, Line: line, Msg: "not valid TOML: " + pe.Message, Err: err}
		}
		return nil, &Error{File: path, Msg: "not valid TOML: " + err.Error(), Err: err}
	}
	p := &parser{file: path, lines: scanKeys(string(data)), home: env.get("HOME")}
	cfg := &Config{Path: path, Jobs: map[string]*Job{}}
	for _, k := range p.sortedKeys(nil, raw) {
		if k != "jobs" {
			p.unknown(toml.Key{k}, []string{"jobs"})
		}
	}
	jobs, ok := raw["jobs"]
	if !ok {
		p.fail(nil, "no jobs: add a [jobs.NAME] table with at least repository and sources (docs/config-example.toml is an example)")
	} else if tbl, ok := p.table(toml.Key{"jobs"}, jobs); ok {
		for _, k := range md.Keys() {
			if len(k) == 2 && k[0] == "jobs" && !slices.Contains(cfg.Order, k[1]) {
				cfg.Order = append(cfg.Order, k[1])
			}
		}
		if len(tbl) == 0 {
			p.fail(toml.Key{"jobs"}, "no jobs: add a [jobs.NAME] table with at least repository and sources")
		}
		for _, name := range cfg.Order {
			if j := p.job(name, tbl[name]); j != nil {
				cfg.Jobs[name] = j
			}
		}
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return cfg, nil
}

type parser struct {
	file  string
	lines keyLines
	home  string
	errs  []error
}

func (p *parser) fail(key toml.Key, format string, args ...any) {
	p.failErr(key, nil, format, args...)
}

func (p *parser) failErr(key toml.Key, err error, format string, args ...any) {
	if len(p.errs) == maxErrors {
		p.errs = append(p.errs, &Error{File: p.file, Msg: "too many errors; fix these first"})
	}
	if len(p.errs) > maxErrors {
		return
	}
	e := &Error{File: p.file, Msg: fmt.Sprintf(format, args...), Err: err}
	if len(key) > 0 {
		e.Line, e.Key = p.lines.line(key), key.String()
	}
	p.errs = append(p.errs, e)
}

// sortedKeys returns the keys of tbl in the order of the file.
func (p *parser) sortedKeys(prefix toml.Key, tbl map[string]any) []string {
	keys := make([]string, 0, len(tbl))
	for k := range tbl {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		la := p.lines.line(append(slices.Clone(prefix), keys[a]))
		lb := p.lines.line(append(slices.Clone(prefix), keys[b]))
		if la != lb {
			return la < lb
		}
		return keys[a] < keys[b]
	})
	return keys
}

// unknown reports a key that is not one of known, suggesting the closest.
func (p *parser) unknown(key toml.Key, known []string) {
	name := key[len(key)-1]
	best, dist := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < dist {
			best, dist = k, d
		}
	}
	if best != "" {
		p.fail(key, "unknown key; did you mean %s?", best)
		return
	}
	sorted := slices.Clone(known)
	sort.Strings(sorted)
	p.fail(key, "unknown key; the keys here are %s", strings.Join(sorted, ", "))
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// describe names the TOML type of v for messages.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case int64:
		return fmt.Sprintf("the number %d", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case []any:
		return "an array"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	}
	return "a date"
}

func (p *parser) table(key toml.Key, v any) (map[string]any, bool) {
	t, ok := v.(map[string]any)
	if !ok {
		p.fail(key, "want a table ([%s]), got %s", key, describe(v))
	}
	return t, ok
}

func (p *parser) str(key toml.Key, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		p.fail(key, "want a string in quotes, got %s", describe(v))
		return "", false
	}
	if strings.TrimSpace(s) == "" {
		p.fail(key, "is empty; give a value or leave the key out")
		return "", false
	}
	return s, true
}

func (p *parser) strList(key toml.Key, v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok {
		if s, isStr := v.(string); isStr {
			p.fail(key, "want an array of strings: write %s = [%q]", key[len(key)-1], s)
		} else {
			p.fail(key, "want an array of strings, got %s", describe(v))
		}
		return nil, false
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			p.fail(key, "element %d: want a string, got %s", i+1, describe(e))
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func (p *parser) boolean(key toml.Key, v any) bool {
	b, ok := v.(bool)
	if !ok {
		p.fail(key, "want true or false (without quotes), got %s", describe(v))
	}
	return b
}

// path expands a leading ~ and insists on an absolute path: a scheduled
// run starts in another directory than the shell that wrote the file.
func (p *parser) path(key toml.Key, s string) (string, bool) {
	if s == "~" || strings.HasPrefix(s, "~/") {
		if p.home == "" {
			p.fail(key, "%q starts with ~ but HOME is not set; write an absolute path", s)
			return "", false
		}
		s = p.home + s[1:]
	}
	if !filepath.IsAbs(s) {
		p.fail(key, "%q is a relative path; write an absolute path or one starting with ~/ (runs from cron or systemd start in another directory)", s)
		return "", false
	}
	return filepath.Clean(s), true
}

// duration reads prune-every, check-every and hook-timeout.
func (p *parser) duration(key toml.Key, v any) time.Duration {
	s, ok := p.str(key, v)
	if !ok {
		return 0
	}
	d, err := ParseInterval(s)
	if err != nil {
		p.failErr(key, err, "%v", err)
	}
	return d
}

// jobKeys are the keys a [jobs.NAME] table may hold.
var jobKeys = []string{
	"repository", "sources", "exclude", "iexclude", "exclude-file", "iexclude-file",
	"exclude-if-present", "exclude-caches", "exclude-larger-than", "one-file-system",
	"atime", "tags", "names-from", "ssh-command", "every", "retention",
	"prune-every", "max-unused", "max-repack-size", "check-every", "check-subset-parts",
	"before", "after", "on-failure", "hook-timeout",
}

var jobName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// CheckJobName reports whether name can name a job: letters, digits, - and
// _, since it names files and systemd units.
func CheckJobName(name string) error {
	if !jobName.MatchString(name) {
		return fmt.Errorf("job name %q: job names are letters, digits, - and _ (they name files and systemd units), at most 64, starting with a letter or digit", name)
	}
	return nil
}

// remotePrefix matches repository locations that are not paths.
var remotePrefix = regexp.MustCompile(`^[a-z][a-z0-9]*:`)

func (p *parser) job(name string, v any) *Job {
	key := toml.Key{"jobs", name}
	tbl, ok := p.table(key, v)
	if !ok {
		return nil
	}
	errsBefore := len(p.errs)
	if err := CheckJobName(name); err != nil {
		p.failErr(key, err, "%v", err)
	}
	j := &Job{Name: name, Line: p.lines.line(key), HookTimeout: DefaultHookTimeout}
	for _, k := range p.sortedKeys(key, tbl) {
		v := tbl[k]
		kk := append(slices.Clone(key), k)
		switch k {
		case "repository":
			s, ok := p.str(kk, v)
			switch {
			case !ok:
			case strings.HasPrefix(s, "sftp:"), strings.HasPrefix(s, "s3:"), strings.HasPrefix(s, "rest:"):
				j.Repository = s
			case remotePrefix.MatchString(s) && !strings.HasPrefix(s, "~"):
				p.fail(kk, "%q: unknown kind of repository; use a local directory, sftp:[USER@]HOST:PATH or s3:…", s)
			default:
				j.Repository, _ = p.path(kk, s)
			}
		case "sources":
			list, ok := p.strList(kk, v)
			if ok && len(list) == 0 {
				p.fail(kk, "is empty; list the directories to back up")
			}
			for _, s := range list {
				if abs, ok := p.path(kk, s); ok {
					j.Sources = append(j.Sources, abs)
				}
			}
		case "exclude", "iexclude":
			list, ok := p.strList(kk, v)
			for i, pat := range list {
				// ~/ in a pattern would match a directory called "~";
				// the home directory is what anyone writing it means.
				if strings.HasPrefix(pat, "~/") && p.home != "" {
					list[i] = p.home + pat[1:]
				}
			}
			if ok {
				if _, err := pattern.NewList(list, k == "iexclude"); err != nil {
					p.failErr(kk, err, "%v", err)
				}
			}
			if k == "exclude" {
				j.Exclude = list
			} else {
				j.IExclude = list
			}
		case "exclude-file", "iexclude-file", "exclude-if-present":
			list, _ := p.strList(kk, v)
			var out []string
			for _, s := range list {
				if k == "exclude-if-present" {
					if strings.Contains(s, "/") || s == "" {
						p.fail(kk, "%q: want a file name (no /), such as .nobackup", s)
					}
					out = append(out, s)
				} else if abs, ok := p.path(kk, s); ok {
					out = append(out, abs)
				}
			}
			switch k {
			case "exclude-file":
				j.ExcludeFile = out
			case "iexclude-file":
				j.IExcludeFile = out
			default:
				j.ExcludeIfPresent = out
			}
		case "exclude-caches":
			j.ExcludeCaches = p.boolean(kk, v)
		case "one-file-system":
			j.OneFileSystem = p.boolean(kk, v)
		case "atime":
			j.ATime = p.boolean(kk, v)
		case "exclude-larger-than", "max-repack-size":
			if s, ok := p.str(kk, v); ok {
				if _, err := pattern.ParseSize(s); err != nil {
					p.failErr(kk, err, "%v", err)
				} else if k == "exclude-larger-than" {
					j.ExcludeLargerThan = s
				} else {
					j.MaxRepackSize = s
				}
			}
		case "max-unused":
			if s, ok := p.str(kk, v); ok {
				if err := checkMaxUnused(s); err != nil {
					p.failErr(kk, err, "%v", err)
				} else {
					j.MaxUnused = s
				}
			}
		case "tags":
			list, _ := p.strList(kk, v)
			for _, t := range list {
				if t == "" || strings.Contains(t, ",") {
					p.fail(kk, "tag %q: tags are not empty and hold no comma", t)
				}
			}
			j.Tags = list
		case "names-from":
			if s, ok := p.str(kk, v); ok {
				j.NamesFrom, _ = p.path(kk, s)
			}
		case "ssh-command":
			j.SSHCommand, _ = p.str(kk, v)
		case "every":
			if s, ok := p.str(kk, v); ok {
				sched, err := ParseSchedule(s)
				if err != nil {
					p.failErr(kk, err, "%v", err)
				}
				j.Every = sched
			}
		case "retention":
			j.Retention = p.retention(kk, v)
		case "prune-every":
			j.PruneEvery = p.duration(kk, v)
		case "check-every":
			j.CheckEvery = p.duration(kk, v)
		case "hook-timeout":
			if d := p.duration(kk, v); d > 0 {
				j.HookTimeout = d
			}
		case "check-subset-parts":
			n, ok := v.(int64)
			switch {
			case !ok:
				p.fail(kk, "want a whole number (without quotes), got %s", describe(v))
			case n < 1 || n > 10000:
				p.fail(kk, "%d: want 1 (read all data at each check) up to 10000", n)
			default:
				j.CheckParts = int(n)
			}
		case "before", "after", "on-failure":
			var cmds []string
			if s, isStr := v.(string); isStr {
				cmds = []string{s}
			} else if list, ok := p.strList(kk, v); ok {
				cmds = list
			}
			for _, c := range cmds {
				if strings.TrimSpace(c) == "" {
					p.fail(kk, "an empty command; leave it out")
				}
			}
			switch k {
			case "before":
				j.Before = cmds
			case "after":
				j.After = cmds
			default:
				j.OnFailure = cmds
			}
		default:
			p.unknown(kk, jobKeys)
		}
	}
	if _, ok := tbl["repository"]; !ok {
		p.fail(key, "no repository; add repository = \"/path/to/repository\" (or sftp:HOST:PATH)")
	}
	if _, ok := tbl["sources"]; !ok {
		p.fail(key, "no sources; add sources = [\"~/\"] with the directories to back up")
	}
	if _, ok := tbl["check-subset-parts"]; ok {
		if _, ok := tbl["check-every"]; !ok {
			p.fail(append(slices.Clone(key), "check-subset-parts"), "has no effect without check-every; add check-every = \"30d\" (how often to check)")
		}
	}
	if j.CheckEvery > 0 && j.CheckParts == 0 {
		j.CheckParts = 1
	}
	if len(p.errs) > errsBefore {
		return nil
	}
	return j
}

// retentionCounts and retentionDurations are the keys of a retention table:
// snap forget's flags.
var (
	retentionCounts    = []string{"keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly"}
	retentionDurations = []string{"keep-within", "keep-within-hourly", "keep-within-daily", "keep-within-weekly", "keep-within-monthly", "keep-within-yearly"}
)

func (p *parser) retention(key toml.Key, v any) []Flag {
	tbl, ok := p.table(key, v)
	if !ok {
		return nil
	}
	var out []Flag
	errsBefore := len(p.errs)
	rules := 0 // rules that keep something: all zero keeps everything
	for _, k := range p.sortedKeys(key, tbl) {
		v := tbl[k]
		kk := append(slices.Clone(key), k)
		switch {
		case slices.Contains(retentionCounts, k):
			switch x := v.(type) {
			case int64:
				if x < 0 {
					p.fail(kk, "%d is negative; a count is 0 or more, or \"unlimited\"", x)
					continue
				}
				if x > 0 {
					rules++
				}
				out = append(out, Flag{k, strconv.FormatInt(x, 10)})
			case string:
				if !strings.EqualFold(strings.TrimSpace(x), "unlimited") {
					p.fail(kk, "want a number of snapshots (0 or more, without quotes) or \"unlimited\", got %q", x)
					continue
				}
				rules++
				out = append(out, Flag{k, "unlimited"})
			default:
				p.fail(kk, "want a number of snapshots or \"unlimited\", got %s", describe(v))
			}
		case slices.Contains(retentionDurations, k):
			s, ok := p.str(kk, v)
			if !ok {
				continue
			}
			d, err := snapshot.ParseDuration(s)
			if err != nil {
				p.failErr(kk, err, "%v", err)
				continue
			}
			if !d.Zero() {
				rules++
			}
			out = append(out, Flag{k, s})
		case k == "keep-tag":
			list, ok := p.strList(kk, v)
			if ok {
				rules += len(list)
				for _, t := range list {
					out = append(out, Flag{k, t})
				}
			}
		default:
			p.unknown(kk, append(append(slices.Clone(retentionCounts), retentionDurations...), "keep-tag"))
		}
	}
	if rules == 0 && len(p.errs) == errsBefore {
		p.fail(key, "keeps every snapshot (no rule, or every count is 0); add a rule such as keep-daily = 7, or remove the table to keep all snapshots")
	}
	return out
}

// checkMaxUnused validates max-unused as snap prune reads it.
func checkMaxUnused(s string) error {
	t := strings.TrimSpace(s)
	if t == "unlimited" {
		return nil
	}
	if pct, ok := strings.CutSuffix(t, "%"); ok {
		f, err := strconv.ParseFloat(pct, 64)
		if err != nil || f < 0 || f >= 100 {
			return fmt.Errorf("%q: want a percentage below 100%%, a size or \"unlimited\"", s)
		}
		return nil
	}
	if _, err := pattern.ParseSize(t); err != nil {
		return fmt.Errorf("%q: want a percentage (5%%), a size (2G) or \"unlimited\"", s)
	}
	return nil
}

// ParseInterval reads a duration such as 7d, 12h, 2w or 1h30m: Go's
// time.ParseDuration with d (24 hours) and w (7 days) besides h, m and s.
// Unlike keep-within, m is minutes here, as in Go.
func ParseInterval(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	var total time.Duration
	rest := in
	var goPart strings.Builder
	for rest != "" {
		end := 0
		for end < len(rest) && (rest[end] >= '0' && rest[end] <= '9' || rest[end] == '.') {
			end++
		}
		if end == 0 || end == len(rest) {
			return 0, fmt.Errorf("duration %q: want numbers with units, such as 7d, 12h, 2w or 1h30m", s)
		}
		unitEnd := end
		for unitEnd < len(rest) && (rest[unitEnd] < '0' || rest[unitEnd] > '9') && rest[unitEnd] != '.' {
			unitEnd++
		}
		num, unit := rest[:end], rest[end:unitEnd]
		switch unit {
		case "d", "w":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %q is not a number", s, num)
			}
			day := 24 * time.Hour
			if unit == "w" {
				day *= 7
			}
			if f*float64(day) > float64(100*365*24*time.Hour) {
				return 0, fmt.Errorf("duration %q: more than 100 years", s)
			}
			total += time.Duration(f * float64(day))
		default:
			goPart.WriteString(rest[:unitEnd])
		}
		rest = rest[unitEnd:]
	}
	if goPart.Len() > 0 {
		d, err := time.ParseDuration(goPart.String())
		if err != nil {
			return 0, fmt.Errorf("duration %q: want numbers with units w, d, h, m (minutes) or s, such as 7d, 12h or 1h30m", s)
		}
		total += d
	}
	if total <= 0 {
		return 0, fmt.Errorf("duration %q: must be more than 0", s)
	}
	return total, nil
}
