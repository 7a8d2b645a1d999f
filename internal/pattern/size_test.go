package pattern

import (
	"errors"
	"testing"
)

func TestParseSize(t *testing.T) {
	good := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"100", 100},
		{"100B", 100},
		{"100b", 100},
		{"1 B", 1},
		{"500K", 500 << 10},
		{"500k", 500 << 10},
		{"1KB", 1024},
		{"1KiB", 1024},
		{"1kib", 1024},
		{"2M", 2 << 20},
		{"2mb", 2 << 20},
		{"1G", 1 << 30},
		{"1 GiB", 1 << 30},
		{"1.5G", 3 << 29},
		{"1T", 1 << 40},
		{" 3tb ", 3 << 40},
		{"1P", 1 << 50},
		{"7E", 7 << 60},
		{"0.1K", 102},
		{".5K", 512},
		{"5.K", 5 << 10},
		{"1.0", 1},
		{"9223372036854775807", 1<<63 - 1},
	}
	for _, c := range good {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}

	bad := []string{"", " ", "-1", "abc", "1X", "1.5", "1..5K", "K", "1iB", "1.2.3K", ".", "1e3", "+1",
		"9223372036854775808", "8E", "99999999999999999999999K", "1KK", "1 K B", "1Bi"}
	for _, in := range bad {
		got, err := ParseSize(in)
		if err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		} else if !errors.Is(err, ErrBadSize) {
			t.Errorf("ParseSize(%q) error %v does not wrap ErrBadSize", in, err)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1", "1.5G", "-1", "8E", "1KiB", ".", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d, negative", s, n)
		}
	})
}
