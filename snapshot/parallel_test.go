package snapshot

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

func TestInParallel(t *testing.T) {
	ctx := context.Background()
	const n = 1000
	var seen [n]atomic.Int32
	if err := inParallel(ctx, n, 4, func(_ context.Context, i int) error {
		seen[i].Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range seen {
		if c := seen[i].Load(); c != 1 {
			t.Fatalf("index %d called %d times, want once", i, c)
		}
	}

	// The first error stops the rest and is returned.
	boom := errors.New("boom")
	var calls atomic.Int32
	err := inParallel(ctx, n, 4, func(ctx context.Context, i int) error {
		calls.Add(1)
		switch {
		case i == 10:
			return boom
		case i > 10:
			<-ctx.Done() // later ones wait for the cancellation the error causes
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want %v", err, boom)
	}
	if c := calls.Load(); c > 14 {
		t.Fatalf("%d calls with an error at index 10 and 4 workers, want at most 14", c)
	}

	// A cancelled context is reported.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := inParallel(cctx, n, 4, func(context.Context, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("with a cancelled context: %v", err)
	}
	// Nothing to do, no workers.
	if err := inParallel(ctx, 0, 4, func(context.Context, int) error { panic("called") }); err != nil {
		t.Fatal(err)
	}
}
