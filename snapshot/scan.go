package snapshot

import (
	"context"
	"path/filepath"

	"golang.org/x/sys/unix"

	"snap/internal/fsdir"
)

// Scan counts the regular files and bytes under paths that Create would
// visit, calling found as it goes, so progress can show totals. It honours
// Exclude and ExcludeLargerThan of opts; errors are left for Create to report.
func Scan(ctx context.Context, opts CreateOptions, found func(files, bytes int64)) {
	for _, p := range opts.Paths {
		d, err := fsdir.Open(filepath.Dir(p))
		if err != nil {
			continue
		}
		name := filepath.Base(p)
		if p == "/" {
			name = "."
		}
		scanEntry(ctx, d, name, p, opts, found)
		d.Close()
	}
}

func scanEntry(ctx context.Context, d *fsdir.Dir, name, path string, opts CreateOptions, found func(files, bytes int64)) {
	if ctx.Err() != nil {
		return
	}
	st, err := d.Lstat(name)
	if err != nil {
		return
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if opts.ExcludeLargerThan == 0 || st.Size <= opts.ExcludeLargerThan {
			found(1, st.Size)
		}
	case unix.S_IFDIR:
		sub, err := d.OpenDir(name)
		if err != nil {
			return
		}
		defer sub.Close()
		names, _ := sub.Names()
		for _, n := range names {
			p := path + "/" + n
			if opts.Exclude != nil {
				cst, err := sub.Lstat(n)
				if err != nil || opts.Exclude(p, cst.Mode&unix.S_IFMT == unix.S_IFDIR) {
					continue
				}
			}
			scanEntry(ctx, sub, n, p, opts, found)
		}
	}
}
