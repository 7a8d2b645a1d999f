package ecryptfs

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// newTestTree starts a tree in a fresh directory.
func newTestTree(t *testing.T, seed uint64, opts Options) *Tree {
	t.Helper()
	tr, err := NewTree(filepath.Join(t.TempDir(), "lower"), seed, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// randBytes is deterministic test content.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// lowerBytes reads a lower file as it is on disk.
func lowerBytes(t *testing.T, tr *Tree, clearRel string) []byte {
	t.Helper()
	lp, err := tr.LowerPath(clearRel)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(lp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, tr *Tree, clearRel string, data []byte) {
	t.Helper()
	if err := tr.WriteFile(clearRel, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, tr *Tree, clearRel string, want []byte) {
	t.Helper()
	got, err := tr.ReadFile(clearRel)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: read %d bytes, want %d (equal prefix %d)", clearRel, len(got), len(want), commonPrefix(got, want))
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// region is a byte range of a lower file.
type region struct{ from, to int64 }

func (r region) String() string { return fmt.Sprintf("[%d,%d)", r.from, r.to) }

// extentRegion is extent n of a lower file with a header in front.
func extentRegion(n int64, headerSize int64) region {
	return region{headerSize + n*ExtentSize, headerSize + (n+1)*ExtentSize}
}

// changedOnlyIn fails unless every byte that differs between before and
// after (over the shorter length) lies in one of the allowed regions.
func changedOnlyIn(t *testing.T, before, after []byte, allowed ...region) {
	t.Helper()
	for i := range min(len(before), len(after)) {
		if before[i] == after[i] {
			continue
		}
		ok := false
		for _, r := range allowed {
			if int64(i) >= r.from && int64(i) < r.to {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("byte %d changed (%#02x -> %#02x), outside %v", i, before[i], after[i], allowed)
		}
	}
}

// allBlocksDiffer fails unless every 16-byte block of the region differs:
// what a re-encryption with other key or plaintext from the region's start
// gives (single bytes may agree by chance).
func allBlocksDiffer(t *testing.T, before, after []byte, r region) {
	t.Helper()
	for i := r.from; i < r.to; i += 16 {
		if bytes.Equal(before[i:i+16], after[i:i+16]) {
			t.Fatalf("block at %d in %v unchanged", i, r)
		}
	}
}

// independentDecrypt decrypts one extent straight from the documented
// layout (root IV = MD5(key), IV = MD5(root IV || decimal n, NUL-padded to
// 16)), without the package's code, to check the layout rather than the
// package against itself.
func independentDecrypt(t *testing.T, fek, ct []byte, n int) []byte {
	t.Helper()
	root := md5.Sum(fek)
	src := make([]byte, 32)
	copy(src, root[:])
	copy(src[16:], fmt.Sprint(n))
	iv := md5.Sum(src)
	b, err := aes.NewCipher(fek)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, iv[:]).CryptBlocks(out, ct)
	return out
}

// inode of a path.
func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// needUserXattrs skips the test when the file system under dir refuses
// user xattrs.
func needUserXattrs(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, "xattr-probe")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(p)
	if err := unix.Setxattr(p, "user.probe", []byte("x"), 0); err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			t.Skipf("the file system under %s refuses user xattrs (%v): the xattr metadata mode needs them", dir, err)
		}
		t.Fatal(err)
	}
}

// treeFiles reads every regular file and symlink of a directory by relative
// path, for comparing whole trees.
func treeFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = string(b)
		case d.Type()&fs.ModeSymlink != 0:
			s, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m[rel] = "-> " + s
		case d.IsDir():
			m[rel] = "dir"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
