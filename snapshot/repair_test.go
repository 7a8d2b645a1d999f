package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"snap/chunk"
	"snap/index"
	"snap/internal/backend"
	"snap/internal/backend/local"
	"snap/repo"
	"snap/repo/pack"
)

// repairFixture backs up a tree into a repository of one blob per pack: a
// directory of 300 files (paged), a file whose content is kept in list
// blobs, and a small directory. It returns the repository's directory, the
// snapshot, and one page of the large directory and one list blob of the
// file.
func repairFixture(t *testing.T) (dir string, r *repo.Repository, sn *Snapshot, page, list chunk.ID) {
	t.Helper()
	ctx := context.Background()
	dir = t.TempDir()
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "many"), 0o755)
	os.MkdirAll(filepath.Join(src, "keep"), 0o755)
	for i := range 300 {
		os.WriteFile(filepath.Join(src, "many", fmt.Sprintf("f%03d", i)), []byte(fmt.Sprintf("file %d", i)), 0o644)
	}
	os.WriteFile(filepath.Join(src, "keep", "note"), []byte("kept"), 0o644)
	big := make([]byte, 3<<20)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	os.WriteFile(filepath.Join(src, "big"), big, 0o644)

	r = initTestRepo(t, dir, 4<<10, 8<<10, 32<<10, repo.Options{PackSize: 1}) // one blob a pack
	sn, err := Create(ctx, r, CreateOptions{Paths: []string{src}, Host: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var manyTree chunk.ID
	err = Walk(ctx, r, sn.Tree, "", func(p string, n *Node) error {
		switch n.Name {
		case "many":
			manyTree = n.Subtree
		case "big":
			if len(n.Lists) == 0 {
				return fmt.Errorf("%s: %d chunks kept inline; the test needs content lists", p, len(n.Content))
			}
			list = n.Lists[len(n.Lists)/2]
		}
		return nil
	})
	if err != nil || manyTree.IsNull() || list.IsNull() {
		t.Fatalf("walk: %v (tree of many found: %v, list blob found: %v)", err, !manyTree.IsNull(), !list.IsNull())
	}
	top, err := r.LoadBlob(ctx, pack.TreeBlob, manyTree)
	if err != nil {
		t.Fatal(err)
	}
	depth, pages, err := DecodeTreeIndex(top)
	if err != nil || depth != 1 || len(pages) < 3 {
		t.Fatalf("the 300 files are not one level of at least 3 pages: depth %d, %d pages, %v", depth, len(pages), err)
	}
	return dir, r, sn, pages[len(pages)/2], list
}

// dropBlobs takes the packs holding ids out of the index, as 'repair packs'
// does with damaged packs.
func dropBlobs(t *testing.T, r *repo.Repository, ids ...chunk.ID) {
	t.Helper()
	var packs []chunk.ID
	err := r.Index().LookupMany(ids, func(i int, loc index.Location, found bool) error {
		if !found {
			return fmt.Errorf("blob %s not indexed", ids[i].Short())
		}
		packs = append(packs, loc.Pack)
		return nil
	})
	if err == nil {
		err = r.Index().RemovePacks(packs)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestRepairKeepsWhatIsLeft loses one page of a large directory and one
// content list of a file, and checks that the repaired snapshot keeps every
// other entry of the directory, marks only that file damaged, keeps the rest
// of the tree, and names the two losses.
func TestRepairKeepsWhatIsLeft(t *testing.T) {
	ctx := context.Background()
	_, r, sn, page, list := repairFixture(t)
	defer r.Close()
	dropBlobs(t, r, page, list)
	out, err := NewRepairer(r).Repair(ctx, sn)
	if err != nil {
		t.Fatal(err)
	}
	if out == nil {
		t.Fatal("nothing repaired")
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var many []string
	var bigNode, note *Node
	err = Walk(ctx, r, out.Tree, "", func(p string, n *Node) error {
		switch {
		case strings.HasSuffix(filepath.Dir(p), "/many"):
			many = append(many, n.Name)
		case n.Name == "big":
			bigNode = n
		case n.Name == "note":
			note = n
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk of the repaired snapshot: %v", err)
	}
	if len(many) == 0 || len(many) >= 300 {
		t.Errorf("the large directory kept %d of 300 entries; want all but those of the lost page", len(many))
	}
	if len(many) < 200 {
		t.Errorf("the large directory kept only %d of 300 entries after losing one page", len(many))
	}
	if bigNode == nil || bigNode.Size != 0 || len(bigNode.Content) != 0 || !slices.ContainsFunc(bigNode.Xattrs, func(x Xattr) bool { return x.Name == DamagedXattr }) {
		t.Errorf("the file whose content list was lost: %+v; want it empty with %s", bigNode, DamagedXattr)
	}
	if note == nil || note.Size != 4 {
		t.Errorf("keep/note: %+v; want it unchanged", note)
	}
	wantLost := []string{"/src/big", "/src/many"}
	got := slices.Sorted(slices.Values(out.Lost))
	if !slices.Equal(got, wantLost) {
		t.Errorf("lost %q, want %q", got, wantLost)
	}
}

// failingBackend fails every read of one file with an error that says
// nothing about the file's bytes, like a dropped connection.
type failingBackend struct {
	backend.Backend
	name string
}

var errConnection = errors.New("connection reset by peer")

func (b failingBackend) Load(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	if name == b.name {
		return nil, errConnection
	}
	return b.Backend.Load(ctx, name, off, n)
}

// TestRepairStopsOnReadErrors: a page that cannot be read because the
// storage failed is not lost, so repair must stop with the error instead of
// dropping the directory.
func TestRepairStopsOnReadErrors(t *testing.T) {
	ctx := context.Background()
	dir, r, sn, page, _ := repairFixture(t)
	var pk chunk.ID
	if err := r.Index().LookupMany([]chunk.ID{page}, func(_ int, loc index.Location, _ bool) error { pk = loc.Pack; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	be := failingBackend{Backend: local.New(dir), name: repo.PackName(pk)}
	r2, err := repo.Open(ctx, be, repo.Options{IndexPath: filepath.Join(dir, "index.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	r2.BypassCaches()
	out, err := NewRepairer(r2).Repair(ctx, sn)
	if !errors.Is(err, errConnection) || out != nil {
		t.Fatalf("repair with a page that cannot be read: %v, repaired snapshot %v; want the read error and none", err, out != nil)
	}
}
