package pattern

import (
	"math/rand"
	"testing"
	"time"
	"os"
	"fmt"
)

func TestZZHunt(t *testing.T) {
	if os.Getenv("HUNT") == "" { t.Skip() }
	alpha := []string{"*", "?", "[", "]", "^", "-", "\\", "/", "**", "!", "a", "b", ".", "..", "\xff", "ä", "A", "0"}
	paths := []string{"/", "/a", "/a/b", "/home/me/x.txt", "/A/B/c.TXT", "/\xff/\n", "//x//y/", "/a/./b"}
	r := rand.New(rand.NewSource(1))
	for iter := 0; iter < 2000000; iter++ {
		n := r.Intn(40)
		s := ""
		for i := 0; i < n; i++ { s += alpha[r.Intn(len(alpha))] }
		done := make(chan struct{})
		go func() {
			for _, ci := range []bool{false, true} {
				p, err := compile(s, ci)
				if err != nil { continue }
				l, _ := NewList([]string{s}, ci)
				for _, path := range paths {
					p.Match(path, true); p.Match(path+"/zz", false); l.MatchPrefix(path)
				}
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			fmt.Printf("SLOW: %q\n", s)
			t.Fatalf("slow %q", s)
		}
	}
}
