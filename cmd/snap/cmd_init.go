package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"snap/chunk"
	"snap/repo"
)

type initOptions struct {
	chunkMin, chunkAvg, chunkMax string
	compression                  string
	copyChunkerFrom              string
	like                         *repo.Config // set from copyChunkerFrom
}

func initCmd(g *globals) *cobra.Command {
	o := &initOptions{}
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.copyChunkerFrom != "" {
				cfg, err := g.chunkerFrom(cmd, o.copyChunkerFrom)
				if err != nil {
					return err
				}
				o.like = &cfg
			}
			r, err := g.initRepo(cmd.Context(), o)
			if err != nil {
				return err
			}
			defer r.Close()
			if g.json {
				return printJSON(g.stdout, map[string]any{"id": r.Config().ID, "location": r.Backend().Location()})
			}
			if !g.quiet {
				fmt.Fprintf(g.stdout, "created repository %s at %s\n", r.Config().ID[:8], r.Backend().Location())
			}
			return nil
		},
	}
	addInitFlags(c, o)
	c.Flags().StringVar(&o.copyChunkerFrom, "copy-chunker-params-from", "", "use the chunker (polynomial and sizes) of this `REPOSITORY`, so that data backed up to both deduplicates alike (for snap copy)")
	return c
}

func addInitFlags(c *cobra.Command, o *initOptions) {
	d := defaultInitOptions()
	f := c.Flags()
	f.StringVar(&o.chunkMin, "chunk-min", d.chunkMin, "minimum chunk size")
	f.StringVar(&o.chunkAvg, "chunk-avg", d.chunkAvg, "average chunk size (a power of two)")
	f.StringVar(&o.chunkMax, "chunk-max", d.chunkMax, "maximum chunk size")
	f.StringVar(&o.compression, "compression", d.compression, "default compression: auto, off, fastest, default, better, max")
}

// defaultInitOptions are the settings of a new repository when no flag says
// otherwise (init, and create --init).
func defaultInitOptions() initOptions {
	return initOptions{
		chunkMin: sizeFlag(chunk.DefaultMin), chunkAvg: sizeFlag(chunk.DefaultAvg), chunkMax: sizeFlag(chunk.DefaultMax),
		compression: repo.CompressAuto,
	}
}

// sizeFlag writes a size as a flag value parseSize reads back exactly.
func sizeFlag(n int64) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%d", n)
}

func (g *globals) initRepo(ctx context.Context, o *initOptions) (*repo.Repository, error) {
	var sizes [3]uint
	for i, s := range []string{o.chunkMin, o.chunkAvg, o.chunkMax} {
		v, err := parseSize(s)
		if err != nil {
			return nil, fmt.Errorf("chunk size %q: %w", s, err)
		}
		sizes[i] = uint(v)
	}
	p, err := chunk.NewParams(sizes[0], sizes[1], sizes[2])
	if err != nil {
		return nil, err
	}
	if o.like != nil {
		p = o.like.Chunker
	}
	mode, err := repo.ParseCompression(o.compression)
	if err != nil {
		return nil, err
	}
	cfg, err := repo.NewConfig(p, mode)
	if err != nil {
		return nil, err
	}
	be, idx, err := g.openBackend()
	if err != nil {
		return nil, err
	}
	return repo.Init(ctx, be, cfg, repo.Options{IndexPath: idx})
}
