package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"snap/chunk"
	"snap/internal/backend"
	"snap/repo"
	"snap/snapshot"
)

func repairCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "repair", Short: "Repair a repository"}
	c.AddCommand(&cobra.Command{
		Use:   "index",
		Short: "Rebuild index.db from the pack trailers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			be, idxPath, err := g.openBackend()
			if err != nil {
				return err
			}
			// Lock first: another writer may be using the index. The index
			// itself may be damaged, which is why the repository is not opened.
			l, ok := be.(backend.Locker)
			if !ok {
				return fmt.Errorf("repair index: %s cannot be locked", be.Location())
			}
			wait, err := time.ParseDuration(g.lockWait)
			if err != nil {
				return fmt.Errorf("--lock-wait %q: %w", g.lockWait, err)
			}
			host, _ := os.Hostname()
			unlock, err := l.Lock(ctx, backend.LockInfo{Host: host, PID: os.Getpid(), Command: "repair index", Start: time.Now()}, wait)
			if err != nil {
				return err
			}
			defer unlock()
			packs, blobs, err := repo.RebuildIndex(ctx, be, idxPath)
			if err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(g.stdout, "rebuilt index: %d packs, %d blobs\n", packs, blobs)
			}
			return nil
		},
	})
	c.AddCommand(repairPacksCmd(g), repairSnapshotsCmd(g))
	return c
}

func repairPacksCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "packs PACK-ID...",
		Short: "Salvage the intact blobs of damaged packs and remove the packs",
		Long: `Copies every blob of the named packs that still verifies into new packs, then removes the
damaged packs. Blobs that were damaged are then missing: run 'snap repair snapshots' next.
'snap check --read-data' names the damaged packs.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, release, err := g.openLocked(ctx, "repair packs")
			if err != nil {
				return err
			}
			defer release()
			// Salvaging removes the damaged packs.
			readers, err := g.excludeReaders(ctx, r, "repair packs")
			if err != nil {
				return err
			}
			defer readers()
			packs, err := r.PackList()
			if err != nil {
				return err
			}
			for _, arg := range args {
				var match []chunk.ID
				for _, p := range packs {
					if strings.HasPrefix(p.ID.String(), strings.ToLower(arg)) {
						match = append(match, p.ID)
					}
				}
				if len(match) != 1 || arg == "" {
					return fmt.Errorf("pack %q: matches %d indexed packs; give a unique ID prefix", arg, len(match))
				}
				lost, err := r.SalvagePack(ctx, match[0])
				if err != nil {
					return fmt.Errorf("repair pack %s: %w", match[0].Short(), err)
				}
				if !g.quiet {
					fmt.Fprintf(g.stdout, "pack %s: removed; %d damaged blobs lost, the rest moved to new packs\n", match[0].Short(), len(lost))
				}
			}
			return nil
		},
	}
}

func repairSnapshotsCmd(g *globals) *cobra.Command {
	var forget, dryRun bool
	c := &cobra.Command{
		Use:   "snapshots",
		Short: "Rewrite snapshots that reference missing data so the rest stays restorable",
		Long: `Rewrites every snapshot whose trees reference blobs the repository no longer has: a file whose
data is lost becomes an empty file with the xattr user.snap.damaged, a directory whose tree is lost
becomes empty, and a large directory that lost one of its pages keeps the entries of the others.
The new snapshot records the original's ID and the lost paths and gets the tag "repaired".
--forget removes the originals. Only missing or damaged blobs count as lost: if a blob cannot be
read for another reason (an I/O error, a lost connection), the repair stops and drops nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			r, release, err := g.openLocked(ctx, "repair snapshots")
			if err != nil {
				return err
			}
			defer release()
			r.BypassCaches() // repair what the repository holds, not a cached copy
			all, err := snapshot.List(ctx, r)
			if err != nil {
				return err
			}
			rp := snapshot.NewRepairer(r)
			fixed := 0
			for _, sn := range all {
				out, err := rp.Repair(ctx, sn)
				if err != nil {
					return err
				}
				if out == nil {
					continue
				}
				fixed++
				if !dryRun {
					if err := r.Flush(ctx); err != nil {
						return err
					}
					if err := snapshot.Save(ctx, r, out); err != nil {
						return err
					}
					if forget {
						if err := r.RemoveSnapshotFile(ctx, sn.ID); err != nil {
							return err
						}
					}
				}
				if !g.quiet {
					verb := "repaired"
					if dryRun {
						verb = "would repair"
					}
					fmt.Fprintf(g.stdout, "snapshot %s %s as %s; lost:\n", sn.ID.Short(), verb, out.ID.Short())
					for _, p := range out.Lost {
						fmt.Fprintf(g.stdout, "  %s\n", g.shown(p))
					}
				}
			}
			if err := r.Flush(ctx); err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(g.stdout, "%d of %d snapshots needed repair\n", fixed, len(all))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&forget, "forget", false, "remove the original snapshots after repairing them")
	c.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "only say what would be repaired")
	return c
}
