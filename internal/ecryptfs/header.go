package ecryptfs

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Layout constants of the kernel's lower files (fs/ecryptfs/ecryptfs_kernel.h
// and crypto.c).
const (
	// HeaderSize is the header at the front of a lower file on machines with
	// pages of at most 8 KiB. Readers take the real size from bytes 20–25.
	HeaderSize = 8192
	// ExtentSize is the unit of encryption: every extent of plaintext is
	// encrypted on its own, so an in-place write changes only its extents.
	ExtentSize = 4096

	// XattrName holds the header instead of the file's first bytes when the
	// mount uses ecryptfs_xattr_metadata.
	XattrName = "user.ecryptfs"

	// FileVersion is the format version the kernel writes (and the highest
	// it reads).
	FileVersion = 3

	// Flag bits in bytes 16–19 (the kernel's ecryptfs_flag_map).
	FlagEncrypted       = 0x02
	FlagMetadataInXattr = 0x04
	FlagEncryptedNames  = 0x08

	// headerFixed is the size, marker, flags and geometry before the key
	// packets; it is all ParseHeader needs.
	headerFixed = 26
	magicMarker = 0x3c81b7f5

	// maxHeaderExtents bounds the header to 256 KiB, the largest page size
	// Linux runs with: the header is one page when pages exceed 8 KiB.
	maxHeaderExtents = 64
	// maxPlainSize keeps every size and offset derived from a header inside
	// int64, whatever the header says.
	maxPlainSize = 1 << 62
)

// Key packet constants (fs/ecryptfs/keystore.c). The packets are shaped
// after OpenPGP (RFC 2440) packets 3 and 11.
const (
	tag1Packet  = 0x01 // public-key wrapped file key (ecryptfs PKI modules)
	tag3Packet  = 0x8C // passphrase wrapped file key
	tag11Packet = 0xED // literal data: the mount key's signature
	tag70Packet = 0x46 // FNEK-encrypted file name

	cipherAES128 = 0x07 // RFC 2440 cipher code
	sigSize      = 8    // ECRYPTFS_SIG_SIZE
	saltSize     = 8    // ECRYPTFS_SALT_SIZE
	keySize      = 16   // AES-128, the Ubuntu default
	maxPackets   = 16   // bound on the packet walk; real headers hold two
)

// defaultSalt is the salt mount.ecryptfs_private writes into every tag 3
// packet (ECRYPTFS_DEFAULT_SALT, 0x0011223344556677), so it is the same in
// every file of a real tree.
const defaultSalt = "\x00\x11\x22\x33\x44\x55\x66\x77"

// ErrNotHeader is wrapped by ParseHeader's errors: the bytes are not an
// eCryptfs header.
var ErrNotHeader = errors.New("not an eCryptfs header")

// Header is what ParseHeader reads from a lower file's header.
type Header struct {
	PlainSize       uint64 // size of the cleartext file
	Flags           uint32 // bytes 16–19 as stored, version in the top byte
	Version         uint8
	ExtentSize      uint32
	HeaderExtents   uint16 // the header is HeaderExtents × ExtentSize bytes
	MetadataInXattr bool   // the file holds extents only; this header came from the xattr
	EncryptedNames  bool
}

// ParseHeader reads the header at the start of a lower file, or the value of
// its user.ecryptfs xattr (which the kernel writes without the zero tail:
// about 80 bytes). It needs the first 26 bytes and checks the marker, the
// version, the encrypted flag, the extent size and the header size; key
// packets present in b are checked too (a tag 3 packet followed by a tag 11
// packet, or a tag 1 packet), but a packet cut off by the end of b is not an
// error, so a caller may pass any prefix of the header. Errors wrap
// ErrNotHeader; any input gives an error or a Header, never a panic.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < headerFixed {
		return h, fmt.Errorf("%w: %d bytes, need at least %d", ErrNotHeader, len(b), headerFixed)
	}
	m1 := binary.BigEndian.Uint32(b[8:12])
	m2 := binary.BigEndian.Uint32(b[12:16])
	if m1^m2 != magicMarker {
		return h, fmt.Errorf("%w: no marker in bytes 8-15", ErrNotHeader)
	}
	h.PlainSize = binary.BigEndian.Uint64(b[0:8])
	h.Flags = binary.BigEndian.Uint32(b[16:20])
	h.Version = uint8(h.Flags >> 24)
	h.ExtentSize = binary.BigEndian.Uint32(b[20:24])
	h.HeaderExtents = binary.BigEndian.Uint16(b[24:26])
	h.MetadataInXattr = h.Flags&FlagMetadataInXattr != 0
	h.EncryptedNames = h.Flags&FlagEncryptedNames != 0
	// Version 0 files predate the geometry fields in bytes 20-25; nothing
	// newer than 3 exists.
	if h.Version < 1 || h.Version > FileVersion {
		return h, fmt.Errorf("%w: file version %d, want 1 to %d", ErrNotHeader, h.Version, FileVersion)
	}
	if h.Flags&FlagEncrypted == 0 {
		// The kernel refuses such files ("non-encrypted eCryptfs file").
		return h, fmt.Errorf("%w: encrypted flag not set (flags %#08x)", ErrNotHeader, h.Flags)
	}
	if h.ExtentSize != ExtentSize {
		return h, fmt.Errorf("%w: extent size %d, want %d", ErrNotHeader, h.ExtentSize, ExtentSize)
	}
	if h.HeaderExtents == 0 || h.HeaderExtents > maxHeaderExtents ||
		int64(h.HeaderExtents)*ExtentSize < HeaderSize {
		return h, fmt.Errorf("%w: %d header extents", ErrNotHeader, h.HeaderExtents)
	}
	if h.PlainSize > maxPlainSize {
		return h, fmt.Errorf("%w: file size %d out of range", ErrNotHeader, h.PlainSize)
	}
	if _, err := walkPackets(b); err != nil {
		return h, fmt.Errorf("%w: %w", ErrNotHeader, err)
	}
	return h, nil
}

// Size is the size of the header at the front of the lower file: 0 when
// the header lives in the xattr.
func (h Header) Size() int64 {
	if h.MetadataInXattr {
		return 0
	}
	return int64(h.HeaderExtents) * int64(h.ExtentSize)
}

// LowerSize is the size the lower file must have: the header (unless it is
// in the xattr) and whole extents covering the plaintext.
func (h Header) LowerSize() int64 {
	return h.Size() + extentsFor(int64(h.PlainSize))*int64(h.ExtentSize)
}

// LowerSize is the lower file size for a cleartext file of plainSize bytes
// with the kernel's default geometry: 8192 + ceil(plainSize/4096)×4096, or
// without the 8192 when the header is in the xattr.
func LowerSize(plainSize int64, metadataInXattr bool) int64 {
	n := extentsFor(plainSize) * ExtentSize
	if !metadataInXattr {
		n += HeaderSize
	}
	return n
}

// extentsFor is the number of extents holding size bytes of plaintext.
func extentsFor(size int64) int64 {
	if size <= 0 {
		return 0
	}
	return (size-1)/ExtentSize + 1
}

// keyPackets is what walkPackets found.
type keyPackets struct {
	wrappedKey []byte // encrypted key of the first tag 3 packet
	sig        []byte // literal data of the tag 11 packet after it
	complete   bool   // the tag 3 + tag 11 pair was complete in the input
}

// walkPackets checks the key packets that start at byte 26, the way the
// kernel's ecryptfs_parse_packet_set reads them: tag 3 must be followed by
// tag 11, tag 1 stands alone, and the set must hold at least one of them.
// Bytes missing at the end of b end the walk without an error.
func walkPackets(b []byte) (keyPackets, error) {
	var kp keyPackets
	i := headerFixed
	sawKey := false
	for n := 0; n < maxPackets; n++ {
		if i >= len(b) {
			return kp, nil
		}
		switch b[i] {
		case tag3Packet:
			body, next, ok, err := packetBody(b, i)
			if err != nil || !ok {
				return kp, err
			}
			// Version 4, cipher, S2K 3, hash 1 (MD5), salt, iterations, key.
			if len(body) < saltSize+5+1 {
				return kp, fmt.Errorf("tag 3 packet at %d: body of %d bytes", i, len(body))
			}
			if body[0] != 0x04 || body[2] != 0x03 || body[3] != 0x01 {
				return kp, fmt.Errorf("tag 3 packet at %d: version %#x, S2K %#x, hash %#x", i, body[0], body[2], body[3])
			}
			key := body[saltSize+5:]
			i = next
			if i >= len(b) {
				return kp, nil
			}
			if b[i] != tag11Packet {
				return kp, fmt.Errorf("tag 3 packet not followed by tag 11 at %d (%#02x)", i, b[i])
			}
			body, next, ok, err = packetBody(b, i)
			if err != nil || !ok {
				return kp, err
			}
			// Format 'b', name length 8, "_CONSOLE", 4-byte date, data.
			if len(body) < 14 || body[0] != 0x62 || body[1] != 0x08 {
				return kp, fmt.Errorf("tag 11 packet at %d is not a literal signature packet", i)
			}
			if !sawKey {
				kp = keyPackets{wrappedKey: key, sig: body[14:], complete: true}
			}
			sawKey = true
			i = next
		case tag1Packet:
			_, next, ok, err := packetBody(b, i)
			if err != nil || !ok {
				return kp, err
			}
			sawKey = true
			i = next
		case tag11Packet:
			return kp, fmt.Errorf("tag 11 packet at %d without tag 3 before it", i)
		default:
			// The kernel ends the set at the first byte that is no packet
			// (the 0x00 terminator in every file it writes).
			if !sawKey {
				return kp, fmt.Errorf("no key packet at offset %d (%#02x)", i, b[i])
			}
			return kp, nil
		}
	}
	return kp, nil
}

// packetBody returns the body of the packet starting at b[i] and the offset
// after it; ok is false when b ends before the packet does.
func packetBody(b []byte, i int) (body []byte, next int, ok bool, err error) {
	if i+1 >= len(b) {
		return nil, 0, false, nil
	}
	size, lenLen, err := parsePacketLength(b[i+1:])
	if err != nil {
		return nil, 0, false, fmt.Errorf("packet %#02x at %d: %w", b[i], i, err)
	}
	if lenLen == 0 { // length cut off
		return nil, 0, false, nil
	}
	start := i + 1 + lenLen
	if size > len(b)-start {
		return nil, 0, false, nil
	}
	return b[start : start+size], start + size, true, nil
}

// parsePacketLength reads an RFC 2440 style length of one or two bytes, the
// only forms the kernel reads. lenLen is 0 when b is too short to tell.
func parsePacketLength(b []byte) (size, lenLen int, err error) {
	switch {
	case len(b) == 0:
		return 0, 0, nil
	case b[0] < 192:
		return int(b[0]), 1, nil
	case b[0] < 224:
		if len(b) < 2 {
			return 0, 0, nil
		}
		return (int(b[0])-192)*256 + int(b[1]) + 192, 2, nil
	default:
		return 0, 0, fmt.Errorf("unsupported packet length byte %#02x", b[0])
	}
}

// appendPacketLength is the writing side of parsePacketLength.
func appendPacketLength(dst []byte, size int) ([]byte, error) {
	switch {
	case size < 0:
		return dst, fmt.Errorf("negative packet length %d", size)
	case size < 192:
		return append(dst, byte(size)), nil
	case size < 192+32*256:
		return append(dst, byte((size-192)/256+192), byte((size-192)%256)), nil
	default:
		return dst, fmt.Errorf("packet length %d needs more than two length bytes", size)
	}
}

// headerParams are the per-file inputs of a header.
type headerParams struct {
	size       uint64
	marker     uint32 // m1; m2 is derived
	xattr      bool
	wrappedKey [keySize]byte
	sig        [sigSize]byte
}

// buildHeader writes the meaningful part of a header: the fixed fields and
// the key packets, without the zero terminator. This is the xattr value the
// kernel writes; in a file it is followed by zeros up to HeaderSize.
func buildHeader(p headerParams) []byte {
	b := make([]byte, headerFixed, 96)
	binary.BigEndian.PutUint64(b[0:8], p.size)
	binary.BigEndian.PutUint32(b[8:12], p.marker)
	binary.BigEndian.PutUint32(b[12:16], p.marker^magicMarker)
	flags := uint32(FileVersion)<<24 | FlagEncrypted | FlagEncryptedNames
	if p.xattr {
		flags |= FlagMetadataInXattr
	}
	binary.BigEndian.PutUint32(b[16:20], flags)
	binary.BigEndian.PutUint32(b[20:24], ExtentSize)
	binary.BigEndian.PutUint16(b[24:26], HeaderSize/ExtentSize)

	// Tag 3: version 4, AES-128, S2K "iterated and salted", MD5, salt,
	// 65536 iterations (0x60), the wrapped file key. Body 29 bytes.
	b = append(b, tag3Packet, byte(4+saltSize+1+keySize), 0x04, cipherAES128, 0x03, 0x01)
	b = append(b, defaultSalt...)
	b = append(b, 0x60)
	b = append(b, p.wrappedKey[:]...)
	// Tag 11: binary literal named "_CONSOLE", zero date, the mount key's
	// signature. Body 22 bytes.
	b = append(b, tag11Packet, byte(2+8+4+sigSize), 0x62, 0x08)
	b = append(b, "_CONSOLE"...)
	b = append(b, 0, 0, 0, 0)
	b = append(b, p.sig[:]...)
	return b
}
