package limit

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"snap/internal/backend/local"
)

func TestLimitsUploadAndDownload(t *testing.T) {
	be := New(local.New(t.TempDir()), 256<<10, 256<<10)
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 512<<10)
	start := time.Now()
	if err := be.Save(ctx, "data/aa/f", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	up := time.Since(start)
	start = time.Now()
	rc, err := be.Load(ctx, "data/aa/f", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	down := time.Since(start)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("round trip through the limiter: %v", err)
	}
	// 512 KiB at 256 KiB/s with a 64 KiB burst takes at least ~1.75 s: a
	// lower bound, which only a broken limiter can miss.
	if up < 1500*time.Millisecond || down < 1500*time.Millisecond {
		t.Errorf("512 KiB at 256 KiB/s took %v up and %v down; the limits were not applied", up, down)
	}
}

func TestNoLimitReturnsBackend(t *testing.T) {
	be := local.New(t.TempDir())
	if New(be, 0, 0) != be {
		t.Error("no limits should not wrap the backend")
	}
}
