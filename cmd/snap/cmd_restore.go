package main

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"snap/internal/pattern"
	"snap/internal/progress"
	"snap/snapshot"
)

type restoreOptions struct {
	filter                      snapshot.Filter
	target                      string
	include, exclude            []string
	iinclude, iexclude          []string
	overwrite                   string
	del, dryRun, verify, sparse bool
	numericIDs                  bool
}

func restoreCmd(g *globals) *cobra.Command {
	o := &restoreOptions{}
	c := &cobra.Command{
		Use:   "restore SNAPSHOT[:PATH] --target DIR",
		Short: "Restore a snapshot (or a path in it) into a directory",
		Long: `Restore a snapshot (an ID prefix, latest or latest~N) into DIR. With SNAPSHOT:PATH only that
path of the snapshot is restored: a directory's contents go into DIR, a file is written into DIR.
Every blob is verified before it is written. Files that exist in DIR with the snapshot's size and
mtime are left alone (--overwrite if-changed), so an interrupted restore can simply be rerun.
--delete removes what DIR has and the snapshot does not: the scoped successor of rsync --delete;
try it with --dry-run first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return g.restore(cmd, o, args[0]) },
	}
	f := c.Flags()
	f.StringVarP(&o.target, "target", "t", "", "directory to restore into")
	f.StringArrayVar(&o.include, "include", nil, "restore only paths matching `PATTERN` (repeatable)")
	f.StringArrayVar(&o.exclude, "exclude", nil, "leave out paths matching `PATTERN` (repeatable)")
	f.StringArrayVar(&o.iinclude, "iinclude", nil, "like --include, ignoring case")
	f.StringArrayVar(&o.iexclude, "iexclude", nil, "like --exclude, ignoring case")
	f.StringVar(&o.overwrite, "overwrite", snapshot.OverwriteIfChanged, "existing files: always, if-changed, if-newer, never")
	f.BoolVar(&o.del, "delete", false, "delete files in the target that are not in the snapshot")
	f.BoolVar(&o.dryRun, "dry-run", false, "print what would be written and deleted; change nothing")
	f.BoolVar(&o.verify, "verify", false, "reread every written file and check its content")
	f.BoolVar(&o.sparse, "sparse", false, "restore the holes of sparse files as holes")
	f.BoolVar(&o.numericIDs, "numeric-ids", false, "restore owners by uid/gid, not by user and group name")
	addFilterFlags(c, &o.filter)
	return c
}

// selection builds the include/exclude functions for restore.
func selection(include, iinclude, exclude, iexclude []string) (sel func(string, bool) bool, descend func(string) bool, err error) {
	inc, err := patternList(include, iinclude)
	if err != nil {
		return nil, nil, fmt.Errorf("--include: %w", err)
	}
	exc, err := patternList(exclude, iexclude)
	if err != nil {
		return nil, nil, fmt.Errorf("--exclude: %w", err)
	}
	if inc.Empty() && exc.Empty() {
		return nil, nil, nil
	}
	sel = func(p string, isDir bool) bool {
		if !exc.Empty() && exc.Match(p, isDir) {
			return false
		}
		return inc.Empty() || inc.Match(p, isDir)
	}
	descend = func(p string) bool {
		return !inc.Empty() && !(!exc.Empty() && exc.Match(p, true)) && inc.MatchPrefix(p)
	}
	return sel, descend, nil
}

func patternList(cs, ci []string) (*pattern.List, error) {
	a, err := pattern.NewList(cs, false)
	if err != nil {
		return nil, err
	}
	b, err := pattern.NewList(ci, true)
	if err != nil {
		return nil, err
	}
	return a.Append(b), nil
}

func (g *globals) restore(cmd *cobra.Command, o *restoreOptions, arg string) error {
	if o.target == "" {
		return errors.New("no --target directory given")
	}
	sel, descend, err := selection(o.include, o.iinclude, o.exclude, o.iexclude)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	r, release, err := g.openRead(ctx, "restore")
	if err != nil {
		return err
	}
	defer release()
	name, subpath, _ := strings.Cut(arg, ":")
	sn, err := snapshot.Find(ctx, r, name, o.filter)
	if err != nil {
		return err
	}
	if err := g.useNames(r, sn); err != nil {
		return err
	}
	var mu sync.Mutex
	var counter progress.Counter
	mode := progress.ChooseMode(g.json, g.quiet, g.stderr)
	if o.dryRun {
		mode = progress.None
	}
	if s := sn.Summary; s != nil && (subpath == "" || subpath == "/") && len(o.include)+len(o.iinclude)+len(o.exclude)+len(o.iexclude) == 0 {
		counter.FilesTotal.Store(s.FilesNew + s.FilesChanged + s.FilesUnchanged)
		counter.BytesTotal.Store(s.TotalSize)
		counter.TotalKnown.Store(true)
	}
	rep := progress.Start(ctx, mode, g.stdout, g.stderr, &counter, "restoring")
	sum, err := snapshot.Restore(ctx, r, sn, subpath, snapshot.RestoreOptions{
		Progress: counter.Done,
		Target:   o.target, Overwrite: o.overwrite, Delete: o.del, DryRun: o.dryRun, Verify: o.verify,
		Sparse: o.sparse, NumericIDs: o.numericIDs, Select: sel, Descend: descend,
		OnError: func(path string, err error) {
			mu.Lock()
			defer mu.Unlock()
			if g.json {
				printJSON(g.stderr, map[string]any{"message_type": "error", "path": path, "error": err.Error()})
			} else {
				fmt.Fprintf(g.stderr, "snap: restore %s: %v\n", path, err)
			}
		},
		OnNotice: func(msg string) {
			if !g.quiet {
				fmt.Fprintf(g.stderr, "snap: note: %s\n", msg)
			}
		},
		OnAction: func(action, path string, size uint64) {
			if !o.dryRun {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if g.json {
				printJSON(g.stdout, map[string]any{"message_type": "action", "action": action, "path": path, "size": size})
			} else {
				fmt.Fprintf(g.stdout, "%-9s %s\n", action, g.shown(path))
			}
		},
	})
	rep.Stop()
	if err != nil {
		return err
	}
	verb := "restored"
	if o.dryRun {
		verb = "would restore"
	}
	switch {
	case g.json:
		printJSON(g.stdout, map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "dry_run": o.dryRun,
			"files": sum.Files, "dirs": sum.Dirs, "bytes": sum.Bytes, "unchanged": sum.Unchanged, "deleted": sum.Deleted, "errors": sum.Errors})
	case !g.quiet:
		fmt.Fprintf(g.stdout, "%s snapshot %s to %s: %d files, %d dirs, %s; %d unchanged, %d deleted\n",
			verb, sn.ID.Short(), o.target, sum.Files, sum.Dirs, formatBytes(sum.Bytes), sum.Unchanged, sum.Deleted)
	}
	if sum.Errors > 0 {
		return fmt.Errorf("%d entries could not be restored (named above); run 'snap check --read-data'", sum.Errors)
	}
	return nil
}
