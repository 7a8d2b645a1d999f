// Package ecryptfs recognises eCryptfs lower (ciphertext) trees and generates
// them for snap's tests and benchmarks.
//
// eCryptfs cannot be mounted on the machines snap is developed on, so snap's
// ciphertext mode is tested on trees written by this package. They follow
// the kernel's on-disk layout (fs/ecryptfs; the facts are collected in the
// shared background note ECRYPTFS.md):
//
//   - a lower file is an 8192-byte header followed by 4096-byte extents, each
//     encrypted on its own with AES-128-CBC and an IV derived from the file
//     key and the extent number; with the mount option
//     ecryptfs_xattr_metadata the header lives in the user.ecryptfs xattr and
//     the file holds the extents only;
//   - lower names are FNEK-encrypted tag 70 packets in the kernel's filename
//     alphabet behind the prefix "ECRYPTFS_FNEK_ENCRYPTED.", the same for a
//     cleartext name in every directory; symlink targets are encrypted the
//     same way, the whole target string as one name;
//   - files change the way they change under a mount: in-place writes
//     re-encrypt only the extents they touch, a new file (also one saved by
//     writing a temporary file and renaming it over) gets a fresh key.
//
// Entry points. Detection, for snap create: IsEncryptedName, ParseHeader,
// Header.LowerSize, LowerSize. Generation: FromClearTree converts a
// cleartext tree; NewTree opens (or starts) a lower tree, whose methods
// create and edit files by cleartext path; Tree.Map gives the lower to
// cleartext path map that a real mount gives through inode numbers (the
// upper inode number is the lower one, which two ordinary trees cannot
// reproduce). Tree.Mutate applies a day of typical edits (bench/ecryptfs-gen).
//
// Determinism. Every key comes from the seed: the mount key that wraps the
// file keys, its signature, and the filename key (FNEK) are hashes of the
// seed; file keys and header markers are drawn from a ChaCha8 stream seeded
// from the seed and, when the lower directory already holds a tree, a digest
// of that tree. Each file's key is stored in its header wrapped with the
// mount key, exactly as eCryptfs stores it, and names decrypt with the FNEK,
// so a Tree keeps no per-file state in memory: a Tree opened later on the
// same directory with the same seed reads and edits files created by another
// one, and the same seed, starting tree and calls give the same bytes.
//
// Do not use this package to protect data: its keys follow from a seed that
// is passed on command lines. It writes test data with a real layout, no more.
package ecryptfs
