package pattern

import "fmt"

// List is an ordered set of patterns, each selecting paths or, when written
// with a leading '!', deselecting them again. For each path the last pattern
// that matches decides. A nil *List is a valid empty list.
type List struct {
	patterns []Pattern
	hasFold  bool // some pattern is case-insensitive: fold the path once
}

// NewList compiles patterns in order. With caseInsensitive set (--iexclude)
// every pattern ignores case; see the package documentation for what that
// covers. The error names the first bad pattern and wraps ErrBadPattern.
func NewList(patterns []string, caseInsensitive bool) (*List, error) {
	l := &List{patterns: make([]Pattern, 0, len(patterns))}
	for _, s := range patterns {
		p, err := compile(s, caseInsensitive)
		if err != nil {
			return nil, err
		}
		l.patterns = append(l.patterns, p)
	}
	l.hasFold = caseInsensitive && len(patterns) > 0
	return l, nil
}

// Append returns a new list holding l's patterns followed by other's; neither
// list is changed, and either may be nil. Each pattern keeps its own case
// sensitivity, so an --exclude list and an --iexclude list can be combined.
// Because the last matching pattern wins, a negation in other can re-include
// what l selected, but not the reverse.
//
// The flag parser does not record how values of different flags were
// interleaved on the command line, so that order cannot be kept. snap uses a
// fixed order instead: one case-sensitive list from the --exclude values
// followed by the lines of each --exclude-file, then appended to it the
// case-insensitive list from --iexclude and --iexclude-file. A negation thus
// overrides patterns earlier in its own list, and an --iexclude negation also
// overrides every case-sensitive pattern.
func (l *List) Append(other *List) *List {
	out := &List{}
	for _, src := range []*List{l, other} {
		if src == nil {
			continue
		}
		out.patterns = append(out.patterns, src.patterns...)
		out.hasFold = out.hasFold || src.hasFold
	}
	return out
}

// Empty reports whether the list has no patterns. An empty list matches
// nothing, so callers treat an empty include list as "include everything"
// themselves.
func (l *List) Empty() bool {
	return l == nil || len(l.patterns) == 0
}

// Len returns the number of patterns in the list.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return len(l.patterns)
}

// String lists the patterns as written, for messages and debugging.
func (l *List) String() string {
	if l == nil {
		return "[]"
	}
	s := make([]string, len(l.patterns))
	for i, p := range l.patterns {
		s[i] = p.raw
	}
	return fmt.Sprintf("%q", s)
}

// folded returns path lowercased if any pattern needs it.
func (l *List) folded(path string) string {
	if l.hasFold {
		return foldString(path)
	}
	return path
}

// Match reports whether path is selected by the list: excluded, for an
// exclude list; wanted, for an include list. A pattern that matches a
// directory matches everything below it, so when Match selects a directory
// the caller may skip its subtree. path is slash-separated and absolute
// ("/home/me/x"); isDir tells whether it is a directory, which matters only
// for patterns ending in '/'.
func (l *List) Match(path string, isDir bool) bool {
	if l.Empty() {
		return false
	}
	fpath := l.folded(path)
	// Scanning from the end lets the first hit decide, since later wins.
	for i := len(l.patterns) - 1; i >= 0; i-- {
		p := &l.patterns[i]
		s := path
		if p.fold {
			s = fpath
		}
		if p.match(s, isDir) {
			return !p.negated
		}
	}
	return false
}

// MatchPrefix reports whether Match could return true for some path strictly
// below the directory dir. A restore walker with an include list uses it to
// decide whether to descend: "--include /home/me/docs/*.txt" makes
// MatchPrefix true for "/", "/home" and "/home/me/docs", and false for
// "/etc". The answer errs on the side of true (a later negation that
// re-excludes only part of the subtree is not subtracted), so a caller may
// descend needlessly but never misses a selected path. An empty list
// returns false.
func (l *List) MatchPrefix(dir string) bool {
	if l.Empty() {
		return false
	}
	fdir := l.folded(dir)
	for i := len(l.patterns) - 1; i >= 0; i-- {
		p := &l.patterns[i]
		s := dir
		if p.fold {
			s = fdir
		}
		if p.negated {
			// A negation matching dir matches everything below it too, so
			// nothing earlier in the list can select a path down there.
			if p.match(s, true) {
				return false
			}
			continue
		}
		if p.matchBelow(s) {
			return true
		}
	}
	return false
}
