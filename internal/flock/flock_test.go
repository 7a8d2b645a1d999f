package flock

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestAcquireExcludesAndNamesHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	ctx := context.Background()
	f, err := Acquire(ctx, p, map[string]int{"pid": 42}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file: a second open, even in this
	// process, is refused.
	_, err = Acquire(ctx, p, map[string]int{"pid": 43}, 50*time.Millisecond)
	var he *HeldError
	if !errors.As(err, &he) {
		t.Fatalf("second Acquire: %v, want *HeldError", err)
	}
	var holder map[string]int
	if json.Unmarshal(he.Holder, &holder) != nil || holder["pid"] != 42 || he.Waited < 50*time.Millisecond {
		t.Errorf("holder %q waited %v", he.Holder, he.Waited)
	}
	f.Close()
	g, err := Acquire(ctx, p, nil, 0)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	g.Close()
}
