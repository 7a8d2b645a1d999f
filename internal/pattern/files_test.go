package pattern

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "list")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadPatternFile(t *testing.T) {
	cases := []struct {
		name    string
		content string
		want    []string
	}{
		{"empty file", "", nil},
		{"only comments and blanks", "# a\n\n   \n\t# b\n", nil},
		{"plain lines", "*.o\n/home/me/.cache/\n", []string{"*.o", "/home/me/.cache/"}},
		{"no final newline", "a\nb", []string{"a", "b"}},
		{"crlf", "*.o\r\n# c\r\n\r\n/tmp/\r\n", []string{"*.o", "/tmp/"}},
		{"byte order mark", "\xef\xbb\xbf*.o\n", []string{"*.o"}},
		{"trailing blanks trimmed", "trailing   \nt2\t \r\n", []string{"trailing", "t2"}},
		{"leading blanks trimmed", "   lead\n", []string{"lead"}},
		{"escaped trailing blank kept", "escaped\\ \nx\\  \n", []string{`escaped\ `, `x\ `}},
		{"escaped backslash before blank", "x\\\\ \n", []string{`x\\`}},
		{"escaped leading blank kept", "\\ lead\n", []string{`\ lead`}},
		{"hash escape and negation", "\\#notcomment\n!keep.o\n", []string{`\#notcomment`, "!keep.o"}},
		{"inner hash is not a comment", "a#b\n", []string{"a#b"}},
		{"non-UTF-8 and spaces inside", "foo bar\xff.txt\n", []string{"foo bar\xff.txt"}},
	}
	for _, tc := range cases {
		got, err := ReadPatternFile(writeFile(t, tc.content))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		if _, err := NewList(got, false); err != nil {
			t.Errorf("%s: NewList on the result: %v", tc.name, err)
		}
	}

	// The escaped blank really matches a name ending in a blank.
	pats, err := ReadPatternFile(writeFile(t, "/d/name\\ \n"))
	if err != nil {
		t.Fatal(err)
	}
	l, _ := NewList(pats, false)
	if !l.Match("/d/name ", false) || l.Match("/d/name", false) {
		t.Errorf("escaped trailing blank: pattern %q matched wrongly", pats)
	}
}

func TestReadPatternFileErrors(t *testing.T) {
	p := writeFile(t, "ok\n# fine\n[bad\n")
	_, err := ReadPatternFile(p)
	if !errors.Is(err, ErrBadPattern) || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), p) {
		t.Errorf("bad pattern: got %v, want ErrBadPattern naming %s line 3", err, p)
	}
	_, err = ReadPatternFile(writeFile(t, "a\x00b\n"))
	if !errors.Is(err, ErrBadPattern) {
		t.Errorf("NUL: got %v", err)
	}
	_, err = ReadPatternFile(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v, want fs.ErrNotExist", err)
	}
}

func TestReadFilesFrom(t *testing.T) {
	content := strings.Join([]string{
		"/abs/path",
		"rel/file",
		"./x/../y",
		"# comment",
		"",
		"/with space/name\\ ",
		"\\#hash",
		"/trail   ",
		"/a//b/",
		"/glob/*.txt",
		"/back\\slash",
		"\\ lead",
		"/crlf\r",
		"/bytes\xff",
		"",
	}, "\n")
	got, err := ReadFilesFrom(writeFile(t, content), "/work/dir")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/abs/path",
		"/work/dir/rel/file",
		"/work/dir/y",
		"/with space/name ",
		"/work/dir/#hash",
		"/trail",
		"/a/b",
		"/glob/*.txt",
		`/back\slash`,
		"/work/dir/ lead",
		"/crlf",
		"/bytes\xff",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestReadFilesFromErrors(t *testing.T) {
	rel := writeFile(t, "/ok\nrelative\n")
	for _, cwd := range []string{"", "not/absolute"} {
		_, err := ReadFilesFrom(rel, cwd)
		if err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("cwd %q: got %v, want an error naming line 2", cwd, err)
		}
	}
	// Absolute paths need no working directory.
	if got, err := ReadFilesFrom(writeFile(t, "/a\n"), ""); err != nil || len(got) != 1 {
		t.Errorf("absolute only, no cwd: %q, %v", got, err)
	}
	if _, err := ReadFilesFrom(writeFile(t, "/a\x00b\n"), "/"); err == nil {
		t.Errorf("NUL byte accepted")
	}
	if _, err := ReadFilesFrom(filepath.Join(t.TempDir(), "missing"), "/"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v", err)
	}
}

func TestUnescapeEdges(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", "plain"},
		{`a\ `, "a "},
		{`a\ \ `, "a  "},
		{"a \\ ", "a  "},
		{`\#x`, "#x"},
		{`\ x`, " x"},
		{`\x`, `\x`},
		{`x\`, `x\`},
	}
	for _, c := range cases {
		if got := unescapeEdges(c.in); got != c.want {
			t.Errorf("unescapeEdges(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
