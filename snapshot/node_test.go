package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
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

// Decoding shares a node's owner and group names with the node before when
// they are equal; each node must still get its own.
func TestDecodeTreeOwnerNames(t *testing.T) {
	users := []string{"me", "me", "you", "", "me", "you"}
	groups := []string{"staff", "", "staff", "wheel", "wheel", "staff"}
	var nodes []Node
	for i := range users {
		nodes = append(nodes, Node{Name: fmt.Sprintf("f%d", i), Type: TypeFile, User: users[i], Group: groups[i]})
	}
	data, err := EncodeTree(nodes)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeTree(data)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range got {
		if n.User != users[i] || n.Group != groups[i] {
			t.Errorf("node %s: owner %q:%q, want %q:%q", n.Name, n.User, n.Group, users[i], groups[i])
		}
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

func TestContentListsRoundTrip(t *testing.T) {
	var ids []chunk.ID
	for i := 0; i < 5000; i++ {
		ids = append(ids, chunk.Hash([]byte{byte(i), byte(i >> 8)}))
	}
	store := map[chunk.ID][]byte{}
	depth, top, err := buildContentLists(ids, func(b []byte) (chunk.ID, error) {
		id := chunk.Hash(b)
		store[id] = append([]byte(nil), b...)
		return id, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(top) > inlineContentMax || depth < 1 {
		t.Fatalf("depth %d with %d top IDs", depth, len(top))
	}
	// Expand by hand, as a reader following FORMAT.md would.
	level := top
	for d := depth; d >= 1; d-- {
		var next []chunk.ID
		for _, id := range level {
			b := store[id]
			for k := 0; k < len(b); k += 32 {
				next = append(next, chunk.ID(b[k:k+32]))
			}
		}
		level = next
	}
	if len(level) != len(ids) {
		t.Fatalf("expanded to %d IDs, want %d", len(level), len(ids))
	}
	for i := range ids {
		if level[i] != ids[i] {
			t.Fatalf("ID %d differs after expansion", i)
		}
	}
	// One changed ID changes one list per level, not all of them.
	before := len(store)
	changed := append([]chunk.ID(nil), ids...)
	changed[2500] = chunk.Hash([]byte("edited"))
	_, _, err = buildContentLists(changed, func(b []byte) (chunk.ID, error) {
		id := chunk.Hash(b)
		store[id] = b
		return id, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if added := len(store) - before; added > depth+1 {
		t.Fatalf("editing one chunk added %d list blobs, want at most %d", added, depth+1)
	}
	// Encoding keeps the lists, not the expanded content.
	n := Node{Name: "big", Type: TypeFile, Size: 1, Content: ids, ListDepth: depth, Lists: top}
	data, err := EncodeTree([]Node{n})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeTree(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0].Content) != 0 || len(got[0].Lists) != len(top) || got[0].ListDepth != depth {
		t.Fatalf("decoded node: %d content, %d lists, depth %d", len(got[0].Content), len(got[0].Lists), got[0].ListDepth)
	}
}

// BenchmarkEncodeTree encodes a directory of 1,000 files.
func BenchmarkEncodeTree(b *testing.B) {
	nodes := make([]Node, 1000)
	for i := range nodes {
		nodes[i] = Node{Name: fmt.Sprintf("file-%05d.txt", i), Type: TypeFile, Mode: 0o644, UID: 1000, GID: 1000,
			User: "me", Group: "me", MTime: time.Unix(1700000000+int64(i), 5), Size: uint64(i * 100),
			Content: []chunk.ID{chunk.Hash([]byte{byte(i)})}, Inode: uint64(i), Links: 1}
	}
	data, _ := EncodeTree(nodes)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := EncodeTree(nodes); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeTree decodes the same directory.
func BenchmarkDecodeTree(b *testing.B) {
	nodes := make([]Node, 1000)
	for i := range nodes {
		nodes[i] = Node{Name: fmt.Sprintf("file-%05d.txt", i), Type: TypeFile, Mode: 0o644, MTime: time.Unix(1700000000, 0),
			Size: 1, Content: []chunk.ID{chunk.Hash([]byte{byte(i)})}}
	}
	data, _ := EncodeTree(nodes)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeTree(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSameNode: a change to any encoded field makes nodes differ, so a
// directory whose entries all compare equal to the parent's may reuse the
// parent's tree. A field added to Node without sameNode learning it fails
// here.
func TestSameNode(t *testing.T) {
	base := sampleNodes()[0]
	base.Xattrs = []Xattr{{Name: "user.a", Value: []byte("v")}}
	base.Holes = []Hole{{Offset: 1, Length: 2}}
	if b := base; !sameNode(&base, &b) {
		t.Fatal("a node differs from its copy")
	}
	v := reflect.ValueOf(&base).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Name == "ListBlobs" { // derived by LoadTree, not encoded
			continue
		}
		changed := base
		cv := reflect.ValueOf(&changed).Elem().Field(i)
		switch f.Type.Kind() {
		case reflect.String:
			cv.SetString(cv.String() + "x")
		case reflect.Uint8, reflect.Uint32, reflect.Uint64:
			cv.SetUint(cv.Uint() + 1)
		case reflect.Int:
			cv.SetInt(cv.Int() + 1)
		case reflect.Array: // chunk.ID
			cv.Index(0).SetUint(cv.Index(0).Uint() + 1)
		case reflect.Slice:
			cv.Set(reflect.Append(cv, reflect.Zero(f.Type.Elem())))
		case reflect.Struct: // time.Time
			cv.Set(reflect.ValueOf(cv.Interface().(time.Time).Add(time.Nanosecond)))
		default:
			t.Fatalf("field %s of kind %s: teach this test to change it", f.Name, f.Type.Kind())
		}
		if f.Name == "Content" {
			changed.Lists, base.Lists = nil, nil // inline content is compared
		}
		if sameNode(&base, &changed) {
			t.Errorf("nodes differing in %s compare equal", f.Name)
		}
	}
	x := base
	x.Xattrs = []Xattr{{Name: "user.a", Value: []byte("w")}}
	if sameNode(&base, &x) {
		t.Error("nodes differing in an xattr value compare equal")
	}
	var zero Node
	z := base
	z.ATime = time.Time{}
	if sameNode(&base, &z) || !sameNode(&zero, &zero) {
		t.Error("a recorded atime compares equal to none")
	}
}
