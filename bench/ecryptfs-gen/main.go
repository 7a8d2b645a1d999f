// Command ecryptfs-gen writes eCryptfs lower (ciphertext) trees for snap's
// benchmarks, since eCryptfs cannot be mounted on the benchmark machines.
//
//	ecryptfs-gen [-seed N] [-xattr] CLEARDIR LOWERDIR
//	ecryptfs-gen -mutate [-seed N] [-round N] [-xattr] LOWERDIR
//
// The first form converts a cleartext tree (for example one written by
// bench/corpus) into the lower tree a mount would hold; LOWERDIR must be
// missing or empty. -mutate applies a day of typical edits to a lower tree
// written earlier: page writes into database-like files, appends to logs,
// documents saved by rename (see ecryptfs.Tree.Mutate).
//
// State: -mutate needs nothing but the lower tree and the same -seed and
// -xattr it was generated with. Every key follows from the seed (the mount
// key, the filename key) or sits wrapped in each file's header, as in real
// eCryptfs, so no state file is kept. The edits depend on the seed, the
// tree's current contents and -round: mutating the same tree twice with the
// same arguments gives the same bytes, and each day's tree gives new edits.
//
// The work lives in package snap/internal/ecryptfs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"snap/internal/ecryptfs"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ecryptfs-gen:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: ecryptfs-gen [-seed N] [-xattr] CLEARDIR LOWERDIR | ecryptfs-gen -mutate [-seed N] [-round N] [-xattr] LOWERDIR")

func run(args []string) error {
	fl := flag.NewFlagSet("ecryptfs-gen", flag.ContinueOnError)
	seed := fl.Uint64("seed", 1, "seed of the keys and random choices; -mutate needs the seed the tree was generated with")
	xattr := fl.Bool("xattr", false, "mount option ecryptfs_xattr_metadata: headers in the user.ecryptfs xattr")
	mutate := fl.Bool("mutate", false, "apply a day of edits to an existing lower tree")
	round := fl.Uint64("round", 0, "with -mutate: varies the edits of the same tree state")
	if err := fl.Parse(args); err != nil {
		return errUsage
	}
	opts := ecryptfs.Options{XattrMetadata: *xattr}
	if *mutate {
		if fl.NArg() != 1 {
			return errUsage
		}
		t, err := ecryptfs.NewTree(fl.Arg(0), *seed, opts)
		if err != nil {
			return err
		}
		sum, err := t.Mutate(*round)
		if err != nil {
			return err
		}
		fmt.Println(sum)
		return nil
	}
	if fl.NArg() != 2 {
		return errUsage
	}
	t, err := ecryptfs.FromClearTree(fl.Arg(0), fl.Arg(1), *seed, opts)
	if err != nil {
		return err
	}
	fmt.Printf("%d entries written to %s\n", len(t.Map()), t.LowerDir())
	return nil
}
