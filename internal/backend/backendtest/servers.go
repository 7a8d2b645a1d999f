// Package backendtest holds what the backend tests share: the conformance
// suite every backend.Backend must pass (Run), and real servers on 127.0.0.1
// to run it against: an OpenSSH sshd started as a child process (StartSSHD)
// and an in-memory S3 server over TLS (StartS3).
//
// It is imported by tests only.
package backendtest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// SSHD is an OpenSSH server running as a child process of the test, with a
// throwaway host key, accepting one generated client key.
type SSHD struct {
	Port    int
	User    string
	KeyFile string // the client's private key
	Dir     string // holds keys, config and the server's log

	sshd   string // the sshd binary
	config string
	mu     sync.Mutex
	cmd    *exec.Cmd
	log    *bytes.Buffer
	done   chan struct{}
}

// sshdBinary finds sshd; it lives outside PATH for ordinary users.
func sshdBinary() string {
	if p, err := exec.LookPath("sshd"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// StartSSHD starts sshd on a free port of 127.0.0.1 and stops it when the
// test ends. It skips the test when OpenSSH's server or client is missing.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	bin := sshdBinary()
	if bin == "" {
		t.Skip("sshd not found: install OpenSSH's server (apt-get install openssh-server) to run the sftp tests")
	}
	for _, tool := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install OpenSSH's client to run the sftp tests", tool)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("current user: %v", err)
	}
	dir := t.TempDir()
	s := &SSHD{User: u.Username, Dir: dir, sshd: bin, KeyFile: filepath.Join(dir, "client_key")}
	for _, key := range []string{"host_key", "client_key"} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "snap-test",
			"-f", filepath.Join(dir, key)).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	pub, err := os.ReadFile(s.KeyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd started by root insists on its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Skipf("sshd needs /run/sshd: %v", err)
		}
	}
	s.config = filepath.Join(dir, "sshd_config")
	cfg := strings.Join([]string{
		"ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(dir, "host_key"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PidFile none",
		"StrictModes no",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"PermitRootLogin yes",
		"MaxStartups 100",
		"MaxSessions 100",
		"Subsystem sftp internal-sftp",
		"",
	}, "\n")
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The free port may be taken between looking and listening: try again.
	for attempt := 1; ; attempt++ {
		s.Port = FreePort(t)
		err := s.Start()
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatal(err)
		}
	}
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server again after Stop.
func (s *SSHD) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	cmd := exec.Command(s.sshd, "-D", "-e", "-f", s.config, "-p", strconv.Itoa(s.Port))
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: log}, &lockedWriter{w: log}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			return fmt.Errorf("sshd exited at start: %s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("sshd does not listen on port %d: %s", s.Port, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd, s.log, s.done = cmd, log, done
	return nil
}

// Stop kills the listening server and every session process.
func (s *SSHD) Stop() {
	s.KillSessions()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// KillSessions kills the sshd processes that serve connections (the
// children of the listener), as if the server side dropped every
// connection. It returns how many it killed.
func (s *SSHD) KillSessions() int {
	s.mu.Lock()
	var pid int
	if s.cmd != nil {
		pid = s.cmd.Process.Pid
	}
	s.mu.Unlock()
	if pid == 0 {
		return 0
	}
	n := 0
	for _, child := range descendants(pid) {
		if syscall.Kill(child, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// KillSSHClients kills the ssh client processes started by this test
// process (the sftp backend's connections) and returns how many it killed.
func KillSSHClients() int {
	n := 0
	for _, pid := range descendants(os.Getpid()) {
		comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == "ssh" && syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			parent[p] = pp
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for c, pp := range parent {
			if pp == p {
				out = append(out, c)
				walk(c)
			}
		}
	}
	walk(pid)
	return out
}

// Log returns what sshd logged so far.
func (s *SSHD) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return ""
	}
	return s.log.String()
}

// Command is an --ssh-command value that logs in with the test key and
// trusts the throwaway host key.
func (s *SSHD) Command() string {
	return s.CommandWithKey(s.KeyFile)
}

// CommandWithKey is Command with another private key.
func (s *SSHD) CommandWithKey(key string) string {
	return "ssh -F /dev/null -i '" + key + "' -p " + strconv.Itoa(s.Port) +
		" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10"
}

// Location returns the sftp location of dir on the server (scp style; the
// port is in Command).
func (s *SSHD) Location(dir string) string {
	return "sftp:" + s.User + "@127.0.0.1:" + dir
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// S3 is an in-memory S3 server (gofakes3) served over TLS on 127.0.0.1.
// Requests must carry AccessKey (the signature itself is not checked).
type S3 struct {
	URL       string // https://127.0.0.1:port
	Endpoint  string // 127.0.0.1:port
	CAFile    string // PEM of the server's self-signed certificate
	RootCAs   *x509.CertPool
	AccessKey string
	SecretKey string

	mem  *s3mem.Backend
	srv  *httptest.Server
	fail atomic.Int64 // requests still to fail with 503
	drop atomic.Int64 // requests still to be dropped without an answer
	cut  atomic.Int64 // GET answers still to be cut off halfway
	reqs atomic.Int64
}

// StartS3 starts the server with the given buckets and stops it when the
// test ends.
func StartS3(t testing.TB, buckets ...string) *S3 {
	t.Helper()
	s := &S3{AccessKey: "AKIDSNAPTEST", SecretKey: "snap-test-secret", mem: s3mem.New()}
	for _, b := range buckets {
		if err := s.mem.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	fake := gofakes3.New(s.mem)
	s.srv = httptest.NewUnstartedServer(s.middleware(fake.Server()))
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected in tests
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.Endpoint = strings.TrimPrefix(s.srv.URL, "https://")
	s.RootCAs = x509.NewCertPool()
	s.RootCAs.AddCert(s.srv.Certificate())
	s.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := os.WriteFile(s.CAFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// Location returns the s3 location of bucket/prefix.
func (s *S3) Location(bucketAndPrefix string) string {
	return "s3:" + s.URL + "/" + bucketAndPrefix
}

// FailNext makes the next n requests fail with 503 SlowDown.
func (s *S3) FailNext(n int) { s.fail.Store(int64(n)) }

// DropNext makes the next n requests end with a connection closed halfway.
func (s *S3) DropNext(n int) { s.drop.Store(int64(n)) }

// CutNext makes the answers to the next n GET requests stop halfway through
// the body, the connection closed.
func (s *S3) CutNext(n int) { s.cut.Store(int64(n)) }

// Requests returns the number of requests served.
func (s *S3) Requests() int64 { return s.reqs.Load() }

// Credentials returns the server's credentials for an s3 client.
func (s *S3) Credentials() *credentials.Credentials {
	return credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")
}

// Env returns the environment variables that point an AWS client at this
// server's credentials.
func (s *S3) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey}
}

func (s *S3) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.reqs.Add(1)
		auth := r.Header.Get("Authorization") + r.URL.Query().Get("X-Amz-Credential")
		if !strings.Contains(auth, "Credential="+s.AccessKey+"/") && !strings.HasPrefix(r.URL.Query().Get("X-Amz-Credential"), s.AccessKey+"/") {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			if r.Method != http.MethodHead {
				fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>`)
			}
			return
		}
		if take(&s.fail) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			if r.Method != http.MethodHead {
				fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			}
			return
		}
		if r.Method == http.MethodGet && r.URL.RawQuery == "" && s.cut.Load() > 0 && take(&s.cut) {
			next.ServeHTTP(&cutWriter{ResponseWriter: w}, r)
			return
		}
		if take(&s.drop) {
			// Close the connection without an answer.
			hj, ok := w.(http.Hijacker)
			if !ok {
				http.Error(w, "cannot cut the connection", http.StatusInternalServerError)
				return
			}
			conn, _, err := hj.Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cutWriter passes on half of the announced body, then closes the
// connection.
type cutWriter struct {
	http.ResponseWriter
	started bool
	limit   int64
	written int64
	cut     bool
}

func (c *cutWriter) start() {
	if !c.started {
		c.started = true
		if n, err := strconv.ParseInt(c.Header().Get("Content-Length"), 10, 64); err == nil {
			c.limit = n / 2
		}
	}
}

func (c *cutWriter) WriteHeader(code int) {
	c.start()
	c.ResponseWriter.WriteHeader(code)
}

func (c *cutWriter) Write(p []byte) (int, error) {
	c.start()
	if c.cut {
		return 0, net.ErrClosed
	}
	if c.limit <= 0 || c.written+int64(len(p)) <= c.limit {
		c.written += int64(len(p))
		return c.ResponseWriter.Write(p)
	}
	n, _ := c.ResponseWriter.Write(p[:c.limit-c.written])
	c.written += int64(n)
	c.cut = true
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	if hj, ok := c.ResponseWriter.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
		}
	}
	return n, net.ErrClosed
}

func take(n *atomic.Int64) bool {
	for {
		v := n.Load()
		if v <= 0 {
			return false
		}
		if n.CompareAndSwap(v, v-1) {
			return true
		}
	}
}
