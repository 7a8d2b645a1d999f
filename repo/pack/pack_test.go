package pack

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"testing"

	"github.com/cespare/xxhash/v2"

	"snap/chunk"
)

type testBlob struct {
	t      BlobType
	c      Compression
	raw    int
	stored []byte
}

// buildPack writes blobs into a pack and checks what Finish reports against
// the bytes written.
func buildPack(t testing.TB, blobs []testBlob) ([]byte, []Blob) {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, WholeFile)
	for i, b := range blobs {
		id := chunk.Hash([]byte(fmt.Sprint("blob", i)))
		got, err := w.Add(b.t, id, b.c, b.raw, b.stored)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != id || got.Length != uint32(len(b.stored)) {
			t.Fatalf("Add returned %+v", got)
		}
	}
	if w.Count() != len(blobs) {
		t.Fatalf("Count = %d, want %d", w.Count(), len(blobs))
	}
	id, size, out, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(buf.Len()) || size != w.Size() {
		t.Fatalf("Finish size %d, Size %d, wrote %d", size, w.Size(), buf.Len())
	}
	if id != sha256.Sum256(buf.Bytes()) {
		t.Fatal("pack ID is not the SHA-256 of the file")
	}
	return buf.Bytes(), out
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return b
}

func samplePack(t testing.TB) ([]byte, []Blob) {
	r := rand.New(rand.NewSource(1))
	return buildPack(t, []testBlob{
		{DataBlob, Raw, 1000, randBytes(r, 1000)},
		{DataBlob, Zstd, 5000, randBytes(r, 300)},
		{DataBlob, Raw, 0, nil}, // the empty blob takes no bytes
		{TreeBlob, Zstd, 70, randBytes(r, 40)},
		{TreeBlob, Raw, 1, []byte{1}},
	})
}

// TestNaming writes the same pack under both namings and checks which bytes
// each ID covers: WholeFile all of them, TrailerAndFooter the tail, whose
// per-blob checksums still catch a changed blob byte.
func TestNaming(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	stored := [][]byte{randBytes(r, 700), randBytes(r, 1300)}
	write := func(n Naming) ([]byte, chunk.ID) {
		var buf bytes.Buffer
		w := NewWriter(&buf, n)
		for i, s := range stored {
			if _, err := w.Add(DataBlob, chunk.Hash(s), Raw, len(s), s); err != nil {
				t.Fatal(i, err)
			}
		}
		id, _, _, err := w.Finish()
		if err != nil {
			t.Fatal(err)
		}
		return buf.Bytes(), id
	}
	whole, wholeID := write(WholeFile)
	file, tailID := write(TrailerAndFooter)
	if !bytes.Equal(whole, file) {
		t.Fatal("the naming changed the bytes of the pack")
	}
	if wholeID != sha256.Sum256(file) {
		t.Fatal("WholeFile ID is not the SHA-256 of the file")
	}
	if tailID != sha256.Sum256(file[trailerAt(file):]) || tailID == wholeID {
		t.Fatal("TrailerAndFooter ID is not the SHA-256 of trailer and footer")
	}
	for n, want := range map[Naming]chunk.ID{WholeFile: wholeID, TrailerAndFooter: tailID} {
		if got, err := ID(n, file); err != nil || got != want {
			t.Errorf("ID(%d) = %s, %v; want %s", n, got.Short(), err, want.Short())
		}
	}
	blobs, got, err := ReadTrailerID(bytes.NewReader(file), int64(len(file)))
	if err != nil || got != tailID {
		t.Fatalf("ReadTrailerID = %s, %v; want %s", got.Short(), err, tailID.Short())
	}

	// A changed blob byte keeps the trailer's name but fails the blob's checksum.
	bad := bytes.Clone(file)
	bad[blobs[1].Offset+5] ^= 1
	if id, _ := ID(TrailerAndFooter, bad); id != tailID {
		t.Fatal("a blob byte changed the trailer ID")
	}
	if err := VerifyBlob(blobs[1], bad[blobs[1].Offset:blobs[1].End()]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("VerifyBlob of a changed blob: %v", err)
	}
	// A changed trailer byte changes the name (and here also the checksum).
	bad = bytes.Clone(file)
	bad[trailerAt(bad)+3] ^= 1
	if id, _ := ID(TrailerAndFooter, bad); id == tailID {
		t.Fatal("a trailer byte left the trailer ID unchanged")
	}
	if _, err := ID(TrailerAndFooter, file[:10]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ID of 10 bytes: %v", err)
	}
	if _, err := ID(Naming(9), file); err == nil {
		t.Fatal("ID accepted an unknown naming")
	}
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for _, n := range []int{1, 2, 5, 100} {
		var in []testBlob
		for i := 0; i < n; i++ {
			size := r.Intn(3000)
			in = append(in, testBlob{BlobType(i % 2), Raw, size, randBytes(r, size)})
		}
		file, written := buildPack(t, in)
		got, err := ReadTrailer(bytes.NewReader(file), int64(len(file)))
		if err != nil {
			t.Fatalf("%d blobs: %v", n, err)
		}
		if len(got) != n {
			t.Fatalf("%d blobs: read %d", n, len(got))
		}
		for i, b := range got {
			if b != written[i] {
				t.Fatalf("blob %d: read %+v, wrote %+v", i, b, written[i])
			}
			stored := file[b.Offset:b.End()]
			if !bytes.Equal(stored, in[i].stored) {
				t.Fatalf("blob %d: stored bytes differ", i)
			}
			if err := VerifyBlob(b, stored); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestRoundTripMixed(t *testing.T) {
	file, written := samplePack(t)
	got, err := ReadTrailer(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != written[i] {
			t.Fatalf("blob %d: read %+v, wrote %+v", i, got[i], written[i])
		}
	}
	if got[2].Length != 0 || got[2].Offset != got[1].End() {
		t.Fatalf("empty blob: %+v", got[2])
	}
	if got[3].Type != TreeBlob || got[3].Type.String() != "tree" || got[1].Compression.String() != "zstd" {
		t.Fatalf("types: %+v", got[3])
	}
}

func TestVerifyBlob(t *testing.T) {
	file, blobs := samplePack(t)
	b := blobs[0]
	stored := bytes.Clone(file[b.Offset:b.End()])
	if err := VerifyBlob(b, stored); err != nil {
		t.Fatal(err)
	}
	stored[10] ^= 1
	if err := VerifyBlob(b, stored); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("flipped byte: %v", err)
	}
	if err := VerifyBlob(b, stored[:5]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short read: %v", err)
	}
}

// layout of a pack, for the mutations below.
func footerAt(p []byte) int { return len(p) - FooterSize }
func trailerAt(p []byte) int {
	return footerAt(p) - int(binary.LittleEndian.Uint32(p[footerAt(p):]))
}
func entryAt(p []byte, i int) []byte { return p[trailerAt(p)+i*EntrySize:] }

// resum recomputes the trailer checksum, so that a mutation of an entry is
// caught by the rule it breaks, not by the checksum.
func resum(p []byte) {
	binary.LittleEndian.PutUint64(p[footerAt(p)+8:], xxhash.Sum64(p[trailerAt(p):footerAt(p)]))
}

func TestCorruptPacks(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p []byte) []byte
	}{
		{"empty file", func(p []byte) []byte { return nil }},
		{"smaller than minimum", func(p []byte) []byte { return p[len(p)-MinPackSize+1:] }},
		{"flipped magic", func(p []byte) []byte { p[len(p)-1] ^= 1; return p }},
		{"bad trailer checksum", func(p []byte) []byte { p[footerAt(p)+8] ^= 1; return p }},
		{"flipped trailer byte", func(p []byte) []byte { entryAt(p, 1)[40] ^= 1; return p }},
		{"count mismatch", func(p []byte) []byte {
			binary.LittleEndian.PutUint32(p[footerAt(p)+4:], 4)
			return p
		}},
		{"trailer length mismatch", func(p []byte) []byte {
			binary.LittleEndian.PutUint32(p[footerAt(p):], 4*EntrySize)
			return p
		}},
		{"zero count", func(p []byte) []byte {
			binary.LittleEndian.PutUint32(p[footerAt(p):], 0)
			binary.LittleEndian.PutUint32(p[footerAt(p)+4:], 0)
			return p
		}},
		{"too large count", func(p []byte) []byte {
			binary.LittleEndian.PutUint32(p[footerAt(p):], (MaxBlobs+1)*EntrySize)
			binary.LittleEndian.PutUint32(p[footerAt(p)+4:], MaxBlobs+1)
			return p
		}},
		{"trailer longer than file", func(p []byte) []byte {
			binary.LittleEndian.PutUint32(p[footerAt(p):], 1000*EntrySize)
			binary.LittleEndian.PutUint32(p[footerAt(p)+4:], 1000)
			return p
		}},
		{"first blob not at 0", func(p []byte) []byte {
			binary.LittleEndian.PutUint64(entryAt(p, 0)[34:], 1)
			resum(p)
			return p
		}},
		{"non-contiguous offsets", func(p []byte) []byte {
			e := entryAt(p, 1)[34:]
			binary.LittleEndian.PutUint64(e, binary.LittleEndian.Uint64(e)+1)
			resum(p)
			return p
		}},
		{"overlapping offsets", func(p []byte) []byte {
			e := entryAt(p, 3)[34:]
			binary.LittleEndian.PutUint64(e, binary.LittleEndian.Uint64(e)-1)
			resum(p)
			return p
		}},
		{"gap before trailer", func(p []byte) []byte {
			// Shrink the last blob (stored and raw, to keep the Raw rule).
			e := entryAt(p, 4)
			binary.LittleEndian.PutUint32(e[42:], 0)
			binary.LittleEndian.PutUint32(e[46:], 0)
			resum(p)
			return p
		}},
		{"blob runs into trailer", func(p []byte) []byte {
			e := entryAt(p, 4)
			binary.LittleEndian.PutUint32(e[42:], 2)
			binary.LittleEndian.PutUint32(e[46:], 2)
			resum(p)
			return p
		}},
		{"huge stored length", func(p []byte) []byte {
			binary.LittleEndian.PutUint32(entryAt(p, 1)[42:], 0xffffffff)
			resum(p)
			return p
		}},
		{"stored != raw for Raw", func(p []byte) []byte {
			binary.LittleEndian.PutUint32(entryAt(p, 0)[46:], 999)
			resum(p)
			return p
		}},
		{"raw length over limit", func(p []byte) []byte {
			binary.LittleEndian.PutUint32(entryAt(p, 1)[46:], MaxRawLength+1)
			resum(p)
			return p
		}},
		{"unknown type", func(p []byte) []byte { entryAt(p, 0)[0] = 2; resum(p); return p }},
		{"unknown compression", func(p []byte) []byte { entryAt(p, 1)[1] = 2; resum(p); return p }},
		{"empty zstd blob", func(p []byte) []byte { entryAt(p, 2)[1] = byte(Zstd); resum(p); return p }},
		{"truncated by one byte at end", func(p []byte) []byte { return p[:len(p)-1] }},
		{"truncated at start", func(p []byte) []byte { return p[1:] }},
		{"truncated into trailer", func(p []byte) []byte { return p[trailerAt(p)+10:] }},
		{"byte appended", func(p []byte) []byte { return append(p, 0) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file, _ := samplePack(t)
			file = tc.mutate(file)
			blobs, err := ReadTrailer(bytes.NewReader(file), int64(len(file)))
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %d blobs, error %v; want ErrCorrupt", len(blobs), err)
			}
			t.Log(err)
		})
	}
}

// A file shorter than the size the caller was told (a pack truncated on
// disk after being listed) is corrupt, not an I/O error.
func TestReadTrailerShortFile(t *testing.T) {
	file, _ := samplePack(t)
	for _, cut := range []int{1, FooterSize, 100} {
		_, err := ReadTrailer(bytes.NewReader(file[:len(file)-cut]), int64(len(file)))
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut %d: %v", cut, err)
		}
	}
}

type failingReaderAt struct{}

var errDisk = errors.New("disk on fire")

func (failingReaderAt) ReadAt(p []byte, off int64) (int, error) { return 0, errDisk }

func TestReadTrailerIOError(t *testing.T) {
	_, err := ReadTrailer(failingReaderAt{}, 1000)
	if !errors.Is(err, errDisk) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want the read error and not ErrCorrupt", err)
	}
}

func TestParseFooterDirect(t *testing.T) {
	file, _ := samplePack(t)
	tl, n, sum, err := ParseFooter(file[footerAt(file):], int64(len(file)))
	if err != nil || n != 5 || tl != 5*EntrySize {
		t.Fatalf("ParseFooter = %d, %d, %v", tl, n, err)
	}
	if _, err := ParseTrailer(file[trailerAt(file):footerAt(file)], n, sum, int64(len(file))); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ParseFooter(file[footerAt(file)+1:], int64(len(file))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short footer: %v", err)
	}
	for _, count := range []int{-1, 0, 4, MaxBlobs + 1} {
		if _, err := ParseTrailer(file[trailerAt(file):footerAt(file)], count, sum, int64(len(file))); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("count %d: %v", count, err)
		}
	}
	if _, err := ParseTrailer(file[trailerAt(file):footerAt(file)], n, sum, 10); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("tiny pack size: %v", err)
	}
}

func TestWriterRefuses(t *testing.T) {
	id := chunk.Hash([]byte("x"))
	w := NewWriter(io.Discard, TrailerAndFooter)
	if _, _, _, err := w.Finish(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty Finish: %v", err)
	}
	bad := []struct {
		name string
		t    BlobType
		c    Compression
		raw  int
		data []byte
	}{
		{"raw length mismatch", DataBlob, Raw, 4, []byte("abc")},
		{"negative raw length", DataBlob, Zstd, -1, []byte("abc")},
		{"raw length over limit", DataBlob, Zstd, MaxRawLength + 1, []byte("abc")},
		{"unknown type", 7, Raw, 3, []byte("abc")},
		{"unknown compression", DataBlob, 9, 3, []byte("abc")},
		{"empty zstd", DataBlob, Zstd, 0, nil},
	}
	for _, b := range bad {
		if _, err := w.Add(b.t, id, b.c, b.raw, b.data); err == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
	if w.Count() != 0 || w.Size() != 0 {
		t.Fatalf("refused blobs were written: count %d size %d", w.Count(), w.Size())
	}
	if _, err := w.Add(DataBlob, id, Raw, 1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.Finish(); err == nil {
		t.Fatal("second Finish succeeded")
	}
	if _, err := w.Add(DataBlob, id, Raw, 1, []byte("x")); err == nil {
		t.Fatal("Add after Finish succeeded")
	}
}

type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, errDisk
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriterErrorIsSticky(t *testing.T) {
	w := NewWriter(&failAfter{n: 10}, TrailerAndFooter)
	id := chunk.Hash(nil)
	if _, err := w.Add(DataBlob, id, Raw, 8, make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Add(DataBlob, id, Raw, 8, make([]byte, 8)); !errors.Is(err, errDisk) {
		t.Fatalf("got %v, want the write error", err)
	}
	if _, err := w.Add(DataBlob, id, Raw, 1, make([]byte, 1)); !errors.Is(err, errDisk) {
		t.Fatalf("Add after failure: %v", err)
	}
	if _, _, _, err := w.Finish(); !errors.Is(err, errDisk) {
		t.Fatalf("Finish after failure: %v", err)
	}
}

func TestStrings(t *testing.T) {
	if DataBlob.String() != "data" || TreeBlob.String() != "tree" || BlobType(9).String() != "BlobType(9)" {
		t.Error("BlobType.String")
	}
	if Raw.String() != "raw" || Zstd.String() != "zstd" || Compression(9).String() != "Compression(9)" {
		t.Error("Compression.String")
	}
}

// checkBlobs asserts the invariants ParseTrailer promises for a pack of
// packSize bytes, so the fuzzers notice an accepted pack that breaks them.
func checkBlobs(t *testing.T, blobs []Blob, packSize int64) {
	if len(blobs) == 0 || len(blobs) > MaxBlobs {
		t.Fatalf("accepted %d blobs", len(blobs))
	}
	var next uint64
	for i, b := range blobs {
		if b.Offset != next || b.check() != "" {
			t.Fatalf("accepted bad blob %d: %+v", i, b)
		}
		next = b.End()
	}
	if next+uint64(len(blobs))*EntrySize+FooterSize != uint64(packSize) {
		t.Fatalf("accepted blobs ending at %d in a pack of %d bytes", next, packSize)
	}
}

func FuzzParsePack(f *testing.F) {
	file, _ := samplePack(f)
	f.Add(file)
	one, _ := buildPack(f, []testBlob{{DataBlob, Raw, 0, nil}})
	f.Add(one)
	f.Add([]byte{})
	f.Add(magic[:])
	f.Fuzz(func(t *testing.T, data []byte) {
		id, idErr := ID(TrailerAndFooter, data)
		if idErr != nil && !errors.Is(idErr, ErrCorrupt) {
			t.Fatalf("ID: error does not wrap ErrCorrupt: %v", idErr)
		}
		blobs, tailID, err := ReadTrailerID(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			// bytes.Reader never fails, so every error must be about the format.
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if idErr != nil || id != tailID {
			t.Fatalf("a pack whose trailer reads has ID %s (%v) by ID, %s by ReadTrailerID", id.Short(), idErr, tailID.Short())
		}
		checkBlobs(t, blobs, int64(len(data)))
	})
}

// FuzzParseTrailer gets past the checksum, which FuzzParsePack rarely does,
// to exercise the rules on the entries themselves.
func FuzzParseTrailer(f *testing.F) {
	file, _ := samplePack(f)
	f.Add(file[trailerAt(file):footerAt(file)], int64(len(file)))
	f.Add(make([]byte, EntrySize), int64(MinPackSize))
	f.Fuzz(func(t *testing.T, trailer []byte, packSize int64) {
		count := len(trailer) / EntrySize
		blobs, err := ParseTrailer(trailer, count, xxhash.Sum64(trailer), packSize)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		checkBlobs(t, blobs, packSize)
	})
}
