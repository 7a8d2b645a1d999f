package chunk

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"
)

// smallParams are valid chunker settings with small chunks, so that a few
// megabytes make many segments.
func smallParams(t *testing.T) Params {
	t.Helper()
	p, err := NewParams(4<<10, 8<<10, 32<<10)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sequentialChunks(t *testing.T, p Params, data []byte) [][]byte {
	t.Helper()
	ch := NewChunker(p)
	ch.Reset(bytes.NewReader(data))
	var out [][]byte
	for {
		c, err := ch.Next(make([]byte, 0, p.MaxSize))
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// parallelChunks runs Parallel to the end and returns its chunks and
// whether it had to chunk sequentially somewhere.
func parallelChunks(t *testing.T, r io.ReaderAt, size int64, p Params, workers int, segSize int64) ([][]byte, bool, error) {
	t.Helper()
	c := NewParallel(r, size, p, workers, segSize)
	defer c.Close()
	var out [][]byte
	buf := make([]byte, 0, 1000) // too small: Next must grow it
	for {
		d, err := c.Next(buf)
		if errors.Is(err, io.EOF) {
			return out, c.fb != nil, nil
		}
		if err != nil {
			return out, c.fb != nil, err
		}
		out = append(out, bytes.Clone(d))
		buf = d[:0]
	}
}

func sameChunks(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d chunks, sequential chunking made %d", what, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: chunk %d has %d bytes, sequential chunk has %d (or other bytes)", what, i, len(got[i]), len(want[i]))
		}
	}
}

// TestParallelCutsLikeSequential compares Parallel with the sequential
// Chunker on random, constant and periodic data, with segment sizes that
// do and do not line up with the chunk sizes, and checks that the regular
// data sends it through its sequential fallback.
func TestParallelCutsLikeSequential(t *testing.T) {
	p := smallParams(t)
	rng := rand.New(rand.NewSource(1))
	random := make([]byte, 3<<20+12345)
	rng.Read(random)
	// A pattern with a period that is no divisor of anything here.
	periodic := make([]byte, 2<<20+7)
	for i := range periodic {
		periodic[i] = byte(i % 4099 * 7)
	}
	mixed := append(append(bytes.Clone(random[:1<<20]), make([]byte, 1<<20)...), random[1<<20:2<<20]...)
	seg := 4 * int64(p.MaxSize)
	fellBack := false
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"random", random},
		{"zeros", make([]byte, 2<<20+100)},
		{"periodic", periodic},
		{"mixed", mixed},
		{"one segment", random[:100000]},
		{"one byte", random[:1]},
		{"empty", nil},
	} {
		want := sequentialChunks(t, p, tc.data)
		for _, segSize := range []int64{seg, seg + 1000, 3*seg + 17} {
			for _, workers := range []int{1, 2, 5} {
				got, fb, err := parallelChunks(t, bytes.NewReader(tc.data), int64(len(tc.data)), p, workers, segSize)
				if err != nil {
					t.Fatalf("%s, segments of %d, %d workers: %v", tc.name, segSize, workers, err)
				}
				sameChunks(t, tc.name, got, want)
				fellBack = fellBack || fb
				if fb && tc.name == "random" {
					// Random bytes have cut candidates everywhere, so the
					// chains meet right after each segment's start.
					t.Errorf("random data, segments of %d: the lists did not meet", segSize)
				}
			}
		}
	}
	if !fellBack {
		t.Error("no case chunked sequentially: the fallback went untested")
	}
}

// shortReader reports the bytes of data as if it were size long, as a file
// that shrank after its size was taken.
type shortReader struct{ data []byte }

func (s shortReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(s.data)) {
		return 0, io.EOF
	}
	n := copy(p, s.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// failingReader fails every read that reaches past bad.
type failingReader struct {
	data []byte
	bad  int64
}

var errDisk = errors.New("disk on fire")

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.bad {
		return 0, errDisk
	}
	return copy(p, f.data[off:]), nil
}

// TestParallelShortAndFailingReads: a file shorter than its size ends
// early with the bytes it has, and a read error reaches the caller, with
// the scanners stopping either way (Close returns).
func TestParallelShortAndFailingReads(t *testing.T) {
	p := smallParams(t)
	data := make([]byte, 2<<20)
	rand.New(rand.NewSource(2)).Read(data)
	have := data[:1<<20+333]
	got, _, err := parallelChunks(t, shortReader{have}, int64(len(data)), p, 2, 4*int64(p.MaxSize))
	if err != nil {
		t.Fatal(err)
	}
	if joined := bytes.Join(got, nil); !bytes.Equal(joined, have) {
		t.Fatalf("a file shrunk to %d bytes gave %d bytes", len(have), len(joined))
	}
	_, _, err = parallelChunks(t, failingReader{data, 1 << 20}, int64(len(data)), p, 2, 4*int64(p.MaxSize))
	if !errors.Is(err, errDisk) {
		t.Fatalf("read error: got %v, want %v", err, errDisk)
	}
}

// TestParallelCloseEarly stops a chunker with scanners still running.
func TestParallelCloseEarly(t *testing.T) {
	p := smallParams(t)
	data := make([]byte, 8<<20)
	rand.New(rand.NewSource(3)).Read(data)
	c := NewParallel(bytes.NewReader(data), int64(len(data)), p, 2, 4*int64(p.MaxSize))
	for range 3 {
		if _, err := c.Next(nil); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	c.Close() // twice is harmless
}
