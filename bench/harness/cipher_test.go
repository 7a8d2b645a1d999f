package main

import (
	"bytes"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"snap/internal/ecryptfs"
)

func randData(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// copyDiff is the slow, obvious count that diffLower must agree with: the
// previous state kept as a cp -a copy, compared byte by byte in 4 KiB
// blocks (xattr values compared whole).
func copyDiff(t *testing.T, prev, cur string, xattr bool) (changed int64) {
	t.Helper()
	seen := map[uint64]bool{}
	err := filepath.WalkDir(cur, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, _ := d.Info()
		ino := info.Sys().(*syscall.Stat_t).Ino
		if seen[ino] {
			return nil
		}
		seen[ino] = true
		rel, _ := filepath.Rel(cur, p)
		a, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b, _ := os.ReadFile(filepath.Join(prev, rel)) // nil for a new file
		for off := 0; off < len(a); off += lowerBlock {
			end := min(off+lowerBlock, len(a))
			if end > len(b) || !bytes.Equal(a[off:end], b[off:end]) {
				changed += int64(end - off)
			}
		}
		if xattr {
			va := make([]byte, 8192)
			vb := make([]byte, 8192)
			na, err := unix.Lgetxattr(p, headerXattr, va)
			if err != nil {
				return err
			}
			nb, err := unix.Lgetxattr(filepath.Join(prev, rel), headerXattr, vb)
			if err != nil || !bytes.Equal(va[:na], vb[:nb]) {
				changed += int64(na)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

func TestDiffLower(t *testing.T) {
	for _, xattr := range []bool{false, true} {
		name := "header in file"
		if xattr {
			name = "header in xattr"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			lower := filepath.Join(dir, "lower")
			tr, err := ecryptfs.NewTree(lower, 7, ecryptfs.Options{XattrMetadata: xattr})
			if err != nil {
				t.Fatal(err)
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(tr.WriteFile("data/a.db", randData(1, 20*4096), 0o644))
			must(tr.Link("data/a.db", "a-link.db"))
			must(tr.WriteFile("b.txt", randData(2, 10000), 0o644))
			must(tr.WriteFile("logs/c.log", randData(3, 5000), 0o644))
			must(tr.WriteFile("d.txt", randData(4, 100), 0o644))
			must(tr.WriteFile("same.txt", randData(5, 9000), 0o644))

			before, err := scanLower(lower, xattr)
			must(err)
			prev := filepath.Join(dir, "prev")
			must(exec.Command("cp", "-a", lower, prev).Run())

			must(tr.WriteAt("data/a.db", 5*4096+100, randData(6, 50))) // one extent, size field unchanged
			must(tr.Append("logs/c.log", randData(7, 5000)))           // last extent, new extent, size field
			must(tr.SaveByRename("b.txt", randData(8, 10000)))         // new key and inode: every block
			must(tr.WriteFile("new.txt", randData(9, 5000), 0o644))    // all new
			must(tr.Remove("d.txt"))

			after, err := scanLower(lower, xattr)
			must(err)
			c := diffLower(before, after)
			if want := copyDiff(t, prev, lower, xattr); c.ChangedBytes != want {
				t.Errorf("changed %d bytes, the byte comparison with a copy says %d", c.ChangedBytes, want)
			}
			if c.Changed != 4 || c.InPlace != 2 || c.Replaced != 1 || c.New != 1 || c.Deleted != 1 {
				t.Errorf("got %+v, want 4 changed files: 2 in place, 1 replaced, 1 new; 1 deleted", c)
			}
			// a.db: one extent (hard link counted once); c.log: the
			// header's size field, old last and one new extent (xattr mode:
			// the xattr instead of the header block); b.txt: the header's
			// first block (its second holds zeros before and after) + 3
			// extents; new.txt: the 8 KiB header + 2 extents.
			hdr, hdrNew := int64(4096), int64(2*4096)
			var xv int64
			if xattr {
				hdr, hdrNew = 0, 0
				v := make([]byte, 8192)
				// Every header xattr has the same length.
				n, err := unix.Lgetxattr(mustLower(t, tr, "logs/c.log"), headerXattr, v)
				must(err)
				xv = int64(n)
			}
			want := int64(4096) + // a.db
				2*4096 + map[bool]int64{false: 4096, true: xv}[xattr] + // c.log
				hdr + 3*4096 + map[bool]int64{false: 0, true: xv}[xattr] + // b.txt
				hdrNew + 2*4096 + map[bool]int64{false: 0, true: xv}[xattr] // new.txt
			if c.ChangedBytes != want {
				t.Errorf("changed %d bytes, want %d", c.ChangedBytes, want)
			}
			if c.allowance() != 1.1*float64(want)+2*16384 {
				t.Errorf("allowance %v", c.allowance())
			}

			// Nothing changed: nothing counts.
			again, err := scanLower(lower, xattr)
			must(err)
			if c := diffLower(after, again); c.ChangedBytes != 0 || c.Changed != 0 || c.New != 0 || c.Deleted != 0 {
				t.Errorf("unchanged tree: %+v", c)
			}
		})
	}
}

func mustLower(t *testing.T, tr *ecryptfs.Tree, clearRel string) string {
	t.Helper()
	p, err := tr.LowerPath(clearRel)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCipherTable(t *testing.T) {
	var rs []*Result
	var cs []lowerChange
	for rep := 1; rep <= 2; rep++ {
		rs = append(rs,
			&Result{Rep: rep, Scenario: "read", Tool: "tar", Status: "ok", Wall: 0.1, Size: -1},
			&Result{Rep: rep, Scenario: "initial", Tool: "snap", Status: "ok", Wall: 1, Size: 40 << 20, Delta: 40 << 20},
			&Result{Rep: rep, Scenario: "initial", Tool: "restic", Status: "ok", Wall: 2, Size: 41 << 20, Delta: 41 << 20})
		for k := 1; k <= 3; k++ {
			snapAdded := int64(100 << 10)
			if k == 2 && rep == 2 {
				snapAdded = 300 << 10 // over the allowance in one rep
			}
			if k == 3 {
				snapAdded = 500 << 10 // over in both
			}
			rs = append(rs,
				&Result{Rep: rep, Scenario: roundScenario(k), Tool: "snap", Status: "ok", Wall: 0.2, Size: 41 << 20, Delta: snapAdded},
				&Result{Rep: rep, Scenario: roundScenario(k), Tool: "restic", Status: "ok", Wall: 0.5, Size: 42 << 20, Delta: 200 << 10})
			cs = append(cs, lowerChange{Rep: rep, Round: k, Edits: "some edits", ChangedBytes: 100 << 10, Changed: 5, InPlace: 2})
		}
	}
	var b bytes.Buffer
	writeCipherTable(&b, reportInfo{size: "tiny", reps: 2, tools: []string{"snap", "restic"}}, rs, cs, 3)
	out := b.String()
	for _, want := range []string{
		"| incremental, round 1 | snap | 2/2 | 0.200 |",
		"| 42.0 | 0.20 | 0.40 | 0.50 |", // added MiB, snap/restic wall, snap/restic added
		"| 1 | 5 | 2 | 100 | 100 | 1.00 | 200 | 2.00 | 142 | met |",
		"| 2 | 5 | 2 | 100 | 200 | 2.00 | 200 | 2.00 | 142 | met in 1/2 reps |",
		"| 3 | 5 | 2 | 100 | 500 | 5.00 | 200 | 2.00 | 142 | **missed** |",
		"| all | 15 | 6 | 300 | 800 | 2.67 | 600 | 2.00 | 426 | met in 3/6 |",
		"- round 1: some edits",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "| ") {
			continue
		}
		cells := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|")
		if cells != 15 && cells != 11 {
			t.Errorf("row with wrong cell count %d: %s", cells, l)
		}
	}
	var tsv bytes.Buffer
	writeRoundsTSV(&tsv, rs, cs, []string{"snap", "restic"})
	if !strings.Contains(tsv.String(), "2\t2\t102400\t0\t5\t2\t0\t0\t0\t0\t0\t145408\t307200\t204800\tsome edits\n") {
		t.Errorf("rounds.tsv:\n%s", tsv.String())
	}
}

func TestRsyncXattrs(t *testing.T) {
	rs := tools["rsync"]
	plain := strings.Join(rs.backup(rs, &repo{dir: "/r"}, "/t", "s1").argv, " ")
	withX := strings.Join(rs.backup(rs, &repo{dir: "/r", xattrs: true, snaps: []string{"s1"}}, "/t", "s2").argv, " ")
	if strings.Contains(plain, " -X") || !strings.Contains(withX, " -aH -X --link-dest=/r/s1 /t/ /r/s2/") {
		t.Errorf("rsync commands: %q, %q", plain, withX)
	}
}
