package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"snap/internal/backend"
	"snap/internal/backend/local"
	"snap/repo"
)

// openBackend turns a repository location into a backend and the path of its index.
func (g *globals) openBackend() (backend.Backend, string, error) {
	loc := g.repo
	if loc == "" {
		return nil, "", errors.New("no repository given; use -r LOCATION or set SNAP_REPOSITORY")
	}
	for _, scheme := range []string{"sftp:", "s3:", "rest:"} {
		if strings.HasPrefix(loc, scheme) {
			return nil, "", fmt.Errorf("repository %s: the %s backend is not available yet; use a local directory", loc, strings.TrimSuffix(scheme, ":"))
		}
	}
	dir, err := filepath.Abs(loc)
	if err != nil {
		return nil, "", err
	}
	return local.New(dir), filepath.Join(dir, "index.db"), nil
}

// open opens the repository for reading.
func (g *globals) open(ctx context.Context, compression string) (*repo.Repository, error) {
	be, idx, err := g.openBackend()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(be.Location()); err != nil && errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s (the directory does not exist); create one with 'snap init -r %s'", repo.ErrNoRepository, be.Location(), g.repo)
	}
	return repo.Open(ctx, be, repo.Options{IndexPath: idx, Compression: compression})
}

// lock takes the write lock for command.
func (g *globals) lock(ctx context.Context, r *repo.Repository, command string) (func() error, error) {
	wait, err := time.ParseDuration(g.lockWait)
	if err != nil {
		return nil, fmt.Errorf("--lock-wait %q: %w", g.lockWait, err)
	}
	host, _ := os.Hostname()
	return r.Lock(ctx, backend.LockInfo{Host: host, PID: os.Getpid(), Command: command, Start: time.Now()}, wait)
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}
