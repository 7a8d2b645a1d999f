package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"snap/chunk"
	"snap/repo"
	"snap/repo/pack"
)

// cipherDir returns n file nodes with eCryptfs-like names (long, random
// looking) and a header and a piece each, as a ciphertext directory has.
func cipherDir(n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		name := fmt.Sprintf("ECRYPTFS_FNEK_ENCRYPTED.FWZ5R-%x", chunk.Hash(fmt.Appendf(nil, "name %d", i)))
		nodes[i] = Node{Name: name, Type: TypeFile, Mode: 0o600, UID: 1000, GID: 1000, User: "me", Group: "me",
			MTime: testTime.Add(time.Duration(i) * time.Second), CTime: testTime, Inode: uint64(1000 + i), Links: 1, Size: 12288,
			Content: []chunk.ID{chunk.Hash(fmt.Appendf(nil, "header %d", i)), chunk.Hash(fmt.Appendf(nil, "piece %d", i))}}
	}
	return nodes
}

func TestSmallTreeNotPaged(t *testing.T) {
	nodes := cipherDir(5)
	blobs, err := encodeTreeBlobs(nodes)
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := EncodeTree(nodes)
	if len(blobs) != 1 || !bytes.Equal(blobs[0], whole) {
		t.Fatalf("a %d-byte directory became %d blobs; want the plain tree blob", len(whole), len(blobs))
	}
}

// TestPagedTree: a large directory is stored as pages that LoadTree joins
// back, one changed entry stores about one page, and prune's, copy's and
// stats' walks see every page.
func TestPagedTree(t *testing.T) {
	for _, n := range []int{40, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ctx := context.Background()
			r := newTestRepo(t)
			nodes := cipherDir(n)
			storeContent(t, r, n)
			whole, _ := EncodeTree(append([]Node(nil), nodes...))
			var stored []int
			id, err := saveTree(ctx, r, nodes, func(raw, _ int) { stored = append(stored, raw) })
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			top, err := r.LoadBlob(ctx, pack.TreeBlob, id)
			if err != nil {
				t.Fatal(err)
			}
			depth, _, err := DecodeTreeIndex(top)
			if err != nil {
				t.Fatalf("the top blob of a %d-byte directory: %v; want a tree index", len(whole), err)
			}
			if n == 5000 && depth < 2 {
				t.Errorf("%d nodes under an index of depth %d; want more than one level", n, depth)
			}
			got, below, err := loadTree(ctx, r, id)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, nodes) {
				t.Fatalf("loaded %d nodes, not the %d saved", len(got), len(nodes))
			}
			if len(below) != len(stored)-1 {
				t.Errorf("loadTree reports %d blobs below the top, saveTree stored %d", len(below), len(stored)-1)
			}
			for _, s := range stored {
				if s > pageMax+1024 && s > 8+listMax*chunk.IDSize {
					t.Errorf("a stored blob of %d bytes, more than a page", s)
				}
			}

			// One entry changes: about one page and the index path are new.
			edited := append([]Node(nil), nodes...)
			edited[n/2].MTime = edited[n/2].MTime.Add(time.Hour)
			edited[n/2].Content = []chunk.ID{chunk.Hash([]byte("new header")), chunk.Hash([]byte("new piece"))}
			var added, addedN int
			id2, err := saveTree(ctx, r, edited, func(raw, _ int) { added += raw; addedN++ })
			if err != nil {
				t.Fatal(err)
			}
			if id2 == id {
				t.Fatal("an edited directory kept its tree ID")
			}
			if limit := 2*pageMax + depth*(8+listMax*chunk.IDSize); added > limit || added > len(whole)/2 {
				t.Errorf("one changed entry stored %d bytes in %d blobs (directory %d bytes); want at most %d", added, addedN, len(whole), limit)
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			got2, err := LoadTree(ctx, r, id2)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got2, edited) {
				t.Fatal("the edited directory does not load back as saved")
			}

			// Every blob below the top is kept by prune and copied by copy.
			sn := &Snapshot{Time: testTime, Tree: wrapRoot(t, r, id), Paths: []string{"/d"}, Hostname: "h"}
			if err := Save(ctx, r, sn); err != nil {
				t.Fatal(err)
			}
			used, err := UsedBlobs(ctx, r, []*Snapshot{sn})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range below {
				if !used.Has(b) {
					t.Fatalf("UsedBlobs misses page %s", b.Short())
				}
			}
			dst := newTestRepo(t)
			if err := NewCopier(r, dst).Copy(ctx, sn); err != nil {
				t.Fatal(err)
			}
			if err := dst.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			copied, err := LoadTree(ctx, dst, id)
			if err != nil {
				t.Fatalf("the copy cannot load the paged tree: %v", err)
			}
			if !reflect.DeepEqual(copied, nodes) {
				t.Fatal("the copied tree differs")
			}
		})
	}
}

// storeContent stores the data blobs cipherDir(n) names, and those of the
// edit in TestPagedTree.
func storeContent(t *testing.T, r *repo.Repository, n int) {
	t.Helper()
	data := [][]byte{[]byte("new header"), []byte("new piece")}
	for i := range n {
		data = append(data, fmt.Appendf(nil, "header %d", i), fmt.Appendf(nil, "piece %d", i))
	}
	for _, d := range data {
		if _, _, err := r.SaveBlob(context.Background(), pack.DataBlob, d); err != nil {
			t.Fatal(err)
		}
	}
}

// wrapRoot stores a root tree holding one directory d with subtree id.
func wrapRoot(t *testing.T, r *repo.Repository, id chunk.ID) chunk.ID {
	t.Helper()
	ctx := context.Background()
	root, err := saveTree(ctx, r, []Node{{Name: "d", Type: TypeDir, Mode: 0o755, MTime: testTime, Subtree: id}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestPagedTreeDamage: pages out of order, a missing page and an index of the
// wrong depth are errors, not wrong listings.
func TestPagedTreeDamage(t *testing.T) {
	ctx := context.Background()
	r := newTestRepo(t)
	nodes := cipherDir(60)
	blobs, err := encodeTreeBlobs(nodes)
	if err != nil {
		t.Fatal(err)
	}
	_, pages, err := DecodeTreeIndex(blobs[len(blobs)-1])
	if err != nil || len(pages) < 3 {
		t.Fatalf("60 nodes: %d pages, %v", len(pages), err)
	}
	for _, b := range blobs[:len(blobs)-1] {
		if _, _, err := r.SaveBlob(ctx, pack.TreeBlob, b); err != nil {
			t.Fatal(err)
		}
	}
	missing := chunk.Hash([]byte("no such page"))
	for name, ids := range map[string][]chunk.ID{
		"swapped": append([]chunk.ID{pages[1], pages[0]}, pages[2:]...),
		"twice":   append([]chunk.ID{pages[0]}, pages...),
		"missing": append([]chunk.ID{missing}, pages[1:]...),
	} {
		id, _, err := r.SaveBlob(ctx, pack.TreeBlob, encodeTreeIndex(1, ids))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadTree(ctx, r, id); err == nil {
			t.Errorf("%s pages: loaded without an error", name)
		}
	}
	// An index claiming depth 2 over leaf pages.
	id, _, err := r.SaveBlob(ctx, pack.TreeBlob, encodeTreeIndex(2, pages))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTree(ctx, r, id); err == nil {
		t.Error("an index of depth 2 over leaf pages loaded without an error")
	}
	// A page without nodes.
	empty, _, err := r.SaveBlob(ctx, pack.TreeBlob, []byte{treeVersion, 0})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err = r.SaveBlob(ctx, pack.TreeBlob, encodeTreeIndex(1, append([]chunk.ID{pages[0], empty}, pages[1:]...)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTree(ctx, r, id); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty page: %v, want an error saying so", err)
	}
}

func FuzzDecodeTreeIndex(f *testing.F) {
	blobs, _ := encodeTreeBlobs(cipherDir(40))
	f.Add(blobs[len(blobs)-1])
	f.Add(encodeTreeIndex(3, []chunk.ID{{1}}))
	f.Add([]byte{treeIndexVersion, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		depth, ids, err := DecodeTreeIndex(b)
		if err != nil {
			return
		}
		if again := encodeTreeIndex(depth, ids); !bytes.Equal(again, b) {
			t.Fatalf("decode/encode not canonical:\n%x\n%x", b, again)
		}
	})
}
