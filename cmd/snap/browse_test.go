package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// browseFixture copies testdata/tree into a temporary directory named
// "tree" and adds what git cannot hold or the fixture lacks: odd names, a
// setuid file, a sticky directory, a file of many chunks, hard links. It
// returns the tree's path, a repository (small chunks) holding one snapshot
// of it, and the snapshot's ID.
func browseFixture(t *testing.T) (src, repo, id string) {
	t.Helper()
	src = filepath.Join(t.TempDir(), "tree")
	if err := os.CopyFS(src, os.DirFS("../../testdata/tree")); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 300_000)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	write := func(name string, data []byte, mode fs.FileMode) {
		t.Helper()
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask, and setuid
			t.Fatal(err)
		}
	}
	write("docs/big.bin", big, 0o600)
	write("bad-utf8-\xff", []byte("odd"), 0o644)
	write("name with\nnewline", []byte("nl"), 0o644)
	write("tool", []byte("#!/bin/sh\n"), 0o755|fs.ModeSetuid)
	write("hard-a", []byte("linked"), 0o644)
	if err := os.Link(filepath.Join(src, "hard-a"), filepath.Join(src, "docs", "hard-b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "tmp"), 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	// Fixed mtimes with nanoseconds, so that a lost fraction shows.
	mt := time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.Local)
	filepath.Walk(src, func(p string, fi fs.FileInfo, err error) error {
		if err == nil && fi.Mode()&fs.ModeSymlink == 0 {
			os.Chtimes(p, mt, mt)
		}
		return err
	})
	os.Chtimes(filepath.Join(src, "docs"), mt, mt) // after its entries were touched
	os.Chtimes(src, mt, mt)
	repo = filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo, "--chunk-min", "4KiB", "--chunk-avg", "8KiB", "--chunk-max", "32KiB")
	return src, repo, create(t, repo, src).SnapshotID
}

// walkSource lists src as snap paths ("/tree/..."), in Walk's order.
func walkSource(t *testing.T, src string) []string {
	t.Helper()
	var paths []string
	err := filepath.Walk(src, func(p string, _ fs.FileInfo, err error) error {
		if err != nil || p == src {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		paths = append(paths, "/tree/"+filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestLsRootDirAndRecursive(t *testing.T) {
	src, repo, id := browseFixture(t)
	if out := mustSnap(t, "ls", "-r", repo, "latest").stdout; out != "/tree\n" {
		t.Errorf("ls of the root: %q, want /tree", out)
	}
	want := []string{`"/tree/bad-utf8-\xff"`, "/tree/docs", "/tree/hard-a", `"/tree/name with\nnewline"`,
		"/tree/README.txt", "/tree/src", "/tree/tmp", "/tree/tool"}
	slices.SortFunc(want, func(a, b string) int { return strings.Compare(strings.Trim(a, `"`), strings.Trim(b, `"`)) })
	for _, dir := range []string{"/tree", "tree", "/tree/", "/tree/src/.."} {
		got := lines(mustSnap(t, "ls", "-r", repo, id[:8], dir).stdout)
		if !slices.Equal(got, want) {
			t.Errorf("ls %s:\n%q\nwant\n%q", dir, got, want)
		}
	}
	if got := mustSnap(t, "ls", "-r", repo, id, "/tree/docs/notes/fox.txt").stdout; got != "/tree/docs/notes/fox.txt\n" {
		t.Errorf("ls of a file: %q", got)
	}
	var wantAll []string
	for _, p := range append([]string{"/tree"}, walkSource(t, src)...) {
		wantAll = append(wantAll, displayPath(p))
	}
	if got := lines(mustSnap(t, "ls", "-r", repo, "latest", "--recursive").stdout); !slices.Equal(got, wantAll) {
		t.Errorf("ls --recursive:\n%q\nwant\n%q", got, wantAll)
	}
}

func TestLsLong(t *testing.T) {
	src, repo, _ := browseFixture(t)
	got := lines(mustSnap(t, "ls", "-r", repo, "latest", "-l", "--recursive").stdout)
	byPath := map[string]string{}
	for _, l := range got {
		f := strings.Fields(l)
		if i := slices.Index(f, "->"); i >= 0 {
			f = f[:i]
		}
		byPath[f[len(f)-1]] = l
	}
	owner := func(p string) (string, string) {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		u, g := strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid))
		if x, err := user.LookupId(u); err == nil {
			u = x.Username
		}
		if x, err := user.LookupGroupId(g); err == nil {
			g = x.Name
		}
		return u, g
	}
	for rel, mode := range map[string]string{
		"README.txt": "-rw-r--r--", "docs": "drwxr-xr-x", "tool": "-rwsr-xr-x", "tmp": "drwxrwxrwt", "docs/big.bin": "-rw-------",
		"src/readme-link": "lrwxrwxrwx",
	} {
		p := filepath.Join(src, rel)
		fi, _ := os.Lstat(p)
		u, g := owner(p)
		size := fi.Size()
		if fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0 {
			size = 0
		}
		want := fmt.Sprintf("%s %-8s %-8s %10d %s /tree/%s", mode, u, g, size, fi.ModTime().Format("2006-01-02 15:04"), rel)
		if rel == "src/readme-link" {
			want += " -> ../README.txt"
		}
		if l := byPath["/tree/"+rel]; l != want {
			t.Errorf("ls -l line of %s:\n%q\nwant\n%q", rel, l, want)
		}
	}
}

func TestLsJSON(t *testing.T) {
	src, repo, id := browseFixture(t)
	out := lines(mustSnap(t, "ls", "-r", repo, "latest", "--json", "--recursive").stdout)
	var head struct {
		MessageType string   `json:"message_type"`
		ID          string   `json:"id"`
		Paths       []string `json:"paths"`
	}
	if err := json.Unmarshal([]byte(out[0]), &head); err != nil || head.MessageType != "snapshot" || head.ID != id || head.Paths[0] != src {
		t.Fatalf("first line %s (%v): want the snapshot %s of %s", out[0], err, id, src)
	}
	nodes := map[string]nodeJSON{}
	for _, l := range out[1:] {
		var n nodeJSON
		if err := json.Unmarshal([]byte(l), &n); err != nil || n.MessageType != "node" {
			t.Fatalf("line %s: %v, want a node", l, err)
		}
		p := n.Path
		if n.Escaped {
			var err error
			if p, err = strconv.Unquote(`"` + p + `"`); err != nil {
				t.Fatalf("escaped path %q: %v", n.Path, err)
			}
		}
		nodes[p] = n
	}
	if len(nodes) != len(walkSource(t, src))+1 {
		t.Errorf("%d nodes, want %d", len(nodes), len(walkSource(t, src))+1)
	}
	fi, _ := os.Lstat(filepath.Join(src, "README.txt"))
	st := fi.Sys().(*syscall.Stat_t)
	n := nodes["/tree/README.txt"]
	if n.Name != "README.txt" || n.Type != "file" || n.Mode != 0o644 || n.Permissions != "-rw-r--r--" || n.Size != 156 ||
		!n.MTime.Equal(fi.ModTime()) || n.Inode != st.Ino || n.Links != 1 || n.UID != st.Uid || n.Escaped {
		t.Errorf("README.txt: %+v", n)
	}
	if n := nodes["/tree/src/readme-link"]; n.Type != "symlink" || n.LinkTarget != "../README.txt" {
		t.Errorf("readme-link: %+v", n)
	}
	if n := nodes["/tree/hard-a"]; n.Links != 2 {
		t.Errorf("hard-a: %d links, want 2", n.Links)
	}
	odd := nodes["/tree/bad-utf8-\xff"]
	if !odd.Escaped || odd.Path != `/tree/bad-utf8-\xff` || odd.Name != `bad-utf8-\xff` {
		t.Errorf("a name that is not UTF-8: %+v; want escaped path and name", odd)
	}
	if nl := nodes["/tree/name with\nnewline"]; nl.Escaped || nl.Name != "name with\nnewline" {
		t.Errorf("a name with a newline (valid UTF-8, so JSON can hold it): %+v", nl)
	}
}

func TestLsAndDumpUnknownPath(t *testing.T) {
	_, repo, _ := browseFixture(t)
	for _, args := range [][]string{
		{"ls", "-r", repo, "latest", "/tree/nope"},
		{"dump", "-r", repo, "latest", "/tree/nope"},
		{"ls", "-r", repo, "latest", "/tree/README.txt/nope"},
	} {
		r := snap(t, args...)
		if r.code != 1 || !strings.Contains(r.stderr, args[len(args)-1]) || r.stdout != "" {
			t.Errorf("snap %v: exit %d, stdout %q, stderr %q; want exit 1 naming the path", args, r.code, r.stdout, r.stderr)
		}
	}
}

// findGroups parses find's text output: each path with the short IDs of
// the snapshots listed under it, in order.
func findGroups(t *testing.T, out string) map[string][]string {
	t.Helper()
	groups := map[string][]string{}
	cur := ""
	for _, l := range lines(out) {
		switch {
		case strings.HasPrefix(l, "  "):
			groups[cur] = append(groups[cur], strings.Fields(l)[0])
		case strings.Contains(l, "matching paths in"):
		default:
			cur = l
			groups[cur] = nil
		}
	}
	return groups
}

func TestFindDeletedFile(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	if err := os.MkdirAll(filepath.Join(home, "archive/a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"lost.txt": "precious", "keep.txt": "v1", "archive/a/b/old.txt": "old"} {
		if err := os.WriteFile(filepath.Join(home, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	var ids []string // oldest first
	for i := 1; i <= 4; i++ {
		if i == 2 {
			if err := os.Remove(filepath.Join(home, "lost.txt")); err != nil {
				t.Fatal(err)
			}
		}
		if i > 1 {
			os.WriteFile(filepath.Join(home, "keep.txt"), []byte(strings.Repeat("v", i)), 0o644)
		}
		// Times out of creation order: find must sort by snapshot time.
		at := fmt.Sprintf("2026-0%d-01 10:00:00", 5-i)
		if i == 1 {
			at = "2025-12-01 10:00:00"
		}
		r := mustSnap(t, "create", "--json", "-r", repo, "--time", at, home)
		var s createSummary
		ls := lines(r.stdout)
		if err := json.Unmarshal([]byte(ls[len(ls)-1]), &s); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.SnapshotID[:8])
	}
	// Newest first by time: snapshot 2 (March), 3 (February), 4 (January), 1.
	byTime := []string{ids[1], ids[2], ids[3], ids[0]}

	out := mustSnap(t, "find", "-r", repo, "lost.txt").stdout
	g := findGroups(t, out)
	if len(g) != 1 || !slices.Equal(g["/home/lost.txt"], []string{ids[0]}) {
		t.Fatalf("find lost.txt:\n%s\nwant /home/lost.txt in %s only", out, ids[0])
	}
	if !strings.Contains(out, "8 B") || !strings.Contains(out, "2025-12-01 10:00") {
		t.Errorf("find lost.txt does not give the size (8 B) and the snapshot time:\n%s", out)
	}
	if g := findGroups(t, mustSnap(t, "find", "-r", repo, "keep.txt").stdout); !slices.Equal(g["/home/keep.txt"], byTime) {
		t.Errorf("find keep.txt lists snapshots %q, want newest first %q", g["/home/keep.txt"], byTime)
	}
	if g := findGroups(t, mustSnap(t, "find", "-r", repo, "keep.txt", "--snapshot", ids[0], "-s", ids[3]).stdout); !slices.Equal(g["/home/keep.txt"], []string{ids[3], ids[0]}) {
		t.Errorf("find --snapshot %s --snapshot %s lists %q", ids[0], ids[3], g["/home/keep.txt"])
	}

	// The archive subtree is the same in all four snapshots: it must be read
	// once, not four times.
	js := lines(mustSnap(t, "find", "-r", repo, "--json", "*.txt").stdout)
	var sum struct {
		MessageType string `json:"message_type"`
		Paths       int    `json:"paths"`
		Snapshots   int    `json:"snapshots"`
		TreesLoaded int    `json:"trees_loaded"`
	}
	if err := json.Unmarshal([]byte(js[len(js)-1]), &sum); err != nil || sum.MessageType != "summary" || sum.Paths != 3 || sum.Snapshots != 4 {
		t.Fatalf("find --json summary %s: %v", js[len(js)-1], err)
	}
	if sum.TreesLoaded >= 4*5 {
		t.Errorf("find read %d trees for 4 snapshots of 5 directories sharing a 3-directory subtree; want fewer than 20", sum.TreesLoaded)
	}
	var m findMatchJSON
	if err := json.Unmarshal([]byte(js[0]), &m); err != nil || m.Path != "/home/archive/a/b/old.txt" || len(m.Snapshots) != 4 ||
		m.Snapshots[0].ShortID != byTime[0] || m.Snapshots[0].Node.Size != 3 {
		t.Errorf("find --json first match %s (%v)", js[0], err)
	}
}

func TestFindIgnoreCaseAndPaths(t *testing.T) {
	_, repo, _ := browseFixture(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"readme.TXT"}, nil},
		{[]string{"-i", "readme.TXT"}, []string{"/tree/README.txt"}},
		{[]string{"--ignore-case", "README*"}, []string{"/tree/README.txt", "/tree/src/readme-link"}},
		{[]string{"docs/*.bin"}, []string{"/tree/docs/big.bin", "/tree/docs/random.bin"}},
		{[]string{"/tree/src/*"}, []string{"/tree/src/pkg", "/tree/src/readme-link"}},
		{[]string{"/src/*"}, nil},
		{[]string{"*/pkg/*.go", "fox.*"}, []string{"/tree/docs/notes/fox.txt", "/tree/src/pkg/add.go"}},
		{[]string{"bad-utf8-*"}, []string{`"/tree/bad-utf8-\xff"`}},
	} {
		out := mustSnap(t, append([]string{"find", "-r", repo}, tc.args...)...).stdout
		var got []string
		for p := range findGroups(t, out) {
			got = append(got, p)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("find %q found %q, want %q\n%s", tc.args, got, tc.want, out)
		}
	}
	if r := snap(t, "find", "-r", repo, "[oops"); r.code != 1 || !strings.Contains(r.stderr, "[oops") {
		t.Errorf("find with a bad pattern: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestDumpFileEqualsSource(t *testing.T) {
	src, repo, _ := browseFixture(t)
	want, err := os.ReadFile(filepath.Join(src, "docs/big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustSnap(t, "dump", "-r", repo, "latest", "/tree/docs/big.bin").stdout; got != string(want) {
		t.Fatalf("dump to stdout: %d bytes, not the %d of the source", len(got), len(want))
	}
	o := filepath.Join(t.TempDir(), "out.bin")
	mustSnap(t, "dump", "-r", repo, "latest", "tree/docs/big.bin", "-o", o)
	if !sameContent(t, filepath.Join(src, "docs/big.bin"), o) {
		t.Fatal("dump -o: content differs from the source")
	}
	if ents, _ := os.ReadDir(filepath.Dir(o)); len(ents) != 1 {
		t.Errorf("dump -o left more than the file behind: %v", ents)
	}
}

func TestDumpTarExtractsToSource(t *testing.T) {
	src, repo, _ := browseFixture(t)
	for _, p := range []string{"/tree", "/"} {
		archive := filepath.Join(t.TempDir(), "tree.tar")
		mustSnap(t, "dump", "-r", repo, "latest", p, "-o", archive)
		out := t.TempDir()
		cmd := exec.Command("tar", "-xpf", archive, "-C", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar -x of the dump of %s: %v\n%s", p, err, b)
		}
		compareTrees(t, src, filepath.Join(out, "tree"))
		a, errA := os.Stat(filepath.Join(out, "tree/hard-a"))
		b, errB := os.Stat(filepath.Join(out, "tree/docs/hard-b"))
		if errA != nil || errB != nil || !os.SameFile(a, b) {
			t.Errorf("dump of %s: hard-a and docs/hard-b are not one file after extraction (%v, %v)", p, errA, errB)
		}
	}
}

func TestDumpZip(t *testing.T) {
	src, repo, _ := browseFixture(t)
	archive := filepath.Join(t.TempDir(), "tree.zip")
	mustSnap(t, "dump", "-r", repo, "latest", "/tree", "--archive", "zip", "-o", archive)
	zr, err := zip.OpenReader(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[strings.TrimSuffix(f.Name, "/")] = f
	}
	var want []string
	for _, p := range walkSource(t, src) {
		want = append(want, strings.TrimPrefix(p, "/"))
	}
	if len(files) != len(want)+1 {
		t.Errorf("zip has %d entries, want %d", len(files), len(want)+1)
	}
	for _, name := range want {
		f := files[name]
		fi, err := os.Lstat(filepath.Join(filepath.Dir(src), name))
		if err != nil {
			t.Fatal(err)
		}
		if f == nil {
			t.Errorf("%q: not in the zip", name)
			continue
		}
		if f.Mode() != fi.Mode() {
			t.Errorf("%q: mode %v, want %v", name, f.Mode(), fi.Mode())
		}
		if fi.Mode()&fs.ModeSymlink == 0 && f.Modified.Unix() != fi.ModTime().Unix() {
			t.Errorf("%q: mtime %v, want %v", name, f.Modified, fi.ModTime())
		}
		var wantContent []byte
		switch {
		case fi.Mode().IsRegular():
			wantContent, _ = os.ReadFile(filepath.Join(filepath.Dir(src), name))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(filepath.Join(filepath.Dir(src), name))
			wantContent = []byte(target)
		default:
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, wantContent) {
			t.Errorf("%q: content differs (%v)", name, err)
		}
	}
}
