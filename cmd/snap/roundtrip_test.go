package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"snap/internal/testtree"
)

func TestRoundTripTestdata(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	src := filepath.Join(t.TempDir(), "tree")
	if err := os.CopyFS(src, os.DirFS("../../testdata/tree")); err != nil {
		t.Fatal(err)
	}
	// Things git cannot hold: an empty directory, odd names, special modes.
	for _, d := range []string{"empty-dir", "name with\nnewline", "bad-utf8-\xff"} {
		if err := os.Mkdir(filepath.Join(src, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "bad-utf8-\xff", "x"), []byte("x"), 0o4755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(src, "bad-utf8-\xff", "x"), 0o755|os.ModeSetuid)
	if err := os.Symlink("../README.txt", filepath.Join(src, "docs", "link")); err != nil {
		t.Fatal(err)
	}
	mustSnap(t, "init", "-r", repo)
	s := create(t, repo, src)
	if s.FilesNew == 0 || s.BytesAdded == 0 {
		t.Fatalf("first backup stored nothing: %+v", s)
	}
	out := t.TempDir()
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out)
	compareTrees(t, src, filepath.Join(out, "tree"))

	list := mustSnap(t, "snapshots", "-r", repo)
	if !strings.Contains(list.stdout, s.SnapshotID[:8]) || !strings.Contains(list.stdout, src) {
		t.Fatalf("snapshots does not list %s of %s:\n%s", s.SnapshotID[:8], src, list.stdout)
	}
}

func TestRoundTripGeneratedTree(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 10,000-file tree of ~300 MiB")
	}
	src := filepath.Join(t.TempDir(), "gen")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := testtree.Write(src, testtree.Spec{Seed: 1, Files: 10000, Large: []int{100 << 20, 3<<20 + 17}}); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	first := create(t, repo, src)
	if first.FilesNew < 10000 {
		t.Fatalf("first backup saw %d new files, want >= 10000", first.FilesNew)
	}
	out := t.TempDir()
	mustSnap(t, "restore", "-r", repo, first.SnapshotID[:12], "--target", out)
	compareTrees(t, src, filepath.Join(out, "gen"))

	// An unchanged tree adds (almost) nothing.
	before := packBytes(t, repo)
	second := create(t, repo, src)
	if grown := packBytes(t, repo) - before; grown >= 1<<20 {
		t.Errorf("second backup of an unchanged tree grew the repository by %d bytes, want < 1 MiB", grown)
	}
	if second.BytesRead != 0 || second.FilesUnchanged < 10000 {
		t.Errorf("second backup read %d bytes and found %d unchanged files; unchanged files should not be read", second.BytesRead, second.FilesUnchanged)
	}

	// A copy of a 100 MiB file adds (almost) nothing.
	big := filepath.Join(src, "large0.img")
	data, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "copy.img"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	before = packBytes(t, repo)
	create(t, repo, src)
	if grown := packBytes(t, repo) - before; grown >= 1<<20 {
		t.Errorf("a copy of a 100 MiB file grew the repository by %d bytes, want < 1 MiB", grown)
	}

	// One changed byte in the middle of it adds less than 3 x chunk-max.
	f, err := os.OpenFile(big, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{data[50<<20] ^ 0xff}, 50<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before = packBytes(t, repo)
	changed := create(t, repo, src)
	if grown := packBytes(t, repo) - before; grown >= 3*8<<20 {
		t.Errorf("a 1-byte change grew the repository by %d bytes, want < 3 x 8 MiB", grown)
	}
	if changed.FilesChanged != 1 {
		t.Errorf("after a 1-byte edit, %d files changed, want 1", changed.FilesChanged)
	}
	out2 := t.TempDir()
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out2)
	compareTrees(t, src, filepath.Join(out2, "gen"))
}

func TestMissingPathWritesNothing(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	r := snap(t, "create", "-r", repo, filepath.Join(t.TempDir(), "does-not-exist"))
	if r.code != 1 || !strings.Contains(r.stderr, "does-not-exist") {
		t.Fatalf("create of a missing path: exit %d, stderr %q; want exit 1 naming the path", r.code, r.stderr)
	}
	if ents, _ := os.ReadDir(filepath.Join(repo, "snapshots")); len(ents) != 0 {
		t.Fatalf("a snapshot was written for a missing path: %v", ents)
	}
}

func TestNotARepository(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"snapshots", "-r", dir},
		{"create", "-r", dir, "../../testdata/tree"},
		{"restore", "-r", filepath.Join(dir, "nope"), "latest", "--target", t.TempDir()},
	} {
		r := snap(t, args...)
		if r.code != 10 || !strings.Contains(r.stderr, "snap init") {
			t.Errorf("snap %v: exit %d, stderr %q; want exit 10 telling to run snap init", args, r.code, r.stderr)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("commands on a non-repository left files behind: %v", ents)
	}
}

func TestCreateInit(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	if r := snap(t, "create", "-r", repo, "../../testdata/tree"); r.code != 10 {
		t.Fatalf("create without --init on no repository: exit %d, want 10", r.code)
	}
	mustSnap(t, "create", "--init", "-r", repo, "../../testdata/tree")
	if r := mustSnap(t, "snapshots", "-r", repo, "--json"); !strings.Contains(r.stdout, `"short_id"`) {
		t.Fatalf("no snapshot after create --init: %s", r.stdout)
	}
}
