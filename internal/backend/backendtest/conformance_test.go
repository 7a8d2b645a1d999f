package backendtest_test

import (
	"context"
	"testing"
	"time"

	"snap/internal/backend"
	"snap/internal/backend/backendtest"
	"snap/internal/backend/local"
	"snap/internal/backend/retry"
	"snap/internal/backend/s3"
	"snap/internal/backend/sftp"
)

// TestConformance runs the same suite against every backend, bare and
// wrapped in the retry layer, each on a real server on 127.0.0.1.
func TestConformance(t *testing.T) {
	ctx := context.Background()
	openSFTP := func(t *testing.T) backend.Backend {
		srv := backendtest.StartSSHD(t)
		loc, err := sftp.ParseLocation(srv.Location(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		be, err := sftp.Open(ctx, loc, sftp.Options{Command: srv.Command()})
		if err != nil {
			t.Fatalf("%v\nsshd log:\n%s", err, srv.Log())
		}
		t.Cleanup(func() { be.Close() })
		return be
	}
	openS3 := func(t *testing.T) backend.Backend {
		srv := backendtest.StartS3(t, "bucket")
		loc, err := s3.ParseLocation(srv.Location("bucket/some/prefix"))
		if err != nil {
			t.Fatal(err)
		}
		be, err := s3.Open(ctx, loc, s3.Options{RootCAs: srv.RootCAs, Credentials: srv.Credentials()})
		if err != nil {
			t.Fatal(err)
		}
		return be
	}
	withRetry := func(open func(*testing.T) backend.Backend) func(*testing.T) backend.Backend {
		return func(t *testing.T) backend.Backend {
			return retry.New(open(t), retry.Options{MaxElapsed: 10 * time.Second, InitialDelay: 10 * time.Millisecond})
		}
	}
	for _, tc := range []struct {
		name string
		open func(*testing.T) backend.Backend
	}{
		{"local", func(t *testing.T) backend.Backend { return local.New(t.TempDir()) }},
		{"sftp", openSFTP},
		{"s3", openS3},
		{"sftp+retry", withRetry(openSFTP)},
		{"s3+retry", withRetry(openS3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			backendtest.Run(t, tc.open(t))
		})
	}
}
