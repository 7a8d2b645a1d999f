package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"snap/chunk"
	"snap/repo"
	"snap/snapshot"
)

func snapshotsCmd(g *globals) *cobra.Command {
	var f snapshot.Filter
	c := &cobra.Command{
		Use:     "snapshots",
		Aliases: []string{"list"},
		Short:   "List snapshots",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.open(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer r.Close()
			all, err := snapshot.List(cmd.Context(), r)
			if err != nil {
				return err
			}
			var list []*snapshot.Snapshot
			for _, s := range all {
				if f.Match(s) {
					list = append(list, s)
				}
			}
			if g.json {
				out := make([]snapshotJSON, 0, len(list))
				for _, s := range list {
					out = append(out, snapshotJSON{ID: s.ID.String(), ShortID: s.ID.Short(), Snapshot: s})
				}
				return printJSON(g.stdout, out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTime\tHost\tTags\tPaths\tSize")
			for _, s := range list {
				size := ""
				if s.Summary != nil {
					size = formatBytes(s.Summary.TotalSize)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID.Short(), s.Time.Local().Format(time.DateTime),
					s.Hostname, strings.Join(s.Tags, ","), strings.Join(s.Paths, ","), size)
			}
			fmt.Fprintf(tw, "%d snapshots\n", len(list))
			return tw.Flush()
		},
	}
	addFilterFlags(c, &f)
	return c
}

type snapshotJSON struct {
	ID      string `json:"id"`
	ShortID string `json:"short_id"`
	*snapshot.Snapshot
}

func addFilterFlags(c *cobra.Command, f *snapshot.Filter) {
	c.Flags().StringArrayVar(&f.Hosts, "host", nil, "only snapshots of this host (repeatable)")
	c.Flags().StringArrayVar(&f.Tags, "tag", nil, "only snapshots with this tag (repeatable)")
	c.Flags().StringArrayVar(&f.Paths, "path", nil, "only snapshots of this path (repeatable)")
}

// selectSnapshots returns the snapshots named (ID prefixes, latest, latest~N;
// each once), or, without names, all that pass f; oldest first.
func selectSnapshots(ctx context.Context, r *repo.Repository, names []string, f snapshot.Filter) ([]*snapshot.Snapshot, error) {
	all, err := snapshot.List(ctx, r)
	if err != nil {
		return nil, err
	}
	var list []*snapshot.Snapshot
	if len(names) == 0 {
		for _, s := range all {
			if f.Match(s) {
				list = append(list, s)
			}
		}
		return list, nil
	}
	want := map[chunk.ID]bool{}
	for _, name := range names {
		s, err := snapshot.Find(ctx, r, name, f)
		if err != nil {
			return nil, err
		}
		want[s.ID] = true
	}
	for _, s := range all {
		if want[s.ID] {
			list = append(list, s)
		}
	}
	return list, nil
}
