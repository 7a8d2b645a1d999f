package snapshot

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"snap/chunk"
)

func sampleNodes() []Node {
	return []Node{
		{Name: "b.txt", Type: TypeFile, Mode: 0o644, UID: 1000, GID: 1000, User: "me", Group: "me",
			MTime: time.Unix(1700000000, 123456789), ATime: time.Unix(1700000001, 1), CTime: time.Unix(-5, 0),
			Inode: 42, Device: 2049, Links: 2, Size: 3, Content: []chunk.ID{chunk.Hash([]byte("abc"))},
			Xattrs: []Xattr{{Name: "user.b", Value: []byte{0, 1}}, {Name: "user.a", Value: nil}}},
		{Name: "a\xff\nname", Type: TypeDir, Mode: 0o1777, Subtree: chunk.Hash([]byte("tree"))},
		{Name: "link", Type: TypeSymlink, Mode: 0o777, LinkTarget: "../x"},
		{Name: "dev", Type: TypeCharDev, Rdev: 0x0501},
	}
}

func TestTreeRoundTripIsCanonical(t *testing.T) {
	nodes := sampleNodes()
	data, err := EncodeTree(nodes)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeTree(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(nodes) {
		t.Fatalf("decoded %d nodes, want %d", len(got), len(nodes))
	}
	if got[0].Name != "a\xff\nname" || got[3].Name != "link" {
		t.Fatalf("nodes not sorted by name: %q %q", got[0].Name, got[3].Name)
	}
	f := got[1]
	if f.Name != "b.txt" || !f.MTime.Equal(time.Unix(1700000000, 123456789)) || f.CTime.Unix() != -5 || f.Size != 3 ||
		f.Inode != 42 || f.User != "me" || len(f.Xattrs) != 2 || f.Xattrs[0].Name != "user.a" || !bytes.Equal(f.Xattrs[1].Value, []byte{0, 1}) {
		t.Fatalf("file node did not round-trip: %+v", f)
	}
	again, err := EncodeTree(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Fatal("re-encoding a decoded tree gives other bytes: encoding is not canonical")
	}
	// Input order must not matter.
	rev := sampleNodes()
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	other, _ := EncodeTree(rev)
	if !bytes.Equal(other, data) {
		t.Fatal("node order changes the encoding")
	}
}

func TestEncodeTreeRefusesBadNames(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "nul\x00"} {
		if _, err := EncodeTree([]Node{{Name: name, Type: TypeFile}}); !errors.Is(err, ErrBadTree) {
			t.Errorf("name %q: got %v, want ErrBadTree", name, err)
		}
	}
	if _, err := EncodeTree([]Node{{Name: "x", Type: TypeFile}, {Name: "x", Type: TypeFile}}); !errors.Is(err, ErrBadTree) {
		t.Errorf("duplicate names accepted: %v", err)
	}
}

// craft builds a one-node tree from raw field bytes.
func craft(fields ...[]byte) []byte {
	node := bytes.Join(fields, nil)
	out := []byte{treeVersion, 1, byte(len(node))}
	return append(out, node...)
}

func field(tag byte, v []byte) []byte { return append([]byte{tag, byte(len(v))}, v...) }

func TestDecodeTreeRefusesCraftedTrees(t *testing.T) {
	cases := map[string][]byte{
		"empty":           {},
		"bad version":     {2, 0},
		"dotdot name":     craft(field(tagName, []byte("..")), field(tagType, []byte{1})),
		"slash name":      craft(field(tagName, []byte("a/b")), field(tagType, []byte{1})),
		"no type":         craft(field(tagName, []byte("a"))),
		"dir no subtree":  craft(field(tagName, []byte("a")), field(tagType, []byte{2})),
		"tags unordered":  craft(field(tagType, []byte{1}), field(tagName, []byte("a"))),
		"unknown low tag": craft(field(tagName, []byte("a")), field(tagType, []byte{1}), field(40, []byte{1})),
		"bad type":        craft(field(tagName, []byte("a")), field(tagType, []byte{9})),
		"short content":   craft(field(tagName, []byte("a")), field(tagType, []byte{1}), field(tagContent, []byte{1, 2})),
		"mode type bits":  craft(field(tagName, []byte("a")), field(tagType, []byte{1}), field(tagMode, []byte{0x80, 0x80, 0x01})),
		"huge count":      {treeVersion, 0xff, 0xff, 0xff, 0x7f},
		"trailing":        append(craft(field(tagName, []byte("a")), field(tagType, []byte{1})), 0),
		"zero value":      craft(field(tagName, []byte("a")), field(tagType, []byte{1}), field(tagUID, []byte{0})),
	}
	for name, data := range cases {
		if _, err := DecodeTree(data); !errors.Is(err, ErrBadTree) {
			t.Errorf("%s: got %v, want ErrBadTree", name, err)
		}
	}
	// Unknown high tags are skipped: room for later fields.
	if _, err := DecodeTree(craft(field(tagName, []byte("a")), field(tagType, []byte{1}), field(70, []byte{1}))); err != nil {
		t.Errorf("unknown tag >= 64 refused: %v", err)
	}
}

func FuzzDecodeTree(f *testing.F) {
	data, _ := EncodeTree(sampleNodes())
	f.Add(data)
	f.Add(craft(field(tagName, []byte("a")), field(tagType, []byte{1})))
	f.Fuzz(func(t *testing.T, b []byte) {
		nodes, err := DecodeTree(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to the same bytes (canonical).
		again, err := EncodeTree(nodes)
		if err != nil {
			t.Fatalf("decoded tree does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("decode/encode not canonical:\n%x\n%x", b, again)
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add([]byte(`{"time":"2026-12-01T07:00:00Z","tree":"` + chunk.Hash(nil).String() + `","paths":["/x"],"hostname":"h"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err == nil && (s.Tree.IsNull() || s.Time.IsZero()) {
			t.Fatal("accepted a snapshot without tree or time")
		}
	})
}
