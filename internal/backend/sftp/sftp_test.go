package sftp

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"snap/internal/backend"
	"snap/internal/backend/backendtest"
)

func TestParseLocation(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Location
		str  string
	}{
		{"sftp:host:/srv/repo", Location{Host: "host", Path: "/srv/repo"}, ""},
		{"sftp:me@host:/srv/repo", Location{User: "me", Host: "host", Path: "/srv/repo"}, ""},
		{"sftp:host:backups", Location{Host: "host", Path: "backups"}, ""},
		{"sftp:host:", Location{Host: "host"}, ""},
		{"sftp:me@[::1]:/r", Location{User: "me", Host: "::1", Path: "/r"}, ""},
		{"sftp:host:/dir/with@sign", Location{Host: "host", Path: "/dir/with@sign"}, ""},
		{"sftp://me@host:2222//srv/repo", Location{User: "me", Host: "host", Port: "2222", Path: "/srv/repo"}, ""},
		{"sftp://host/backups", Location{Host: "host", Path: "backups"}, "sftp:host:backups"},
		{"sftp://[::1]:22//r", Location{Host: "::1", Port: "22", Path: "/r"}, ""},
	} {
		got, err := ParseLocation(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseLocation(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		want := tc.str
		if want == "" {
			want = tc.in
		}
		if got.String() != want {
			t.Errorf("%q: String() = %q, want %q", tc.in, got.String(), want)
		}
	}
	for _, bad := range []string{
		"sftp:", "sftp:host", "sftp::/path", "sftp:-oProxyCommand=x:/p", "sftp:-l:/x", "sftp:[::1/x",
		"sftp://host:99999//x", "sftp://me:pw@host//x", "sftp://host//x?y=1", "s3:host/b", "sftp:ho st:/x",
	} {
		if _, err := ParseLocation(bad); err == nil {
			t.Errorf("ParseLocation(%q) succeeded", bad)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"ssh", []string{"ssh"}},
		{"  ssh  -F /dev/null\t-i key ", []string{"ssh", "-F", "/dev/null", "-i", "key"}},
		{`ssh -i '/path with space/key' -o "ProxyCommand=nc %h %p"`, []string{"ssh", "-i", "/path with space/key", "-o", "ProxyCommand=nc %h %p"}},
		{`ssh -i a\ b "x\"y" 'it''s' ""`, []string{"ssh", "-i", "a b", `x"y`, "its", ""}},
		{`"/opt/my ssh/ssh"`, []string{"/opt/my ssh/ssh"}},
	} {
		got, err := SplitCommand(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "   ", `ssh 'open`, `ssh "open`, `ssh \`} {
		if _, err := SplitCommand(bad); err == nil {
			t.Errorf("SplitCommand(%q) succeeded", bad)
		}
	}
}

func openTest(t *testing.T, srv *backendtest.SSHD, dir string) *Backend {
	t.Helper()
	loc, err := ParseLocation(srv.Location(dir))
	if err != nil {
		t.Fatal(err)
	}
	be, err := Open(context.Background(), loc, Options{Command: srv.Command()})
	if err != nil {
		t.Fatalf("%v\nsshd log:\n%s", err, srv.Log())
	}
	t.Cleanup(func() { be.Close() })
	return be
}

// TestConnectErrors checks that failures to connect come back at once, as
// one line with ssh's own explanation, and are not taken for passing trouble.
func TestConnectErrors(t *testing.T) {
	srv := backendtest.StartSSHD(t)
	loc, _ := ParseLocation(srv.Location(t.TempDir()))
	otherKey := filepath.Join(t.TempDir(), "other")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", otherKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	closed := strings.Replace(srv.Command(), "-p "+strconv.Itoa(srv.Port), "-p "+strconv.Itoa(backendtest.FreePort(t)), 1)
	for _, tc := range []struct {
		name, command, want string
	}{
		{"wrong key", srv.CommandWithKey(otherKey), "Permission denied (publickey"},
		{"nobody listening", closed, "Connection refused"},
		{"no ssh program", "/nonexistent/ssh -v", "install OpenSSH"},
		{"ssh refuses an option", "ssh -o NoSuchOption=1", "NoSuchOption"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := Open(context.Background(), loc, Options{Command: tc.command})
			var ce *ConnectError
			if !errors.As(err, &ce) || ce.Temporary() {
				t.Fatalf("Open: %v, want a permanent ConnectError", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error does not say %q in one line: %s", tc.want, msg)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
	if _, err := Open(context.Background(), loc, Options{Command: "ssh 'unterminated"}); err == nil || !strings.Contains(err.Error(), "--ssh-command") {
		t.Fatalf("bad --ssh-command: %v", err)
	}
}

// TestReconnect kills the ssh process; the next operations start a new one.
func TestReconnect(t *testing.T) {
	srv := backendtest.StartSSHD(t)
	dir := t.TempDir()
	be := openTest(t, srv, dir)
	ctx := context.Background()
	if err := be.Save(ctx, "config", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if backendtest.KillSSHClients() == 0 {
			t.Fatal("no ssh process to kill")
		}
		_, err := be.Stat(ctx, "config")
		if err != nil {
			var ce *ConnError
			if !errors.As(err, &ce) || !ce.Temporary() || !strings.Contains(err.Error(), "sftp connection to") {
				t.Fatalf("Stat on a killed connection: %v", err)
			}
			t.Logf("first operation after the kill: %v", err)
		}
		if fi, err := be.Stat(ctx, "config"); err != nil || fi.Size != 5 {
			t.Fatalf("Stat after reconnecting: %+v, %v", fi, err)
		}
	}
	// After Close nothing runs.
	be.Close()
	if _, err := be.Stat(ctx, "config"); err == nil {
		t.Fatal("Stat after Close succeeded")
	}
}

// TestCreateAndLayout checks that Create makes the repository directory and
// that files land where the format says, with temporary files under tmp/.
func TestCreateAndLayout(t *testing.T) {
	srv := backendtest.StartSSHD(t)
	dir := filepath.Join(t.TempDir(), "a", "b", "repo")
	be := openTest(t, srv, dir)
	ctx := context.Background()
	if err := be.Create(ctx); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("Create: %v", err)
	}
	if err := be.Save(ctx, "data/ab/abcd", strings.NewReader("pack")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "data", "ab", "abcd"))
	if err != nil || fi.Size() != 4 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stored file: %v, %v", fi, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

// TestLockCleansTemp takes the lock over sftp: a second connection is locked
// out, and stale temporary files are removed.
func TestLockCleansTemp(t *testing.T) {
	srv := backendtest.StartSSHD(t)
	dir := t.TempDir()
	a := openTest(t, srv, dir)
	b := openTest(t, srv, dir)
	ctx := context.Background()
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	old, fresh := filepath.Join(dir, "tmp", "tmp-old"), filepath.Join(dir, "tmp", "tmp-fresh")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, past, past)

	var locker backend.Locker = a
	unlock, err := locker.Lock(ctx, backend.LockInfo{Host: "h1", PID: 1, Command: "create", Start: time.Now()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file removed: %v", err)
	}
	_, err = b.Lock(ctx, backend.LockInfo{Host: "h2", PID: 2, Command: "prune", Start: time.Now()}, 0)
	if !errors.Is(err, backend.ErrLocked) || !strings.Contains(err.Error(), "h1") {
		t.Fatalf("second lock: %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestCancel checks that a cancelled context ends an operation.
func TestCancel(t *testing.T) {
	srv := backendtest.StartSSHD(t)
	be := openTest(t, srv, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := be.Save(ctx, "x", strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Save with a cancelled context: %v", err)
	}
	// An upload that never ends is stopped by cancelling.
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- be.Save(ctx, "endless", endless{}) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Save: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Save did not stop after cancel")
	}
	if _, err := be.Stat(context.Background(), "endless"); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("cancelled upload visible: %v", err)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }
