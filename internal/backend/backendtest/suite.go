package backendtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"testing"

	"snap/internal/backend"
)

// Run checks that be behaves like a backend.Backend must: whole and ranged
// loads, Stat, recursive List, Remove, overwriting, ErrNotExist for missing
// names, sources that cannot seek, and concurrent saves. be must be empty.
func Run(t *testing.T, be backend.Backend) {
	ctx := context.Background()

	t.Run("SaveLoadStat", func(t *testing.T) {
		data := random(t, 100_000)
		save(t, be, "snapshots/one", data)
		if got := load(t, be, "snapshots/one", 0, 0); !bytes.Equal(got, data) {
			t.Fatalf("loaded %d bytes, not the %d saved", len(got), len(data))
		}
		fi, err := be.Stat(ctx, "snapshots/one")
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size != int64(len(data)) || fi.Name != "snapshots/one" {
			t.Fatalf("Stat = %+v, want size %d", fi, len(data))
		}
		mustRemove(t, be, "snapshots/one")
	})

	t.Run("Empty", func(t *testing.T) {
		save(t, be, "snapshots/empty", nil)
		if got := load(t, be, "snapshots/empty", 0, 0); len(got) != 0 {
			t.Fatalf("empty file loads as %d bytes", len(got))
		}
		if fi, err := be.Stat(ctx, "snapshots/empty"); err != nil || fi.Size != 0 {
			t.Fatalf("Stat = %+v, %v", fi, err)
		}
		mustRemove(t, be, "snapshots/empty")
	})

	t.Run("Ranges", func(t *testing.T) {
		data := random(t, 300_000)
		save(t, be, "data/ab/ranges", data)
		n := int64(len(data))
		for _, r := range []struct{ off, length int64 }{
			{0, 1}, {0, 100}, {1, 0}, {12345, 6789}, {n - 1, 1}, {n - 10, 0}, {100_000, 200_000}, {0, n},
		} {
			got := load(t, be, "data/ab/ranges", r.off, r.length)
			end := n
			if r.length > 0 {
				end = r.off + r.length
			}
			if !bytes.Equal(got, data[r.off:end]) {
				t.Errorf("Load(%d, %d): %d bytes, not the %d expected", r.off, r.length, len(got), end-r.off)
			}
		}
		// Past the end: fewer bytes, no error on open.
		if got := load(t, be, "data/ab/ranges", n-5, 100); !bytes.Equal(got, data[n-5:]) {
			t.Errorf("Load past the end: %d bytes, want 5", len(got))
		}
		if got := load(t, be, "data/ab/ranges", n, 0); len(got) != 0 {
			t.Errorf("Load at the end: %d bytes, want none", len(got))
		}
		// ReaderAt as the repository uses it.
		buf := make([]byte, 1000)
		if _, err := (backend.ReaderAt{Ctx: ctx, Backend: be, Name: "data/ab/ranges"}).ReadAt(buf, 5000); err != nil || !bytes.Equal(buf, data[5000:6000]) {
			t.Errorf("ReadAt: %v", err)
		}
		mustRemove(t, be, "data/ab/ranges")
	})

	t.Run("Missing", func(t *testing.T) {
		if _, err := be.Load(ctx, "data/00/missing", 0, 0); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("Load of a missing name: %v, want ErrNotExist", err)
		}
		if _, err := be.Load(ctx, "data/00/missing", 10, 10); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("ranged Load of a missing name: %v, want ErrNotExist", err)
		}
		if _, err := be.Stat(ctx, "config"); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("Stat of a missing name: %v, want ErrNotExist", err)
		}
		if err := be.Remove(ctx, "snapshots/missing"); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("Remove of a missing name: %v, want ErrNotExist", err)
		}
		if got := list(t, be, "nothing-here"); len(got) != 0 {
			t.Errorf("List of a missing directory: %v", got)
		}
	})

	t.Run("BadNames", func(t *testing.T) {
		for _, name := range []string{"", "/etc/passwd", "../outside", "data/../../x"} {
			if err := be.Save(ctx, name, bytes.NewReader([]byte("x"))); err == nil {
				t.Errorf("Save(%q) succeeded", name)
			}
			if _, err := be.Stat(ctx, name); err == nil {
				t.Errorf("Stat(%q) succeeded", name)
			}
		}
	})

	t.Run("ListRemove", func(t *testing.T) {
		want := map[string]int64{}
		for i, name := range []string{"data/aa/one", "data/aa/two", "data/bb/three", "data/cc/dd/four"} {
			save(t, be, name, make([]byte, 10*i))
			want[name] = int64(10 * i)
		}
		save(t, be, "snapshots/other", []byte("x"))
		if got := list(t, be, "data"); !maps.Equal(got, want) {
			t.Fatalf("List(data) = %v, want %v", got, want)
		}
		if got := list(t, be, "data/aa"); len(got) != 2 {
			t.Fatalf("List(data/aa) = %v", got)
		}
		if nl, ok := be.(backend.NameLister); ok {
			var names []string
			if err := nl.ListNames(ctx, "data", func(name string) error { names = append(names, name); return nil }); err != nil {
				t.Fatalf("ListNames(data): %v", err)
			}
			if got := slices.Sorted(slices.Values(names)); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
				t.Fatalf("ListNames(data) = %v, want the names List gives, %v", got, slices.Sorted(maps.Keys(want)))
			}
		}
		stop := errors.New("stop")
		calls := 0
		err := be.List(ctx, "data", func(backend.FileInfo) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("List with a failing callback: %v after %d calls", err, calls)
		}
		for name := range want {
			mustRemove(t, be, name)
			if _, err := be.Stat(ctx, name); !errors.Is(err, backend.ErrNotExist) {
				t.Errorf("Stat after Remove(%s): %v", name, err)
			}
		}
		mustRemove(t, be, "snapshots/other")
		if got := list(t, be, "data"); len(got) != 0 {
			t.Fatalf("List after removing everything: %v", got)
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		save(t, be, "locks/x", []byte("first version, longer"))
		save(t, be, "locks/x", []byte("second"))
		if got := load(t, be, "locks/x", 0, 0); string(got) != "second" {
			t.Fatalf("after overwrite: %q", got)
		}
		mustRemove(t, be, "locks/x")
	})

	t.Run("UnseekableSource", func(t *testing.T) {
		data := random(t, 200_000)
		pr, pw := io.Pipe()
		go func() { pw.Write(data); pw.Close() }()
		if err := be.Save(ctx, "snapshots/pipe", onlyReader{pr}); err != nil {
			t.Fatal(err)
		}
		if got := load(t, be, "snapshots/pipe", 0, 0); !bytes.Equal(got, data) {
			t.Fatal("content differs")
		}
		mustRemove(t, be, "snapshots/pipe")
	})

	t.Run("FailingSource", func(t *testing.T) {
		boom := errors.New("source broke")
		rd := io.MultiReader(bytes.NewReader(make([]byte, 70_000)), errReader{boom})
		if err := be.Save(ctx, "snapshots/broken", rd); err == nil {
			t.Fatal("Save of a failing source succeeded")
		}
		if _, err := be.Stat(ctx, "snapshots/broken"); !errors.Is(err, backend.ErrNotExist) {
			t.Fatalf("a failed Save left something under the name: %v", err)
		}
	})

	t.Run("ConcurrentSaves", func(t *testing.T) {
		const n = 12
		datas := make([][]byte, n)
		for i := range datas {
			datas[i] = random(t, 150_000+i*1000)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i := range n {
			wg.Add(2)
			go func() {
				defer wg.Done()
				errs <- be.Save(ctx, fmt.Sprintf("data/%02x/c%d", i%3, i), bytes.NewReader(datas[i]))
			}()
			go func() {
				defer wg.Done()
				// Everyone writes the same bytes to one name, as two
				// writers of the same pack would.
				errs <- be.Save(ctx, "data/ff/same", bytes.NewReader(datas[0]))
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		for i := range n {
			name := fmt.Sprintf("data/%02x/c%d", i%3, i)
			if got := load(t, be, name, 0, 0); !bytes.Equal(got, datas[i]) {
				t.Errorf("%s: content differs", name)
			}
			mustRemove(t, be, name)
		}
		if got := load(t, be, "data/ff/same", 0, 0); !bytes.Equal(got, datas[0]) {
			t.Error("data/ff/same: content differs")
		}
		mustRemove(t, be, "data/ff/same")
		if got := list(t, be, "data"); len(got) != 0 {
			t.Errorf("left over: %v", slices.Sorted(maps.Keys(got)))
		}
	})
}

type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func random(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func save(t testing.TB, be backend.Backend, name string, data []byte) {
	t.Helper()
	if err := be.Save(context.Background(), name, bytes.NewReader(data)); err != nil {
		t.Fatalf("Save(%s): %v", name, err)
	}
}

func load(t testing.TB, be backend.Backend, name string, off, length int64) []byte {
	t.Helper()
	rc, err := be.Load(context.Background(), name, off, length)
	if err != nil {
		t.Fatalf("Load(%s, %d, %d): %v", name, off, length, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return data
}

func mustRemove(t testing.TB, be backend.Backend, name string) {
	t.Helper()
	if err := be.Remove(context.Background(), name); err != nil {
		t.Fatalf("Remove(%s): %v", name, err)
	}
}

func list(t testing.TB, be backend.Backend, dir string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	err := be.List(context.Background(), dir, func(fi backend.FileInfo) error {
		if _, dup := got[fi.Name]; dup {
			t.Errorf("List(%s) reports %s twice", dir, fi.Name)
		}
		got[fi.Name] = fi.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List(%s): %v", dir, err)
	}
	return got
}
