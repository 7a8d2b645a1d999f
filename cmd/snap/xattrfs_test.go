package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"snap/internal/ecryptfs"
)

// noXattrNode is a loopback node of a file system that takes no xattrs,
// like vfat or some network file systems.
type noXattrNode struct{ fs.LoopbackNode }

func (n *noXattrNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.EOPNOTSUPP
}

// mountNoXattr serves dir at a new mount point through FUSE, refusing every
// setxattr, and returns the mount point.
func mountNoXattr(t *testing.T, dir string) string {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("needs /dev/fuse for a file system without xattrs")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		if _, err := exec.LookPath("fusermount"); err != nil {
			t.Skip("needs fusermount3 (Debian package fuse3)")
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	root := &fs.LoopbackRoot{Path: dir, Dev: uint64(st.Dev)}
	root.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
		return &noXattrNode{fs.LoopbackNode{RootData: r}}
	}
	rootNode := root.NewNode(root, nil, "", &st)
	root.RootNode = rootNode
	mnt := t.TempDir()
	server, err := fs.Mount(mnt, rootNode, &fs.Options{MountOptions: fuse.MountOptions{FsName: "snap-noxattr"}})
	if err != nil {
		t.Skipf("cannot mount a FUSE file system here: %v", err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			exec.Command("fusermount3", "-u", "-z", mnt).Run()
		}
	})
	return mnt
}

func TestRestoreRefusesTargetWithoutXattrs(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	probe := filepath.Join(t.TempDir(), "probe")
	os.WriteFile(probe, nil, 0o600)
	if err := syscall.Setxattr(probe, "user.snap-probe", []byte("x"), 0); err != nil {
		t.Skipf("the test file system does not take user xattrs (%v)", err)
	}
	_, lower, _ := cipherHome(t, ecryptfs.Options{XattrMetadata: true})
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	create(t, repo, lower)
	backing := t.TempDir()
	target := mountNoXattr(t, backing)
	r := snap(t, "restore", "-r", repo, "latest", "--target", target)
	if r.code != 1 || !strings.Contains(r.stderr, "user.ecryptfs") || !strings.Contains(r.stderr, "does not take user xattrs") {
		t.Fatalf("restore onto a file system without xattrs: exit %d, stderr %q; want a clear refusal", r.code, r.stderr)
	}
	if ents, _ := os.ReadDir(backing); len(ents) != 0 {
		t.Errorf("the refused restore wrote %d entries", len(ents))
	}
	// A plain (header-in-file) snapshot restores there fine.
	_, lower2, _ := cipherHome(t, ecryptfs.Options{})
	repo2 := filepath.Join(t.TempDir(), "repo2")
	mustSnap(t, "init", "-r", repo2)
	create(t, repo2, lower2)
	mustSnap(t, "restore", "-r", repo2, "latest", "--target", target)
	compareTrees(t, lower2, filepath.Join(target, ".Private"))
}
