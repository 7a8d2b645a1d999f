package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"snap/repo"
	"snap/snapshot"
)

func diffCmd(g *globals) *cobra.Command {
	var stat, content bool
	c := &cobra.Command{
		Use:   "diff SNAPSHOT1 SNAPSHOT2 [PATH] | diff SNAPSHOT DIRECTORY",
		Short: "Show what changed between two snapshots, or between a snapshot and the disk",
		Long: `Lists what changed from SNAPSHOT1 to SNAPSHOT2 (optionally only below PATH in both):
  +  added    -  removed    M  content modified    T  type changed    U  metadata only (mode, owner, xattrs, mtime)
Identical directories are skipped without being read, so the cost follows the size of the change.
With a directory on disk instead of a second snapshot, it tells what the next backup would find
changed (by size, mtime, ctime and inode, as create does; --content rereads such files and reports
touched-but-identical ones as U). Snapshots are ID prefixes, latest or latest~N.`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.diff(cmd.Context(), args, stat, content)
		},
	}
	c.Flags().BoolVar(&stat, "stat", false, "print only a summary: files and bytes added, removed, changed")
	c.Flags().BoolVar(&content, "content", false, "with a directory: reread files that look changed and compare their content")
	return c
}

type diffStat struct {
	Added, Removed, Modified, TypeChanged, MetaOnly int
	BytesAdded, BytesRemoved                        int64
}

func (g *globals) diff(ctx context.Context, args []string, stat, content bool) error {
	r, release, err := g.openRead(ctx, "diff")
	if err != nil {
		return err
	}
	defer release()
	a, err := snapshot.Find(ctx, r, args[0], snapshot.Filter{})
	if err != nil {
		return err
	}
	d := snapshot.NewDiffer(r)
	d.Content = content
	var st diffStat
	emit := func(c snapshot.Change) error {
		var size int64
		switch c.Kind {
		case snapshot.Added:
			st.Added++
			size = nodeSize(c.New)
			st.BytesAdded += size
		case snapshot.Removed:
			st.Removed++
			size = nodeSize(c.Old)
			st.BytesRemoved += size
		case snapshot.Modified:
			st.Modified++
			st.BytesAdded += nodeSize(c.New)
			st.BytesRemoved += nodeSize(c.Old)
		case snapshot.TypeChg:
			st.TypeChanged++
		case snapshot.MetaOnly:
			st.MetaOnly++
		}
		if stat {
			return nil
		}
		if g.json {
			out := map[string]any{"message_type": "change", "kind": string(c.Kind), "path": c.Path}
			if c.Old != nil {
				out["old_type"], out["old_size"] = c.Old.Type.String(), nodeSize(c.Old)
			}
			if c.New != nil {
				out["new_type"], out["new_size"] = c.New.Type.String(), nodeSize(c.New)
			}
			return printJSON(g.stdout, out)
		}
		n := c.New
		if n == nil {
			n = c.Old
		}
		p := g.shown(c.Path)
		if n.Type == snapshot.TypeDir {
			p += "/"
		}
		detail := ""
		switch c.Kind {
		case snapshot.Added, snapshot.Removed:
			if n.Type == snapshot.TypeFile {
				detail = formatBytes(size)
			}
		case snapshot.Modified:
			if n.Type == snapshot.TypeFile {
				detail = formatBytes(nodeSize(c.Old)) + " -> " + formatBytes(nodeSize(c.New))
			}
		case snapshot.TypeChg:
			detail = c.Old.Type.String() + " -> " + c.New.Type.String()
		case snapshot.MetaOnly:
			detail = metaChanges(c.Old, c.New)
		}
		if detail != "" {
			detail = "  (" + detail + ")"
		}
		_, err := fmt.Fprintf(g.stdout, "%c  %s%s\n", c.Kind, p, detail)
		return err
	}

	if b, ferr := snapshot.Find(ctx, r, args[1], snapshot.Filter{}); ferr == nil {
		if err := g.useNames(r, a, b); err != nil {
			return err
		}
		sub := ""
		if len(args) == 3 {
			sub = args[2]
		}
		if err := diffSnapshots(ctx, r, d, a, b, sub, emit); err != nil {
			return err
		}
	} else if fi, serr := os.Stat(args[1]); serr == nil && fi.IsDir() && len(args) == 2 {
		if err := diffLive(ctx, d, a, args[1], emit); err != nil {
			return err
		}
	} else {
		return fmt.Errorf("%q is neither a snapshot (%v) nor a directory on disk", args[1], ferr)
	}
	if g.json && stat {
		return printJSON(g.stdout, map[string]any{"message_type": "statistics", "added": st.Added, "removed": st.Removed,
			"modified": st.Modified, "type_changed": st.TypeChanged, "metadata_only": st.MetaOnly,
			"bytes_added": st.BytesAdded, "bytes_removed": st.BytesRemoved, "trees_loaded": d.TreesLoaded.Load()})
	}
	if stat && !g.json {
		fmt.Fprintf(g.stdout, "%d added, %d removed, %d modified, %d type changed, %d metadata only; %s added, %s removed\n",
			st.Added, st.Removed, st.Modified, st.TypeChanged, st.MetaOnly, formatBytes(st.BytesAdded), formatBytes(st.BytesRemoved))
	}
	return nil
}

func diffSnapshots(ctx context.Context, r *repo.Repository, d *snapshot.Differ, a, b *snapshot.Snapshot, sub string, emit func(snapshot.Change) error) error {
	if sub == "" || sub == "/" {
		return d.Trees(ctx, a.Tree, b.Tree, "", emit)
	}
	na, erra := snapshot.FindNode(ctx, r, a.Tree, sub)
	nb, errb := snapshot.FindNode(ctx, r, b.Tree, sub)
	prefix := "/" + strings.Trim(sub, "/")
	switch {
	case erra != nil && errb != nil:
		return fmt.Errorf("%s is in neither snapshot", sub)
	case erra != nil:
		return emit(snapshot.Change{Kind: snapshot.Added, Path: prefix, New: nb})
	case errb != nil:
		return emit(snapshot.Change{Kind: snapshot.Removed, Path: prefix, Old: na})
	case na.Type == snapshot.TypeDir && nb.Type == snapshot.TypeDir:
		return d.Trees(ctx, na.Subtree, nb.Subtree, prefix, emit)
	}
	// A file or type change at PATH itself: compare it as a one-entry directory.
	return d.Trees(ctx, a.Tree, b.Tree, "", func(c snapshot.Change) error {
		if c.Path == prefix {
			return emit(c)
		}
		return nil
	})
}

// diffLive finds the snapshot directory that dir was backed up as and
// compares it with the disk.
func diffLive(ctx context.Context, d *snapshot.Differ, sn *snapshot.Snapshot, dir string, emit func(snapshot.Change) error) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, p := range sn.Paths {
		name := rootName(p, used)
		rest, ok := strings.CutPrefix(abs, p)
		if !ok || rest != "" && !strings.HasPrefix(rest, "/") && p != "/" {
			continue
		}
		snapPath := "/" + name + rest
		n, err := snapshot.FindNode(ctx, d.Repo(), sn.Tree, snapPath)
		if err != nil {
			return err
		}
		if n.Type != snapshot.TypeDir {
			return fmt.Errorf("%s is a %s in snapshot %s, not a directory", snapPath, n.Type, sn.ID.Short())
		}
		return d.Live(ctx, n.Subtree, abs, strings.TrimSuffix(snapPath, "/"), emit)
	}
	return errors.New("snapshot " + sn.ID.Short() + " has no backup of " + abs + " (its paths: " + strings.Join(sn.Paths, ", ") + ")")
}

// rootName repeats the archiver's naming of root nodes.
func rootName(p string, used map[string]bool) string {
	name := filepath.Base(p)
	if name == "/" {
		name = "root"
	}
	for k := 1; used[name]; k++ {
		name = filepath.Base(p) + "-" + strconv.Itoa(k)
	}
	used[name] = true
	return name
}

func nodeSize(n *snapshot.Node) int64 {
	if n == nil {
		return 0
	}
	return int64(n.Size)
}

// metaChanges names the metadata that differs.
func metaChanges(a, b *snapshot.Node) string {
	var out []string
	if a.Mode != b.Mode {
		out = append(out, fmt.Sprintf("mode %04o -> %04o", a.Mode, b.Mode))
	}
	if a.UID != b.UID || a.GID != b.GID {
		out = append(out, fmt.Sprintf("owner %d:%d -> %d:%d", a.UID, a.GID, b.UID, b.GID))
	}
	if !a.MTime.Equal(b.MTime) {
		out = append(out, "mtime")
	}
	if len(a.Xattrs) != len(b.Xattrs) {
		out = append(out, "xattrs")
	} else {
		for i := range a.Xattrs {
			if a.Xattrs[i].Name != b.Xattrs[i].Name || string(a.Xattrs[i].Value) != string(b.Xattrs[i].Value) {
				out = append(out, "xattrs")
				break
			}
		}
	}
	return strings.Join(out, ", ")
}
