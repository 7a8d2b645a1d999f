package main

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// profile sets the byte budget of each kind of content in a corpus.
type profile struct {
	text  int64 // many small text and source files
	media int64 // incompressible photo-like files of 100 KiB–2 MiB
	vm    int64 // one VM-image-like file
	db    int64 // one database-like file
	log   int64 // one compressible log file
}

// profiles are the corpus sizes; the split roughly follows a developer's home
// directory, where a few big files hold about half the bytes.
var profiles = map[string]profile{
	"tiny":  {text: 8 << 20, media: 3 << 20, vm: 4 << 20, db: 3 << 20, log: 2 << 20},
	"small": {text: 80 << 20, media: 30 << 20, vm: 45 << 20, db: 25 << 20, log: 20 << 20},
	"large": {text: 800 << 20, media: 300 << 20, vm: 450 << 20, db: 250 << 20, log: 200 << 20},
}

// Fixed places of the big files. mutate finds them by extension, not by
// path, so a renamed directory does not hide them.
const (
	vmPath  = "VMs/devbox/disk.img"
	dbPath  = ".local/share/notes-app/store.db"
	logPath = "logs/sync-daemon.log"
)

// The generated mtimes lie in [epoch, epoch+span): long enough ago that
// mutate's "today" never collides with them.
var (
	epoch = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	span  = int64(2 * 365 * 24 * 3600)
)

const (
	maxDepth       = 6
	avgTextFile    = 8 << 10 // bytes; sets how many small files the budget buys
	avgDirFiles    = 18      // files per directory on average (5–40 entries)
	textSizeSigma  = 1.3     // spread of the log-normal size distribution
	hardLinkShare  = 0.005
	symlinkShare   = 0.005
	duplicateShare = 0.03
)

// topDirs are the first level of the home directory, each with the kind of
// files it mostly holds.
var topDirs = []struct{ name, flavor string }{
	{"Documents", "docs"}, {"src", "code"}, {"projects", "code"}, {".config", "config"},
	{"Downloads", "mixed"}, {"notes", "docs"}, {"work", "mixed"}, {".local", "config"},
}

var flavorExts = map[string][]string{
	"docs":   {".md", ".txt", ".txt", ".md", ".csv", ".html", ".tex"},
	"code":   {".go", ".go", ".py", ".c", ".h", ".js", ".ts", ".sh", ".json", ".md", ".yaml", ".rs"},
	"config": {".conf", ".json", ".yaml", ".ini", ".toml", ".cfg", ".xml"},
	"mixed":  {".txt", ".md", ".csv", ".json", ".py", ".go", ".html", ".log", ".yaml"},
}

// textExts are the extensions mutate may edit as text.
var textExts = map[string]bool{}

func init() {
	for _, exts := range flavorExts {
		for _, e := range exts {
			textExts[e] = true
		}
	}
}

type genDir struct {
	rel    string
	depth  int
	flavor string
	names  map[string]bool // entries already used, to keep names unique
}

type generator struct {
	r     *rand.Rand
	tg    *textGen
	root  string
	dirs  []*genDir
	files []string // regular files created, relative; candidates for links/copies
	bytes int64
}

// newRand returns the PCG stream for seed; stream separates gen from mutate
// so the same seed does not replay the same numbers in both.
func newRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream))
}

// Generate writes the corpus of the named size into dir, which must be
// missing or empty. The result depends only on size and seed.
func Generate(dir, size string, seed uint64) error {
	p, ok := profiles[size]
	if !ok {
		return fmt.Errorf("unknown size %q (tiny, small, large)", size)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return err
	} else if len(ents) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	}
	r := newRand(seed, 1)
	g := &generator{r: r, tg: newTextGen(r), root: dir}
	if err := g.skeleton(p); err != nil {
		return err
	}
	steps := []func(profile) error{g.textFiles, g.mediaFiles, g.bigFiles, g.duplicates, g.links}
	for _, step := range steps {
		if err := step(p); err != nil {
			return err
		}
	}
	return g.dirTimes()
}

// skeleton creates the directory tree breadth first, so that when the
// directory budget runs out the tree is balanced rather than one deep branch.
func (g *generator) skeleton(p profile) error {
	target := int(p.text/avgTextFile/avgDirFiles) + len(topDirs)
	root := &genDir{rel: ".", names: map[string]bool{}}
	g.dirs = append(g.dirs, root)
	queue := []*genDir{}
	for _, t := range topDirs {
		d := &genDir{rel: t.name, depth: 1, flavor: t.flavor, names: map[string]bool{}}
		root.names[t.name] = true
		g.dirs = append(g.dirs, d)
		queue = append(queue, d)
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if d.depth >= maxDepth || len(g.dirs) >= target {
			continue
		}
		n := 1 + g.r.IntN(6)
		for i := 0; i < n && len(g.dirs) < target; i++ {
			name := g.uniqueName(d, g.dirName(), "")
			sub := &genDir{rel: filepath.Join(d.rel, name), depth: d.depth + 1, flavor: d.flavor, names: map[string]bool{}}
			// Some subdirectories switch flavor, as home directories mix things.
			if g.r.IntN(8) == 0 {
				sub.flavor = topDirs[g.r.IntN(len(topDirs))].flavor
			}
			g.dirs = append(g.dirs, sub)
			queue = append(queue, sub)
		}
	}
	for _, d := range g.dirs {
		if err := os.MkdirAll(filepath.Join(g.root, d.rel), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (g *generator) dirName() string {
	switch g.r.IntN(5) {
	case 0:
		return g.tg.nameWord() + "-" + g.tg.nameWord()
	case 1:
		return fmt.Sprintf("%s%d", g.tg.nameWord(), 2015+g.r.IntN(11))
	default:
		return g.tg.nameWord()
	}
}

// uniqueName returns base+ext, or a numbered variant if d already has it.
func (g *generator) uniqueName(d *genDir, base, ext string) string {
	name := base + ext
	for i := 2; d.names[name]; i++ {
		name = fmt.Sprintf("%s-%d%s", base, i, ext)
	}
	d.names[name] = true
	return name
}

// mtime returns a deterministic modification time inside the epoch span.
func (g *generator) mtime() time.Time {
	return time.Unix(epoch+g.r.Int64N(span), g.r.Int64N(1e9))
}

func (g *generator) writeFile(rel string, data []byte, mode os.FileMode) error {
	path := filepath.Join(g.root, rel)
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	// WriteFile's mode passes through the umask; set it exactly so the
	// tree does not depend on the caller's environment.
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	g.bytes += int64(len(data))
	g.files = append(g.files, rel)
	t := g.mtime()
	return os.Chtimes(path, t, t)
}

// textFiles fills the directories with 5–40 entries each, drawing sizes
// from a log-normal distribution whose mean spends the text budget.
func (g *generator) textFiles(p profile) error {
	slots := make([]int, len(g.dirs))
	total := 0
	for i, d := range g.dirs {
		entries := 5 + g.r.IntN(36)
		slots[i] = max(1, entries-len(d.names))
		if d.rel == "." {
			slots[i] = 0 // the top level holds only the fixed directories and dotfiles below
		}
		total += slots[i]
	}
	mean := float64(p.text) / float64(total)
	mu := math.Log(mean) - textSizeSigma*textSizeSigma/2
	for i, d := range g.dirs {
		exts := flavorExts[d.flavor]
		for j := 0; j < slots[i]; j++ {
			ext := exts[g.r.IntN(len(exts))]
			size := int(math.Exp(mu + textSizeSigma*g.r.NormFloat64()))
			size = max(16, min(size, int(64*mean)))
			name := g.uniqueName(d, g.tg.nameWord()+"_"+g.tg.nameWord(), ext)
			mode := os.FileMode(0o644)
			if ext == ".sh" || (ext == ".py" && g.r.IntN(3) == 0) {
				mode = 0o755
			}
			if err := g.writeFile(filepath.Join(d.rel, name), g.tg.text(kindOf(ext), size), mode); err != nil {
				return err
			}
		}
	}
	// Dotfiles at the top level, as in every home directory.
	root := g.dirs[0]
	for _, name := range []string{".bashrc", ".profile", ".gitconfig", ".vimrc"} {
		root.names[name] = true
		if err := g.writeFile(name, g.tg.text("config", 200+g.r.IntN(4000)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// mediaFiles adds photo-like files of random (incompressible) bytes.
func (g *generator) mediaFiles(p profile) error {
	left := p.media
	for i := 1; left > 0; i++ {
		size := min(left, int64(100<<10+g.r.IntN(2<<20-100<<10)))
		left -= size
		d := g.dirs[1+g.r.IntN(len(g.dirs)-1)]
		buf := make([]byte, size)
		fillRandom(g.r, buf)
		copy(buf, "\xff\xd8\xff\xe0\x00\x10JFIF\x00")
		name := g.uniqueName(d, fmt.Sprintf("IMG_%04d", i), ".jpg")
		if err := g.writeFile(filepath.Join(d.rel, name), buf, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// bigFiles writes the VM image, the database and the log, streaming them so
// memory stays small for the large corpus.
func (g *generator) bigFiles(p profile) error {
	write := func(rel string, size int64, fill func(w *bufio.Writer, size int64) error) error {
		path := filepath.Join(g.root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		err = fill(w, size)
		if err == nil {
			err = w.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		g.bytes += size
		t := g.mtime()
		return os.Chtimes(path, t, t)
	}
	if err := write(vmPath, p.vm, g.fillVM); err != nil {
		return err
	}
	if err := write(dbPath, p.db, g.fillDB); err != nil {
		return err
	}
	return write(logPath, p.log, g.fillLog)
}

// fillVM writes extents of 64 KiB–2 MiB, a quarter of them zero, like a
// disk image with unused space.
func (g *generator) fillVM(w *bufio.Writer, size int64) error {
	buf := make([]byte, 2<<20)
	for left := size; left > 0; {
		n := min(left, int64(16+g.r.IntN(497))*4096)
		b := buf[:n]
		if g.r.IntN(4) == 0 {
			clear(b)
		} else {
			fillRandom(g.r, b)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

// fillDB writes 4 KiB pages; a fifth of them repeat an earlier page, which
// databases do with copied or rarely changed rows.
func (g *generator) fillDB(w *bufio.Writer, size int64) error {
	pages := size / dbPageSize
	var recent [][]byte
	page := make([]byte, dbPageSize)
	for i := int64(0); i < pages; i++ {
		if len(recent) > 0 && g.r.IntN(5) == 0 {
			copy(page, recent[g.r.IntN(len(recent))])
		} else {
			g.tg.dbPage(page, uint32(i))
			if len(recent) < 64 {
				recent = append(recent, append([]byte(nil), page...))
			} else {
				copy(recent[g.r.IntN(64)], page)
			}
		}
		if _, err := w.Write(page); err != nil {
			return err
		}
	}
	// size is a multiple of dbPageSize in every profile; pad otherwise.
	_, err := w.Write(make([]byte, size-pages*dbPageSize))
	return err
}

func (g *generator) fillLog(w *bufio.Writer, size int64) error {
	t := epoch
	var n int64
	for n < size {
		t += int64(g.r.IntN(30))
		line := g.tg.logLine(t, g.r.IntN(1000))
		line = line[:min(int64(len(line)), size-n)]
		if _, err := w.WriteString(line); err != nil {
			return err
		}
		n += int64(len(line))
	}
	return nil
}

// duplicates copies some files to other directories (same content, new
// inode): the "report-final-v2 (copy).txt" every home directory has.
func (g *generator) duplicates(profile) error {
	n := max(3, int(float64(len(g.files))*duplicateShare))
	for i := 0; i < n; i++ {
		src := g.files[g.r.IntN(len(g.files))]
		data, err := os.ReadFile(filepath.Join(g.root, src))
		if err != nil {
			return err
		}
		d := g.dirs[1+g.r.IntN(len(g.dirs)-1)]
		ext := filepath.Ext(src)
		base := strings.TrimSuffix(filepath.Base(src), ext)
		name := g.uniqueName(d, base+" (copy)", ext)
		if err := g.writeFile(filepath.Join(d.rel, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// links adds hard links and symlinks (relative ones to files and
// directories, and one dangling), which backup tools must preserve.
func (g *generator) links(profile) error {
	candidates := g.files // before links are added
	nHard := max(3, int(float64(len(candidates))*hardLinkShare))
	for i := 0; i < nHard; i++ {
		src := candidates[g.r.IntN(len(candidates))]
		d := g.dirs[1+g.r.IntN(len(g.dirs)-1)]
		name := g.uniqueName(d, filepath.Base(src), "")
		if err := os.Link(filepath.Join(g.root, src), filepath.Join(g.root, d.rel, name)); err != nil {
			return err
		}
	}
	nSym := max(3, int(float64(len(candidates))*symlinkShare))
	for i := 0; i < nSym+3; i++ {
		var target string
		switch {
		case i == nSym:
			target = "no-such-file.txt" // dangling
		case i > nSym:
			target = g.dirs[1+g.r.IntN(len(g.dirs)-1)].rel
		default:
			target = candidates[g.r.IntN(len(candidates))]
		}
		d := g.dirs[1+g.r.IntN(len(g.dirs)-1)]
		rel, err := filepath.Rel(d.rel, target)
		if err != nil {
			return err
		}
		name := g.uniqueName(d, "link-"+filepath.Base(target), "")
		path := filepath.Join(g.root, d.rel, name)
		if err := os.Symlink(rel, path); err != nil {
			return err
		}
		if err := lchtimes(path, g.mtime()); err != nil {
			return err
		}
	}
	return nil
}

// dirTimes sets directory mtimes last, deepest first, because creating
// entries changed them.
func (g *generator) dirTimes() error {
	var dirs []string
	err := filepath.WalkDir(g.root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return err
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		t := g.mtime()
		if err := os.Chtimes(dirs[i], t, t); err != nil {
			return err
		}
	}
	return nil
}

// unixUTC formats a Unix time the way logs do.
func unixUTC(sec int64) string {
	return time.Unix(sec, 0).UTC().Format("2006-01-02T15:04:05")
}

// errUsage marks command-line errors, which print the usage text.
var errUsage = errors.New("usage")
