package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"snap/snapshot"
)

func dumpCmd(g *globals) *cobra.Command {
	var f snapshot.Filter
	var archive, output string
	c := &cobra.Command{
		Use:   "dump SNAPSHOT PATH",
		Short: "Write a file from a snapshot, or a directory as a tar or zip archive",
		Long: `Write the file PATH of a snapshot to stdout (or -o FILE) as it is, or the
directory PATH as a tar archive (or zip with --archive zip) whose entries start
with the directory's name. PATH is a path as 'snap ls' prints it; "/" dumps
the whole snapshot. Given --archive explicitly, a file is archived too.

Every blob is verified before it is written. With -o, FILE appears only once
the dump is complete (it is written under a temporary name first) and is
readable only by you, since it holds backed-up data.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			format := snapshot.DumpAuto
			if cmd.Flags().Changed("archive") {
				format = archive
			}
			if format != snapshot.DumpAuto && format != snapshot.DumpTar && format != snapshot.DumpZip {
				return fmt.Errorf("--archive %q: want tar or zip", archive)
			}
			ctx := cmd.Context()
			r, release, err := g.openRead(ctx, "dump")
			if err != nil {
				return err
			}
			defer release()
			sn, err := snapshot.Find(ctx, r, args[0], f)
			if err != nil {
				return err
			}
			p := path.Clean("/" + args[1])
			n, err := snapshot.FindNode(ctx, r, sn.Tree, p)
			if err != nil {
				return fmt.Errorf("snapshot %s: %w; list a directory with 'snap ls %s DIR'", sn.ID.Short(), err, sn.ID.Short())
			}
			if output == "" && (n.Type != snapshot.TypeFile || format != snapshot.DumpAuto) && isTerminal(g.stdout) {
				return errors.New("dump: refusing to write an archive to a terminal; redirect stdout or use -o FILE")
			}
			dump := func(w io.Writer) error {
				bw := bufio.NewWriterSize(w, 256<<10)
				if err := snapshot.Dump(ctx, r, sn.Tree, p, format, bw); err != nil {
					return fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
				}
				if err := bw.Flush(); err != nil {
					return fmt.Errorf("dump %s: write: %w", displayPath(p), err)
				}
				return nil
			}
			if output == "" {
				return dump(g.stdout)
			}
			return writeAtomically(output, dump)
		},
	}
	c.Flags().StringVarP(&archive, "archive", "a", snapshot.DumpTar, "archive format for a directory: tar or zip")
	c.Flags().StringVarP(&output, "output", "o", "", "write to FILE instead of stdout")
	addFilterFlags(c, &f)
	return c
}

// writeAtomically calls write with a temporary file next to name and renames
// it to name once write succeeded, so that a failed dump neither leaves a
// truncated file nor destroys an older one.
func writeAtomically(name string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("dump -o %s: %w", name, err)
	}
	err = write(tmp)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("dump -o %s: %w", name, cerr)
	}
	if err == nil {
		if err = os.Rename(tmp.Name(), name); err != nil {
			err = fmt.Errorf("dump -o %s: %w", name, err)
		}
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// isTerminal reports whether w is a terminal, where an archive would only
// garble the screen. It asks for terminal attributes rather than checking
// for a character device, which /dev/null is too.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
