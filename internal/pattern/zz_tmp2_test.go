package pattern

import (
	"fmt"
	"math/rand"
	"os"
	"path"
	"strings"
	"testing"
	"time"
)

func TestZZHunt2(t *testing.T) {
	if os.Getenv("HUNT") == "" { t.Skip() }
	alpha := []string{"*", "?", "[", "]", "^", "-", "\\", "**", "a", "b", "\xff", "ä", "A", "0", "[a-z]", "[^b]"}
	r := rand.New(rand.NewSource(2))
	for iter := 0; iter < 3000; iter++ {
		n := r.Intn(3000)
		var sb strings.Builder
		for i := 0; i < n; i++ { sb.WriteString(alpha[r.Intn(len(alpha))]) }
		s := sb.String()
		t0 := time.Now()
		p, err := Parse("/d/" + s)
		if err == nil {
			for _, name := range []string{"a", "ab", s, strings.Repeat("a", len(s))} {
				path.Match(s, name)
				p.Match("/d/"+name, false)
			}
		}
		if d := time.Since(t0); d > 200*time.Millisecond {
			fmt.Printf("SLOW %v len %d err %v\n", d, len(s), err)
			var p2 time.Duration
			t1 := time.Now(); path.Match(s, s); p2 = time.Since(t1)
			t1 = time.Now(); p.Match("/d/"+s, false)
			fmt.Printf(" path.Match %v mine %v\n", p2, time.Since(t1))
			return
		}
	}
}
