package main

// End-to-end tests of remote repositories: the snap binary against a real
// OpenSSH sshd and an S3 server, both on 127.0.0.1 and started by the test.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"snap/internal/backend/backendtest"
	"snap/internal/testtree"
)

// remoteRoundTrip runs init, two creates, snapshots and restore against loc
// with the extra global flags, then reads the repository again with an empty
// cache directory.
func remoteRoundTrip(t *testing.T, loc string, flags ...string) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	src := filepath.Join(t.TempDir(), "tree")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := testtree.Write(src, testtree.Spec{Seed: 7, Files: 60, Large: []int{20 << 20}}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) result {
		t.Helper()
		return mustSnap(t, append(append(args, "-r", loc), flags...)...)
	}

	r := snap(t, append([]string{"snapshots", "-r", loc}, flags...)...)
	t.Logf("before init: %s", r.stderr)
	if r.code != exitNoRepo {
		t.Fatalf("snapshots before init: exit %d, want %d (no repository)\n%s", r.code, exitNoRepo, r.stderr)
	}
	init := run("init", "--json")
	var created struct{ ID string }
	if err := json.Unmarshal([]byte(init.stdout), &created); err != nil || len(created.ID) != 64 {
		t.Fatalf("init output %q: %v", init.stdout, err)
	}
	for _, p := range []string{"snap/CACHEDIR.TAG", "snap/" + created.ID + "/index.db"} {
		if _, err := os.Stat(filepath.Join(cache, p)); err != nil {
			t.Errorf("cache: %v", err)
		}
	}
	run("create", src)
	if err := os.WriteFile(filepath.Join(src, "new-file"), []byte("second run"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("create", src)
	var snaps []json.RawMessage
	if err := json.Unmarshal([]byte(run("snapshots", "--json").stdout), &snaps); err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots --json: %d snapshots, %v", len(snaps), err)
	}
	// Both documents are cached, so the next backup's search for its parent
	// fetches none of them.
	if docs, err := os.ReadDir(filepath.Join(cache, "snap", created.ID, "snapshots")); err != nil || len(docs) != 2 {
		t.Errorf("snapshot cache: %d entries, %v; want the 2 documents", len(docs), err)
	}
	out := t.TempDir()
	run("restore", "latest", "--target", out)
	compareTrees(t, src, filepath.Join(out, "tree"))

	// Another machine: no cache yet; the index is rebuilt from the packs.
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out2 := t.TempDir()
	run("restore", "latest", "--target", out2)
	compareTrees(t, src, filepath.Join(out2, "tree"))
}

func TestRemoteSFTP(t *testing.T) {
	srv := backendtest.StartSSHD(t)
	dir := filepath.Join(t.TempDir(), "repo")
	remoteRoundTrip(t, srv.Location(dir), "--ssh-command", srv.Command())
	if _, err := os.Stat(filepath.Join(dir, "config")); err != nil {
		t.Errorf("the repository is not on the server: %v", err)
	}

	// Lock objects: a fresh lock of another host blocks (exit 11, naming
	// the host); a lock of a dead process of this host is removed with a
	// notice.
	host, _ := os.Hostname()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	writeLock := func(name, host string, pid int) {
		t.Helper()
		data, _ := json.Marshal(map[string]any{"host": host, "pid": pid, "command": "create",
			"start": time.Now(), "refreshed": time.Now(), "exclusive": true})
		if err := os.MkdirAll(filepath.Join(dir, "locks"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "locks", name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	empty := t.TempDir()
	writeLock("other", "far-away-host", 4242)
	r := snap(t, "create", "-r", srv.Location(dir), "--ssh-command", srv.Command(), empty)
	if r.code != exitLocked || !strings.Contains(r.stderr, "far-away-host") {
		t.Errorf("create beside another host's lock: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	os.Remove(filepath.Join(dir, "locks", "other"))
	writeLock("dead", host, dead.Process.Pid)
	r = snap(t, "create", "-r", srv.Location(dir), "--ssh-command", srv.Command(), empty)
	if r.code != 0 || !strings.Contains(r.stderr, "removed stale lock") {
		t.Errorf("create beside a dead process's lock: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "locks")); len(entries) != 0 {
		t.Errorf("locks left: %v", entries)
	}

	// create --init makes the repository on the way.
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	src := filepath.Join(t.TempDir(), "small")
	if err := os.MkdirAll(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "d", "f"), []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	loc2 := srv.Location(filepath.Join(t.TempDir(), "second"))
	mustSnap(t, "create", "--init", "-r", loc2, "--ssh-command", srv.Command(), src)
	out := t.TempDir()
	mustSnap(t, "restore", "-r", loc2, "--ssh-command", srv.Command(), "latest", "--target", out)
	compareTrees(t, src, filepath.Join(out, "small"))

	// A wrong key: one clear line naming ssh's complaint.
	other := filepath.Join(t.TempDir(), "other")
	r = snap(t, "snapshots", "-r", srv.Location(dir), "--ssh-command", srv.CommandWithKey(other))
	t.Logf("wrong key: %s", r.stderr)
	if r.code != exitFatal || !strings.Contains(r.stderr, "ssh exited with status 255") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("wrong key: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

func TestRemoteS3(t *testing.T) {
	srv := backendtest.StartS3(t) // no bucket: init creates it
	t.Setenv("SNAP_S3_CA_FILE", srv.CAFile)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	loc := srv.Location("backups/host1")
	remoteRoundTrip(t, loc)

	// Wrong credentials: one clear line, no retrying for minutes.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDWRONG")
	r := snap(t, "snapshots", "-r", loc)
	t.Logf("wrong credentials: %s", r.stderr)
	if r.code != exitFatal || !strings.Contains(r.stderr, "access denied") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("wrong credentials: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	// Without the CA, the self-signed certificate is refused.
	t.Setenv("SNAP_S3_CA_FILE", "")
	r = snap(t, "snapshots", "-r", loc)
	t.Logf("untrusted certificate: %s", r.stderr)
	if r.code != exitFatal || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("untrusted certificate: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestRemoteCheckSeesPastCache: the client caches snapshot documents and
// trees of a remote repository; check must read the repository's own copies,
// or damage there would hide behind a good cached one.
func TestRemoteCheckSeesPastCache(t *testing.T) {
	srv := backendtest.StartSSHD(t)
	dir := filepath.Join(t.TempDir(), "repo")
	loc, flags := srv.Location(dir), []string{"--ssh-command", srv.Command()}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("some text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustSnap(t, append([]string{"init", "-r", loc}, flags...)...)
	s := create(t, loc, append(flags, src)...)
	mustSnap(t, append([]string{"check", "-r", loc}, flags...)...) // reads and caches the document

	doc := filepath.Join(dir, "snapshots", s.SnapshotID)
	if err := os.Chmod(doc, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(doc, []byte(`{"damaged": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := snap(t, append([]string{"check", "-r", loc}, flags...)...)
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, s.SnapshotID[:8]) {
		t.Fatalf("check of a repository with a damaged snapshot document: exit %d\n%s%s\nwant a failure naming %s", r.code, r.stdout, r.stderr, s.SnapshotID[:8])
	}
}
