package snapshot

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"snap/chunk"
)

// TestLargeFileChunkedInParallel backs up two files large enough for
// chunk.Parallel at once and checks that each content list is exactly the
// one sequential chunking of its bytes gives, so that a large file
// deduplicates the same whichever way it was cut, and that both restore to
// their bytes: their chunks are read straight into buffers that the savers
// hand back for reuse, and runs of zeros make chunks larger than those.
func TestLargeFileChunkedInParallel(t *testing.T) {
	ctx := context.Background()
	r := newTestRepoChunks(t, chunk.DefaultMin, chunk.DefaultAvg, chunk.DefaultMax)
	src := t.TempDir()
	files := map[string][]byte{
		"disk.img":  largeTestFile(7, parallelFrom+3<<20+4321),
		"disk2.img": largeTestFile(9, parallelFrom+5<<20+17),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sn, err := Create(ctx, r, CreateOptions{Paths: []string{src}, Host: "test", Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*Node{}
	err = Walk(ctx, r, sn.Tree, "", func(p string, n *Node) error {
		if _, ok := files[n.Name]; ok {
			nodes[n.Name] = n
		}
		return nil
	})
	if err != nil || len(nodes) != len(files) {
		t.Fatalf("walk: %v; file nodes found: %d of %d", err, len(nodes), len(files))
	}
	for name, data := range files {
		node := nodes[name]
		want, large := sequentialChunks(t, r.Config().Chunker, data)
		if node.Size != uint64(len(data)) || !slices.Equal(node.Content, want) {
			t.Fatalf("%s of %d bytes saved as %d bytes in %d blobs; sequential chunking gives %d blobs (equal: %v)",
				name, len(data), node.Size, len(node.Content), len(want), slices.Equal(node.Content, want))
		}
		if large == 0 {
			t.Fatalf("%s: no chunk larger than the reused buffers (%d bytes); the test data no longer covers them", name, copySize)
		}
	}

	out := t.TempDir()
	if _, err := Restore(ctx, r, sn, "", RestoreOptions{Target: out}); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(out, filepath.Base(src), name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s restored differs from the file backed up (%d and %d bytes)", name, len(got), len(data))
		}
	}
}

// largeTestFile returns size seeded random bytes with a run of zeros long
// enough for chunks of the maximum size and a repeated stretch, so that
// some chunks repeat and some cuts are forced by the maximum.
func largeTestFile(seed uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seed, 8))
	data := make([]byte, size)
	for i := 0; i+8 <= len(data); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	clear(data[10<<20 : 22<<20])
	copy(data[80<<20:], data[30<<20:34<<20])
	return data
}

// sequentialChunks returns the IDs of data's chunks cut by one Chunker, and
// how many are larger than copySize.
func sequentialChunks(t *testing.T, p chunk.Params, data []byte) (ids []chunk.ID, large int) {
	t.Helper()
	ch := chunk.NewChunker(p)
	ch.Reset(bytes.NewReader(data))
	for {
		c, err := ch.Next(nil)
		if errors.Is(err, io.EOF) {
			return ids, large
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(c) > copySize {
			large++
		}
		ids = append(ids, chunk.Hash(c))
	}
}

// TestChunkBuffersLetGo checks that the reused chunk buffers of large files
// are kept while a large file is being read and let go once none is, so
// that they do not stay live for the rest of a backup.
func TestChunkBuffersLetGo(t *testing.T) {
	a := &archiver{copies: make(chan []byte, 6)}
	a.largeFiles.Add(2)
	bufs := [][]byte{a.chunkBuffer(), a.chunkBuffer(), a.chunkBuffer()}
	for _, b := range bufs {
		a.recycle(b)
	}
	a.recycle(make([]byte, 0, 4<<20)) // a larger chunk's own buffer: not kept
	if len(a.copies) != 3 {
		t.Fatalf("%d buffers kept for reuse, want 3", len(a.copies))
	}
	a.endLargeFile()
	if len(a.copies) != 3 {
		t.Fatalf("%d buffers kept while a large file is still read, want 3", len(a.copies))
	}
	a.endLargeFile()
	if len(a.copies) != 0 {
		t.Fatalf("%d buffers kept after the last large file, want 0", len(a.copies))
	}
}
