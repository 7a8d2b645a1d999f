// Package testtree writes deterministic directory trees for tests: nested
// directories of text and random files of mixed sizes, with symlinks.
package testtree

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// Spec says what to generate.
type Spec struct {
	Seed     uint64
	Files    int   // number of regular files
	MaxDepth int   // directory nesting
	Large    []int // sizes of additional large files (random content)
}

var words = []string{"backup", "snapshot", "chunk", "the", "of", "restore", "home", "func", "return", "data", "index", "pack", "tree", "file", "if", "err", "nil", "for", "range"}

// Write creates the tree under dir and returns the total bytes of file content.
func Write(dir string, s Spec) (int64, error) {
	r := rand.New(rand.NewPCG(s.Seed, 0x5eed))
	if s.MaxDepth <= 0 {
		s.MaxDepth = 4
	}
	dirs := []string{dir}
	var total int64
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < s.Files; i++ {
		// Grow the directory structure as files are added: ~25 files per dir.
		if i%25 == 0 {
			parent := dirs[r.IntN(len(dirs))]
			if depth(dir, parent) < s.MaxDepth {
				d := filepath.Join(parent, fmt.Sprintf("dir%04d", len(dirs)))
				if err := os.Mkdir(d, 0o755); err != nil {
					return total, err
				}
				dirs = append(dirs, d)
			}
		}
		d := dirs[r.IntN(len(dirs))]
		var data []byte
		name := fmt.Sprintf("f%05d", i)
		switch k := r.IntN(10); {
		case k < 6: // small text
			data = text(r, 50+r.IntN(8000))
			name += ".txt"
		case k < 9: // small binary
			data = random(r, r.IntN(64<<10))
			name += ".bin"
		default: // medium text
			data = text(r, 64<<10+r.IntN(1<<20))
			name += ".log"
		}
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return total, err
		}
		t := base.Add(time.Duration(r.Int64N(int64(365 * 24 * time.Hour))))
		if err := os.Chtimes(p, t, t); err != nil {
			return total, err
		}
		total += int64(len(data))
		if i%500 == 7 {
			if err := os.Symlink(name, filepath.Join(d, name+".link")); err != nil {
				return total, err
			}
		}
	}
	for i, size := range s.Large {
		p := filepath.Join(dir, fmt.Sprintf("large%d.img", i))
		if err := writeRandom(p, r, size); err != nil {
			return total, err
		}
		total += int64(size)
	}
	return total, nil
}

func depth(root, d string) int {
	rel, _ := filepath.Rel(root, d)
	if rel == "." {
		return 0
	}
	n := 1
	for _, c := range rel {
		if c == filepath.Separator {
			n++
		}
	}
	return n
}

func text(r *rand.Rand, n int) []byte {
	b := make([]byte, 0, n+16)
	for len(b) < n {
		b = append(b, words[r.IntN(len(words))]...)
		if r.IntN(12) == 0 {
			b = append(b, '\n')
		} else {
			b = append(b, ' ')
		}
	}
	return b[:n]
}

func random(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := 0; k < 8; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeRandom writes size random bytes in 1 MiB pieces.
func writeRandom(p string, r *rand.Rand, size int) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	for left := size; left > 0; {
		n := min(left, 1<<20)
		if _, err := f.Write(random(r, n)); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	return f.Close()
}

// RandomFile writes a file of size random bytes from seed.
func RandomFile(p string, seed uint64, size int) error {
	return writeRandom(p, rand.New(rand.NewPCG(seed, 1)), size)
}
