package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"snap/internal/backend"
	"snap/internal/backend/backendtest"
)

func TestParseLocation(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Location
	}{
		{"s3:https://s3.example.org/bucket", Location{Endpoint: "s3.example.org", Secure: true, Bucket: "bucket"}},
		{"s3:https://127.0.0.1:9000/b/some/prefix/", Location{Endpoint: "127.0.0.1:9000", Secure: true, Bucket: "b", Prefix: "some/prefix"}},
		{"s3:http://localhost:9000/b/p", Location{Endpoint: "localhost:9000", Bucket: "b", Prefix: "p"}},
		{"s3:s3.example.org/b", Location{Endpoint: "s3.example.org", Secure: true, Bucket: "b"}},
		{"s3:https://[::1]:9000/b", Location{Endpoint: "[::1]:9000", Secure: true, Bucket: "b"}},
	} {
		got, err := ParseLocation(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseLocation(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if again, err := ParseLocation(got.String()); err != nil || again != got {
			t.Errorf("%q: String() %q parses as %+v, %v", tc.in, got.String(), again, err)
		}
	}
	for _, bad := range []string{
		"s3:", "s3:https://", "s3:https://host", "s3:https://host/", "s3:ftp://host/b",
		"s3:https://key:secret@host/b", "s3:https://host/b/../x", "s3:https://host/b//x", "s3:https://host/b?x=1",
		"sftp:host:/x",
	} {
		if _, err := ParseLocation(bad); err == nil {
			t.Errorf("ParseLocation(%q) succeeded", bad)
		}
	}
}

func TestBucketLookup(t *testing.T) {
	for _, tc := range []struct {
		endpoint, choice string
		want             minio.BucketLookupType
	}{
		{"127.0.0.1:9000", "", minio.BucketLookupPath},
		{"[::1]:9000", "", minio.BucketLookupPath},
		{"localhost", "", minio.BucketLookupPath},
		{"minio.localhost:9000", "", minio.BucketLookupPath},
		{"s3.eu-west-1.amazonaws.example", "", minio.BucketLookupDNS},
		{"minio.example.org", "path", minio.BucketLookupPath},
		{"127.0.0.1", "dns", minio.BucketLookupDNS},
	} {
		if got, err := bucketLookup(tc.endpoint, tc.choice); err != nil || got != tc.want {
			t.Errorf("bucketLookup(%q, %q) = %v, %v; want %v", tc.endpoint, tc.choice, got, err, tc.want)
		}
	}
	if _, err := bucketLookup("host", "virtual"); err == nil {
		t.Error("bad choice accepted")
	}
}

func open(t *testing.T, srv *backendtest.S3, where string, opts Options) (*Backend, error) {
	t.Helper()
	loc, err := ParseLocation(srv.Location(where))
	if err != nil {
		t.Fatal(err)
	}
	if opts.Credentials == nil {
		opts.Credentials = srv.Credentials()
	}
	return Open(context.Background(), loc, opts)
}

// TestLargeObject uploads 40 MiB (a multipart upload) and checks that every
// byte comes back, whole and in ranges across part boundaries.
func TestLargeObject(t *testing.T) {
	srv := backendtest.StartS3(t, "bucket")
	be, err := open(t, srv, "bucket/repo", Options{RootCAs: srv.RootCAs})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := make([]byte, 40<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	before := srv.Requests()
	if err := be.Save(ctx, "data/ab/large", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if n := srv.Requests() - before; n < 4 {
		t.Errorf("40 MiB went up in %d requests: not a multipart upload", n)
	}
	fi, err := be.Stat(ctx, "data/ab/large")
	if err != nil || fi.Size != int64(len(data)) {
		t.Fatalf("Stat = %+v, %v", fi, err)
	}
	rc, err := be.Load(ctx, "data/ab/large", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("the object read back has another SHA-256 than the one written")
	}
	for _, off := range []int64{16<<20 - 100, 32<<20 - 1, 40<<20 - 1000} {
		rc, err := be.Load(ctx, "data/ab/large", off, 1000)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data[off:off+1000]) {
			t.Errorf("range at %d: %d bytes, %v", off, len(got), err)
		}
	}

	// A source of unknown size goes up in parts too.
	if err := be.Save(ctx, "data/ab/stream", struct{ io.Reader }{bytes.NewReader(data[:20<<20])}); err != nil {
		t.Fatal(err)
	}
	if fi, err := be.Stat(ctx, "data/ab/stream"); err != nil || fi.Size != 20<<20 {
		t.Fatalf("Stat = %+v, %v", fi, err)
	}
}

func TestMissingBucket(t *testing.T) {
	srv := backendtest.StartS3(t)
	be, err := open(t, srv, "nope/prefix", Options{RootCAs: srv.RootCAs})
	if err != nil {
		t.Fatalf("Open of a missing bucket: %v", err)
	}
	ctx := context.Background()
	_, err = backend.LoadAll(ctx, be, "config")
	if !errors.Is(err, backend.ErrNotExist) || !strings.Contains(err.Error(), `bucket "nope" does not exist`) {
		t.Fatalf("Load from a missing bucket: %v", err)
	}
	if _, err := be.Stat(ctx, "config"); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Stat in a missing bucket: %v", err)
	}
	if err := be.Create(ctx); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := be.Create(ctx); err != nil {
		t.Fatalf("Create of an existing bucket: %v", err)
	}
	if err := be.Save(ctx, "config", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if data, err := backend.LoadAll(ctx, be, "config"); err != nil || string(data) != "{}" {
		t.Fatalf("after Create: %q, %v", data, err)
	}
}

func TestAccessErrors(t *testing.T) {
	srv := backendtest.StartS3(t, "bucket")
	start := time.Now()
	_, err := open(t, srv, "bucket", Options{RootCAs: srv.RootCAs, Credentials: credentials.NewStaticV4("AKIDWRONG", "x", "")})
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "InvalidAccessKeyId") || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("wrong credentials: %v", err)
	}
	// The server's certificate is trusted only when told.
	_, err = open(t, srv, "bucket", Options{})
	if err == nil || !strings.Contains(err.Error(), CAFileEnv) {
		t.Fatalf("untrusted certificate: %v", err)
	}
	if _, err := open(t, srv, "bucket", Options{CAFile: srv.CAFile}); err != nil {
		t.Fatalf("with the CA file: %v", err)
	}
	if _, err := open(t, srv, "bucket", Options{CAFile: srv.CAFile + ".missing"}); err == nil || !strings.Contains(err.Error(), CAFileEnv) {
		t.Fatalf("missing CA file: %v", err)
	}
	// Nobody listens: a clear error, quickly.
	loc := Location{Endpoint: "127.0.0.1:" + strconv.Itoa(backendtest.FreePort(t)), Secure: true, Bucket: "bucket"}
	_, err = Open(context.Background(), loc, Options{Credentials: srv.Credentials()})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("closed port: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("errors took %s", d)
	}
}

func TestLocks(t *testing.T) {
	srv := backendtest.StartS3(t, "bucket")
	a, err := open(t, srv, "bucket/repo", Options{RootCAs: srv.RootCAs})
	if err != nil {
		t.Fatal(err)
	}
	b, err := open(t, srv, "bucket/repo", Options{RootCAs: srv.RootCAs})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	info := backend.LockInfo{Host: "host-a", PID: 1, Command: "create", Start: time.Now()}
	var locker backend.Locker = a // the repository finds the lock by type assertion
	unlock, err := locker.Lock(ctx, info, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Lock(ctx, backend.LockInfo{Host: "host-b", PID: 2, Command: "prune", Start: time.Now()}, 0)
	if !errors.Is(err, backend.ErrLocked) || !strings.Contains(err.Error(), "host-a") {
		t.Fatalf("second lock: %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	unlock, err = b.Lock(ctx, backend.LockInfo{Host: "host-b", PID: 2, Command: "prune", Start: time.Now()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}
