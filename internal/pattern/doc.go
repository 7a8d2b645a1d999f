// Package pattern implements the path pattern language of snap: the
// --exclude, --iexclude, --exclude-file and --files-from options of
// "snap create" and the --include and --exclude options of "snap restore".
//
// Entry points:
//
//   - NewList compiles the patterns given to one option into a List.
//     List.Match reports whether a path is selected (excluded, for an exclude
//     list; wanted, for an include list), and List.MatchPrefix tells a tree
//     walker whether it must enter a directory to reach selected paths.
//   - Parse compiles and checks a single Pattern.
//   - ReadPatternFile reads an --exclude-file; ReadFilesFrom reads a
//     --files-from list of literal paths.
//   - ParseSize parses the argument of --exclude-larger-than.
//
// # Paths
//
// Patterns are matched against slash-separated absolute paths: the absolute
// source path for "snap create", the path inside the snapshot for
// "snap restore". A path may hold any byte except NUL and need not be UTF-8;
// empty and "." components are ignored, so "/a//b/" is "/a/b".
//
// # Syntax
//
// A pattern is a sequence of components separated by '/'. Within a
// component:
//
//   - '*' matches any run of characters (never '/'), including none;
//   - '?' matches one character;
//   - '[...]' matches one character from a class, with the syntax of
//     path/filepath.Match: ranges "a-z", negation "[^...]", and '\' to
//     escape ']', '-', '^' or '\' inside the class. A class is never empty,
//     and a reversed range such as "[z-a]" is reported as an error rather
//     than silently matching nothing;
//   - '\' makes the next character literal ("\*", "\[", "\!", "\#", "\ ").
//
// A "character" is one UTF-8 encoded rune, or one byte where the name is not
// valid UTF-8; literal text is compared byte for byte. A byte that is not
// valid UTF-8, written raw into a pattern or a class, stands for that byte
// alone: it never matches the rune U+FFFD, nor U+FFFD it.
//
// A component that is exactly "**" matches any number of whole path
// components, including zero: "/home/**/cache" matches "/home/cache" and
// "/home/a/b/cache", and "/a/**" matches "/a" itself. Inside a longer
// component, as in "a**b", the two stars are ordinary stars.
//
// # Where a pattern matches
//
//   - A pattern starting with '/' is anchored at the root: "/bin" matches
//     "/bin/bash" but not "/usr/bin".
//   - Any other pattern may match at any depth, as if it began with "**/":
//     "*.o" and ".cache" match the name in every directory, and "foo/bar"
//     matches "/x/foo/bar". This is restic's rule.
//   - A pattern that matches a directory matches everything below it, so
//     excluding "node_modules" excludes its whole subtree and callers may skip
//     the subtree without looking inside.
//   - A trailing '/' restricts the pattern to directories: "build/" excludes
//     directories named build (and their contents) but not a file named build.
//     (restic ignores a trailing '/'; snap follows the gitignore meaning.)
//   - Components "." are dropped. ".." is rejected because cleaned paths
//     never contain it. A pattern that is only "/" matches the root and
//     therefore everything.
//
// # Lists and negation
//
// A List holds patterns in order. A pattern starting with '!' is a negation:
// it re-includes what earlier patterns selected. For each path the last
// pattern that matches decides: a plain pattern selects the path, a negated
// one deselects it, and no match leaves it unselected. Write "\!" to start a
// pattern with a literal '!'.
//
// As in restic and gitignore, a walker that skips the subtree of a selected
// (excluded) directory never sees the paths a later negation would have
// re-included: with "/home/me" followed by "!/home/me/docs", List.Match
// reports "/home/me/docs" as not excluded, but a walker that stops at the
// excluded "/home/me" never gets there. Exclude the contents instead:
// "/home/me/*" followed by "!/home/me/docs" works.
//
// # Case-insensitive lists (--iexclude)
//
// A list built with caseInsensitive set lowercases both the path and the
// literal text of each pattern, rune by rune with unicode.ToLower (the same
// mapping as strings.ToLower, except that bytes which are not valid UTF-8 are
// kept as they are instead of being turned into U+FFFD). Character classes
// accept any rune of the simple case-folding orbit of the lowercased path
// character. This is Unicode simple folding only: one-to-many foldings such
// as "ß" versus "SS" are not equal, and locale rules (Turkish dotless i) are
// not applied.
//
// # What is not done
//
// Environment variables ("$HOME") and "~" are not expanded; the shell does
// that for command-line arguments, and a pattern file is taken literally.
package pattern
