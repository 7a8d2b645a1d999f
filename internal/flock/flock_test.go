package flock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

func TestSharedAndHolders(t *testing.T) {
	p := filepath.Join(t.TempDir(), "read")
	ctx := context.Background()
	if _, err := AcquireShared(ctx, p, 0); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("shared lock on a missing file: %v", err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r1, err := AcquireShared(ctx, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := AcquireShared(ctx, p, 0)
	if err != nil {
		t.Fatalf("two shared locks: %v", err)
	}
	_, err = Acquire(ctx, p, map[string]int{"pid": 1}, 0)
	var he *HeldError
	if !errors.As(err, &he) {
		t.Fatalf("exclusive beside shared: %v", err)
	}
	// Both shared locks are this process's: Holders names it once.
	ps, err := Holders(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].PID != os.Getpid() || !strings.Contains(ps[0].Command, filepath.Base(os.Args[0])) {
		t.Fatalf("holders %+v, want this process", ps)
	}
	r1.Close()
	r2.Close()
	if ps, _ := Holders(p); len(ps) != 0 {
		t.Fatalf("holders after release: %+v", ps)
	}
	x, err := Acquire(ctx, p, map[string]int{"pid": 1}, 0)
	if err != nil {
		t.Fatalf("exclusive after the shared locks: %v", err)
	}
	defer x.Close()
	if _, err := AcquireShared(ctx, p, 30*time.Millisecond); !errors.As(err, &he) || !strings.Contains(string(he.Holder), `"pid":1`) {
		t.Fatalf("shared beside exclusive: %v", err)
	}
}

func TestParseLocks(t *testing.T) {
	locks := []byte(`1: FLOCK  ADVISORY  READ  1234 fd:01:5678 0 EOF
1: -> FLOCK  ADVISORY  WRITE 99 fd:01:5678 0 EOF
2: FLOCK  ADVISORY  READ  1234 fd:01:5678 0 EOF
3: POSIX  ADVISORY  WRITE 555 fd:01:5678 0 EOF
4: FLOCK  ADVISORY  READ  4321 fd:01:5678 0 EOF
5: FLOCK  ADVISORY  WRITE 777 fd:01:56789 0 EOF
6: OFDLCK ADVISORY  WRITE -1 fd:01:5678 0 EOF
`)
	cmd := func(pid int) string { return fmt.Sprint("cmd", pid) }
	got := parseLocks(locks, 0xfd, 1, 5678, cmd)
	want := []Process{{1234, "cmd1234"}, {4321, "cmd4321"}}
	if !slices.Equal(got, want) {
		t.Fatalf("holders %+v, want %+v", got, want)
	}
	// Another device number than stat's (btrfs): by inode.
	if got := parseLocks(locks, 0x2b, 0, 56789, cmd); len(got) != 1 || got[0].PID != 777 {
		t.Fatalf("holders by inode %+v", got)
	}
}
