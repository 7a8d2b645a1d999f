package snapshot

import (
	"os/user"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// nodeFromStat fills a node from lstat data.
func nodeFromStat(name string, st *unix.Stat_t, ids *idNames) Node {
	n := Node{
		Name:  name,
		Mode:  st.Mode & 0o7777,
		UID:   st.Uid,
		GID:   st.Gid,
		User:  ids.user(st.Uid),
		Group: ids.group(st.Gid),
		MTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		ATime: time.Unix(st.Atim.Sec, st.Atim.Nsec),
		CTime: time.Unix(st.Ctim.Sec, st.Ctim.Nsec),
		Inode: st.Ino, Device: st.Dev, Links: uint64(st.Nlink),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type = TypeFile
		n.Size = uint64(st.Size)
	case unix.S_IFDIR:
		n.Type = TypeDir
		// Listing a directory moves its atime, so recording it would make
		// every backup store new trees for unchanged directories.
		n.ATime = time.Time{}
	case unix.S_IFLNK:
		n.Type = TypeSymlink
		// Reading the link (as every backup must) moves its atime.
		n.ATime = time.Time{}
	case unix.S_IFCHR:
		n.Type, n.Rdev = TypeCharDev, st.Rdev
	case unix.S_IFBLK:
		n.Type, n.Rdev = TypeBlockDev, st.Rdev
	case unix.S_IFIFO:
		n.Type = TypeFIFO
	case unix.S_IFSOCK:
		n.Type = TypeSocket
	}
	return n
}

// idNames caches uid and gid to name lookups for one run.
type idNames struct {
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
}

func newIDNames() *idNames {
	return &idNames{users: map[uint32]string{}, groups: map[uint32]string{}}
}

func (c *idNames) user(id uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.users[id]; ok {
		return n
	}
	name := ""
	if u, err := user.LookupId(strconv.FormatUint(uint64(id), 10)); err == nil {
		name = u.Username
	}
	c.users[id] = name
	return name
}

func (c *idNames) group(id uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.groups[id]; ok {
		return n
	}
	name := ""
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(id), 10)); err == nil {
		name = g.Name
	}
	c.groups[id] = name
	return name
}

// nameIDs resolves user and group names to IDs on restore, caching answers.
type nameIDs struct {
	mu     sync.Mutex
	users  map[string]int // -1: no such user here
	groups map[string]int
}

func newNameIDs() *nameIDs { return &nameIDs{users: map[string]int{}, groups: map[string]int{}} }

// owner returns the uid and gid to restore: by name when the name exists on
// this system, else the recorded numbers.
func (c *nameIDs) owner(n *Node) (uint32, uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	uid, gid := n.UID, n.GID
	if n.User != "" {
		id, ok := c.users[n.User]
		if !ok {
			id = -1
			if u, err := user.Lookup(n.User); err == nil {
				if v, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
					id = int(v)
				}
			}
			c.users[n.User] = id
		}
		if id >= 0 {
			uid = uint32(id)
		}
	}
	if n.Group != "" {
		id, ok := c.groups[n.Group]
		if !ok {
			id = -1
			if g, err := user.LookupGroup(n.Group); err == nil {
				if v, err := strconv.ParseUint(g.Gid, 10, 32); err == nil {
					id = int(v)
				}
			}
			c.groups[n.Group] = id
		}
		if id >= 0 {
			gid = uint32(id)
		}
	}
	return uid, gid
}
