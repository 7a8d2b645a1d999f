package ecryptfs

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Options are the mount options that change the lower layout.
type Options struct {
	// XattrMetadata mirrors the mount option ecryptfs_xattr_metadata: the
	// header goes into the user.ecryptfs xattr and the file holds the
	// extents only. It needs a file system that takes user xattrs.
	XattrMetadata bool
}

// Tree is a lower tree being generated or edited. Its methods take
// cleartext slash paths relative to the tree ("docs/a.txt") and do to the
// lower files what eCryptfs does when the same call is made through a
// mount. A Tree is not safe for concurrent use.
//
// A Tree holds the mount-wide keys and the lower to cleartext path map; each
// file's key is read back from the file's header when the file is edited,
// as eCryptfs does on open.
type Tree struct {
	dir  string
	opts Options
	keys *keyring
	rng  *rand.ChaCha8     // file keys and markers: fresh for every new file
	seed [sha256.Size]byte // of rng; Mutate derives its choices from it
	path map[string]string // lower slash path -> cleartext slash path, every entry but the root
}

// NewTree opens the lower tree in lowerDir, creating the directory (mode
// 0700, like ~/.Private) when it is missing. A tree already there must have
// been written with the same seed and options: its names are decrypted to
// rebuild the path map, and a name written with other keys is an error
// wrapping ErrForeignKey (so is a header, when its file is opened).
//
// The random stream for new files is seeded from the seed and, when the
// directory is not empty, a digest of what it holds (paths, headers, link
// targets), so that files created on a later day get keys other than the
// files created on the first.
func NewTree(lowerDir string, seed uint64, opts Options) (*Tree, error) {
	keys, err := newKeyring(seed)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(lowerDir, 0o700); err != nil {
		return nil, fmt.Errorf("ecryptfs: create lower tree: %w", err)
	}
	t := &Tree{dir: lowerDir, opts: opts, keys: keys, path: make(map[string]string)}
	digest, n, err := t.scan()
	if err != nil {
		return nil, err
	}
	t.seed = derive(seed, "stream")
	if n > 0 {
		t.seed = sha256.Sum256(append(t.seed[:], digest...))
	}
	t.rng = rand.NewChaCha8(t.seed)
	return t, nil
}

// scan fills the path map from the lower tree and digests its state.
func (t *Tree) scan() (digest []byte, entries int, err error) {
	h := sha256.New()
	err = filepath.WalkDir(t.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(t.dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		dir, name := path.Split(rel)
		clearName, err := t.ClearName(name)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		parent := ""
		if dir != "" {
			parent = t.path[strings.TrimSuffix(dir, "/")] + "/"
		}
		t.path[rel] = parent + clearName
		entries++
		writeDigest(h, rel, byte(d.Type()>>24))
		switch {
		case d.Type().IsRegular():
			hdr, err := t.readHeaderBytes(p, nil)
			if err != nil {
				return err
			}
			if _, err := ParseHeader(hdr); err != nil {
				return fmt.Errorf("%s: %w (was the tree written with XattrMetadata %v?)", p, err, !t.opts.XattrMetadata)
			}
			// The marker, size and wrapped key change with every edit
			// that matters for choosing fresh keys later.
			h.Write(hdr[:min(len(hdr), 96)])
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			h.Write([]byte(target))
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("ecryptfs: read lower tree: %w", err)
	}
	return h.Sum(nil), entries, nil
}

func writeDigest(h hash.Hash, s string, typ byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
	h.Write([]byte{typ})
}

// LowerDir is the root of the lower tree.
func (t *Tree) LowerDir() string { return t.dir }

// LowerName is the lower form of one cleartext name: the same in every
// directory of the tree. Names longer than MaxNameLen bytes give an error
// wrapping ErrNameTooLong.
func (t *Tree) LowerName(clearName string) (string, error) {
	if err := checkName(clearName); err != nil {
		return "", fmt.Errorf("ecryptfs: %w", err)
	}
	return t.keys.encrypt(clearName)
}

// ClearName decrypts one lower name. A name without NamePrefix is returned
// unchanged, as a mount shows names it did not encrypt.
func (t *Tree) ClearName(lowerName string) (string, error) {
	if !strings.HasPrefix(lowerName, NamePrefix) {
		return lowerName, nil
	}
	if !IsEncryptedName(lowerName) {
		return "", fmt.Errorf("ecryptfs: %q: malformed encrypted name", lowerName)
	}
	name, err := t.keys.decrypt(lowerName)
	if err != nil {
		return "", fmt.Errorf("ecryptfs: name %.40q…: %w", lowerName, err)
	}
	if err := checkName(name); err != nil {
		return "", fmt.Errorf("ecryptfs: name %.40q… decrypts to an %w", lowerName, err)
	}
	return name, nil
}

// lowerRel converts a cleartext slash path into the lower one.
func (t *Tree) lowerRel(clearRel string) (string, error) {
	if clearRel == "" || clearRel == "." || path.IsAbs(clearRel) || path.Clean(clearRel) != clearRel {
		return "", fmt.Errorf("ecryptfs: %q is not a clean relative path", clearRel)
	}
	parts := strings.Split(clearRel, "/")
	for i, p := range parts {
		l, err := t.LowerName(p)
		if err != nil {
			return "", err
		}
		parts[i] = l
	}
	return strings.Join(parts, "/"), nil
}

// LowerPath is the lower file-system path of a cleartext path ("." is the
// lower root).
func (t *Tree) LowerPath(clearRel string) (string, error) {
	if clearRel == "." {
		return t.dir, nil
	}
	rel, err := t.lowerRel(clearRel)
	if err != nil {
		return "", err
	}
	return t.abs(rel), nil
}

func (t *Tree) abs(lowerRel string) string {
	return filepath.Join(t.dir, filepath.FromSlash(lowerRel))
}

// Map returns the lower to cleartext path map (slash paths relative to the
// two roots) for every entry of the tree: what joining a mount's two views
// on inode numbers gives. The map is a copy.
func (t *Tree) Map() map[string]string {
	m := make(map[string]string, len(t.path))
	for k, v := range t.path {
		m[k] = v
	}
	return m
}

// mkParents creates the missing parent directories of a path (mode 0755).
func (t *Tree) mkParents(lowerRel, clearRel string) error {
	ld, cd := path.Dir(lowerRel), path.Dir(clearRel)
	if ld == "." {
		return nil
	}
	return t.mkdirAll(ld, cd, 0o755)
}

func (t *Tree) mkdirAll(lowerRel, clearRel string, mode fs.FileMode) error {
	fi, err := os.Lstat(t.abs(lowerRel))
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("ecryptfs: %s exists and is not a directory", clearRel)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("ecryptfs: %s: %w", clearRel, err)
	}
	if err := t.mkParents(lowerRel, clearRel); err != nil {
		return err
	}
	if err := os.Mkdir(t.abs(lowerRel), 0o700); err != nil {
		return fmt.Errorf("ecryptfs: mkdir %s: %w", clearRel, err)
	}
	t.path[lowerRel] = clearRel
	if err := os.Chmod(t.abs(lowerRel), mode&modeBits); err != nil {
		return fmt.Errorf("ecryptfs: mkdir %s: %w", clearRel, err)
	}
	return nil
}

// modeBits are the mode bits a lower entry takes over from the cleartext
// one: eCryptfs passes modes through.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// MkdirAll creates a directory and its missing parents (mode 0755); the
// directory itself gets mode. An existing directory is left as it is.
func (t *Tree) MkdirAll(clearRel string, mode os.FileMode) error {
	rel, err := t.lowerRel(clearRel)
	if err != nil {
		return err
	}
	return t.mkdirAll(rel, clearRel, mode)
}

// Symlink creates clearRel as a symlink to clearTarget. The kernel encrypts
// the whole target string as one name (ecryptfs_symlink calls
// ecryptfs_encrypt_and_encode_filename on it), so the lower link's target
// is a single encrypted name even when the cleartext target holds slashes;
// in the lower tree it dangles.
func (t *Tree) Symlink(clearTarget, clearRel string) error {
	rel, err := t.lowerRel(clearRel)
	if err != nil {
		return err
	}
	if clearTarget == "" || strings.IndexByte(clearTarget, 0) >= 0 {
		return fmt.Errorf("ecryptfs: symlink %s: invalid target %q", clearRel, clearTarget)
	}
	target, err := t.keys.encrypt(clearTarget)
	if err != nil {
		return fmt.Errorf("ecryptfs: symlink %s: %w", clearRel, err)
	}
	if len(target) > maxSymlinkTarget {
		return fmt.Errorf("ecryptfs: symlink %s: encrypted target of %d bytes exceeds PATH_MAX", clearRel, len(target))
	}
	if err := t.mkParents(rel, clearRel); err != nil {
		return err
	}
	if err := os.Symlink(target, t.abs(rel)); err != nil {
		return fmt.Errorf("ecryptfs: symlink %s: %w", clearRel, err)
	}
	t.path[rel] = clearRel
	return nil
}

// Readlink decrypts the target of a symlink.
func (t *Tree) Readlink(clearRel string) (string, error) {
	lp, err := t.LowerPath(clearRel)
	if err != nil {
		return "", err
	}
	target, err := os.Readlink(lp)
	if err != nil {
		return "", fmt.Errorf("ecryptfs: readlink %s: %w", clearRel, err)
	}
	if !IsEncryptedName(target) {
		return "", fmt.Errorf("ecryptfs: readlink %s: target %.40q is not an encrypted name", clearRel, target)
	}
	clearTarget, err := t.keys.decrypt(target)
	if err != nil {
		return "", fmt.Errorf("ecryptfs: readlink %s: %w", clearRel, err)
	}
	return clearTarget, nil
}

// Link makes newRel a hard link to the file existingRel: eCryptfs links the
// lower files, so both names share the lower inode, header and key.
func (t *Tree) Link(existingRel, newRel string) error {
	from, err := t.lowerRel(existingRel)
	if err != nil {
		return err
	}
	to, err := t.lowerRel(newRel)
	if err != nil {
		return err
	}
	if err := t.mkParents(to, newRel); err != nil {
		return err
	}
	if err := os.Link(t.abs(from), t.abs(to)); err != nil {
		return fmt.Errorf("ecryptfs: link %s: %w", newRel, err)
	}
	t.path[to] = newRel
	return nil
}

// Remove removes a file, symlink or directory; a directory is removed with
// everything in it.
func (t *Tree) Remove(clearRel string) error {
	rel, err := t.lowerRel(clearRel)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(t.abs(rel)); err != nil {
		return fmt.Errorf("ecryptfs: remove %s: %w", clearRel, err)
	}
	if err := os.RemoveAll(t.abs(rel)); err != nil {
		return fmt.Errorf("ecryptfs: remove %s: %w", clearRel, err)
	}
	for l := range t.path {
		if l == rel || strings.HasPrefix(l, rel+"/") {
			delete(t.path, l)
		}
	}
	return nil
}

// Rename renames a file, symlink or directory like rename(2): the parent of
// toRel must exist and a file at toRel is replaced. Names below a renamed
// directory keep their lower names (they do not depend on the directory)
// and file contents keep every byte.
func (t *Tree) Rename(fromRel, toRel string) error {
	from, err := t.lowerRel(fromRel)
	if err != nil {
		return err
	}
	to, err := t.lowerRel(toRel)
	if err != nil {
		return err
	}
	if err := os.Rename(t.abs(from), t.abs(to)); err != nil {
		return fmt.Errorf("ecryptfs: rename %s to %s: %w", fromRel, toRel, err)
	}
	delete(t.path, to)
	var moved []string
	for l := range t.path {
		if l == from || strings.HasPrefix(l, from+"/") {
			moved = append(moved, l)
		}
	}
	slices.Sort(moved)
	for _, l := range moved {
		c := t.path[l]
		delete(t.path, l)
		t.path[to+l[len(from):]] = toRel + c[len(fromRel):]
	}
	return nil
}

// Chtimes sets the access and modification times of an entry (of a
// symlink itself, not its target). A mount passes them to the lower entry.
func (t *Tree) Chtimes(clearRel string, atime, mtime time.Time) error {
	lp, err := t.LowerPath(clearRel)
	if err != nil {
		return err
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, lp, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("ecryptfs: chtimes %s: %w", clearRel, err)
	}
	return nil
}
