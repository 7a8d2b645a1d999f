package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// snapBin is the snap binary built once for the tests that run it as a
// separate process (kill -9, locks, exit codes).
var snapBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "snap-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755) // tests run the binary as user nobody too
	snapBin = filepath.Join(dir, "snap")
	out, err := exec.Command("go", "build", "-o", snapBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build snap: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one finished run of the snap binary.
type result struct {
	code           int
	stdout, stderr string
}

// snap runs the binary with args and returns its exit code and output.
func snap(t testing.TB, args ...string) result {
	t.Helper()
	cmd := exec.Command(snapBin, args...)
	cmd.Env = append(os.Environ(), "SNAP_REPOSITORY=")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run snap %v: %v", args, err)
	}
	return result{code, o.String(), e.String()}
}

// mustSnap runs snap and fails the test unless it exits 0.
func mustSnap(t testing.TB, args ...string) result {
	t.Helper()
	r := snap(t, args...)
	if r.code != 0 {
		t.Fatalf("snap %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// createSummary is the --json output of create.
type createSummary struct {
	SnapshotID     string  `json:"snapshot_id"`
	FilesNew       int64   `json:"files_new"`
	FilesChanged   int64   `json:"files_changed"`
	FilesUnchanged int64   `json:"files_unchanged"`
	Dirs           int64   `json:"dirs"`
	BytesRead      int64   `json:"bytes_read"`
	BytesAdded     int64   `json:"bytes_added"`
	BytesStored    int64   `json:"bytes_stored"`
	Duration       float64 `json:"duration_s"`
}

// create runs snap create --json and decodes the summary.
func create(t testing.TB, repo string, paths ...string) createSummary {
	t.Helper()
	r := mustSnap(t, append([]string{"create", "--json", "-r", repo}, paths...)...)
	var s createSummary
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("create summary %q: %v", r.stdout, err)
	}
	return s
}

// dirSize sums the sizes of the regular files under dir.
func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // not created yet, or removed while walking
			}
			return err
		}
		if fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// packBytes is the size of all packs of a repository.
func packBytes(t testing.TB, repo string) int64 {
	t.Helper()
	return dirSize(t, filepath.Join(repo, "data"))
}

// compareTrees fails the test unless got holds the same entries as want with
// the same type, content, permission bits, symlink targets and mtimes.
func compareTrees(t testing.TB, want, got string) {
	t.Helper()
	compareTreesExcept(t, want, got, nil)
}

// compareTreesExcept is compareTrees leaving out the entries in skip (paths
// relative to the roots).
func compareTreesExcept(t testing.TB, want, got string, skip map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.Walk(want, func(p string, wi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		seen[rel] = true
		if skip[rel] {
			return nil
		}
		gp := filepath.Join(got, rel)
		gi, err := os.Lstat(gp)
		if err != nil {
			t.Errorf("%s: missing from the restore: %v", rel, err)
			return nil
		}
		if wi.Mode() != gi.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, gi.Mode(), wi.Mode())
		}
		if wi.Mode().Type() != os.ModeSymlink && !wi.ModTime().Equal(gi.ModTime()) && rel != "." {
			t.Errorf("%s: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
		}
		switch {
		case wi.Mode().IsRegular():
			if !sameContent(t, p, gp) {
				t.Errorf("%s: content differs", rel)
			}
		case wi.Mode().Type() == os.ModeSymlink:
			a, _ := os.Readlink(p)
			b, _ := os.Readlink(gp)
			if a != b {
				t.Errorf("%s: link target %q, want %q", rel, b, a)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	filepath.Walk(got, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(got, p)
		if !seen[rel] {
			t.Errorf("%s: in the restore but not in the source", rel)
		}
		return nil
	})
}

func sameContent(t testing.TB, a, b string) bool {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := fa.Read(ba)
		nb, _ := io.ReadFull(fb, bb[:na])
		if nb != na || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if ea != nil {
			n, _ := fb.Read(bb[:1])
			return n == 0
		}
	}
}

func skipUnlessRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (to run snap as another user or restore ownership)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux")
	}
}

// jsonUnmarshal decodes command output.
func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// testSeed returns a seed for a randomized test: from the environment
// variable env if set, else the clock. It is logged so a failure can be
// replayed with env=SEED.
func testSeed(t testing.TB, env string) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(env); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", env, s, err)
		}
		seed = v
	}
	t.Logf("random seed %d (rerun with %s=%d)", seed, env, seed)
	return seed
}
