package snapshot

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"snap/chunk"
	"snap/internal/backend/local"
	"snap/repo"
	"snap/repo/pack"
)

// The tests of this file and dump_test.go write trees by hand rather than
// with Create, so that they control exactly which subtrees are shared, and
// can write nodes no file system would give them.

func newTestRepo(t *testing.T) *repo.Repository {
	t.Helper()
	return newTestRepoChunks(t, 4<<10, 8<<10, 32<<10)
}

// newTestRepoChunks is newTestRepo with the given chunk sizes.
func newTestRepoChunks(t *testing.T, min, avg, max uint) *repo.Repository {
	t.Helper()
	r := initTestRepo(t, t.TempDir(), min, avg, max, repo.Options{})
	t.Cleanup(func() { r.Close() })
	return r
}

// initTestRepo creates a repository in dir with the given chunk sizes and
// options, its index in dir.
func initTestRepo(t *testing.T, dir string, min, avg, max uint, opts repo.Options) *repo.Repository {
	t.Helper()
	p, err := chunk.NewParams(min, avg, max)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := repo.NewConfig(p, repo.CompressAuto)
	if err != nil {
		t.Fatal(err)
	}
	opts.IndexPath = filepath.Join(dir, "index.db")
	r, err := repo.Init(context.Background(), local.New(dir), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testTime is the mtime of the nodes the tests write, with nanoseconds so
// that losing them shows.
var testTime = time.Unix(1764000000, 123456789)

// tdir describes a directory for saveTree: a string value is a file's
// content, a tdir a subdirectory, a tlink a symlink, a Node is used as it is
// (its name set from the key).
type tdir map[string]any

type tlink string

// saveTestTree stores d and everything below it, and returns its tree ID. File
// content is cut into blobs of at most 1000 bytes, so that files of more
// than one blob are easy to make.
func saveTestTree(t *testing.T, r *repo.Repository, d tdir) chunk.ID {
	t.Helper()
	id := storeTree(t, r, d)
	// Once per call: a flush fsyncs the pack.
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return id
}

func storeTree(t *testing.T, r *repo.Repository, d tdir) chunk.ID {
	t.Helper()
	ctx := context.Background()
	var nodes []Node
	for name, v := range d {
		n := Node{Name: name, Mode: 0o644, UID: 1000, GID: 1000, User: "me", Group: "staff", MTime: testTime}
		switch v := v.(type) {
		case string:
			n.Type, n.Size = TypeFile, uint64(len(v))
			for data := []byte(v); len(data) > 0; {
				k := min(len(data), 1000)
				id, _, err := r.SaveBlob(ctx, pack.DataBlob, data[:k])
				if err != nil {
					t.Fatal(err)
				}
				n.Content = append(n.Content, id)
				data = data[k:]
			}
		case tdir:
			n.Type, n.Mode, n.Subtree = TypeDir, 0o755, storeTree(t, r, v)
		case tlink:
			n.Type, n.Mode, n.LinkTarget = TypeSymlink, 0o777, string(v)
		case Node:
			n = v
			n.Name = name
		default:
			t.Fatalf("saveTree: %s: unknown value %T", name, v)
		}
		nodes = append(nodes, n)
	}
	data, err := EncodeTree(nodes)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := r.SaveBlob(ctx, pack.TreeBlob, data)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func sampleTree() tdir {
	return tdir{
		"me": tdir{
			"b.txt": "bee",
			"a":     tdir{"x": "ex", "y": tdir{"deep.txt": "deep"}},
			"c":     tdir{},
		},
		"other.txt": "other",
	}
}

// walkPaths returns the paths Walk gives, with fn's verdict per path.
func walkPaths(t *testing.T, r *repo.Repository, tree chunk.ID, prefix string, verdict map[string]error) ([]string, error) {
	t.Helper()
	var got []string
	err := Walk(context.Background(), r, tree, prefix, func(p string, n *Node) error {
		got = append(got, p)
		if !strings.HasSuffix(p, "/"+n.Name) {
			t.Errorf("path %q does not end in the node's name %q", p, n.Name)
		}
		return verdict[p]
	})
	return got, err
}

func TestWalkOrderAndPrefix(t *testing.T) {
	r := newTestRepo(t)
	tree := saveTestTree(t, r, sampleTree())
	want := []string{"/me", "/me/a", "/me/a/x", "/me/a/y", "/me/a/y/deep.txt", "/me/b.txt", "/me/c", "/other.txt"}
	for _, prefix := range []string{"", "/"} {
		got, err := walkPaths(t, r, tree, prefix, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Walk with prefix %q gave\n%q\nwant\n%q", prefix, got, want)
		}
	}
	got, err := walkPaths(t, r, tree, "/snap/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != "/snap/me" || got[len(got)-1] != "/snap/other.txt" {
		t.Errorf("Walk with prefix /snap/ gave %q", got)
	}
}

func TestWalkSkipping(t *testing.T) {
	r := newTestRepo(t)
	tree := saveTestTree(t, r, sampleTree())
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		verdict map[string]error
		want    []string
		err     error
	}{
		{"skip a directory", map[string]error{"/me/a": ErrSkipDir},
			[]string{"/me", "/me/a", "/me/b.txt", "/me/c", "/other.txt"}, nil},
		{"skip from a file: rest of its directory", map[string]error{"/me/a/x": ErrSkipDir},
			[]string{"/me", "/me/a", "/me/a/x", "/me/b.txt", "/me/c", "/other.txt"}, nil},
		{"skip all", map[string]error{"/me/a/y/deep.txt": ErrSkipAll},
			[]string{"/me", "/me/a", "/me/a/x", "/me/a/y", "/me/a/y/deep.txt"}, nil},
		{"error", map[string]error{"/me/a/y": boom},
			[]string{"/me", "/me/a", "/me/a/x", "/me/a/y"}, boom},
	} {
		got, err := walkPaths(t, r, tree, "", tc.verdict)
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: visited\n%q\nwant\n%q", tc.name, got, tc.want)
		}
	}
}

func TestWalkMissingSubtreeNamesPath(t *testing.T) {
	r := newTestRepo(t)
	ghost := Node{Type: TypeDir, Mode: 0o755, Subtree: chunk.Hash([]byte("never stored"))}
	tree := saveTestTree(t, r, tdir{"me": tdir{"gone": ghost}})
	_, err := walkPaths(t, r, tree, "", nil)
	if !errors.Is(err, repo.ErrBlobMissing) || !strings.Contains(err.Error(), "/me/gone") {
		t.Fatalf("walk into a missing tree: %v; want ErrBlobMissing naming /me/gone", err)
	}
	if err := Walk(context.Background(), r, chunk.Hash([]byte("no root")), "", func(string, *Node) error { return nil }); !errors.Is(err, repo.ErrBlobMissing) {
		t.Fatalf("walk of a missing root tree: %v; want ErrBlobMissing", err)
	}
}

func TestWalkStopsOnCancel(t *testing.T) {
	r := newTestRepo(t)
	tree := saveTestTree(t, r, sampleTree())
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := Walk(ctx, r, tree, "", func(string, *Node) error {
		n++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 1 {
		t.Fatalf("after cancel: %d calls, error %v; want 1 call and context.Canceled", n, err)
	}
}

func TestFindNode(t *testing.T) {
	ctx := context.Background()
	r := newTestRepo(t)
	tree := saveTestTree(t, r, sampleTree())
	for p, want := range map[string]string{
		"/me/a/x": "x", "me/a/x": "x", "/me/a/../b.txt": "b.txt", "/me/a/y/": "y", "//me//c": "c", "/other.txt": "other.txt",
	} {
		n, err := FindNode(ctx, r, tree, p)
		if err != nil {
			t.Errorf("FindNode(%q): %v", p, err)
			continue
		}
		if n.Name != want {
			t.Errorf("FindNode(%q) = %q, want %q", p, n.Name, want)
		}
	}
	for _, p := range []string{"", "/", ".", "/me/.."} {
		n, err := FindNode(ctx, r, tree, p)
		if err != nil || n.Type != TypeDir || n.Subtree != tree || n.Name != "" {
			t.Errorf("FindNode(%q) = %+v, %v; want the root directory", p, n, err)
		}
	}
	for p, mention := range map[string]string{
		"/me/nope":          `/me has no entry "nope"`,
		"/nope/x":           `/ has no entry "nope"`,
		"/me/b.txt/x":       "/me/b.txt is a file",
		"/me/a/y/deep.txt2": `/me/a/y has no entry "deep.txt2"`,
	} {
		_, err := FindNode(ctx, r, tree, p)
		if !errors.Is(err, ErrPathNotFound) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), mention) {
			t.Errorf("FindNode(%q): %v; want ErrPathNotFound naming %q and saying %q", p, err, p, mention)
		}
	}
}

// search runs f over tree and returns the paths found.
func search(t *testing.T, f *Finder, tree chunk.ID) []string {
	t.Helper()
	var got []string
	err := f.Search(context.Background(), tree, func(p string, n *Node) error {
		if n.Content != nil {
			t.Errorf("%s: Search passed a node with content", p)
		}
		got = append(got, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestFinderPatterns(t *testing.T) {
	r := newTestRepo(t)
	same := tdir{"x": "same", "README": "r"}
	tree := saveTestTree(t, r, tdir{
		"me": tdir{
			"a":     same,
			"copy":  same, // the same tree ID as /me/a, at another path
			"Docs":  tdir{"Report.TXT": "1", "notes.txt": "2", "old": tdir{"docs": tdir{"z.txt": "3"}}},
			"x.txt": "4",
		},
	})
	for _, tc := range []struct {
		patterns   []string
		ignoreCase bool
		want       []string
	}{
		{[]string{"*.txt"}, false, []string{"/me/Docs/notes.txt", "/me/Docs/old/docs/z.txt", "/me/x.txt"}},
		{[]string{"*.txt"}, true, []string{"/me/Docs/Report.TXT", "/me/Docs/notes.txt", "/me/Docs/old/docs/z.txt", "/me/x.txt"}},
		{[]string{"x"}, false, []string{"/me/a/x", "/me/copy/x"}},
		{[]string{"a/x"}, false, []string{"/me/a/x"}},
		{[]string{"docs/*"}, false, []string{"/me/Docs/old/docs/z.txt"}},
		{[]string{"docs/*"}, true, []string{"/me/Docs/Report.TXT", "/me/Docs/notes.txt", "/me/Docs/old", "/me/Docs/old/docs/z.txt"}},
		{[]string{"/me/*/x"}, false, []string{"/me/a/x", "/me/copy/x"}},
		{[]string{"/me/x.txt"}, false, []string{"/me/x.txt"}},
		{[]string{"/x.txt"}, false, nil},
		{[]string{"me"}, false, []string{"/me"}},
		{[]string{"/ME/DOCS/"}, true, []string{"/me/Docs"}},
		{[]string{"README", "*.TXT"}, false, []string{"/me/Docs/Report.TXT", "/me/a/README", "/me/copy/README"}},
	} {
		f, err := NewFinder(r, tc.patterns, tc.ignoreCase)
		if err != nil {
			t.Fatal(err)
		}
		if got := search(t, f, tree); !slices.Equal(got, tc.want) {
			t.Errorf("patterns %q (ignore case %v): found\n%q\nwant\n%q", tc.patterns, tc.ignoreCase, got, tc.want)
		}
	}
}

func TestFinderPrunesAnchoredPatterns(t *testing.T) {
	r := newTestRepo(t)
	tree := saveTestTree(t, r, tdir{"me": tdir{"doc.txt": "1", "big": tdir{"a": tdir{"b": tdir{}}}}, "other": tdir{"c": tdir{}}})
	f, err := NewFinder(r, []string{"/me/doc.txt"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := search(t, f, tree); !slices.Equal(got, []string{"/me/doc.txt"}) {
		t.Fatalf("found %q", got)
	}
	if f.TreesLoaded() != 2 {
		t.Errorf("an anchored pattern loaded %d trees, want 2 (the root and /me)", f.TreesLoaded())
	}
}

func TestFinderBadPatterns(t *testing.T) {
	r := newTestRepo(t)
	for _, p := range []string{"[", "a/[b", "/", ""} {
		if _, err := NewFinder(r, []string{p}, false); err == nil || !strings.Contains(err.Error(), "pattern") {
			t.Errorf("NewFinder(%q): %v; want an error about the pattern", p, err)
		}
	}
	if _, err := NewFinder(r, nil, false); err == nil {
		t.Error("NewFinder without patterns: no error")
	}
	if _, err := NewFinder(r, []string{strings.Repeat("a/", 65)}, false); err == nil {
		t.Error("NewFinder with 65 elements: no error")
	}
}

// TestFinderLoadsEachTreeOnce searches four "snapshots" that share most of
// their trees: the Finder must load each distinct tree once in all.
func TestFinderLoadsEachTreeOnce(t *testing.T) {
	r := newTestRepo(t)
	lib := tdir{"l1": tdir{"l2": tdir{"lost.txt": "in lib too", "f": "f"}}, "g": tdir{}}
	var roots []chunk.ID
	for _, extra := range []tdir{
		{"lost.txt": "only here"},
		{"new.txt": "1"},
		{"new.txt": "22"},
		{"new.txt": "333", "more": tdir{"m": "m"}},
	} {
		me := tdir{"lib": lib, "work": extra}
		roots = append(roots, saveTestTree(t, r, tdir{"me": me}))
	}
	// Distinct trees: 4 roots, 4 /me, 4 /me/work, 1 /me/work/more, and
	// lib, l1, l2, g shared by all.
	const distinct = 4 + 4 + 4 + 1 + 4
	f, err := NewFinder(r, []string{"lost.txt"}, false)
	if err != nil {
		t.Fatal(err)
	}
	var found [][]string
	for _, root := range roots {
		found = append(found, search(t, f, root))
	}
	want := [][]string{
		{"/me/lib/l1/l2/lost.txt", "/me/work/lost.txt"},
		{"/me/lib/l1/l2/lost.txt"},
		{"/me/lib/l1/l2/lost.txt"},
		{"/me/lib/l1/l2/lost.txt"},
	}
	if !reflect.DeepEqual(found, want) {
		t.Errorf("found %q, want %q", found, want)
	}
	if f.TreesLoaded() != distinct {
		t.Errorf("loaded %d trees for 4 snapshots, want %d (each distinct tree once)", f.TreesLoaded(), distinct)
	}
	// Searching again loads nothing.
	search(t, f, roots[2])
	if f.TreesLoaded() != distinct {
		t.Errorf("a repeated search loaded trees again: %d", f.TreesLoaded())
	}
}
