package pattern

import (
	"errors"
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

type matchCase struct {
	patterns []string
	ci       bool
	path     string
	dir      bool
	want     bool
}

var matchCases = []matchCase{
	// Patterns without '/' match the name in any directory, and below it.
	{[]string{"*.o"}, false, "/src/a.o", false, true},
	{[]string{"*.o"}, false, "/a.o", false, true},
	{[]string{"*.o"}, false, "/src/a.oo", false, false},
	{[]string{"*.o"}, false, "/src/a.o/inner", false, true},
	{[]string{".cache"}, false, "/home/me/.cache", true, true},
	{[]string{".cache"}, false, "/home/me/.cache/x/y", false, true},
	{[]string{".cache"}, false, "/home/me/.cacheX", true, false},
	{[]string{"node_modules"}, false, "/p/node_modules/lodash/index.js", false, true},
	{[]string{"foo"}, false, "/dir/foobar", false, false},
	{[]string{"foo"}, false, "/dir/barfoo", false, false},
	{[]string{".*"}, false, "/home/.bashrc", false, true},
	{[]string{".*"}, false, "/home/x", false, false},

	// A leading '/' anchors at the root.
	{[]string{"/bin"}, false, "/bin/bash", false, true},
	{[]string{"/bin"}, false, "/usr/bin", true, false},
	{[]string{"/bin"}, false, "/usr/bin/restic", false, false},
	{[]string{"/home/me"}, false, "/home/me", true, true},
	{[]string{"/home/me"}, false, "/home/meX", true, false},
	{[]string{"/home/me"}, false, "/home", true, false},
	{[]string{"/"}, false, "/x/y", false, true},
	{[]string{"/home"}, false, "/", true, false},

	// A '/' inside: a sequence of components at any depth.
	{[]string{"foo/bar"}, false, "/x/foo/bar", false, true},
	{[]string{"foo/bar"}, false, "/foo/bar/baz", false, true},
	{[]string{"foo/bar"}, false, "/x/foo/y/bar", false, false},
	{[]string{"foo/bar"}, false, "/x/foobar", false, false},

	// Wildcards stay within one component.
	{[]string{"b*ash"}, false, "/bin/bash", false, true},
	{[]string{"b*ash"}, false, "/bin/ash", false, false},
	{[]string{"/a*c"}, false, "/ab/c", false, false},
	{[]string{"/home/*/.cache"}, false, "/home/me/.cache", true, true},
	{[]string{"/home/*/.cache"}, false, "/home/a/b/.cache", true, false},
	{[]string{"/a/*/c"}, false, "/a/b/c", false, true},
	{[]string{"/a/*/c"}, false, "/a/c", false, false},
	{[]string{"/tmp/?.txt"}, false, "/tmp/a.txt", false, true},
	{[]string{"/tmp/?.txt"}, false, "/tmp/ab.txt", false, false},
	{[]string{"/tmp/?.txt"}, false, "/tmp/é.txt", false, true},
	{[]string{"/tmp/[abc].log"}, false, "/tmp/b.log", false, true},
	{[]string{"/tmp/[abc].log"}, false, "/tmp/d.log", false, false},
	{[]string{"[^abc].log"}, false, "/x/d.log", false, true},
	{[]string{"[^abc].log"}, false, "/x/a.log", false, false},
	{[]string{"file[0-9]"}, false, "/file7", false, true},
	{[]string{"file[0-9]"}, false, "/filex", false, false},
	{[]string{`/a/\*`}, false, "/a/*", false, true},
	{[]string{`/a/\*`}, false, "/a/b", false, false},
	{[]string{`[\]]x`}, false, "/]x", false, true},
	{[]string{"a**b"}, false, "/x/aXYb", false, true},
	{[]string{"a**b"}, false, "/x/a/b", false, false},

	// "**" at the start, middle and end.
	{[]string{"/home/**/cache"}, false, "/home/cache", true, true},
	{[]string{"/home/**/cache"}, false, "/home/me/cache", true, true},
	{[]string{"/home/**/cache"}, false, "/home/a/b/c/cache", true, true},
	{[]string{"/home/**/cache"}, false, "/home/a/cache/x", false, true},
	{[]string{"/home/**/cache"}, false, "/home/a/cachex", false, false},
	{[]string{"/home/**/cache"}, false, "/var/home/x/cache", false, false},
	{[]string{"**/*.tmp"}, false, "/x.tmp", false, true},
	{[]string{"**/*.tmp"}, false, "/a/b/c.tmp", false, true},
	{[]string{"**/*.tmp"}, false, "/a/b/c.tmp.bak", false, false},
	{[]string{"/a/**"}, false, "/a", true, true},
	{[]string{"/a/**"}, false, "/a/b/c", false, true},
	{[]string{"/a/**"}, false, "/ab", false, false},
	{[]string{"/a/**"}, false, "/b/a", false, false},
	{[]string{"foo/**/bar"}, false, "/dir1/foo/dir2/bar/file", false, true},
	{[]string{"foo/**/bar"}, false, "/foo/bar/file", false, true},
	{[]string{"foo/**/bar"}, false, "/tmp/foo/bar", false, true},
	{[]string{"foo/**/bar"}, false, "/foo/x/baz", false, false},
	{[]string{"/**/a/**/b"}, false, "/x/a/y/z/b", false, true},
	{[]string{"/**/a/**/b"}, false, "/a/b", false, true},
	{[]string{"/**/a/**/b"}, false, "/b/a", false, false},
	{[]string{"**"}, false, "/anything/at/all", false, true},
	{[]string{"/x/**/**/y"}, false, "/x/y", false, true},

	// A trailing '/' matches directories only (and what is below them).
	{[]string{"build/"}, false, "/p/build", true, true},
	{[]string{"build/"}, false, "/p/build", false, false},
	{[]string{"build/"}, false, "/p/build/out.o", false, true},
	{[]string{"/tmp/"}, false, "/tmp", true, true},
	{[]string{"/tmp/"}, false, "/tmp/x", false, true},
	{[]string{"*.d/"}, false, "/x/y.d", true, true},
	{[]string{"*.d/"}, false, "/x/y.d", false, false},

	// Negation: the last matching pattern wins.
	{[]string{"*.log", "!keep.log"}, false, "/a/keep.log", false, false},
	{[]string{"*.log", "!keep.log"}, false, "/a/x.log", false, true},
	{[]string{"!keep.log", "*.log"}, false, "/a/keep.log", false, true},
	{[]string{"/home/me/*", "!/home/me/docs"}, false, "/home/me/docs/a.txt", false, false},
	{[]string{"/home/me/*", "!/home/me/docs"}, false, "/home/me/music", true, true},
	{[]string{"/home/me/*", "!/home/me/docs"}, false, "/home/me", true, false},
	{[]string{"/home/me/*", "!/home/me/docs", "*.tmp"}, false, "/home/me/docs/x.tmp", false, true},
	{[]string{"!foo"}, false, "/foo", false, false},
	{[]string{"/a", "!/a/b"}, false, "/a", true, true},
	{[]string{"/a", "!/a/b"}, false, "/a/b", false, false},
	{[]string{"/a", "!/a/b"}, false, "/a/c", false, true},
	{[]string{"/usr/*/bin", "!/usr/local/bin"}, false, "/usr/local/bin/x", false, false},
	{[]string{"/usr/*/bin", "!/usr/local/bin"}, false, "/usr/share/bin", true, true},
	{[]string{`\!x`}, false, "/d/!x", false, true},
	{[]string{`\!x`}, false, "/d/x", false, false},
	{[]string{"!!x"}, false, "/d/!x", false, false},

	// Case-insensitive lists.
	{[]string{"*.JPG"}, true, "/Photos/IMG.jpg", false, true},
	{[]string{"*.JPG"}, true, "/a.Jpg", false, true},
	{[]string{"*.JPG"}, false, "/a.jpg", false, false},
	{[]string{"/Users/Me"}, true, "/users/ME/x", false, true},
	{[]string{"[A-C]*.txt"}, true, "/b.TXT", false, true},
	{[]string{"[A-C]*.txt"}, true, "/d.txt", false, false},
	{[]string{"[^a]x"}, true, "/Ax", false, false},
	{[]string{"ÄRGER"}, true, "/ärger", false, true},
	{[]string{"\xffABC"}, true, "/\xffabc", false, true},
	{[]string{"\xffABC"}, true, "/\xfeabc", false, false},

	// Bytes that are not UTF-8, and newlines, are ordinary characters.
	{[]string{"/data/\xff*"}, false, "/data/\xff\xfename", false, true},
	{[]string{"/data/\xff*"}, false, "/data/\xfe", false, false},
	{[]string{"/d/?"}, false, "/d/\xff", false, true},
	{[]string{"/d/?"}, false, "/d/\xff\xfe", false, false},
	{[]string{"/d/[\xfe-\xff]"}, false, "/d/\xfe", false, true},
	{[]string{"/d/[\xfe-\xff]"}, false, "/d/\uFFFD", false, false},
	{[]string{"/d/\uFFFD"}, false, "/d/\xff", false, false},
	{[]string{"foo\nbar"}, false, "/x/foo\nbar", false, true},
	{[]string{"*.txt"}, false, "/a/line1\nline2.txt", false, true},
	{[]string{"/a/?"}, false, "/a/\n", false, true},

	// Nothing is expanded: "$HOME" and "~" are ordinary names.
	{[]string{"$HOME/x"}, false, "/a/$HOME/x", false, true},
	{[]string{"$HOME/x"}, false, "/home/me/x", false, false},
	{[]string{"~/x"}, false, "/home/me/x", false, false},
	{[]string{"~/x"}, false, "/d/~/x", false, true},

	// Empty and "." components are ignored on both sides.
	{[]string{"/a/b"}, false, "/a//b/", true, true},
	{[]string{"/a/b"}, false, "/a/./b", false, true},
	{[]string{"/a//./b"}, false, "/a/b", false, true},
	{[]string{"./x"}, false, "/deep/x", false, true},
}

func TestListMatch(t *testing.T) {
	for _, tc := range matchCases {
		l, err := NewList(tc.patterns, tc.ci)
		if err != nil {
			t.Errorf("NewList(%q): %v", tc.patterns, err)
			continue
		}
		if got := l.Match(tc.path, tc.dir); got != tc.want {
			t.Errorf("NewList(%q, ci=%v).Match(%q, dir=%v) = %v, want %v", tc.patterns, tc.ci, tc.path, tc.dir, got, tc.want)
		}
	}
}

// A single plain pattern must agree with Pattern.Match, which the list is
// built from.
func TestPatternMatchAgreesWithList(t *testing.T) {
	for _, tc := range matchCases {
		if len(tc.patterns) != 1 || tc.ci || strings.HasPrefix(tc.patterns[0], "!") {
			continue
		}
		p, err := Parse(tc.patterns[0])
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.patterns[0], err)
		}
		if got := p.Match(tc.path, tc.dir); got != tc.want {
			t.Errorf("Parse(%q).Match(%q, %v) = %v, want %v", tc.patterns[0], tc.path, tc.dir, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	bad := []string{
		"",
		"!",
		"a\x00b",
		"[",
		"[a",
		"a[]",
		"[^]",
		"[]a]",
		"[a-",
		"[z-a]",
		"[-a]",
		"[a-]",
		`foo\`,
		`[\`,
		`a\/b`,
		"..",
		"/a/../b",
		".",
		"./",
		"!.",
		"x/[a/b]",
	}
	for _, s := range bad {
		_, err := Parse(s)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", s)
			continue
		}
		if !errors.Is(err, ErrBadPattern) {
			t.Errorf("Parse(%q) error %v does not wrap ErrBadPattern", s, err)
		}
		if _, err := NewList([]string{"ok", s}, true); !errors.Is(err, ErrBadPattern) {
			t.Errorf("NewList with %q: error %v, want ErrBadPattern", s, err)
		}
	}

	good := []string{"/", "//", "**", "/**", "a/**", `[\]a]`, `\!foo`, "[^a]", `[\-]`, "[a-a]", "!/x/", "a**b", "/.", `\\`, "[\xfe-\xff]"}
	for _, s := range good {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
}

func TestParseAccessors(t *testing.T) {
	p, err := Parse("!/a/b/")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Negated() || p.String() != "!/a/b/" {
		t.Errorf("Negated() = %v, String() = %q", p.Negated(), p.String())
	}
	// Pattern.Match ignores negation.
	if !p.Match("/a/b", true) {
		t.Errorf("negated pattern: Match(/a/b) = false, want true")
	}
	var zero Pattern
	if zero.Match("/a", true) {
		t.Errorf("zero Pattern matched")
	}
}

// The component syntax must agree with path.Match wherever both accept a
// pattern (snap rejects reversed ranges, which path.Match silently accepts).
func TestGlobAgreesWithPathMatch(t *testing.T) {
	pats := []string{"a*b", "*", "?", "??", "[a-c]x", "[^a-c]x", `\*`, "a?c", "*.go", `[\-]`, `[a\]]`,
		"*a*b*c", "ä?", "[α-ω]*", "**", "*x*", "a*", "*a", "[^ä]", `\a\b`, "x[0-9][0-9]"}
	names := []string{"abc", "ab", "a", "xbx", "-", "]", "ä1", "βeta", "main.go", "aXbYc", "cba", "axbxc",
		"x", "xx", "ä", "x12", "x1a", "*", "bx", "dx", "aab"}
	n := 0
	for _, pat := range pats {
		// Anchored below /dir so that the pattern cannot match "dir" itself.
		p, err := Parse("/dir/" + pat)
		if err != nil {
			t.Fatalf("Parse(%q): %v", pat, err)
		}
		for _, name := range names {
			want, err := path.Match(pat, name)
			if err != nil {
				continue
			}
			n++
			if got := p.Match("/dir/"+name, false); got != want {
				t.Errorf("pattern %q name %q: got %v, path.Match says %v", pat, name, got, want)
			}
		}
	}
	if n < 100 {
		t.Errorf("only %d comparisons ran", n)
	}
}

type prefixCase struct {
	patterns []string
	ci       bool
	dir      string
	want     bool
}

var prefixCases = []prefixCase{
	{[]string{"/home/me/docs/*.txt"}, false, "/", true},
	{[]string{"/home/me/docs/*.txt"}, false, "/home", true},
	{[]string{"/home/me/docs/*.txt"}, false, "/home/me", true},
	{[]string{"/home/me/docs/*.txt"}, false, "/home/me/docs", true},
	{[]string{"/home/me/docs/*.txt"}, false, "/etc", false},
	{[]string{"/home/me/docs/*.txt"}, false, "/home/you", false},
	{[]string{"/home/me/docs/*.txt"}, false, "/home/me/docs/sub", false},
	{[]string{"/home/me/docs/*.txt"}, false, "/home/me/docs/sub.txt", true},
	{[]string{"*.txt"}, false, "/etc", true},
	{[]string{"*.txt"}, false, "/a/b", true},
	{[]string{"/home/me/docs"}, false, "/home/me/docs", true},
	{[]string{"/home/me/docs"}, false, "/home/me/docs/x", true},
	{[]string{"/home/me/docs"}, false, "/home/me/doc", false},
	{[]string{"/home/**/cache"}, false, "/home/a/b", true},
	{[]string{"/home/**/cache"}, false, "/var", false},
	{[]string{"/home/me", "!/home/me/tmp"}, false, "/home/me/tmp", false},
	{[]string{"/home/me", "!/home/me/tmp"}, false, "/home/me/tmp/x", false},
	{[]string{"/home/me", "!/home/me/tmp"}, false, "/home/me", true},
	{[]string{"/home/me", "!/home/me/tmp", "*.txt"}, false, "/home/me/tmp", true},
	{[]string{"!/x"}, false, "/", false},
	{[]string{"/Home/Me"}, true, "/home", true},
	{[]string{"/Home/Me"}, true, "/HOME/me/x", true},
	{[]string{"/Home/Me"}, false, "/home", false},
	{[]string{"/a/b/"}, false, "/a", true},
	{[]string{"/a/b/"}, false, "/a/b", true},
	{nil, false, "/", false},
}

func TestListMatchPrefix(t *testing.T) {
	for _, tc := range prefixCases {
		l, err := NewList(tc.patterns, tc.ci)
		if err != nil {
			t.Fatalf("NewList(%q): %v", tc.patterns, err)
		}
		if got := l.MatchPrefix(tc.dir); got != tc.want {
			t.Errorf("NewList(%q, ci=%v).MatchPrefix(%q) = %v, want %v", tc.patterns, tc.ci, tc.dir, got, tc.want)
		}
	}
}

// A small tree used to check List invariants exhaustively.
var treeDirs = []string{"/", "/home", "/home/me", "/home/me/docs", "/home/me/docs/old", "/home/me/.cache",
	"/home/you", "/etc", "/a", "/a/b", "/a/b/c", "/x/foo/bar"}

var treeNames = []string{"a.txt", "b.TXT", "cache", "bar", "tmp", "c", "x\xff", "n\nl"}

func treePaths() []string {
	var out []string
	for _, d := range treeDirs {
		for _, n := range treeNames {
			out = append(out, strings.TrimSuffix(d, "/")+"/"+n)
		}
	}
	return out
}

var invariantLists = [][]string{
	{"/home/me/docs/*.txt"},
	{"*.txt"},
	{"/home/**/cache"},
	{"/home/me", "!/home/me/docs"},
	{"/home/me/*", "!/home/me/docs", "*.tmp"},
	{"**/b/*"},
	{"foo/bar"},
	{"c/"},
	{"!/a", "/a/b"},
	{"x?", "!/etc/**"},
	{"/a/**", "!c", "/a/b/c/tmp"},
}

// MatchPrefix must never say no when something below the directory matches.
func TestMatchPrefixIsSound(t *testing.T) {
	paths := append(treePaths(), treeDirs...)
	for _, ci := range []bool{false, true} {
		for _, pats := range invariantLists {
			l, err := NewList(pats, ci)
			if err != nil {
				t.Fatal(err)
			}
			for _, dir := range treeDirs {
				if l.MatchPrefix(dir) {
					continue
				}
				prefix := strings.TrimSuffix(dir, "/") + "/"
				for _, p := range paths {
					if !strings.HasPrefix(p, prefix) {
						continue
					}
					for _, isDir := range []bool{false, true} {
						if l.Match(p, isDir) {
							t.Errorf("list %q ci=%v: MatchPrefix(%q) = false but Match(%q, %v) = true", pats, ci, dir, p, isDir)
						}
					}
				}
			}
		}
	}
}

// Without negations, a matched directory implies every path below it
// matches: that is what lets callers skip whole subtrees.
func TestMatchedDirCoversSubtree(t *testing.T) {
	for _, pats := range invariantLists {
		if strings.Contains(strings.Join(pats, "\x00"), "!") {
			continue
		}
		l, err := NewList(pats, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range treeDirs {
			if !l.Match(dir, true) {
				continue
			}
			for _, n := range treeNames {
				p := strings.TrimSuffix(dir, "/") + "/" + n
				if !l.Match(p, false) {
					t.Errorf("list %q: Match(%q, dir) but not Match(%q)", pats, dir, p)
				}
			}
		}
	}
}

func TestListAppendAndEmpty(t *testing.T) {
	var nilList *List
	if !nilList.Empty() || nilList.Match("/a", false) || nilList.MatchPrefix("/") || nilList.Len() != 0 {
		t.Errorf("nil list is not empty and inert")
	}
	empty, err := NewList(nil, false)
	if err != nil || !empty.Empty() {
		t.Fatalf("NewList(nil) = %v, %v", empty, err)
	}

	ex, _ := NewList([]string{"*.log"}, false)
	iex, _ := NewList([]string{"!KEEP.LOG"}, true)
	both := ex.Append(iex)
	if both.Len() != 2 || ex.Len() != 1 || iex.Len() != 1 {
		t.Fatalf("Append changed its inputs or lost patterns: %d %d %d", both.Len(), ex.Len(), iex.Len())
	}
	// The appended case-insensitive negation wins over the earlier pattern,
	// and the case-sensitive pattern keeps its case sensitivity.
	if both.Match("/x/keep.log", false) {
		t.Errorf("appended !KEEP.LOG did not re-include keep.log")
	}
	if !both.Match("/x/other.log", false) || both.Match("/x/OTHER.LOG", false) {
		t.Errorf("*.log lost its case sensitivity after Append")
	}
	// The other order: the later *.log wins.
	if !iex.Append(ex).Match("/x/keep.log", false) {
		t.Errorf("later *.log did not win over earlier negation")
	}
	if got := nilList.Append(ex); got.Len() != 1 || !got.Match("/a.log", false) {
		t.Errorf("nil.Append(ex) = %v", got)
	}
	if got := ex.Append(nil); got.Len() != 1 {
		t.Errorf("ex.Append(nil) = %v", got)
	}
	if s := both.String(); s != `["*.log" "!KEEP.LOG"]` {
		t.Errorf("String() = %s", s)
	}
}

func TestFoldString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"abc", "abc"},
		{"ABC", "abc"},
		{"ÄÖÜ", "äöü"},
		{"A\xffB", "a\xffb"},
		{"\xff\xfe", "\xff\xfe"},
	}
	for _, c := range cases {
		got := foldString(c.in)
		if got != c.want {
			t.Errorf("foldString(%q) = %q, want %q", c.in, got, c.want)
		}
		if utf8.ValidString(c.in) && got != strings.ToLower(c.in) {
			t.Errorf("foldString(%q) = %q differs from strings.ToLower", c.in, got)
		}
	}
}

// Long names and many stars must not make matching slow.
func TestNoBacktrackingBlowup(t *testing.T) {
	p, err := Parse("/" + strings.Repeat("a*", 30) + "b")
	if err != nil {
		t.Fatal(err)
	}
	if p.Match("/"+strings.Repeat("a", 5000), false) {
		t.Errorf("matched a name without b")
	}
	deep := strings.Repeat("/x", 2000)
	q, err := Parse("/**/x/**/x/**/x/**/y")
	if err != nil {
		t.Fatal(err)
	}
	if q.Match(deep, false) {
		t.Errorf("matched a path without y")
	}
	// More than 128 segments takes the heap path of the state set.
	long := strings.Repeat("/x", 200)
	r, err := Parse(long)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Match(long+"/z", false) || r.Match(long[:len(long)-2], true) {
		t.Errorf("200-component pattern matched wrongly")
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range matchCases {
		for _, p := range tc.patterns {
			f.Add(p)
		}
	}
	for _, s := range []string{"", "!", "[", `\`, "[^]", "/**/", "**/**", "[\xff-\xfe]", "a/../b"} {
		f.Add(s)
	}
	paths := []string{"/", "/a", "/a/b", "/home/me/x.txt", "/A/B/c.TXT", "/\xff/\n", "//x//y/", "/a/./b"}
	f.Fuzz(func(t *testing.T, s string) {
		for _, ci := range []bool{false, true} {
			p, err := compile(s, ci)
			if err != nil {
				if !errors.Is(err, ErrBadPattern) {
					t.Fatalf("compile(%q) error %v does not wrap ErrBadPattern", s, err)
				}
				continue
			}
			l, err := NewList([]string{s}, ci)
			if err != nil {
				t.Fatalf("compile accepted %q but NewList did not: %v", s, err)
			}
			for _, path := range paths {
				for _, isDir := range []bool{false, true} {
					m := p.Match(path, isDir)
					if l.Match(path, isDir) != (m && !p.Negated()) {
						t.Fatalf("%q: List.Match and Pattern.Match disagree on %q", s, path)
					}
					// A matched directory covers its subtree.
					if m && isDir && !p.Match(path+"/zz", false) {
						t.Fatalf("%q matches dir %q but not %q/zz", s, path, path)
					}
				}
				// MatchPrefix is sound for a single positive pattern.
				if !p.Negated() && p.Match(path+"/zz", false) && !l.MatchPrefix(path) {
					t.Fatalf("%q matches %q/zz but MatchPrefix(%q) is false", s, path, path)
				}
			}
		}

		// A plain one-component pattern agrees with path.Match on valid
		// UTF-8 names.
		if s == "" || s == "." || strings.ContainsAny(s, "/\x00") || !utf8.ValidString(s) {
			return
		}
		// Anchored below /d so that the pattern cannot match "d" itself.
		p, err := Parse("/d/" + s)
		if err != nil {
			return
		}
		for _, name := range []string{"a", "ab", "abc", "x.txt", "ä", "-", "]", "[", "*", s} {
			want, err := path.Match(s, name)
			if err != nil {
				return
			}
			if got := p.Match("/d/"+name, false); got != want {
				t.Fatalf("pattern %q name %q: got %v, path.Match says %v", s, name, got, want)
			}
		}
	})
}
