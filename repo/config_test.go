package repo

import (
	"errors"
	"testing"

	"snap/chunk"
)

func TestConfigRoundTrip(t *testing.T) {
	p, err := chunk.NewParams(chunk.DefaultMin, chunk.DefaultAvg, chunk.DefaultMax)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConfig(p, CompressAuto)
	if err != nil {
		t.Fatal(err)
	}
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.Chunker != c.Chunker || got.Compression != c.Compression {
		t.Fatalf("config changed in a round trip: %+v vs %+v", got, c)
	}
}

func TestParseConfigRefuses(t *testing.T) {
	for name, s := range map[string]string{
		"not json":       "{",
		"version 0":      `{"version":0}`,
		"version 3":      `{"version":3,"id":"` + chunk.Hash(nil).String() + `","chunker":{"polynomial":"3da3358b4dc173","min_size":524288,"avg_size":1048576,"max_size":8388608},"compression":"auto","encryption":"none"}`,
		"unknown field":  `{"version":1,"bogus":1}`,
		"bad id":         `{"version":1,"id":"xyz"}`,
		"encryption":     `{"version":1,"id":"` + chunk.Hash(nil).String() + `","chunker":{"polynomial":"3da3358b4dc173","min_size":524288,"avg_size":1048576,"max_size":8388608},"compression":"auto","encryption":"aes"}`,
		"bad compressor": `{"version":1,"id":"` + chunk.Hash(nil).String() + `","chunker":{"polynomial":"3da3358b4dc173","min_size":524288,"avg_size":1048576,"max_size":8388608},"compression":"lz4","encryption":"none"}`,
		"trailing":       `{"version":1} {}`,
	} {
		if _, err := ParseConfig([]byte(s)); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: got %v, want ErrBadConfig", name, err)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"version":1,"id":"` + chunk.Hash(nil).String() + `","chunker":{"polynomial":"3da3358b4dc173","min_size":524288,"avg_size":1048576,"max_size":8388608},"compression":"auto","encryption":"none"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err == nil && c.Chunker.Validate() != nil {
			t.Fatal("accepted a config with an invalid chunker")
		}
	})
}
