// Package chunk cuts file content into content-defined chunks and names blobs.
//
// Start with Params (the chunker settings a repository records in its config),
// NewChunker to split a stream, and Hash to compute a blob's ID. IDs are SHA-256
// of raw blob bytes; xxhash is never used as an identity.
package chunk

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// IDSize is the length of an ID in bytes.
const IDSize = sha256.Size

// ID names a blob, pack or snapshot: the SHA-256 of its bytes.
type ID [IDSize]byte

// Hash returns the ID of data.
func Hash(data []byte) ID { return sha256.Sum256(data) }

// String returns the ID as 64 lowercase hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, as shown in listings.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsNull reports whether id is the zero ID, which names nothing.
func (id ID) IsNull() bool { return id == ID{} }

// ErrInvalidID is returned by ParseID for text that is not 64 hex digits.
var ErrInvalidID = errors.New("invalid ID")

// ParseID parses 64 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("parse ID %q: %w: want %d hex digits", s, ErrInvalidID, 2*IDSize)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("parse ID %q: %w", s, ErrInvalidID)
	}
	return id, nil
}

// MarshalText encodes the ID as hex, so IDs read well in JSON.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses hex.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
