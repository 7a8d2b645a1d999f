package pattern

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ReadPatternFile reads the patterns of an --exclude-file (or
// --iexclude-file), one per line, in file order.
//
//   - "\n" and "\r\n" line ends are both accepted, and a UTF-8 byte order
//     mark at the start of the file is skipped.
//   - Leading and trailing spaces and tabs are trimmed, as restic does, except
//     a trailing blank escaped with a backslash ("name\ "), which the pattern
//     syntax then reads as a literal blank. A leading blank is kept by
//     escaping it ("\ name").
//   - Lines that are then empty, and lines starting with '#', are ignored;
//     write "\#" to start a pattern with a literal '#'.
//
// Every pattern is checked with Parse, and an error names the file and line.
// "-" (standard input) is not handled here.
func ReadPatternFile(path string) ([]string, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, line := range lines {
		s, ok := cleanLine(line)
		if !ok {
			continue
		}
		if _, err := Parse(s); err != nil {
			return nil, fmt.Errorf("pattern file %s, line %d: %w", path, i+1, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// ReadFilesFrom reads a --files-from list: one literal path per line, with
// no globbing and no escapes except the ones below. Lines are cleaned as by
// ReadPatternFile (line ends, blank lines, '#' comments, surrounding blanks),
// and then:
//
//   - a backslash before a blank that would otherwise have been trimmed is
//     removed and the blank kept ("name\ " is "name "), and a leading "\#",
//     "\ " or "\<tab>" loses its backslash; every other backslash is literal;
//   - a relative path is resolved against cwd, which must then be absolute;
//   - each path is cleaned with filepath.Clean.
//
// Names containing a newline cannot be listed this way. "-" (standard input)
// is not handled here.
func ReadFilesFrom(path, cwd string) ([]string, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, line := range lines {
		s, ok := cleanLine(line)
		if !ok {
			continue
		}
		s = unescapeEdges(s)
		if strings.IndexByte(s, 0) >= 0 {
			return nil, fmt.Errorf("files-from list %s, line %d: contains a NUL byte, which no path can contain (is this a NUL-separated list? convert it to one path per line)", path, i+1)
		}
		if !filepath.IsAbs(s) {
			if !filepath.IsAbs(cwd) {
				return nil, fmt.Errorf("files-from list %s, line %d: relative path %q needs an absolute working directory to resolve against, got %q (list absolute paths instead)", path, i+1, s, cwd)
			}
			s = filepath.Join(cwd, s)
		}
		out = append(out, filepath.Clean(s))
	}
	return out, nil
}

// readLines returns the lines of the file without their line ends.
func readLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read list file: %w (check the file name given on the command line)", err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(data) == 0 {
		return nil, nil
	}
	text := strings.TrimSuffix(string(data), "\n") // no phantom line after the last "\n"
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines, nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// cleanLine trims a line of a list file and reports whether anything is left
// that is not a comment.
func cleanLine(line string) (string, bool) {
	s := strings.TrimLeft(line, " \t")
	if s == "" || s[0] == '#' {
		return "", false
	}
	end := len(s)
	for end > 0 && isBlank(s[end-1]) {
		// A blank after an odd number of backslashes is escaped, so it and
		// everything before it stay.
		bs := 0
		for k := end - 2; k >= 0 && s[k] == '\\'; k-- {
			bs++
		}
		if bs%2 == 1 {
			break
		}
		end--
	}
	return s[:end], true
}

// unescapeEdges removes the backslashes that protected a leading '#' or
// blank, or trailing blanks, of a literal path (see ReadFilesFrom).
func unescapeEdges(s string) string {
	if len(s) >= 2 && s[0] == '\\' && (s[1] == '#' || isBlank(s[1])) {
		s = s[1:]
	}
	end := len(s)
	var tail []byte
	for end >= 2 && isBlank(s[end-1]) && s[end-2] == '\\' {
		tail = append(tail, s[end-1])
		end -= 2
	}
	if tail == nil {
		return s
	}
	// tail was collected back to front.
	for i, j := 0, len(tail)-1; i < j; i, j = i+1, j-1 {
		tail[i], tail[j] = tail[j], tail[i]
	}
	return s[:end] + string(tail)
}
