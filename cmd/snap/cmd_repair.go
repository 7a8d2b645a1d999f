package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"snap/repo"
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
			// The config must be readable before anything is deleted.
			probe, err := g.open(ctx, "")
			if err != nil && !errors.Is(err, repo.ErrNoRepository) {
				// A damaged index.db is exactly what this command repairs.
				if _, serr := be.Stat(ctx, "config"); serr != nil {
					return err
				}
			} else if err != nil {
				return err
			} else {
				probe.Close()
			}
			if err := os.Remove(idxPath); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", idxPath, err)
			}
			r, err := g.open(ctx, "")
			if err != nil {
				return err
			}
			defer r.Close()
			unlock, err := g.lock(ctx, r, "repair index")
			if err != nil {
				return err
			}
			defer unlock()
			packs, blobs, err := r.Index().Stats()
			if err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(g.stdout, "rebuilt index: %d packs, %d blobs\n", packs, blobs)
			}
			return nil
		},
	})
	return c
}
