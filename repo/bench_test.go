package repo

import (
	"bytes"
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"snap/chunk"
	"snap/internal/backend"
	"snap/internal/backend/local"
	"snap/repo/pack"
)

func benchRepo(b *testing.B, compression string) *Repository {
	b.Helper()
	p, err := chunk.NewParams(chunk.DefaultMin, chunk.DefaultAvg, chunk.DefaultMax)
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := NewConfig(p, compression)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	r, err := Init(context.Background(), local.New(dir), cfg, Options{IndexPath: filepath.Join(dir, "index.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

func randomBlob(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func textBlob(n int) []byte {
	words := []string{"backup ", "snapshot ", "func ", "return ", "the ", "data\n", "index ", "pack "}
	var buf bytes.Buffer
	r := rand.New(rand.NewSource(3))
	for buf.Len() < n {
		buf.WriteString(words[r.Intn(len(words))])
	}
	return buf.Bytes()[:n]
}

// BenchmarkCompress measures the compression decision and work per MB.
func BenchmarkCompress(b *testing.B) {
	for _, c := range []struct {
		name, mode string
		data       []byte
	}{
		{"auto/random", CompressAuto, randomBlob(1<<20, 1)},
		{"auto/text", CompressAuto, textBlob(1 << 20)},
		{"fastest/text", CompressFastest, textBlob(1 << 20)},
		{"max/text", CompressMax, textBlob(1 << 20)},
	} {
		b.Run(c.name, func(b *testing.B) {
			comp := newCompressor(c.mode)
			dst := make([]byte, 0, 2<<20)
			b.SetBytes(int64(len(c.data)))
			for i := 0; i < b.N; i++ {
				if _, _, err := comp.compress(c.data, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSaveBlob is the store path of new blobs (hash, index check,
// compression, pack write; packs made durable and indexed on Flush).
func BenchmarkSaveBlob(b *testing.B) {
	r := benchRepo(b, CompressAuto)
	ctx := context.Background()
	blobs := make([][]byte, 64)
	for i := range blobs {
		blobs[i] = randomBlob(1<<20, int64(i))
	}
	unlock, err := r.Lock(ctx, lockInfo(), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unlock()
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		data := blobs[i%len(blobs)]
		data[0], data[1] = byte(i), byte(i>>8) // a new blob each time
		if _, _, err := r.SaveBlob(ctx, pack.DataBlob, data); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

func lockInfo() backend.LockInfo {
	return backend.LockInfo{Host: "bench", PID: os.Getpid(), Command: "bench", Start: time.Now()}
}
