package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Shares of the small files that one day of edits touches.
const (
	rewriteShare = 0.01
	deleteShare  = 0.002
	newShare     = 0.003
	bigMin       = 1 << 20 // files at least this big with a big-file extension get page writes
)

// treeFile is a regular file found by scan.
type treeFile struct {
	rel  string
	size int64
	mode fs.FileMode
}

// tree is a sorted listing of a corpus; every random choice of mutate indexes
// into it, so the same tree and seed give the same edits.
type tree struct {
	files    []treeFile
	dirs     []string // relative, excluding the root
	maxMtime time.Time
}

func scan(root string) (*tree, error) {
	t := &tree{}
	// WalkDir reads each directory in lexical order, which makes the
	// listing independent of the file system's order.
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.ModTime().After(t.maxMtime) {
			t.maxMtime = info.ModTime()
		}
		rel, _ := filepath.Rel(root, path)
		switch {
		case d.IsDir() && rel != ".":
			t.dirs = append(t.dirs, rel)
		case d.Type().IsRegular():
			t.files = append(t.files, treeFile{rel: rel, size: info.Size(), mode: info.Mode().Perm()})
		}
		return nil
	})
	return t, err
}

// MutateStats says what one Mutate did.
type MutateStats struct {
	InPlace, ByRename, Deleted, New, Pages int
	Appended                               int64
	RenamedFrom, RenamedTo                 string
}

type mutator struct {
	r       *rand.Rand
	tg      *textGen
	root    string
	t0      int64 // "today": after every mtime in the tree
	touched map[string]bool
	stats   MutateStats
}

// newTime returns an mtime during the simulated day. It is later than every
// mtime in the tree, so tools that compare mtimes (rsync) see each change.
func (m *mutator) newTime() time.Time {
	return time.Unix(m.t0+m.r.Int64N(86400), m.r.Int64N(1e9))
}

// Mutate applies one simulated day of edits to the corpus in dir.
func Mutate(dir string, seed uint64) (MutateStats, error) {
	t, err := scan(dir)
	if err != nil {
		return MutateStats{}, err
	}
	r := newRand(seed, 2)
	m := &mutator{r: r, tg: newTextGen(r), root: dir, touched: map[string]bool{},
		t0: t.maxMtime.Unix() + 60}

	var small, big []treeFile
	for _, f := range t.files {
		ext := filepath.Ext(f.rel)
		switch {
		case f.size >= bigMin && (ext == ".img" || ext == ".db" || ext == ".log"):
			big = append(big, f)
		case textExts[ext]:
			small = append(small, f)
		}
	}
	pick := m.r.Perm(len(small))
	nRewrite := max(1, int(float64(len(small))*rewriteShare))
	nDelete := max(1, int(float64(len(small))*deleteShare))
	nRewrite = min(nRewrite, len(pick))
	nDelete = min(nDelete, len(pick)-nRewrite)
	for _, i := range pick[:nRewrite] {
		if err := m.rewrite(small[i]); err != nil {
			return m.stats, err
		}
	}
	for _, f := range big {
		if err := m.bigFile(f); err != nil {
			return m.stats, err
		}
	}
	for _, i := range pick[nRewrite : nRewrite+nDelete] {
		if err := os.Remove(filepath.Join(dir, small[i].rel)); err != nil {
			return m.stats, err
		}
		m.touched[filepath.Dir(small[i].rel)] = true
		m.stats.Deleted++
	}
	nNew := max(1, int(float64(len(small))*newShare))
	for i := 0; i < nNew; i++ {
		if err := m.newFile(t.dirs); err != nil {
			return m.stats, err
		}
	}
	if err := m.renameDir(t.dirs, big); err != nil {
		return m.stats, err
	}
	return m.stats, m.dirTimes()
}

// rewrite edits some lines of a text file and saves it either in place (as
// most editors configured to keep inodes do) or by writing a new file and
// renaming it over the old one (vim's and many IDEs' default).
func (m *mutator) rewrite(f treeFile) error {
	path := filepath.Join(m.root, f.rel)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	data = m.editText(data, kindOf(filepath.Ext(f.rel)))
	mt := m.newTime()
	if m.r.IntN(2) == 0 {
		m.stats.InPlace++
		if err := os.WriteFile(path, data, f.mode); err != nil {
			return err
		}
		return os.Chtimes(path, mt, mt)
	}
	m.stats.ByRename++
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".swp")
	if err := os.WriteFile(tmp, data, f.mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, f.mode); err != nil {
		return err
	}
	if err := os.Chtimes(tmp, mt, mt); err != nil {
		return err
	}
	m.touched[filepath.Dir(f.rel)] = true
	return os.Rename(tmp, path)
}

// editText replaces, inserts and deletes about one line in twenty, keeping
// the rest: a typical edit that content-defined chunking should dedupe.
func (m *mutator) editText(data []byte, kind string) []byte {
	lines := strings.Split(string(data), "\n")
	edits := 1 + len(lines)/20
	for e := 0; e < edits; e++ {
		i := m.r.IntN(len(lines))
		switch m.r.IntN(4) {
		case 0:
			lines = slices.Insert(lines, i, m.tg.line(kind, 1))
		case 1:
			if len(lines) > 1 {
				lines = slices.Delete(lines, i, i+1)
			}
		default:
			lines[i] = m.tg.line(kind, 1)
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// bigFile writes a few dozen 4 KiB pages in place into the VM image and the
// database, and appends to the log.
func (m *mutator) bigFile(f treeFile) error {
	path := filepath.Join(m.root, f.rel)
	ext := filepath.Ext(f.rel)
	file, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer file.Close()
	switch ext {
	case ".log":
		n := min(max(f.size/100, 64<<10), 4<<20)
		var b bytes.Buffer
		ts := m.t0
		for int64(b.Len()) < n {
			ts += int64(m.r.IntN(30))
			b.WriteString(m.tg.logLine(ts, m.r.IntN(1000)))
		}
		if _, err := file.WriteAt(b.Bytes(), f.size); err != nil {
			return err
		}
		m.stats.Appended += int64(b.Len())
	default:
		pages := f.size / dbPageSize
		page := make([]byte, dbPageSize)
		// Real writes cluster (a database's hot index pages, a guest's
		// journal), so most pages land near a few hot spots.
		var hot [4]int64
		for i := range hot {
			hot[i] = m.r.Int64N(pages)
		}
		n := 24 + m.r.IntN(25)
		for i := 0; i < n; i++ {
			p := m.r.Int64N(pages)
			if m.r.IntN(10) < 7 {
				p = min(max(0, hot[m.r.IntN(len(hot))]+m.r.Int64N(129)-64), pages-1)
			}
			if ext == ".db" {
				m.tg.dbPage(page, uint32(p))
			} else {
				fillRandom(m.r, page)
			}
			if _, err := file.WriteAt(page, p*dbPageSize); err != nil {
				return err
			}
		}
		m.stats.Pages += n
	}
	if err := file.Close(); err != nil {
		return err
	}
	mt := m.newTime()
	return os.Chtimes(path, mt, mt)
}

// newFile creates one new text file in a random directory.
func (m *mutator) newFile(dirs []string) error {
	d := dirs[m.r.IntN(len(dirs))]
	exts := flavorExts["mixed"]
	ext := exts[m.r.IntN(len(exts))]
	base := m.tg.nameWord() + "_" + m.tg.nameWord()
	name := base + ext
	for i := 2; exists(filepath.Join(m.root, d, name)); i++ {
		name = fmt.Sprintf("%s-%d%s", base, i, ext)
	}
	size := int(math.Exp(math.Log(avgTextFile) - textSizeSigma*textSizeSigma/2 + textSizeSigma*m.r.NormFloat64()))
	size = max(16, min(size, 64*avgTextFile))
	path := filepath.Join(m.root, d, name)
	if err := os.WriteFile(path, m.tg.text(kindOf(ext), size), 0o644); err != nil {
		return err
	}
	if err := os.Chmod(path, 0o644); err != nil {
		return err
	}
	mt := m.newTime()
	m.touched[d] = true
	m.stats.New++
	return os.Chtimes(path, mt, mt)
}

// renameDir renames one directory at depth two or more that holds none of
// the big files (renaming those would swamp every other edit of the day).
func (m *mutator) renameDir(dirs []string, big []treeFile) error {
	var cands []string
	for _, d := range dirs {
		if !strings.Contains(d, string(filepath.Separator)) || !exists(filepath.Join(m.root, d)) {
			continue
		}
		holdsBig := false
		for _, f := range big {
			if strings.HasPrefix(f.rel, d+string(filepath.Separator)) {
				holdsBig = true
			}
		}
		if !holdsBig {
			cands = append(cands, d)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	from := cands[m.r.IntN(len(cands))]
	to := from + "-" + m.tg.nameWord()
	for i := 2; exists(filepath.Join(m.root, to)); i++ {
		to = fmt.Sprintf("%s-%d", from, i)
	}
	if err := os.Rename(filepath.Join(m.root, from), filepath.Join(m.root, to)); err != nil {
		return err
	}
	// Directories touched earlier inside the renamed one moved with it.
	moved := map[string]bool{}
	for d := range m.touched {
		if d == from || strings.HasPrefix(d, from+string(filepath.Separator)) {
			d = to + strings.TrimPrefix(d, from)
		}
		moved[d] = true
	}
	moved[filepath.Dir(from)] = true
	m.touched = moved
	m.stats.RenamedFrom, m.stats.RenamedTo = from, to
	return nil
}

// dirTimes gives every directory whose entries changed a deterministic mtime
// of the simulated day, replacing the wall-clock time the kernel set.
func (m *mutator) dirTimes() error {
	dirs := make([]string, 0, len(m.touched))
	for d := range m.touched {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		mt := m.newTime()
		if err := os.Chtimes(filepath.Join(m.root, d), mt, mt); err != nil {
			return err
		}
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// Summary counts a tree: names of regular files, directories, symlinks, and
// bytes with hard-linked files counted once (as du does).
type Summary struct {
	Files, Dirs, Symlinks, HardLinked int
	Bytes                             int64
}

// Summarize walks dir and counts it.
func Summarize(dir string) (Summary, error) {
	var s Summary
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			s.Dirs++
		case d.Type()&fs.ModeSymlink != 0:
			s.Symlinks++
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			s.Files++
			st := info.Sys().(*syscall.Stat_t)
			if st.Nlink > 1 {
				s.HardLinked++
				if seen[st.Ino] {
					return nil
				}
				seen[st.Ino] = true
			}
			s.Bytes += info.Size()
		}
		return nil
	})
	return s, err
}

func (s Summary) String() string {
	return fmt.Sprintf("files=%d dirs=%d symlinks=%d hardlinked=%d bytes=%d (%.1f MiB)",
		s.Files, s.Dirs, s.Symlinks, s.HardLinked, s.Bytes, float64(s.Bytes)/(1<<20))
}
