package ecryptfs

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"strings"
)

const (
	// NamePrefix starts every lower name encrypted with the mount-wide
	// filename key (FNEK), the only kind of encrypted name Ubuntu's
	// encrypted home and ecryptfs-setup-private create.
	NamePrefix = "ECRYPTFS_FNEK_ENCRYPTED."

	// MaxNameLen is the longest cleartext name: its tag 70 packet, encoded,
	// still fits the lower file system's 255-byte names (252 with the prefix).
	MaxNameLen = 143

	// nameAlphabet is the kernel's portable_filename_chars: 64 characters,
	// one per 6 bits, in this order.
	nameAlphabet = "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

	// namePadMin is ECRYPTFS_FILENAME_MIN_RANDOM_PREPEND_BYTES: the filler
	// before the separator is at least one AES block, so it does the IV's job.
	namePadMin = 16
	// maxSymlinkTarget bounds an encoded symlink target below PATH_MAX.
	maxSymlinkTarget = 4095
)

// ErrNameTooLong is returned for a cleartext name longer than MaxNameLen
// bytes, which eCryptfs refuses (ENAMETOOLONG).
var ErrNameTooLong = errors.New("name longer than 143 bytes")

// IsEncryptedName reports whether name has the form of an FNEK-encrypted
// lower name: NamePrefix followed by a non-empty encoding in the kernel's
// filename alphabet (-.0-9A-Za-z), a multiple of 4 characters long (the
// encoding writes 4 characters for every 3 bytes, padding the last group).
// It checks the form only; no key is needed.
func IsEncryptedName(name string) bool {
	enc, ok := strings.CutPrefix(name, NamePrefix)
	if !ok || len(enc) == 0 || len(enc)%4 != 0 {
		return false
	}
	for i := 0; i < len(enc); i++ {
		if _, ok := alphabetValue(enc[i]); !ok {
			return false
		}
	}
	return true
}

// alphabetValue is the 6-bit value of an alphabet character.
func alphabetValue(c byte) (byte, bool) {
	switch {
	case c == '-':
		return 0, true
	case c == '.':
		return 1, true
	case c >= '0' && c <= '9':
		return c - '0' + 2, true
	case c >= 'A' && c <= 'Z':
		return c - 'A' + 12, true
	case c >= 'a' && c <= 'z':
		return c - 'a' + 38, true
	}
	return 0, false
}

// encodeName writes 3 bytes as 4 characters, most significant bits first;
// a short last group is padded with zero bytes (ecryptfs_encode_for_filename).
func encodeName(b []byte) string {
	var sb strings.Builder
	sb.Grow((len(b) + 2) / 3 * 4)
	for i := 0; i < len(b); i += 3 {
		var g [3]byte
		copy(g[:], b[i:])
		sb.WriteByte(nameAlphabet[g[0]>>2])
		sb.WriteByte(nameAlphabet[(g[0]&0x03)<<4|g[1]>>4])
		sb.WriteByte(nameAlphabet[(g[1]&0x0f)<<2|g[2]>>6])
		sb.WriteByte(nameAlphabet[g[2]&0x3f])
	}
	return sb.String()
}

// decodeName reverses encodeName; the result may end in up to two padding
// bytes.
func decodeName(s string) ([]byte, error) {
	if len(s)%4 != 0 {
		return nil, fmt.Errorf("encoded name of %d characters is not a multiple of 4", len(s))
	}
	out := make([]byte, 0, len(s)/4*3)
	for i := 0; i < len(s); i += 4 {
		var v [4]byte
		for j := range v {
			c, ok := alphabetValue(s[i+j])
			if !ok {
				return nil, fmt.Errorf("character %q is not in the filename alphabet", s[i+j])
			}
			v[j] = c
		}
		out = append(out, v[0]<<2|v[1]>>4, v[1]<<4|v[2]>>2, v[2]<<6|v[3])
	}
	return out, nil
}

// checkName is what eCryptfs and the lower file system accept as one
// cleartext name.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("invalid name %q", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("invalid name %q: contains '/' or NUL", name)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%q: %w", name, ErrNameTooLong)
	}
	return nil
}

// padLength is the length of the filler and its NUL separator before a
// name of n bytes: at least namePadMin+1, filling the last AES block.
func padLength(n int) int {
	padLen := namePadMin + 1
	if r := (padLen + n) % 16; r != 0 {
		padLen += 16 - r
	}
	return padLen
}

// encrypt turns a cleartext string into its lower form: a tag 70 packet
// (tag, length, FNEK signature, cipher code, then AES-CBC with a zero IV of
// the pad, a NUL and the name, filled to whole blocks), encoded and
// prefixed. The pad depends on the key only, so the result depends on the
// key and the string only.
func (k *keyring) encrypt(clear string) (string, error) {
	padLen := padLength(len(clear))
	plain := make([]byte, padLen+len(clear))
	copy(plain, k.namePad[:padLen-1])
	copy(plain[padLen:], clear)
	cipher.NewCBCEncrypter(k.fnek, make([]byte, 16)).CryptBlocks(plain, plain)

	pkt := []byte{tag70Packet}
	pkt, err := appendPacketLength(pkt, sigSize+1+len(plain))
	if err != nil {
		return "", fmt.Errorf("encrypt name of %d bytes: %w", len(clear), err)
	}
	pkt = append(pkt, k.fnekSig[:]...)
	pkt = append(pkt, cipherAES128)
	pkt = append(pkt, plain...)
	return NamePrefix + encodeName(pkt), nil
}

// decrypt is the inverse of encrypt. It checks the packet fully, since
// lower names are untrusted input.
func (k *keyring) decrypt(lower string) (string, error) {
	enc, ok := strings.CutPrefix(lower, NamePrefix)
	if !ok {
		return "", fmt.Errorf("%q has no %s prefix", lower, NamePrefix)
	}
	b, err := decodeName(enc)
	if err != nil {
		return "", err
	}
	if len(b) < 2 || b[0] != tag70Packet {
		return "", errors.New("not a tag 70 packet")
	}
	size, lenLen, err := parsePacketLength(b[1:])
	if err != nil {
		return "", err
	}
	start := 1 + lenLen
	if lenLen == 0 || size > len(b)-start {
		return "", errors.New("tag 70 packet cut off")
	}
	for _, c := range b[start+size:] {
		if c != 0 {
			return "", errors.New("bytes after the tag 70 packet")
		}
	}
	if len(b)-(start+size) > 2 {
		return "", errors.New("encoding longer than its packet")
	}
	body := b[start : start+size]
	if len(body) < sigSize+1+32 || (len(body)-sigSize-1)%16 != 0 {
		return "", fmt.Errorf("tag 70 packet body of %d bytes", len(body))
	}
	if string(body[:sigSize]) != string(k.fnekSig[:]) {
		return "", fmt.Errorf("name key signature %x: %w", body[:sigSize], ErrForeignKey)
	}
	if body[sigSize] != cipherAES128 {
		return "", fmt.Errorf("name cipher code %#02x, want AES-128", body[sigSize])
	}
	plain := make([]byte, len(body)-sigSize-1)
	cipher.NewCBCDecrypter(k.fnek, make([]byte, 16)).CryptBlocks(plain, body[sigSize+1:])
	sep := -1
	for i, c := range plain {
		if c == 0 {
			sep = i
			break
		}
	}
	if sep < namePadMin || sep == len(plain)-1 {
		return "", errors.New("no name after the filler")
	}
	// The kernel takes any filler; checking it against the one encrypt
	// writes makes every accepted name canonical, so corrupted names are
	// caught rather than decrypted to something else.
	name := plain[sep+1:]
	if want := padLength(len(name)); sep != want-1 || string(plain[:sep]) != string(k.namePad[:sep]) {
		return "", errors.New("filler before the name is not this key's")
	}
	return string(name), nil
}
