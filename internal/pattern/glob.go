package pattern

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// rawBase is added to a byte that is not part of valid UTF-8 to give it a
// character value of its own. Keeping such bytes apart from every rune
// (including U+FFFD) is what makes matching of non-UTF-8 names exact.
const rawBase = utf8.MaxRune + 1

// decodeChar returns the first character of s and its width in bytes: a rune
// for valid UTF-8, rawBase+b for a stray byte b. It returns (0, 0) for "".
func decodeChar(s string) (rune, int) {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && n <= 1 {
		if n == 0 {
			return 0, 0
		}
		return rawBase + rune(s[0]), 1
	}
	return r, n
}

type itemKind uint8

const (
	itemLiteral itemKind = iota // fixed text
	itemAny                     // '?'
	itemStar                    // '*'
	itemClass                   // '[...]'
)

// item is one element of a compiled component glob.
type item struct {
	kind  itemKind
	lit   string    // itemLiteral
	class charClass // itemClass
}

type charRange struct{ lo, hi rune }

type charClass struct {
	negated bool
	ranges  []charRange
}

func (c *charClass) contains(ch rune) bool {
	for _, r := range c.ranges {
		if r.lo <= ch && ch <= r.hi {
			return true
		}
	}
	return false
}

// matches reports whether ch is accepted by the class. With fold set, ch is
// already lowercased, so every rune of its case-folding orbit is tried: that
// lets "[A-Z]" match a lowercased "q" without rewriting the class.
func (c *charClass) matches(ch rune, fold bool) bool {
	in := c.contains(ch)
	if !in && fold && ch < rawBase {
		for f := unicode.SimpleFold(ch); f != ch; f = unicode.SimpleFold(f) {
			if c.contains(f) {
				in = true
				break
			}
		}
	}
	return in != c.negated
}

// glob is one compiled path component.
type glob []item

// compileGlob compiles one component (no '/' inside). With fold set, literal
// text is lowercased so that it can be compared with a lowercased name.
// pat is the whole pattern, used only in error messages.
func compileGlob(comp string, fold bool, pat string) (glob, error) {
	var g glob
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			s := lit.String()
			if fold {
				s = foldString(s)
			}
			g = append(g, item{kind: itemLiteral, lit: s})
			lit.Reset()
		}
	}
	for i := 0; i < len(comp); {
		switch comp[i] {
		case '*':
			flush()
			// Consecutive stars mean the same as one; merging them keeps
			// backtracking linear.
			if len(g) == 0 || g[len(g)-1].kind != itemStar {
				g = append(g, item{kind: itemStar})
			}
			i++
		case '?':
			flush()
			g = append(g, item{kind: itemAny})
			i++
		case '\\':
			if i+1 >= len(comp) {
				return nil, fmt.Errorf("%w %q: backslash at the end of component %q escapes nothing (write \"\\\\\" for a literal backslash; '/' cannot be escaped)", ErrBadPattern, pat, comp)
			}
			_, n := decodeChar(comp[i+1:])
			lit.WriteString(comp[i+1 : i+1+n])
			i += 1 + n
		case '[':
			flush()
			cls, n, err := parseClass(comp[i:], pat)
			if err != nil {
				return nil, err
			}
			g = append(g, item{kind: itemClass, class: cls})
			i += n
		default:
			lit.WriteByte(comp[i])
			i++
		}
	}
	flush()
	return g, nil
}

// parseClass parses the class at the start of s (s[0] == '[') and returns it
// with the number of bytes it used.
func parseClass(s, pat string) (charClass, int, error) {
	var c charClass
	i := 1
	if i < len(s) && s[i] == '^' {
		c.negated = true
		i++
	}
	for {
		if i >= len(s) {
			return c, 0, fmt.Errorf("%w %q: character class %q is not closed (end it with ']', or write \"\\[\" for a literal '['; a class cannot contain '/')", ErrBadPattern, pat, s)
		}
		if s[i] == ']' && len(c.ranges) > 0 {
			return c, i + 1, nil
		}
		lo, n, err := classChar(s[i:], s, pat)
		if err != nil {
			return c, 0, err
		}
		i += n
		hi := lo
		if i < len(s) && s[i] == '-' {
			hi, n, err = classChar(s[i+1:], s, pat)
			if err != nil {
				return c, 0, err
			}
			i += 1 + n
			if hi < lo {
				return c, 0, fmt.Errorf("%w %q: range in character class %q runs backwards (write the lower end first)", ErrBadPattern, pat, s)
			}
		}
		c.ranges = append(c.ranges, charRange{lo, hi})
	}
}

// classChar reads one possibly escaped character of a class.
func classChar(s, class, pat string) (rune, int, error) {
	switch {
	case s == "":
		return 0, 0, fmt.Errorf("%w %q: character class %q is not closed (end it with ']')", ErrBadPattern, pat, class)
	case s[0] == ']':
		return 0, 0, fmt.Errorf("%w %q: character class %q is empty (write \"\\]\" to match a literal ']')", ErrBadPattern, pat, class)
	case s[0] == '-':
		return 0, 0, fmt.Errorf("%w %q: character class %q has a '-' that is not part of a range (write \"\\-\" for a literal '-')", ErrBadPattern, pat, class)
	case s[0] == '\\':
		if len(s) < 2 {
			return 0, 0, fmt.Errorf("%w %q: character class %q ends with a backslash (end it with ']')", ErrBadPattern, pat, class)
		}
		r, n := decodeChar(s[1:])
		return r, 1 + n, nil
	}
	r, n := decodeChar(s)
	return r, n, nil
}

// match reports whether the glob matches the whole component name. With fold
// set, name must already be lowercased by foldString.
//
// It is the usual wildcard algorithm that remembers only the last star: the
// text between two stars is matched at its leftmost position, which is
// always safe because the later star can absorb anything the earlier one
// would have. That keeps the worst case at O(len(g)*len(name)).
func (g glob) match(name string, fold bool) bool {
	gi, ni := 0, 0
	starGI, starNI := -1, 0
	for {
		if gi < len(g) {
			it := &g[gi]
			switch it.kind {
			case itemStar:
				if gi == len(g)-1 {
					return true // a final star takes the rest
				}
				starGI, starNI = gi, ni
				gi++
				continue
			case itemLiteral:
				if strings.HasPrefix(name[ni:], it.lit) {
					ni += len(it.lit)
					gi++
					continue
				}
			case itemAny:
				if ni < len(name) {
					_, n := decodeChar(name[ni:])
					ni += n
					gi++
					continue
				}
			case itemClass:
				if ni < len(name) {
					ch, n := decodeChar(name[ni:])
					if it.class.matches(ch, fold) {
						ni += n
						gi++
						continue
					}
				}
			}
		} else if ni == len(name) {
			return true
		}
		// Mismatch: let the last star absorb one more character and retry.
		if starGI < 0 || starNI >= len(name) {
			return false
		}
		_, n := decodeChar(name[starNI:])
		starNI += n
		gi, ni = starGI+1, starNI
	}
}

// foldString lowercases s rune by rune like strings.ToLower, but keeps bytes
// that are not valid UTF-8 unchanged: strings.ToLower would turn every such
// byte into U+FFFD and so make distinct non-UTF-8 names compare equal.
func foldString(s string) string {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			break
		}
	}
	if i == len(s) {
		return s // plain lowercase ASCII: nothing to do, no allocation
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteByte(s[i])
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
		i += n
	}
	return b.String()
}
