package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"snap/snapshot/fusefs"
)

type mountOptions struct {
	allowOther bool
	cacheSize  string
}

func mountCmd(g *globals) *cobra.Command {
	o := &mountOptions{}
	c := &cobra.Command{
		Use:   "mount MOUNTPOINT",
		Short: "Browse the snapshots as a read-only file system (FUSE)",
		Long: `Mount the repository's snapshots read-only at MOUNTPOINT, an existing directory:

    snapshots/2026-11-30T14:05:00/NAME/...   one directory per snapshot, named by its local time
                                             (a second snapshot in the same second gets -SHORTID)
    snapshots/latest                         a symlink to the newest snapshot
    ids/SHORTID/, hosts/HOST/TIME/, tags/TAG/TIME/   the same snapshots by ID, host and tag

A snapshot directory holds one entry per backed-up path, named by its last element, with the
recorded modes, owners, times, symlinks, devices and extended attributes. New snapshots show up
within a second or two without remounting. Every block read is verified; --cache-size bounds the
memory kept for file data, and sequential reads load ahead in the background.

The mount takes no lock: 'snap create' runs while it is mounted. A prune that deletes data under
an open file makes reads of it fail with an I/O error rather than return other bytes.

snap mount runs until the file system is unmounted: Ctrl-C (or SIGTERM) unmounts it, and so does
'fusermount3 -u MOUNTPOINT'; either way snap exits 0. If the mount is busy (a shell inside it),
snap says so and retries until the programs using it are gone.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return g.mount(cmd.Context(), o, args[0]) },
	}
	f := c.Flags()
	f.BoolVar(&o.allowOther, "allow-other", false, "let other users use the mount (FUSE allow_other; non-root users need user_allow_other in /etc/fuse.conf); the kernel then enforces the recorded permissions")
	f.StringVar(&o.cacheSize, "cache-size", "256MiB", "memory for cached file data (e.g. 64MiB, 1G)")
	return c
}

func (g *globals) mount(ctx context.Context, o *mountOptions, dir string) error {
	cacheSize, err := parseSize(o.cacheSize)
	if err != nil {
		return fmt.Errorf("--cache-size %q: %w", o.cacheSize, err)
	}
	if cacheSize < 1<<20 {
		return fmt.Errorf("--cache-size %q: want at least 1MiB, room for one block of file data", o.cacheSize)
	}
	mnt, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("mount point %s: %w", dir, err)
	}
	st, err := os.Stat(mnt)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("mount point %s does not exist; create it with 'mkdir -p %s'", mnt, mnt)
	case err != nil:
		return fmt.Errorf("mount point %s: %w; if a previous mount was left behind, run 'fusermount3 -u %s'", mnt, err, mnt)
	case !st.IsDir():
		return fmt.Errorf("mount point %s is not a directory", mnt)
	}

	// No read lock: a mount may stay up for days, and a prune must not
	// wait for it. It follows blobs that a prune moved (see fusefs) instead.
	r, err := g.open(ctx, "")
	if err != nil {
		return err
	}
	defer r.Close()

	// The file system outlives ctx: after Ctrl-C it keeps serving until the
	// kernel lets go of it, which a busy mount point can delay.
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	var logMu sync.Mutex
	fsys := fusefs.New(serveCtx, r, fusefs.Options{
		CacheSize:  cacheSize,
		AllowOther: o.allowOther,
		Logf: func(format string, args ...any) {
			logMu.Lock()
			defer logMu.Unlock()
			fmt.Fprintf(g.stderr, "snap: mount: "+format+"\n", args...)
		},
	})
	server, err := fsys.Mount(mnt)
	if err != nil {
		return fmt.Errorf("mount %s: %w; %s", mnt, err, mountHint(err))
	}
	if !g.quiet {
		fmt.Fprintf(g.stderr, "mounted at %s; unmount with Ctrl-C or 'fusermount3 -u %s'\n", mnt, mnt)
	}

	done := make(chan struct{})
	go func() {
		server.Wait()
		close(done)
	}()
	select {
	case <-done: // fusermount3 -u
		return nil
	case <-ctx.Done():
	}
	for warned := false; ; warned = true {
		err := server.Unmount()
		if err == nil {
			<-done
			return nil
		}
		if !warned {
			fmt.Fprintf(g.stderr, "snap: cannot unmount %s yet: %v; close the programs using it (snap retries every second) or run 'fusermount3 -u -z %s'\n",
				mnt, strings.TrimSpace(err.Error()), mnt)
		}
		select {
		case <-done:
			return nil
		case <-time.After(time.Second):
		}
	}
}

// mountHint says what to check when mounting failed.
func mountHint(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no FUSE mount utility"):
		return "install fusermount3 (Debian: apt-get install fuse3)"
	case strings.Contains(msg, "allow_other"):
		return "--allow-other needs user_allow_other in /etc/fuse.conf for users other than root"
	case strings.Contains(msg, "not permitted") || strings.Contains(msg, "permission denied"):
		return "check that /dev/fuse exists and that this user may open it (in a container: --device /dev/fuse --cap-add SYS_ADMIN)"
	}
	return "check that /dev/fuse exists and that nothing else is mounted there"
}
