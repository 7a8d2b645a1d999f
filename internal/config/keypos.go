package config

import (
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyLines records the line on which each key of a TOML document is
// defined. The toml package knows these positions but exports them only
// inside the first error it returns, and the errors this package reports
// (unknown keys, wrong types, values that fail validation) come after a
// successful parse, so the document is scanned a second time here.
//
// The scanner assumes a document the toml package has parsed without
// error: it skips values (strings of all four kinds, arrays spanning lines,
// inline tables) only far enough to find the next key, and never judges
// validity. Keys are in toml.Key.String form ("jobs.local.keep-daily").
type keyLines struct {
	explicit map[string]int // [table] headers and keys given with "="
	implicit map[string]int // tables created by a dotted key or a deeper header
}

// line returns the line of key, or of its nearest ancestor that has one
// (a key inside an inline table in an array has none of its own), or 0.
func (k keyLines) line(key toml.Key) int {
	for n := len(key); n > 0; n-- {
		s := key[:n].String()
		if l, ok := k.explicit[s]; ok {
			return l
		}
		if l, ok := k.implicit[s]; ok {
			return l
		}
	}
	return 0
}

// scanKeys indexes the keys of src.
func scanKeys(src string) keyLines {
	s := &keyScanner{src: src, line: 1, out: keyLines{explicit: map[string]int{}, implicit: map[string]int{}}}
	s.document()
	return s.out
}

type keyScanner struct {
	src  string
	pos  int
	line int
	out  keyLines
}

func (s *keyScanner) eof() bool { return s.pos >= len(s.src) }

func (s *keyScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.pos]
}

func (s *keyScanner) hasPrefix(p string) bool { return strings.HasPrefix(s.src[s.pos:], p) }

// advance moves past n bytes, counting newlines.
func (s *keyScanner) advance(n int) {
	for i := 0; i < n && !s.eof(); i++ {
		if s.src[s.pos] == '\n' {
			s.line++
		}
		s.pos++
	}
}

func (s *keyScanner) skipBlanks() {
	for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
		s.pos++
	}
}

// skipLine moves past the rest of the line, including its newline.
func (s *keyScanner) skipLine() {
	for !s.eof() && s.src[s.pos] != '\n' {
		s.pos++
	}
	s.advance(1)
}

// skipSpace moves past blanks, newlines and comments, as allowed between
// the elements of an array.
func (s *keyScanner) skipSpace() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r', '\n':
			s.advance(1)
		case '#':
			for !s.eof() && s.src[s.pos] != '\n' {
				s.pos++
			}
		default:
			return
		}
	}
}

func (s *keyScanner) record(key toml.Key, line int, explicit bool) {
	for n := 1; n < len(key); n++ {
		k := key[:n].String()
		if _, ok := s.out.implicit[k]; !ok {
			s.out.implicit[k] = line
		}
	}
	k := key.String()
	if explicit {
		if _, ok := s.out.explicit[k]; !ok {
			s.out.explicit[k] = line
		}
	} else if _, ok := s.out.implicit[k]; !ok {
		s.out.implicit[k] = line
	}
}

func (s *keyScanner) document() {
	var table toml.Key
	for !s.eof() {
		s.skipBlanks()
		switch c := s.peek(); {
		case c == '\n' || c == '\r' || c == '#':
			s.skipLine()
		case c == '[':
			line := s.line
			s.pos++
			if s.peek() == '[' {
				s.pos++
			}
			s.skipBlanks()
			table = s.key()
			s.record(table, line, true)
			s.skipLine()
		case c == 0:
			return
		default:
			line := s.line
			key := append(append(toml.Key{}, table...), s.key()...)
			s.record(key, line, true)
			s.skipBlanks()
			if s.peek() == '=' {
				s.pos++
				s.skipBlanks()
				s.value(key)
			}
			s.skipLine()
		}
	}
}

// key reads a possibly dotted key and leaves the scanner after it.
func (s *keyScanner) key() toml.Key {
	var k toml.Key
	for !s.eof() {
		s.skipBlanks()
		switch s.peek() {
		case '"':
			k = append(k, s.basicString())
		case '\'':
			s.pos++
			end := strings.IndexAny(s.src[s.pos:], "'\n")
			if end < 0 {
				end = len(s.src) - s.pos
			}
			k = append(k, s.src[s.pos:s.pos+end])
			s.pos += end
			if s.peek() == '\'' {
				s.pos++
			}
		default:
			start := s.pos
			for !s.eof() && isBare(s.peek()) {
				s.pos++
			}
			if s.pos == start {
				return k // not a key: leave the rest to the caller
			}
			k = append(k, s.src[start:s.pos])
		}
		s.skipBlanks()
		if s.peek() != '.' {
			return k
		}
		s.pos++
	}
	return k
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// basicString reads a one-line "..." string and returns its decoded value.
func (s *keyScanner) basicString() string {
	s.pos++ // opening quote
	var b strings.Builder
	for !s.eof() {
		c := s.src[s.pos]
		switch {
		case c == '"':
			s.pos++
			return b.String()
		case c == '\n':
			return b.String()
		case c == '\\' && s.pos+1 < len(s.src):
			s.pos++
			e := s.src[s.pos]
			s.pos++
			switch e {
			case 'b':
				b.WriteByte('\b')
			case 't':
				b.WriteByte('\t')
			case 'n':
				b.WriteByte('\n')
			case 'f':
				b.WriteByte('\f')
			case 'r':
				b.WriteByte('\r')
			case 'e':
				b.WriteByte(0x1b)
			case 'u', 'U', 'x':
				n := map[byte]int{'u': 4, 'U': 8, 'x': 2}[e]
				if s.pos+n <= len(s.src) {
					if v, err := strconv.ParseUint(s.src[s.pos:s.pos+n], 16, 32); err == nil {
						b.WriteRune(rune(v))
						s.pos += n
					}
				}
			default: // \" and \\
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
			s.pos++
		}
	}
	return b.String()
}

// value skips one value; keys inside an inline table are recorded under
// key. Inline tables inside arrays are skipped without recording: their keys
// belong to array elements, which have no key path of their own.
func (s *keyScanner) value(key toml.Key) {
	switch {
	case s.hasPrefix(`"""`):
		s.multiline(`"""`, true)
	case s.hasPrefix(`'''`):
		s.multiline(`'''`, false)
	case s.peek() == '"':
		s.basicString()
	case s.peek() == '\'':
		s.pos++
		for !s.eof() && s.peek() != '\'' && s.peek() != '\n' {
			s.pos++
		}
		if s.peek() == '\'' {
			s.pos++
		}
	case s.peek() == '[':
		s.pos++
		for {
			s.skipSpace()
			if s.eof() || s.peek() == ']' {
				s.pos++
				return
			}
			before := s.pos
			s.value(nil)
			s.skipSpace()
			if s.peek() == ',' {
				s.pos++
			} else if s.pos == before { // not valid TOML; do not loop forever
				s.pos++
			}
		}
	case s.peek() == '{':
		s.pos++
		for {
			s.skipSpace()
			if s.eof() || s.peek() == '}' {
				s.pos++
				return
			}
			line := s.line
			sub := s.key()
			if len(sub) == 0 { // not valid TOML; do not loop forever
				s.pos++
				continue
			}
			if key != nil {
				s.record(append(append(toml.Key{}, key...), sub...), line, true)
			}
			s.skipBlanks()
			if s.peek() == '=' {
				s.pos++
			}
			s.skipSpace()
			var inner toml.Key
			if key != nil {
				inner = append(append(toml.Key{}, key...), sub...)
			}
			before := s.pos
			s.value(inner)
			s.skipSpace()
			if s.peek() == ',' {
				s.pos++
			} else if s.pos == before {
				s.pos++
			}
		}
	default: // number, bool, date-time (which may hold a blank)
		for !s.eof() && !strings.ContainsRune(",]}#\r\n", rune(s.peek())) {
			s.pos++
		}
	}
}

// multiline skips a multi-line string, basic or literal (delim is three
// double or three single quotes). The closing delimiter may be
// followed by up to two more quotes that belong to the content.
func (s *keyScanner) multiline(delim string, escapes bool) {
	s.advance(3)
	for !s.eof() {
		if escapes && s.peek() == '\\' {
			s.advance(2)
			continue
		}
		if s.hasPrefix(delim) {
			s.advance(3)
			for i := 0; i < 2 && s.peek() == delim[0]; i++ {
				s.pos++
			}
			return
		}
		s.advance(1)
	}
}
