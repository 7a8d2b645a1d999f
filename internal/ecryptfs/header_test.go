package ecryptfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// TestHeaderLayout checks a fresh file byte by byte against the kernel's
// layout, and decrypts its first extent without the package's code.
func TestHeaderLayout(t *testing.T) {
	tr := newTestTree(t, 1, Options{})
	data := randBytes(1, 10000)
	mustWrite(t, tr, "a.txt", data)
	b := lowerBytes(t, tr, "a.txt")

	if len(b) != HeaderSize+3*ExtentSize {
		t.Fatalf("lower size %d, want %d", len(b), HeaderSize+3*ExtentSize)
	}
	if got := binary.BigEndian.Uint64(b[0:8]); got != 10000 {
		t.Errorf("size field %d, want 10000", got)
	}
	m1, m2 := binary.BigEndian.Uint32(b[8:12]), binary.BigEndian.Uint32(b[12:16])
	if m1^m2 != 0x3c81b7f5 {
		t.Errorf("marker %08x %08x: XOR %08x, want 3c81b7f5", m1, m2, m1^m2)
	}
	if got := binary.BigEndian.Uint32(b[16:20]); got != 0x0300000a {
		t.Errorf("flags %#08x, want 0x0300000a (version 3, encrypted, encrypted names)", got)
	}
	if got := binary.BigEndian.Uint32(b[20:24]); got != 4096 {
		t.Errorf("extent size %d", got)
	}
	if got := binary.BigEndian.Uint16(b[24:26]); got != 2 {
		t.Errorf("header extents %d", got)
	}

	// Tag 3 packet: 0x8C, body length 29, version 4, AES-128, S2K 3, MD5,
	// salt, 65536 iterations, 16-byte wrapped key.
	tag3 := b[26:57]
	wantHead := []byte{0x8c, 29, 0x04, 0x07, 0x03, 0x01, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x60}
	if !bytes.Equal(tag3[:15], wantHead) {
		t.Errorf("tag 3 packet starts % x, want % x", tag3[:15], wantHead)
	}
	wrapped := tag3[15:31]
	// Tag 11 packet: 0xED, body length 22, 'b', 8, "_CONSOLE", zero date,
	// 8-byte signature.
	tag11 := b[57:81]
	if tag11[0] != 0xed || tag11[1] != 22 || tag11[2] != 0x62 || tag11[3] != 8 ||
		string(tag11[4:12]) != "_CONSOLE" || !bytes.Equal(tag11[12:16], []byte{0, 0, 0, 0}) {
		t.Errorf("tag 11 packet % x", tag11)
	}
	if !bytes.Equal(tag11[16:24], tr.keys.mountSig[:]) {
		t.Errorf("signature % x, want the mount key's % x", tag11[16:24], tr.keys.mountSig)
	}
	for i := 81; i < HeaderSize; i++ {
		if b[i] != 0 {
			t.Fatalf("header byte %d is %#02x, want the 0x00 terminator and a zero tail", i, b[i])
		}
	}

	// The wrapped key unwraps with the mount key to the key that decrypts
	// the extents by the documented IV rule.
	fek := make([]byte, 16)
	tr.keys.mount.Decrypt(fek, wrapped)
	for n := 0; n < 3; n++ {
		plain := independentDecrypt(t, fek, b[HeaderSize+n*ExtentSize:HeaderSize+(n+1)*ExtentSize], n)
		want := make([]byte, ExtentSize)
		copy(want, data[n*ExtentSize:])
		if !bytes.Equal(plain, want) {
			t.Fatalf("extent %d does not decrypt to the data (padded with zeros)", n)
		}
	}

	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{PlainSize: 10000, Flags: 0x0300000a, Version: 3, ExtentSize: 4096, HeaderExtents: 2, EncryptedNames: true}
	if h != want {
		t.Errorf("ParseHeader = %+v, want %+v", h, want)
	}
	if h.LowerSize() != int64(len(b)) {
		t.Errorf("LowerSize %d, file %d", h.LowerSize(), len(b))
	}
}

// TestTwoFilesDiffer: each new file has its own key and marker.
func TestTwoFilesDiffer(t *testing.T) {
	tr := newTestTree(t, 1, Options{})
	data := randBytes(2, 3*ExtentSize)
	mustWrite(t, tr, "a", data)
	mustWrite(t, tr, "b", data)
	a, b := lowerBytes(t, tr, "a"), lowerBytes(t, tr, "b")
	if bytes.Equal(a[8:16], b[8:16]) || bytes.Equal(a[41:57], b[41:57]) {
		t.Error("two new files share a marker or wrapped key")
	}
	allBlocksDiffer(t, a, b, region{HeaderSize, int64(len(a))})
}

func TestLowerSize(t *testing.T) {
	for _, size := range []int{0, 1, 15, 16, 4095, 4096, 4097, 8191, 8192, 8193, 100000} {
		want := int64(HeaderSize + (size+ExtentSize-1)/ExtentSize*ExtentSize)
		if got := LowerSize(int64(size), false); got != want {
			t.Errorf("LowerSize(%d) = %d, want %d", size, got, want)
		}
		if got := LowerSize(int64(size), true); got != want-HeaderSize {
			t.Errorf("LowerSize(%d, xattr) = %d, want %d", size, got, want-HeaderSize)
		}
		tr := newTestTree(t, 3, Options{})
		mustWrite(t, tr, "f", randBytes(uint64(size), size))
		if got := int64(len(lowerBytes(t, tr, "f"))); got != want {
			t.Errorf("file of %d bytes: lower file %d bytes, want %d", size, got, want)
		}
		mustRead(t, tr, "f", randBytes(uint64(size), size))
	}
}

// validHeader is a header as the tree writes it, for the rejection tests.
func validHeader(t testing.TB) []byte {
	t.Helper()
	k, err := newKeyring(9)
	if err != nil {
		t.Fatal(err)
	}
	var fek [16]byte
	hdr := buildHeader(headerParams{size: 123, marker: 0xdeadbeef, wrappedKey: k.wrap(fek), sig: k.mountSig})
	return append(hdr, make([]byte, HeaderSize-len(hdr))...)
}

func TestParseHeaderRejects(t *testing.T) {
	good := validHeader(t)
	if _, err := ParseHeader(good); err != nil {
		t.Fatalf("valid header: %v", err)
	}
	for _, n := range []int{26, 27, 30, 57, 58, 60, 81} {
		if _, err := ParseHeader(good[:n]); err != nil {
			t.Errorf("prefix of %d bytes: %v", n, err)
		}
	}
	mod := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	cases := map[string][]byte{
		"empty":              nil,
		"short":              good[:25],
		"zeros":              make([]byte, HeaderSize),
		"text":               []byte("#!/bin/sh\necho this is not an ecryptfs header at all\n"),
		"marker":             mod(func(b []byte) { b[12] ^= 1 }),
		"version 0":          mod(func(b []byte) { b[16] = 0 }),
		"version 4":          mod(func(b []byte) { b[16] = 4 }),
		"not encrypted":      mod(func(b []byte) { b[19] &^= FlagEncrypted }),
		"extent size":        mod(func(b []byte) { binary.BigEndian.PutUint32(b[20:24], 512) }),
		"header extents 0":   mod(func(b []byte) { binary.BigEndian.PutUint16(b[24:26], 0) }),
		"header extents 1":   mod(func(b []byte) { binary.BigEndian.PutUint16(b[24:26], 1) }),
		"header extents big": mod(func(b []byte) { binary.BigEndian.PutUint16(b[24:26], 65535) }),
		"size":               mod(func(b []byte) { binary.BigEndian.PutUint64(b[0:8], 1<<63) }),
		"no key packet":      mod(func(b []byte) { b[26] = 0 }),
		"tag 11 first":       mod(func(b []byte) { b[26] = tag11Packet }),
		"tag 3 version":      mod(func(b []byte) { b[28] = 3 }),
		"tag 3 alone":        mod(func(b []byte) { b[57] = 0 }),
		"tag 11 format":      mod(func(b []byte) { b[59] = 'x' }),
		"length byte":        mod(func(b []byte) { b[27] = 0xff }),
	}
	for name, b := range cases {
		if _, err := ParseHeader(b); !errors.Is(err, ErrNotHeader) {
			t.Errorf("%s: err = %v, want ErrNotHeader", name, err)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	good := validHeader(f)
	f.Add(good)
	f.Add(good[:81])
	f.Add(good[:40])
	f.Add([]byte("not a header"))
	long := bytes.Clone(good)
	long[27] = 0xc5 // a two-byte length running past the end
	f.Add(long[:60])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		if h.LowerSize() < 0 || h.Size() < HeaderSize && !h.MetadataInXattr {
			t.Fatalf("accepted header with sizes %d/%d", h.Size(), h.LowerSize())
		}
	})
}

// TestParseHeaderOfTree: what the generator writes is what detection reads,
// in both layouts; a plain file is rejected.
func TestParseHeaderOfTree(t *testing.T) {
	tr := newTestTree(t, 4, Options{})
	mustWrite(t, tr, "empty", nil)
	b := lowerBytes(t, tr, "empty")
	if len(b) != HeaderSize {
		t.Fatalf("empty file: lower %d bytes, want %d", len(b), HeaderSize)
	}
	h, err := ParseHeader(b)
	if err != nil || h.PlainSize != 0 {
		t.Fatalf("empty file: %+v, %v", h, err)
	}
	plain := []byte("plain text file, not encrypted by anything")
	if _, err := ParseHeader(plain); err == nil {
		t.Error("plain file accepted")
	}
}
