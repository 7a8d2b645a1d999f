// Command snap is a deduplicating backup tool: it keeps snapshots of
// directory trees in a repository of content-defined chunks.
//
// This package only turns flags into calls of the snapshot and repo packages
// and prints results; every exit code is chosen in exitCode.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"snap/internal/backend"
	"snap/internal/names"
	"snap/repo"
)

// version is the program version recorded in snapshots.
const version = "snap 0.1.0"

// Exit codes (DESIGN.md, command-line conventions).
const (
	exitOK          = 0
	exitFatal       = 1
	exitPartial     = 3
	exitNoRepo      = 10
	exitLocked      = 11
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	tuneGC(os.Getenv)
	// SNAP_CPUPROFILE=FILE writes a CPU profile, for docs/PERFORMANCE.md.
	if p := os.Getenv("SNAP_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	// SNAP_MEMPROFILE=FILE samples every allocation and writes a heap
	// profile at exit (go tool pprof -sample_index=alloc_space).
	if os.Getenv("SNAP_MEMPROFILE") != "" {
		runtime.MemProfileRate = 4096
	}
	// SNAP_BLOCKPROFILE=FILE records where goroutines waited for locks and
	// channels (every wait of 100 µs or more) and writes it at exit.
	if os.Getenv("SNAP_BLOCKPROFILE") != "" {
		runtime.SetBlockProfileRate(100_000)
	}
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	pprof.StopCPUProfile()
	if p := os.Getenv("SNAP_BLOCKPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.Lookup("block").WriteTo(f, 0)
			f.Close()
		}
	}
	if p := os.Getenv("SNAP_MEMPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	os.Exit(code)
}

// globals are the options every command shares.
type globals struct {
	repo     string
	json     bool
	quiet    bool
	lockWait string
	noLock   bool
	remote   remoteOptions
	stdout   io.Writer
	stderr   io.Writer

	namesMode string     // --names: how encrypted eCryptfs names are shown
	nameMap   *names.Map // the local name map in use, if any

	jobs jobOptions // --config and --job (cmd_run.go)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "snap",
		Short:         "Deduplicated, browsable snapshots of directory trees",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	pf := root.PersistentFlags()
	pf.StringVarP(&g.repo, "repo", "r", os.Getenv("SNAP_REPOSITORY"), "repository location (default $SNAP_REPOSITORY)")
	pf.BoolVar(&g.json, "json", false, "print results as JSON")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "print nothing but errors")
	pf.StringVar(&g.lockWait, "lock-wait", "0s", "how long to wait for a lock another snap holds (e.g. 10m)")
	pf.BoolVar(&g.noLock, "no-lock", false, "read without the read lock (for storage this user cannot write); a prune may then remove packs while this command reads them")
	pf.StringVar(&g.namesMode, "names", namesBoth, "eCryptfs names in listings: cipher, clear (from the local name map) or both")
	pf.StringVar(&g.remote.sshCommand, "ssh-command", "ssh", "ssh program and options for sftp: repositories (snap appends [-p PORT] [USER@]HOST -s sftp)")
	pf.StringVar(&g.remote.s3Region, "s3-region", "", "region of the bucket of s3: repositories (default: ask the server)")
	pf.IntVar(&g.remote.connections, "connections", 5, "operations at once on an sftp: or s3: repository")
	pf.Int64Var(&g.remote.limitUpload, "limit-upload", 0, "limit uploads to a remote repository to `KIB` per second (0: no limit)")
	pf.Int64Var(&g.remote.limitDownload, "limit-download", 0, "limit downloads from a remote repository to `KIB` per second (0: no limit)")
	pf.StringVar(&g.jobs.configFlag, "config", "", "config file of jobs (default $SNAP_CONFIG, else ~/.config/snap/config.toml, else for root /etc/snap/config.toml)")
	pf.StringVar(&g.jobs.name, "job", "", "take the repository and the job's defaults from job `NAME` of the config file")
	root.PersistentPreRunE = g.applyJob
	root.AddCommand(
		initCmd(g),
		createCmd(g),
		snapshotsCmd(g),
		forgetCmd(g),
		restoreCmd(g),
		repairCmd(g),
		pruneCmd(g),
		checkCmd(g),
		statsCmd(g),
		diffCmd(g),
		catCmd(g),
		lsCmd(g),
		findCmd(g),
		dumpCmd(g),
		copyCmd(g),
		mountCmd(g),
		runCmd(g),
		scheduleCmd(g),
		statusCmd(g),
	)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(ctx, err)
	if code != exitPartial { // partial failures were reported file by file already
		fmt.Fprintf(stderr, "snap: %v\n", err)
	}
	return code
}

// errPartial is returned by commands that finished but could not handle
// every file; each file was reported on stderr.
var errPartial = errors.New("some files could not be read")

func exitCode(ctx context.Context, err error) int {
	switch {
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, errPartial):
		return exitPartial
	case errors.Is(err, repo.ErrNoRepository):
		return exitNoRepo
	case errors.Is(err, backend.ErrLocked):
		return exitLocked
	}
	return exitFatal
}
