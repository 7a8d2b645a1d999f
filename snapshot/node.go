package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"snap/chunk"
)

// NodeType is the kind of file a node describes.
type NodeType uint8

// Node types, as encoded in tree blobs (docs/FORMAT.md).
const (
	TypeFile NodeType = iota + 1
	TypeDir
	TypeSymlink
	TypeCharDev
	TypeBlockDev
	TypeFIFO
	TypeSocket
)

var typeNames = [...]string{"", "file", "dir", "symlink", "chardev", "blockdev", "fifo", "socket"}

func (t NodeType) String() string {
	if int(t) < len(typeNames) && t != 0 {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
}

// Node is one entry of a directory: a file, directory, symlink or special file
// with its metadata. For files Content lists the data blobs; for directories
// Subtree names the tree blob.
type Node struct {
	Name       string     `json:"name"`
	Type       NodeType   `json:"type"`
	Mode       uint32     `json:"mode"` // permission bits plus setuid, setgid, sticky
	UID        uint32     `json:"uid"`
	GID        uint32     `json:"gid"`
	User       string     `json:"user,omitempty"`
	Group      string     `json:"group,omitempty"`
	MTime      time.Time  `json:"mtime"`
	ATime      time.Time  `json:"atime"`
	CTime      time.Time  `json:"ctime"`
	Inode      uint64     `json:"inode,omitempty"`
	Device     uint64     `json:"device,omitempty"`
	Links      uint64     `json:"links,omitempty"`
	Size       uint64     `json:"size,omitempty"`
	Rdev       uint64     `json:"rdev,omitempty"`
	LinkTarget string     `json:"linktarget,omitempty"`
	Content    []chunk.ID `json:"content,omitempty"`
	Subtree    chunk.ID   `json:"subtree,omitzero"`
	Xattrs     []Xattr    `json:"xattrs,omitempty"`
	Holes      []Hole     `json:"holes,omitempty"` // unallocated ranges of a sparse file

	// ListDepth and Lists: a file with many chunks keeps their IDs in
	// content-list blobs (see contentlist.go); LoadTree expands them into
	// Content and records every list blob in ListBlobs.
	ListDepth int        `json:"list_depth,omitempty"`
	Lists     []chunk.ID `json:"lists,omitempty"`
	ListBlobs []chunk.ID `json:"-"`
}

// Hole is a range of a sparse file that reads as zeros and has no blocks on
// disk. The content blobs still cover it (as zero bytes, which deduplicate).
type Hole struct {
	Offset uint64 `json:"offset"`
	Length uint64 `json:"length"`
}

// Limits on decoded trees, so a crafted tree cannot exhaust memory.
const (
	MaxTreeNodes    = 1_000_000
	MaxNodeContent  = 10_000_000
	maxFieldLen     = 1 << 30
	treeVersion     = 1
	firstSkippedTag = 64
)

// Field tags of a node (docs/FORMAT.md, "Tree blobs").
const (
	tagName = iota + 1
	tagType
	tagMode
	tagUID
	tagGID
	tagUser
	tagGroup
	tagMTimeSec
	tagMTimeNsec
	tagATimeSec
	tagATimeNsec
	tagCTimeSec
	tagCTimeNsec
	tagInode
	tagDevice
	tagLinks
	tagSize
	tagRdev
	tagLinkTarget
	tagContent
	tagSubtree
	tagXattr
	tagHoles
	tagContentLists
)

// ErrBadTree is wrapped by errors for tree bytes that break the format.
var ErrBadTree = errors.New("invalid tree")

// ValidName reports whether name may be a directory entry: restore writes
// only such names, so a crafted tree cannot escape the target directory.
func ValidName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// sameNode reports whether a and b encode to the same bytes: every field
// of the format is equal (ListBlobs, which LoadTree derives, is not one).
// Content is compared only for files that keep it inline: with content
// lists, equal lists mean equal content.
func sameNode(a, b *Node) bool {
	if a.Name != b.Name || a.Type != b.Type || a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID ||
		a.User != b.User || a.Group != b.Group || !sameTime(a.MTime, b.MTime) || !sameTime(a.ATime, b.ATime) ||
		!sameTime(a.CTime, b.CTime) || a.Inode != b.Inode || a.Device != b.Device || a.Links != b.Links ||
		a.Size != b.Size || a.Rdev != b.Rdev || a.LinkTarget != b.LinkTarget || a.Subtree != b.Subtree ||
		a.ListDepth != b.ListDepth || !slices.Equal(a.Lists, b.Lists) || !slices.Equal(a.Holes, b.Holes) ||
		len(a.Xattrs) != len(b.Xattrs) {
		return false
	}
	for i := range a.Xattrs {
		if a.Xattrs[i].Name != b.Xattrs[i].Name || !bytes.Equal(a.Xattrs[i].Value, b.Xattrs[i].Value) {
			return false
		}
	}
	return len(a.Lists) > 0 || slices.Equal(a.Content, b.Content)
}

// sameTime compares times as the encoding stores them: the zero time (not
// recorded) only equals itself.
func sameTime(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	return a.Equal(b)
}

// EncodeTree returns the canonical encoding of a directory. Nodes are sorted
// by name (the slice is sorted in place); duplicate or invalid names are an error.
func EncodeTree(nodes []Node) ([]byte, error) {
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	buf := make([]byte, 0, 64+len(nodes)*96)
	buf = append(buf, treeVersion)
	buf = binary.AppendUvarint(buf, uint64(len(nodes)))
	var nb []byte
	for i := range nodes {
		n := &nodes[i]
		if !ValidName(n.Name) {
			return nil, fmt.Errorf("encode tree: %w: name %q", ErrBadTree, n.Name)
		}
		if i > 0 && nodes[i-1].Name == n.Name {
			return nil, fmt.Errorf("encode tree: %w: duplicate name %q", ErrBadTree, n.Name)
		}
		nb = encodeNode(nb[:0], n)
		buf = binary.AppendUvarint(buf, uint64(len(nb)))
		buf = append(buf, nb...)
	}
	return buf, nil
}

func encodeNode(b []byte, n *Node) []byte {
	bytesField := func(tag int, v []byte) {
		if len(v) > 0 {
			b = binary.AppendUvarint(b, uint64(tag))
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	var tmp [binary.MaxVarintLen64]byte
	uintField := func(tag int, v uint64) {
		if v != 0 {
			bytesField(tag, binary.AppendUvarint(tmp[:0], v))
		}
	}
	intField := func(tag int, v int64) {
		if v != 0 {
			bytesField(tag, binary.AppendVarint(tmp[:0], v))
		}
	}
	bytesField(tagName, []byte(n.Name))
	uintField(tagType, uint64(n.Type))
	uintField(tagMode, uint64(n.Mode))
	uintField(tagUID, uint64(n.UID))
	uintField(tagGID, uint64(n.GID))
	bytesField(tagUser, []byte(n.User))
	bytesField(tagGroup, []byte(n.Group))
	for i, t := range []time.Time{n.MTime, n.ATime, n.CTime} {
		sec, nsec := timeParts(t)
		intField(tagMTimeSec+2*i, sec)
		uintField(tagMTimeNsec+2*i, nsec)
	}
	uintField(tagInode, n.Inode)
	uintField(tagDevice, n.Device)
	uintField(tagLinks, n.Links)
	uintField(tagSize, n.Size)
	uintField(tagRdev, n.Rdev)
	bytesField(tagLinkTarget, []byte(n.LinkTarget))
	if len(n.Content) > 0 && len(n.Lists) == 0 {
		b = binary.AppendUvarint(b, tagContent)
		b = binary.AppendUvarint(b, uint64(len(n.Content)*chunk.IDSize))
		for _, id := range n.Content {
			b = append(b, id[:]...)
		}
	}
	if !n.Subtree.IsNull() {
		bytesField(tagSubtree, n.Subtree[:])
	}
	xs := append([]Xattr(nil), n.Xattrs...)
	sort.Slice(xs, func(i, j int) bool { return xs[i].Name < xs[j].Name })
	for _, x := range xs {
		v := binary.AppendUvarint(nil, uint64(len(x.Name)))
		v = append(append(v, x.Name...), x.Value...)
		if len(v) > 0 {
			b = binary.AppendUvarint(b, tagXattr)
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	if len(n.Holes) > 0 {
		var v []byte
		for _, h := range n.Holes {
			v = binary.AppendUvarint(v, h.Offset)
			v = binary.AppendUvarint(v, h.Length)
		}
		bytesField(tagHoles, v)
	}
	if len(n.Lists) > 0 {
		v := binary.AppendUvarint(nil, uint64(n.ListDepth))
		for _, id := range n.Lists {
			v = append(v, id[:]...)
		}
		bytesField(tagContentLists, v)
	}
	return b
}

func timeParts(t time.Time) (int64, uint64) {
	if t.IsZero() {
		return 0, 0
	}
	return t.Unix(), uint64(t.Nanosecond())
}

// reader decodes varints from a byte slice, recording the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrBadTree, fmt.Sprintf(format, args...))
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	// Canonical: minimal encoding only.
	if n > 1 && r.b[n-1] == 0 {
		r.fail("non-minimal varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("length %d beyond the end", n)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// DecodeTree decodes a tree blob, checking every rule of the format.
func DecodeTree(data []byte) ([]Node, error) {
	return appendTree(nil, data)
}

// treeNodeCount returns the node count a tree blob claims, or 0 if it
// cannot be read; appendTree checks it.
func treeNodeCount(data []byte) int {
	if len(data) == 0 || data[0] != treeVersion {
		return 0
	}
	r := &reader{b: data[1:]}
	if n := r.uvarint(); r.err == nil && n <= MaxTreeNodes {
		return int(n)
	}
	return 0
}

// reuse returns v as a string: s if it holds the same bytes (the
// comparison does not allocate).
func reuse(s string, v []byte) string {
	if s == string(v) {
		return s
	}
	return string(v)
}

// appendTree decodes a tree blob and appends its nodes to dst, whose last
// node they must sort after (a page of a paged tree after the one before).
func appendTree(dst []Node, data []byte) ([]Node, error) {
	r := &reader{b: data}
	if len(data) == 0 || data[0] != treeVersion {
		return nil, fmt.Errorf("%w: unknown tree version", ErrBadTree)
	}
	r.b = r.b[1:]
	count := r.uvarint()
	if count > MaxTreeNodes {
		return nil, fmt.Errorf("%w: %d nodes, more than the limit of %d", ErrBadTree, count, MaxTreeNodes)
	}
	// Each node takes at least 2 bytes, which bounds the allocation by the input size.
	if count > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: %d nodes in %d bytes", ErrBadTree, count, len(r.b))
	}
	start := len(dst)
	nodes := slices.Grow(dst, int(count))[:start+int(count)]
	for i := start; i < len(nodes); i++ {
		l := r.uvarint()
		nb := r.bytes(l)
		if r.err != nil {
			return nil, r.err
		}
		nodes[i] = Node{}
		var prev *Node
		if i > 0 {
			prev = &nodes[i-1]
		}
		if err := decodeNode(nb, &nodes[i], prev); err != nil {
			return nil, fmt.Errorf("node %d: %w", i-start, err)
		}
		if i > 0 && nodes[i-1].Name >= nodes[i].Name {
			return nil, fmt.Errorf("%w: names not strictly increasing at %q", ErrBadTree, nodes[i].Name)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last node", ErrBadTree, len(r.b))
	}
	return nodes, nil
}

// decodeNode decodes one node into n. prev, if not nil, is the node before
// it, whose owner and group names n shares when they are the same: nearly
// every node of a home directory repeats them, and a string each was a
// tenth of the allocations of loading a parent snapshot's trees.
func decodeNode(data []byte, n *Node, prev *Node) error {
	var prevUser, prevGroup string
	if prev != nil {
		prevUser, prevGroup = prev.User, prev.Group
	}
	r := &reader{b: data}
	last := uint64(0)
	var times [6]uint64
	var timeSet [6]bool
	for len(r.b) > 0 && r.err == nil {
		tag := r.uvarint()
		l := r.uvarint()
		v := r.bytes(l)
		if r.err != nil {
			break
		}
		if len(v) == 0 {
			return fmt.Errorf("%w: empty field %d", ErrBadTree, tag)
		}
		if tag <= last && !(tag == tagXattr && last == tagXattr) {
			return fmt.Errorf("%w: field %d after field %d", ErrBadTree, tag, last)
		}
		last = tag
		num := func() uint64 {
			fr := &reader{b: v}
			x := fr.uvarint()
			if fr.err == nil && len(fr.b) != 0 {
				fr.fail("trailing bytes in field %d", tag)
			}
			if fr.err != nil && r.err == nil {
				r.err = fr.err
			}
			if x == 0 && r.err == nil {
				r.fail("zero value in field %d", tag)
			}
			return x
		}
		u32 := func() uint32 {
			x := num()
			if x > 1<<32-1 {
				r.fail("field %d out of range", tag)
			}
			return uint32(x)
		}
		switch tag {
		case tagName:
			n.Name = string(v)
		case tagType:
			t := num()
			if t < uint64(TypeFile) || t > uint64(TypeSocket) {
				r.fail("unknown node type %d", t)
			}
			n.Type = NodeType(t)
		case tagMode:
			n.Mode = u32()
			if n.Mode&^0o7777 != 0 {
				r.fail("mode %o has bits beyond 07777", n.Mode)
			}
		case tagUID:
			n.UID = u32()
		case tagGID:
			n.GID = u32()
		case tagUser:
			n.User = reuse(prevUser, v)
		case tagGroup:
			n.Group = reuse(prevGroup, v)
		case tagMTimeSec, tagATimeSec, tagCTimeSec:
			fr := &reader{b: v}
			x, k := binary.Varint(v)
			if k <= 0 || k != len(v) || x == 0 || (k > 1 && v[k-1] == 0) {
				fr.fail("bad time in field %d", tag)
				r.err = fr.err
			}
			times[tag-tagMTimeSec] = uint64(x)
			timeSet[tag-tagMTimeSec] = true
		case tagMTimeNsec, tagATimeNsec, tagCTimeNsec:
			x := num()
			if x >= 1e9 {
				r.fail("nanoseconds %d out of range", x)
			}
			times[tag-tagMTimeSec] = x
			timeSet[tag-tagMTimeSec] = true
		case tagInode:
			n.Inode = num()
		case tagDevice:
			n.Device = num()
		case tagLinks:
			n.Links = num()
		case tagSize:
			n.Size = num()
		case tagRdev:
			n.Rdev = num()
		case tagLinkTarget:
			n.LinkTarget = string(v)
		case tagContent:
			if len(v)%chunk.IDSize != 0 || len(v)/chunk.IDSize > MaxNodeContent {
				r.fail("content field of %d bytes", len(v))
				break
			}
			n.Content = make([]chunk.ID, len(v)/chunk.IDSize)
			for i := range n.Content {
				copy(n.Content[i][:], v[i*chunk.IDSize:])
			}
		case tagSubtree:
			if len(v) != chunk.IDSize {
				r.fail("subtree field of %d bytes", len(v))
				break
			}
			copy(n.Subtree[:], v)
		case tagXattr:
			fr := &reader{b: v}
			nl := fr.uvarint()
			name := fr.bytes(nl)
			if fr.err != nil || len(name) == 0 {
				r.fail("bad xattr")
				break
			}
			if k := len(n.Xattrs); k > 0 && n.Xattrs[k-1].Name >= string(name) {
				r.fail("xattrs not sorted")
			}
			n.Xattrs = append(n.Xattrs, Xattr{Name: string(name), Value: bytes.Clone(fr.b)})
		case tagContentLists:
			fr := &reader{b: v}
			depth := fr.uvarint()
			if fr.err != nil || depth < 1 || depth > maxListDepth || len(fr.b) == 0 || len(fr.b)%chunk.IDSize != 0 || len(fr.b)/chunk.IDSize > inlineContentMax {
				r.fail("bad content lists field")
				break
			}
			n.ListDepth = int(depth)
			n.Lists = make([]chunk.ID, len(fr.b)/chunk.IDSize)
			for i := range n.Lists {
				copy(n.Lists[i][:], fr.b[i*chunk.IDSize:])
			}
		case tagHoles:
			fr := &reader{b: v}
			end := uint64(0)
			for len(fr.b) > 0 && fr.err == nil {
				h := Hole{Offset: fr.uvarint(), Length: fr.uvarint()}
				if fr.err == nil && (h.Length == 0 || h.Offset < end || h.Offset+h.Length < h.Offset) {
					fr.fail("holes overlap, are empty or not sorted")
				}
				end = h.Offset + h.Length
				n.Holes = append(n.Holes, h)
			}
			if fr.err != nil {
				r.err = fr.err
			}
		default:
			if tag < firstSkippedTag {
				r.fail("unknown field %d", tag)
			}
		}
	}
	if r.err != nil {
		return r.err
	}
	for i := 0; i < 3; i++ {
		if timeSet[2*i] || timeSet[2*i+1] {
			t := time.Unix(int64(times[2*i]), int64(times[2*i+1]))
			switch i {
			case 0:
				n.MTime = t
			case 1:
				n.ATime = t
			case 2:
				n.CTime = t
			}
		}
	}
	if !ValidName(n.Name) {
		return fmt.Errorf("%w: invalid name %q", ErrBadTree, n.Name)
	}
	if n.Type == 0 {
		return fmt.Errorf("%w: %q has no type", ErrBadTree, n.Name)
	}
	if n.Type == TypeDir && n.Subtree.IsNull() {
		return fmt.Errorf("%w: directory %q has no subtree", ErrBadTree, n.Name)
	}
	if len(n.Holes) > 0 && (n.Type != TypeFile || n.Holes[len(n.Holes)-1].Offset+n.Holes[len(n.Holes)-1].Length > n.Size) {
		return fmt.Errorf("%w: holes of %q beyond its size", ErrBadTree, n.Name)
	}
	if len(n.Lists) > 0 && (n.Type != TypeFile || len(n.Content) > 0) {
		return fmt.Errorf("%w: %q has both content and content lists, or lists but is no file", ErrBadTree, n.Name)
	}
	if n.Type != TypeDir && !n.Subtree.IsNull() || n.Type != TypeFile && len(n.Content) > 0 {
		return fmt.Errorf("%w: %s %q has content of another type", ErrBadTree, n.Type, n.Name)
	}
	return nil
}
