package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"snap/internal/names"
	"snap/repo"
	"snap/snapshot"
)

// Values of --names.
const (
	namesCipher = "cipher"
	namesClear  = "clear"
	namesBoth   = "both"
)

// namesPath is where the local name map of a repository lives: in the
// repository's cache directory, never in the repository, so cleartext names
// stay on this machine.
func namesPath(repoID string) (string, error) {
	dir, err := cacheDir(repoID)
	if err != nil {
		return "", fmt.Errorf("find the cache directory for the name map: %w", err)
	}
	return filepath.Join(dir, names.FileName), nil
}

// useNames prepares g.shown for paths of the given snapshots: when one of
// them is an eCryptfs lower tree, encrypted names are shown through the
// local name map as --names asks, and a missing map is said once.
func (g *globals) useNames(r *repo.Repository, snaps ...*snapshot.Snapshot) error {
	switch g.namesMode {
	case namesCipher, namesClear, namesBoth:
	default:
		return fmt.Errorf("--names %q: want cipher, clear or both", g.namesMode)
	}
	cipher := false
	for _, s := range snaps {
		cipher = cipher || s.SourceKind == snapshot.SourceECryptfsLower
	}
	if !cipher || g.namesMode == namesCipher {
		return nil
	}
	p, err := namesPath(r.Config().ID)
	if err != nil {
		return err
	}
	m, err := names.Load(p)
	if err != nil {
		return err
	}
	if m.Len() == 0 {
		if !g.quiet && !g.json {
			fmt.Fprintln(g.stderr, "snap: note: names are encrypted (eCryptfs) and this machine has no name map for the repository; record one with 'snap create --names-from CLEARTEXT-DIR'")
		}
		return nil
	}
	g.nameMap = m
	return nil
}

// shown returns a snapshot path as it should be printed: through the name
// map (if one is in use), then quoted if it would not print safely.
func (g *globals) shown(p string) string {
	if g.nameMap == nil {
		return displayPath(p)
	}
	clear, _ := g.nameMap.Translate(p)
	if clear == p || g.namesMode == namesCipher {
		return displayPath(p)
	}
	if g.namesMode == namesClear {
		return displayPath(clear)
	}
	return displayPath(clear) + "  [" + displayPath(p) + "]"
}

// learnNames records, in the local name map, the cleartext names of the
// lower tree just backed up in sn, by joining its nodes with the cleartext
// view clearDir on inode numbers (eCryptfs gives a cleartext file the inode
// number of its lower file).
func (g *globals) learnNames(ctx context.Context, r *repo.Repository, sn *snapshot.Snapshot, clearDir string) (int, error) {
	inodes, err := names.ClearInodes(clearDir)
	if err != nil {
		return 0, err
	}
	p, err := namesPath(r.Config().ID)
	if err != nil {
		return 0, err
	}
	m, err := names.Load(p)
	if err != nil {
		return 0, err
	}
	joined := 0
	err = snapshot.Walk(ctx, r, sn.Tree, "", func(path string, n *snapshot.Node) error {
		clear, ok := inodes[n.Inode]
		if !ok || n.Inode == 0 {
			return nil
		}
		// Drop the root node (the backed-up directory itself).
		_, lower, found := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		if found {
			m.Learn(lower, clear)
			joined++
		}
		return nil
	})
	if err != nil {
		return joined, err
	}
	return joined, m.Save()
}

// clearNameHits returns the encrypted names whose cleartext names match
// pattern, so find can search by cleartext name.
func (g *globals) clearNameHits(pattern string, match func(pattern, name string) bool) []string {
	if g.nameMap == nil || strings.Contains(pattern, "/") {
		return nil
	}
	return g.nameMap.Find(func(clear string) bool { return match(pattern, clear) })
}
