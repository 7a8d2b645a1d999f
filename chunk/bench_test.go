package chunk

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"
)

func benchData(n int) []byte {
	data := make([]byte, n)
	rand.New(rand.NewSource(7)).Read(data)
	return data
}

// BenchmarkChunker measures content-defined chunking alone (MB/s).
func BenchmarkChunker(b *testing.B) {
	p, err := NewParams(DefaultMin, DefaultAvg, DefaultMax)
	if err != nil {
		b.Fatal(err)
	}
	data := benchData(64 << 20)
	c := NewChunker(p)
	buf := make([]byte, 0, p.MaxSize)
	b.SetBytes(int64(len(data)))
	b.ResetTimer() // making 64 MiB of random data is not part of it
	for i := 0; i < b.N; i++ {
		c.Reset(bytes.NewReader(data))
		for {
			_, err := c.Next(buf)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkHash measures SHA-256 of 1 MiB blobs (MB/s).
func BenchmarkHash(b *testing.B) {
	data := benchData(1 << 20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Hash(data)
	}
}

// BenchmarkChunkAndHash is the per-core hardware limit of the archiver's
// design: chunk, then hash every chunk.
func BenchmarkChunkAndHash(b *testing.B) {
	p, _ := NewParams(DefaultMin, DefaultAvg, DefaultMax)
	data := benchData(64 << 20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := NewChunker(p)
		buf := make([]byte, 0, p.MaxSize)
		for pb.Next() {
			c.Reset(bytes.NewReader(data))
			for {
				ch, err := c.Next(buf)
				if errors.Is(err, io.EOF) {
					break
				}
				Hash(ch)
			}
		}
	})
}
