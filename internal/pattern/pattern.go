package pattern

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadPattern is wrapped by every error that reports a malformed pattern,
// so callers can test for it with errors.Is.
var ErrBadPattern = errors.New("invalid pattern")

// segment is one component of a compiled pattern.
type segment struct {
	doubleStar bool // "**": any number of whole components
	glob       glob // otherwise: exactly one component
}

// Pattern is one compiled pattern. The zero value matches nothing; use Parse
// or NewList to build one.
type Pattern struct {
	raw      string
	negated  bool
	anchored bool
	dirOnly  bool
	fold     bool
	valid    bool
	segs     []segment
}

// Parse compiles one case-sensitive pattern. A leading '!' marks a negation,
// which Pattern.Match ignores and List applies. Parse fails, with an error
// wrapping ErrBadPattern, on an empty pattern, a NUL byte, a malformed
// character class, a dangling backslash, a ".." component, or a pattern
// without components such as ".".
func Parse(s string) (Pattern, error) {
	return compile(s, false)
}

func compile(s string, fold bool) (Pattern, error) {
	p := Pattern{raw: s, fold: fold}
	if s == "" {
		return Pattern{}, fmt.Errorf("%w: the pattern is empty (remove the empty argument or line)", ErrBadPattern)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return Pattern{}, fmt.Errorf("%w %q: contains a NUL byte, which no path can contain (remove it)", ErrBadPattern, s)
	}
	body := s
	if body[0] == '!' {
		p.negated = true
		body = body[1:]
		if body == "" {
			return Pattern{}, fmt.Errorf("%w %q: nothing follows the negating '!' (write \"\\!\" to match a name starting with '!')", ErrBadPattern, s)
		}
	}
	p.anchored = body[0] == '/'
	p.dirOnly = body[len(body)-1] == '/'

	if !p.anchored {
		// Unanchored patterns match at any depth, exactly as if they began
		// with "**/"; compiling them that way needs no special matching code.
		p.segs = append(p.segs, segment{doubleStar: true})
	}
	comps := 0
	for comp := range strings.SplitSeq(body, "/") {
		switch comp {
		case "", ".":
			// Paths are matched with empty and "." components dropped, so the
			// pattern must drop them too.
			continue
		case "..":
			return Pattern{}, fmt.Errorf("%w %q: \"..\" never occurs in the cleaned paths patterns are matched against (write the path without it)", ErrBadPattern, s)
		case "**":
			comps++
			if n := len(p.segs); n > 0 && p.segs[n-1].doubleStar {
				continue // "**/**" is the same as "**"
			}
			p.segs = append(p.segs, segment{doubleStar: true})
			continue
		}
		g, err := compileGlob(comp, fold, s)
		if err != nil {
			return Pattern{}, err
		}
		p.segs = append(p.segs, segment{glob: g})
		comps++
	}
	if !p.anchored && comps == 0 {
		// Only "." and "/" style components were given, e.g. "." or "./":
		// compiled as "**" that would silently match everything.
		return Pattern{}, fmt.Errorf("%w %q: has no path components (use \"**\" or \"/\" if you really mean everything)", ErrBadPattern, s)
	}
	p.valid = true
	return p, nil
}

// String returns the pattern as it was written.
func (p Pattern) String() string { return p.raw }

// Negated reports whether the pattern started with '!'.
func (p Pattern) Negated() bool { return p.negated }

// Match reports whether the pattern matches path, or one of the directories
// above it. isDir tells whether path itself is a directory; it matters only
// for patterns ending in '/'. Negation is ignored here: List applies it.
// path is slash-separated and absolute, such as "/home/me/x".
func (p Pattern) Match(path string, isDir bool) bool {
	if p.fold {
		path = foldString(path)
	}
	return p.match(path, isDir)
}

// nextComponent returns the first component of p at or after byte i that is
// neither empty nor ".", and the offset just after it.
func nextComponent(p string, i int) (comp string, next int, ok bool) {
	for i < len(p) {
		if p[i] == '/' {
			i++
			continue
		}
		j := strings.IndexByte(p[i:], '/')
		if j < 0 {
			comp, next = p[i:], len(p)
		} else {
			comp, next = p[i:i+j], i+j
		}
		if comp != "." {
			return comp, next, true
		}
		i = next
	}
	return "", len(p), false
}

// The matcher is a small NFA over path components: state i means "the first
// i segments have matched"; a "**" segment loops on any component and can
// also be skipped. A bit set holds the live states, on the stack for the
// patterns anyone writes (fewer than 128 segments).

type states []uint64

func (s states) has(i int) bool { return s[i>>6]&(1<<(uint(i)&63)) != 0 }
func (s states) set(i int)      { s[i>>6] |= 1 << (uint(i) & 63) }

// closure adds the states reachable by skipping "**" segments.
func (p *Pattern) closure(s states) {
	for i, seg := range p.segs {
		if seg.doubleStar && s.has(i) {
			s.set(i + 1)
		}
	}
}

// step feeds one component to the states in cur, writing the result into
// next (which must be clear). It reports whether any state survived.
func (p *Pattern) step(cur, next states, comp string) bool {
	alive := false
	for i, seg := range p.segs {
		if !cur.has(i) {
			continue
		}
		switch {
		case seg.doubleStar:
			next.set(i)
			alive = true
		case seg.glob.match(comp, p.fold):
			next.set(i + 1)
			alive = true
		}
	}
	p.closure(next)
	return alive
}

// walk runs the NFA over the components of path. It returns matched when the
// whole pattern matched the full path or an ancestor of it (full tells which),
// and alive when, at the end of the path, some partial match is still going.
func (p *Pattern) walk(path string) (matched, full, alive bool) {
	if !p.valid {
		return false, false, false
	}
	n := len(p.segs)
	words := (n + 1 + 63) / 64
	var buf [4]uint64
	var cur, next states
	if 2*words <= len(buf) {
		cur, next = buf[:words], buf[words:2*words]
	} else {
		all := make(states, 2*words)
		cur, next = all[:words], all[words:]
	}
	cur.set(0)
	p.closure(cur)
	comp, i, more := nextComponent(path, 0)
	for {
		if cur.has(n) {
			// An ancestor (or the path itself) matched. Ancestors are always
			// directories, so a trailing '/' in the pattern is satisfied.
			return true, !more, true
		}
		if !more {
			return false, false, true
		}
		clear(next)
		if !p.step(cur, next, comp) {
			return false, false, false
		}
		cur, next = next, cur
		comp, i, more = nextComponent(path, i)
	}
}

// match is Match on an already folded path.
func (p *Pattern) match(path string, isDir bool) bool {
	matched, full, _ := p.walk(path)
	if !matched {
		return false
	}
	return !full || !p.dirOnly || isDir
}

// matchBelow reports whether the pattern could match some path strictly
// below the directory dir (already folded). It errs on the side of yes: a
// glob that no real name can satisfy still counts as possible.
func (p *Pattern) matchBelow(dir string) bool {
	matched, _, alive := p.walk(dir)
	return matched || alive
}
