package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"snap/snapshot"
)

func statsCmd(g *globals) *cobra.Command {
	var f snapshot.Filter
	c := &cobra.Command{
		Use:   "stats [SNAPSHOT...]",
		Short: "Show restore size, stored size, dedup and compression of snapshots",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, release, err := g.openRead(ctx, "stats")
			if err != nil {
				return err
			}
			defer release()
			snaps, err := selectSnapshots(ctx, r, args, f)
			if err != nil {
				return err
			}
			st, err := snapshot.ComputeStats(ctx, r, snaps)
			if err != nil {
				return err
			}
			packs, blobs, err := r.Index().Stats()
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(g.stdout, map[string]any{"stats": st, "repository_packs": packs, "repository_blobs": blobs})
			}
			w := g.stdout
			fmt.Fprintf(w, "snapshots:          %d\n", st.Snapshots)
			fmt.Fprintf(w, "restore size:       %s in %d files\n", formatBytes(int64(st.RestoreSize)), st.Files)
			fmt.Fprintf(w, "unique data:        %s in %d blobs (%s stored)\n", formatBytes(int64(st.UniqueRaw)), st.UniqueBlobs, formatBytes(int64(st.UniqueStored)))
			fmt.Fprintf(w, "dedup ratio:        %.2fx\n", st.DedupRatio)
			fmt.Fprintf(w, "compression ratio:  %.2fx\n", st.CompressRatio)
			fmt.Fprintf(w, "repository:         %d packs, %d blobs\n", packs, blobs)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "snapshot\trestore size\tfiles\tadded blobs\tadded (stored)\t")
			for _, p := range st.Per {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t\n", p.ID[:8], formatBytes(int64(p.RestoreSize)), p.Files, p.AddedBlobs, formatBytes(int64(p.AddedStored)))
			}
			return tw.Flush()
		},
	}
	addFilterFlags(c, &f)
	return c
}
