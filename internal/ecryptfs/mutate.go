package ecryptfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// DaySummary counts the edits Mutate made.
type DaySummary struct {
	PagedFiles    int   // database-like files written in place
	PagesWritten  int   // 4 KiB pages written into them
	Logs          int   // log files appended to
	BytesAppended int64 // appended to them
	Saved         int   // documents saved by rename
}

func (s DaySummary) String() string {
	return fmt.Sprintf("%d pages written in place into %d database-like files, %d bytes appended to %d logs, %d documents saved by rename",
		s.PagesWritten, s.PagedFiles, s.BytesAppended, s.Logs, s.Saved)
}

// Which files get which edits, by cleartext extension.
func isPaged(ext string) bool {
	switch ext {
	case ".db", ".sqlite", ".sqlite3", ".img", ".qcow2", ".vdi", ".vmdk":
		return true
	}
	return false
}

func isDocument(ext string) bool {
	switch ext {
	case ".txt", ".md", ".rst", ".tex", ".json", ".yaml", ".yml", ".ini", ".toml", ".conf", ".cfg",
		".csv", ".html", ".xml", ".go", ".py", ".c", ".h", ".js", ".ts", ".rs", ".java", ".sh":
		return true
	}
	return false
}

// minPagedSize keeps page edits to files big enough to be databases.
const minPagedSize = 16 * ExtentSize

// Mutate applies a day of typical edits to the tree, the way they reach
// the lower files through a mount:
//
//   - 24 to 48 in-place 4 KiB page writes into database-like files (.db,
//     .sqlite, disk images; at least 64 KiB), mostly clustered around one to
//     three hot spots per file: each rewrites one extent and bytes 0–7;
//   - an append of about 1 % (256 B to 1 MiB) to each active log (a .log
//     file in a directory named log or logs, else the largest .log file):
//     the old last extent and the size field change, extents are added;
//   - a few documents (text and source files; one in 200, 3 to 50) get one
//     line replaced and are saved by rename: new key, new inode, every byte
//     new, same lower name.
//
// Edited files get modification times after every mtime in the tree, one
// second apart. The choices depend on the tree's seed, the state the tree
// was opened in and round, so the same tree, seed and round give the same
// edits; the tree must be freshly opened with NewTree for that (files
// created before in the same Tree shift nothing but the stream of keys).
func (t *Tree) Mutate(round uint64) (DaySummary, error) {
	var sum DaySummary
	seed := sha256.Sum256(binary.BigEndian.AppendUint64(append(t.seed[:], "mutate"...), round))
	r := rand.New(rand.NewChaCha8(seed))

	var paged, logs, docs []sizedFile
	var latest time.Time
	entries := make([][2]string, 0, len(t.path))
	for l, c := range t.path {
		entries = append(entries, [2]string{c, l})
	}
	slices.SortFunc(entries, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	for _, e := range entries {
		fi, err := os.Lstat(t.abs(e[1]))
		if err != nil {
			return sum, fmt.Errorf("ecryptfs: mutate: %w", err)
		}
		if fi.ModTime().After(latest) {
			latest = fi.ModTime()
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		ext := strings.ToLower(path.Ext(e[0]))
		switch {
		case isPaged(ext), ext == ".log":
			size, err := t.plainSize(e[0])
			if err != nil {
				return sum, err
			}
			if ext == ".log" {
				logs = append(logs, sizedFile{e[0], size})
			} else if size >= minPagedSize {
				paged = append(paged, sizedFile{e[0], size})
			}
		case isDocument(ext):
			docs = append(docs, sizedFile{clear: e[0]})
		}
	}

	stamp := latest.Truncate(time.Second)
	touch := func(clearRel string) error {
		stamp = stamp.Add(time.Second)
		return t.Chtimes(clearRel, stamp, stamp)
	}

	if len(paged) > 0 {
		hot := make([][]int64, len(paged))
		for i, f := range paged {
			for range 1 + r.IntN(3) {
				hot[i] = append(hot[i], r.Int64N(extentsFor(f.size)))
			}
		}
		touched := make([]bool, len(paged))
		for range 24 + r.IntN(25) {
			i := r.IntN(len(paged))
			pages := extentsFor(paged[i].size)
			pg := r.Int64N(pages)
			if r.IntN(5) < 4 {
				pg = min(max(hot[i][r.IntN(len(hot[i]))]+r.Int64N(17)-8, 0), pages-1)
			}
			if err := t.editPage(paged[i].clear, pg, r); err != nil {
				return sum, err
			}
			touched[i] = true
			sum.PagesWritten++
		}
		for i, f := range paged {
			if touched[i] {
				sum.PagedFiles++
				if err := touch(f.clear); err != nil {
					return sum, err
				}
			}
		}
	}

	for _, f := range activeLogs(logs) {
		n := min(max(f.size/100, 256), 1<<20)
		var b bytes.Buffer
		for int64(b.Len()) < n {
			b.WriteString(logLine(r, stamp))
		}
		if err := t.Append(f.clear, b.Bytes()); err != nil {
			return sum, err
		}
		if err := touch(f.clear); err != nil {
			return sum, err
		}
		sum.Logs++
		sum.BytesAppended += int64(b.Len())
	}

	if len(docs) > 0 {
		k := min(len(docs), min(max(len(docs)/200, 3), 50))
		picks := r.Perm(len(docs))[:k]
		slices.Sort(picks)
		for _, i := range picks {
			data, err := t.ReadFile(docs[i].clear)
			if err != nil {
				return sum, err
			}
			if err := t.SaveByRename(docs[i].clear, replaceLine(data, r)); err != nil {
				return sum, err
			}
			if err := touch(docs[i].clear); err != nil {
				return sum, err
			}
			sum.Saved++
		}
	}
	return sum, nil
}

// sizedFile is a file chosen for an edit and its cleartext size.
type sizedFile struct {
	clear string
	size  int64
}

// activeLogs picks the logs a day appends to: those in a directory named
// log or logs (as ~/.local/share/…/logs, /var/log), else the largest .log
// file. Text files that merely end in .log are left alone, as most are not
// written every day.
func activeLogs(logs []sizedFile) []sizedFile {
	var active []sizedFile
	for _, f := range logs {
		for _, dir := range strings.Split(path.Dir(f.clear), "/") {
			if d := strings.ToLower(dir); d == "log" || d == "logs" {
				active = append(active, f)
				break
			}
		}
	}
	if len(active) > 0 || len(logs) == 0 {
		return active
	}
	largest := logs[0]
	for _, f := range logs[1:] {
		if f.size > largest.size {
			largest = f
		}
	}
	return []sizedFile{largest}
}

// plainSize reads the cleartext size from a file's header.
func (t *Tree) plainSize(clearRel string) (int64, error) {
	lf, err := t.open(clearRel, false)
	if err != nil {
		return 0, err
	}
	defer lf.f.Close()
	return lf.size, nil
}

// editPage changes a run of bytes in one page, as a database updates rows,
// and writes the whole page back.
func (t *Tree) editPage(clearRel string, page int64, r *rand.Rand) error {
	return t.edit(clearRel, func(lf *lowerFile) error {
		b, err := lf.readAt(page*ExtentSize, ExtentSize)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			return nil
		}
		span := min(16+r.IntN(497), len(b))
		start := r.IntN(len(b) - span + 1)
		for i := start; i < start+span; i++ {
			b[i] = byte(r.Uint32())
		}
		return lf.writeAt(page*ExtentSize, b)
	})
}

func logLine(r *rand.Rand, now time.Time) string {
	levels := [...]string{"INFO", "INFO", "INFO", "DEBUG", "WARN"}
	events := [...]string{"synced", "uploaded", "skipped unchanged", "retrying", "checked", "queued"}
	ts := now.Add(time.Duration(r.Int64N(int64(24 * time.Hour)))).UTC()
	return fmt.Sprintf("%s %s sync-daemon[%d]: %s item %d (%d bytes)\n",
		ts.Format(time.RFC3339), levels[r.IntN(len(levels))], 1000+r.IntN(9000),
		events[r.IntN(len(events))], r.IntN(1_000_000), r.IntN(1<<20))
}

// replaceLine replaces one line of a text with a new one.
func replaceLine(data []byte, r *rand.Rand) []byte {
	words := [...]string{"backup", "snapshot", "restore", "encrypted", "home", "daily", "the", "of", "and", "changed", "notes", "draft"}
	var nl strings.Builder
	for i := range 4 + r.IntN(10) {
		if i > 0 {
			nl.WriteByte(' ')
		}
		nl.WriteString(words[r.IntN(len(words))])
	}
	nl.WriteByte('\n')
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(data) == 0 {
		return []byte(nl.String())
	}
	i := r.IntN(len(lines))
	var out bytes.Buffer
	for j, l := range lines {
		if j == i {
			out.WriteString(nl.String())
			continue
		}
		out.Write(l)
	}
	return out.Bytes()
}
