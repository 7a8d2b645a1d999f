// Package snapshot is snap's data model and what is done with trees: the
// Snapshot document, Node and the canonical tree encoding, Create (the
// archiver), Restore, and finding snapshots by ID prefix or "latest".
//
// Start with Create and Restore; List and Find resolve the names users type.
package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"snap/chunk"
	"snap/repo"
	"snap/repo/pack"
)

// Source kinds recorded in snapshots.
const (
	SourcePlain         = "plain"
	SourceECryptfsLower = "ecryptfs-lower"
)

// Summary counts what a create did.
type Summary struct {
	FilesNew       int64   `json:"files_new"`
	FilesChanged   int64   `json:"files_changed"`
	FilesUnchanged int64   `json:"files_unchanged"`
	Dirs           int64   `json:"dirs"`
	BytesRead      int64   `json:"bytes_read"`
	BytesAdded     int64   `json:"bytes_added"`
	BytesStored    int64   `json:"bytes_stored"`
	BlobsAdded     int64   `json:"blobs_added"`
	TotalSize      int64   `json:"total_size"`
	Errors         int64   `json:"errors"`
	Duration       float64 `json:"duration_s"`
}

// Snapshot is the document stored in snapshots/<id>.
type Snapshot struct {
	Time           time.Time `json:"time"`
	Tree           chunk.ID  `json:"tree"`
	Paths          []string  `json:"paths"`
	Hostname       string    `json:"hostname"`
	Username       string    `json:"username,omitempty"`
	UID            uint32    `json:"uid"`
	GID            uint32    `json:"gid"`
	Tags           []string  `json:"tags,omitempty"`
	Parent         *chunk.ID `json:"parent,omitempty"`
	SourceKind     string    `json:"source_kind"`
	ProgramVersion string    `json:"program_version"`
	Summary        *Summary  `json:"summary,omitempty"`
	// Original and Lost are set by 'repair snapshots': the snapshot this one
	// replaces, and the paths whose data could not be kept.
	Original *chunk.ID `json:"original,omitempty"`
	Lost     []string  `json:"lost,omitempty"`
	// IndexGeneration is the index generation (index.Generation) under
	// which create wrote the snapshot: every blob it names was indexed then.
	IndexGeneration string `json:"index_generation,omitempty"`

	// ID is the snapshot's name in the repository; not part of the document.
	ID chunk.ID `json:"-"`
}

// ErrBadSnapshot is wrapped by errors for documents that cannot be used.
var ErrBadSnapshot = errors.New("invalid snapshot document")

// Decode parses a snapshot document.
func Decode(data []byte) (*Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	if s.Tree.IsNull() {
		return nil, fmt.Errorf("%w: no tree", ErrBadSnapshot)
	}
	if s.Time.IsZero() {
		return nil, fmt.Errorf("%w: no time", ErrBadSnapshot)
	}
	return &s, nil
}

// Save writes the document and sets s.ID.
func Save(ctx context.Context, r *repo.Repository, s *Snapshot) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	id, err := r.SaveSnapshotFile(ctx, append(data, '\n'))
	if err != nil {
		return err
	}
	s.ID = id
	return nil
}

// Load reads one snapshot.
func Load(ctx context.Context, r *repo.Repository, id chunk.ID) (*Snapshot, error) {
	data, err := r.LoadSnapshotFile(ctx, id)
	if err != nil {
		return nil, err
	}
	s, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id.Short(), err)
	}
	s.ID = id
	return s, nil
}

// List loads every snapshot, oldest first.
func List(ctx context.Context, r *repo.Repository) ([]*Snapshot, error) {
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	// Loaded by several goroutines: a backup reads every snapshot to find
	// its parent, some 40 µs each on a local disk (hundreds are kept by an
	// hourly job) and a round trip each on sftp or S3.
	out := make([]*Snapshot, len(ids))
	err = inParallel(ctx, len(ids), listLoaders, func(ctx context.Context, i int) (err error) {
		out[i], err = Load(ctx, r, ids[i])
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return bytes.Compare(out[i].ID[:], out[j].ID[:]) < 0
	})
	return out, nil
}

// listLoaders is the number of snapshots List loads at once.
const listLoaders = 8

// Filter selects snapshots by host, tag and path; empty fields match all.
type Filter struct {
	Hosts []string
	Tags  []string
	Paths []string
}

// Match reports whether s passes the filter.
func (f Filter) Match(s *Snapshot) bool {
	return anyOf(f.Hosts, func(h string) bool { return s.Hostname == h }) &&
		anyOf(f.Tags, func(t string) bool { return contains(s.Tags, t) }) &&
		anyOf(f.Paths, func(p string) bool { return contains(s.Paths, p) })
}

func anyOf(want []string, ok func(string) bool) bool {
	if len(want) == 0 {
		return true
	}
	for _, w := range want {
		if ok(w) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ErrNotFound is wrapped by Find's errors when no snapshot matches.
var ErrNotFound = errors.New("no matching snapshot")

// Find resolves a snapshot name: a unique ID prefix, "latest", or
// "latest~N" (the Nth snapshot before the latest among those passing f).
func Find(ctx context.Context, r *repo.Repository, name string, f Filter) (*Snapshot, error) {
	all, err := List(ctx, r)
	if err != nil {
		return nil, err
	}
	if name == "latest" || strings.HasPrefix(name, "latest~") {
		back := 0
		if rest, ok := strings.CutPrefix(name, "latest~"); ok {
			if _, err := fmt.Sscanf(rest, "%d", &back); err != nil || back < 0 || fmt.Sprint(back) != rest {
				return nil, fmt.Errorf("snapshot %q: want latest~N with N a number", name)
			}
		}
		var match []*Snapshot
		for _, s := range all {
			if f.Match(s) {
				match = append(match, s)
			}
		}
		if len(match) > 0 && back > 0 {
			// Step back within the latest snapshot's group (same host and paths).
			last := match[len(match)-1]
			group := match[:0:0]
			for _, s := range match {
				if s.Hostname == last.Hostname && slices.Equal(s.Paths, last.Paths) {
					group = append(group, s)
				}
			}
			match = group
		}
		if back >= len(match) {
			return nil, fmt.Errorf("snapshot %q: %w (%d snapshots match)", name, ErrNotFound, len(match))
		}
		return match[len(match)-1-back], nil
	}
	name = strings.ToLower(name)
	var found *Snapshot
	for _, s := range all {
		if strings.HasPrefix(s.ID.String(), name) {
			if found != nil {
				return nil, fmt.Errorf("snapshot %q: prefix matches more than one snapshot (%s, %s); give more digits", name, found.ID.Short(), s.ID.Short())
			}
			found = s
		}
	}
	if found == nil || name == "" {
		return nil, fmt.Errorf("snapshot %q: %w; list them with 'snap snapshots'", name, ErrNotFound)
	}
	return found, nil
}

// LoadTree loads and decodes a directory: its tree blob, its pages when it is
// paged, and the content lists of its files.
func LoadTree(ctx context.Context, r *repo.Repository, id chunk.ID) ([]Node, error) {
	nodes, _, err := loadTree(ctx, r, id)
	return nodes, err
}

// loadTree is LoadTree that also returns the IDs of the blobs below the
// tree's top blob (the pages and index blobs of a paged tree), which
// whoever keeps or copies the tree must keep or copy too.
func loadTree(ctx context.Context, r *repo.Repository, id chunk.ID) ([]Node, []chunk.ID, error) {
	data, err := r.LoadBlob(ctx, pack.TreeBlob, id)
	if err != nil {
		return nil, nil, err
	}
	return decodeTreeBlob(ctx, r, id, data)
}

// DecodeTreeBlob decodes the bytes of the top blob of tree id as LoadTree
// does, for a reader that loads tree blobs itself.
func DecodeTreeBlob(ctx context.Context, r *repo.Repository, id chunk.ID, data []byte) ([]Node, error) {
	nodes, _, err := decodeTreeBlob(ctx, r, id, data)
	return nodes, err
}

func decodeTreeBlob(ctx context.Context, r *repo.Repository, id chunk.ID, data []byte) ([]Node, []chunk.ID, error) {
	var nodes []Node
	var below []chunk.ID
	var err error
	if len(data) > 0 && data[0] == treeIndexVersion {
		nodes, below, err = expandTreePages(ctx, r, data, nil)
	} else {
		nodes, err = DecodeTree(data)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	if err := ExpandContentLists(ctx, r, nodes); err != nil {
		return nil, nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	return nodes, below, nil
}
