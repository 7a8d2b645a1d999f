package main

import (
	"errors"
	"fmt"
	"sync"

	"github.com/spf13/cobra"

	"snap/snapshot"
)

func restoreCmd(g *globals) *cobra.Command {
	var f snapshot.Filter
	var target string
	c := &cobra.Command{
		Use:   "restore SNAPSHOT --target DIR",
		Short: "Restore a snapshot into a directory",
		Long:  "Restore a snapshot (an ID prefix, latest or latest~N) into DIR. Every blob is verified before it is written.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if target == "" {
				return errors.New("no --target directory given")
			}
			ctx := cmd.Context()
			r, err := g.open(ctx, "")
			if err != nil {
				return err
			}
			defer r.Close()
			sn, err := snapshot.Find(ctx, r, args[0], f)
			if err != nil {
				return err
			}
			var mu sync.Mutex
			sum, err := snapshot.Restore(ctx, r, sn, snapshot.RestoreOptions{
				Target: target,
				OnError: func(path string, err error) {
					mu.Lock()
					defer mu.Unlock()
					if g.json {
						printJSON(g.stderr, map[string]any{"message_type": "error", "path": path, "error": err.Error()})
					} else {
						fmt.Fprintf(g.stderr, "snap: restore %s: %v\n", path, unwrapPath(err))
					}
				},
			})
			if err != nil {
				return err
			}
			switch {
			case g.json:
				printJSON(g.stdout, map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "files": sum.Files, "dirs": sum.Dirs, "bytes": sum.Bytes, "errors": sum.Errors})
			case !g.quiet:
				fmt.Fprintf(g.stdout, "restored snapshot %s to %s: %d files, %d dirs, %s\n", sn.ID.Short(), target, sum.Files, sum.Dirs, formatBytes(sum.Bytes))
			}
			if sum.Errors > 0 {
				return fmt.Errorf("%d files could not be restored (named above); run 'snap check --read-data'", sum.Errors)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&target, "target", "t", "", "directory to restore into")
	addFilterFlags(c, &f)
	return c
}
