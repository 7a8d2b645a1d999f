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

// TestLargeFileChunkedInParallel backs up a file large enough for
// chunk.Parallel and checks that its content list is exactly the one
// sequential chunking of its bytes gives, so that a large file deduplicates
// the same whichever way it was cut.
func TestLargeFileChunkedInParallel(t *testing.T) {
	ctx := context.Background()
	r := newTestRepo(t)
	src := t.TempDir()
	// Random bytes with a run of zeros and a repeated stretch in between,
	// so that some chunks repeat and some cuts are forced by the maximum.
	rng := rand.New(rand.NewPCG(7, 8))
	data := make([]byte, parallelFrom+3<<20+4321)
	for i := 0; i+8 <= len(data); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	clear(data[10<<20 : 12<<20])
	copy(data[80<<20:], data[20<<20:24<<20])
	file := filepath.Join(src, "disk.img")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sn, err := Create(ctx, r, CreateOptions{Paths: []string{src}, Host: "test", Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	var node *Node
	err = Walk(ctx, r, sn.Tree, "", func(p string, n *Node) error {
		if n.Name == "disk.img" {
			node = n
		}
		return nil
	})
	if err != nil || node == nil {
		t.Fatalf("walk: %v; file node found: %v", err, node != nil)
	}

	ch := chunk.NewChunker(r.Config().Chunker)
	ch.Reset(bytes.NewReader(data))
	var want []chunk.ID
	for {
		c, err := ch.Next(nil)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, chunk.Hash(c))
	}
	if node.Size != uint64(len(data)) || !slices.Equal(node.Content, want) {
		t.Fatalf("file of %d bytes saved as %d bytes in %d blobs; sequential chunking gives %d blobs (equal: %v)",
			len(data), node.Size, len(node.Content), len(want), slices.Equal(node.Content, want))
	}
}
