package main

import (
	"bufio"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"snap/snapshot"
)

func lsCmd(g *globals) *cobra.Command {
	var f snapshot.Filter
	var recursive, long bool
	c := &cobra.Command{
		Use:   "ls SNAPSHOT [PATH]",
		Short: "List the files in a snapshot",
		Long: `List the directory PATH of a snapshot (default: its root, which holds one
entry per backed-up path, named by its last element), or the file PATH.
Paths are printed in full, as 'snap dump' and 'snap find' take and print them.

Names that are not valid UTF-8 or hold control characters (a newline, a
terminal escape) are printed Go-quoted ("bad-\xff"), and only those. With
--json, one object per line: first the snapshot, then one per node; when a
path, name or link target is not valid UTF-8, the node has "escaped": true and
those three strings are Go-quoted without the enclosing quotes (so that no byte
is lost): undo it with strconv.Unquote("\"" + s + "\"").`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, release, err := g.openRead(ctx, "ls")
			if err != nil {
				return err
			}
			defer release()
			sn, err := snapshot.Find(ctx, r, args[0], f)
			if err != nil {
				return err
			}
			p := "/"
			if len(args) == 2 {
				p = path.Clean("/" + args[1])
			}
			n, err := snapshot.FindNode(ctx, r, sn.Tree, p)
			if err != nil {
				return fmt.Errorf("snapshot %s: %w; list a directory with 'snap ls %s DIR'", sn.ID.Short(), err, sn.ID.Short())
			}
			if err := g.useNames(r, sn); err != nil {
				return err
			}
			out := bufio.NewWriterSize(g.stdout, 64<<10)
			if g.json {
				if err := printJSON(out, snapshotLineJSON{MessageType: "snapshot", ID: sn.ID.String(), ShortID: sn.ID.Short(), Snapshot: sn}); err != nil {
					return err
				}
			}
			show := func(p string, n *snapshot.Node) error {
				if g.json {
					return printJSON(out, newNodeJSON("node", p, n))
				}
				if long {
					_, err := fmt.Fprintln(out, longLine(g.shown(p), n))
					return err
				}
				_, err := fmt.Fprintln(out, g.shown(p))
				return err
			}
			if n.Type != snapshot.TypeDir {
				err = show(p, n)
			} else {
				err = snapshot.Walk(ctx, r, n.Subtree, p, func(p string, n *snapshot.Node) error {
					if err := show(p, n); err != nil {
						return err
					}
					if n.Type == snapshot.TypeDir && !recursive {
						return snapshot.ErrSkipDir
					}
					return nil
				})
			}
			if err != nil {
				return fmt.Errorf("ls %s in snapshot %s: %w", displayPath(p), sn.ID.Short(), err)
			}
			return out.Flush()
		},
	}
	c.Flags().BoolVarP(&recursive, "recursive", "R", false, "list everything below PATH, not only its entries")
	c.Flags().BoolVarP(&long, "long", "l", false, "long format: mode, user, group, size, mtime, path, symlink target")
	addFilterFlags(c, &f)
	return c
}

// snapshotLineJSON is the first line of ls --json.
type snapshotLineJSON struct {
	MessageType string `json:"message_type"`
	ID          string `json:"id"`
	ShortID     string `json:"short_id"`
	*snapshot.Snapshot
}

// nodeJSON is a node as ls --json and find --json print it.
type nodeJSON struct {
	MessageType string    `json:"message_type,omitempty"`
	Path        string    `json:"path"`
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Mode        uint32    `json:"mode"` // permission bits plus setuid, setgid, sticky
	Permissions string    `json:"permissions"`
	UID         uint32    `json:"uid"`
	GID         uint32    `json:"gid"`
	User        string    `json:"user,omitempty"`
	Group       string    `json:"group,omitempty"`
	Size        uint64    `json:"size"`
	MTime       time.Time `json:"mtime"`
	ATime       time.Time `json:"atime,omitzero"`
	CTime       time.Time `json:"ctime,omitzero"`
	Inode       uint64    `json:"inode"`
	Links       uint64    `json:"links"`
	LinkTarget  string    `json:"linktarget,omitempty"`
	Rdev        uint64    `json:"rdev,omitempty"`
	// Escaped says Path, Name and LinkTarget are Go-quoted (without the
	// enclosing quotes) because one of them is not valid UTF-8, which a JSON
	// string cannot carry: encoding/json would replace the bytes with U+FFFD.
	Escaped bool `json:"escaped,omitempty"`
}

func newNodeJSON(messageType, p string, n *snapshot.Node) nodeJSON {
	j := nodeJSON{
		MessageType: messageType, Path: p, Name: n.Name, Type: n.Type.String(),
		Mode: n.Mode, Permissions: modeString(n), UID: n.UID, GID: n.GID, User: n.User, Group: n.Group,
		Size: n.Size, MTime: n.MTime, ATime: n.ATime, CTime: n.CTime, Inode: n.Inode, Links: n.Links,
		LinkTarget: n.LinkTarget, Rdev: n.Rdev,
	}
	if !utf8.ValidString(p) || !utf8.ValidString(n.LinkTarget) {
		j.Escaped = true
		j.Path, j.Name, j.LinkTarget = escapeString(p), escapeString(n.Name), escapeString(n.LinkTarget)
	}
	return j
}

// escapeString is strconv.Quote without the enclosing quotes.
func escapeString(s string) string {
	if s == "" {
		return ""
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// displayPath returns p as it is if it prints safely on a terminal, and
// Go-quoted if it is not valid UTF-8 or holds control characters: a newline
// would split one entry into two lines, an escape sequence would reach the
// terminal.
func displayPath(p string) string {
	if utf8.ValidString(p) && strings.IndexFunc(p, unicode.IsControl) < 0 {
		return p
	}
	return strconv.Quote(p)
}

// longLine formats a node like one line of ls -l, with the full path as it
// is to be shown.
func longLine(shown string, n *snapshot.Node) string {
	size := strconv.FormatUint(n.Size, 10)
	if n.Type == snapshot.TypeCharDev || n.Type == snapshot.TypeBlockDev {
		size = fmt.Sprintf("%d, %d", unix.Major(n.Rdev), unix.Minor(n.Rdev))
	}
	line := fmt.Sprintf("%s %-8s %-8s %10s %s %s", modeString(n), userName(n), groupName(n), size,
		n.MTime.Local().Format("2006-01-02 15:04"), shown)
	if n.Type == snapshot.TypeSymlink {
		line += " -> " + displayPath(n.LinkTarget)
	}
	return line
}

func userName(n *snapshot.Node) string {
	if n.User != "" {
		return n.User
	}
	return strconv.FormatUint(uint64(n.UID), 10)
}

func groupName(n *snapshot.Node) string {
	if n.Group != "" {
		return n.Group
	}
	return strconv.FormatUint(uint64(n.GID), 10)
}

// modeString returns the mode as ls -l prints it, e.g. -rw-r--r--, drwxrwxrwt.
func modeString(n *snapshot.Node) string {
	var b [10]byte
	const types = "?-dlcbps" // indexed by NodeType
	b[0] = '?'
	if int(n.Type) < len(types) {
		b[0] = types[n.Type]
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		b[1+i] = '-'
		if n.Mode&(1<<(8-i)) != 0 {
			b[1+i] = rwx[i]
		}
	}
	// setuid, setgid and sticky replace the x of their class: lower case
	// when x is set too, upper case when it is not.
	special := func(bit uint32, pos int, c byte) {
		if n.Mode&bit == 0 {
			return
		}
		if b[pos] == '-' {
			c -= 'a' - 'A'
		}
		b[pos] = c
	}
	special(0o4000, 3, 's')
	special(0o2000, 6, 's')
	special(0o1000, 9, 't')
	return string(b[:])
}
