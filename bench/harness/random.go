package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// randomMiB is the size of the incompressible file of each corpus size: at
// least 128 MiB, so that snap chunks it on all cores as it does a real disk
// image.
var randomMiB = map[string]int64{"tiny": 128, "small": 512, "large": 1024}

// writeRandom writes the incompressible scenario's tree: one file of mib
// MiB of seeded random bytes (ChaCha8), like a VM image or media file.
func writeRandom(dir string, mib int64, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "disk.img"))
	if err != nil {
		return err
	}
	var key [32]byte
	copy(key[:], fmt.Sprintf("snap bench random %d", seed))
	rng := rand.NewChaCha8(key)
	w := bufio.NewWriterSize(f, 1<<20)
	block := make([]byte, 1<<20)
	for range mib {
		rng.Read(block)
		if _, err := w.Write(block); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// randomRep times every tool's backup of the incompressible file into a
// fresh repository of its own. It runs last in a rep, so its repositories
// are never deleted before a timed command.
func (h *harness) randomRep(rep int, order []string) error {
	for i, name := range order {
		t, ok := tools[name]
		if !ok || !slices.Contains(h.tools, t) {
			continue
		}
		r, err := h.newRepoNamed(t, rep, "-random")
		if err != nil {
			return err
		}
		res, err := h.timed(rep, i, "random", t.name, t.backup(t, r, h.random, "s1"), t.okExit, h.random, r.dir, r.state)
		if err != nil {
			return err
		}
		h.afterBackup(res, r, "s1", 0)
	}
	return nil
}

// randomNote compares snap's throughput on the incompressible file with the
// chunk+hash micro-benchmark on all cores (the hardware limit of this
// design, a target of issue 4), or returns "" without either.
func randomNote(results []*Result, randomBytes int64, chunkHashMBps float64) string {
	s := summarize(results, "random", "snap")
	if s.ok == 0 || chunkHashMBps <= 0 || s.wall <= 0 {
		return ""
	}
	mbps := float64(randomBytes) / 1e6 / s.wall
	return strings.Join([]string{
		fmt.Sprintf("Incompressible: snap backs up the %d MiB random file at %.0f MB/s, %.0f %% of what chunking plus SHA-256",
			randomBytes>>20, mbps, 100*mbps/chunkHashMBps),
		fmt.Sprintf("sustain on all cores (`go test ./chunk -bench ChunkAndHash`, median of 5 right before the run: %.0f MB/s).", chunkHashMBps),
	}, " ")
}
