package snapshot

import (
	"io/fs"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// nodeFromInfo fills a node from lstat data.
func nodeFromInfo(name string, fi fs.FileInfo, ids *idNames) Node {
	n := Node{Name: name, MTime: fi.ModTime()}
	m := fi.Mode()
	switch {
	case m.IsRegular():
		n.Type = TypeFile
		n.Size = uint64(fi.Size())
	case m.IsDir():
		n.Type = TypeDir
	case m&fs.ModeSymlink != 0:
		n.Type = TypeSymlink
	case m&fs.ModeCharDevice != 0:
		n.Type = TypeCharDev
	case m&fs.ModeDevice != 0:
		n.Type = TypeBlockDev
	case m&fs.ModeNamedPipe != 0:
		n.Type = TypeFIFO
	case m&fs.ModeSocket != 0:
		n.Type = TypeSocket
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		n.Mode = st.Mode & 0o7777
		n.UID, n.GID = st.Uid, st.Gid
		n.User, n.Group = ids.user(st.Uid), ids.group(st.Gid)
		n.MTime = time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
		n.ATime = time.Unix(st.Atim.Sec, st.Atim.Nsec)
		n.CTime = time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
		n.Inode, n.Device, n.Links = st.Ino, st.Dev, uint64(st.Nlink)
		if n.Type == TypeDir {
			// Listing a directory moves its atime, so recording it would make
			// every backup store new trees for unchanged directories.
			n.ATime = time.Time{}
		}
		if n.Type == TypeCharDev || n.Type == TypeBlockDev {
			n.Rdev = st.Rdev
		}
	} else {
		n.Mode = uint32(m.Perm())
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
