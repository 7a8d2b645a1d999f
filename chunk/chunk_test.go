package chunk

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"
)

func testParams(t *testing.T) Params {
	t.Helper()
	p, err := NewParams(64<<10, 128<<10, 512<<10)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func split(t *testing.T, c *Chunker, data []byte) [][]byte {
	t.Helper()
	c.Reset(bytes.NewReader(data))
	var out [][]byte
	buf := make([]byte, 0, c.p.MaxSize)
	for {
		b, err := c.Next(buf)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), b...))
	}
}

func TestChunkerReassemblesAndRespectsBounds(t *testing.T) {
	p := testParams(t)
	data := make([]byte, 8<<20)
	rand.New(rand.NewSource(1)).Read(data)
	chunks := split(t, NewChunker(p), data)
	if len(chunks) < 16 {
		t.Fatalf("got %d chunks of 8 MiB with avg 128 KiB; average size not applied", len(chunks))
	}
	if got := bytes.Join(chunks, nil); !bytes.Equal(got, data) {
		t.Fatal("chunks do not reassemble to the input")
	}
	for i, c := range chunks[:len(chunks)-1] {
		if uint(len(c)) < p.MinSize || uint(len(c)) > p.MaxSize {
			t.Fatalf("chunk %d has %d bytes, outside %d..%d", i, len(c), p.MinSize, p.MaxSize)
		}
	}
}

func TestChunkerResyncsAfterInsert(t *testing.T) {
	p := testParams(t)
	c := NewChunker(p)
	data := make([]byte, 4<<20)
	rand.New(rand.NewSource(2)).Read(data)
	a := split(t, c, data)
	edited := append(append(append([]byte(nil), data[:1<<20]...), 'x'), data[1<<20:]...)
	b := split(t, c, edited)
	seen := map[ID]bool{}
	for _, ch := range a {
		seen[Hash(ch)] = true
	}
	shared := 0
	for _, ch := range b {
		if seen[Hash(ch)] {
			shared += len(ch)
		}
	}
	if shared < 3<<20-int(2*p.MaxSize) {
		t.Fatalf("only %d bytes of chunks shared after a 1-byte insert", shared)
	}
}

func TestValidate(t *testing.T) {
	p := testParams(t)
	bad := []Params{
		{Polynomial: p.Polynomial, MinSize: 1024, AvgSize: 4096, MaxSize: 8192},
		{Polynomial: p.Polynomial, MinSize: 64 << 10, AvgSize: 100 << 10, MaxSize: 1 << 20},
		{Polynomial: p.Polynomial, MinSize: 1 << 20, AvgSize: 512 << 10, MaxSize: 2 << 20},
		{Polynomial: 12345, MinSize: 64 << 10, AvgSize: 128 << 10, MaxSize: 1 << 20},
	}
	for i, b := range bad {
		if b.Validate() == nil {
			t.Errorf("case %d: %+v accepted", i, b)
		}
	}
}

func TestParseID(t *testing.T) {
	id := Hash([]byte("x"))
	got, err := ParseID(id.String())
	if err != nil || got != id {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, s := range []string{"", "zz", id.String()[:63] + "g"} {
		if _, err := ParseID(s); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseID(%q) = %v, want ErrInvalidID", s, err)
		}
	}
}

func TestFixedSplitsHeaderThenPieces(t *testing.T) {
	data := make([]byte, 8192+3*8192+100)
	rand.New(rand.NewSource(3)).Read(data)
	f := NewFixed(bytes.NewReader(data), 8192, 8192)
	var sizes []int
	var got []byte
	buf := make([]byte, 0, 8192)
	for {
		b, err := f.Next(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(b))
		got = append(got, b...)
	}
	if !bytes.Equal(got, data) || len(sizes) != 5 || sizes[0] != 8192 || sizes[4] != 100 {
		t.Fatalf("pieces %v do not split %d bytes as header, 3 x 8 KiB, rest", sizes, len(data))
	}
}
