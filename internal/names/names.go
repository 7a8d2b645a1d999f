// Package names keeps the local map from eCryptfs lower (encrypted) names to
// cleartext names, so listings and dry-runs of a ciphertext backup can be
// read by a person.
//
// The map lives only in the local cache directory, never in a repository:
// cleartext names must not leave the machine. It is learnt by joining the
// lower tree with the mounted cleartext view on inode numbers (eCryptfs gives
// an upper file the inode number of its lower file) and is kept per name
// component: eCryptfs encrypts a name the same way in every directory. Start
// with Load, Learn and Translate; ClearInodes walks a cleartext view and
// LowerMount finds it from /proc/mounts.
package names

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"snap/internal/ecryptfs"
	"snap/internal/fsdir"
)

// Map translates encrypted name components to cleartext ones.
type Map struct {
	path  string
	names map[string]string
	dirty bool
}

// FileName is the name of the map file in a repository's cache directory.
const FileName = "ecryptfs-names.json"

// Load reads the map at path; a missing file gives an empty map.
func Load(path string) (*Map, error) {
	m := &Map{path: path, names: map[string]string{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read name map: %w", err)
	}
	if err := json.Unmarshal(data, &m.names); err != nil {
		return nil, fmt.Errorf("name map %s is damaged (%v); delete it, the next 'snap create --names-from' rebuilds it", path, err)
	}
	return m, nil
}

// Len is the number of known names.
func (m *Map) Len() int { return len(m.names) }

// Learn pairs the components of a lower path with those of the cleartext
// path of the same file (both relative, slash-separated).
func (m *Map) Learn(lower, clear string) {
	lc := strings.Split(strings.Trim(lower, "/"), "/")
	cc := strings.Split(strings.Trim(clear, "/"), "/")
	if len(lc) != len(cc) {
		return
	}
	for i := range lc {
		if strings.HasPrefix(lc[i], ecryptfs.NamePrefix) && m.names[lc[i]] != cc[i] {
			m.names[lc[i]] = cc[i]
			m.dirty = true
		}
	}
}

// Translate replaces every known encrypted component of p. ok is false when
// some encrypted component is unknown.
func (m *Map) Translate(p string) (string, bool) {
	if m == nil || len(m.names) == 0 {
		return p, !strings.Contains(p, ecryptfs.NamePrefix)
	}
	parts := strings.Split(p, "/")
	ok := true
	for i, c := range parts {
		if clear, known := m.names[c]; known {
			parts[i] = clear
		} else if strings.HasPrefix(c, ecryptfs.NamePrefix) {
			ok = false
		}
	}
	return strings.Join(parts, "/"), ok
}

// Find returns the encrypted names whose cleartext name satisfies match.
func (m *Map) Find(match func(clear string) bool) []string {
	var out []string
	for enc, clear := range m.names {
		if match(clear) {
			out = append(out, enc)
		}
	}
	return out
}

// Save writes the map if it changed: mode 0600 in a 0700 directory, replaced
// atomically.
func (m *Map) Save() error {
	if !m.dirty {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(m.path), 0o700); err != nil {
		return fmt.Errorf("save name map: %w", err)
	}
	data, err := json.Marshal(m.names)
	if err != nil {
		return err
	}
	tmp := m.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("save name map: %w", err)
	}
	if err := os.Rename(tmp, m.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save name map: %w", err)
	}
	m.dirty = false
	return nil
}

// ClearInodes walks the cleartext view at root and returns, for every entry,
// its inode number and its path relative to root.
func ClearInodes(root string) (map[uint64]string, error) {
	d, err := fsdir.Open(root)
	if err != nil {
		return nil, fmt.Errorf("read cleartext view %s: %w", root, err)
	}
	defer d.Close()
	out := map[uint64]string{}
	var walk func(d *fsdir.Dir, rel string) error
	walk = func(d *fsdir.Dir, rel string) error {
		names, err := d.Names()
		if err != nil {
			return err
		}
		for _, n := range names {
			st, err := d.Lstat(n)
			if err != nil {
				continue // vanished
			}
			p := rel + "/" + n
			out[st.Ino] = p
			if st.Mode&0o170000 == 0o040000 {
				sub, err := d.OpenDir(n)
				if err != nil {
					continue // unreadable: those names stay unknown
				}
				err = walk(sub, p)
				sub.Close()
				if err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, walk(d, "")
}

// LowerMount returns the mount point of the eCryptfs mount whose lower
// directory is dir, from a /proc/mounts-format file, or "" if there is none.
func LowerMount(mounts, dir string) (string, error) {
	f, err := os.Open(mounts)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 3 && fields[2] == "ecryptfs" && filepath.Clean(unescapeMount(fields[0])) == filepath.Clean(dir) {
			return unescapeMount(fields[1]), nil
		}
	}
	return "", s.Err()
}

// EcryptfsMounts returns the mount points of all eCryptfs (cleartext) views.
func EcryptfsMounts(mounts string) ([]string, error) {
	f, err := os.Open(mounts)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 3 && fields[2] == "ecryptfs" {
			out = append(out, unescapeMount(fields[1]))
		}
	}
	return out, s.Err()
}

// unescapeMount undoes the octal escapes of /proc/mounts (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
