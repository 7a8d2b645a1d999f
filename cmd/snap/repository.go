package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"snap/internal/backend"
	"snap/internal/backend/limit"
	"snap/internal/backend/local"
	"snap/internal/backend/objlock"
	"snap/internal/backend/retry"
	"snap/internal/backend/s3"
	"snap/internal/backend/sftp"
	"snap/repo"
)

// remoteOptions are the global flags of sftp and s3 repositories.
type remoteOptions struct {
	sshCommand  string // --ssh-command: ssh program and options for sftp
	s3Region    string // --s3-region
	connections int    // --connections: operations at once on a remote backend
	// --limit-upload, --limit-download: KiB/s, 0 for no limit
	limitUpload, limitDownload int64
}

// repoLocation is a resolved repository location.
type repoLocation struct {
	be        backend.Backend
	indexPath string
	remote    bool
	// noConfig is set for a remote location without a config file: the
	// error of loading it (a missing bucket says so).
	noConfig error
}

// openBackend turns the repository location into a backend and the path of
// its index. For a remote location that holds no repository yet (snap init),
// the index path is a link that the backend creates when init saves the
// config: only then is the repository ID, which names the cache, known.
func (g *globals) openBackend() (backend.Backend, string, error) {
	l, err := g.resolve(context.Background())
	if err != nil {
		return nil, "", err
	}
	return l.be, l.indexPath, nil
}

func (g *globals) resolve(ctx context.Context) (*repoLocation, error) {
	loc := g.repo
	if loc == "" {
		return nil, errors.New("no repository given; use -r LOCATION or set SNAP_REPOSITORY")
	}
	switch {
	case strings.HasPrefix(loc, "sftp:"), strings.HasPrefix(loc, "s3:"):
		return g.resolveRemote(ctx, loc)
	case strings.HasPrefix(loc, "rest:"):
		return nil, fmt.Errorf("repository %s: the rest backend is not available yet; use a local directory, sftp: or s3:", loc)
	}
	dir, err := filepath.Abs(loc)
	if err != nil {
		return nil, err
	}
	return &repoLocation{be: local.New(dir), indexPath: filepath.Join(dir, "index.db")}, nil
}

// resolveRemote connects to an sftp or s3 location and finds its index in the
// cache directory.
func (g *globals) resolveRemote(ctx context.Context, loc string) (*repoLocation, error) {
	notify := func(msg string) { fmt.Fprintf(g.stderr, "snap: %s\n", msg) }
	var raw backend.Backend
	var locker *objlock.Locker
	var creator interface{ Create(context.Context) error }
	if strings.HasPrefix(loc, "sftp:") {
		l, err := sftp.ParseLocation(loc)
		if err != nil {
			return nil, err
		}
		be, err := sftp.Open(ctx, l, sftp.Options{Command: g.remote.sshCommand, Connections: g.remote.connections})
		if err != nil {
			return nil, err
		}
		raw, locker, creator = be, be.Locker, be
	} else {
		l, err := s3.ParseLocation(loc)
		if err != nil {
			return nil, err
		}
		be, err := s3.Open(ctx, l, s3.Options{
			Region:       g.remote.s3Region,
			Connections:  g.remote.connections,
			CAFile:       os.Getenv(s3.CAFileEnv),
			BucketLookup: os.Getenv(s3.BucketLookupEnv),
		})
		if err != nil {
			return nil, err
		}
		raw, locker, creator = be, be.Locker, be
	}
	ropts := retry.Options{}
	if !g.quiet {
		ropts.Notify = notify
	}
	be := retry.New(raw, ropts)
	locker.Notify = notify
	locker.UseBackend(be) // lock objects get retries too

	data, err := backend.LoadAll(ctx, be, "config")
	if errors.Is(err, backend.ErrNotExist) {
		link, lerr := pendingIndexPath()
		if lerr != nil {
			be.Close()
			return nil, lerr
		}
		return &repoLocation{
			be:        &pendingRemote{Backend: be, creator: creator, link: link},
			indexPath: link,
			remote:    true,
			noConfig:  err,
		}, nil
	}
	if err != nil {
		be.Close()
		return nil, fmt.Errorf("open repository %s: read config: %w", be.Location(), err)
	}
	cfg, err := repo.ParseConfig(data)
	if err != nil {
		be.Close()
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	dir, err := cacheDir(cfg.ID)
	if err != nil {
		be.Close()
		return nil, err
	}
	limited := limit.New(be, g.remote.limitUpload*1024, g.remote.limitDownload*1024)
	return &repoLocation{be: limited, indexPath: filepath.Join(dir, "index.db"), remote: true}, nil
}

// cacheRoot is $XDG_CACHE_HOME/snap (default ~/.cache/snap), created 0700
// with a CACHEDIR.TAG so that backup tools skip it.
func cacheRoot() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache directory for the index of a remote repository: %w; set XDG_CACHE_HOME", err)
	}
	root := filepath.Join(base, "snap")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("create cache directory: %w; set XDG_CACHE_HOME to a writable directory", err)
	}
	tag := filepath.Join(root, "CACHEDIR.TAG")
	if _, err := os.Stat(tag); errors.Is(err, os.ErrNotExist) {
		const text = "Signature: 8a477f597d28d172789f06886806bc55\n# This directory is a cache of snap (indexes of remote repositories).\n"
		if err := os.WriteFile(tag, []byte(text), 0o600); err != nil {
			return "", fmt.Errorf("create %s: %w", tag, err)
		}
	}
	return root, nil
}

// cacheDir is the cache directory of the repository with id.
func cacheDir(id string) (string, error) {
	root, err := cacheRoot()
	if err != nil {
		return "", err
	}
	if len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", fmt.Errorf("repository id %q is not 64 hex digits", id)
	}
	dir := filepath.Join(root, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create cache directory: %w", err)
	}
	return dir, nil
}

// pendingIndexPath is where init's index is opened: cache/init-<random>/index.db
// becomes a link to cache/<id>/index.db once the config is saved. Leftovers
// older than a day (from earlier inits) are removed.
func pendingIndexPath() (string, error) {
	root, err := cacheRoot()
	if err != nil {
		return "", err
	}
	if entries, err := os.ReadDir(root); err == nil {
		for _, e := range entries {
			if fi, err := e.Info(); err == nil && strings.HasPrefix(e.Name(), "init-") && time.Since(fi.ModTime()) > 24*time.Hour {
				os.RemoveAll(filepath.Join(root, e.Name()))
			}
		}
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	dir := filepath.Join(root, "init-"+hex.EncodeToString(r[:]))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("create cache directory: %w", err)
	}
	return filepath.Join(dir, "index.db"), nil
}

// pendingRemote is a remote backend that holds no repository yet. Saving the
// config creates the bucket or directory, then links the index path handed
// out to the cache directory named by the new repository's ID.
type pendingRemote struct {
	backend.Backend
	creator interface{ Create(context.Context) error }
	link    string
}

func (p *pendingRemote) Save(ctx context.Context, name string, rd io.Reader) error {
	if name != "config" {
		return p.Backend.Save(ctx, name, rd)
	}
	data, err := io.ReadAll(rd)
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	cfg, err := repo.ParseConfig(data)
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if p.creator != nil {
		if err := p.creator.Create(ctx); err != nil {
			return fmt.Errorf("create repository at %s: %w", p.Location(), err)
		}
	}
	dir, err := cacheDir(cfg.ID)
	if err != nil {
		return err
	}
	if err := os.Symlink(filepath.Join(dir, "index.db"), p.link); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("link the index cache %s: %w", p.link, err)
	}
	return p.Backend.Save(ctx, name, bytes.NewReader(data))
}

// Unwrap returns the wrapped backend.
func (p *pendingRemote) Unwrap() backend.Backend { return p.Backend }

// Lock takes the wrapped backend's lock.
func (p *pendingRemote) Lock(ctx context.Context, info backend.LockInfo, wait time.Duration) (func() error, error) {
	l, ok := p.Backend.(backend.Locker)
	if !ok {
		return nil, fmt.Errorf("lock %s: this backend cannot lock", p.Location())
	}
	return l.Lock(ctx, info, wait)
}

// open opens the repository for reading. A remote repository's cache index
// first learns about packs that other clients wrote.
func (g *globals) open(ctx context.Context, compression string) (*repo.Repository, error) {
	l, err := g.resolve(ctx)
	if err != nil {
		return nil, err
	}
	if !l.remote {
		if _, err := os.Stat(l.be.Location()); err != nil && errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s (the directory does not exist); create one with 'snap init -r %s'", repo.ErrNoRepository, l.be.Location(), g.repo)
		}
		return repo.Open(ctx, l.be, repo.Options{IndexPath: l.indexPath, Compression: compression})
	}
	if l.noConfig != nil {
		os.Remove(filepath.Dir(l.indexPath))
		if p, ok := l.be.(*pendingRemote); ok {
			if c, ok := p.Backend.(io.Closer); ok {
				c.Close()
			}
		}
		return nil, fmt.Errorf("%w at %s (%v); create one with 'snap init -r %s'", repo.ErrNoRepository, l.be.Location(), l.noConfig, g.repo)
	}
	r, err := repo.Open(ctx, l.be, repo.Options{IndexPath: l.indexPath, Compression: compression,
		TreeCacheDir:     filepath.Join(filepath.Dir(l.indexPath), "trees"),
		SnapshotCacheDir: filepath.Join(filepath.Dir(l.indexPath), "snapshots"), Cache: true})
	if err != nil {
		return nil, err
	}
	if _, err := r.SyncCache(ctx); err != nil {
		r.Close()
		return nil, fmt.Errorf("update the index cache %s: %w", l.indexPath, err)
	}
	return r, nil
}

// lock takes the write lock for command.
func (g *globals) lock(ctx context.Context, r *repo.Repository, command string) (func() error, error) {
	info, wait, err := g.lockArgs(command)
	if err != nil {
		return nil, err
	}
	return r.Lock(ctx, info, wait)
}

// lockArgs returns what describes this process to other lock holders, and
// how long --lock-wait says to wait.
func (g *globals) lockArgs(command string) (backend.LockInfo, time.Duration, error) {
	wait, err := time.ParseDuration(g.lockWait)
	if err != nil {
		return backend.LockInfo{}, 0, fmt.Errorf("--lock-wait %q: %w", g.lockWait, err)
	}
	host, _ := os.Hostname()
	return backend.LockInfo{Host: host, PID: os.Getpid(), Command: command, Start: time.Now()}, wait, nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}
