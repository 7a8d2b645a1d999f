package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"snap/internal/fsdir"
)

// entryMeta is everything the round trip must keep about one entry.
type entryMeta struct {
	mode         uint32 // type and permission bits, as st_mode
	uid, gid     uint32
	size         int64
	mtime, atime unix.Timespec
	rdev         uint64
	target       string
	xattrs       map[string]string
	holes        string // SEEK_HOLE/SEEK_DATA map
	linkGroup    string // the other paths sharing this inode, sorted
}

// collect reads the metadata of every entry under root, before any content
// is read, so that reading does not disturb atimes. It goes through
// directory handles, since some paths are longer than PATH_MAX.
func collect(t *testing.T, root string) map[string]entryMeta {
	t.Helper()
	out := map[string]entryMeta{}
	groups := map[uint64][]string{}
	top, err := fsdir.Open(filepath.Dir(root))
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	var walk func(d *fsdir.Dir, name, rel string)
	walk = func(d *fsdir.Dir, name, rel string) {
		st, err := d.Lstat(name)
		if err != nil {
			t.Fatal(err)
		}
		m := entryMeta{mode: st.Mode, uid: st.Uid, gid: st.Gid, mtime: st.Mtim, rdev: st.Rdev, xattrs: map[string]string{}}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			m.size, m.atime = st.Size, st.Atim
			if st.Nlink > 1 {
				groups[st.Ino] = append(groups[st.Ino], rel)
			}
			f, err := d.OpenFile(name)
			if err != nil {
				t.Fatal(err)
			}
			holes, err := fsdir.Holes(f, st.Size)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			m.holes = fmt.Sprint(holes)
		case unix.S_IFLNK:
			// No atime: reading a symlink (as the backup must) moves it.
			m.target, _ = d.Readlink(name)
		}
		xs, err := d.Xattrs(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range xs {
			m.xattrs[x.Name] = string(x.Value)
		}
		out[rel] = m
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			sub, err := d.OpenDir(name)
			if err != nil {
				t.Fatal(err)
			}
			names, err := sub.Names()
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				walk(sub, n, rel+"/"+n)
			}
			sub.Close()
		}
	}
	walk(top, filepath.Base(root), ".")
	for _, paths := range groups {
		sort.Strings(paths)
		for _, p := range paths {
			m := out[p]
			m.linkGroup = strings.Join(paths, "|")
			out[p] = m
		}
	}
	return out
}

// posixACL encodes an access ACL in the kernel's xattr format: user::rw-,
// user:1234:r--, group::r--, mask::r--, other::---.
func posixACL() []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{0x01, 6, 0xffffffff}, {0x02, 4, 1234}, {0x04, 4, 0xffffffff}, {0x10, 4, 0xffffffff}, {0x20, 0, 0xffffffff}} {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

func TestMetadataRoundTrip(t *testing.T) {
	skipUnlessRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "a", "b"), 0o755))
	write := func(rel string, data string, mode os.FileMode) string {
		p := filepath.Join(src, rel)
		must(os.WriteFile(p, []byte(data), mode))
		must(os.Chmod(p, mode))
		return p
	}
	plain := write("plain.txt", "hello", 0o640)
	setuid := write("a/setuid", "#!/bin/sh\n", 0o755|os.ModeSetuid|os.ModeSetgid)
	must(os.Chmod(setuid, 0o755|os.ModeSetuid|os.ModeSetgid))
	must(os.Mkdir(filepath.Join(src, "sticky"), 0o777))
	must(os.Chmod(filepath.Join(src, "sticky"), 0o777|os.ModeSticky))
	// Owners: a uid/gid with no name here, and a named user.
	must(os.Lchown(plain, 1234, 5678))
	must(os.Lchown(filepath.Join(src, "a"), 65534, 65534))
	// xattrs in several namespaces and a POSIX ACL.
	must(unix.Lsetxattr(plain, "user.comment", []byte("kept"), 0))
	must(unix.Lsetxattr(plain, "user.empty", nil, 0))
	must(unix.Lsetxattr(plain, "trusted.snap", []byte{0, 1, 2, 255}, 0))
	if err := unix.Lsetxattr(plain, "system.posix_acl_access", posixACL(), 0); err != nil {
		t.Logf("file system refuses POSIX ACLs (%v); ACLs not covered", err)
	}
	// Hard links across directories.
	hl := write("a/hard", "linked content", 0o600)
	must(os.Link(hl, filepath.Join(src, "a", "b", "hard2")))
	must(os.Link(hl, filepath.Join(src, "hard3")))
	// A sparse file: 1 MiB of data between two holes.
	sp, err := os.Create(filepath.Join(src, "sparse.img"))
	must(err)
	must(sp.Truncate(64 << 20))
	_, err = sp.WriteAt(bytes.Repeat([]byte("data"), 256<<10), 16<<20)
	must(err)
	must(sp.Close())
	// Devices and a fifo; a socket, which is skipped with a note.
	must(unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(filepath.Join(src, "loopdev"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 200))))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o620))
	l, err := net.Listen("unix", filepath.Join(src, "sock"))
	must(err)
	defer l.Close()
	must(os.Symlink("plain.txt", filepath.Join(src, "link")))
	// Odd names and a path longer than PATH_MAX.
	write("name with\nnewline", "nl", 0o644)
	write("bad-utf8-\xff\xfe", "bytes", 0o644)
	seg := strings.Repeat("d", 200)
	mustMkdirAllLong(t, src, 25, seg)
	writeLong(t, src, 25, seg, "deepfile", "at the bottom")
	// Times with nanoseconds, set last (after all writes below each dir).
	ts := []unix.Timespec{{Sec: 1600000000, Nsec: 123456789}, {Sec: 1700000000, Nsec: 987654321}}
	for _, rel := range []string{"plain.txt", "a/setuid", "a/hard", "sparse.img", "null", "fifo", "link", "a/b", "a", "sticky"} {
		must(unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(src, rel), ts, unix.AT_SYMLINK_NOFOLLOW))
	}

	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	r := mustSnap(t, "create", "-r", repo, "--atime", src)
	if !strings.Contains(r.stderr, "sock") || !strings.Contains(r.stderr, "socket") {
		t.Errorf("no note about the skipped socket on stderr: %q", r.stderr)
	}
	want := collect(t, src)
	delete(want, "./sock")
	out := t.TempDir()
	mustSnap(t, "restore", "-r", repo, "latest", "--sparse", "--target", out)
	got := collect(t, filepath.Join(out, "src"))

	for rel, w := range want {
		g, ok := got[rel]
		if !ok {
			t.Errorf("%q: missing after restore", rel)
			continue
		}
		if rel == "." { // the top directory's mtime changes when restore creates it
			w.mtime, g.mtime = unix.Timespec{}, unix.Timespec{}
		}
		if fmt.Sprint(w) != fmt.Sprint(g) {
			t.Errorf("%q differs:\n source   %+v\n restored %+v", rel, w, g)
		}
	}
	for rel := range got {
		if _, ok := want[rel]; !ok {
			t.Errorf("%q: in the restore but not in the source", rel)
		}
	}
	if w := want["./sparse.img"]; w.holes == "[]" || w.holes == "" {
		t.Errorf("the source sparse file has no holes (%q): the file system cannot test sparse files", w.holes)
	}
	compareTrees(t, src+"/a", filepath.Join(out, "src", "a"))
	if !sameContent(t, filepath.Join(src, "sparse.img"), filepath.Join(out, "src", "sparse.img")) {
		t.Error("sparse file content differs")
	}
}

// mustMkdirAllLong creates n nested directories named seg below root, going
// step by step because the whole path exceeds PATH_MAX.
func mustMkdirAllLong(t *testing.T, root string, n int, seg string) {
	t.Helper()
	fd, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := unix.Mkdirat(fd, seg, 0o755); err != nil {
			t.Fatal(err)
		}
		nfd, err := unix.Openat(fd, seg, unix.O_DIRECTORY|unix.O_RDONLY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = nfd
	}
	unix.Close(fd)
}

func writeLong(t *testing.T, root string, n int, seg, name, data string) {
	t.Helper()
	fd, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		nfd, err := unix.Openat(fd, seg, unix.O_DIRECTORY|unix.O_RDONLY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = nfd
	}
	f, err := unix.Openat(fd, name, unix.O_CREAT|unix.O_WRONLY, 0o644)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	unix.Write(f, []byte(data))
	unix.Close(f)
}

// TestATimeOnlyWhenAsked: by default reading a file between two backups
// leaves the snapshot's trees as they were (no atime recorded) and restore
// sets atime to mtime; with --atime the access time is kept.
func TestATimeOnlyWhenAsked(t *testing.T) {
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(t.TempDir(), "src")
	must(os.MkdirAll(filepath.Join(src, "d"), 0o755))
	file := filepath.Join(src, "d", "f")
	must(os.WriteFile(file, []byte("read me"), 0o644))
	mtime := unix.NsecToTimespec(time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano())
	setTimes := func(atime unix.Timespec) {
		must(unix.UtimesNanoAt(unix.AT_FDCWD, file, []unix.Timespec{atime, mtime}, unix.AT_SYMLINK_NOFOLLOW))
	}
	setTimes(unix.NsecToTimespec(time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()))

	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	first := create(t, repo, src).SnapshotID
	// Reading moves the atime (and only the atime: utimensat would move
	// ctime too, which is a change a backup must see).
	_, err := os.ReadFile(file)
	must(err)
	var st unix.Stat_t
	must(unix.Lstat(file, &st))
	later := st.Atim
	if later.Sec < 1640995200 {
		t.Skipf("reading %s left its atime at %v: the file system does not update atimes (noatime?)", file, later)
	}
	second := create(t, repo, src).SnapshotID
	if a, b := pruneSnapshotTree(t, repo, first), pruneSnapshotTree(t, repo, second); a != b {
		t.Errorf("an atime change alone gave a new root tree (%s, then %s)", a, b)
	}
	restoredATime := func(snap string) unix.Timespec {
		out := t.TempDir()
		mustSnap(t, "restore", "-r", repo, snap, "--target", out)
		var st unix.Stat_t
		must(unix.Lstat(filepath.Join(out, "src", "d", "f"), &st))
		return st.Atim
	}
	if got := restoredATime(second); got != mtime {
		t.Errorf("restored atime %v without --atime, want the mtime %v", got, mtime)
	}
	third := create(t, repo, "--atime", src).SnapshotID
	if got := restoredATime(third); got != later {
		t.Errorf("restored atime %v with --atime, want %v", got, later)
	}
}
