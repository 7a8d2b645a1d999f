// Package sftp stores a repository on an SSH server, speaking SFTP through
// the system's ssh program.
//
// Running ssh (rather than a Go SSH client) means ~/.ssh/config, keys, the
// agent, known_hosts and ProxyJump work exactly as they do for ssh, scp and
// rsync. The command is "ssh" by default; Options.Command (the --ssh-command
// flag) replaces the program and its options, and the backend always appends
// [-p port] [user@]host -s sftp.
//
// Save writes to tmp/tmp-<random> in the repository, fsyncs it (when the
// server offers fsync@openssh.com) and renames it into place with
// posix-rename@openssh.com where available, so readers see a whole file or
// none. Directories such as data/ab/ are created on demand. When the ssh
// connection breaks, the operation fails with a *ConnError (temporary, for the
// retry wrapper) and the next operation starts a new ssh process. What ssh
// printed on stderr ("Permission denied (publickey)", "Could not resolve
// hostname …") is part of the error.
//
// Locking uses lock objects (package objlock); after taking the exclusive lock
// the backend deletes temporary files older than an hour, left by killed
// uploads.
//
// Entry points: ParseLocation, Open, and the backend.Backend methods; Close
// ends the ssh process.
package sftp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"

	"snap/internal/backend"
	"snap/internal/backend/objlock"
)

// Options configure a connection.
type Options struct {
	// Command is the ssh program and its options, split like a shell
	// would (see SplitCommand); "" means "ssh".
	Command string
	// Connections bounds the operations running at once; 0 means 5.
	Connections int
}

// DefaultConnections is the default bound on concurrent operations.
const DefaultConnections = 5

// staleTempAge is the age after which a file in tmp/ is taken to be the
// leftover of a killed upload.
const staleTempAge = time.Hour

// Backend is a repository on an SFTP server. It implements backend.Backend
// and, through the embedded Locker, backend.Locker.
type Backend struct {
	*objlock.Locker

	loc  Location
	argv []string // ssh program and options, without the destination
	sem  chan struct{}

	mu        sync.Mutex
	conn      *conn // the current connection; nil or dead means start a new one
	connected bool  // a connection has worked before
	closed    bool
}

// Open starts ssh and the SFTP session for loc. Failing to connect is
// reported at once, with ssh's own message.
func Open(ctx context.Context, loc Location, opts Options) (*Backend, error) {
	if err := loc.check(); err != nil {
		return nil, fmt.Errorf("sftp location %s: %w", loc, err)
	}
	command := opts.Command
	if strings.TrimSpace(command) == "" {
		command = "ssh"
	}
	argv, err := SplitCommand(command)
	if err != nil {
		return nil, fmt.Errorf("--ssh-command: %w", err)
	}
	n := opts.Connections
	if n <= 0 {
		n = DefaultConnections
	}
	b := &Backend{loc: loc, argv: argv, sem: make(chan struct{}, n)}
	b.Locker = objlock.New(b)
	if _, err := b.getConn(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// Location returns the location in the form ParseLocation reads.
func (b *Backend) Location() string { return b.loc.String() }

// Close ends the SFTP session and the ssh process.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.conn != nil {
		b.conn.close()
		b.conn = nil
	}
	return nil
}

// sshArgs is the full ssh command line.
func (b *Backend) sshArgs() []string {
	args := append([]string(nil), b.argv...)
	if b.loc.Port != "" {
		args = append(args, "-p", b.loc.Port)
	}
	return append(args, b.loc.Destination(), "-s", "sftp")
}

// getConn returns a live connection, starting ssh when there is none.
func (b *Backend) getConn(ctx context.Context) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("sftp %s: the backend is closed", b.loc)
	}
	if b.conn != nil && !b.conn.dead() {
		return b.conn, nil
	}
	if b.conn != nil {
		b.conn.close()
		b.conn = nil
	}
	c, err := b.connect(ctx)
	if err != nil {
		var ce *ConnectError
		if errors.As(err, &ce) {
			ce.Transient = b.connected
		}
		return nil, err
	}
	b.conn, b.connected = c, true
	return c, nil
}

func (b *Backend) connect(ctx context.Context) (*conn, error) {
	args := b.sshArgs()
	cmd := exec.Command(args[0], args[1:]...)
	c := &conn{cmd: cmd, stderr: &tailBuffer{}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	fail := func(err error) error {
		return &ConnectError{Dest: b.loc.Destination(), Command: args, Err: err, Detail: c.exitSummary()}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fail(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fail(err)
	}
	if err := cmd.Start(); err != nil {
		return nil, &ConnectError{Dest: b.loc.Destination(), Command: args,
			Err: fmt.Errorf("start %s: %w (install OpenSSH's client or set --ssh-command)", args[0], err)}
	}
	var once sync.Once
	c.stop = func() { once.Do(func() { cmd.Process.Kill() }) }
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()

	type result struct {
		client *sftp.Client
		err    error
	}
	ch := make(chan result, 1)
	go func() {
		cl, err := sftp.NewClientPipe(stdout, stdin,
			sftp.UseConcurrentWrites(true),
			sftp.MaxConcurrentRequestsPerFile(64))
		ch <- result{cl, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		c.kill()
		<-c.done
		return nil, ctx.Err()
	}
	if r.err != nil {
		// ssh usually exits right after it prints why; wait for that.
		if !c.waitExit(5 * time.Second) {
			c.kill()
			<-c.done
		}
		return nil, fail(r.err)
	}
	c.client = r.client
	return c, nil
}

// lost reports whether err means that the connection is gone.
func lost(c *conn, err error) bool {
	return c.dead() ||
		errors.Is(err, sftp.ErrSSHFxConnectionLost) ||
		errors.Is(err, sftp.ErrSSHFxNoConnection) ||
		errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, os.ErrClosed)
}

// fail turns an error of an SFTP call on c into the backend's error for op:
// a lost connection becomes a *ConnError and c is dropped; missing files wrap
// backend.ErrNotExist.
func (b *Backend) fail(c *conn, op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if lost(c, err) {
		c.kill()
		c.waitExit(2 * time.Second)
		return &ConnError{Op: op, Dest: b.loc.Destination(), Err: err, Detail: c.exitSummary()}
	}
	return fmt.Errorf("%s on %s: %w", op, b.loc, err)
}

// do runs fn on a live connection, holding one of the operation slots. When
// ctx ends while fn runs, the connection is killed so that fn returns.
func (b *Backend) do(ctx context.Context, op string, fn func(c *conn) error) error {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	defer func() { <-b.sem }()
	c, err := b.getConn(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	stop := context.AfterFunc(ctx, c.kill)
	defer stop()
	err = fn(c)
	if ctx.Err() != nil && err != nil {
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	return b.fail(c, op, err)
}

// path maps a backend name to the server path.
func (b *Backend) path(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("invalid file name %q", name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." || el == "." || el == "" {
			return "", fmt.Errorf("invalid file name %q", name)
		}
	}
	if b.loc.Path == "" {
		return name, nil
	}
	return path.Join(b.loc.Path, name), nil
}

// Create makes the repository directory if it does not exist. Init calls it
// before it writes the config.
func (b *Backend) Create(ctx context.Context) error {
	if b.loc.Path == "" {
		return nil
	}
	return b.do(ctx, "create "+b.loc.Path, func(c *conn) error {
		return c.client.MkdirAll(b.loc.Path)
	})
}

func randomName() (string, error) {
	var r [12]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	return "tmp-" + hex.EncodeToString(r[:]), nil
}

// Save writes rd to a temporary file, syncs it and renames it to name.
func (b *Backend) Save(ctx context.Context, name string, rd io.Reader) error {
	dst, err := b.path(name)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	tmpName, err := randomName()
	if err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	tmp, _ := b.path("tmp/" + tmpName)
	return b.do(ctx, "save "+name, func(c *conn) error {
		f, err := c.client.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if errors.Is(err, fs.ErrNotExist) {
			if err := c.client.MkdirAll(path.Dir(tmp)); err != nil {
				return fmt.Errorf("create directory %s: %w", path.Dir(tmp), err)
			}
			f, err = c.client.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", tmp, err)
		}
		done := false
		defer func() {
			if !done {
				f.Close()
				if !c.dead() {
					c.client.Remove(tmp)
				}
			}
		}()
		// Private to the owner, like the local backend's files; a server
		// that cannot change modes keeps its default.
		if err := f.Chmod(0o600); err != nil && lost(c, err) {
			return fmt.Errorf("chmod %s: %w", tmp, err)
		}
		if _, err := f.ReadFromWithConcurrency(backend.ContextReader(ctx, rd), 0); err != nil {
			return fmt.Errorf("write %s: %w", tmp, err)
		}
		if _, ok := c.client.HasExtension("fsync@openssh.com"); ok {
			if err := f.Sync(); err != nil {
				return fmt.Errorf("fsync %s: %w", tmp, err)
			}
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", tmp, err)
		}
		err = b.rename(c, tmp, dst)
		if errors.Is(err, fs.ErrNotExist) {
			if err := c.client.MkdirAll(path.Dir(dst)); err != nil {
				return fmt.Errorf("create directory %s: %w", path.Dir(dst), err)
			}
			err = b.rename(c, tmp, dst)
		}
		if err != nil {
			return fmt.Errorf("rename %s to %s: %w", tmp, dst, err)
		}
		done = true
		return nil
	})
}

// rename moves tmp to dst, replacing dst.
func (b *Backend) rename(c *conn, tmp, dst string) error {
	if _, ok := c.client.HasExtension("posix-rename@openssh.com"); ok {
		return c.client.PosixRename(tmp, dst)
	}
	// Plain SFTP rename refuses to replace: remove the old file first. Only
	// lock objects are ever replaced, so the gap does no harm.
	err := c.client.Rename(tmp, dst)
	if err == nil || lost(c, err) {
		return err
	}
	if _, serr := c.client.Stat(dst); serr != nil {
		return err
	}
	if err := c.client.Remove(dst); err != nil {
		return err
	}
	return c.client.Rename(tmp, dst)
}

// Load opens name at offset; length 0 reads to the end.
func (b *Backend) Load(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	p, err := b.path(name)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("load %s: negative offset or length", name)
	}
	var lr *loadReader
	op := "load " + name
	err = b.do(ctx, op, func(c *conn) error {
		f, err := c.client.Open(p)
		if err != nil {
			return err
		}
		if offset > 0 {
			if _, err := f.Seek(offset, io.SeekStart); err != nil {
				f.Close()
				return err
			}
		}
		var r io.Reader = f
		if length > 0 {
			r = io.LimitReader(f, length)
		}
		lr = &loadReader{b: b, c: c, ctx: ctx, op: op, r: r, f: f}
		lr.stop = context.AfterFunc(ctx, c.kill)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lr, nil
}

// loadReader reads one opened file.
type loadReader struct {
	b    *Backend
	c    *conn
	ctx  context.Context
	op   string
	r    io.Reader
	f    *sftp.File
	stop func() bool
}

func (l *loadReader) Read(p []byte) (int, error) {
	if err := l.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := l.r.Read(p)
	if err != nil && err != io.EOF {
		if l.ctx.Err() != nil {
			return n, l.ctx.Err()
		}
		return n, l.b.fail(l.c, l.op, err)
	}
	return n, err
}

func (l *loadReader) Close() error {
	l.stop()
	if err := l.f.Close(); err != nil && !lost(l.c, err) {
		return l.b.fail(l.c, l.op, err)
	}
	return nil
}

// Stat returns the size of name.
func (b *Backend) Stat(ctx context.Context, name string) (backend.FileInfo, error) {
	p, err := b.path(name)
	if err != nil {
		return backend.FileInfo{}, fmt.Errorf("stat: %w", err)
	}
	var fi backend.FileInfo
	err = b.do(ctx, "stat "+name, func(c *conn) error {
		st, err := c.client.Stat(p)
		if err != nil {
			return err
		}
		if st.IsDir() {
			return fmt.Errorf("%s is a directory", p)
		}
		fi = backend.FileInfo{Name: name, Size: st.Size()}
		return nil
	})
	return fi, err
}

// List calls fn for every regular file under dir. A missing dir lists
// nothing. Directories are read by several requests at once (a repository's
// data/ has 256 subdirectories, and each read is a round trip), but fn is
// called by one goroutine at a time.
func (b *Backend) List(ctx context.Context, dir string, fn func(backend.FileInfo) error) error {
	root, err := b.path(dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	// lctx ends the listing early (fn failed); only the caller's ctx may
	// kill the connection (see do).
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu      sync.Mutex // serializes fn and guards pending and active
		wg      sync.WaitGroup
		pending = []string{dir}
		active  int
		wake    = make(chan struct{}, 1)
	)
	fail := func(err error) {
		cancel(err)
	}
	readDir := func(rel string) {
		defer wg.Done()
		var entries []fs.FileInfo
		err := b.do(parent, "list "+rel, func(c *conn) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			var err error
			entries, err = c.client.ReadDirContext(ctx, path.Join(root, strings.TrimPrefix(rel, dir)))
			if err == nil && ctx.Err() != nil {
				err = ctx.Err()
			}
			return err
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			// A missing directory (dir itself, or one removed while
			// listing) holds nothing.
			fail(err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range entries {
			if ctx.Err() != nil {
				break
			}
			name := path.Join(rel, e.Name())
			switch {
			case e.IsDir():
				pending = append(pending, name)
			case e.Mode().IsRegular():
				if err := fn(backend.FileInfo{Name: name, Size: e.Size()}); err != nil {
					fail(err)
				}
			}
		}
		active--
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	limit := cap(b.sem)
	for {
		mu.Lock()
		for len(pending) > 0 && active < limit && ctx.Err() == nil {
			next := pending[len(pending)-1]
			pending = pending[:len(pending)-1]
			active++
			wg.Add(1)
			go readDir(next)
		}
		done := active == 0 && (len(pending) == 0 || ctx.Err() != nil)
		mu.Unlock()
		if done {
			break
		}
		<-wake
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// Remove deletes name.
func (b *Backend) Remove(ctx context.Context, name string) error {
	p, err := b.path(name)
	if err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	return b.do(ctx, "remove "+name, func(c *conn) error {
		return c.client.Remove(p)
	})
}

// Lock takes the exclusive lock (see objlock) and then deletes temporary
// files that killed uploads left behind.
func (b *Backend) Lock(ctx context.Context, info backend.LockInfo, wait time.Duration) (func() error, error) {
	unlock, err := b.Locker.Lock(ctx, info, wait)
	if err != nil {
		return nil, err
	}
	b.removeStaleTemp(ctx)
	return unlock, nil
}

// removeStaleTemp deletes files in tmp/ older than staleTempAge; errors are
// ignored, the next writer tries again.
func (b *Backend) removeStaleTemp(ctx context.Context) {
	dir, _ := b.path("tmp")
	_ = b.do(ctx, "clean tmp", func(c *conn) error {
		entries, err := c.client.ReadDirContext(ctx, dir)
		if err != nil {
			return nil
		}
		for _, e := range entries {
			if e.Mode().IsRegular() && strings.HasPrefix(e.Name(), "tmp-") && time.Since(e.ModTime()) > staleTempAge {
				c.client.Remove(path.Join(dir, e.Name()))
			}
		}
		return nil
	})
}
