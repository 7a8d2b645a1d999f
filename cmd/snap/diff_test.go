package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestDiffSnapshotsAndLive(t *testing.T) {
	src := filepath.Join(t.TempDir(), "home")
	files := map[string]string{"top": "x"}
	for d := 0; d < 30; d++ {
		for s := 0; s < 10; s++ {
			files["d"+strconv.Itoa(d)+"/s"+strconv.Itoa(s)+"/f"] = strconv.Itoa(d*100 + s)
		}
	}
	writeFiles(t, src, files)
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	create(t, repo, src)

	// One file changes deep down, one file goes, one appears, one changes mode.
	os.WriteFile(filepath.Join(src, "d7/s3/f"), []byte("changed"), 0o644)
	os.Remove(filepath.Join(src, "top"))
	writeFiles(t, src, map[string]string{"new/n": "n"})
	os.Chmod(filepath.Join(src, "d9/s9/f"), 0o600)
	live := mustSnap(t, "diff", "-r", repo, "latest", src)
	for _, want := range []string{"M  /home/d7/s3/f  (3 B -> 7 B)", "-  /home/top", "+  /home/new/", "+  /home/new/n"} {
		if !strings.Contains(live.stdout, want) {
			t.Errorf("diff against the disk lacks %q:\n%s", want, live.stdout)
		}
	}
	create(t, repo, src)
	out := mustSnap(t, "diff", "-r", repo, "latest~1", "latest")
	want := "M  /home/d7/s3/f  (3 B -> 7 B)\nU  /home/d9/s9/f  (mode 0644 -> 0600)\n+  /home/new/\n+  /home/new/n  (1 B)\n-  /home/top  (1 B)\n"
	if out.stdout != want {
		t.Errorf("diff latest~1 latest:\n%s\nwant:\n%s", out.stdout, want)
	}

	// Only one file differs: only the trees on its path may be read.
	os.WriteFile(filepath.Join(src, "d20/s5/f"), []byte("again"), 0o644)
	create(t, repo, src)
	st := mustSnap(t, "diff", "-r", repo, "latest~1", "latest", "--stat", "--json")
	var s struct {
		Modified    int   `json:"modified"`
		Added       int   `json:"added"`
		TreesLoaded int64 `json:"trees_loaded"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(st.stdout)), &s); err != nil {
		t.Fatalf("--stat --json: %v: %q", err, st.stdout)
	}
	// root, home, d20, s5 in each of the two snapshots
	if s.Modified != 1 || s.Added != 0 || s.TreesLoaded != 8 {
		t.Errorf("one-file change: %+v; want 1 modified and 8 trees read (the path only)", s)
	}
	// A subpath restricts both sides.
	sub := mustSnap(t, "diff", "-r", repo, "latest~2", "latest", "/home/d7")
	if strings.TrimSpace(sub.stdout) != "M  /home/d7/s3/f  (3 B -> 7 B)" {
		t.Errorf("diff below /home/d7: %q", sub.stdout)
	}
	if r := snap(t, "diff", "-r", repo, "latest", "no-such-thing"); r.code != 1 {
		t.Errorf("diff against nothing: exit %d, want 1", r.code)
	}
}
