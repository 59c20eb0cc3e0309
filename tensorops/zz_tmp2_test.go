package tensorops

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func spin(d time.Duration) {
	t0 := time.Now()
	for time.Since(t0) < d {
	}
}

func TestZZSplit(t *testing.T) {
	e := NewEngine(2)
	var s1, s2 []time.Duration
	for rep := 0; rep < 10; rep++ {
		start := time.Now()
		e.parallelFor(16, func(i int) { spin(time.Millisecond) })
		s1 = append(s1, time.Since(start).Round(100*time.Microsecond))
		start = time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		body := func() {
			for next.Add(1) <= 16 {
				spin(time.Millisecond)
			}
			wg.Done()
		}
		wg.Add(2)
		go body()
		body()
		wg.Wait()
		s2 = append(s2, time.Since(start).Round(100*time.Microsecond))
		// no sleep
	}
	t.Logf("pool %v", s1)
	t.Logf("go   %v", s2)
}
