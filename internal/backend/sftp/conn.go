package sftp

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
)

// conn is one running ssh process and the SFTP session over its stdio.
type conn struct {
	cmd     *exec.Cmd
	client  *sftp.Client
	stderr  *tailBuffer
	done    chan struct{} // closed when ssh has exited
	waitErr error         // ssh's exit status, set before done is closed
	killed  atomic.Bool   // kill was called: the connection must not be used
	stop    func()        // kills the process (once)
}

// kill kills ssh; the connection counts as dead from now on.
func (c *conn) kill() {
	c.killed.Store(true)
	c.stop()
}

// dead reports whether ssh has exited or is being killed.
func (c *conn) dead() bool {
	if c.killed.Load() {
		return true
	}
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// exited reports whether ssh has exited.
func (c *conn) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to d for ssh to exit and reports whether it did.
func (c *conn) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}

// close ends the session and the ssh process.
func (c *conn) close() {
	if c.client != nil {
		c.client.Close()
	}
	c.kill()
	<-c.done
}

// exitSummary describes how ssh ended and what it said, in one line.
func (c *conn) exitSummary() string {
	var parts []string
	if c.exited() {
		var ee *exec.ExitError
		switch {
		case c.waitErr == nil:
			parts = append(parts, "ssh exited")
		case errors.As(c.waitErr, &ee) && ee.ExitCode() >= 0:
			parts = append(parts, fmt.Sprintf("ssh exited with status %d", ee.ExitCode()))
		default:
			parts = append(parts, "ssh ended: "+c.waitErr.Error())
		}
	}
	if s := c.stderr.summary(); s != "" {
		parts = append(parts, s)
	}
	return strings.Join(parts, ": ")
}

// tailBuffer keeps the last bytes that ssh wrote to its stderr.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 4096

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

// summary returns ssh's last meaningful messages joined into one line.
func (t *tailBuffer) summary() string {
	t.mu.Lock()
	text := string(t.buf)
	t.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(strings.TrimSuffix(l, "\r"))
		if l == "" || strings.HasPrefix(l, "Warning: Permanently added") {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, "; ")
}

// ConnError is returned when the ssh connection breaks during an operation.
// It is temporary: the backend starts a new ssh process for the next
// operation, so retrying can succeed.
type ConnError struct {
	Op     string // e.g. "save data/ab/ab12…"
	Dest   string // [user@]host
	Err    error  // what the SFTP client saw
	Detail string // ssh's exit status and last stderr lines
}

func (e *ConnError) Error() string {
	msg := fmt.Sprintf("%s: sftp connection to %s lost: %v", e.Op, e.Dest, e.Err)
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

func (e *ConnError) Unwrap() error { return e.Err }

// Temporary reports true: a new connection may work.
func (e *ConnError) Temporary() bool { return true }

// ConnectError is returned when ssh cannot be started or the SFTP session
// cannot be set up (unknown host, refused key, no sftp subsystem).
type ConnectError struct {
	Dest    string
	Command []string
	Err     error
	Detail  string
	// Transient is true when an earlier connection to the same server
	// worked, so that the failure is probably passing.
	Transient bool
}

func (e *ConnectError) Error() string {
	msg := fmt.Sprintf("sftp: connect to %s with %q failed", e.Dest, strings.Join(e.Command, " "))
	if e.Detail != "" {
		msg += ": " + e.Detail
	} else if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg + "; check the host, user and key (ssh options go in ~/.ssh/config or --ssh-command)"
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Temporary reports whether retrying may help.
func (e *ConnectError) Temporary() bool { return e.Transient }

// Permanent reports whether retrying is useless (the first connection
// failed: wrong host, user, key or command).
func (e *ConnectError) Permanent() bool { return !e.Transient }
