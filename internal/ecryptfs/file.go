package ecryptfs

// Regular files: creating them with fresh keys, and editing them in place
// the way the kernel's write, truncate and rename paths change lower files.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// WriteFile writes a file through the cleartext view. A new file gets a
// fresh random key and marker, so every byte of it differs from any other
// file; missing parent directories are created. An existing file is
// rewritten like open(O_TRUNC) and write do through a mount: it keeps its
// key, marker and mode, so writing the same content again gives the same
// bytes. Use SaveByRename for an editor's new file.
func (t *Tree) WriteFile(clearRel string, data []byte, mode os.FileMode) error {
	rel, err := t.lowerRel(clearRel)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(t.abs(rel))
	switch {
	case err == nil && fi.Mode().IsRegular():
		return t.edit(clearRel, func(lf *lowerFile) error {
			if err := lf.truncate(0); err != nil {
				return err
			}
			return lf.writeAt(0, data)
		})
	case err == nil:
		return fmt.Errorf("ecryptfs: write %s: exists and is not a regular file", clearRel)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("ecryptfs: write %s: %w", clearRel, err)
	}
	return t.createFrom(rel, clearRel, bytes.NewReader(data), int64(len(data)), mode)
}

// createFrom creates a new lower file holding size bytes read from r.
func (t *Tree) createFrom(lowerRel, clearRel string, r io.Reader, size int64, mode fs.FileMode) error {
	if err := t.mkParents(lowerRel, clearRel); err != nil {
		return err
	}
	if err := t.create(t.abs(lowerRel), r, size, mode); err != nil {
		return fmt.Errorf("ecryptfs: create %s: %w", clearRel, err)
	}
	t.path[lowerRel] = clearRel
	return nil
}

// create writes a new lower file with a fresh key: header (or xattr), then
// the extents, streaming from r.
func (t *Tree) create(lp string, r io.Reader, size int64, mode fs.FileMode) (err error) {
	if size < 0 || size > maxPlainSize {
		return fmt.Errorf("size %d out of range", size)
	}
	var fek [keySize]byte
	var m [4]byte
	_, _ = t.rng.Read(fek[:]) // ChaCha8.Read never fails
	_, _ = t.rng.Read(m[:])
	key, err := newFileKey(fek)
	if err != nil {
		return err
	}
	hdr := buildHeader(headerParams{
		size:       uint64(size),
		marker:     binary.BigEndian.Uint32(m[:]),
		xattr:      t.opts.XattrMetadata,
		wrappedKey: t.keys.wrap(fek),
		sig:        t.keys.mountSig,
	})

	f, err := os.OpenFile(lp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			os.Remove(lp) // leave no half-written file behind
		}
	}()
	// Set the mode explicitly so the umask does not change it.
	if err := f.Chmod(mode & modeBits); err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if t.opts.XattrMetadata {
		if err := fsetxattr(f, hdr); err != nil {
			return err
		}
	} else {
		w.Write(hdr)
		w.Write(make([]byte, HeaderSize-len(hdr)))
	}
	plain := make([]byte, ExtentSize)
	ct := make([]byte, ExtentSize)
	for n, left := int64(0), size; left > 0; n++ {
		k := min(left, ExtentSize)
		if _, err := io.ReadFull(r, plain[:k]); err != nil {
			return fmt.Errorf("read content at %d of %d bytes: %w", n*ExtentSize, size, err)
		}
		clear(plain[k:]) // the last extent is padded with zeros before encryption
		key.encryptExtent(ct, plain, n)
		if _, err := w.Write(ct); err != nil {
			return err
		}
		left -= k
	}
	return w.Flush()
}

// fsetxattr stores the header in the user.ecryptfs xattr.
func fsetxattr(f *os.File, hdr []byte) error {
	if err := unix.Fsetxattr(int(f.Fd()), XattrName, hdr, 0); err != nil {
		return fmt.Errorf("set xattr %s (does the file system take user xattrs?): %w", XattrName, err)
	}
	return nil
}

// headerRead is how much of a file's header is read: the fixed fields and
// the key packets with room to spare; the rest of the header is zeros.
const headerRead = 512

// readHeaderBytes reads a lower file's header: the whole xattr value, or
// the file's first headerRead bytes (fewer if the file is shorter). f may
// be nil.
func (t *Tree) readHeaderBytes(lp string, f *os.File) ([]byte, error) {
	buf := make([]byte, HeaderSize)
	if t.opts.XattrMetadata {
		var n int
		var err error
		if f != nil {
			n, err = unix.Fgetxattr(int(f.Fd()), XattrName, buf)
		} else {
			n, err = unix.Lgetxattr(lp, XattrName, buf)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: get xattr %s: %w", lp, XattrName, err)
		}
		return buf[:n], nil
	}
	if f == nil {
		var err error
		if f, err = os.Open(lp); err != nil {
			return nil, err
		}
		defer f.Close()
	}
	n, err := f.ReadAt(buf[:headerRead], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: read header: %w", lp, err)
	}
	return buf[:n], nil
}

// lowerFile is an open lower file with its key.
type lowerFile struct {
	t       *Tree
	f       *os.File
	hdr     []byte // header as read; in xattr mode rewritten as a whole
	key     *fileKey
	dataOff int64 // where extent 0 starts
	size    int64 // plaintext size
}

// open opens a lower file and recovers its key from its header.
func (t *Tree) open(clearRel string, write bool) (*lowerFile, error) {
	lp, err := t.LowerPath(clearRel)
	if err != nil {
		return nil, err
	}
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	fi, err := os.Lstat(lp)
	if err != nil {
		return nil, fmt.Errorf("ecryptfs: %s: %w", clearRel, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("ecryptfs: %s is not a regular file", clearRel)
	}
	f, err := os.OpenFile(lp, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("ecryptfs: %s: %w", clearRel, err)
	}
	lf, err := t.load(f, lp, fi.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ecryptfs: %s: %w", clearRel, err)
	}
	return lf, nil
}

func (t *Tree) load(f *os.File, lp string, lowerSize int64) (*lowerFile, error) {
	hdr, err := t.readHeaderBytes(lp, f)
	if err != nil {
		return nil, err
	}
	h, err := ParseHeader(hdr)
	if err != nil {
		return nil, err
	}
	if h.MetadataInXattr != t.opts.XattrMetadata {
		return nil, fmt.Errorf("header says metadata in xattr %v, tree options say %v", h.MetadataInXattr, t.opts.XattrMetadata)
	}
	if want := h.LowerSize(); lowerSize != want {
		return nil, fmt.Errorf("lower file is %d bytes, its header (size %d) needs %d", lowerSize, h.PlainSize, want)
	}
	key, err := t.keys.unwrapHeader(hdr)
	if err != nil {
		return nil, err
	}
	return &lowerFile{t: t, f: f, hdr: hdr, key: key, dataOff: h.Size(), size: int64(h.PlainSize)}, nil
}

// edit opens a file for writing, runs fn and closes the file.
func (t *Tree) edit(clearRel string, fn func(*lowerFile) error) error {
	lf, err := t.open(clearRel, true)
	if err != nil {
		return err
	}
	err = fn(lf)
	if cerr := lf.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ecryptfs: %s: %w", clearRel, err)
	}
	return nil
}

// writeSize rewrites the size field, which the kernel does after every
// write whether or not the size changed.
func (lf *lowerFile) writeSize() error {
	binary.BigEndian.PutUint64(lf.hdr[0:8], uint64(lf.size))
	if lf.t.opts.XattrMetadata {
		return fsetxattr(lf.f, lf.hdr)
	}
	_, err := lf.f.WriteAt(lf.hdr[0:8], 0)
	return err
}

// readExtent decrypts extent n into plain.
func (lf *lowerFile) readExtent(n int64, plain []byte) error {
	ct := make([]byte, ExtentSize)
	if _, err := lf.f.ReadAt(ct, lf.dataOff+n*ExtentSize); err != nil {
		return fmt.Errorf("read extent %d: %w", n, err)
	}
	lf.key.decryptExtent(plain, ct, n)
	return nil
}

// batchExtents is how many encrypted extents are written per syscall.
const batchExtents = 256

// rewrite re-encrypts the extents overlapping [from, to) after fill has put
// the new plaintext of that part of each extent in place (fill sees zeros
// where the file had no data), then sets the size to max(size, to) and
// rewrites the size field. Extents outside the range are not touched, as
// the kernel touches only the pages a write dirties.
func (lf *lowerFile) rewrite(from, to int64, fill func(p []byte, pos int64)) error {
	if from < 0 || to <= from || to > maxPlainSize {
		return fmt.Errorf("write range %d-%d out of range", from, to)
	}
	first, last := from/ExtentSize, (to-1)/ExtentSize
	plain := make([]byte, ExtentSize)
	batch := make([]byte, 0, min(last-first+1, batchExtents)*ExtentSize)
	batchStart := first
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := lf.f.WriteAt(batch, lf.dataOff+batchStart*ExtentSize)
		batch = batch[:0]
		return err
	}
	for n := first; n <= last; n++ {
		base := n * ExtentSize
		lo, hi := max(from, base)-base, min(to, base+ExtentSize)-base
		clear(plain)
		if base < lf.size && (lo > 0 || hi < ExtentSize) {
			if err := lf.readExtent(n, plain); err != nil {
				return err
			}
			if end := lf.size - base; end < ExtentSize {
				clear(plain[end:])
			}
		}
		fill(plain[lo:hi], base+lo)
		if len(batch) == 0 {
			batchStart = n
		}
		batch = batch[:len(batch)+ExtentSize]
		lf.key.encryptExtent(batch[len(batch)-ExtentSize:], plain, n)
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	lf.size = max(lf.size, to)
	return lf.writeSize()
}

// writeAt writes data at off; a gap after the old end is filled with
// encrypted zeros, as eCryptfs writes no holes.
func (lf *lowerFile) writeAt(off int64, data []byte) error {
	if off < 0 || off > maxPlainSize-int64(len(data)) {
		return fmt.Errorf("write at %d out of range", off)
	}
	if len(data) == 0 {
		return nil // write(2) of nothing changes nothing
	}
	end := off + int64(len(data))
	return lf.rewrite(min(off, lf.size), end, func(p []byte, pos int64) {
		if pos < off {
			skip := off - pos
			if skip >= int64(len(p)) {
				return
			}
			p, pos = p[skip:], off
		}
		copy(p, data[pos-off:])
	})
}

// truncate sets the plaintext size the way ecryptfs_truncate does.
func (lf *lowerFile) truncate(size int64) error {
	switch {
	case size < 0 || size > maxPlainSize:
		return fmt.Errorf("truncate to %d out of range", size)
	case size > lf.size:
		// The kernel writes a zero byte at the new end; every page from the
		// old end on is written, so the file gets encrypted zero extents.
		return lf.rewrite(lf.size, size, func([]byte, int64) {})
	case size == lf.size:
		return lf.writeSize()
	}
	if r := size % ExtentSize; r != 0 {
		// The extent holding the new end keeps its head and gets zeros after.
		n := size / ExtentSize
		plain := make([]byte, ExtentSize)
		if err := lf.readExtent(n, plain); err != nil {
			return err
		}
		clear(plain[r:])
		ct := make([]byte, ExtentSize)
		lf.key.encryptExtent(ct, plain, n)
		if _, err := lf.f.WriteAt(ct, lf.dataOff+n*ExtentSize); err != nil {
			return err
		}
	}
	if err := lf.f.Truncate(lf.dataOff + extentsFor(size)*ExtentSize); err != nil {
		return err
	}
	lf.size = size
	return lf.writeSize()
}

// readAt decrypts n bytes at off (fewer at the end of the file).
func (lf *lowerFile) readAt(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("read %d bytes at %d out of range", n, off)
	}
	end := min(off+n, lf.size)
	if off >= end {
		return nil, nil
	}
	out := make([]byte, 0, end-off)
	plain := make([]byte, ExtentSize)
	for e := off / ExtentSize; e*ExtentSize < end; e++ {
		if err := lf.readExtent(e, plain); err != nil {
			return nil, err
		}
		base := e * ExtentSize
		out = append(out, plain[max(off, base)-base:min(end, base+ExtentSize)-base]...)
	}
	return out, nil
}

// WriteAt writes data at off through the cleartext view: only the extents
// the write touches are re-encrypted (with the file's own key, so equal
// plaintext gives equal ciphertext), and bytes 0–7 are rewritten (with the
// same value when the size did not change). Writing past the end fills the
// gap with encrypted zeros.
func (t *Tree) WriteAt(clearRel string, off int64, data []byte) error {
	return t.edit(clearRel, func(lf *lowerFile) error { return lf.writeAt(off, data) })
}

// Append writes data at the end of the file: the old last extent is
// re-encrypted when data replaces its zero padding, new extents are added,
// and the size field changes.
func (t *Tree) Append(clearRel string, data []byte) error {
	return t.edit(clearRel, func(lf *lowerFile) error { return lf.writeAt(lf.size, data) })
}

// Truncate changes the size of the file. Smaller: the extent holding the new
// end is re-encrypted and later extents are dropped. Larger: encrypted zero
// extents are added (the old last extent keeps its bytes: its plaintext
// does not change).
func (t *Tree) Truncate(clearRel string, size int64) error {
	return t.edit(clearRel, func(lf *lowerFile) error { return lf.truncate(size) })
}

// ReadFile decrypts a file, which proves that the layout round-trips.
func (t *Tree) ReadFile(clearRel string) ([]byte, error) {
	lf, err := t.open(clearRel, false)
	if err != nil {
		return nil, err
	}
	defer lf.f.Close()
	b, err := lf.readAt(0, lf.size)
	if err != nil {
		return nil, fmt.Errorf("ecryptfs: read %s: %w", clearRel, err)
	}
	return b, nil
}

// SaveByRename replaces a file the way editors and rsync do: data is
// written to a new temporary file in the same directory (with a fresh key
// and marker, and a new inode) which is then renamed over the old one. The
// lower name stays the same; every other byte changes even when data does
// not. The mode of the old file is kept (0644 for a new one).
func (t *Tree) SaveByRename(clearRel string, data []byte) error {
	rel, err := t.lowerRel(clearRel)
	if err != nil {
		return err
	}
	mode := fs.FileMode(0o644)
	fi, err := os.Lstat(t.abs(rel))
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("ecryptfs: save %s: exists and is not a regular file", clearRel)
	case err == nil:
		mode = fi.Mode()
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("ecryptfs: save %s: %w", clearRel, err)
	}
	if err := t.mkParents(rel, clearRel); err != nil {
		return err
	}
	tmpRel, err := t.tempName(rel, clearRel)
	if err != nil {
		return err
	}
	if err := t.create(t.abs(tmpRel), bytes.NewReader(data), int64(len(data)), mode); err != nil {
		return fmt.Errorf("ecryptfs: save %s: %w", clearRel, err)
	}
	if err := os.Rename(t.abs(tmpRel), t.abs(rel)); err != nil {
		os.Remove(t.abs(tmpRel))
		return fmt.Errorf("ecryptfs: save %s: %w", clearRel, err)
	}
	t.path[rel] = clearRel
	return nil
}

// tempName picks an unused lower name for a temporary file next to rel,
// encrypted like any name (".#name" in the cleartext view, as Emacs names
// its lock files; the choice does not show in the result).
func (t *Tree) tempName(rel, clearRel string) (string, error) {
	base := path.Base(clearRel)
	for i := 0; i < 100; i++ {
		name := fmt.Sprintf(".#%d.%s", i, base)
		name = name[:min(len(name), MaxNameLen)]
		l, err := t.LowerName(name)
		if err != nil {
			return "", err
		}
		cand := path.Join(path.Dir(rel), l)
		if _, err := os.Lstat(t.abs(cand)); errors.Is(err, fs.ErrNotExist) {
			return cand, nil
		}
	}
	return "", fmt.Errorf("ecryptfs: save %s: no free temporary name", clearRel)
}
