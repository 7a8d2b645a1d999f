package repo

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"snap/chunk"
	"snap/internal/backend/local"
	"snap/repo/pack"
)

// namingTestRepo makes a repository of the given format version at a new
// directory, stores two blobs in one pack and returns it with that pack's
// file.
func namingTestRepo(t *testing.T, version int) (*Repository, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(t)
	cfg.Version = version
	r, err := Init(ctx, local.New(dir), cfg, Options{IndexPath: filepath.Join(dir, "index.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	for i := range 2 {
		if _, _, err := r.SaveBlob(ctx, pack.DataBlob, pruneTestData(uint64(i), 50000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	packs, err := r.PackList()
	if err != nil || len(packs) != 1 {
		t.Fatalf("%d packs, %v; want 1", len(packs), err)
	}
	return r, filepath.Join(dir, PackName(packs[0].ID))
}

// TestPackNamingByVersion checks that a version 1 repository keeps naming
// packs by the SHA-256 of the whole file and a version 2 one by that of the
// trailer and footer, and that check accepts each under its own rule.
func TestPackNamingByVersion(t *testing.T) {
	ctx := context.Background()
	for _, version := range []int{1, 2} {
		r, file := namingTestRepo(t, version)
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		tl := len(data) - pack.FooterSize - 2*pack.EntrySize
		want := map[int][32]byte{1: sha256.Sum256(data), 2: sha256.Sum256(data[tl:])}[version]
		if filepath.Base(file) != chunk.ID(want).String() {
			t.Errorf("version %d: pack named %s, want %s", version, filepath.Base(file), chunk.ID(want))
		}
		var findings []Finding
		if err := r.CheckPacks(ctx, func(f Finding) { findings = append(findings, f) }); err != nil || len(findings) > 0 {
			t.Errorf("version %d: CheckPacks: %v, %+v", version, err, findings)
		}
		packs, _ := r.PackList()
		if bad, err := r.CheckPackData(ctx, packs[0]); err != nil || len(bad) > 0 {
			t.Errorf("version %d: CheckPackData: %v, %v", version, bad, err)
		}
	}
}

// TestTrailerNameCheckedWithoutData: in a version 2 repository a pack whose
// name is not the hash of its trailer is reported by the trailer-only check
// and is not indexed when found in data/; a damaged blob byte, which the
// name does not cover, is found by --read-data through the blob's checksum.
func TestTrailerNameCheckedWithoutData(t *testing.T) {
	ctx := context.Background()
	r, file := namingTestRepo(t, 2)
	packs, _ := r.PackList()
	good := packs[0]
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := pack.ReadTrailer(bytesReaderAt(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}

	// The same bytes under another name: not indexed when found, and an
	// error once something indexes it anyway.
	other := chunk.Hash([]byte("another name"))
	otherFile := filepath.Join(filepath.Dir(file), "..", "..", PackName(other)) // file is <repo>/data/xx/<id>
	if err := os.MkdirAll(filepath.Dir(otherFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := r.IndexNewPacks(ctx); err != nil || n != 0 {
		t.Fatalf("IndexNewPacks indexed %d packs (%v); want the misnamed one left out", n, err)
	}
	if err := r.idx.AddPack(other, int64(len(data)), blobs); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	if err := r.CheckPacks(ctx, func(f Finding) {
		if f.Severity == SeverityError {
			msgs = append(msgs, f.Msg)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || !strings.Contains(msgs[0], other.Short()) || !strings.Contains(msgs[0], "does not match its name") {
		t.Fatalf("CheckPacks errors %q; want one naming pack %s", msgs, other.Short())
	}

	// A flipped blob byte: the name still matches, the blob does not.
	data[blobs[1].Offset+100] ^= 0x40
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	bad, err := r.CheckPackData(ctx, good)
	if len(bad) != 1 || bad[0] != blobs[1].ID {
		t.Fatalf("CheckPackData found %v (%v); want blob %s", bad, err, blobs[1].ID.Short())
	}
}

// TestIndexNewPacksFindsUnindexed: a pack in data/ that the index lost (a
// run killed before its commit) is indexed again with its size, through the
// local backend's name-only listing, and its blobs load.
func TestIndexNewPacksFindsUnindexed(t *testing.T) {
	ctx := context.Background()
	r, file := namingTestRepo(t, 2)
	packs, _ := r.PackList()
	if err := r.idx.RemovePacks([]chunk.ID{packs[0].ID}); err != nil {
		t.Fatal(err)
	}
	if n, err := r.IndexNewPacks(ctx); err != nil || n != 1 {
		t.Fatalf("IndexNewPacks indexed %d packs (%v); want the one in data/", n, err)
	}
	again, err := r.PackList()
	fi, _ := os.Stat(file)
	if err != nil || len(again) != 1 || again[0].ID != packs[0].ID || again[0].Size != fi.Size() {
		t.Fatalf("packs indexed: %+v (%v); want %s of %d bytes", again, err, packs[0].ID.Short(), fi.Size())
	}
	if _, err := r.LoadBlob(ctx, pack.DataBlob, chunk.Hash(pruneTestData(0, 50000))); err != nil {
		t.Fatal(err)
	}
}
