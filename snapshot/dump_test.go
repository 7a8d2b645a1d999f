package snapshot

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"snap/chunk"
	"snap/repo"
)

// bigContent is several blobs long (saveTree cuts blobs of 1000 bytes).
var bigContent = func() string {
	b := make([]byte, 5500)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return string(b)
}()

// dumpTree holds one of everything Dump handles.
func dumpTree() tdir {
	hard := Node{Type: TypeFile, Mode: 0o640, MTime: testTime, Inode: 77, Device: 5, Links: 2, Size: 4}
	return tdir{
		"me": tdir{
			"big.bin":  bigContent,
			"empty":    "",
			"link":     tlink("big.bin"),
			"sub":      tdir{"s.txt": "sub"},
			"tty":      Node{Type: TypeCharDev, Mode: 0o620, MTime: testTime, Rdev: unix.Mkdev(4, 1)},
			"fifo":     Node{Type: TypeFIFO, Mode: 0o600, MTime: testTime},
			"sock":     Node{Type: TypeSocket, Mode: 0o755, MTime: testTime},
			"suid":     Node{Type: TypeFile, Mode: 0o4755, MTime: testTime},
			"attrs":    Node{Type: TypeFile, Mode: 0o644, MTime: testTime, Xattrs: []Xattr{{Name: "user.note", Value: []byte("hi\x00there")}, {Name: "user.a=b", Value: []byte("x")}}},
			"hard1":    hard,
			"hard2":    hard, // the same inode with the same (empty: Content nil) content
			"hard3":    func() Node { h := hard; h.Size = 0; return h }(),
			"bad\xffn": "odd name",
		},
	}
}

// saveDumpTree saves dumpTree, giving its hand-made hard links real content.
func saveDumpTree(t *testing.T, r *repo.Repository) chunk.ID {
	t.Helper()
	d := dumpTree()
	me := d["me"].(tdir)
	contentTree := saveTestTree(t, r, tdir{"c": "hard"})
	nodes, err := LoadTree(context.Background(), r, contentTree)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"hard1", "hard2"} {
		n := me[name].(Node)
		n.Content = nodes[0].Content
		me[name] = n
	}
	return saveTestTree(t, r, d)
}

func dump(t *testing.T, r *repo.Repository, tree chunk.ID, p, format string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Dump(context.Background(), r, tree, p, format, &buf); err != nil {
		t.Fatalf("Dump(%q, %q): %v", p, format, err)
	}
	return buf.Bytes()
}

func TestDumpFileIsRaw(t *testing.T) {
	r := newTestRepo(t)
	tree := saveDumpTree(t, r)
	if got := dump(t, r, tree, "/me/big.bin", DumpAuto); string(got) != bigContent {
		t.Fatalf("dump of a file: %d bytes differ from the %d stored", len(got), len(bigContent))
	}
	if got := dump(t, r, tree, "me/empty", DumpAuto); len(got) != 0 {
		t.Fatalf("dump of an empty file gave %d bytes", len(got))
	}
}

func TestDumpTar(t *testing.T) {
	r := newTestRepo(t)
	tree := saveDumpTree(t, r)
	tr := tar.NewReader(bytes.NewReader(dump(t, r, tree, "/me", DumpAuto)))
	got := map[string]*tar.Header{}
	content := map[string]string{}
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name], content[h.Name] = h, string(b)
		names = append(names, h.Name)
	}
	want := []string{"me/", "me/attrs", "me/bad\xffn", "me/big.bin", "me/empty", "me/fifo", "me/hard1", "me/hard2", "me/hard3",
		"me/link", "me/sub/", "me/sub/s.txt", "me/suid", "me/tty"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Fatalf("tar entries\n%q\nwant (no socket)\n%q", names, want)
	}
	check := func(name string, ok bool, what string) {
		t.Helper()
		if !ok {
			t.Errorf("%s: %s; header %+v", name, what, got[name])
		}
	}
	h := got["me/big.bin"]
	check("me/big.bin", h.Typeflag == tar.TypeReg && content["me/big.bin"] == bigContent && h.Mode == 0o644 &&
		h.Uid == 1000 && h.Uname == "me" && h.Gname == "staff" && h.ModTime.Equal(testTime), "wrong content or metadata (mtime with ns)")
	check("me/", got["me/"].Typeflag == tar.TypeDir && got["me/"].Mode == 0o755, "not a 0755 directory")
	check("me/link", got["me/link"].Typeflag == tar.TypeSymlink && got["me/link"].Linkname == "big.bin", "not a symlink to big.bin")
	check("me/tty", got["me/tty"].Typeflag == tar.TypeChar && got["me/tty"].Devmajor == 4 && got["me/tty"].Devminor == 1, "not char device 4,1")
	check("me/fifo", got["me/fifo"].Typeflag == tar.TypeFifo, "not a fifo")
	check("me/suid", got["me/suid"].Mode == 0o4755, "setuid bit lost")
	check("me/attrs", got["me/attrs"].PAXRecords["SCHILY.xattr.user.note"] == "hi\x00there", "xattr missing")
	check("me/attrs", len(got["me/attrs"].PAXRecords) == 1+countPAXTimes(got["me/attrs"]), "an xattr with = in its name was written")
	check("me/hard1", got["me/hard1"].Typeflag == tar.TypeReg && content["me/hard1"] == "hard", "first link is not the file")
	check("me/hard2", got["me/hard2"].Typeflag == tar.TypeLink && got["me/hard2"].Linkname == "me/hard1", "second link is not a hard link to me/hard1")
	check("me/hard3", got["me/hard3"].Typeflag == tar.TypeReg, "same inode but other content became a hard link")
	check("me/bad\xffn", content["me/bad\xffn"] == "odd name", "odd name lost its content")
}

// countPAXTimes counts the time records archive/tar adds by itself.
func countPAXTimes(h *tar.Header) int {
	n := 0
	for _, k := range []string{"mtime", "atime", "ctime"} {
		if _, ok := h.PAXRecords[k]; ok {
			n++
		}
	}
	return n
}

func TestDumpRootAndArchivedFile(t *testing.T) {
	r := newTestRepo(t)
	tree := saveTestTree(t, r, tdir{"a": tdir{"f": "1"}, "b.txt": "2"})
	for p, want := range map[string][]string{
		"/":      {"a/", "a/f", "b.txt"},
		"/b.txt": {"b.txt"}, // an explicit archive format archives a file too
	} {
		tr := tar.NewReader(bytes.NewReader(dump(t, r, tree, p, DumpTar)))
		var names []string
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, h.Name)
		}
		if strings.Join(names, "|") != strings.Join(want, "|") {
			t.Errorf("tar of %s: entries %q, want %q", p, names, want)
		}
	}
}

func TestDumpZip(t *testing.T) {
	r := newTestRepo(t)
	tree := saveDumpTree(t, r)
	data := dump(t, r, tree, "/me", DumpZip)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*zip.File{}
	var names []string
	for _, f := range zr.File {
		got[f.Name] = f
		names = append(names, f.Name)
	}
	want := []string{"me/", "me/attrs", "me/bad\xffn", "me/big.bin", "me/empty", "me/hard1", "me/hard2", "me/hard3",
		"me/link", "me/sub/", "me/sub/s.txt", "me/suid"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Fatalf("zip entries\n%q\nwant (no devices, fifos, sockets)\n%q", names, want)
	}
	read := func(name string) string {
		rc, err := got[name].Open()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return string(b)
	}
	if read("me/big.bin") != bigContent || read("me/sub/s.txt") != "sub" || read("me/hard2") != "hard" {
		t.Error("zip content differs")
	}
	for name, mode := range map[string]fs.FileMode{
		"me/big.bin": 0o644, "me/": fs.ModeDir | 0o755, "me/link": fs.ModeSymlink | 0o777, "me/suid": fs.ModeSetuid | 0o755,
	} {
		if m := got[name].Mode(); m != mode {
			t.Errorf("%s: mode %v, want %v", name, m, mode)
		}
	}
	if read("me/link") != "big.bin" {
		t.Error("zip symlink does not hold its target")
	}
	if m := got["me/big.bin"].Modified; m.Unix() != testTime.Unix() {
		t.Errorf("zip mtime %v, want %v", m, testTime)
	}
}

func TestDumpErrors(t *testing.T) {
	ctx := context.Background()
	r := newTestRepo(t)
	lost := Node{Type: TypeFile, Mode: 0o644, Size: 3, Content: []chunk.ID{chunk.Hash([]byte("not stored"))}}
	short := Node{Type: TypeFile, Mode: 0o644, Size: 99}
	tree := saveTestTree(t, r, tdir{"me": tdir{"lost": lost, "short": short, "ok": "fine"}})
	for _, tc := range []struct {
		path, format string
		is           error
		mention      string
	}{
		{"/me/nope", DumpAuto, ErrPathNotFound, "/me/nope"},
		{"/me/lost", DumpAuto, repo.ErrBlobMissing, "/me/lost"},
		{"/me", DumpTar, repo.ErrBlobMissing, "/me/lost"},
		{"/me/short", DumpAuto, repo.ErrBlobCorrupt, "/me/short"},
		{"/me/ok", "rar", nil, "rar"},
	} {
		err := Dump(ctx, r, tree, tc.path, tc.format, io.Discard)
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("Dump(%s, %q): %v; want an error wrapping %v that names %q", tc.path, tc.format, err, tc.is, tc.mention)
		}
	}
}
