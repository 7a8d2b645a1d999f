package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
)

// words is the vocabulary for every generated text. It is drawn from with a
// Zipf distribution so that, as in real text, a few words dominate; that gives
// compressors about the ratio they get on real documents and source code.
var words = strings.Fields(`
the of and to in is it that for on with as was be by this are or from at an
not have but can all will one has which their if more when there so we do
data file value error user time list path name type return func string int
config server client request response buffer index table record page block
node tree root hash key size count offset length start end read write open
close create delete update load save parse format print check test result
state cache queue stream handle event message header body status code line
input output source target default option flag version build module package
import export local remote backup restore snapshot archive chunk pack blob
repository memory disk network thread worker task job batch schedule timer
report summary detail note draft plan meeting project budget invoice travel
photo album music video document letter recipe garden house family holiday
weather morning evening week month year today tomorrow yesterday monday
friday summer winter spring autumn north south east west river mountain
city street market office school library station airport hotel kitchen
window door table chair paper pencil coffee water bread apple orange green
blue red black white small large quick slow early late simple complex new
old first last next previous other same different important possible
available required optional internal external public private static
dynamic random stable current final initial maximum minimum average total
`)

// identifiers are words that read well inside code.
var identifiers = strings.Fields(`
buf n i j k err ctx cfg req resp idx key val node tree hash size count off
length start end path name data items result opts conf log conn file dir
entry chunk pack blob repo snap store cache queue worker task batch timer
`)

// textGen produces text-like bytes from one random stream.
type textGen struct {
	r    *rand.Rand
	zipf *rand.Zipf
}

func newTextGen(r *rand.Rand) *textGen {
	return &textGen{r: r, zipf: rand.NewZipf(r, 1.15, 2, uint64(len(words)-1))}
}

func (g *textGen) word() string { return words[g.zipf.Uint64()] }

// nameWord picks uniformly: file names drawn from the Zipf distribution
// would collide all the time ("the_of.txt").
func (g *textGen) nameWord() string { return words[g.r.IntN(len(words))] }

func (g *textGen) ident() string {
	a := identifiers[g.r.IntN(len(identifiers))]
	if g.r.IntN(3) == 0 {
		w := g.word()
		return a + strings.ToUpper(w[:1]) + w[1:]
	}
	return a
}

func (g *textGen) camel() string {
	w1, w2 := g.word(), g.word()
	return strings.ToUpper(w1[:1]) + w1[1:] + strings.ToUpper(w2[:1]) + w2[1:]
}

// sentence returns a capitalised sentence of 4–18 words.
func (g *textGen) sentence() string {
	n := 4 + g.r.IntN(15)
	var b strings.Builder
	for i := 0; i < n; i++ {
		w := g.word()
		if i == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(w)
		if i < n-1 && g.r.IntN(12) == 0 {
			b.WriteByte(',')
		}
	}
	b.WriteByte('.')
	return b.String()
}

// kindOf maps a file extension to the generator that fits it.
func kindOf(ext string) string {
	switch ext {
	case ".go", ".c", ".h", ".js", ".ts", ".rs", ".java":
		return "cfamily"
	case ".py", ".sh", ".rb":
		return "script"
	case ".json":
		return "json"
	case ".yaml", ".yml", ".conf", ".ini", ".toml", ".cfg":
		return "config"
	case ".csv", ".tsv":
		return "csv"
	case ".html", ".xml", ".svg":
		return "markup"
	default:
		return "prose"
	}
}

// line returns one line (without newline) of the given kind. Lines are the
// unit mutate edits, so a file is always made of whole lines.
func (g *textGen) line(kind string, depth int) string {
	ind := strings.Repeat("\t", depth)
	r := g.r
	switch kind {
	case "cfamily":
		switch r.IntN(10) {
		case 0:
			return fmt.Sprintf("%sfunc %s(%s %s, %s int) error {", ind, g.camel(), g.ident(), g.camel(), g.ident())
		case 1:
			return fmt.Sprintf("%sif err := %s.%s(%s); err != nil {", ind, g.ident(), g.camel(), g.ident())
		case 2:
			return fmt.Sprintf("%sreturn fmt.Errorf(\"%s %s: %%w\", err)", ind, g.word(), g.word())
		case 3:
			return fmt.Sprintf("%sfor %s := 0; %s < len(%s); %s++ {", ind, "i", "i", g.ident(), "i")
		case 4:
			return fmt.Sprintf("%s// %s", ind, g.sentence())
		case 5:
			return ind + "}"
		case 6:
			return ""
		default:
			return fmt.Sprintf("%s%s := %s.%s(%s, %d)", ind, g.ident(), g.ident(), g.camel(), g.ident(), r.IntN(4096))
		}
	case "script":
		switch r.IntN(8) {
		case 0:
			return fmt.Sprintf("%sdef %s_%s(%s, %s):", ind, g.word(), g.word(), g.ident(), g.ident())
		case 1:
			return fmt.Sprintf("%sif %s is None or %s > %d:", ind, g.ident(), g.ident(), r.IntN(1000))
		case 2:
			return fmt.Sprintf("%s# %s", ind, g.sentence())
		case 3:
			return ""
		default:
			return fmt.Sprintf("%s%s = %s.%s(%s, \"%s\")", ind, g.ident(), g.ident(), g.word(), g.ident(), g.word())
		}
	case "json":
		return fmt.Sprintf("%s\"%s_%s\": %s,", ind, g.word(), g.word(), g.jsonValue())
	case "config":
		if r.IntN(9) == 0 {
			return fmt.Sprintf("[%s.%s]", g.word(), g.word())
		}
		if r.IntN(7) == 0 {
			return "# " + g.sentence()
		}
		return fmt.Sprintf("%s_%s = %s", g.word(), g.word(), g.jsonValue())
	case "csv":
		return fmt.Sprintf("%d,%s,%s,%d.%02d,2024-%02d-%02d,%s", r.IntN(100000), g.word(), g.word(),
			r.IntN(10000), r.IntN(100), 1+r.IntN(12), 1+r.IntN(28), g.word())
	case "markup":
		return fmt.Sprintf("%s<%s class=\"%s-%s\">%s</%s>", ind, "div", g.word(), g.word(), g.sentence(), "div")
	default:
		if r.IntN(6) == 0 {
			return ""
		}
		if r.IntN(15) == 0 {
			return "## " + g.camel()
		}
		n := 1 + r.IntN(4)
		s := make([]string, n)
		for i := range s {
			s[i] = g.sentence()
		}
		return strings.Join(s, " ")
	}
}

func (g *textGen) jsonValue() string {
	switch g.r.IntN(4) {
	case 0:
		return fmt.Sprint(g.r.IntN(100000))
	case 1:
		return []string{"true", "false", "null"}[g.r.IntN(3)]
	default:
		return fmt.Sprintf("%q", g.word()+"-"+g.word())
	}
}

// text returns exactly size bytes of text of the given kind, in whole lines
// except possibly the last one.
func (g *textGen) text(kind string, size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 256)
	depth := 0
	for b.Len() < size {
		b.WriteString(g.line(kind, depth))
		b.WriteByte('\n')
		// A bounded random walk of indentation makes code look nested.
		depth += g.r.IntN(3) - 1
		depth = max(0, min(depth, 4))
	}
	return b.Bytes()[:size]
}

// fillRandom fills p with random bytes, 8 at a time.
func fillRandom(r *rand.Rand, p []byte) {
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], r.Uint64())
	}
	if i < len(p) {
		var tail [8]byte
		binary.LittleEndian.PutUint64(tail[:], r.Uint64())
		copy(p[i:], tail[:])
	}
}

// dbPageSize is the page size of the database-like file; mutate rewrites
// whole pages, as a database engine would.
const dbPageSize = 4096

// dbPage fills p (dbPageSize bytes) with one page of the database-like file:
// a header followed by fixed-size rows of structured fields, the way SQLite
// or PostgreSQL heap pages look. Free pages are all zero.
func (g *textGen) dbPage(p []byte, pageNo uint32) {
	clear(p)
	if g.r.IntN(10) == 0 {
		return // free page
	}
	copy(p, "PG01")
	binary.LittleEndian.PutUint32(p[4:], pageNo)
	const rowSize = 96
	rows := 1 + g.r.IntN((len(p)-16)/rowSize)
	binary.LittleEndian.PutUint16(p[8:], uint16(rows))
	for i := 0; i < rows; i++ {
		row := p[16+i*rowSize : 16+(i+1)*rowSize]
		binary.LittleEndian.PutUint64(row[0:], uint64(pageNo)*64+uint64(i))
		binary.LittleEndian.PutUint64(row[8:], 1700000000+uint64(g.r.IntN(1<<26)))
		binary.LittleEndian.PutUint32(row[16:], uint32(g.r.IntN(100)))
		copy(row[24:56], g.word()+"@"+g.word()+".example")
		copy(row[56:96], g.word()+" "+g.word())
	}
}

// logLine returns one line of an application log with the given Unix time.
func (g *textGen) logLine(unix int64, ms int) string {
	level := []string{"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"}[g.r.IntN(6)]
	return fmt.Sprintf("%s.%03dZ %-5s [%s] %s %s %s request_id=%016x duration_ms=%d\n",
		unixUTC(unix), ms, level, g.word(), g.word(), g.word(), g.word(), g.r.Uint64(), g.r.IntN(5000))
}
