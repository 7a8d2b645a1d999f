package ecryptfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestReadFileRoundTrip(t *testing.T) {
	tr := newTestTree(t, 5, Options{})
	for i, size := range []int{0, 1, 100, 4096, 4097, 65536, 1<<20 + 3} {
		name := path.Join("d", strings.Repeat("x", i+1))
		data := randBytes(uint64(i), size)
		mustWrite(t, tr, name, data)
		mustRead(t, tr, name, data)
	}
}

// TestWriteAtOnePage: an in-place write of one page changes that extent
// and nothing else (bytes 0-7 are rewritten with the same value).
func TestWriteAtOnePage(t *testing.T) {
	tr := newTestTree(t, 6, Options{})
	data := randBytes(6, 10*ExtentSize)
	mustWrite(t, tr, "store.db", data)
	before := lowerBytes(t, tr, "store.db")

	page := randBytes(60, ExtentSize)
	if err := tr.WriteAt("store.db", 3*ExtentSize, page); err != nil {
		t.Fatal(err)
	}
	after := lowerBytes(t, tr, "store.db")
	if len(after) != len(before) {
		t.Fatalf("lower size %d -> %d", len(before), len(after))
	}
	ext3 := extentRegion(3, HeaderSize)
	changedOnlyIn(t, before, after, ext3)
	allBlocksDiffer(t, before, after, ext3)
	copy(data[3*ExtentSize:], page)
	mustRead(t, tr, "store.db", data)

	// A write inside an extent re-encrypts it from the first changed AES
	// block on (CBC), still inside that extent only.
	if err := tr.WriteAt("store.db", 7*ExtentSize+100, []byte("row 42 updated")); err != nil {
		t.Fatal(err)
	}
	after2 := lowerBytes(t, tr, "store.db")
	changedOnlyIn(t, after, after2, region{HeaderSize + 7*ExtentSize + 96, HeaderSize + 8*ExtentSize})
	copy(data[7*ExtentSize+100:], "row 42 updated")
	mustRead(t, tr, "store.db", data)
}

// TestIdenticalRewrite: the same plaintext written again gives the same
// ciphertext, in place or through open(O_TRUNC).
func TestIdenticalRewrite(t *testing.T) {
	tr := newTestTree(t, 7, Options{})
	data := randBytes(7, 5*ExtentSize+123)
	mustWrite(t, tr, "f", data)
	before := lowerBytes(t, tr, "f")
	lp, _ := tr.LowerPath("f")
	ino := inode(t, lp)

	if err := tr.WriteAt("f", 2*ExtentSize, data[2*ExtentSize:3*ExtentSize]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, lowerBytes(t, tr, "f")) {
		t.Error("rewriting a page with the same bytes changed the lower file")
	}
	mustWrite(t, tr, "f", data)
	if !bytes.Equal(before, lowerBytes(t, tr, "f")) {
		t.Error("WriteFile of the same content over the file changed the lower file")
	}
	if inode(t, lp) != ino {
		t.Error("WriteFile over an existing file made a new inode")
	}
}

func TestAppend(t *testing.T) {
	tr := newTestTree(t, 8, Options{})
	data := randBytes(8, 2*ExtentSize+1000)
	mustWrite(t, tr, "sync.log", data)
	before := lowerBytes(t, tr, "sync.log")

	more := randBytes(80, 5000) // fills extent 2, adds extent 3
	if err := tr.Append("sync.log", more); err != nil {
		t.Fatal(err)
	}
	after := lowerBytes(t, tr, "sync.log")
	if want := LowerSize(int64(len(data)+len(more)), false); int64(len(after)) != want {
		t.Fatalf("lower size %d, want %d", len(after), want)
	}
	if got := binary.BigEndian.Uint64(after[0:8]); got != uint64(len(data)+len(more)) {
		t.Errorf("size field %d", got)
	}
	// Extent 2 changes from the AES block holding the old end on.
	changedOnlyIn(t, before, after, region{0, 8}, region{HeaderSize + 2*ExtentSize + 992, HeaderSize + 3*ExtentSize})
	allBlocksDiffer(t, before, after, region{HeaderSize + 2*ExtentSize + 1008, HeaderSize + 3*ExtentSize})
	mustRead(t, tr, "sync.log", append(bytes.Clone(data), more...))

	// At an extent boundary no old extent changes.
	mustWrite(t, tr, "aligned.log", randBytes(9, 2*ExtentSize))
	before = lowerBytes(t, tr, "aligned.log")
	if err := tr.Append("aligned.log", []byte("x")); err != nil {
		t.Fatal(err)
	}
	after = lowerBytes(t, tr, "aligned.log")
	changedOnlyIn(t, before, after, region{0, 8})
	if len(after) != len(before)+ExtentSize {
		t.Errorf("lower size %d, want %d", len(after), len(before)+ExtentSize)
	}
}

func TestTruncate(t *testing.T) {
	tr := newTestTree(t, 10, Options{})
	data := randBytes(10, 5*ExtentSize)
	mustWrite(t, tr, "f", data)
	before := lowerBytes(t, tr, "f")

	// Smaller: the extent with the new end is re-encrypted, later ones go.
	size := int64(2*ExtentSize + 500)
	if err := tr.Truncate("f", size); err != nil {
		t.Fatal(err)
	}
	after := lowerBytes(t, tr, "f")
	if int64(len(after)) != LowerSize(size, false) {
		t.Fatalf("lower size %d, want %d", len(after), LowerSize(size, false))
	}
	changedOnlyIn(t, before, after, region{0, 8}, region{HeaderSize + 2*ExtentSize + 496, HeaderSize + 3*ExtentSize})
	allBlocksDiffer(t, before, after, region{HeaderSize + 2*ExtentSize + 512, HeaderSize + 3*ExtentSize})
	data = data[:size]
	mustRead(t, tr, "f", data)

	// At a boundary: nothing is re-encrypted.
	before = after
	if err := tr.Truncate("f", 2*ExtentSize); err != nil {
		t.Fatal(err)
	}
	after = lowerBytes(t, tr, "f")
	changedOnlyIn(t, before, after, region{0, 8})
	data = data[:2*ExtentSize]
	mustRead(t, tr, "f", data)

	// Larger: encrypted zero extents, no holes; the old extents keep their
	// bytes (their plaintext does not change).
	before = after
	if err := tr.Truncate("f", 4*ExtentSize+10); err != nil {
		t.Fatal(err)
	}
	after = lowerBytes(t, tr, "f")
	if int64(len(after)) != LowerSize(4*ExtentSize+10, false) {
		t.Fatalf("lower size %d", len(after))
	}
	changedOnlyIn(t, before, after, region{0, 8})
	zero := make([]byte, ExtentSize)
	for n := int64(2); n < 5; n++ {
		r := extentRegion(n, HeaderSize)
		if bytes.Equal(after[r.from:r.to], zero) {
			t.Errorf("extent %d is zero bytes on disk, want encrypted zeros", n)
		}
	}
	mustRead(t, tr, "f", append(bytes.Clone(data), make([]byte, 2*ExtentSize+10)...))

	// To zero: the header alone.
	if err := tr.Truncate("f", 0); err != nil {
		t.Fatal(err)
	}
	if got := len(lowerBytes(t, tr, "f")); got != HeaderSize {
		t.Errorf("truncated to 0: lower %d bytes", got)
	}
}

// TestWriteAtPastEnd: a gap is filled with encrypted zeros.
func TestWriteAtPastEnd(t *testing.T) {
	tr := newTestTree(t, 11, Options{})
	mustWrite(t, tr, "f", []byte("head"))
	if err := tr.WriteAt("f", 3*ExtentSize+1, []byte("tail")); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 3*ExtentSize+5)
	copy(want, "head")
	copy(want[3*ExtentSize+1:], "tail")
	mustRead(t, tr, "f", want)
}

// TestSaveByRename: all bytes new (even for the same content), new inode,
// same lower name.
func TestSaveByRename(t *testing.T) {
	tr := newTestTree(t, 12, Options{})
	data := randBytes(12, 4*ExtentSize+77)
	mustWrite(t, tr, "docs/report.md", data)
	lp, _ := tr.LowerPath("docs/report.md")
	before := lowerBytes(t, tr, "docs/report.md")
	ino := inode(t, lp)
	if err := os.Chmod(lp, 0o600); err != nil {
		t.Fatal(err)
	}

	if err := tr.SaveByRename("docs/report.md", data); err != nil {
		t.Fatal(err)
	}
	lp2, _ := tr.LowerPath("docs/report.md")
	if lp2 != lp {
		t.Fatalf("lower path changed: %s -> %s", lp, lp2)
	}
	after := lowerBytes(t, tr, "docs/report.md")
	if len(after) != len(before) {
		t.Fatalf("lower size %d -> %d", len(before), len(after))
	}
	if bytes.Equal(before[8:16], after[8:16]) {
		t.Error("marker unchanged")
	}
	if bytes.Equal(before[41:57], after[41:57]) {
		t.Error("wrapped file key unchanged")
	}
	allBlocksDiffer(t, before, after, region{HeaderSize, int64(len(after))})
	if inode(t, lp) == ino {
		t.Error("same inode after save-by-rename")
	}
	fi, err := os.Stat(lp)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after save: %v, %v", fi.Mode(), err)
	}
	mustRead(t, tr, "docs/report.md", data)
	entries, _ := os.ReadDir(filepath.Dir(lp))
	if len(entries) != 1 {
		t.Errorf("%d entries in the directory, want 1 (no temporary file left)", len(entries))
	}
	if len(tr.Map()) != 2 {
		t.Errorf("map %v", tr.Map())
	}
}

func TestNames(t *testing.T) {
	tr := newTestTree(t, 13, Options{})
	mustWrite(t, tr, "a/notes.txt", []byte("1"))
	mustWrite(t, tr, "b/c/notes.txt", []byte("2"))
	pa, _ := tr.LowerPath("a/notes.txt")
	pb, _ := tr.LowerPath("b/c/notes.txt")
	if filepath.Base(pa) != filepath.Base(pb) {
		t.Errorf("same name, different lower names: %s, %s", filepath.Base(pa), filepath.Base(pb))
	}
	for _, name := range []string{"a", "notes.txt", "with space", "ünïcødé", ".hidden", strings.Repeat("n", MaxNameLen)} {
		l, err := tr.LowerName(name)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if !IsEncryptedName(l) || len(l) > 255 {
			t.Errorf("%q -> %q (%d bytes)", name, l, len(l))
		}
		for _, c := range l[len(NamePrefix):] {
			if !strings.ContainsRune(nameAlphabet, c) {
				t.Errorf("%q: character %q outside the alphabet", l, c)
			}
		}
		back, err := tr.ClearName(l)
		if err != nil || back != name {
			t.Errorf("ClearName(LowerName(%q)) = %q, %v", name, back, err)
		}
		again, _ := tr.LowerName(name)
		if again != l {
			t.Errorf("%q: not deterministic", name)
		}
	}
	// The longest name fits exactly the kernel's 252 characters.
	if l, _ := tr.LowerName(strings.Repeat("n", MaxNameLen)); len(l) != 252 {
		t.Errorf("143-byte name: %d-byte lower name, want 252", len(l))
	}
	if _, err := tr.LowerName(strings.Repeat("n", MaxNameLen+1)); !errors.Is(err, ErrNameTooLong) {
		t.Errorf("144-byte name: %v, want ErrNameTooLong", err)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "nul\x00"} {
		if _, err := tr.LowerName(bad); err == nil {
			t.Errorf("LowerName(%q) accepted", bad)
		}
	}
	// Another seed, another name key.
	other := newTestTree(t, 14, Options{})
	l1, _ := tr.LowerName("notes.txt")
	l2, _ := other.LowerName("notes.txt")
	if l1 == l2 {
		t.Error("two seeds give the same lower name")
	}
	if _, err := other.ClearName(l1); !errors.Is(err, ErrForeignKey) {
		t.Errorf("name from another seed: %v, want ErrForeignKey", err)
	}
	if tr2 := newTestTree(t, 13, Options{}); mustLowerName(t, tr2, "notes.txt") != l1 {
		t.Error("same seed, other tree: other name")
	}
}

func mustLowerName(t *testing.T, tr *Tree, name string) string {
	t.Helper()
	l, err := tr.LowerName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestIsEncryptedName(t *testing.T) {
	cases := map[string]bool{
		NamePrefix + "abcd":            true,
		NamePrefix + "-.09AZaz":        true,
		NamePrefix:                     false,
		NamePrefix + "abc":             false,
		NamePrefix + "ab_d":            false,
		NamePrefix + "ab+d":            false,
		"ECRYPTFS_FEK_ENCRYPTED.ab":    false,
		"notes.txt":                    false,
		"ecryptfs_fnek_encrypted.abcd": false,
	}
	for name, want := range cases {
		if got := IsEncryptedName(name); got != want {
			t.Errorf("IsEncryptedName(%q) = %v", name, got)
		}
	}
}

func FuzzClearName(f *testing.F) {
	k, err := newKeyring(15)
	if err != nil {
		f.Fatal(err)
	}
	l, _ := k.encrypt("notes.txt")
	f.Add(l)
	f.Add(NamePrefix + "abcd")
	f.Add(l[:len(l)-4])
	tr := &Tree{keys: k}
	f.Fuzz(func(t *testing.T, name string) {
		clear, err := tr.ClearName(name)
		if err != nil || !strings.HasPrefix(name, NamePrefix) {
			return
		}
		if again, err := k.encrypt(clear); err != nil || again != name {
			t.Fatalf("%q decrypts to %q, which encrypts to %q (%v)", name, clear, again, err)
		}
	})
}

func TestSymlink(t *testing.T) {
	tr := newTestTree(t, 16, Options{})
	mustWrite(t, tr, "dir/file", []byte("x"))
	for _, target := range []string{"file", "../dir/file", "/etc/passwd", "dangling/../x"} {
		name := "dir/link-" + strings.NewReplacer("/", "_", ".", "d").Replace(target)
		if err := tr.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
		lp, _ := tr.LowerPath(name)
		lt, err := os.Readlink(lp)
		if err != nil {
			t.Fatal(err)
		}
		if !IsEncryptedName(lt) || strings.Contains(lt, "/") {
			t.Errorf("lower target %q: want one encrypted name", lt)
		}
		got, err := tr.Readlink(name)
		if err != nil || got != target {
			t.Errorf("Readlink = %q, %v; want %q", got, err, target)
		}
	}
}

func TestRenameRemoveLink(t *testing.T) {
	tr := newTestTree(t, 17, Options{})
	data := randBytes(17, 3000)
	mustWrite(t, tr, "a/b/f", data)
	before := lowerBytes(t, tr, "a/b/f")
	if err := tr.Link("a/b/f", "a/hard"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Rename("a", "z"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, lowerBytes(t, tr, "z/b/f")) {
		t.Error("renaming the directory changed the file")
	}
	mustRead(t, tr, "z/hard", data)
	p1, _ := tr.LowerPath("z/b/f")
	p2, _ := tr.LowerPath("z/hard")
	if inode(t, p1) != inode(t, p2) {
		t.Error("hard link does not share the inode")
	}
	checkMap(t, tr, map[string]string{"z": "dir", "z/b": "dir", "z/b/f": "file", "z/hard": "file"})
	if err := tr.Remove("z/b"); err != nil {
		t.Fatal(err)
	}
	checkMap(t, tr, map[string]string{"z": "dir", "z/hard": "file"})
	if err := tr.Remove("z/b"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("removing twice: %v", err)
	}
}

// checkMap compares the tree's map with the lower tree on disk and with
// the expected cleartext paths.
func checkMap(t *testing.T, tr *Tree, want map[string]string) {
	t.Helper()
	m := tr.Map()
	onDisk := treeFiles(t, tr.LowerDir())
	delete(onDisk, ".")
	if len(m) != len(onDisk) || len(m) != len(want) {
		t.Fatalf("map has %d entries, disk %d, want %d: %v", len(m), len(onDisk), len(want), m)
	}
	for lower, clear := range m {
		if _, ok := onDisk[filepath.FromSlash(lower)]; !ok {
			t.Errorf("map entry %s -> %s not on disk", lower, clear)
		}
		if _, ok := want[clear]; !ok {
			t.Errorf("map entry %s -> %s not expected", lower, clear)
		}
		if l, _ := tr.lowerRel(clear); l != lower {
			t.Errorf("map entry %s -> %s: the cleartext path encrypts to %s", lower, clear, l)
		}
	}
}

// TestReopen: a new Tree on the same directory and seed rebuilds the map
// from the names and edits files it did not create; another seed fails.
func TestReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lower")
	tr, err := NewTree(dir, 18, Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(18, 3*ExtentSize)
	mustWrite(t, tr, "x/y.db", data)
	if err := tr.Symlink("y.db", "x/link"); err != nil {
		t.Fatal(err)
	}
	before := lowerBytes(t, tr, "x/y.db")

	tr2, err := NewTree(dir, 18, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr2.Map()) != 3 {
		t.Fatalf("map after reopening: %v", tr2.Map())
	}
	for l, c := range tr.Map() {
		if tr2.Map()[l] != c {
			t.Errorf("%s: %q after reopening, want %q", l, tr2.Map()[l], c)
		}
	}
	if err := tr2.WriteAt("x/y.db", ExtentSize, data[ExtentSize:2*ExtentSize]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, lowerBytes(t, tr2, "x/y.db")) {
		t.Error("identical rewrite by a reopened tree changed the bytes")
	}
	// The reopened tree's stream differs from the first tree's: a new
	// file does not repeat the first file's key.
	mustWrite(t, tr2, "x/new", data)
	if n := lowerBytes(t, tr2, "x/new"); bytes.Equal(n[8:16], before[8:16]) {
		t.Error("new file after reopening repeats the first file's marker")
	}

	if _, err := NewTree(dir, 19, Options{}); !errors.Is(err, ErrForeignKey) {
		t.Errorf("other seed: %v, want ErrForeignKey", err)
	}
	if _, err := NewTree(dir, 18, Options{XattrMetadata: true}); err == nil {
		t.Error("opening a header-in-file tree in xattr mode succeeded")
	}
}

// TestDeterminism: the same seed and calls give the same bytes.
func TestDeterminism(t *testing.T) {
	run := func(seed uint64) map[string]string {
		tr := newTestTree(t, seed, Options{})
		mustWrite(t, tr, "a/one", randBytes(1, 9000))
		mustWrite(t, tr, "a/two", randBytes(2, 100))
		if err := tr.SaveByRename("a/one", randBytes(3, 5000)); err != nil {
			t.Fatal(err)
		}
		if err := tr.Append("a/two", []byte("more")); err != nil {
			t.Fatal(err)
		}
		if err := tr.Symlink("one", "a/l"); err != nil {
			t.Fatal(err)
		}
		return treeFiles(t, tr.LowerDir())
	}
	a, b, c := run(20), run(20), run(21)
	if len(a) != len(b) {
		t.Fatalf("%d vs %d entries", len(a), len(b))
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s differs between two runs with the same seed", k)
		}
		if c[k] == v && v != "dir" {
			t.Errorf("%s is the same with another seed", k)
		}
	}
}

func TestXattrMetadata(t *testing.T) {
	dir := t.TempDir()
	needUserXattrs(t, dir)
	tr, err := NewTree(filepath.Join(dir, "lower"), 22, Options{XattrMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(22, 2*ExtentSize+1)
	mustWrite(t, tr, "f", data)
	mustWrite(t, tr, "empty", nil)
	b := lowerBytes(t, tr, "f")
	if len(b) != 3*ExtentSize {
		t.Fatalf("lower file %d bytes, want %d (extents only)", len(b), 3*ExtentSize)
	}
	if n := len(lowerBytes(t, tr, "empty")); n != 0 {
		t.Errorf("empty file: lower %d bytes, want 0", n)
	}
	lp, _ := tr.LowerPath("f")
	xa := make([]byte, HeaderSize)
	n, err := unix.Getxattr(lp, XattrName, xa)
	if err != nil {
		t.Fatal(err)
	}
	xa = xa[:n]
	h, err := ParseHeader(xa)
	if err != nil {
		t.Fatal(err)
	}
	if !h.MetadataInXattr || h.PlainSize != uint64(len(data)) || h.Flags != 0x0300000e || h.LowerSize() != int64(len(b)) {
		t.Errorf("xattr header %+v, lower size %d", h, h.LowerSize())
	}
	// The kernel writes the fixed fields and key packets, not the zero tail.
	if len(xa) != 81 {
		t.Errorf("xattr value %d bytes, want 81", len(xa))
	}
	if _, err := ParseHeader(b); err == nil {
		t.Error("the extents parse as a header")
	}
	mustRead(t, tr, "f", data)

	before := b
	if err := tr.Append("f", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	after := lowerBytes(t, tr, "f")
	changedOnlyIn(t, before, after, extentRegion(2, 0))
	n, _ = unix.Getxattr(lp, XattrName, xa[:cap(xa)])
	if got := binary.BigEndian.Uint64(xa[:8]); got != uint64(len(data)+3) || n != 81 {
		t.Errorf("size in xattr %d (value %d bytes)", got, n)
	}
	mustRead(t, tr, "f", append(bytes.Clone(data), "abc"...))

	tr2, err := NewTree(tr.LowerDir(), 22, Options{XattrMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	mustRead(t, tr2, "f", append(bytes.Clone(data), "abc"...))
	if _, err := NewTree(tr.LowerDir(), 22, Options{}); err == nil {
		t.Error("opening an xattr tree without the option succeeded")
	}
}

func TestChtimes(t *testing.T) {
	tr := newTestTree(t, 23, Options{})
	mustWrite(t, tr, "f", []byte("x"))
	if err := tr.Symlink("f", "l"); err != nil {
		t.Fatal(err)
	}
	when := time.Date(2024, 2, 29, 12, 0, 0, 5, time.UTC)
	for _, name := range []string{"f", "l"} {
		if err := tr.Chtimes(name, when, when); err != nil {
			t.Fatal(err)
		}
		lp, _ := tr.LowerPath(name)
		fi, err := os.Lstat(lp)
		if err != nil || !fi.ModTime().Equal(when) {
			t.Errorf("%s: mtime %v, %v", name, fi.ModTime(), err)
		}
	}
}

func TestBadPaths(t *testing.T) {
	tr := newTestTree(t, 24, Options{})
	for _, p := range []string{"", "/abs", "a/../b", "a//b", "a/", "./a"} {
		if err := tr.WriteFile(p, nil, 0o644); err == nil {
			t.Errorf("WriteFile(%q) accepted", p)
		}
	}
	if _, err := tr.ReadFile("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(missing): %v", err)
	}
	mustWrite(t, tr, "d/f", nil)
	if err := tr.WriteFile("d", nil, 0o644); err == nil {
		t.Error("WriteFile over a directory accepted")
	}
	if err := tr.WriteFile("d/f/g", nil, 0o644); err == nil {
		t.Error("WriteFile below a file accepted")
	}
	if err := tr.WriteAt("d/f", -1, []byte("x")); err == nil {
		t.Error("negative offset accepted")
	}
	if err := tr.Truncate("d/f", -1); err == nil {
		t.Error("negative size accepted")
	}
	// A lower file whose size does not match its header is refused.
	mustWrite(t, tr, "short", randBytes(1, 3*ExtentSize))
	lp, _ := tr.LowerPath("short")
	if err := os.Truncate(lp, HeaderSize+ExtentSize); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.ReadFile("short"); err == nil {
		t.Error("truncated lower file read without error")
	}
}
