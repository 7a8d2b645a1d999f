package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"snap/repo"
	"snap/snapshot"
)

func copyCmd(g *globals) *cobra.Command {
	var from string
	var f snapshot.Filter
	c := &cobra.Command{
		Use:   "copy --from-repo SOURCE [SNAPSHOT...]",
		Short: "Copy snapshots from another repository into this one",
		Long: `Copies the given snapshots (default: all, or those selected with --host, --tag,
--path) from the repository SOURCE into the repository given with -r, sending only
the data the destination lacks. A copied snapshot keeps its ID, so copying twice
copies nothing. Make the destination with 'snap init --copy-chunker-params-from
SOURCE' so that data later backed up to both deduplicates the same way.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if from == "" {
				return errors.New("no --from-repo given")
			}
			srcG := *g
			srcG.repo = from
			src, releaseSrc, err := srcG.openRead(ctx, "copy")
			if err != nil {
				return fmt.Errorf("source: %w", err)
			}
			defer releaseSrc()
			dst, release, err := g.openLocked(ctx, "copy")
			if err != nil {
				return err
			}
			defer release()
			snaps, err := selectSnapshots(ctx, src, args, f)
			if err != nil {
				return fmt.Errorf("source: %w", err)
			}
			cp := snapshot.NewCopier(src, dst)
			copied := 0
			for _, s := range snaps {
				before := cp.Stats
				if _, err := dst.LoadSnapshotFile(ctx, s.ID); err == nil {
					if !g.quiet && !g.json {
						fmt.Fprintf(g.stdout, "snapshot %s is already there\n", s.ID.Short())
					}
					continue
				}
				if err := cp.Copy(ctx, s); err != nil {
					return err
				}
				copied++
				if !g.quiet && !g.json {
					fmt.Fprintf(g.stdout, "copied snapshot %s of %s (%s): %d blobs, %s new\n", s.ID.Short(), s.Hostname,
						s.Time.Local().Format("2006-01-02 15:04:05"), cp.Stats.Blobs-before.Blobs, formatBytes(cp.Stats.Bytes-before.Bytes))
				}
			}
			if g.json {
				return printJSON(g.stdout, map[string]any{"message_type": "summary", "snapshots": len(snaps), "copied": copied,
					"blobs": cp.Stats.Blobs, "bytes": cp.Stats.Bytes})
			}
			return nil
		},
	}
	c.Flags().StringVar(&from, "from-repo", "", "the repository to copy from")
	addFilterFlags(c, &f)
	return c
}

// chunkerFrom reads the chunker parameters of another repository, for init
// --copy-chunker-params-from.
func (g *globals) chunkerFrom(cmd *cobra.Command, location string) (repo.Config, error) {
	srcG := *g
	srcG.repo = location
	src, err := srcG.open(cmd.Context(), "")
	if err != nil {
		return repo.Config{}, fmt.Errorf("--copy-chunker-params-from: %w", err)
	}
	defer src.Close()
	return src.Config(), nil
}
