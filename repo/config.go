package repo

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"snap/chunk"
	"snap/repo/pack"
)

// FormatVersion is the repository format this code writes into new
// repositories. It reads and writes every version from 1 up to this one: they
// differ only in how packs are named (see PackNaming).
const FormatVersion = 2

// maxConfigSize bounds the config file read from a repository.
const maxConfigSize = 64 << 10

// Config is the repository configuration stored in the file "config". It is
// written once by Init and never changed.
type Config struct {
	Version     int          `json:"version"`
	ID          string       `json:"id"`
	Created     time.Time    `json:"created"`
	Chunker     chunk.Params `json:"chunker"`
	Compression string       `json:"compression"`
	Encryption  string       `json:"encryption"`
}

// ErrBadConfig is wrapped by errors for a config file that cannot be used.
var ErrBadConfig = errors.New("invalid repository config")

// NewConfig returns a config with a fresh repository ID and chunker polynomial.
func NewConfig(p chunk.Params, compression string) (Config, error) {
	var id [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Config{}, err
	}
	c := Config{
		Version:     FormatVersion,
		ID:          hex.EncodeToString(id[:]),
		Created:     time.Now().UTC(),
		Chunker:     p,
		Compression: compression,
		Encryption:  "none",
	}
	return c, c.validate()
}

func (c Config) validate() error {
	if c.Version < 1 || c.Version > FormatVersion {
		return fmt.Errorf("%w: format version %d, this snap reads versions 1 to %d; use a newer snap", ErrBadConfig, c.Version, FormatVersion)
	}
	if _, err := chunk.ParseID(c.ID); err != nil {
		return fmt.Errorf("%w: repository id %q is not 64 hex digits", ErrBadConfig, c.ID)
	}
	if err := c.Chunker.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if _, err := ParseCompression(c.Compression); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if c.Encryption != "none" {
		return fmt.Errorf("%w: encryption %q is not supported by this snap", ErrBadConfig, c.Encryption)
	}
	return nil
}

// PackNaming returns how the repository's packs are named: version 1 by the
// SHA-256 of the whole file, version 2 by that of the trailer and footer.
func (c Config) PackNaming() pack.Naming {
	if c.Version == 1 {
		return pack.WholeFile
	}
	return pack.TrailerAndFooter
}

// ParseConfig decodes and checks a config file.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if len(data) > maxConfigSize {
		return c, fmt.Errorf("%w: %d bytes, more than the limit of %d", ErrBadConfig, len(data), maxConfigSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if dec.More() {
		return c, fmt.Errorf("%w: trailing data after the JSON object", ErrBadConfig)
	}
	return c, c.validate()
}

// Marshal encodes the config as indented JSON.
func (c Config) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	return append(b, '\n'), err
}
