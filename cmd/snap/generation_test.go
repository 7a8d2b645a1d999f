package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"snap/chunk"
	"snap/index"
	"snap/repo"
	"snap/repo/pack"
)

// snapshotGeneration reads the index_generation of a local snapshot document.
func snapshotGeneration(t *testing.T, repoDir, id string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoDir, "snapshots", id))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Gen string `json:"index_generation"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Gen
}

// dataOnlyPack returns a pack that holds content blobs and no tree, so that
// losing it loses file data while every tree stays readable.
func dataOnlyPack(t *testing.T, repoDir string) chunk.ID {
	t.Helper()
	ix := openIndex(t, repoDir)
	defer ix.Close()
	hasTree := map[chunk.ID]bool{}
	if err := ix.Blobs(func(l index.Location) error {
		hasTree[l.Pack] = hasTree[l.Pack] || l.Type == pack.TreeBlob
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for id, tree := range hasTree {
		if !tree {
			return id
		}
	}
	t.Fatalf("every pack of %s holds a tree", repoDir)
	return chunk.ID{}
}

// TestParentTrustedOnlyUnderItsGeneration: a backup reuses an unchanged
// file's blobs without looking them up only while the index generation its
// parent was written under is current. Once blobs left the index (a pack
// removed, as prune does; an index rebuilt after a pack was lost), the next
// backup must find the file's blobs missing and store them again.
func TestParentTrustedOnlyUnderItsGeneration(t *testing.T) {
	src := t.TempDir()
	big := make([]byte, 40<<20) // several packs of content only
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "small.txt"), []byte("small\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, loss := range []string{"pack removed from the index", "pack file lost, index rebuilt"} {
		t.Run(loss, func(t *testing.T) {
			repoDir := filepath.Join(t.TempDir(), "repo")
			mustSnap(t, "init", "-r", repoDir)
			first := create(t, repoDir, src)
			second := create(t, repoDir, src)
			g1, g2 := snapshotGeneration(t, repoDir, first.SnapshotID), snapshotGeneration(t, repoDir, second.SnapshotID)
			if len(g1) != 32 || g1 != g2 {
				t.Fatalf("index generations of two backups: %q and %q; want the same 32 hex digits", g1, g2)
			}
			if second.FilesUnchanged != 2 || second.BytesRead != 0 {
				t.Fatalf("second backup: %+v; want both files unchanged, nothing read", second)
			}

			lost := dataOnlyPack(t, repoDir)
			if loss == "pack removed from the index" {
				ix := openIndex(t, repoDir)
				if err := ix.RemovePacks([]chunk.ID{lost}); err != nil {
					t.Fatal(err)
				}
				ix.Close()
			}
			if err := os.Remove(filepath.Join(repoDir, repo.PackName(lost))); err != nil {
				t.Fatal(err)
			}
			if loss == "pack file lost, index rebuilt" {
				mustSnap(t, "repair", "index", "-r", repoDir)
			}

			third := create(t, repoDir, src)
			if g3 := snapshotGeneration(t, repoDir, third.SnapshotID); g3 == g2 || len(g3) != 32 {
				t.Errorf("generation after the loss: %q, before %q; want a new one", g3, g2)
			}
			if third.BytesRead < int64(len(big)) || third.BytesAdded == 0 {
				t.Fatalf("backup after the loss: %+v; want big.bin read and its lost blobs stored again", third)
			}
			out := t.TempDir()
			mustSnap(t, "restore", "-r", repoDir, third.SnapshotID[:12], "--target", out)
			compareTrees(t, src, filepath.Join(out, filepath.Base(src)))
		})
	}
}
