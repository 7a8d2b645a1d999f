package fsdir

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveDirectoryTree(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "old", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "old", "sub", "f"), []byte("x"), 0o644)
	os.Symlink("/", filepath.Join(root, "old", "link"))
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Remove("old"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(root, "old")); !os.IsNotExist(err) {
		t.Fatalf("directory still there: %v", err)
	}
}

func TestHoles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(8 << 20)
	f.WriteAt(make([]byte, 4096+1), 4<<20) // zeros written are data, not a hole
	holes, err := Holes(f, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(holes) != 2 || holes[0] != [2]int64{0, 4 << 20} || holes[1][0] < 4<<20+4096 || holes[1][0]+holes[1][1] != 8<<20 {
		t.Fatalf("holes %v, want [0,4MiB) and [~4MiB+8KiB, 8MiB)", holes)
	}
}
