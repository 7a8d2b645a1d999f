package repo

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"

	"snap/repo/pack"
)

// Compression modes, as named in the config and on the command line.
const (
	CompressAuto    = "auto"
	CompressOff     = "off"
	CompressFastest = "fastest"
	CompressDefault = "default"
	CompressBetter  = "better"
	CompressMax     = "max"
)

// ParseCompression checks a compression mode name.
func ParseCompression(s string) (string, error) {
	switch s {
	case CompressAuto, CompressOff, CompressFastest, CompressDefault, CompressBetter, CompressMax:
		return s, nil
	}
	return "", fmt.Errorf("compression %q: want auto, off, fastest, default, better or max", s)
}

// A blob is stored compressed only when zstd saves at least this share.
const minSaving = 0.03

// probeSize is how much of a blob auto mode compresses with the fastest
// level to decide whether compressing the whole blob is worth it.
const probeSize = 64 << 10

// encoderWindow is the zstd window: blobs are at most a few MiB, and a
// 1 MiB window compressed the bench corpus as well as the default 8 MiB
// while taking 13 MiB less memory.
const encoderWindow = 1 << 20

// compressor holds the zstd encoders of one repository handle. zstd encoders
// are safe for concurrent EncodeAll calls.
type compressor struct {
	mode  string
	once  sync.Once
	probe *zstd.Encoder
	enc   *zstd.Encoder
	err   error

	decOnce sync.Once
	dec     *zstd.Decoder
	decErr  error
}

func newCompressor(mode string) *compressor { return &compressor{mode: mode} }

func (c *compressor) init() error {
	c.once.Do(func() {
		level := zstd.SpeedDefault
		switch c.mode {
		case CompressFastest:
			level = zstd.SpeedFastest
		case CompressBetter:
			level = zstd.SpeedBetterCompression
		case CompressMax:
			level = zstd.SpeedBestCompression
		}
		c.enc, c.err = zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(encoderWindow))
		if c.err == nil && c.mode == CompressAuto {
			c.probe, c.err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(encoderWindow))
		}
	})
	return c.err
}

// compress returns the bytes to store for raw and how they are encoded. dst is
// a buffer that may be reused for the result.
func (c *compressor) compress(raw, dst []byte) ([]byte, pack.Compression, error) {
	if c.mode == CompressOff || len(raw) < 64 {
		return raw, pack.Raw, nil
	}
	if err := c.init(); err != nil {
		return nil, 0, fmt.Errorf("zstd encoder: %w", err)
	}
	if c.mode == CompressAuto && len(raw) > 2*probeSize {
		// Incompressible data (media, archives, ciphertext) costs only this probe.
		sample := raw[:probeSize]
		p := c.probe.EncodeAll(sample, dst[:0])
		if float64(len(p)) > (1-minSaving)*float64(len(sample)) {
			return raw, pack.Raw, nil
		}
	}
	out := c.enc.EncodeAll(raw, dst[:0])
	if float64(len(out)) > (1-minSaving)*float64(len(raw)) {
		return raw, pack.Raw, nil
	}
	return out, pack.Zstd, nil
}

// decoder returns the handle's zstd decoder; DecodeAll is safe for concurrent use.
func (c *compressor) decoder() (*zstd.Decoder, error) {
	c.decOnce.Do(func() {
		c.dec, c.decErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(pack.MaxRawLength))
	})
	return c.dec, c.decErr
}
