package snapshot

import (
	"archive/tar"
	"archive/zip"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"snap/chunk"
	"snap/index"
	"snap/repo"
)

// Formats of Dump.
const (
	// DumpAuto writes a file's content as it is and anything else as tar.
	DumpAuto = ""
	// DumpTar writes a POSIX tar stream with PAX headers.
	DumpTar = "tar"
	// DumpZip writes a zip archive.
	DumpZip = "zip"
)

// Dump writes the node at path p of the snapshot whose root tree is tree to
// w: in DumpAuto format a file's content as it is, and otherwise an archive
// (DumpTar or DumpZip) of the node and everything below it.
//
// Archive entries are named relative to the directory holding the node, as
// "tar -C parent -c name" would: dumping /me/docs gives docs/, docs/a.txt, and
// so on; dumping the root gives the backed-up paths' last elements.
//
// Tar entries carry mode, uid/gid, user/group names, times with nanoseconds,
// symlink targets, device numbers, fifos and extended attributes (as PAX
// records SCHILY.xattr.NAME, the form GNU tar and bsdtar read; an attribute
// whose name contains "=" cannot be written so and is left out). A file that
// had several links (same device and inode, Links > 1) and has the same
// content as an earlier entry of the same dump becomes a hard link to it.
// Sockets are left out, as tar does. Zip entries carry modes, mtimes (whole
// seconds) and uid/gid (Info-ZIP "ux" field); zip cannot represent devices,
// fifos, sockets or hard links, so devices, fifos and sockets are left out
// and hard-linked files are stored once per name.
//
// Content is read blob by blob, each verified against its ID, so memory use
// does not grow with file size; each directory's blobs are looked up in the
// index in one transaction. Any error ends the dump: w then holds an
// incomplete stream, and the error names the path that failed.
func Dump(ctx context.Context, r *repo.Repository, tree chunk.ID, p string, format string, w io.Writer) error {
	clean := path.Clean("/" + p)
	n, err := FindNode(ctx, r, tree, clean)
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	switch format {
	case DumpAuto:
		if n.Type == TypeFile {
			locs, err := lookupBlobs(r, n.Content)
			if err != nil {
				return fmt.Errorf("dump %s: %w", clean, err)
			}
			return writeContent(ctx, r, w, n, locs, clean)
		}
		format = DumpTar
	case DumpTar, DumpZip:
	default:
		return fmt.Errorf("dump %s: unknown archive format %q; use %q or %q", clean, format, DumpTar, DumpZip)
	}

	d := &dumper{r: r, links: make(map[inodeKey]linkInfo)}
	if format == DumpTar {
		d.aw = &tarArchive{tw: tar.NewWriter(w)}
	} else {
		d.aw = &zipArchive{zw: zip.NewWriter(w)}
	}
	if clean == "/" {
		// The root has no entry of its own: its nodes are the top level.
		err = d.dir(ctx, n, "", "", nil)
	} else {
		var locs map[chunk.ID]index.Location
		ids := n.Content
		if n.Type == TypeDir {
			ids = []chunk.ID{n.Subtree}
		}
		if locs, err = lookupBlobs(r, ids); err != nil {
			return fmt.Errorf("dump %s: %w", clean, err)
		}
		err = d.node(ctx, n, n.Name, clean, locs)
	}
	if err != nil {
		return err
	}
	if err := d.aw.Close(); err != nil {
		return fmt.Errorf("dump %s: finish the %s archive: %w", clean, format, err)
	}
	return nil
}

// writeContent writes the content of the file node n, at path p in the
// snapshot, to w, taking blob locations from locs.
func writeContent(ctx context.Context, r *repo.Repository, w io.Writer, n *Node, locs map[chunk.ID]index.Location, p string) error {
	var written uint64
	for _, id := range n.Content {
		if err := ctx.Err(); err != nil {
			return err
		}
		loc, ok := locs[id]
		if !ok {
			return fmt.Errorf("dump %s: data blob %s: %w", p, id.Short(), repo.ErrBlobMissing)
		}
		data, err := r.LoadBlobAt(ctx, loc)
		if err != nil {
			return fmt.Errorf("dump %s: %w", p, err)
		}
		// Checked before writing: a tar writer refuses more bytes than the
		// header announced, with a less helpful error.
		if written+uint64(len(data)) > n.Size {
			return fmt.Errorf("dump %s: content is longer than the %d bytes the snapshot records: %w", p, n.Size, repo.ErrBlobCorrupt)
		}
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("dump %s: write: %w", p, err)
		}
		written += uint64(len(data))
	}
	if written != n.Size {
		return fmt.Errorf("dump %s: content is %d bytes, the snapshot records %d: %w", p, written, n.Size, repo.ErrBlobCorrupt)
	}
	return nil
}

// archive is what Dump needs of tar and zip writers.
type archive interface {
	// add starts the entry name for n, a hard link to the earlier entry
	// linkTo if that is not empty, and returns where a file's content goes.
	// It returns a nil writer for entries it leaves out.
	add(name string, n *Node, linkTo string) (io.Writer, error)
	// hardLinks reports whether add can write hard links.
	hardLinks() bool
	Close() error
}

// inodeKey identifies a file on the system it was backed up from.
type inodeKey struct{ dev, ino uint64 }

// linkInfo is the first entry written for an inode.
type linkInfo struct {
	name    string
	size    uint64
	content []chunk.ID
}

type dumper struct {
	r     *repo.Repository
	aw    archive
	links map[inodeKey]linkInfo
}

// dir writes the contents of the directory node n, whose entry is name (""
// for the root) and whose snapshot path is p ("" for the root). locs holds
// the location of n's subtree (nil: look it up).
func (d *dumper) dir(ctx context.Context, n *Node, name, p string, locs map[chunk.ID]index.Location) error {
	nodes, err := loadTreeFrom(ctx, d.r, locs, n.Subtree)
	if err != nil {
		return fmt.Errorf("dump %s: %w", displayDir(p), err)
	}
	// One index transaction for the whole directory: content of its files
	// and its subtrees.
	var ids []chunk.ID
	for i := range nodes {
		ids = append(ids, nodes[i].Content...)
		if nodes[i].Type == TypeDir {
			ids = append(ids, nodes[i].Subtree)
		}
	}
	sublocs, err := lookupBlobs(d.r, ids)
	if err != nil {
		return fmt.Errorf("dump %s: %w", displayDir(p), err)
	}
	for i := range nodes {
		c := &nodes[i]
		entry := c.Name
		if name != "" {
			entry = name + "/" + c.Name
		}
		if err := d.node(ctx, c, entry, p+"/"+c.Name, sublocs); err != nil {
			return err
		}
	}
	return nil
}

// node writes the entry name for n, at snapshot path p, and for a directory
// everything below it. locs holds the locations of n's blobs.
func (d *dumper) node(ctx context.Context, n *Node, name, p string, locs map[chunk.ID]index.Location) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	linkTo := ""
	if n.Type == TypeFile && n.Links > 1 && n.Inode != 0 && d.aw.hardLinks() {
		key := inodeKey{n.Device, n.Inode}
		// The content is compared too: a file changed between reading its
		// two names must not lose one version to a link.
		if first, ok := d.links[key]; ok && first.size == n.Size && slices.Equal(first.content, n.Content) {
			linkTo = first.name
		} else if !ok {
			d.links[key] = linkInfo{name: name, size: n.Size, content: n.Content}
		}
	}
	w, err := d.aw.add(name, n, linkTo)
	if err != nil {
		return fmt.Errorf("dump %s: %w", p, err)
	}
	switch {
	case n.Type == TypeDir:
		return d.dir(ctx, n, name, p, locs)
	case n.Type == TypeFile && w != nil && linkTo == "":
		return writeContent(ctx, d.r, w, n, locs, p)
	}
	return nil
}

// fileMode returns n's mode as an fs.FileMode, type bits included.
func fileMode(n *Node) fs.FileMode {
	m := fs.FileMode(n.Mode & 0o777)
	if n.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch n.Type {
	case TypeDir:
		m |= fs.ModeDir
	case TypeSymlink:
		m |= fs.ModeSymlink
	case TypeCharDev:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case TypeBlockDev:
		m |= fs.ModeDevice
	case TypeFIFO:
		m |= fs.ModeNamedPipe
	case TypeSocket:
		m |= fs.ModeSocket
	}
	return m
}

type tarArchive struct{ tw *tar.Writer }

func (a *tarArchive) hardLinks() bool { return true }

func (a *tarArchive) Close() error { return a.tw.Close() }

func (a *tarArchive) add(name string, n *Node, linkTo string) (io.Writer, error) {
	h := &tar.Header{
		Name:       name,
		Mode:       int64(n.Mode & 0o7777),
		Uid:        int(n.UID),
		Gid:        int(n.GID),
		Uname:      n.User,
		Gname:      n.Group,
		ModTime:    n.MTime,
		AccessTime: n.ATime,
		ChangeTime: n.CTime,
		// PAX keeps nanoseconds, long names, large ids and xattrs.
		Format: tar.FormatPAX,
	}
	switch n.Type {
	case TypeFile:
		h.Typeflag = tar.TypeReg
		h.Size = int64(n.Size)
		if linkTo != "" {
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, linkTo, 0
		}
	case TypeDir:
		h.Typeflag = tar.TypeDir
		h.Name += "/"
	case TypeSymlink:
		h.Typeflag = tar.TypeSymlink
		h.Linkname = n.LinkTarget
	case TypeCharDev, TypeBlockDev:
		h.Typeflag = tar.TypeChar
		if n.Type == TypeBlockDev {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor = int64(unix.Major(n.Rdev))
		h.Devminor = int64(unix.Minor(n.Rdev))
	case TypeFIFO:
		h.Typeflag = tar.TypeFifo
	default:
		return nil, nil // sockets: tar has no type for them
	}
	for _, x := range n.Xattrs {
		if strings.Contains(x.Name, "=") {
			continue // a PAX record key cannot hold "="
		}
		if h.PAXRecords == nil {
			h.PAXRecords = make(map[string]string)
		}
		h.PAXRecords["SCHILY.xattr."+x.Name] = string(x.Value)
	}
	if err := a.tw.WriteHeader(h); err != nil {
		return nil, fmt.Errorf("write tar header: %w", err)
	}
	return a.tw, nil
}

type zipArchive struct{ zw *zip.Writer }

func (a *zipArchive) hardLinks() bool { return false }

func (a *zipArchive) Close() error { return a.zw.Close() }

func (a *zipArchive) add(name string, n *Node, _ string) (io.Writer, error) {
	h := &zip.FileHeader{Name: name, Modified: n.MTime, Method: zip.Deflate}
	switch n.Type {
	case TypeFile:
	case TypeDir:
		h.Name += "/"
		h.Method = zip.Store
	case TypeSymlink:
		// Info-ZIP's convention: the target is the entry's content.
		h.Method = zip.Store
	default:
		return nil, nil
	}
	h.SetMode(fileMode(n))
	h.Extra = zipUnixIDs(n.UID, n.GID)
	w, err := a.zw.CreateHeader(h)
	if err != nil {
		return nil, fmt.Errorf("write zip header: %w", err)
	}
	if n.Type == TypeSymlink {
		if _, err := io.WriteString(w, n.LinkTarget); err != nil {
			return nil, fmt.Errorf("write zip symlink: %w", err)
		}
	}
	return w, nil
}

// zipUnixIDs returns an Info-ZIP "ux" extra field (tag 0x7875, version 1)
// with 4-byte uid and gid, which unzip -X restores.
func zipUnixIDs(uid, gid uint32) []byte {
	b := binary.LittleEndian.AppendUint16(nil, 0x7875)
	b = binary.LittleEndian.AppendUint16(b, 11)
	b = append(b, 1, 4)
	b = binary.LittleEndian.AppendUint32(b, uid)
	b = append(b, 4)
	return binary.LittleEndian.AppendUint32(b, gid)
}
