// Command bigindex fills the index of a local snap repository with made-up
// packs, so that the memory and speed of snap with a repository of millions
// of blobs can be measured without storing terabytes (docs/PERFORMANCE.md):
//
//	bigindex -blobs 10000000 REPO
//
// The packs do not exist in REPO/data: create, whose writer only looks blobs
// up, works; check, prune and restore of such a repository do not. Use a
// repository made for the measurement, never a real one.
package main

import (
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"snap/chunk"
	"snap/index"
	"snap/repo"
	"snap/repo/pack"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bigindex:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("bigindex", flag.ContinueOnError)
	n := fl.Int("blobs", 10_000_000, "blobs to add")
	perPack := fl.Int("pack-blobs", 2_000, "blobs per made-up pack (16 MiB of 8 KiB chunks)")
	if err := fl.Parse(args); err != nil || fl.NArg() != 1 || *perPack < 1 {
		return fmt.Errorf("usage: bigindex [-blobs N] [-pack-blobs N] REPO")
	}
	dir := fl.Arg(0)
	data, err := os.ReadFile(filepath.Join(dir, "config"))
	if err != nil {
		return err
	}
	cfg, err := repo.ParseConfig(data)
	if err != nil {
		return err
	}
	ix, err := index.Open(filepath.Join(dir, "index.db"), cfg.ID)
	if err != nil {
		return err
	}
	defer ix.Close()
	start := time.Now()
	for done := 0; done < *n; {
		var infos []index.PackInfo
		var lists [][]pack.Blob
		// 100 packs per transaction, as a rebuild commits them.
		for i := 0; i < 100 && done < *n; i++ {
			blobs := make([]pack.Blob, min(*perPack, *n-done))
			var off uint64
			for k := range blobs {
				id := randomID()
				l := uint32(8192 - binary.LittleEndian.Uint16(id[:2])%4096)
				blobs[k] = pack.Blob{Type: pack.DataBlob, Compression: pack.Zstd, ID: id, Offset: off, Length: l, RawLength: l + 100,
					Checksum: binary.LittleEndian.Uint64(id[8:])}
				off += uint64(l)
			}
			size := int64(off) + int64(len(blobs))*pack.EntrySize + pack.FooterSize
			infos = append(infos, index.PackInfo{ID: randomID(), Size: size, Count: len(blobs)})
			lists = append(lists, blobs)
			done += len(blobs)
		}
		if err := ix.AddPacks(infos, lists); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "\r%d blobs, %s", done, time.Since(start).Round(time.Second))
	}
	fmt.Fprintln(os.Stderr)
	return nil
}

func randomID() chunk.ID {
	var id chunk.ID
	rand.Read(id[:])
	return id
}
