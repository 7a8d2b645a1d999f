// Package progress shows how far a long command is: a live bar on a
// terminal, JSON status lines with --json, nothing under cron.
//
// A command fills a Counter from its worker goroutines and calls Start; the
// Reporter samples the counter on a ticker, so the hot path only does
// atomic adds.
package progress

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Counter is what a command has done and, as far as known, has to do.
type Counter struct {
	FilesDone, BytesDone   atomic.Int64
	FilesTotal, BytesTotal atomic.Int64
	TotalKnown             atomic.Bool // the scan for totals has finished
	current                atomic.Value
}

// Done records one finished file.
func (c *Counter) Done(path string, size int64) {
	c.FilesDone.Add(1)
	c.BytesDone.Add(size)
	c.current.Store(path)
}

// Current returns the last file reported done.
func (c *Counter) Current() string {
	s, _ := c.current.Load().(string)
	return s
}

// Mode says how progress is shown.
type Mode int

// Modes.
const (
	None     Mode = iota // cron, -q, or output not a terminal
	Terminal             // a live bar on stderr
	JSON                 // status lines on stdout every second
)

// ChooseMode picks the mode for a command's flags and its stderr.
func ChooseMode(jsonOut, quiet bool, stderr io.Writer) Mode {
	switch {
	case quiet:
		return None
	case jsonOut:
		return JSON
	}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return Terminal
	}
	return None
}

// Reporter renders a Counter until Stop.
type Reporter struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

// Start begins reporting c. verb names the work ("backing up").
func Start(ctx context.Context, mode Mode, stdout, stderr io.Writer, c *Counter, verb string) *Reporter {
	r := &Reporter{stop: make(chan struct{})}
	if mode == None {
		return r
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		switch mode {
		case Terminal:
			r.bar(ctx, stderr, c, verb)
		case JSON:
			r.status(ctx, stdout, c)
		}
	}()
	return r
}

// Stop ends reporting and clears the bar.
func (r *Reporter) Stop() {
	close(r.stop)
	r.wg.Wait()
}

func (r *Reporter) bar(ctx context.Context, w io.Writer, c *Counter, verb string) {
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			bar.Finish()
			fmt.Fprint(w, "\r\033[K")
			return
		case <-ctx.Done():
			bar.Exit()
			return
		case <-t.C:
		}
		if c.TotalKnown.Load() && bar.GetMax64() != c.BytesTotal.Load() {
			bar.ChangeMax64(max(c.BytesTotal.Load(), 1))
		}
		total := "?"
		if c.TotalKnown.Load() {
			total = fmt.Sprint(c.FilesTotal.Load())
		}
		bar.Describe(fmt.Sprintf("%s %d/%s files %s", verb, c.FilesDone.Load(), total, shorten(c.Current(), 40)))
		bar.Set64(c.BytesDone.Load())
	}
}

// shorten keeps the end of a path, which names the file.
func shorten(p string, n int) string {
	if len(p) <= n {
		return p
	}
	return "…" + filepath.Base(p)[max(0, len(filepath.Base(p))-n):]
}

// Status is one JSON status line.
type Status struct {
	MessageType  string   `json:"message_type"`
	PercentDone  float64  `json:"percent_done"`
	FilesDone    int64    `json:"files_done"`
	BytesDone    int64    `json:"bytes_done"`
	TotalFiles   int64    `json:"total_files,omitempty"`
	TotalBytes   int64    `json:"total_bytes,omitempty"`
	ElapsedS     float64  `json:"seconds_elapsed"`
	CurrentFiles []string `json:"current_files,omitempty"`
}

func (r *Reporter) status(ctx context.Context, w io.Writer, c *Counter) {
	start := time.Now()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := Status{MessageType: "status", FilesDone: c.FilesDone.Load(), BytesDone: c.BytesDone.Load(),
			ElapsedS: time.Since(start).Seconds()}
		if c.TotalKnown.Load() {
			s.TotalFiles, s.TotalBytes = c.FilesTotal.Load(), c.BytesTotal.Load()
			if s.TotalBytes > 0 {
				s.PercentDone = min(1, float64(s.BytesDone)/float64(s.TotalBytes))
			}
		}
		if cur := c.Current(); cur != "" {
			s.CurrentFiles = []string{cur}
		}
		enc.Encode(s)
	}
}
