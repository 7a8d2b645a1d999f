package ecryptfs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// ErrForeignKey means a header or a name was written with other keys than
// the tree's: the lower tree was generated with another seed.
var ErrForeignKey = errors.New("written with another key (was the tree generated with another seed?)")

// keyring holds a tree's mount-wide keys, all derived from the seed.
type keyring struct {
	// mount wraps each file key in the tag 3 packet, as the passphrase's
	// session key encryption key does (AES-128 of the one key block).
	mount    cipher.Block
	mountSig [sigSize]byte
	// fnek encrypts names (tag 70 packets).
	fnek    cipher.Block
	fnekSig [sigSize]byte
	// namePad is the filler the kernel puts before a name's NUL separator:
	// MD5 of the FNEK, then MD5 of that, with zero bytes replaced by 0x42.
	// It depends on the key only, which is what makes a name's lower form
	// the same in every directory.
	namePad [2 * md5.Size]byte
}

// derive is the seed's hash for one purpose.
func derive(seed uint64, label string) [sha256.Size]byte {
	b := make([]byte, 0, 64)
	b = append(b, "snap/internal/ecryptfs\x00"...)
	b = append(b, label...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint64(b, seed)
	return sha256.Sum256(b)
}

func newKeyring(seed uint64) (*keyring, error) {
	k := &keyring{}
	mk := derive(seed, "mount key")
	fk := derive(seed, "fnek")
	ms := derive(seed, "mount key signature")
	fs := derive(seed, "fnek signature")
	var err error
	if k.mount, err = aes.NewCipher(mk[:keySize]); err != nil {
		return nil, fmt.Errorf("mount key: %w", err)
	}
	if k.fnek, err = aes.NewCipher(fk[:keySize]); err != nil {
		return nil, fmt.Errorf("filename key: %w", err)
	}
	copy(k.mountSig[:], ms[:])
	copy(k.fnekSig[:], fs[:])
	h := md5.Sum(fk[:keySize])
	copy(k.namePad[:md5.Size], h[:])
	h = md5.Sum(h[:])
	copy(k.namePad[md5.Size:], h[:])
	for i, c := range k.namePad {
		if c == 0 {
			k.namePad[i] = 0x42 // ECRYPTFS_NON_NULL: the pad must not contain the separator
		}
	}
	return k, nil
}

// wrap encrypts a file key for the tag 3 packet.
func (k *keyring) wrap(fek [keySize]byte) [keySize]byte {
	var out [keySize]byte
	k.mount.Encrypt(out[:], fek[:])
	return out
}

// unwrapHeader recovers the file key from a header's key packets, the way
// the kernel does on open. It fails with ErrForeignKey when the tag 11
// signature is not the tree's mount key's.
func (k *keyring) unwrapHeader(hdr []byte) (*fileKey, error) {
	kp, err := walkPackets(hdr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotHeader, err)
	}
	if !kp.complete {
		return nil, fmt.Errorf("%w: no complete tag 3 and tag 11 packets", ErrNotHeader)
	}
	if string(kp.sig) != string(k.mountSig[:]) {
		return nil, fmt.Errorf("file key: mount key signature %x: %w", kp.sig, ErrForeignKey)
	}
	if len(kp.wrappedKey) != keySize {
		return nil, fmt.Errorf("file key of %d bytes, want %d (AES-128)", len(kp.wrappedKey), keySize)
	}
	var fek [keySize]byte
	k.mount.Decrypt(fek[:], kp.wrappedKey)
	return newFileKey(fek)
}

// fileKey encrypts and decrypts the extents of one file.
type fileKey struct {
	block  cipher.Block
	rootIV [md5.Size]byte // MD5 of the file key (ecryptfs_compute_root_iv)
}

func newFileKey(fek [keySize]byte) (*fileKey, error) {
	b, err := aes.NewCipher(fek[:])
	if err != nil {
		return nil, fmt.Errorf("file key: %w", err)
	}
	return &fileKey{block: b, rootIV: md5.Sum(fek[:])}, nil
}

// iv is the IV of extent n: MD5 of the root IV followed by n in decimal
// ASCII, NUL-padded to 16 bytes (ecryptfs_derive_iv). Extent numbers stay
// far below the 15 digits that fit.
func (k *fileKey) iv(n int64) [md5.Size]byte {
	var src [2 * md5.Size]byte
	copy(src[:], k.rootIV[:])
	copy(src[md5.Size:md5.Size+15], strconv.FormatInt(n, 10))
	return md5.Sum(src[:])
}

// encryptExtent encrypts one extent of plaintext (ExtentSize bytes) as
// extent n; CBC without padding, as the extent is a whole number of blocks.
func (k *fileKey) encryptExtent(dst, src []byte, n int64) {
	iv := k.iv(n)
	cipher.NewCBCEncrypter(k.block, iv[:]).CryptBlocks(dst[:ExtentSize], src[:ExtentSize])
}

func (k *fileKey) decryptExtent(dst, src []byte, n int64) {
	iv := k.iv(n)
	cipher.NewCBCDecrypter(k.block, iv[:]).CryptBlocks(dst[:ExtentSize], src[:ExtentSize])
}
