package fsdir

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestXattrs reads the attributes of a file, a directory and a symlink
// through Xattrs, and through both ways of asking the kernel: the *at calls
// of Linux 6.13 and the path calls through /proc they fall back to.
func TestXattrs(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	sub := filepath.Join(root, "sub")
	os.WriteFile(file, []byte("x"), 0o644)
	os.Mkdir(sub, 0o755)
	os.Symlink("file", filepath.Join(root, "link"))
	big := bytes.Repeat([]byte("v"), 3000)
	want := map[string][]Xattr{
		"file": {{Name: "user.a", Value: []byte("1")}, {Name: "user.big", Value: big}, {Name: "user.empty", Value: []byte{}}},
		"sub":  {{Name: "user.dir", Value: []byte("d")}},
		"link": nil,
	}
	for name, xs := range want {
		for _, x := range xs {
			if err := unix.Lsetxattr(filepath.Join(root, name), x.Name, x.Value, 0); err != nil {
				if errors.Is(err, unix.ENOTSUP) {
					t.Skipf("the file system of %s has no user xattrs: %v", root, err)
				}
				t.Fatal(err)
			}
		}
	}
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for name, w := range want {
		got, err := d.Xattrs(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		slices.SortFunc(got, func(a, b Xattr) int { return bytes.Compare([]byte(a.Name), []byte(b.Name)) })
		if !slices.EqualFunc(got, w, func(a, b Xattr) bool { return a.Name == b.Name && bytes.Equal(a.Value, b.Value) }) {
			t.Errorf("%s: xattrs %q, want %q", name, got, w)
		}
	}

	buf := make([]byte, 4096)
	n, err := listxattrAt(d.fd, "file", buf)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		t.Skipf("listxattrat refused (kernel before 6.13 or a seccomp filter): %v; Xattrs used the path through /proc", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	buf2 := make([]byte, 4096)
	n2, err := unix.Llistxattr(d.procPath("file"), buf2)
	if err != nil || !bytes.Equal(buf[:n], buf2[:n2]) {
		t.Fatalf("listxattrat gives %q, the path call %q (%v)", buf[:n], buf2[:n2], err)
	}
	if size, err := listxattrAt(d.fd, "file", nil); err != nil || size != n {
		t.Fatalf("listxattrat asked for the size: %d, %v; want %d", size, err, n)
	}
	if size, err := getxattrAt(d.fd, "file", "user.big", nil); err != nil || size != len(big) {
		t.Fatalf("getxattrat asked for the size: %d, %v; want %d", size, err, len(big))
	}
	if _, err := getxattrAt(d.fd, "file", "user.big", make([]byte, 10)); !errors.Is(err, unix.ERANGE) {
		t.Fatalf("getxattrat into too small a buffer: %v, want ERANGE", err)
	}
	if _, err := getxattrAt(d.fd, "link", "user.a", buf); !errors.Is(err, unix.ENODATA) {
		t.Fatalf("getxattrat on the symlink (not followed): %v, want ENODATA", err)
	}
	if err := setxattrAt(d.fd, "link", "user.a", []byte("2")); !errors.Is(err, unix.EPERM) {
		t.Fatalf("setxattrat of a user attribute on the symlink (not followed): %v, want EPERM", err)
	}
	if err := d.SetXattr("sub", Xattr{Name: "user.dir", Value: []byte("changed")}); err != nil {
		t.Fatal(err)
	}
	if v, err := d.getxattr("sub", "user.dir"); err != nil || string(v) != "changed" {
		t.Fatalf("after SetXattr: %q, %v; want \"changed\"", v, err)
	}
}

// BenchmarkListXattrs lists the attributes of files that have none, as a
// first backup does for nearly every file: through listxattrat and through
// the path in /proc.
func BenchmarkListXattrs(b *testing.B) {
	root := b.TempDir()
	const files = 1000
	for i := range files {
		os.WriteFile(filepath.Join(root, "f"+strconv.Itoa(i)), nil, 0o644)
	}
	d, err := Open(root)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	if _, err := listxattrAt(d.fd, "f0", nil); err != nil {
		b.Skipf("listxattrat: %v", err)
	}
	b.Run("at", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := listxattrAt(d.fd, "f"+strconv.Itoa(i%files), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proc", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := unix.Llistxattr(d.procPath("f"+strconv.Itoa(i%files)), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
