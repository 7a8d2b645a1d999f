package retry_test

// Fault tests on real servers: connections killed in the middle of uploads
// and downloads, servers that answer 503, drop requests or cut off answers.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"snap/internal/backend"
	"snap/internal/backend/backendtest"
	"snap/internal/backend/retry"
	"snap/internal/backend/s3"
	"snap/internal/backend/sftp"
)

type notes struct {
	mu    sync.Mutex
	lines []string
}

func (n *notes) add(s string) {
	n.mu.Lock()
	n.lines = append(n.lines, s)
	n.mu.Unlock()
}

func (n *notes) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.lines)
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// checkWholeOrNothing fails unless name holds exactly data or does not exist.
func checkWholeOrNothing(t *testing.T, be backend.Backend, name string, data []byte) bool {
	t.Helper()
	rc, err := be.Load(context.Background(), name, 0, 0)
	if errors.Is(err, backend.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	if n != int64(len(data)) || !bytes.Equal(h.Sum(nil), sha256Of(data)) {
		t.Fatalf("%s holds %d bytes that are not the %d saved", name, n, len(data))
	}
	return true
}

func sha256Of(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func TestSFTPKilledConnections(t *testing.T) {
	srv := backendtest.StartSSHD(t)
	ctx := context.Background()
	loc, err := sftp.ParseLocation(srv.Location(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sftp.Open(ctx, loc, sftp.Options{Command: srv.Command()})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var log notes
	be := retry.New(raw, retry.Options{MaxElapsed: 30 * time.Second, InitialDelay: 20 * time.Millisecond,
		MaxDelay: 500 * time.Millisecond, Notify: log.add})
	data := randomBytes(t, 8<<20)

	kills := 0
	for i := range 8 {
		name := fmt.Sprintf("data/%02x/pack%d", i, i)
		done := make(chan error, 1)
		go func() { done <- be.Save(ctx, name, bytes.NewReader(data)) }()
		time.Sleep(time.Duration(5+mrand.IntN(60)) * time.Millisecond)
		if i%2 == 0 {
			kills += srv.KillSessions()
		} else {
			kills += backendtest.KillSSHClients()
		}
		if err := <-done; err != nil {
			// Allowed, as long as it says what happened and left nothing.
			t.Logf("save %s: %v", name, err)
			if !strings.Contains(err.Error(), "sftp connection") {
				t.Errorf("unclear error: %v", err)
			}
			if checkWholeOrNothing(t, be, name, data) {
				t.Errorf("%s exists although Save failed", name)
			}
			continue
		}
		if !checkWholeOrNothing(t, be, name, data) {
			t.Errorf("%s missing after Save succeeded", name)
		}
	}
	t.Logf("%d processes killed, %d retry notices", kills, log.count())
	if log.count() == 0 {
		t.Error("no operation had to be retried: the kills came too late to test anything")
	}

	// Downloads broken off by killed connections resume where they stopped.
	for range 3 {
		done := make(chan []byte, 1)
		go func() {
			rc, err := be.Load(ctx, "data/00/pack0", 0, 0)
			if err != nil {
				t.Error(err)
				done <- nil
				return
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				t.Error(err)
			}
			done <- b
		}()
		time.Sleep(time.Duration(2+mrand.IntN(20)) * time.Millisecond)
		backendtest.KillSSHClients()
		if got := <-done; got != nil && !bytes.Equal(got, data) {
			t.Errorf("resumed download: %d bytes that differ", len(got))
		}
	}

	// The server goes away for a while: uploads wait for it within the bound.
	srv.Stop()
	done := make(chan error, 1)
	go func() { done <- be.Save(ctx, "data/ff/after-restart", bytes.NewReader(data[:1<<20])) }()
	time.Sleep(700 * time.Millisecond)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("save across a server restart: %v", err)
	}
	checkWholeOrNothing(t, be, "data/ff/after-restart", data[:1<<20])

	// Nothing half-written is visible under a final name.
	err = be.List(ctx, "data", func(fi backend.FileInfo) error {
		if fi.Size != int64(len(data)) && fi.Name != "data/ff/after-restart" {
			t.Errorf("%s: %d bytes", fi.Name, fi.Size)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestS3ServerFaults(t *testing.T) {
	srv := backendtest.StartS3(t, "bucket")
	ctx := context.Background()
	loc, err := s3.ParseLocation(srv.Location("bucket/repo"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s3.Open(ctx, loc, s3.Options{RootCAs: srv.RootCAs, Credentials: srv.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	var log notes
	be := retry.New(raw, retry.Options{MaxElapsed: 20 * time.Second, InitialDelay: 10 * time.Millisecond,
		MaxDelay: 200 * time.Millisecond, Notify: log.add})
	data := randomBytes(t, 3<<20)

	srv.FailNext(5) // minio-go tries twice itself; the wrapper does the rest
	if err := be.Save(ctx, "data/aa/one", bytes.NewReader(data)); err != nil {
		t.Fatalf("save through 503s: %v", err)
	}
	srv.DropNext(4)
	if err := be.Save(ctx, "data/aa/two", bytes.NewReader(data)); err != nil {
		t.Fatalf("save through dropped connections: %v", err)
	}
	srv.FailNext(4)
	if fi, err := be.Stat(ctx, "data/aa/two"); err != nil || fi.Size != int64(len(data)) {
		t.Fatalf("stat through 503s: %+v, %v", fi, err)
	}
	checkWholeOrNothing(t, be, "data/aa/one", data)

	srv.CutNext(3)
	rc, err := be.Load(ctx, "data/aa/two", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("load through cut answers: %d bytes, %v", len(got), err)
	}
	srv.CutNext(2)
	rc, err = be.Load(ctx, "data/aa/two", 1<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data[1<<20:2<<20]) {
		t.Fatalf("ranged load through cut answers: %d bytes, %v", len(got), err)
	}
	if log.count() == 0 {
		t.Error("nothing was retried")
	}
	for _, l := range log.lines {
		t.Log(l)
	}

	// Permanent errors come back at once.
	start := time.Now()
	if _, err := be.Stat(ctx, "data/aa/missing"); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("stat of a missing object: %v", err)
	}
	bad, err := s3.Open(ctx, loc, s3.Options{RootCAs: srv.RootCAs,
		Credentials: credentials.NewStaticV4("AKIDWRONG", "x", "")})
	if err == nil || !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("open with wrong credentials: %v", err)
	}
	_ = bad
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("permanent errors took %s", d)
	}
}
