// Package pack reads and writes pack files, the containers that hold a
// repository's blobs.
//
// A pack is the stored bytes of its blobs back to back, a trailer of
// fixed-size entries describing them, and a 24-byte footer (see "Packs" in
// docs/FORMAT.md). Writers stream a pack with NewWriter, Writer.Add and
// Writer.Finish. Readers list a pack's blobs with ReadTrailer (or ParseFooter
// and ParseTrailer when they fetch the bytes themselves) and check each blob
// they read with VerifyBlob.
//
// Every decoding failure wraps ErrCorrupt. The decoders check all lengths
// and counts against the limits below before using them, so a hostile or
// damaged pack costs at most a bounded allocation and an error.
package pack

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"

	"github.com/cespare/xxhash/v2"

	"snap/chunk"
)

// Sizes and limits of the format.
const (
	// EntrySize is the size of one trailer entry.
	EntrySize = 58
	// FooterSize is the size of the footer at the end of every pack.
	FooterSize = 24
	// MaxBlobs is the largest blob count a pack may declare.
	MaxBlobs = 1_000_000
	// MaxRawLength is the largest raw (uncompressed) length of a blob.
	MaxRawLength = 1 << 30
	// MinPackSize is the size of the smallest valid pack: one empty blob.
	MinPackSize = FooterSize + EntrySize
)

// magic ends every pack file.
var magic = [8]byte{'S', 'N', 'A', 'P', 'P', 'A', 'K', '1'}

// ErrCorrupt is wrapped by every error that reports a pack which breaks the
// format. Callers test it with errors.Is to tell damage from I/O failures.
var ErrCorrupt = errors.New("corrupt pack")

// ErrEmpty is returned by Writer.Finish when no blob was added: the format
// has no empty packs.
var ErrEmpty = errors.New("empty pack")

// BlobType says what a blob holds.
type BlobType uint8

// Blob types.
const (
	DataBlob BlobType = 0 // a chunk of file content
	TreeBlob BlobType = 1 // an encoded directory
)

// String returns "data" or "tree".
func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("BlobType(%d)", uint8(t))
}

// Compression says how a blob's raw bytes were turned into its stored bytes.
type Compression uint8

// Compression modes.
const (
	Raw  Compression = 0 // stored bytes are the raw bytes
	Zstd Compression = 1 // stored bytes are one zstd frame
)

// String returns "raw" or "zstd".
func (c Compression) String() string {
	switch c {
	case Raw:
		return "raw"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", uint8(c))
}

// Blob is one trailer entry: where a blob's stored bytes lie in its pack and
// how to check and decode them.
type Blob struct {
	Type        BlobType
	Compression Compression
	ID          chunk.ID // SHA-256 of the raw bytes
	Offset      uint64   // of the stored bytes from the start of the pack
	Length      uint32   // stored length
	RawLength   uint32   // length after decompression
	Checksum    uint64   // xxh64 of the stored bytes
}

// End returns the offset just past the blob's stored bytes.
func (b Blob) End() uint64 { return b.Offset + uint64(b.Length) }

// check reports the first per-entry rule of the format that b breaks, in
// words, or "" if it breaks none. The contiguity rule needs the neighbours
// and is checked by the callers.
func (b Blob) check() string {
	switch {
	case b.Type > TreeBlob:
		return fmt.Sprintf("unknown blob type %d", b.Type)
	case b.Compression > Zstd:
		return fmt.Sprintf("unknown compression %d", b.Compression)
	case b.RawLength > MaxRawLength:
		return fmt.Sprintf("raw length %d exceeds the limit of %d", b.RawLength, MaxRawLength)
	case b.Compression == Raw && b.Length != b.RawLength:
		return fmt.Sprintf("uncompressed blob has stored length %d but raw length %d", b.Length, b.RawLength)
	case b.Length == 0 && b.Compression != Raw:
		// Only an empty blob stored raw may take no bytes; a zstd frame never does.
		return "compressed blob has stored length 0"
	}
	return ""
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrCorrupt)
}

// Naming says which bytes of a pack its ID, the name of its file, is the
// SHA-256 of. A repository's format version fixes it for all its packs.
type Naming uint8

// Namings.
const (
	// WholeFile names a pack by the SHA-256 of all its bytes (format
	// version 1).
	WholeFile Naming = 1
	// TrailerAndFooter names a pack by the SHA-256 of its trailer and footer
	// (format version 2). The trailer holds each blob's ID and the xxh64 of
	// its stored bytes, so the name still pins every byte of the pack, and a
	// writer hashes each byte once (for its blob ID) instead of twice.
	TrailerAndFooter Naming = 2
)

// Writer streams a pack into an io.Writer and computes the pack ID on the
// way. It is not safe for concurrent use.
type Writer struct {
	w      io.Writer
	naming Naming
	sum    hash.Hash // SHA-256 of the bytes the naming covers: the pack ID
	size   int64
	blobs  []Blob
	err    error // sticky: once a write failed, the output is unusable
}

// NewWriter returns a Writer that writes a pack into w, normally a temporary
// file that the caller renames to the pack ID once Finish succeeds, and
// names it as n says.
func NewWriter(w io.Writer, n Naming) *Writer {
	return &Writer{w: w, naming: n, sum: sha256.New()}
}

// write passes p to the output and the hash, making any failure sticky.
func (w *Writer) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	n, err := w.w.Write(p)
	if n < 0 || n > len(p) {
		n, err = 0, fmt.Errorf("output reported writing %d of %d bytes", n, len(p))
	}
	if w.naming == WholeFile {
		w.sum.Write(p[:n])
	}
	w.size += int64(n)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("write pack: %w", err)
	}
	return w.err
}

// Add appends a blob whose stored bytes are stored and whose raw length is
// rawLen, and returns its trailer entry. It refuses a blob the format could
// not describe (for Raw, len(stored) must equal rawLen). After a write error
// the pack is broken: every later call fails and the caller should discard
// the output.
func (w *Writer) Add(t BlobType, id chunk.ID, c Compression, rawLen int, stored []byte) (Blob, error) {
	if w.err != nil {
		return Blob{}, w.err
	}
	if len(w.blobs) >= MaxBlobs {
		return Blob{}, fmt.Errorf("add blob %s: pack already holds the maximum of %d blobs; finish it and start another", id.Short(), MaxBlobs)
	}
	if rawLen < 0 || rawLen > MaxRawLength {
		return Blob{}, fmt.Errorf("add blob %s: raw length %d outside 0..%d", id.Short(), rawLen, MaxRawLength)
	}
	if uint64(len(stored)) > math.MaxUint32 {
		return Blob{}, fmt.Errorf("add blob %s: stored length %d does not fit the format", id.Short(), len(stored))
	}
	b := Blob{
		Type:        t,
		Compression: c,
		ID:          id,
		Offset:      uint64(w.size),
		Length:      uint32(len(stored)),
		RawLength:   uint32(rawLen),
		Checksum:    xxhash.Sum64(stored),
	}
	if msg := b.check(); msg != "" {
		return Blob{}, fmt.Errorf("add blob %s: %s", id.Short(), msg)
	}
	if err := w.write(stored); err != nil {
		return Blob{}, err
	}
	w.blobs = append(w.blobs, b)
	return b, nil
}

// Size returns the number of bytes written so far, which lets the caller
// finish a pack once it reaches the target size.
func (w *Writer) Size() int64 { return w.size }

// Count returns the number of blobs added so far.
func (w *Writer) Count() int { return len(w.blobs) }

// Finish writes the trailer and footer and returns the pack ID, the pack's
// size and its blobs. It fails with ErrEmpty if no blob was added. The
// Writer must not be used afterwards.
func (w *Writer) Finish() (id chunk.ID, size int64, blobs []Blob, err error) {
	if w.err != nil {
		return id, 0, nil, w.err
	}
	if len(w.blobs) == 0 {
		return id, 0, nil, fmt.Errorf("finish pack: %w", ErrEmpty)
	}
	buf := make([]byte, 0, len(w.blobs)*EntrySize+FooterSize)
	for _, b := range w.blobs {
		buf = appendEntry(buf, b)
	}
	trailerLen := len(buf)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(trailerLen))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(w.blobs)))
	buf = binary.LittleEndian.AppendUint64(buf, xxhash.Sum64(buf[:trailerLen]))
	buf = append(buf, magic[:]...)
	if err := w.write(buf); err != nil {
		return id, 0, nil, err
	}
	if w.naming != WholeFile {
		w.sum.Write(buf)
	}
	// Poison the Writer so a second Finish or a late Add cannot produce a
	// second, different pack from the same output.
	w.err = errors.New("pack writer already finished")
	return chunk.ID(w.sum.Sum(nil)), w.size, w.blobs, nil
}

func appendEntry(buf []byte, b Blob) []byte {
	buf = append(buf, byte(b.Type), byte(b.Compression))
	buf = append(buf, b.ID[:]...)
	buf = binary.LittleEndian.AppendUint64(buf, b.Offset)
	buf = binary.LittleEndian.AppendUint32(buf, b.Length)
	buf = binary.LittleEndian.AppendUint32(buf, b.RawLength)
	buf = binary.LittleEndian.AppendUint64(buf, b.Checksum)
	return buf
}

func decodeEntry(e []byte) Blob {
	var b Blob
	b.Type = BlobType(e[0])
	b.Compression = Compression(e[1])
	copy(b.ID[:], e[2:34])
	b.Offset = binary.LittleEndian.Uint64(e[34:])
	b.Length = binary.LittleEndian.Uint32(e[42:])
	b.RawLength = binary.LittleEndian.Uint32(e[46:])
	b.Checksum = binary.LittleEndian.Uint64(e[50:])
	return b
}

// ParseFooter decodes the footer, the last FooterSize bytes of a pack of
// packSize bytes, and checks it against the limits of the format. It returns
// the length of the trailer, which ends where the footer begins, the blob
// count and the trailer's checksum, ready for ParseTrailer.
func ParseFooter(footer []byte, packSize int64) (trailerLen int, count int, trailerSum uint64, err error) {
	if len(footer) != FooterSize {
		return 0, 0, 0, corruptf("pack footer is %d bytes, want %d", len(footer), FooterSize)
	}
	if packSize < MinPackSize {
		return 0, 0, 0, corruptf("pack is %d bytes, smaller than the minimum of %d", packSize, MinPackSize)
	}
	if [8]byte(footer[16:24]) != magic {
		return 0, 0, 0, corruptf("pack footer has magic %q, want %q", footer[16:24], magic[:])
	}
	tl := binary.LittleEndian.Uint32(footer[0:])
	n := binary.LittleEndian.Uint32(footer[4:])
	sum := binary.LittleEndian.Uint64(footer[8:])
	switch {
	case n == 0:
		return 0, 0, 0, corruptf("pack footer declares no blobs")
	case n > MaxBlobs:
		return 0, 0, 0, corruptf("pack footer declares %d blobs, more than the limit of %d", n, MaxBlobs)
	case uint64(tl) != uint64(n)*EntrySize:
		return 0, 0, 0, corruptf("pack footer declares a trailer of %d bytes for %d blobs, want %d", tl, n, uint64(n)*EntrySize)
	case int64(tl)+FooterSize > packSize:
		return 0, 0, 0, corruptf("pack trailer of %d bytes does not fit a pack of %d bytes", tl, packSize)
	}
	return int(tl), int(n), sum, nil
}

// ParseTrailer decodes the trailer of a pack of packSize bytes, given the
// count and checksum from its footer, and checks every rule of the format:
// the checksum, the type and compression of each entry, the length rules and
// that the blobs tile the pack from offset 0 to the trailer without gap or
// overlap. It returns the blobs in file order.
func ParseTrailer(trailer []byte, count int, trailerSum uint64, packSize int64) ([]Blob, error) {
	if count < 1 || count > MaxBlobs {
		return nil, corruptf("pack trailer count %d outside 1..%d", count, MaxBlobs)
	}
	if len(trailer) != count*EntrySize {
		return nil, corruptf("pack trailer is %d bytes, want %d for %d blobs", len(trailer), count*EntrySize, count)
	}
	if packSize < int64(len(trailer))+FooterSize {
		return nil, corruptf("pack trailer of %d bytes does not fit a pack of %d bytes", len(trailer), packSize)
	}
	if got := xxhash.Sum64(trailer); got != trailerSum {
		return nil, corruptf("pack trailer checksum is %016x, footer says %016x", got, trailerSum)
	}
	trailerStart := uint64(packSize) - uint64(len(trailer)) - FooterSize
	blobs := make([]Blob, count)
	var next uint64 // where the next blob must start
	for i := range blobs {
		b := decodeEntry(trailer[i*EntrySize : (i+1)*EntrySize])
		if msg := b.check(); msg != "" {
			return nil, corruptf("pack trailer entry %d (blob %s): %s", i, b.ID.Short(), msg)
		}
		if b.Offset != next {
			return nil, corruptf("pack trailer entry %d (blob %s): starts at offset %d, want %d (blobs must be contiguous)", i, b.ID.Short(), b.Offset, next)
		}
		// No overflow: next is at most trailerStart < 2^63 and Length < 2^32.
		next += uint64(b.Length)
		if next > trailerStart {
			return nil, corruptf("pack trailer entry %d (blob %s): ends at offset %d, past the trailer at %d", i, b.ID.Short(), next, trailerStart)
		}
		blobs[i] = b
	}
	if next != trailerStart {
		return nil, corruptf("pack blobs end at offset %d but the trailer starts at %d", next, trailerStart)
	}
	return blobs, nil
}

// ReadTrailer reads and checks the footer and trailer of the pack of
// packSize bytes in r, with one ReadAt call for each. A pack shorter than
// packSize is reported as corrupt (truncated); other read errors are
// returned as they are, wrapped.
func ReadTrailer(r io.ReaderAt, packSize int64) ([]Blob, error) {
	blobs, _, err := readTail(r, packSize)
	return blobs, err
}

// ReadTrailerID is ReadTrailer that also returns the SHA-256 of the trailer
// and footer: the pack's ID under TrailerAndFooter naming, which lets a
// reader check a pack's name without reading its blobs.
func ReadTrailerID(r io.ReaderAt, packSize int64) ([]Blob, chunk.ID, error) {
	blobs, tail, err := readTail(r, packSize)
	if err != nil {
		return nil, chunk.ID{}, err
	}
	return blobs, chunk.ID(sha256.Sum256(tail)), nil
}

// readTail reads and checks the footer and trailer and returns the blobs and
// the trailer and footer bytes.
func readTail(r io.ReaderAt, packSize int64) ([]Blob, []byte, error) {
	if packSize < MinPackSize {
		return nil, nil, corruptf("pack is %d bytes, smaller than the minimum of %d", packSize, MinPackSize)
	}
	var footer [FooterSize]byte
	if err := readFull(r, footer[:], packSize-FooterSize, "footer"); err != nil {
		return nil, nil, err
	}
	tl, n, sum, err := ParseFooter(footer[:], packSize)
	if err != nil {
		return nil, nil, err
	}
	// tl is at most MaxBlobs*EntrySize (58 MB) and fits in the pack, so the
	// allocation is bounded by the limit and by the pack's claimed size.
	tail := make([]byte, tl+FooterSize)
	if err := readFull(r, tail[:tl], packSize-FooterSize-int64(tl), "trailer"); err != nil {
		return nil, nil, err
	}
	copy(tail[tl:], footer[:])
	blobs, err := ParseTrailer(tail[:tl], n, sum, packSize)
	if err != nil {
		return nil, nil, err
	}
	return blobs, tail, nil
}

// ID computes the ID of the pack whose whole content is data under naming
// n. For TrailerAndFooter it reads the trailer length from the footer; a
// pack too damaged to say where its trailer starts has no ID (ErrCorrupt).
func ID(n Naming, data []byte) (chunk.ID, error) {
	switch n {
	case WholeFile:
		return chunk.ID(sha256.Sum256(data)), nil
	case TrailerAndFooter:
		if len(data) < FooterSize {
			return chunk.ID{}, corruptf("pack is %d bytes, smaller than its footer", len(data))
		}
		tl, _, _, err := ParseFooter(data[len(data)-FooterSize:], int64(len(data)))
		if err != nil {
			return chunk.ID{}, err
		}
		return chunk.ID(sha256.Sum256(data[len(data)-FooterSize-tl:])), nil
	}
	return chunk.ID{}, fmt.Errorf("pack naming %d is not known", n)
}

// readFull fills p from r at off. io.ReaderAt may return io.EOF along with a
// full read at the end of the input, which is success.
func readFull(r io.ReaderAt, p []byte, off int64, what string) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("read pack %s: got %d of %d bytes at offset %d, pack is truncated: %w", what, n, len(p), off, ErrCorrupt)
	}
	return fmt.Errorf("read pack %s at offset %d: %w", what, off, err)
}

// VerifyBlob checks that stored, read from a pack at b's location, has b's
// length and checksum. It catches damage before decompression; the caller
// still checks the decoded bytes against b.ID.
func VerifyBlob(b Blob, stored []byte) error {
	if uint64(len(stored)) != uint64(b.Length) {
		return corruptf("blob %s: read %d stored bytes, trailer says %d", b.ID.Short(), len(stored), b.Length)
	}
	if got := xxhash.Sum64(stored); got != b.Checksum {
		return corruptf("blob %s at offset %d: stored bytes have xxh64 %016x, trailer says %016x", b.ID.Short(), b.Offset, got, b.Checksum)
	}
	return nil
}
