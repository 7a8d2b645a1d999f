package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"snap/chunk"
	"snap/repo/pack"
	"snap/snapshot"
)

func catCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cat config|snapshot ID|tree ID|blob ID",
		Short: "Print repository objects for debugging",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, release, err := g.openRead(ctx, "cat")
			if err != nil {
				return err
			}
			defer release()
			if args[0] == "config" {
				return printIndented(g, r.Config())
			}
			if len(args) != 2 {
				return fmt.Errorf("cat %s: needs an ID", args[0])
			}
			switch args[0] {
			case "snapshot":
				sn, err := snapshot.Find(ctx, r, args[1], snapshot.Filter{})
				if err != nil {
					return err
				}
				return printIndented(g, sn)
			case "tree", "blob":
				id, err := chunk.ParseID(args[1])
				if err != nil {
					return err
				}
				if args[0] == "tree" {
					nodes, err := snapshot.LoadTree(ctx, r, id)
					if err != nil {
						return err
					}
					return printIndented(g, nodes)
				}
				data, err := r.LoadBlob(ctx, pack.DataBlob, id)
				if err != nil {
					return err
				}
				_, err = g.stdout.Write(data)
				return err
			}
			return fmt.Errorf("cat %s: unknown object; want config, snapshot, tree or blob", args[0])
		},
	}
}

func printIndented(g *globals, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(g.stdout, "%s\n", b)
	return err
}
