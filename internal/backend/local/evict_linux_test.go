package local

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// residentPages maps the file at path and counts its pages in the page cache.
func residentPages(t *testing.T, path string) (resident, total int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	for _, v := range vec {
		resident += int(v & 1)
	}
	return resident, len(vec)
}

// TestSavedFileLeavesPageCache checks that a file saved into the repository
// is dropped from the page cache once durable, and reads back intact.
func TestSavedFileLeavesPageCache(t *testing.T) {
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		t.Skipf("%s is tmpfs, whose pages are the file: set TMPDIR to a disk", dir)
	}
	b := New(filepath.Join(dir, "repo"))
	data := bytes.Repeat([]byte("snap pack bytes "), 1<<16) // 1 MiB
	tmp := filepath.Join(dir, "pack")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if n, total := residentPages(t, tmp); n < total/2 {
		t.Skipf("only %d of %d pages cached right after writing: cannot observe eviction here", n, total)
	}
	if err := b.MoveFile(context.Background(), "data/00/pack", tmp); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(dir, "repo", "data", "00", "pack")
	if n, total := residentPages(t, final); n > total/10 {
		t.Fatalf("%d of %d pages still cached after MoveFile", n, total)
	}
	got, err := os.ReadFile(final)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v; want the %d written", len(got), err, len(data))
	}
}
