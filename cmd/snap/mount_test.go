package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"snap/internal/testtree"
)

// The tests in this file mount repositories with 'snap mount' run as a
// separate process, as a user would, and look at the mount with ordinary
// file operations. They skip where FUSE cannot work: no /dev/fuse, no
// fusermount3, or a mount refused with EPERM (an unprivileged container).

// mountProc is a running 'snap mount'.
type mountProc struct {
	dir    string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{} // closed when the process has exited
	code   int           // exit code, once done is closed
}

// lockedBuffer is a bytes.Buffer written by a process and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// skipUnlessFUSE skips the test where FUSE mounts cannot work.
func skipUnlessFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("needs /dev/fuse for FUSE mounts: %v", err)
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Skip("needs fusermount3 for FUSE mounts (Debian: apt-get install fuse3)")
	}
}

// isMountPoint reports whether dir is a mount point, from /proc/self/mountinfo.
func isMountPoint(t testing.TB, dir string) bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && fields[4] == dir {
			return true
		}
	}
	return false
}

// startMount runs 'snap mount' of repo at a new directory and waits until
// the mount shows snapshots/. The mount is always taken down when the test
// ends, lazily if need be, so a failing test leaves no stale mount behind.
func startMount(t *testing.T, repo string, extra ...string) *mountProc {
	t.Helper()
	skipUnlessFUSE(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := &mountProc{dir: dir, stderr: &lockedBuffer{}, done: make(chan struct{})}
	m.cmd = exec.Command(snapBin, append([]string{"mount", "-r", repo, dir}, extra...)...)
	m.cmd.Env = append(os.Environ(), "SNAP_REPOSITORY=")
	m.cmd.Stderr = m.stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := m.cmd.Wait()
		m.code = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			m.code = ee.ExitCode()
		} else if err != nil {
			m.code = -1
		}
		close(m.done)
	}()
	t.Cleanup(func() { m.stop(t) })

	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-m.done:
			msg := m.stderr.String()
			if strings.Contains(msg, "not permitted") || strings.Contains(msg, "permission denied") {
				t.Skipf("FUSE mounts are not permitted here: %s", msg)
			}
			t.Fatalf("snap mount exited %d before mounting: %s", m.code, msg)
		default:
		}
		if _, err := os.Stat(filepath.Join(dir, "snapshots")); err == nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mount did not show snapshots/ within 15 s; stderr: %s", m.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the mount if it is still there: SIGTERM, then a lazy unmount
// and SIGKILL if that did not work.
func (m *mountProc) stop(t *testing.T) {
	select {
	case <-m.done:
	default:
		m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(10 * time.Second):
			t.Errorf("snap mount did not exit within 10 s of SIGTERM; stderr: %s", m.stderr.String())
			exec.Command("fusermount3", "-u", "-z", m.dir).Run()
			m.cmd.Process.Kill()
			<-m.done
		}
	}
	if isMountPoint(t, m.dir) {
		t.Errorf("%s is still mounted after snap mount exited", m.dir)
		exec.Command("fusermount3", "-u", "-z", m.dir).Run()
	}
}

// wait waits for the process to exit and returns its exit code.
func (m *mountProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-m.done:
		return m.code
	case <-time.After(timeout):
		t.Fatalf("snap mount did not exit within %v; stderr: %s", timeout, m.stderr.String())
		return -1
	}
}

// mountSource writes a tree with the kinds of entries a mount must show.
func mountSource(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "docs", "deep", "er"), 0o755))
	must(os.Mkdir(filepath.Join(src, "private"), 0o700))
	must(os.WriteFile(filepath.Join(src, "docs", "a.txt"), []byte("hello mount\n"), 0o644))
	must(os.WriteFile(filepath.Join(src, "docs", "deep", "er", "b.txt"), bytes.Repeat([]byte("b"), 70000), 0o640))
	must(os.WriteFile(filepath.Join(src, "empty"), nil, 0o600))
	must(os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(os.WriteFile(filepath.Join(src, "private", "key"), []byte("secret"), 0o600))
	must(os.WriteFile(filepath.Join(src, "name with spaces and ü"), []byte("odd name"), 0o644))
	must(testtree.RandomFile(filepath.Join(src, "random.bin"), 7, 3<<20+12345))
	must(os.Symlink("docs/a.txt", filepath.Join(src, "link")))
	must(os.Symlink("/nowhere/at/all", filepath.Join(src, "dangling")))
	must(os.WriteFile(filepath.Join(src, "hard1"), []byte("linked"), 0o644))
	must(os.Link(filepath.Join(src, "hard1"), filepath.Join(src, "docs", "hard2")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o620))
	// A directory large enough to be stored as a paged tree (FORMAT.md).
	must(os.Mkdir(filepath.Join(src, "many"), 0o755))
	for i := range 300 {
		must(os.WriteFile(filepath.Join(src, "many", fmt.Sprintf("file-with-a-longer-name-%04d.txt", i)), fmt.Appendf(nil, "file %d\n", i), 0o644))
	}
	must(unix.Lsetxattr(filepath.Join(src, "docs", "a.txt"), "user.comment", []byte("kept"), 0))
	must(unix.Lsetxattr(filepath.Join(src, "docs", "a.txt"), "user.bin", []byte{0, 1, 2, 255}, 0))
	if os.Geteuid() == 0 {
		must(os.Lchown(filepath.Join(src, "docs", "a.txt"), 1234, 5678))
	}
	// Fixed times, the directories' last (adding entries moves them).
	old := time.Date(2024, 2, 29, 12, 30, 45, 123456789, time.UTC)
	for _, p := range []string{"docs/a.txt", "empty", "random.bin", "docs/deep/er", "docs/deep", "docs", "private"} {
		must(os.Chtimes(filepath.Join(src, p), old, old))
	}
	return src
}

// lgetxattr reads one extended attribute of a path, without following symlinks.
func lgetxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func TestMountBrowse(t *testing.T) {
	src := mountSource(t)
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	sum := create(t, repo, "--host", "testhost", "--tag", "daily", "--tag", "x/y", src)
	restored := filepath.Join(t.TempDir(), "restored")
	mustSnap(t, "restore", "-q", "-r", repo, "latest", "--target", restored)

	m := startMount(t, repo)
	if !strings.Contains(m.stderr.String(), "mounted at "+m.dir+"; unmount with Ctrl-C or 'fusermount3 -u "+m.dir+"'") {
		t.Errorf("mount message missing; stderr: %s", m.stderr.String())
	}
	snaps := filepath.Join(m.dir, "snapshots")
	target, err := os.Readlink(filepath.Join(snaps, "latest"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := time.ParseInLocation("2006-01-02T15:04:05", target, time.Local); err != nil {
		t.Errorf("snapshots/latest -> %q, want a local time like 2006-01-02T15:04:05", target)
	}
	root := filepath.Join(snaps, "latest", "src")

	// The whole tree against the restore (content; diff calls two fifos a
	// difference) and the source (modes, mtimes, symlinks).
	if out, err := exec.Command("diff", "-r", "--no-dereference", "--exclude=fifo", filepath.Join(restored, "src"), root).CombinedOutput(); err != nil {
		t.Errorf("diff -r of the restore and the mount: %v\n%s", err, out)
	}
	compareTrees(t, src, root)

	// Metadata: owners, times with nanoseconds, links, types, xattrs.
	var want, got unix.Stat_t
	for _, p := range []string{"docs/a.txt", "hard1", "docs/hard2", "fifo", "random.bin", "empty", "private", "link"} {
		if err := unix.Lstat(filepath.Join(src, p), &want); err != nil {
			t.Fatal(err)
		}
		if err := unix.Lstat(filepath.Join(root, p), &got); err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if got.Mode != want.Mode || got.Uid != want.Uid || got.Gid != want.Gid || got.Nlink != want.Nlink {
			t.Errorf("%s: mode %o uid %d gid %d nlink %d, want %o %d %d %d", p,
				got.Mode, got.Uid, got.Gid, got.Nlink, want.Mode, want.Uid, want.Gid, want.Nlink)
		}
		if want.Mode&unix.S_IFMT != unix.S_IFDIR && got.Size != want.Size {
			t.Errorf("%s: size %d, want %d", p, got.Size, want.Size)
		}
		if got.Mtim != want.Mtim || got.Ctim != want.Ctim {
			t.Errorf("%s: mtime %v ctime %v, want %v %v", p, got.Mtim, got.Ctim, want.Mtim, want.Ctim)
		}
	}
	var h1, h2 unix.Stat_t
	unix.Lstat(filepath.Join(root, "hard1"), &h1)
	unix.Lstat(filepath.Join(root, "docs", "hard2"), &h2)
	if h1.Ino != h2.Ino {
		t.Errorf("hard links show inodes %d and %d, want one", h1.Ino, h2.Ino)
	}
	if v, err := lgetxattr(filepath.Join(root, "docs", "a.txt"), "user.comment"); err != nil || string(v) != "kept" {
		t.Errorf("xattr user.comment = %q, %v; want kept", v, err)
	}
	if v, err := lgetxattr(filepath.Join(root, "docs", "a.txt"), "user.bin"); err != nil || !bytes.Equal(v, []byte{0, 1, 2, 255}) {
		t.Errorf("xattr user.bin = %v, %v", v, err)
	}
	if _, err := lgetxattr(filepath.Join(root, "docs", "a.txt"), "user.none"); !errors.Is(err, unix.ENODATA) {
		t.Errorf("missing xattr: %v, want ENODATA", err)
	}
	names := make([]byte, 256)
	n, err := unix.Llistxattr(filepath.Join(root, "docs", "a.txt"), names)
	if err != nil || !strings.Contains(string(names[:n]), "user.comment\x00") || !strings.Contains(string(names[:n]), "user.bin\x00") {
		t.Errorf("listxattr = %q, %v", names[:n], err)
	}
	if size, err := unix.Llistxattr(filepath.Join(root, "docs", "a.txt"), nil); err != nil || size != n {
		t.Errorf("listxattr size query = %d, %v; want %d", size, err, n)
	}
	if l, err := os.Readlink(filepath.Join(root, "dangling")); err != nil || l != "/nowhere/at/all" {
		t.Errorf("dangling symlink -> %q, %v", l, err)
	}

	// Read-only.
	if err := os.WriteFile(filepath.Join(root, "new"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("creating a file: %v, want EROFS", err)
	}
	if f, err := os.OpenFile(filepath.Join(root, "docs", "a.txt"), os.O_WRONLY, 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("opening for writing: %v, want EROFS", err)
		if f != nil {
			f.Close()
		}
	}

	// The other views of the same snapshot.
	short := sum.SnapshotID[:8]
	for _, p := range []string{
		filepath.Join("ids", short, "src", "docs", "a.txt"),
		filepath.Join("hosts", "testhost", target, "src", "docs", "a.txt"),
		filepath.Join("hosts", "testhost", "latest", "src", "docs", "a.txt"),
		filepath.Join("tags", "daily", target, "src", "docs", "a.txt"),
		filepath.Join("tags", "x_y", "latest", "src", "docs", "a.txt"),
	} {
		data, err := os.ReadFile(filepath.Join(m.dir, p))
		if err != nil || string(data) != "hello mount\n" {
			t.Errorf("%s: %q, %v", p, data, err)
		}
	}
	for dir, want := range map[string][]string{
		"":          {"hosts", "ids", "snapshots", "tags"},
		"snapshots": {target, "latest"},
		"ids":       {short},
		"hosts":     {"testhost"},
		"tags":      {"daily", "x_y"},
	} {
		entries, err := os.ReadDir(filepath.Join(m.dir, dir))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("ls /%s = %v, want %v", dir, got, want)
		}
	}
}

func TestMountLargeFileReads(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	const size = 60<<20 + 4321
	big := filepath.Join(src, "big")
	if err := testtree.RandomFile(big, 42, size); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(t.TempDir(), "repo")
	// Small chunks, so the file has a few hundred blobs.
	mustSnap(t, "init", "-q", "-r", repo, "--chunk-min", "64KiB", "--chunk-avg", "256KiB", "--chunk-max", "1MiB")
	create(t, repo, src)
	// A cache far smaller than the file, so blobs are evicted and loaded again.
	m := startMount(t, repo, "--cache-size", "8MiB")
	p := filepath.Join(m.dir, "snapshots", "latest", "src", "big")

	// Random reads first, before the kernel has the file in its page cache.
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 3<<20)
	for i := 0; i < 200; i++ {
		off := rnd.Int64N(size)
		n := 1 + rnd.IntN(len(buf))
		if i%20 == 0 {
			off = size - int64(n)/2 // across the end
		}
		got, err := f.ReadAt(buf[:n], off)
		if err != nil && err != io.EOF {
			t.Fatalf("read %d bytes at %d: %v", n, off, err)
		}
		end := min(off+int64(n), size)
		if int64(got) != end-off || !bytes.Equal(buf[:got], want[off:end]) {
			t.Fatalf("read %d bytes at %d: got %d bytes, differing from the source", n, off, got)
		}
	}
	f.Close()

	// Then sequentially, as cp does.
	f, err = os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 128<<10)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if [32]byte(h.Sum(nil)) != sha256.Sum256(want) {
		t.Error("sequential read of the mount differs from the source")
	}
}

func TestMountCreateWhileMounted(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	if _, err := testtree.Write(src, testtree.Spec{Seed: 3, Files: 300, Large: []int{8 << 20}}); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	create(t, repo, src)
	m := startMount(t, repo)
	snaps := filepath.Join(m.dir, "snapshots")
	before, err := os.ReadDir(snaps)
	if err != nil {
		t.Fatal(err)
	}

	// List snapshots/ and read from the mount all the time the second
	// create runs: neither may block it.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.ReadDir(snaps)
			filepath.WalkDir(filepath.Join(snaps, "latest"), func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					os.ReadFile(p)
				}
				return nil
			})
		}
	}()
	// New data, so that create writes packs and commits to the index.
	os.WriteFile(filepath.Join(src, "new-file"), []byte("new"), 0o644)
	if err := testtree.RandomFile(filepath.Join(src, "new-random"), 4, 24<<20); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	second := create(t, repo, "--lock-wait", "0s", src)
	took := time.Since(start)
	close(stop)
	wg.Wait()
	t.Logf("create while mounted took %v", took)
	// Between lookups the mount keeps no file of the repository open but
	// the packs it reads (no index.db, no lock file).
	fds, _ := os.ReadDir(filepath.Join("/proc", strconv.Itoa(m.cmd.Process.Pid), "fd"))
	for _, fd := range fds {
		target, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(m.cmd.Process.Pid), "fd", fd.Name()))
		if strings.HasPrefix(target, repo) && !strings.Contains(target, "/data/") {
			t.Errorf("the mount holds %s open", target)
		}
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		entries, err := os.ReadDir(snaps)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == len(before)+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new snapshot did not appear in snapshots/ within 5 s: %d entries, want %d", len(entries), len(before)+1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(m.dir, "ids", second.SnapshotID[:8], "src", "new-file")); err != nil {
		t.Errorf("the new snapshot's new file: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(snaps, "latest", "src", "new-file"))
	if err != nil || string(data) != "new" {
		t.Errorf("snapshots/latest does not lead to the new snapshot: %q, %v", data, err)
	}
}

// packNames lists the pack files of a repository.
func packNames(t *testing.T, repo string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	paths, _ := filepath.Glob(filepath.Join(repo, "data", "*", "*"))
	for _, p := range paths {
		names[filepath.Base(p)] = true
	}
	return names
}

func TestMountPruneNeverGivesWrongBytes(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	const size = 12 << 20
	keep, drop := filepath.Join(src, "keep"), filepath.Join(src, "drop")
	if err := testtree.RandomFile(keep, 1, size); err != nil {
		t.Fatal(err)
	}
	if err := testtree.RandomFile(drop, 2, size); err != nil {
		t.Fatal(err)
	}
	keepData, _ := os.ReadFile(keep)
	dropData, _ := os.ReadFile(drop)
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-q", "-r", repo, "--chunk-min", "64KiB", "--chunk-avg", "256KiB", "--chunk-max", "1MiB")
	first := create(t, repo, src) // keep and drop share packs
	os.Remove(drop)
	create(t, repo, src) // keep only

	m := startMount(t, repo, "--cache-size", "1MiB")
	var firstName string
	entries, _ := os.ReadDir(filepath.Join(m.dir, "snapshots"))
	for _, e := range entries {
		if target, _ := os.Readlink(filepath.Join(m.dir, "snapshots", "latest")); e.Name() != "latest" && e.Name() != target {
			firstName = e.Name()
		}
	}
	if firstName == "" {
		t.Fatalf("no directory for the first snapshot in %v", entries)
	}
	fk, err := os.Open(filepath.Join(m.dir, "snapshots", "latest", "src", "keep"))
	if err != nil {
		t.Fatal(err)
	}
	defer fk.Close()
	fd, err := os.Open(filepath.Join(m.dir, "snapshots", firstName, "src", "drop"))
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	// Open both and read their first bytes: the mount now knows where
	// their blobs are.
	buf := make([]byte, 64<<10)
	for _, f := range []*os.File{fk, fd} {
		if _, err := f.ReadAt(buf, 0); err != nil {
			t.Fatal(err)
		}
	}

	// Forget the first snapshot (its document goes) and prune: the packs
	// shared by both files are repacked, keep's blobs move to new packs and
	// the old packs are deleted.
	packsBefore := map[string][]byte{}
	for name := range packNames(t, repo) {
		data, err := os.ReadFile(filepath.Join(repo, "data", name[:2], name))
		if err != nil {
			t.Fatal(err)
		}
		packsBefore[name] = data
	}
	if err := os.Remove(filepath.Join(repo, "snapshots", first.SnapshotID)); err != nil {
		t.Fatal(err)
	}
	mustSnap(t, "prune", "-q", "-r", repo, "--max-unused", "0%")
	// Blobs are stored raw (random data does not compress), so a deleted
	// pack that holds bytes of keep shows that keep's blobs moved.
	after := packNames(t, repo)
	moved := 0
	for off := int64(1 << 20); off < size; off += 1 << 20 {
		for name, data := range packsBefore {
			if !after[name] && bytes.Contains(data, keepData[off:off+4096]) {
				moved++
			}
		}
	}
	if moved == 0 {
		t.Fatal("prune moved none of keep's blobs to a new pack; the test needs it to")
	}

	// Reads of keep follow its blobs to their new packs; reads of drop
	// fail with EIO or, where the mount had the blob cached (verified),
	// give the right bytes. Never other bytes.
	eio := 0
	for off := int64(1 << 20); off < size; off += 1 << 20 {
		n, err := fk.ReadAt(buf, off)
		if err != nil || !bytes.Equal(buf[:n], keepData[off:off+int64(n)]) {
			t.Errorf("keep at %d after prune: %d bytes, %v (want the source bytes)", off, n, err)
		}
		n, err = fd.ReadAt(buf, off)
		switch {
		case errors.Is(err, syscall.EIO):
			eio++
		case err != nil:
			t.Errorf("drop at %d after prune: %v, want EIO or the source bytes", off, err)
		case !bytes.Equal(buf[:n], dropData[off:off+int64(n)]):
			t.Errorf("drop at %d after prune: wrong bytes", off)
		}
	}
	// The local backend keeps recently read packs open, and an open pack
	// still reads its (immutable) bytes after prune deleted its name, so
	// every read may succeed; what must never happen is other bytes.
	if eio > 0 && !strings.Contains(m.stderr.String(), "prune removed it") {
		t.Errorf("the mount did not say why reads failed; stderr: %s", m.stderr.String())
	}
}

func TestMountUnmount(t *testing.T) {
	src := mountSource(t)
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	create(t, repo, src)

	t.Run("SIGTERM", func(t *testing.T) {
		m := startMount(t, repo)
		m.cmd.Process.Signal(syscall.SIGTERM)
		if code := m.wait(t, 10*time.Second); code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0; stderr: %s", code, m.stderr.String())
		}
		if isMountPoint(t, m.dir) {
			t.Error("still mounted after SIGTERM")
		}
		if entries, err := os.ReadDir(m.dir); err != nil || len(entries) != 0 {
			t.Errorf("mount point after unmount: %v, %v; want empty", entries, err)
		}
	})
	t.Run("fusermount", func(t *testing.T) {
		m := startMount(t, repo)
		if out, err := exec.Command("fusermount3", "-u", m.dir).CombinedOutput(); err != nil {
			t.Fatalf("fusermount3 -u: %v\n%s", err, out)
		}
		if code := m.wait(t, 10*time.Second); code != 0 {
			t.Errorf("exit %d after fusermount3 -u, want 0; stderr: %s", code, m.stderr.String())
		}
	})
	t.Run("busy", func(t *testing.T) {
		m := startMount(t, repo, "-q")
		f, err := os.Open(filepath.Join(m.dir, "snapshots", "latest", "src", "docs", "a.txt"))
		if err != nil {
			t.Fatal(err)
		}
		m.cmd.Process.Signal(syscall.SIGINT)
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(m.stderr.String(), "cannot unmount") {
			if time.Now().After(deadline) {
				t.Fatalf("no word about the busy mount; stderr: %s", m.stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Still served while busy.
		data, err := io.ReadAll(f)
		if err != nil || string(data) != "hello mount\n" {
			t.Errorf("read while unmounting: %q, %v", data, err)
		}
		f.Close()
		if code := m.wait(t, 10*time.Second); code != 0 {
			t.Errorf("exit %d once no longer busy, want 0; stderr: %s", code, m.stderr.String())
		}
	})
}

func TestMountErrors(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"mount", "-r", repo, filepath.Join(dir, "missing")}, 1, "does not exist; create it with 'mkdir -p"},
		{[]string{"mount", "-r", repo, file}, 1, "is not a directory"},
		{[]string{"mount", "-r", repo, "--cache-size", "lots", dir}, 1, "--cache-size"},
		{[]string{"mount", "-r", filepath.Join(dir, "norepo"), dir}, exitNoRepo, "no repository"},
		{[]string{"mount", "-r", repo}, 1, "accepts 1 arg"},
	} {
		r := snap(t, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("snap %v: exit %d, stderr %q; want exit %d mentioning %q", c.args, r.code, r.stderr, c.code, c.msg)
		}
	}
}

// TestMountCopySpeed compares cp of a 200 MiB file from the mount with
// snap restore of it. It is slow, so it runs only with SNAP_MOUNT_BENCH=1.
func TestMountCopySpeed(t *testing.T) {
	if os.Getenv("SNAP_MOUNT_BENCH") == "" {
		t.Skip("set SNAP_MOUNT_BENCH=1 to compare cp from the mount with restore")
	}
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	if err := testtree.RandomFile(filepath.Join(src, "big"), 9, 200<<20); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	create(t, repo, src)
	out := t.TempDir()
	var m *mountProc
	timeIt := func(name string, args ...string) time.Duration {
		os.RemoveAll(filepath.Join(out, "x"))
		start := time.Now()
		if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			if m != nil {
				b = append(b, m.stderr.String()...)
			}
			t.Fatalf("%s %v: %v\n%s", name, args, err, b)
		}
		return time.Since(start)
	}
	var restore time.Duration
	for i := 0; i < 3; i++ { // the first run warms the page cache of the packs
		restore = timeIt(snapBin, "restore", "-q", "-r", repo, "latest:/src/big", "--target", filepath.Join(out, "x"))
	}
	m = startMount(t, repo)
	p := filepath.Join(m.dir, "snapshots", "latest", "src", "big")
	cpFirst := timeIt("cp", p, filepath.Join(out, "x"))
	cpAgain := timeIt("cp", p, filepath.Join(out, "x"))
	t.Logf("200 MiB: snap restore %v; cp from the mount %v (first read), %v (again, kernel page cache)", restore, cpFirst, cpAgain)
	if cpFirst > 2*restore {
		t.Errorf("cp from the mount took %v, more than twice restore's %v", cpFirst, restore)
	}
}
