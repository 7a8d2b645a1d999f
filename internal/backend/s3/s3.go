// Package s3 stores a repository in an S3 bucket (AWS S3, MinIO, Ceph, …)
// through minio-go.
//
// Locations are s3:https://host[:port]/bucket[/prefix] or s3:http://…; a
// location without scheme (s3:host/bucket) means https. Objects are named
// <prefix>/<backend name>.
//
// Credentials are found as the AWS tools find them: AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN from the environment, else the
// profile AWS_PROFILE (default "default") of the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials). Instance metadata
// is not consulted. With none of them, requests are anonymous.
//
// Addressing: hosts that are IP addresses or localhost are addressed
// path-style (https://host/bucket/key), every other host virtual-host style
// (https://bucket.host/key), as AWS requires. Options.BucketLookup ("path" or
// "dns"; the snap command reads SNAP_S3_BUCKET_LOOKUP) overrides this for
// servers that need the other style.
//
// Self-signed servers: Options.CAFile names a PEM file of extra trust roots;
// the snap command takes it from the environment variable SNAP_S3_CA_FILE.
// Verification is never switched off.
//
// A bucket that does not exist makes Stat and Load fail with an error that
// wraps backend.ErrNotExist and says "bucket … does not exist", so opening
// the repository reports that there is no repository there; Create (called
// by snap init) makes the bucket.
//
// Save uploads whole objects with PutObject (multipart for large ones), which
// S3 makes visible only when complete: a reader sees the whole object or
// none. Load uses ranged GETs. Remove reports a missing object as
// backend.ErrNotExist (S3 itself does not). HTTP 5xx and 429 answers are
// returned as temporary errors for the retry wrapper; refused credentials
// wrap fs.ErrPermission.
//
// Entry points: ParseLocation, Open, and the backend.Backend methods;
// locking uses lock objects (package objlock).
package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"snap/internal/backend"
	"snap/internal/backend/objlock"
)

// CAFileEnv is the environment variable the snap command reads for
// Options.CAFile.
const CAFileEnv = "SNAP_S3_CA_FILE"

// BucketLookupEnv is the environment variable the snap command reads for
// Options.BucketLookup.
const BucketLookupEnv = "SNAP_S3_BUCKET_LOOKUP"

// DefaultConnections is the default bound on concurrent requests.
const DefaultConnections = 5

// Location is a parsed s3 repository location.
type Location struct {
	Endpoint string // host[:port]
	Secure   bool   // https
	Bucket   string
	Prefix   string // without leading or trailing '/'; "" for the bucket's root
}

// ParseLocation parses s3:https://host[:port]/bucket[/prefix],
// s3:http://… or s3:host[:port]/bucket[/prefix] (https).
func ParseLocation(s string) (Location, error) {
	rest, ok := strings.CutPrefix(s, "s3:")
	if !ok {
		return Location{}, fmt.Errorf("s3 location %q: must start with s3:", s)
	}
	if !strings.Contains(rest, "://") {
		rest = "https://" + rest
	}
	u, err := url.Parse(rest)
	bad := func(why string) error {
		return fmt.Errorf("s3 location %q: %s; use s3:https://host[:port]/bucket[/prefix]", s, why)
	}
	if err != nil {
		return Location{}, bad(err.Error())
	}
	loc := Location{Endpoint: u.Host}
	switch u.Scheme {
	case "https":
		loc.Secure = true
	case "http":
	default:
		return Location{}, bad(fmt.Sprintf("scheme %q is not http or https", u.Scheme))
	}
	switch {
	case u.Host == "" || u.Hostname() == "":
		return Location{}, bad("no host")
	case u.User != nil:
		return Location{}, bad("credentials do not belong in the location; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	case u.RawQuery != "" || u.Fragment != "":
		return Location{}, bad("a query or fragment is not allowed")
	}
	p := strings.Trim(u.Path, "/")
	loc.Bucket, loc.Prefix, _ = strings.Cut(p, "/")
	if loc.Bucket == "" {
		return Location{}, bad("no bucket")
	}
	for _, el := range strings.Split(loc.Prefix, "/") {
		if loc.Prefix != "" && (el == "" || el == "." || el == "..") {
			return Location{}, bad(fmt.Sprintf("bad prefix %q", loc.Prefix))
		}
	}
	return loc, nil
}

// String returns the location in the form ParseLocation reads.
func (l Location) String() string {
	scheme := "http"
	if l.Secure {
		scheme = "https"
	}
	s := "s3:" + scheme + "://" + l.Endpoint + "/" + l.Bucket
	if l.Prefix != "" {
		s += "/" + l.Prefix
	}
	return s
}

// Options configure the client.
type Options struct {
	// Region is the bucket's region; "" lets the client ask the server.
	Region string
	// Connections bounds the requests running at once; 0 means 5.
	Connections int
	// CAFile is a PEM file of certificates to trust in addition to the
	// system's roots (for servers with self-signed certificates).
	CAFile string
	// RootCAs, when set, replaces the system's roots (tests).
	RootCAs *x509.CertPool
	// BucketLookup is "" (by host, see the package doc), "path" or "dns".
	BucketLookup string
	// Credentials, when set, replaces the environment and shared file.
	Credentials *credentials.Credentials
}

// Backend is a repository in an S3 bucket. It implements backend.Backend
// and, through the embedded Locker, backend.Locker.
type Backend struct {
	*objlock.Locker

	loc    Location
	region string
	client *minio.Client
	core   *minio.Core
	sem    chan struct{}
}

// Open creates the client and checks that the server answers and accepts
// the credentials. A missing bucket is not an error here (see Create).
func Open(ctx context.Context, loc Location, opts Options) (*Backend, error) {
	n := opts.Connections
	if n <= 0 {
		n = DefaultConnections
	}
	tr, err := minio.DefaultTransport(loc.Secure)
	if err != nil {
		return nil, fmt.Errorf("s3 %s: %w", loc, err)
	}
	tr.MaxIdleConnsPerHost = n
	roots := opts.RootCAs
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("s3: read trusted certificates (%s): %w", CAFileEnv, err)
		}
		if roots == nil {
			if roots, err = x509.SystemCertPool(); err != nil {
				roots = x509.NewCertPool()
			}
		} else {
			roots = roots.Clone()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("s3: %s (%s) holds no PEM certificate", opts.CAFile, CAFileEnv)
		}
	}
	if roots != nil {
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.RootCAs = roots
	}
	creds := opts.Credentials
	if creds == nil {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
		})
	}
	lookup, err := bucketLookup(loc.Endpoint, opts.BucketLookup)
	if err != nil {
		return nil, err
	}
	client, err := minio.New(loc.Endpoint, &minio.Options{
		Creds:        creds,
		Secure:       loc.Secure,
		Transport:    tr,
		Region:       opts.Region,
		BucketLookup: lookup,
		MaxRetries:   2, // the retry wrapper does the rest, within its time bound
	})
	if err != nil {
		return nil, fmt.Errorf("s3 %s: %w", loc, err)
	}
	b := &Backend{loc: loc, region: opts.Region, client: client, core: &minio.Core{Client: client},
		sem: make(chan struct{}, n)}
	b.Locker = objlock.New(b)
	if _, err := b.bucketExists(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// bucketLookup chooses path-style addressing for IP addresses and localhost,
// virtual-host style for other hosts, unless choice ("path", "dns") says.
func bucketLookup(endpoint, choice string) (minio.BucketLookupType, error) {
	switch choice {
	case "path":
		return minio.BucketLookupPath, nil
	case "dns":
		return minio.BucketLookupDNS, nil
	case "":
	default:
		return 0, fmt.Errorf("s3: bucket lookup %q (%s): want path or dns", choice, BucketLookupEnv)
	}
	host := endpoint
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if net.ParseIP(host) != nil || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return minio.BucketLookupPath, nil
	}
	return minio.BucketLookupDNS, nil
}

// Location returns the location in the form ParseLocation reads.
func (b *Backend) Location() string { return b.loc.String() }

func (b *Backend) bucketExists(ctx context.Context) (bool, error) {
	release, err := b.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	ok, err := b.client.BucketExists(ctx, b.loc.Bucket)
	if err != nil {
		return false, b.mapErr("check bucket", b.loc.Bucket, err)
	}
	return ok, nil
}

// Create makes the bucket if it does not exist. Init calls it before it
// writes the config.
func (b *Backend) Create(ctx context.Context) error {
	ok, err := b.bucketExists(ctx)
	if err != nil || ok {
		return err
	}
	release, err := b.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	err = b.client.MakeBucket(ctx, b.loc.Bucket, minio.MakeBucketOptions{Region: b.region})
	if err != nil {
		if code := errorCode(err); code == "BucketAlreadyOwnedByYou" {
			return nil
		}
		return b.mapErr("create bucket", b.loc.Bucket, err)
	}
	return nil
}

func (b *Backend) acquire(ctx context.Context) (func(), error) {
	select {
	case b.sem <- struct{}{}:
		return func() { <-b.sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// key maps a backend name to the object key.
func (b *Backend) key(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("invalid file name %q", name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == "" || el == "." || el == ".." {
			return "", fmt.Errorf("invalid file name %q", name)
		}
	}
	if b.loc.Prefix == "" {
		return name, nil
	}
	return b.loc.Prefix + "/" + name, nil
}

func errorCode(err error) string {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.Code
	}
	return ""
}

// TempError is a server answer that may change when the request is repeated
// (HTTP 5xx, 429, 408, SlowDown).
type TempError struct{ Err error }

func (e *TempError) Error() string   { return e.Err.Error() }
func (e *TempError) Unwrap() error   { return e.Err }
func (e *TempError) Temporary() bool { return true }

// mapErr turns a minio error for op on name into the backend's error.
func (b *Backend) mapErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		var unknownCA x509.UnknownAuthorityError
		var hostErr x509.HostnameError
		var verify *tls.CertificateVerificationError
		if errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &verify) {
			return fmt.Errorf("%s %s on %s: %w; for a server with a self-signed certificate, set %s to its CA certificate (PEM)", op, name, b.loc, err, CAFileEnv)
		}
		if strings.Contains(err.Error(), "Connection closed by foreign host") {
			// minio-go's rewording of an EOF from the server.
			return &TempError{fmt.Errorf("%s %s on %s: %w", op, name, b.loc, err)}
		}
		return fmt.Errorf("%s %s on %s: %w", op, name, b.loc, err)
	}
	switch er.Code {
	case "NoSuchKey", "NotFound":
		return fmt.Errorf("%s %s on %s: %w", op, name, b.loc, backend.ErrNotExist)
	case "NoSuchBucket":
		return fmt.Errorf("%s %s: bucket %q does not exist on %s: %w", op, name, b.loc.Bucket, b.loc.Endpoint, backend.ErrNotExist)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
		"TokenRefreshRequired", "AllAccessDisabled", "Forbidden":
		return fmt.Errorf("%s %s on %s: access denied (%s: %s); check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE: %w",
			op, name, b.loc, er.Code, er.Error(), fs.ErrPermission)
	case "SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeTooSkewed":
		return &TempError{fmt.Errorf("%s %s on %s: %s: %w", op, name, b.loc, er.Code, err)}
	}
	if er.StatusCode >= 500 || er.StatusCode == http.StatusTooManyRequests || er.StatusCode == http.StatusRequestTimeout {
		return &TempError{fmt.Errorf("%s %s on %s: the server answered HTTP %d: %w", op, name, b.loc, er.StatusCode, err)}
	}
	if er.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%s %s on %s: access denied (%s); check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE: %w",
			op, name, b.loc, er.Error(), fs.ErrPermission)
	}
	return fmt.Errorf("%s %s on %s: %s: %w", op, name, b.loc, er.Code, err)
}

// Save uploads rd as one object. The size is taken from rd when it tells
// (Len or Seek); otherwise minio-go uploads in parts of unknown total size.
func (b *Backend) Save(ctx context.Context, name string, rd io.Reader) error {
	key, err := b.key(name)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	size := int64(-1)
	switch r := rd.(type) {
	case interface{ Len() int }:
		size = int64(r.Len())
	case io.Seeker:
		cur, err1 := r.Seek(0, io.SeekCurrent)
		end, err2 := r.Seek(0, io.SeekEnd)
		if err1 == nil && err2 == nil {
			if _, err := r.Seek(cur, io.SeekStart); err != nil {
				return fmt.Errorf("save %s: rewind the source: %w", name, err)
			}
			size = end - cur
		}
	}
	release, err := b.acquire(ctx)
	if err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	defer release()
	info, err := b.client.PutObject(ctx, b.loc.Bucket, key, rd, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
	})
	if err != nil {
		return b.mapErr("save", name, err)
	}
	if size >= 0 && info.Size != size {
		return &TempError{fmt.Errorf("save %s on %s: the server stored %d bytes of %d", name, b.loc, info.Size, size)}
	}
	return nil
}

// Load reads name from offset with a ranged GET; length 0 reads to the end.
func (b *Backend) Load(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	key, err := b.key(name)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("load %s: negative offset or length", name)
	}
	var opts minio.GetObjectOptions
	if length > 0 {
		err = opts.SetRange(offset, offset+length-1)
	} else if offset > 0 {
		err = opts.SetRange(offset, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	release, err := b.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	defer release()
	rc, _, _, err := b.core.GetObject(ctx, b.loc.Bucket, key, opts)
	if err != nil {
		if errorCode(err) == "InvalidRange" {
			// The object exists but ends before offset.
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, b.mapErr("load", name, err)
	}
	return &loadReader{rc: rc, b: b, name: name}, nil
}

type loadReader struct {
	rc   io.ReadCloser
	b    *Backend
	name string
}

func (l *loadReader) Read(p []byte) (int, error) {
	n, err := l.rc.Read(p)
	if err != nil && err != io.EOF {
		err = l.b.mapErr("load", l.name, err)
	}
	return n, err
}

func (l *loadReader) Close() error { return l.rc.Close() }

// Stat returns the size of name.
func (b *Backend) Stat(ctx context.Context, name string) (backend.FileInfo, error) {
	key, err := b.key(name)
	if err != nil {
		return backend.FileInfo{}, fmt.Errorf("stat: %w", err)
	}
	release, err := b.acquire(ctx)
	if err != nil {
		return backend.FileInfo{}, fmt.Errorf("stat %s: %w", name, err)
	}
	defer release()
	oi, err := b.client.StatObject(ctx, b.loc.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return backend.FileInfo{}, b.mapErr("stat", name, err)
	}
	return backend.FileInfo{Name: name, Size: oi.Size}, nil
}

// List calls fn for every object under dir/.
func (b *Backend) List(ctx context.Context, dir string, fn func(backend.FileInfo) error) error {
	prefix, err := b.key(dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	prefix += "/"
	base := strings.TrimSuffix(prefix, dir+"/")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for oi := range b.client.ListObjects(ctx, b.loc.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			return b.mapErr("list", dir, oi.Err)
		}
		if strings.HasSuffix(oi.Key, "/") {
			continue // a "directory" marker made by other tools
		}
		name := path.Clean(strings.TrimPrefix(oi.Key, base))
		if err := fn(backend.FileInfo{Name: name, Size: oi.Size}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Remove deletes name; a missing name is an error wrapping
// backend.ErrNotExist.
func (b *Backend) Remove(ctx context.Context, name string) error {
	key, err := b.key(name)
	if err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	if _, err := b.Stat(ctx, name); err != nil {
		return err
	}
	release, err := b.acquire(ctx)
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	defer release()
	if err := b.client.RemoveObject(ctx, b.loc.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return b.mapErr("remove", name, err)
	}
	return nil
}
