// Command corpus generates and edits the deterministic "home directory" that
// snap's benchmarks back up.
//
//	corpus gen -size tiny|small|large -seed N DIR
//	corpus mutate -seed N DIR
//
// gen writes many small text and source files in nested directories, photo-
// like random files, a VM image, a database file and a log, plus duplicates,
// hard links and symlinks. mutate applies "a day of edits" to such a tree.
// Both print a one-line summary of the resulting tree. The output depends only
// on the arguments (and, for mutate, on the tree it starts from).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

const usage = `usage:
  corpus gen -size tiny|small|large -seed N DIR   (≈20 MB, 200 MB, 2 GB)
  corpus mutate -seed N DIR
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "corpus:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	fl := flag.NewFlagSet(args[0], flag.ContinueOnError)
	seed := fl.Uint64("seed", 1, "random seed")
	size := "small"
	if args[0] == "gen" {
		fl.StringVar(&size, "size", size, "tiny, small or large")
	}
	if err := fl.Parse(args[1:]); err != nil {
		return errUsage
	}
	if fl.NArg() != 1 {
		return errUsage
	}
	dir := fl.Arg(0)
	switch args[0] {
	case "gen":
		if err := Generate(dir, size, *seed); err != nil {
			return err
		}
		s, err := Summarize(dir)
		if err != nil {
			return err
		}
		fmt.Printf("gen %s seed=%d: %s\n", size, *seed, s)
	case "mutate":
		st, err := Mutate(dir, *seed)
		if err != nil {
			return err
		}
		s, err := Summarize(dir)
		if err != nil {
			return err
		}
		fmt.Printf("mutate seed=%d: rewrote %d in place + %d by rename, %d pages, appended %d B, deleted %d, new %d, renamed %s -> %s; %s\n",
			*seed, st.InPlace, st.ByRename, st.Pages, st.Appended, st.Deleted, st.New, st.RenamedFrom, st.RenamedTo, s)
	default:
		return errUsage
	}
	return nil
}
