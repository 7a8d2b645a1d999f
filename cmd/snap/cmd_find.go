package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"snap/repo"
	"snap/snapshot"
)

func findCmd(g *globals) *cobra.Command {
	var f snapshot.Filter
	var snaps []string
	var ignoreCase, long bool
	c := &cobra.Command{
		Use:   "find [flags] PATTERN...",
		Short: "Find files by name or path in all snapshots",
		Long: `Search snapshots (all, or those given with --snapshot or selected with --host,
--tag, --path) for files and directories matching any PATTERN, and print each
matching path once, followed by the snapshots that hold it, newest first, with
its size and mtime there: which backup still has the file deleted last week?

Patterns are globs (*, ?, [a-z], \ to escape; * does not match "/"):
  'doc*.txt'         a name, anywhere
  'docs/*.txt'       the last elements of a path, anywhere
  '/me/docs/*.txt'   a whole path inside the snapshot, as 'snap ls' prints it
Quote patterns so that the shell does not expand them.

Each distinct directory is read once, however many snapshots hold it.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, release, err := g.openRead(ctx, "find")
			if err != nil {
				return err
			}
			defer release()
			list, err := findSnapshots(ctx, r, snaps, f)
			if err != nil {
				return err
			}
			if err := g.useNames(r, list...); err != nil {
				return err
			}
			// With a name map, a pattern also finds the encrypted names
			// whose cleartext names it matches.
			patterns := args
			for _, a := range args {
				patterns = append(patterns, g.clearNameHits(a, func(pat, name string) bool {
					if ignoreCase {
						pat, name = strings.ToLower(pat), strings.ToLower(name)
					}
					ok, _ := path.Match(pat, name)
					return ok
				})...)
			}
			finder, err := snapshot.NewFinder(r, patterns, ignoreCase)
			if err != nil {
				return err
			}

			type occurrence struct {
				sn   *snapshot.Snapshot
				node *snapshot.Node
			}
			found := make(map[string][]occurrence)
			for _, sn := range list {
				err := finder.Search(ctx, sn.Tree, func(p string, n *snapshot.Node) error {
					found[p] = append(found[p], occurrence{sn, n})
					return nil
				})
				if err != nil {
					return fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
				}
			}
			paths := make([]string, 0, len(found))
			for p := range found {
				paths = append(paths, p)
			}
			sort.Strings(paths)

			out := bufio.NewWriterSize(g.stdout, 64<<10)
			for _, p := range paths {
				if g.json {
					m := findMatchJSON{MessageType: "match", Path: p}
					if !utf8.ValidString(p) {
						m.Path, m.Escaped = escapeString(p), true
					}
					for _, o := range found[p] {
						m.Snapshots = append(m.Snapshots, findSnapshotJSON{
							ID: o.sn.ID.String(), ShortID: o.sn.ID.Short(), Time: o.sn.Time,
							Hostname: o.sn.Hostname, Node: newNodeJSON("", p, o.node),
						})
					}
					if err := printJSON(out, m); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintln(out, g.shown(p))
				for _, o := range found[p] {
					fmt.Fprintln(out, findLine(o.sn, o.node, long))
				}
			}
			switch {
			case g.json:
				err = printJSON(out, map[string]any{"message_type": "summary", "paths": len(paths),
					"snapshots": len(list), "trees_loaded": finder.TreesLoaded()})
			case !g.quiet:
				_, err = fmt.Fprintf(out, "%d matching paths in %d snapshots\n", len(paths), len(list))
			}
			if err != nil {
				return err
			}
			return out.Flush()
		},
	}
	c.Flags().StringArrayVarP(&snaps, "snapshot", "s", nil, "search only this snapshot (ID prefix, latest, latest~N; repeatable)")
	c.Flags().BoolVarP(&ignoreCase, "ignore-case", "i", false, "ignore case when matching")
	c.Flags().BoolVarP(&long, "long", "l", false, "also print mode, user and group")
	addFilterFlags(c, &f)
	return c
}

// findSnapshots returns the snapshots to search, newest first: those named
// (with the filter resolving "latest"), or else all that pass the filter.
func findSnapshots(ctx context.Context, r *repo.Repository, names []string, f snapshot.Filter) ([]*snapshot.Snapshot, error) {
	list, err := selectSnapshots(ctx, r, names, f)
	if err != nil {
		return nil, fmt.Errorf("--snapshot: %w", err)
	}
	sort.SliceStable(list, func(i, j int) bool {
		if !list[i].Time.Equal(list[j].Time) {
			return list[i].Time.After(list[j].Time)
		}
		return bytes.Compare(list[i].ID[:], list[j].ID[:]) > 0
	})
	return list, nil
}

// findLine formats one snapshot holding a found path.
func findLine(sn *snapshot.Snapshot, n *snapshot.Node, long bool) string {
	var what string
	switch n.Type {
	case snapshot.TypeFile:
		what = formatBytes(int64(n.Size))
	case snapshot.TypeSymlink:
		what = "symlink"
	default:
		what = n.Type.String()
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "  %s  %s", sn.ID.Short(), sn.Time.Local().Format("2006-01-02 15:04"))
	if long {
		fmt.Fprintf(&b, "  %s %-8s %-8s", modeString(n), userName(n), groupName(n))
	}
	fmt.Fprintf(&b, "  %10s  mtime %s", what, n.MTime.Local().Format("2006-01-02 15:04:05"))
	if n.Type == snapshot.TypeSymlink {
		b.WriteString("  -> " + displayPath(n.LinkTarget))
	}
	return strings.TrimRight(b.String(), " ")
}

// findMatchJSON is one line of find --json: a path and the snapshots that
// hold it, newest first.
type findMatchJSON struct {
	MessageType string `json:"message_type"`
	Path        string `json:"path"`
	// Escaped says Path is Go-quoted without the enclosing quotes, as in
	// nodeJSON.
	Escaped   bool               `json:"escaped,omitempty"`
	Snapshots []findSnapshotJSON `json:"snapshots"`
}

type findSnapshotJSON struct {
	ID       string    `json:"id"`
	ShortID  string    `json:"short_id"`
	Time     time.Time `json:"time"`
	Hostname string    `json:"hostname"`
	Node     nodeJSON  `json:"node"`
}
