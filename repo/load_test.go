package repo

import (
	"bytes"
	"context"
	"testing"

	"snap/chunk"
	"snap/repo/pack"
)

// TestLoadBlobIntoReusesBuffers loads blobs of different sizes and
// encodings through one BlobBuffer and checks each against what was
// stored, and that a blob that fits reuses the grown buffers.
func TestLoadBlobIntoReusesBuffers(t *testing.T) {
	ctx := context.Background()
	dir := pruneTestRepo(t)
	r, release := pruneTestOpen(t, dir)
	defer release()
	text := bytes.Repeat([]byte("a line of text that compresses well\n"), 20000)
	blobs := [][]byte{text, pruneTestData(1, 30<<10), text[:5000], pruneTestData(2, 200<<10), text[:700000]}
	for _, data := range blobs {
		if _, _, err := r.SaveBlob(ctx, pack.DataBlob, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var buf BlobBuffer
	for round := 0; round < 2; round++ {
		for i, data := range blobs {
			loc, ok, err := r.Index().Lookup(chunk.Hash(data))
			if err != nil || !ok {
				t.Fatalf("blob %d: lookup: %v, %v", i, ok, err)
			}
			got, err := r.LoadBlobInto(ctx, loc, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("round %d, blob %d: loaded %d bytes that differ from the %d stored", round, i, len(got), len(data))
			}
		}
	}
	if cap(buf.raw) < len(text) {
		t.Fatalf("raw buffer of %d bytes: the largest compressed blob (%d bytes) did not grow it", cap(buf.raw), len(text))
	}
	raw := &buf.raw[:1][0]
	loc, _, _ := r.Index().Lookup(chunk.Hash(blobs[2]))
	if _, err := r.LoadBlobInto(ctx, loc, &buf); err != nil {
		t.Fatal(err)
	}
	if &buf.raw[:1][0] != raw {
		t.Fatal("a smaller blob did not reuse the raw buffer")
	}
}
