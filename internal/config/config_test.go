package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func testEnv(home string) Env {
	return Env{Getenv: func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}}
}

// TestExample parses and validates the example that ships in docs.
func TestExample(t *testing.T) {
	cfg, err := Load("../../docs/config-example.toml", testEnv("/home/me"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Order, []string{"local", "offsite"}) {
		t.Fatalf("jobs %v, want local, offsite in file order", cfg.Order)
	}
	local, off := cfg.Jobs["local"], cfg.Jobs["offsite"]
	if local.Repository != "/mnt/backup/snap" || !slices.Equal(local.Sources, []string{"/home/me"}) {
		t.Errorf("local: repository %q, sources %q", local.Repository, local.Sources)
	}
	if local.Every == nil || local.Every.Interval() != time.Hour || off.Every == nil || off.Every.Interval() != 24*time.Hour {
		t.Errorf("every: local %v, offsite %v", local.Every, off.Every)
	}
	if local.PruneEvery != 7*24*time.Hour || local.CheckEvery != 7*24*time.Hour || local.CheckParts != 4 || local.MaxUnused != "10%" {
		t.Errorf("local prune/check: %v %v %d %q", local.PruneEvery, local.CheckEvery, local.CheckParts, local.MaxUnused)
	}
	wantRet := []Flag{{"keep-hourly", "24"}, {"keep-daily", "7"}, {"keep-weekly", "5"}, {"keep-monthly", "12"}}
	if !slices.Equal(local.Retention, wantRet) {
		t.Errorf("local retention %v, want %v", local.Retention, wantRet)
	}
	create := local.CreateFlags()
	for _, f := range []Flag{{"exclude", ".Private"}, {"exclude-caches", "true"}, {"one-file-system", "true"}, {"tag", "local"}, {"exclude-larger-than", "4G"}} {
		if !slices.Contains(create, f) {
			t.Errorf("local create flags %v lack %v", create, f)
		}
	}
	if !strings.HasPrefix(off.Repository, "sftp:") || off.NamesFrom != "/home/me/Private" || off.CheckParts != 5 ||
		len(off.OnFailure) != 1 || off.HookTimeout != time.Minute || off.MaxRepackSize != "2G" {
		t.Errorf("offsite: %+v", off)
	}
	if !slices.Contains(off.CreateFlags(), Flag{"names-from", "/home/me/Private"}) {
		t.Errorf("offsite create flags %v lack names-from", off.CreateFlags())
	}
}

const goodJob = `[jobs.a]
repository = "/r"
sources = ["/s"]
`

// TestErrors: each mistake is one error naming the file, the line and the
// key, and explaining what to write instead.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // substrings of the error
	}{
		{"typo", goodJob + "exclude-cache = true\n", []string{"config.toml:4: jobs.a.exclude-cache: unknown key; did you mean exclude-caches?"}},
		{"typo in retention", goodJob + "[jobs.a.retention]\nkeep-dialy = 3\n", []string{"config.toml:5: jobs.a.retention.keep-dialy: unknown key; did you mean keep-daily?"}},
		{"unknown top-level", "job = 1\n" + goodJob, []string{"config.toml:1: job: unknown key; did you mean jobs?"}},
		{"no repository", "# jobs\n\n[jobs.a]\nsources = [\"/s\"]\n", []string{"config.toml:3: jobs.a: no repository"}},
		{"no sources", "[jobs.a]\nrepository = \"/r\"\n", []string{"config.toml:1: jobs.a: no sources"}},
		{"no jobs", "# nothing\n", []string{"config.toml: no jobs"}},
		{"negative keep", goodJob + "[jobs.a.retention]\nkeep-last = 2\nkeep-daily = -3\n", []string{"config.toml:6: jobs.a.retention.keep-daily: -3 is negative"}},
		{"keep as float", goodJob + "[jobs.a.retention]\nkeep-daily = 1.5\n", []string{"config.toml:5: jobs.a.retention.keep-daily: want a number of snapshots"}},
		{"keep word", goodJob + "[jobs.a.retention]\nkeep-daily = \"all\"\n", []string{`config.toml:5: jobs.a.retention.keep-daily: want a number of snapshots (0 or more, without quotes) or "unlimited", got "all"`}},
		{"bad within", goodJob + "[jobs.a.retention]\nkeep-within = \"7w\"\n", []string{"config.toml:5: jobs.a.retention.keep-within: invalid duration", "unknown unit"}},
		{"empty retention", goodJob + "[jobs.a.retention]\nkeep-daily = 0\n", []string{"config.toml:4: jobs.a.retention: keeps every snapshot"}},
		{"relative source", "[jobs.a]\nrepository = \"/r\"\nsources = [\n  \"/ok\",\n  \"docs\",\n]\n", []string{`config.toml:3: jobs.a.sources: "docs" is a relative path`}},
		{"relative repository", "[jobs.a]\nrepository = \"backup\"\nsources = [\"/s\"]\n", []string{`config.toml:2: jobs.a.repository: "backup" is a relative path`}},
		{"unknown scheme", "[jobs.a]\nrepository = \"b2:bucket\"\nsources = [\"/s\"]\n", []string{"jobs.a.repository: \"b2:bucket\": unknown kind of repository"}},
		{"bad cron", goodJob + "every = \"61 * * * *\"\n", []string{`config.toml:4: jobs.a.every: invalid schedule "61 * * * *": minute 61 is out of range 0-59`}},
		{"cron fields", goodJob + "every = \"0 0 * *\"\n", []string{"config.toml:4: jobs.a.every:", "has 5 fields", "this has 4"}},
		{"string for list", "[jobs.a]\nrepository = \"/r\"\nsources = \"/s\"\n", []string{`config.toml:3: jobs.a.sources: want an array of strings: write sources = ["/s"]`}},
		{"string for bool", goodJob + "exclude-caches = \"yes\"\n", []string{`config.toml:4: jobs.a.exclude-caches: want true or false (without quotes), got the string "yes"`}},
		{"string for int", goodJob + "check-every = \"30d\"\ncheck-subset-parts = \"5\"\n", []string{`config.toml:5: jobs.a.check-subset-parts: want a whole number (without quotes), got the string "5"`}},
		{"parts without every", goodJob + "check-subset-parts = 5\n", []string{"config.toml:4: jobs.a.check-subset-parts: has no effect without check-every"}},
		{"bad interval", goodJob + "prune-every = \"weekly\"\n", []string{`config.toml:4: jobs.a.prune-every: duration "weekly"`}},
		{"bad size", goodJob + "exclude-larger-than = \"big\"\n", []string{"config.toml:4: jobs.a.exclude-larger-than: invalid size"}},
		{"bad max-unused", goodJob + "max-unused = \"150%\"\n", []string{"config.toml:4: jobs.a.max-unused:", "below 100%"}},
		{"bad pattern", goodJob + "exclude = [\"a/../b\"]\n", []string{"config.toml:4: jobs.a.exclude: invalid pattern"}},
		{"job name", "[jobs.\"a b\"]\nrepository = \"/r\"\nsources = [\"/s\"]\n", []string{`config.toml:1: jobs."a b": job name "a b"`}},
		{"job not a table", "[jobs]\na = 3\n", []string{"config.toml:2: jobs.a: want a table"}},
		{"syntax", goodJob + "[jobs.b\n", []string{"config.toml:4: not valid TOML"}},
		{"empty hook", goodJob + "before = [\"true\", \"  \"]\n", []string{"config.toml:4: jobs.a.before: an empty command"}},
		{"inline table", "jobs.b = { repository = \"/r\", sources = [\"/s\"], bogus = 1 }\n", []string{"config.toml:1: jobs.b.bogus: unknown key"}},
		{"after multi-line string", goodJob + "before = '''\nbogus = 1\n[jobs.x]\n'''\nbogus = 2\n", []string{"config.toml:8: jobs.a.bogus: unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("/etc/config.toml", []byte(tc.doc), testEnv("/home/me"))
			if err == nil {
				t.Fatalf("no error for\n%s", tc.doc)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks %q", err, w)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error", err)
			}
		})
	}
}

// TestSeveralErrors: every problem of a file is reported, in file order.
func TestSeveralErrors(t *testing.T) {
	doc := "[jobs.a]\nrepository = \"/r\"\nsources = [\"rel\"]\nevery = \"bad\"\n[jobs.b]\nsources = [\"/s\"]\n"
	_, err := Parse("c.toml", []byte(doc), testEnv("/h"))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"c.toml:3: jobs.a.sources", "c.toml:4: jobs.a.every", "c.toml:5: jobs.b: no repository"}
	if len(lines) != len(want) {
		t.Fatalf("errors:\n%v\nwant %d lines", err, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want prefix %q", i+1, lines[i], w)
		}
	}
}

func TestValues(t *testing.T) {
	doc := `[jobs.a]
repository = "~/repo"
sources = ["~", "/srv/../data/"]
exclude = ["~/.cache", "*.tmp"]
before = "mount /mnt"
after = ["sync", "umount /mnt"]
hook-timeout = "90s"
check-every = "2w"
ssh-command = "ssh -i key"
atime = true

[jobs.a.retention]
keep-last = "unlimited"
keep-within-daily = "7d"
keep-tag = ["keep", "a,b"]
`
	cfg, err := Parse("c.toml", []byte(doc), testEnv("/home/me"))
	if err != nil {
		t.Fatal(err)
	}
	j := cfg.Jobs["a"]
	if j.Repository != "/home/me/repo" || !slices.Equal(j.Sources, []string{"/home/me", "/data"}) {
		t.Errorf("paths: %q %q", j.Repository, j.Sources)
	}
	if !slices.Equal(j.Exclude, []string{"/home/me/.cache", "*.tmp"}) {
		t.Errorf("exclude %q", j.Exclude)
	}
	if !slices.Equal(j.Before, []string{"mount /mnt"}) || len(j.After) != 2 || j.HookTimeout != 90*time.Second {
		t.Errorf("hooks %q %q %v", j.Before, j.After, j.HookTimeout)
	}
	if j.CheckEvery != 14*24*time.Hour || j.CheckParts != 1 || j.SSHCommand != "ssh -i key" {
		t.Errorf("check %v %d, ssh %q", j.CheckEvery, j.CheckParts, j.SSHCommand)
	}
	want := []Flag{{"keep-last", "unlimited"}, {"keep-within-daily", "7d"}, {"keep-tag", "keep"}, {"keep-tag", "a,b"}}
	if !slices.Equal(j.Retention, want) {
		t.Errorf("retention %v, want %v", j.Retention, want)
	}
	if !slices.Contains(j.CreateFlags(), Flag{"atime", "true"}) {
		t.Errorf("create flags %v lack atime", j.CreateFlags())
	}
	if j.Every != nil || j.PruneEvery != 0 {
		t.Errorf("unset keys: every %v, prune-every %v", j.Every, j.PruneEvery)
	}
}

// TestKeyLines: the scanner finds every key the toml package reports, on
// the right line, past strings, arrays and comments that look like keys.
func TestKeyLines(t *testing.T) {
	doc := `# [jobs.fake] in a comment
title = "a # not a comment"   # but this is
[ jobs . "quoted.name" ]
multi = """
x = 1
[jobs.inside]
"""
lit = '''
y = 2'''
arr = [
  "a", # comment ]
  [1, 2],
  { p = 1 },
]
when = 1979-05-27 07:32:00Z
dotted . key = true
inline = { a = 1, b = { c = "}" } }

[jobs.b]
'k\ey' = 1
"\u0041" = 2
[[list]]
x = 1
[[list]]
x = 2
`
	var raw map[string]any
	md, err := toml.Decode(doc, &raw)
	if err != nil {
		t.Fatal(err)
	}
	lines := scanKeys(doc)
	want := map[string]int{
		"title": 2, `jobs."quoted.name"`: 3, `jobs."quoted.name".multi`: 4, `jobs."quoted.name".lit`: 8,
		`jobs."quoted.name".arr`: 10, `jobs."quoted.name".when`: 15,
		`jobs."quoted.name".dotted.key`: 16, `jobs."quoted.name".inline`: 17, `jobs."quoted.name".inline.b.c`: 17,
		"jobs.b": 19, `jobs.b."k\\ey"`: 20, "jobs.b.A": 21, "list": 22, "list.x": 23,
	}
	for _, k := range md.Keys() {
		l := lines.line(k)
		if l == 0 {
			t.Errorf("key %s: no line", k)
		}
		if w, ok := want[k.String()]; ok && l != w {
			t.Errorf("key %s: line %d, want %d", k, l, w)
		}
		delete(want, k.String())
	}
	for k := range want {
		t.Errorf("key %s is not in the document's keys", k)
	}
	// Tables made by a dotted key are not among the document's keys, but
	// an error about one needs a line too.
	if l := lines.line(toml.Key{"jobs", "quoted.name", "dotted"}); l != 16 {
		t.Errorf("implicit table of a dotted key: line %d, want 16", l)
	}
}

func TestLocate(t *testing.T) {
	dir := t.TempDir()
	user := filepath.Join(dir, "xdg", "snap", "config.toml")
	system := filepath.Join(dir, "etc-snap.toml")
	vars := map[string]string{"HOME": filepath.Join(dir, "home"), "XDG_CONFIG_HOME": filepath.Join(dir, "xdg")}
	env := Env{Getenv: func(k string) string { return vars[k] }, Euid: 1000, SystemFile: system}

	if _, err := Locate("", env); err == nil || !strings.Contains(err.Error(), user+" does not exist") {
		t.Errorf("no file: %v", err)
	}
	os.WriteFile(system, []byte(goodJob), 0o644)
	if _, err := Locate("", env); err == nil {
		t.Error("a user other than root read the system file")
	}
	env.Euid = 0
	if p, err := Locate("", env); p != system || err != nil {
		t.Errorf("root without a file of its own: %q, %v; want %s", p, err, system)
	}
	os.MkdirAll(filepath.Dir(user), 0o755)
	os.WriteFile(user, []byte(goodJob), 0o644)
	if p, _ := Locate("", env); p != user {
		t.Errorf("root with its own file: %q, want %s", p, user)
	}
	vars["XDG_CONFIG_HOME"] = ""
	if p, _ := Locate("", env); p != system {
		t.Errorf("~/.config/snap/config.toml does not exist, so root gets %s; got %q", system, p)
	}
	vars["SNAP_CONFIG"] = "rel.toml"
	if p, _ := Locate("", env); !filepath.IsAbs(p) || filepath.Base(p) != "rel.toml" {
		t.Errorf("SNAP_CONFIG: %q, want it made absolute", p)
	}
	if p, _ := Locate("/flag.toml", env); p != "/flag.toml" {
		t.Errorf("--config: %q", p)
	}
}

func TestParseInterval(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "12h": 12 * time.Hour, "1d12h": 36 * time.Hour,
		"90m": 90 * time.Minute, "1h30m": 90 * time.Minute, " 30s ": 30 * time.Second, "1.5d": 36 * time.Hour,
	} {
		if got, err := ParseInterval(in); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "7", "d", "weekly", "0d", "-1d", "7x", "1000000w"} {
		if got, err := ParseInterval(in); err == nil {
			t.Errorf("%q: %v, want an error", in, got)
		}
	}
}

// FuzzParse: no input makes Parse (and the key scanner behind its messages)
// panic or hang, and every key of a document that parses has a line.
func FuzzParse(f *testing.F) {
	f.Add([]byte(goodJob))
	f.Add([]byte("[jobs.a]\nx = [1, {a = 1}, '''\n]\n'''] # c\ny = { b = [ \"}\" ] }\n"))
	f.Add([]byte("a = }]\n[[b]]\n'c'.\"d\" = 1979-05-27 07:32:00\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		scanKeys(string(data))
		var raw map[string]any
		md, err := toml.Decode(string(data), &raw)
		Parse("f.toml", data, testEnv("/h"))
		if err != nil {
			return
		}
		lines := scanKeys(string(data))
		for _, k := range md.Keys() {
			if lines.line(k) == 0 {
				t.Errorf("key %s: no line in %q", k, data)
			}
		}
	})
}
