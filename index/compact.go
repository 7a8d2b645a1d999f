package index

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// compactWorthFrom is the share of index.db that must be reclaimable before
// Compact rewrites the file. bbolt never shrinks a file: pages freed by a
// prune stay in it, and leaves filled by random inserts are two-thirds full.
const compactWorthFrom = 0.25

// compactTxBytes bounds the keys and values copied per transaction while
// compacting, so that the copy of a large index does not hold all its dirty
// pages in memory at once.
const compactTxBytes = 32 << 20

// CompactResult reports what Compact did.
type CompactResult struct {
	Before, After int64 // file sizes in bytes
	Compacted     bool  // false: too little to gain, the file was left as it was
}

// Compact rewrites index.db into a new file with full pages and no free
// ones, when that would shrink it by at least a quarter, and renames it over
// the old file. The rename is atomic: a crash leaves the old or the new
// file, both complete, and at worst a stray index.db.compact, which the next
// Compact replaces. Processes that open the index after the rename use the
// new file (openDB checks that the file it locked is still the one at the
// path); one that already has the old file open finishes its transaction on
// the old, identical contents. Meant for prune, which frees many pages and
// runs under the repository's exclusive lock.
func (ix *Index) Compact() (CompactResult, error) {
	var res CompactResult
	err := ix.update(func(tx *bolt.Tx) error {
		fi, err := os.Stat(ix.path)
		if err != nil {
			return err
		}
		res.Before, res.After = fi.Size(), fi.Size()
		var used int64
		err = tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			s := b.Stats()
			used += int64(s.BranchInuse + s.LeafInuse + s.InlineBucketInuse)
			return nil
		})
		if err != nil {
			return err
		}
		// Two meta pages, the freelist and the root page come on top.
		pageSize := int64(tx.DB().Info().PageSize)
		if float64(used+4*pageSize) > (1-compactWorthFrom)*float64(res.Before) {
			return nil
		}
		after, err := ix.copyTo(tx)
		if err != nil {
			return fmt.Errorf("compact index %s: %w", ix.path, err)
		}
		res.After, res.Compacted = after, true
		return nil
	})
	return res, err
}

// copyTo writes the contents seen by tx into a fresh file beside the index
// and renames it over the index. It runs while tx's handle holds the
// exclusive lock, so no commit can slip in between copy and rename.
func (ix *Index) copyTo(tx *bolt.Tx) (int64, error) {
	tmp := ix.path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	dst, err := bolt.Open(tmp, fileMode, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return 0, err
	}
	dst.AllocSize = 1 << 20
	err = copyBuckets(dst, tx)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, ix.path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	if d, err := os.Open(filepath.Dir(ix.path)); err == nil {
		err = d.Sync() // make the rename durable
		d.Close()
		if err != nil {
			return 0, err
		}
	}
	fi, err := os.Stat(ix.path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// copyBuckets copies every top-level bucket of src, in key order and into
// full pages, committing every compactTxBytes. The index has no nested
// buckets.
func copyBuckets(dst *bolt.DB, src *bolt.Tx) error {
	out, err := dst.Begin(true)
	if err != nil {
		return err
	}
	defer func() {
		if out != nil {
			out.Rollback() // after a commit: harmlessly ErrTxClosed
		}
	}()
	var pending int64
	err = src.ForEach(func(name []byte, b *bolt.Bucket) error {
		if _, err := out.CreateBucket(name); err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return fmt.Errorf("bucket %s: unexpected nested bucket %x: %w", name, k, ErrCorrupt)
			}
			if pending >= compactTxBytes {
				if err := out.Commit(); err != nil {
					return err
				}
				if out, err = dst.Begin(true); err != nil {
					return err
				}
				pending = 0
			}
			ob := out.Bucket(name)
			ob.FillPercent = 1.0 // keys come in order: fill every page
			pending += int64(len(k) + len(v))
			return ob.Put(k, v)
		})
	})
	if err != nil {
		return err
	}
	return out.Commit()
}
