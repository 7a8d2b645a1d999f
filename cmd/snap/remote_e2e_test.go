package main

// End-to-end tests of the remote backends as a user meets them: the snap
// binary against a local directory, a real OpenSSH sshd and a TLS S3 server
// (gofakes3), all on 127.0.0.1 and started by the test.
//
//	TestRemoteEndToEnd             the whole command suite on local, sftp and s3
//	TestRemoteTwoMachines          two caches and hosts sharing one repository
//	TestRemoteLockWaitAfterPrune   a create that waited for another machine's prune
//	TestRemoteCacheSyncDuringPrune a cache synced while another machine prunes
//	TestRemoteConnectionKilled     connections cut at random moments of uploads
//	TestRemoteErrors               wrong host, credentials, bucket, read-only target
//	TestRemotePruneLockObjects     lock objects of other hosts, fresh and stale
//
// The S3 server here is started by the test itself (not backendtest.StartS3)
// so that the test can list, write and delete objects directly, hold up
// chosen requests, and close and reopen its listener on the same port.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"snap/internal/backend/backendtest"
	"snap/internal/testtree"
)

// ---------------------------------------------------------------------------
// An S3 server the test controls.

// e2eS3 is gofakes3 over TLS on a fixed port of 127.0.0.1. Unlike
// backendtest.S3 it exposes its storage, and its listener can be closed and
// opened again on the same port.
type e2eS3 struct {
	URL       string // https://127.0.0.1:port
	CAFile    string
	AccessKey string
	SecretKey string

	mem      *s3mem.Backend
	port     int
	tls      *tls.Config
	handler  http.Handler
	readOnly atomic.Bool  // refuse PUT, POST and DELETE with AccessDenied
	drop     atomic.Int64 // requests still to be dropped without an answer
	// hook, when set, sees every authorized request before it is served
	// (and may hold it up).
	hook atomic.Pointer[func(*http.Request)]

	mu  sync.Mutex
	srv *http.Server
}

func startE2ES3(t *testing.T) *e2eS3 {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "snap e2e test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	s := &e2eS3{AccessKey: "AKIDSNAPE2E", SecretKey: "snap-e2e-secret", mem: s3mem.New()}
	s.tls = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	s.handler = s.middleware(gofakes3.New(s.mem).Server())
	s.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(s.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		s.port = backendtest.FreePort(t)
		err := s.start()
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatal(err)
		}
	}
	s.URL = "https://127.0.0.1:" + strconv.Itoa(s.port)
	t.Cleanup(s.stop)
	return s
}

// start listens on the server's port (again).
func (s *e2eS3) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(s.port))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.handler, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(tls.NewListener(ln, s.tls))
	s.srv = srv
	return nil
}

// stop closes the listener and every open connection.
func (s *e2eS3) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

// restart stops the server, waits pause and listens on the same port again.
func (s *e2eS3) restart(t *testing.T, pause time.Duration) {
	s.stop()
	time.Sleep(pause)
	var err error
	for range 50 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("listen on port %d again: %v", s.port, err)
}

func (s *e2eS3) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		denied := func(code, msg string) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			if r.Method != http.MethodHead {
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
			}
		}
		if !strings.Contains(r.Header.Get("Authorization"), "Credential="+s.AccessKey+"/") {
			denied("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
			return
		}
		if s.readOnly.Load() && r.Method != http.MethodGet && r.Method != http.MethodHead {
			denied("AccessDenied", "Access Denied")
			return
		}
		if h := s.hook.Load(); h != nil {
			(*h)(r)
		}
		if n := s.drop.Load(); n > 0 && s.drop.CompareAndSwap(n, n-1) {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ---------------------------------------------------------------------------
// Backends, repositories and clients.

// e2eBackend is one kind of repository location with its server.
type e2eBackend struct {
	kind  string // local, sftp, s3
	env   []string
	flags []string
	sshd  *backendtest.SSHD
	s3    *e2eS3
}

// e2eRepo is one repository: its location and where the test finds its
// files (dir for local and sftp, bucket and prefix for s3).
type e2eRepo struct {
	loc            string
	dir            string
	bucket, prefix string
}

func e2eStart(t *testing.T, kind string) *e2eBackend {
	t.Helper()
	b := &e2eBackend{kind: kind}
	switch kind {
	case "local":
	case "sftp":
		b.sshd = backendtest.StartSSHD(t)
		b.flags = []string{"--ssh-command", b.sshd.Command()}
	case "s3":
		b.s3 = startE2ES3(t)
		b.env = []string{
			"SNAP_S3_CA_FILE=" + b.s3.CAFile,
			"AWS_ACCESS_KEY_ID=" + b.s3.AccessKey,
			"AWS_SECRET_ACCESS_KEY=" + b.s3.SecretKey,
			"AWS_SESSION_TOKEN=",
			"AWS_PROFILE=",
			"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(t.TempDir(), "no-credentials"),
		}
	default:
		t.Fatalf("unknown backend %q", kind)
	}
	return b
}

// newRepo returns the location of a repository that does not exist yet.
func (b *e2eBackend) newRepo(t *testing.T, name string) e2eRepo {
	t.Helper()
	switch b.kind {
	case "local":
		dir := filepath.Join(t.TempDir(), name)
		return e2eRepo{loc: dir, dir: dir}
	case "sftp":
		dir := filepath.Join(t.TempDir(), name)
		return e2eRepo{loc: b.sshd.Location(dir), dir: dir}
	}
	bucket := "e2e-" + strings.ToLower(name)
	return e2eRepo{loc: "s3:" + b.s3.URL + "/" + bucket + "/snap", bucket: bucket, prefix: "snap"}
}

// objects lists the files of repo below dir (a backend name such as "data"
// or "locks") with their sizes.
func (b *e2eBackend) objects(t *testing.T, r e2eRepo, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	if r.dir != "" {
		root := filepath.Join(r.dir, filepath.FromSlash(dir))
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			if d.Type().IsRegular() {
				fi, err := d.Info()
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(r.dir, p)
				out[filepath.ToSlash(rel)] = fi.Size()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if ok, _ := b.s3.mem.BucketExists(r.bucket); !ok {
		return out
	}
	prefix := r.prefix + "/" + dir + "/"
	p := gofakes3.NewPrefix(&prefix, nil)
	page := gofakes3.ListBucketPage{}
	for {
		list, err := b.s3.mem.ListBucket(r.bucket, &p, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list.Contents {
			out[strings.TrimPrefix(c.Key, r.prefix+"/")] = c.Size
		}
		if !list.IsTruncated || list.NextMarker == "" {
			return out
		}
		page.Marker, page.HasMarker = list.NextMarker, true
	}
}

// put writes an object into repo behind snap's back, as another client
// would.
func (b *e2eBackend) put(t *testing.T, r e2eRepo, name string, data []byte) {
	t.Helper()
	if r.dir != "" {
		p := filepath.Join(r.dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := b.s3.mem.PutObject(r.bucket, r.prefix+"/"+name,
		map[string]string{"Last-Modified": time.Now().UTC().Format(http.TimeFormat)}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatal(err)
	}
}

// remove deletes an object of repo behind snap's back.
func (b *e2eBackend) remove(t *testing.T, r e2eRepo, name string) {
	t.Helper()
	if r.dir != "" {
		if err := os.Remove(filepath.Join(r.dir, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := b.s3.mem.DeleteObject(r.bucket, r.prefix+"/"+name); err != nil {
		t.Fatal(err)
	}
}

// e2eClient runs snap as one machine: its own cache directory, plus the
// backend's environment and flags.
type e2eClient struct {
	t     *testing.T
	env   []string
	flags []string
}

func (b *e2eBackend) client(t *testing.T, cache string) *e2eClient {
	env := append([]string{"SNAP_REPOSITORY=", "XDG_CACHE_HOME=" + cache}, b.env...)
	return &e2eClient{t: t, env: env, flags: b.flags}
}

func (c *e2eClient) command(args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.Command(snapBin, append(append([]string(nil), args...), c.flags...)...)
	cmd.Env = append(os.Environ(), c.env...) // later entries win
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	return cmd, &o, &e
}

func exitCodeOf(t testing.TB, err error) int {
	t.Helper()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run snap: %v", err)
	}
	return 0
}

func (c *e2eClient) run(args ...string) result {
	c.t.Helper()
	cmd, o, e := c.command(args...)
	code := exitCodeOf(c.t, cmd.Run())
	return result{code, o.String(), e.String()}
}

func (c *e2eClient) must(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("snap %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// create runs create --json and decodes its summary.
func (c *e2eClient) create(loc string, args ...string) createSummary {
	c.t.Helper()
	r := c.must(append([]string{"create", "--json", "-r", loc}, args...)...)
	return e2eSummary(c.t, r.stdout)
}

func e2eSummary(t testing.TB, stdout string) createSummary {
	t.Helper()
	var s createSummary
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil || len(s.SnapshotID) != 64 {
		t.Fatalf("create summary %q: %v", stdout, err)
	}
	return s
}

// snapshots returns the IDs and hosts of the snapshots of loc, sorted by ID.
func (c *e2eClient) snapshots(loc string) (ids []string, hosts map[string]string) {
	c.t.Helper()
	var list []struct {
		ID       string `json:"id"`
		Hostname string `json:"hostname"`
	}
	r := c.must("snapshots", "--json", "-r", loc)
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		c.t.Fatalf("snapshots --json %q: %v", r.stdout, err)
	}
	hosts = map[string]string{}
	for _, s := range list {
		ids = append(ids, s.ID)
		hosts[s.ID] = s.Hostname
	}
	sort.Strings(ids)
	return ids, hosts
}

func e2eSorted(ids ...string) []string {
	out := append([]string(nil), ids...)
	sort.Strings(out)
	return out
}

func e2eSame(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

// oneErrorLine fails the test unless stderr is exactly one line of the form
// "snap: ..." and returns it.
func oneErrorLine(t testing.TB, what, stderr string) string {
	t.Helper()
	s := strings.TrimSpace(stderr)
	if s == "" || strings.Contains(s, "\n") || !strings.HasPrefix(s, "snap: ") {
		t.Errorf("%s: want one error line \"snap: ...\", got:\n%s", what, stderr)
	}
	return s
}

func sumBytes(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// writeRandomFile writes n pseudo-random bytes drawn from seed.
func writeRandomFile(t testing.TB, p string, seed uint64, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), 0xe2, 0xe}).Read(buf)
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// treeHashes maps each regular file below dir to the SHA-256 of its content.
func treeHashes(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ---------------------------------------------------------------------------
// 1. The command suite on every backend.

func TestRemoteEndToEnd(t *testing.T) {
	for _, kind := range []string{"local", "sftp", "s3"} {
		t.Run(kind, func(t *testing.T) {
			e2eSuite(t, e2eStart(t, kind))
		})
	}
}

func e2eSuite(t *testing.T, b *e2eBackend) {
	c := b.client(t, t.TempDir())
	first := b.newRepo(t, "first")
	if r := c.run("snapshots", "-r", first.loc); r.code != exitNoRepo {
		t.Fatalf("snapshots before init: exit %d, want %d\n%s", r.code, exitNoRepo, r.stderr)
	}
	c.must("init", "-r", first.loc)

	src := filepath.Join(t.TempDir(), "tree")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := testtree.Write(src, testtree.Spec{Seed: 41, Files: 300, Large: []int{3 << 20, 2 << 20}}); err != nil {
		t.Fatal(err)
	}
	s1 := c.create(first.loc, src)
	if s1.FilesNew < 300 {
		t.Errorf("first create: %d new files, want at least 300", s1.FilesNew)
	}

	// Change some files: three grow, two are removed (one of them the 2 MiB
	// large file, so that forgetting the first snapshot frees space), two
	// are added.
	var texts []string
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".txt") {
			texts = append(texts, p)
		}
		return err
	})
	sort.Strings(texts)
	if len(texts) < 4 {
		t.Fatalf("only %d text files in the generated tree", len(texts))
	}
	var modified []string
	for _, p := range texts[:3] {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "\nchanged for the second snapshot\n")
		f.Close()
		modified = append(modified, filepath.Base(p))
	}
	removed := []string{"large1.img", filepath.Base(texts[3])}
	os.Remove(filepath.Join(src, "large1.img"))
	os.Remove(texts[3])
	added := []string{"new-data.bin", "new-note.txt"}
	writeRandomFile(t, filepath.Join(src, "added", "new-data.bin"), 1, 512<<10)
	if err := os.WriteFile(filepath.Join(src, "added", "new-note.txt"), []byte("a note\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := c.create(first.loc, src)
	if s2.FilesChanged != int64(len(modified)) || s2.FilesNew != int64(len(added)) {
		t.Errorf("second create: %d changed, %d new files; want %d, %d", s2.FilesChanged, s2.FilesNew, len(modified), len(added))
	}

	ids, _ := c.snapshots(first.loc)
	if !e2eSame(ids, e2eSorted(s1.SnapshotID, s2.SnapshotID)) {
		t.Errorf("snapshots --json: %v, want the two created", ids)
	}

	ls := c.must("ls", "-R", "-r", first.loc, "latest").stdout
	for _, name := range append(append([]string{"large0.img"}, modified...), added...) {
		if !strings.Contains(ls, "/"+name+"\n") {
			t.Errorf("ls -R latest does not list %s", name)
		}
	}
	for _, name := range removed {
		if strings.Contains(ls, "/"+name+"\n") {
			t.Errorf("ls -R latest lists the removed %s", name)
		}
	}

	diff := c.must("diff", "-r", first.loc, "latest~1", "latest").stdout
	diffHas := func(kind byte, name string) bool {
		for _, l := range strings.Split(diff, "\n") {
			if len(l) > 0 && l[0] == kind && (strings.Contains(l, "/"+name+"  (") || strings.HasSuffix(l, "/"+name)) {
				return true
			}
		}
		return false
	}
	for _, n := range modified {
		if !diffHas('M', n) {
			t.Errorf("diff does not show %s as modified:\n%s", n, diff)
		}
	}
	for _, n := range added {
		if !diffHas('+', n) {
			t.Errorf("diff does not show %s as added:\n%s", n, diff)
		}
	}
	for _, n := range removed {
		if !diffHas('-', n) {
			t.Errorf("diff does not show %s as removed:\n%s", n, diff)
		}
	}

	out := t.TempDir()
	c.must("restore", "-r", first.loc, "latest", "--target", out)
	compareTrees(t, src, filepath.Join(out, "tree"))

	before := b.objects(t, first, "data")
	c.must("forget", "-r", first.loc, "--keep-last", "1", "--prune")
	after := b.objects(t, first, "data")
	t.Logf("forget --prune: %d packs, %d bytes -> %d packs, %d bytes", len(before), sumBytes(before), len(after), sumBytes(after))
	if sumBytes(after) > sumBytes(before)-(1<<20) {
		t.Errorf("forget --keep-last 1 --prune freed %d bytes, want at least 1 MiB (the 2 MiB file only the first snapshot held)",
			sumBytes(before)-sumBytes(after))
	}
	if ids, _ := c.snapshots(first.loc); !e2eSame(ids, []string{s2.SnapshotID}) {
		t.Errorf("snapshots after forget: %v, want only %s", ids, s2.SnapshotID)
	}
	if r := c.run("check", "--read-data", "-r", first.loc); r.code != 0 {
		t.Errorf("check --read-data: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// copy into a second repository of the same kind.
	second := b.newRepo(t, "second")
	c.must("init", "-r", second.loc, "--copy-chunker-params-from", first.loc)
	var cfg1, cfg2 struct {
		ID      string          `json:"id"`
		Chunker json.RawMessage `json:"chunker"`
	}
	json.Unmarshal([]byte(c.must("cat", "config", "-r", first.loc).stdout), &cfg1)
	json.Unmarshal([]byte(c.must("cat", "config", "-r", second.loc).stdout), &cfg2)
	if cfg1.ID == "" || cfg1.ID == cfg2.ID || !bytes.Equal(cfg1.Chunker, cfg2.Chunker) {
		t.Errorf("init --copy-chunker-params-from: config %s %s, source %s %s", cfg2.ID, cfg2.Chunker, cfg1.ID, cfg1.Chunker)
	}
	var copied struct{ Snapshots, Copied int }
	json.Unmarshal([]byte(c.must("copy", "--json", "-r", second.loc, "--from-repo", first.loc).stdout), &copied)
	if copied.Snapshots != 1 || copied.Copied != 1 {
		t.Errorf("first copy: %+v, want 1 snapshot copied", copied)
	}
	copied.Snapshots, copied.Copied = -1, -1
	json.Unmarshal([]byte(c.must("copy", "--json", "-r", second.loc, "--from-repo", first.loc).stdout), &copied)
	if copied.Snapshots != 1 || copied.Copied != 0 {
		t.Errorf("second copy: %+v, want nothing copied", copied)
	}
	if ids, _ := c.snapshots(second.loc); !e2eSame(ids, []string{s2.SnapshotID}) {
		t.Errorf("snapshots of the copy: %v, want %s", ids, s2.SnapshotID)
	}
	// Restore from the copy on a machine with no cache.
	fresh := b.client(t, t.TempDir())
	out2 := t.TempDir()
	fresh.must("restore", "-r", second.loc, "latest", "--target", out2)
	compareTrees(t, src, filepath.Join(out2, "tree"))
	if r := fresh.run("check", "--read-data", "-r", second.loc); r.code != 0 {
		t.Errorf("check --read-data of the copy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// ---------------------------------------------------------------------------
// 2. Two machines, one repository.

func TestRemoteTwoMachines(t *testing.T) {
	for _, kind := range []string{"sftp", "s3"} {
		t.Run(kind, func(t *testing.T) {
			e2eTwoMachines(t, e2eStart(t, kind))
		})
	}
}

func e2eTwoMachines(t *testing.T, b *e2eBackend) {
	repo := b.newRepo(t, "shared")
	ma, mb := b.client(t, t.TempDir()), b.client(t, t.TempDir())
	base := t.TempDir()
	srcA, srcB := filepath.Join(base, "a", "home"), filepath.Join(base, "b", "home")
	var shared int64
	for _, src := range []string{srcA, srcB} {
		if err := os.MkdirAll(filepath.Join(src, "shared"), 0o755); err != nil {
			t.Fatal(err)
		}
		// The same seed makes the same files (content and mtimes).
		n, err := testtree.Write(filepath.Join(src, "shared"), testtree.Spec{Seed: 21, Files: 60, Large: []int{4 << 20}})
		if err != nil {
			t.Fatal(err)
		}
		shared = n
	}
	const own = 256 << 10
	writeRandomFile(t, filepath.Join(srcA, "own", "a.bin"), 100, own)
	writeRandomFile(t, filepath.Join(srcB, "own", "b.bin"), 200, own)

	ma.must("init", "-r", repo.loc)
	a1 := ma.create(repo.loc, "--host", "machine-a", srcA)
	b1 := mb.create(repo.loc, "--host", "machine-b", srcB)
	t.Logf("shared %d bytes; A added %d, then B added %d", shared, a1.BytesAdded, b1.BytesAdded)
	if a1.BytesAdded < shared/2 {
		t.Errorf("machine A's first create added %d bytes of %d", a1.BytesAdded, shared)
	}
	if b1.BytesAdded > own+shared/100 {
		t.Errorf("machine B's create added %d bytes: it does not deduplicate the %d shared bytes against machine A's data (own data: %d)",
			b1.BytesAdded, shared, own)
	}

	// A, then B, change their own file and add the same new shared file.
	writeRandomFile(t, filepath.Join(srcA, "own", "a.bin"), 101, own)
	writeRandomFile(t, filepath.Join(srcA, "shared", "extra.bin"), 300, 2<<20)
	a2 := ma.create(repo.loc, "--host", "machine-a", srcA)
	writeRandomFile(t, filepath.Join(srcB, "own", "b.bin"), 201, own)
	writeRandomFile(t, filepath.Join(srcB, "shared", "extra.bin"), 300, 2<<20)
	b2 := mb.create(repo.loc, "--host", "machine-b", srcB)
	t.Logf("second round: A added %d, B added %d", a2.BytesAdded, b2.BytesAdded)
	if b2.BytesAdded > own+(1<<20) {
		t.Errorf("machine B's second create added %d bytes: the 2 MiB file machine A stored just before was not deduplicated", b2.BytesAdded)
	}
	all := e2eSorted(a1.SnapshotID, b1.SnapshotID, a2.SnapshotID, b2.SnapshotID)
	for name, m := range map[string]*e2eClient{"A": ma, "B": mb} {
		ids, hosts := m.snapshots(repo.loc)
		if !e2eSame(ids, all) {
			t.Errorf("machine %s sees snapshots %v, want %v", name, ids, all)
		}
		if hosts[a1.SnapshotID] != "machine-a" || hosts[b2.SnapshotID] != "machine-b" {
			t.Errorf("machine %s sees hosts %v", name, hosts)
		}
	}

	// A prunes; B's cache still lists the packs A deletes.
	before := b.objects(t, repo, "data")
	ma.must("forget", "-r", repo.loc, "--keep-last", "1", "--prune")
	after := b.objects(t, repo, "data")
	gone := 0
	for name := range before {
		if _, ok := after[name]; !ok {
			gone++
		}
	}
	t.Logf("prune by A: %d packs before, %d after, %d deleted", len(before), len(after), gone)
	if gone == 0 {
		t.Fatalf("prune by machine A deleted no pack; the stale cache of B is not tested")
	}
	kept := e2eSorted(a2.SnapshotID, b2.SnapshotID)
	if ids, _ := mb.snapshots(repo.loc); !e2eSame(ids, kept) {
		t.Errorf("machine B after the prune sees %v, want %v", ids, kept)
	}
	for _, x := range []struct{ id, src string }{{b2.SnapshotID, srcB}, {a2.SnapshotID, srcA}} {
		out := t.TempDir()
		mb.must("restore", "-r", repo.loc, x.id, "--target", out)
		compareTrees(t, x.src, filepath.Join(out, "home"))
	}
	if r := mb.run("check", "--read-data", "-r", repo.loc); r.code != 0 {
		t.Errorf("check --read-data from machine B after A's prune: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var st struct {
		Packs int `json:"repository_packs"`
	}
	json.Unmarshal([]byte(mb.must("stats", "--json", "-r", repo.loc).stdout), &st)
	if st.Packs != len(after) {
		t.Errorf("machine B's cache lists %d packs, the repository holds %d: packs pruned by A were not dropped", st.Packs, len(after))
	}

	// B backs up again with its cache, then A restores that.
	writeRandomFile(t, filepath.Join(srcB, "own", "b.bin"), 202, own)
	b3 := mb.create(repo.loc, "--host", "machine-b", srcB)
	out := t.TempDir()
	ma.must("restore", "-r", repo.loc, b3.SnapshotID, "--target", out)
	compareTrees(t, srcB, filepath.Join(out, "home"))
	if r := ma.run("check", "--read-data", "-r", repo.loc); r.code != 0 {
		t.Errorf("check --read-data from machine A: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// e2eBg is a snap command running in the background.
type e2eBg struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr *bytes.Buffer
	done           chan error
}

func (c *e2eClient) start(args ...string) *e2eBg {
	c.t.Helper()
	cmd, o, e := c.command(args...)
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &e2eBg{c.t, cmd, o, e, make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	c.t.Cleanup(func() { cmd.Process.Kill() })
	return p
}

// wait waits for the command and fails the test unless it exits 0.
func (p *e2eBg) wait(what string) {
	p.t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		if code := exitCodeOf(p.t, err); code != 0 {
			p.t.Fatalf("%s: exit %d\n%s%s", what, code, p.stdout, p.stderr)
		}
	case <-time.After(3 * time.Minute):
		p.t.Fatalf("%s does not finish", what)
	}
}

// awaitSignal waits until ch is closed; it fails the test when that takes a
// minute or when p exits first.
func awaitSignal(t *testing.T, what string, ch chan struct{}, p *e2eBg) {
	t.Helper()
	select {
	case <-ch:
		return
	case err := <-p.done:
		t.Fatalf("%s: never happened; %v exited: %v\n%s%s", what, p.cmd.Args[1:3], err, p.stdout, p.stderr)
	case <-time.After(time.Minute):
		t.Fatalf("%s: never happened", what)
	}
}

// heldPrune is a prune by another machine that the S3 server holds up at
// its first pack deletion: by then it holds the lock, has uploaded the
// repacked packs and committed its own index, but every old pack is still
// there.
type heldPrune struct {
	prune    *e2eBg
	lockRead chan struct{} // closed at the first GET of a lock object once watchLocks is set
	watch    atomic.Bool
	release  func()
}

// lockWaitFixture makes a repository where machine B saved two snapshots
// of src, the first holding doc.bin version 1, the second version 2, and
// machine A forgot the first; then A's prune is started and held.
func lockWaitFixture(t *testing.T) (b *e2eBackend, repo e2eRepo, mb *e2eClient, src string, h *heldPrune) {
	b = e2eStart(t, "s3")
	repo = b.newRepo(t, "lockwait")
	ma := b.client(t, t.TempDir())
	mb = b.client(t, t.TempDir())
	src = filepath.Join(t.TempDir(), "home")
	writeRandomFile(t, filepath.Join(src, "doc.bin"), 1, 1<<20) // version 1
	writeRandomFile(t, filepath.Join(src, "keep.bin"), 2, 256<<10)
	mb.must("init", "-r", repo.loc)
	mb.create(repo.loc, "--host", "machine-b", src)
	writeRandomFile(t, filepath.Join(src, "doc.bin"), 3, 1<<20) // version 2
	mb.create(repo.loc, "--host", "machine-b", src)
	// A forgets the first snapshot: version 1 of doc.bin is garbage now,
	// and the pack that holds it (with keep.bin) is repacked by a prune.
	ma.must("forget", "-r", repo.loc, "--keep-last", "1")

	h = &heldPrune{lockRead: make(chan struct{})}
	deleting, release := make(chan struct{}), make(chan struct{})
	var onceDeleting, onceLockRead, onceRelease sync.Once
	hook := func(r *http.Request) {
		if r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/data/") {
			onceDeleting.Do(func() { close(deleting) })
			<-release
		}
		if h.watch.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/locks/") {
			onceLockRead.Do(func() { close(h.lockRead) })
		}
	}
	b.s3.hook.Store(&hook)
	h.release = func() { onceRelease.Do(func() { close(release) }) }
	t.Cleanup(h.release)
	h.prune = ma.start("prune", "-r", repo.loc)
	awaitSignal(t, "A's prune deletes a pack", deleting, h.prune)
	return b, repo, mb, src, h
}

// TestRemoteLockWaitAfterPrune: machine B starts a create with --lock-wait
// while machine A prunes; B waits for A's lock, then backs up a file whose
// content A's prune has just deleted. B must not deduplicate against the
// deleted data: the snapshot it saves must restore, and check --read-data
// must pass, from a machine with no cache and from B.
//
// The S3 server holds up A's first pack deletion until B is seen waiting
// (reading A's lock object), so the interleaving is the same on every run.
func TestRemoteLockWaitAfterPrune(t *testing.T) {
	b, repo, mb, src, h := lockWaitFixture(t)
	writeRandomFile(t, filepath.Join(src, "doc.bin"), 1, 1<<20) // back to version 1
	h.watch.Store(true)
	create := mb.start("create", "--json", "--lock-wait", "2m", "--host", "machine-b", "-r", repo.loc, src)
	awaitSignal(t, "B waits for A's lock", h.lockRead, create)
	h.release()
	h.prune.wait("A's prune")
	create.wait("B's create")
	sb3 := e2eSummary(t, create.stdout.String())
	t.Logf("B's create after waiting for A's prune: %d bytes added (doc.bin is %d bytes)", sb3.BytesAdded, 1<<20)

	fresh := b.client(t, t.TempDir())
	if r := fresh.run("check", "--read-data", "-r", repo.loc); r.code != 0 {
		t.Errorf("check --read-data on a machine with no cache: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	out := t.TempDir()
	if r := fresh.run("restore", "-r", repo.loc, sb3.SnapshotID, "--target", out); r.code != 0 {
		t.Errorf("restore of B's new snapshot on a machine with no cache: exit %d\n%s", r.code, r.stderr)
	} else {
		compareTrees(t, src, filepath.Join(out, "home"))
	}
	if r := mb.run("check", "-r", repo.loc); r.code != 0 {
		t.Errorf("check from machine B: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestRemoteCacheSyncDuringPrune: machine B only reads (snapshots) while
// machine A's prune has uploaded its repacked pack but not yet deleted the
// old one. Afterwards B's cache must still find every blob: keep.bin moved
// to the new pack, and B's check and restore must succeed.
func TestRemoteCacheSyncDuringPrune(t *testing.T) {
	_, repo, mb, src, h := lockWaitFixture(t)
	mb.must("snapshots", "-r", repo.loc) // syncs B's cache: both packs are there
	h.release()
	h.prune.wait("A's prune")

	if r := mb.run("check", "-r", repo.loc); r.code != 0 {
		t.Errorf("check from machine B after A's prune: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	out := t.TempDir()
	if r := mb.run("restore", "-r", repo.loc, "latest", "--target", out); r.code != 0 {
		t.Errorf("restore from machine B after A's prune: exit %d\n%s", r.code, r.stderr)
	} else {
		compareTrees(t, src, filepath.Join(out, "home"))
	}
	if r := mb.run("prune", "-r", repo.loc); r.code != 0 {
		t.Errorf("prune from machine B after A's prune: exit %d\n%s", r.code, r.stderr)
	}
}

// ---------------------------------------------------------------------------
// 3. Connections killed in the middle of uploads.

func TestRemoteConnectionKilled(t *testing.T) {
	seed := uint64(20261201)
	if s := os.Getenv("SNAP_E2E_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SNAP_E2E_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (set SNAP_E2E_SEED to try another)", seed)
	for _, kind := range []string{"sftp", "s3"} {
		t.Run(kind, func(t *testing.T) {
			e2eKillLoop(t, e2eStart(t, kind), seed)
		})
	}
}

func e2eKillLoop(t *testing.T, b *e2eBackend, seed uint64) {
	const (
		iterations = 8
		files      = 6
		fileSize   = 10 << 20 // 60 MB per create
	)
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee))
	repo := b.newRepo(t, "killed")
	c := b.client(t, t.TempDir())
	src := filepath.Join(t.TempDir(), "data")
	// round writes new content into every file, so that each create
	// uploads about 60 MB.
	round := func(i int) {
		for f := 0; f < files; f++ {
			writeRandomFile(t, filepath.Join(src, fmt.Sprintf("file%d.bin", f)), seed+uint64(i*files+f), fileSize)
		}
	}
	want := map[string]map[string]string{} // snapshot ID -> file hashes
	c.must("init", "-r", repo.loc)
	round(0)
	start := time.Now()
	s := c.create(repo.loc, src)
	took := time.Since(start)
	want[s.SnapshotID] = treeHashes(t, src)
	t.Logf("an undisturbed create of %d MB took %s; faults come at random moments within that time",
		files*fileSize>>20, took.Round(time.Millisecond))

	completed, failed := 0, 0
	for i := 1; i <= iterations; i++ {
		round(i)
		cmd, stdout, stderr := c.command("create", "--json", "-r", repo.loc, src)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Most faults come after the start, while packs are uploaded;
		// some while the command still connects.
		delay := time.Duration(rng.Int64N(int64(took)))
		if rng.IntN(3) != 0 {
			delay = took/3 + time.Duration(rng.Int64N(int64(took*2/3)))
		}
		var fault string
		select {
		case err := <-done:
			done <- err
			fault = "none (finished first)"
		case <-time.After(delay):
			switch {
			case b.kind == "sftp" && rng.IntN(2) == 0:
				fault = fmt.Sprintf("killed %d ssh clients", backendtest.KillSSHClients())
			case b.kind == "sftp":
				fault = fmt.Sprintf("killed %d sshd sessions", b.sshd.KillSessions())
			case rng.IntN(2) == 0:
				pause := time.Duration(rng.IntN(1500)) * time.Millisecond
				b.s3.restart(t, pause)
				fault = fmt.Sprintf("S3 listener closed for %s", pause)
			default:
				n := 1 + rng.IntN(4)
				b.s3.drop.Store(int64(n))
				fault = fmt.Sprintf("next %d S3 requests dropped", n)
			}
		}
		var err error
		select {
		case err = <-done:
		case <-time.After(3 * time.Minute):
			cmd.Process.Kill()
			t.Fatalf("iteration %d: create hangs after the fault (%s)\n%s", i, fault, stderr)
		}
		b.clearFaults()
		code := exitCodeOf(t, err)
		t.Logf("iteration %d: fault after %s: %s; create exit %d after %d retries", i, delay.Round(time.Millisecond), fault, code,
			strings.Count(stderr.String(), "retrying in"))
		switch code {
		case 0:
			completed++
			s := e2eSummary(t, stdout.String())
			want[s.SnapshotID] = treeHashes(t, src)
		case exitFatal:
			failed++
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			t.Logf("iteration %d: create failed: %s", i, last)
			if !strings.HasPrefix(last, "snap: ") || strings.Contains(stderr.String(), "panic") {
				t.Errorf("iteration %d: no clear error:\n%s", i, stderr)
			}
		default:
			t.Fatalf("iteration %d: create exit %d after the fault (%s)\nstdout: %s\nstderr: %s", i, code, fault, stdout, stderr)
		}
		ids, _ := c.snapshots(repo.loc)
		if len(ids) != len(want) {
			t.Fatalf("iteration %d: %d snapshots in the repository, want %d (a partial snapshot?)", i, len(ids), len(want))
		}
		if code != 0 {
			s := c.create(repo.loc, src)
			want[s.SnapshotID] = treeHashes(t, src)
		}
	}
	t.Logf("%d creates completed despite the fault, %d failed cleanly", completed, failed)

	if r := c.run("check", "--read-data", "-r", repo.loc); r.code != 0 {
		t.Fatalf("check --read-data after the faults: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	ids, _ := c.snapshots(repo.loc)
	if len(ids) != len(want) {
		t.Errorf("%d snapshots, want %d", len(ids), len(want))
	}
	out := t.TempDir()
	for _, id := range ids {
		hashes, ok := want[id]
		if !ok {
			t.Errorf("snapshot %s was not reported by any create", id)
			continue
		}
		target := filepath.Join(out, id[:12])
		c.must("restore", "-r", repo.loc, id, "--target", target)
		got := treeHashes(t, filepath.Join(target, "data"))
		if len(got) != len(hashes) {
			t.Errorf("snapshot %s restores %d files, want %d", id[:12], len(got), len(hashes))
		}
		for name, h := range hashes {
			if got[name] != h {
				t.Errorf("snapshot %s: %s restores with other content", id[:12], name)
			}
		}
		os.RemoveAll(target)
	}
	if locks := b.objects(t, repo, "locks"); len(locks) != 0 {
		t.Errorf("lock objects left behind: %v", locks)
	}
}

// clearFaults stops dropping S3 requests (a no-op for other backends).
func (b *e2eBackend) clearFaults() {
	if b.s3 != nil {
		b.s3.drop.Store(0)
	}
}

// ---------------------------------------------------------------------------
// 4. Errors.

func TestRemoteErrors(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	writeRandomFile(t, filepath.Join(src, "file.bin"), 7, 64<<10)

	t.Run("sftp", func(t *testing.T) {
		b := e2eStart(t, "sftp")
		c := b.client(t, t.TempDir())
		repo := b.newRepo(t, "repo")
		c.must("init", "-r", repo.loc)
		c.create(repo.loc, src)
		snapshotsNow := func() int { return len(b.objects(t, repo, "snapshots")) }

		// Nothing listens on the port.
		closed := &e2eClient{t: t, env: c.env, flags: []string{"--ssh-command",
			strings.Replace(b.sshd.Command(), "-p "+strconv.Itoa(b.sshd.Port), "-p "+strconv.Itoa(backendtest.FreePort(t)), 1)}}
		r := closed.run("create", "-r", repo.loc, src)
		t.Logf("closed port: %s", r.stderr)
		if line := oneErrorLine(t, "closed port", r.stderr); r.code != exitFatal || !strings.Contains(line, "Connection refused") {
			t.Errorf("create with nothing listening: exit %d, stderr %s", r.code, r.stderr)
		}

		// A key the server does not accept.
		wrongKey := &e2eClient{t: t, env: c.env, flags: []string{"--ssh-command", b.sshd.CommandWithKey(filepath.Join(b.sshd.Dir, "host_key"))}}
		r = wrongKey.run("create", "-r", repo.loc, src)
		t.Logf("wrong key: %s", r.stderr)
		if line := oneErrorLine(t, "wrong key", r.stderr); r.code != exitFatal || !strings.Contains(line, "Permission denied") {
			t.Errorf("create with a wrong key: exit %d, stderr %s", r.code, r.stderr)
		}

		// No repository at the path: exit 10, and nothing is created there.
		missing := b.newRepo(t, "missing")
		for _, cmd := range [][]string{{"snapshots"}, {"create", src}} {
			r = c.run(append(cmd, "-r", missing.loc)...)
			t.Logf("%s without a repository: %s", cmd[0], r.stderr)
			if oneErrorLine(t, cmd[0]+" without a repository", r.stderr); r.code != exitNoRepo {
				t.Errorf("%s without a repository: exit %d, want %d", cmd[0], r.code, exitNoRepo)
			}
		}
		if _, err := os.Stat(missing.dir); !os.IsNotExist(err) {
			t.Errorf("a failed create made %s: %v", missing.dir, err)
		}
		if n := snapshotsNow(); n != 1 {
			t.Errorf("%d snapshots after the failures, want 1", n)
		}

		// A destination the ssh user cannot write to.
		e2eReadOnlySFTP(t, b, repo, src)
		if n := snapshotsNow(); n != 1 {
			t.Errorf("%d snapshots after the failures, want 1", n)
		}
		if r := c.run("check", "-r", repo.loc); r.code != 0 {
			t.Errorf("check after the failures: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("s3", func(t *testing.T) {
		b := e2eStart(t, "s3")
		c := b.client(t, t.TempDir())
		repo := b.newRepo(t, "repo")
		c.must("init", "-r", repo.loc)
		c.create(repo.loc, src)
		snapshotsNow := func() int { return len(b.objects(t, repo, "snapshots")) }

		closedLoc := "s3:https://127.0.0.1:" + strconv.Itoa(backendtest.FreePort(t)) + "/" + repo.bucket + "/snap"
		r := c.run("create", "-r", closedLoc, src)
		t.Logf("closed port: %s", r.stderr)
		if line := oneErrorLine(t, "closed port", r.stderr); r.code != exitFatal || !strings.Contains(line, "connection refused") {
			t.Errorf("create with nothing listening: exit %d, stderr %s", r.code, r.stderr)
		}

		wrong := &e2eClient{t: t, env: append(append([]string(nil), c.env...), "AWS_ACCESS_KEY_ID=AKIDWRONG", "AWS_SECRET_ACCESS_KEY=wrong"), flags: c.flags}
		r = wrong.run("create", "-r", repo.loc, src)
		t.Logf("wrong credentials: %s", r.stderr)
		if line := oneErrorLine(t, "wrong credentials", r.stderr); r.code != exitFatal || !strings.Contains(line, "access denied") {
			t.Errorf("create with wrong credentials: exit %d, stderr %s", r.code, r.stderr)
		}

		// A missing bucket, and a missing prefix in an existing bucket.
		for _, loc := range []string{b.s3.URL + "/no-such-bucket/snap", b.s3.URL + "/" + repo.bucket + "/elsewhere"} {
			for _, cmd := range [][]string{{"snapshots"}, {"create", src}} {
				r = c.run(append(cmd, "-r", "s3:"+loc)...)
				t.Logf("%s at %s: %s", cmd[0], loc, r.stderr)
				if oneErrorLine(t, cmd[0]+" without a repository", r.stderr); r.code != exitNoRepo {
					t.Errorf("%s at %s: exit %d, want %d", cmd[0], loc, r.code, exitNoRepo)
				}
			}
		}
		if ok, _ := b.s3.mem.BucketExists("no-such-bucket"); ok {
			t.Errorf("a failed create made the bucket")
		}
		if objs := b.objects(t, e2eRepo{bucket: repo.bucket, prefix: "elsewhere"}, "snapshots"); len(objs) != 0 {
			t.Errorf("a failed create wrote %v", objs)
		}

		// A bucket that refuses writes.
		b.s3.readOnly.Store(true)
		r = c.run("create", "-r", repo.loc, src)
		b.s3.readOnly.Store(false)
		t.Logf("read-only bucket: %s", r.stderr)
		if line := oneErrorLine(t, "read-only bucket", r.stderr); r.code != exitFatal || !strings.Contains(line, "access denied") {
			t.Errorf("create into a read-only bucket: exit %d, stderr %s", r.code, r.stderr)
		}
		if n := snapshotsNow(); n != 1 {
			t.Errorf("%d snapshots after the failures, want 1", n)
		}
		if locks := b.objects(t, repo, "locks"); len(locks) != 0 {
			t.Errorf("lock objects left behind: %v", locks)
		}
		if r := c.run("check", "-r", repo.loc); r.code != 0 {
			t.Errorf("check after the failures: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

// e2eReadOnlySFTP logs in as a user who may read but not write the
// repository (as root: user nobody, whom sshd, run by root, lets in with the
// test key; otherwise the test's own user with the directories made 0555).
func e2eReadOnlySFTP(t *testing.T, b *e2eBackend, repo e2eRepo, src string) {
	login := b.sshd.User
	var undo []func()
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}()
	chmod := func(p string, mode os.FileMode) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		undo = append(undo, func() { os.Chmod(p, fi.Mode().Perm()) })
	}
	roParent := filepath.Join(t.TempDir(), "readonly")
	if err := os.Mkdir(roParent, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("nobody"); err != nil {
			t.Skipf("read-only destination: needs user nobody: %v", err)
		}
		login = "nobody"
		// nobody must reach the authorized keys and the repository:
		// open the test's directories for reading, not writing.
		for _, dir := range []string{b.sshd.Dir, repo.dir, roParent} {
			for p := dir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
				if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
					chmod(p, fi.Mode().Perm()|0o055)
				}
			}
		}
		chmod(filepath.Join(b.sshd.Dir, "authorized_keys"), 0o644)
		err := filepath.WalkDir(repo.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if d.IsDir() {
				chmod(p, fi.Mode().Perm()|0o055)
			} else {
				chmod(p, fi.Mode().Perm()|0o044)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	} else {
		chmod(roParent, 0o555)
		filepath.WalkDir(repo.dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				chmod(p, 0o555)
			}
			return err
		})
	}
	at := func(dir string) string { return "sftp:" + login + "@127.0.0.1:" + dir }
	c := b.client(t, t.TempDir())

	// The existing repository can be read, not written.
	if r := c.run("snapshots", "-r", at(repo.dir)); r.code != 0 {
		t.Fatalf("snapshots as %s: exit %d\n%s (the read-only setup does not work)", login, r.code, r.stderr)
	}
	before := b.objects(t, repo, "")
	r := c.run("create", "-r", at(repo.dir), src)
	t.Logf("create as %s into a read-only repository: %s", login, r.stderr)
	if line := oneErrorLine(t, "read-only repository", r.stderr); r.code != exitFatal || !strings.Contains(line, "permission denied") {
		t.Errorf("create into a read-only repository: exit %d, stderr %s", r.code, r.stderr)
	}
	if after := b.objects(t, repo, ""); len(after) != len(before) {
		t.Errorf("a failed create changed the repository: %d files, were %d", len(after), len(before))
	}

	// A new repository in a directory the user cannot write.
	newDir := filepath.Join(roParent, "repo")
	for _, cmd := range [][]string{{"init"}, {"create", "--init", src}} {
		r = c.run(append(cmd, "-r", at(newDir))...)
		t.Logf("%s as %s in a read-only directory: %s", cmd[0], login, r.stderr)
		if line := oneErrorLine(t, cmd[0]+" in a read-only directory", r.stderr); r.code != exitFatal || !strings.Contains(line, "permission denied") {
			t.Errorf("%s in a read-only directory: exit %d, stderr %s", cmd[0], r.code, r.stderr)
		}
	}
	if entries, _ := os.ReadDir(roParent); len(entries) != 0 {
		t.Errorf("a failed init left %v", entries)
	}
}

// ---------------------------------------------------------------------------
// 5. Lock objects of other hosts.

func TestRemotePruneLockObjects(t *testing.T) {
	for _, kind := range []string{"sftp", "s3"} {
		t.Run(kind, func(t *testing.T) {
			b := e2eStart(t, kind)
			c := b.client(t, t.TempDir())
			repo := b.newRepo(t, "locked")
			src := filepath.Join(t.TempDir(), "src")
			writeRandomFile(t, filepath.Join(src, "a.bin"), 1, 300<<10)
			c.must("init", "-r", repo.loc)
			c.create(repo.loc, src)
			writeRandomFile(t, filepath.Join(src, "a.bin"), 2, 300<<10)
			c.create(repo.loc, src)
			c.must("forget", "-r", repo.loc, "--keep-last", "1")

			lockMode := func(refreshed time.Duration, exclusive bool, mode string) string {
				var rnd [16]byte
				crand.Read(rnd[:])
				name := path.Join("locks", hex.EncodeToString(rnd[:]))
				obj := map[string]any{"host": "backup-host-2.example", "pid": 4242,
					"command": "create", "start": time.Now().Add(-3 * time.Hour), "refreshed": time.Now().Add(-refreshed),
					"exclusive": exclusive}
				if mode != "" {
					obj["mode"] = mode
				}
				data, _ := json.Marshal(obj)
				b.put(t, repo, name, data)
				return name
			}
			lock := func(refreshed time.Duration, exclusive bool) string { return lockMode(refreshed, exclusive, "") }
			packs := len(b.objects(t, repo, "data"))

			// Refreshed a minute ago: prune waits for nobody and exits 11
			// naming the holder; a shared lock blocks it as well.
			for _, exclusive := range []bool{true, false} {
				name := lock(time.Minute, exclusive)
				r := c.run("prune", "-r", repo.loc)
				t.Logf("prune beside a fresh lock (exclusive %v): %s", exclusive, r.stderr)
				if r.code != exitLocked || !strings.Contains(r.stderr, "backup-host-2.example") {
					t.Errorf("prune beside a fresh lock of another host (exclusive %v): exit %d, want %d naming the host\n%s", exclusive, r.code, exitLocked, r.stderr)
				}
				if _, ok := b.objects(t, repo, "locks")[name]; !ok {
					t.Errorf("the other host's fresh lock %s was removed", name)
				}
				b.remove(t, repo, name)
			}
			// A reader's lock of this snap blocks the prune too, which says so.
			name := lockMode(time.Minute, false, "read")
			if r := c.run("prune", "-r", repo.loc); r.code != exitLocked || !strings.Contains(r.stderr, "being read by") {
				t.Errorf("prune beside a reader's lock: exit %d, want %d saying it is being read\n%s", r.code, exitLocked, r.stderr)
			}
			b.remove(t, repo, name)
			if n := len(b.objects(t, repo, "data")); n != packs {
				t.Errorf("a blocked prune changed the packs: %d, were %d", n, packs)
			}
			// Readers go on beside a writer of this snap, not beside a
			// prune (unless --no-lock), and take their lock away again.
			name = lockMode(time.Minute, true, "write")
			c.must("ls", "-r", repo.loc, "latest")
			b.remove(t, repo, name)
			name = lockMode(time.Minute, false, "prune")
			if r := c.run("ls", "-r", repo.loc, "latest"); r.code != exitLocked || !strings.Contains(r.stderr, "backup-host-2.example") {
				t.Errorf("ls beside a prune's lock: exit %d, want %d naming the host\n%s", r.code, exitLocked, r.stderr)
			}
			c.must("ls", "--no-lock", "-r", repo.loc, "latest")
			b.remove(t, repo, name)
			if locks := b.objects(t, repo, "locks"); len(locks) != 0 {
				t.Errorf("locks left after the readers: %v", locks)
			}

			// Not refreshed for 31 minutes: removed with a notice.
			name = lock(31*time.Minute, true)
			r := c.run("prune", "-r", repo.loc)
			t.Logf("prune beside a stale lock: %s", r.stderr)
			if r.code != 0 || !strings.Contains(r.stderr, "removed stale lock "+name) || !strings.Contains(r.stderr, "backup-host-2.example") {
				t.Errorf("prune beside a lock not refreshed for 31 minutes: exit %d, want 0 and a notice\n%s", r.code, r.stderr)
			}
			if locks := b.objects(t, repo, "locks"); len(locks) != 0 {
				t.Errorf("locks left after prune: %v", locks)
			}
			if n := len(b.objects(t, repo, "data")); n >= packs {
				t.Errorf("prune beside a stale lock did not prune: %d packs, were %d", n, packs)
			}
		})
	}
}
