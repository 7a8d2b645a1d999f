package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// realECryptfs mounts a real eCryptfs (filename encryption on) over a fresh
// lower directory and returns the lower and upper (cleartext) directories.
// It skips, saying why, where that cannot be done: not root, no eCryptfs in
// the kernel (modprobe fails), no ecryptfs-utils to put the keys in the
// keyring.
func realECryptfs(t *testing.T) (lower, upper string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting eCryptfs needs root")
	}
	if !kernelHasECryptfs() {
		out, err := exec.Command("modprobe", "ecryptfs").CombinedOutput()
		if err != nil || !kernelHasECryptfs() {
			t.Skipf("no eCryptfs in this kernel (modprobe ecryptfs: %v %s); the generated-tree tests cover the format", err, bytes.TrimSpace(out))
		}
	}
	add, err := exec.LookPath("ecryptfs-add-passphrase")
	if err != nil {
		t.Skip("ecryptfs-add-passphrase not installed (Debian package ecryptfs-utils)")
	}
	// --fnek adds a second key for file names; both signatures are printed
	// as "... sig [0123456789abcdef] ...".
	cmd := exec.Command(add, "--fnek", "-")
	cmd.Stdin = strings.NewReader("snap test passphrase\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Skipf("ecryptfs-add-passphrase: %v: %s", err, out)
	}
	sigs := regexp.MustCompile(`\[([0-9a-f]{16})\]`).FindAllStringSubmatch(string(out), -1)
	if len(sigs) != 2 {
		t.Fatalf("ecryptfs-add-passphrase printed %d key signatures, want 2:\n%s", len(sigs), out)
	}
	home := t.TempDir()
	lower, upper = filepath.Join(home, ".Private"), filepath.Join(home, "Private")
	for _, d := range []string{lower, upper} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	opts := "ecryptfs_sig=" + sigs[0][1] + ",ecryptfs_fnek_sig=" + sigs[1][1] +
		",ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_unlink_sigs"
	if err := unix.Mount(lower, upper, "ecryptfs", 0, opts); err != nil {
		t.Skipf("mount -t ecryptfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(upper, 0); err != nil {
			t.Errorf("unmount %s: %v", upper, err)
		}
	})
	return lower, upper
}

func kernelHasECryptfs() bool {
	data, err := os.ReadFile("/proc/filesystems")
	return err == nil && bytes.Contains(data, []byte("\tecryptfs\n"))
}

// TestRealECryptfs runs the assertions of the generated-tree tests on a real
// mount: the lower tree is recognised, cleartext names come from the mount
// (found in /proc/mounts) and never reach the repository, a page written in
// place stores little, and a restore gives back the lower files byte for
// byte.
func TestRealECryptfs(t *testing.T) {
	lower, upper := realECryptfs(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	names := []string{"thesis-draft.odt", "secret-plans.txt", "inbox.sqlite"}
	if err := os.Mkdir(filepath.Join(upper, "Documents"), 0o700); err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		data := bytes.Repeat([]byte{byte('a' + i)}, 300_000+i*4096)
		if err := os.WriteFile(filepath.Join(upper, "Documents", n), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	unix.Sync()

	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	create(t, repo, lower)
	var list []map[string]any
	json.Unmarshal([]byte(mustSnap(t, "snapshots", "-r", repo, "--json").stdout), &list)
	if len(list) != 1 || list[0]["source_kind"] != "ecryptfs-lower" {
		t.Fatalf("a real eCryptfs lower tree not recognised: %v", list)
	}
	clear := mustSnap(t, "ls", "-r", repo, "latest", "-R", "--names", "clear").stdout
	if !strings.Contains(clear, "Documents/thesis-draft.odt") {
		t.Errorf("ls --names clear (names from the mount in /proc/mounts):\n%s", clear)
	}

	// One page written in place through the mount.
	f, err := os.OpenFile(filepath.Join(upper, "Documents", "inbox.sqlite"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte("X"), 4096), 8192); err != nil {
		t.Fatal(err)
	}
	f.Close()
	unix.Sync()
	before := packBytes(t, repo)
	s := create(t, repo, lower)
	if grown := packBytes(t, repo) - before; s.FilesChanged != 1 || grown > 40<<10 {
		t.Errorf("a one-page edit through the mount changed %d files and grew the repository by %d bytes; want 1 file and < 40 KiB", s.FilesChanged, grown)
	}

	filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range append(names, "Documents") {
			if bytes.Contains(data, []byte(strings.TrimSuffix(n, filepath.Ext(n)))) {
				t.Errorf("cleartext name %q found in %s", n, p)
			}
		}
		return nil
	})

	out := t.TempDir()
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out)
	compareTrees(t, lower, filepath.Join(out, ".Private"))
}
