package fusefs

import (
	"context"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"snap/chunk"
	"snap/repo"
	"snap/snapshot"
)

// TimeFormat names snapshot directories, in local time.
const TimeFormat = "2006-01-02T15:04:05"

// Keys of the directories above the snapshots in a view.
const (
	keyRoot      = ""
	keySnapshots = "snapshots"
	keyIDs       = "ids"
	keyHosts     = "hosts"
	keyTags      = "tags"
	latestName   = "latest"
)

// snapshotSet is the repository's list of snapshots, read again when it is
// older than maxAge. Documents are read once: a snapshot never changes
// under its ID.
type snapshotSet struct {
	ctx    context.Context // of the file system, not of one request (see current)
	r      *repo.Repository
	maxAge time.Duration
	logf   func(string, ...any)

	mu   sync.Mutex
	docs map[chunk.ID]*snapshot.Snapshot
	bad  map[chunk.ID]bool // documents that could not be read, reported once
	cur  *view
	at   time.Time // when cur was made
}

func newSnapshotSet(ctx context.Context, r *repo.Repository, maxAge time.Duration, logf func(string, ...any)) *snapshotSet {
	return &snapshotSet{ctx: ctx, r: r, maxAge: maxAge, logf: logf,
		docs: make(map[chunk.ID]*snapshot.Snapshot), bad: make(map[chunk.ID]bool)}
}

// current returns the view of the snapshots, listing them again if it is
// older than maxAge. When listing fails, the error is logged and the last
// view is kept: a passing backend error should not empty the mount.
//
// The listing runs under the file system's context: the view is shared, and
// one reader interrupted by a signal must not cut it short for the others.
func (s *snapshotSet) current() *view {
	ctx := s.ctx
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && time.Since(s.at) < s.maxAge {
		return s.cur
	}
	ids, err := s.r.SnapshotIDs(ctx)
	if err != nil {
		s.logf("list snapshots: %v; showing the list read before", err)
		if s.cur == nil {
			s.cur = buildView(nil)
		}
		s.at = time.Now() // do not hammer a failing backend
		return s.cur
	}
	keep := make(map[chunk.ID]*snapshot.Snapshot, len(ids))
	for _, id := range ids {
		if sn, ok := s.docs[id]; ok {
			keep[id] = sn
			continue
		}
		if s.bad[id] {
			continue
		}
		sn, err := snapshot.Load(ctx, s.r, id)
		if err != nil {
			if ctx.Err() != nil {
				// Interrupted: try the rest next time.
				return s.viewOr(keep)
			}
			s.logf("snapshot %s: %v; it is left out of the mount", id.Short(), err)
			s.bad[id] = true
			continue
		}
		keep[id] = sn
	}
	s.docs = keep
	s.cur = buildView(keep)
	s.at = time.Now()
	return s.cur
}

// viewOr returns the current view, or one made of docs if there is none.
func (s *snapshotSet) viewOr(docs map[chunk.ID]*snapshot.Snapshot) *view {
	if s.cur == nil {
		return buildView(docs)
	}
	return s.cur
}

// view is one reading of the snapshot list, arranged as the directories
// above the snapshots. It is never changed once built.
type view struct {
	dirs map[string]*listing // by key: "", "snapshots", "hosts/<host>", ...
}

// listing is one directory of a view.
type listing struct {
	entries []metaEntry // sorted by name
	byName  map[string]int
	mtime   time.Time // of the newest snapshot below
	latest  bool      // has a latest link (directories of snapshots)
}

// metaEntry is one entry of a listing: exactly one of sn, dir and link is set.
type metaEntry struct {
	name string
	sn   *snapshot.Snapshot // a snapshot's root directory
	dir  string             // the key of a subdirectory
	link string             // a symlink's target
}

func (l *listing) add(e metaEntry) {
	if _, dup := l.byName[e.name]; dup {
		return
	}
	l.byName[e.name] = len(l.entries)
	l.entries = append(l.entries, e)
}

func (l *listing) lookup(name string) (metaEntry, bool) {
	i, ok := l.byName[name]
	if !ok {
		return metaEntry{}, false
	}
	return l.entries[i], true
}

// buildView arranges docs into the directories of the mount.
func buildView(docs map[chunk.ID]*snapshot.Snapshot) *view {
	all := make([]*snapshot.Snapshot, 0, len(docs))
	for _, sn := range docs {
		all = append(all, sn)
	}
	// The order of snapshot.List: oldest first, ties by ID.
	sort.Slice(all, func(i, j int) bool {
		if !all[i].Time.Equal(all[j].Time) {
			return all[i].Time.Before(all[j].Time)
		}
		return string(all[i].ID[:]) < string(all[j].ID[:])
	})
	names := timeNames(all)
	shorts := shortIDs(all)

	v := &view{dirs: make(map[string]*listing)}
	dir := func(key string) *listing {
		l, ok := v.dirs[key]
		if !ok {
			l = &listing{byName: make(map[string]int)}
			v.dirs[key] = l
		}
		return l
	}
	root := dir(keyRoot)
	for _, k := range []string{keySnapshots, keyIDs, keyHosts, keyTags} {
		root.add(metaEntry{name: k, dir: k})
		dir(k)
	}
	// note records that sn is below the directory key, for its mtime and
	// its latest link: sn comes in time order, so the last one is newest.
	note := func(key string, sn *snapshot.Snapshot, withLatest bool) {
		l := dir(key)
		l.mtime = sn.Time
		l.latest = l.latest || withLatest
	}
	for i, sn := range all {
		dir(keySnapshots).add(metaEntry{name: names[i], sn: sn})
		note(keySnapshots, sn, true)
		dir(keyIDs).add(metaEntry{name: shorts[i], sn: sn})
		note(keyIDs, sn, false)
		note(keyRoot, sn, false)

		host := "hosts/" + safeName(sn.Hostname)
		dir(keyHosts).add(metaEntry{name: safeName(sn.Hostname), dir: host})
		note(keyHosts, sn, false)
		dir(host).add(metaEntry{name: names[i], sn: sn})
		note(host, sn, true)

		for _, t := range sn.Tags {
			tag := "tags/" + safeName(t)
			dir(keyTags).add(metaEntry{name: safeName(t), dir: tag})
			note(keyTags, sn, false)
			dir(tag).add(metaEntry{name: names[i], sn: sn})
			note(tag, sn, true)
		}
	}
	for _, l := range v.dirs {
		// The latest link of a directory points at its newest snapshot,
		// which is the last one added (oldest first).
		if l.latest {
			var newest string
			for _, e := range l.entries {
				if e.sn != nil {
					newest = e.name
				}
			}
			l.add(metaEntry{name: latestName, link: newest})
		}
		sort.Slice(l.entries, func(i, j int) bool { return l.entries[i].name < l.entries[j].name })
		for i, e := range l.entries {
			l.byName[e.name] = i
		}
	}
	return v
}

// timeNames names the snapshots of all (sorted oldest first) by their time
// in local time; a snapshot in the same second as an earlier one gets its
// short ID appended, so that names are unique.
func timeNames(all []*snapshot.Snapshot) []string {
	names := make([]string, len(all))
	used := make(map[string]bool, len(all))
	for i, sn := range all {
		name := sn.Time.Local().Format(TimeFormat)
		if used[name] {
			name += "-" + sn.ID.Short()
		}
		used[name] = true
		names[i] = name
	}
	return names
}

// shortIDs returns the names of the snapshots in ids/: the short ID, or the
// full ID for snapshots whose short IDs collide.
func shortIDs(all []*snapshot.Snapshot) []string {
	count := make(map[string]int, len(all))
	for _, sn := range all {
		count[sn.ID.Short()]++
	}
	out := make([]string, len(all))
	for i, sn := range all {
		out[i] = sn.ID.Short()
		if count[out[i]] > 1 {
			out[i] = sn.ID.String()
		}
	}
	return out
}

// safeName turns a host name or tag into a directory entry name: "/" and NUL
// become "_", and names that cannot be entries ("", ".", "..") get a "_"
// prefix.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, s)
	if !snapshot.ValidName(s) {
		s = "_" + s
	}
	return s
}

// metaDir is one of the directories above the snapshots: the root,
// snapshots/, ids/, hosts/, tags/ and the directory of each host and tag.
// Its entries come from the current view, so they follow the repository.
type metaDir struct {
	fs.Inode
	fsys *FS
	key  string
	id   ident
}

var (
	_ fs.NodeLookuper  = (*metaDir)(nil)
	_ fs.NodeReaddirer = (*metaDir)(nil)
	_ fs.NodeGetattrer = (*metaDir)(nil)
)

func (d *metaDir) listing() *listing {
	return d.fsys.snaps.current().dirs[d.key]
}

func (d *metaDir) fillAttr(l *listing, out *fuse.Attr) {
	out.Ino = d.id.stable(syscall.S_IFDIR).Ino
	out.Mode = syscall.S_IFDIR | 0o555
	out.Nlink = 2
	out.Uid, out.Gid = d.fsys.uid, d.fsys.gid
	if l != nil && !l.mtime.IsZero() {
		t := l.mtime
		out.SetTimes(&t, &t, &t)
	}
}

// Getattr reports a read-only directory owned by the mounting user, dated
// by its newest snapshot.
func (d *metaDir) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fillAttr(d.listing(), &out.Attr)
	out.SetTimeout(metaTimeout)
	return 0
}

// Readdir lists the directory as the current view has it.
func (d *metaDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	l := d.listing()
	if l == nil {
		return fs.NewListDirStream(dotEntries(&d.Inode, 0)), 0
	}
	list := dotEntries(&d.Inode, len(l.entries))
	for _, e := range l.entries {
		mode, id := d.childIdent(e)
		list = append(list, fuse.DirEntry{Name: e.name, Mode: mode, Ino: id.stable(mode).Ino})
	}
	return fs.NewListDirStream(list), 0
}

// childIdent returns the type and ident of an entry. A snapshot's directory
// includes the snapshot ID, so that a name reused by another snapshot (the
// old one forgotten) is a new node.
func (d *metaDir) childIdent(e metaEntry) (uint32, ident) {
	switch {
	case e.sn != nil:
		return syscall.S_IFDIR, d.id.child(e.name, e.sn.ID[:])
	case e.link != "":
		return syscall.S_IFLNK, d.id.child(e.name, nil)
	}
	return syscall.S_IFDIR, d.id.child(e.name, nil)
}

// Lookup finds an entry in the current view.
func (d *metaDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	l := d.listing()
	if l == nil {
		return nil, syscall.ENOENT
	}
	e, ok := l.lookup(name)
	if !ok {
		return nil, syscall.ENOENT
	}
	mode, id := d.childIdent(e)
	var ops fs.InodeEmbedder
	switch {
	case e.sn != nil:
		sd := newSnapshotDir(d.fsys, e.sn, id)
		sd.fillAttr(&out.Attr)
		ops = sd
		out.SetEntryTimeout(metaTimeout)
		out.SetAttrTimeout(snapshotTimeout)
	case mode == syscall.S_IFLNK:
		ln := &latestLink{fsys: d.fsys, dirKey: d.key, id: id}
		ln.fillAttr(l, e.link, &out.Attr)
		ops = ln
		out.SetEntryTimeout(metaTimeout)
		out.SetAttrTimeout(metaTimeout)
	default:
		sub := &metaDir{fsys: d.fsys, key: e.dir, id: id}
		sub.fillAttr(d.fsys.snaps.current().dirs[e.dir], &out.Attr)
		ops = sub
		out.SetEntryTimeout(metaTimeout)
		out.SetAttrTimeout(metaTimeout)
	}
	return d.NewInode(ctx, ops, id.stable(mode)), 0
}

// latestLink is the "latest" symlink of a directory of snapshots. Its
// target is read from the current view each time, so it moves on when a
// new snapshot appears.
type latestLink struct {
	fs.Inode
	fsys   *FS
	dirKey string
	id     ident
}

var (
	_ fs.NodeReadlinker = (*latestLink)(nil)
	_ fs.NodeGetattrer  = (*latestLink)(nil)
)

// current returns the directory's listing in the current view and the link's
// target in it ("" if there is none).
func (ln *latestLink) current() (*listing, string) {
	l := ln.fsys.snaps.current().dirs[ln.dirKey]
	if l == nil {
		return nil, ""
	}
	e, _ := l.lookup(latestName)
	return l, e.link
}

// fillAttr reports a symlink dated by the snapshot it points at.
func (ln *latestLink) fillAttr(l *listing, target string, out *fuse.Attr) {
	out.Ino = ln.id.stable(syscall.S_IFLNK).Ino
	out.Mode = syscall.S_IFLNK | 0o777
	out.Size = uint64(len(target))
	out.Nlink = 1
	out.Uid, out.Gid = ln.fsys.uid, ln.fsys.gid
	if l != nil && !l.mtime.IsZero() {
		t := l.mtime
		out.SetTimes(&t, &t, &t)
	}
}

// Readlink returns the name of the newest snapshot.
func (ln *latestLink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	_, t := ln.current()
	if t == "" {
		return nil, syscall.ENOENT
	}
	return []byte(t), 0
}

// Getattr reports a symlink whose size is its current target's length.
func (ln *latestLink) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	l, t := ln.current()
	ln.fillAttr(l, t, &out.Attr)
	out.SetTimeout(metaTimeout)
	return 0
}

// dotEntries starts a directory listing with "." and "..", as on a disk;
// go-fuse answers their lookups itself.
func dotEntries(dir *fs.Inode, more int) []fuse.DirEntry {
	parent := uint64(fuse.FUSE_ROOT_ID)
	if _, p := dir.Parent(); p != nil {
		parent = p.StableAttr().Ino
	}
	list := make([]fuse.DirEntry, 0, 2+more)
	return append(list,
		fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: dir.StableAttr().Ino},
		fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: parent})
}
