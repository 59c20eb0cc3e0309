package tensorops

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// workerPool is a set of goroutines parked on a channel, started once per Engine, so a product
// costs a channel hand-off per helper instead of a goroutine start.
//
// Work is split into chunks claimed through an atomic counter; the caller claims chunks too and
// waits only for chunks a helper has actually started. A helper that picks up an invitation
// late (busy with another caller's product, or not yet rescheduled) finds no chunk left and
// returns, so the caller never waits on an idle or busy helper, concurrent callers cannot
// deadlock, and a core slowed by other load simply takes fewer chunks.
type workerPool struct {
	work chan func()
}

func newWorkerPool(helpers int) *workerPool {
	p := &workerPool{work: make(chan func(), 4*helpers)}
	for i := 0; i < helpers; i++ {
		go func(work <-chan func()) {
			for f := range work {
				f()
			}
		}(p.work)
	}
	return p
}

func (p *workerPool) close() { close(p.work) }

// parallelFor runs fn(0..n-1) on up to e.threads goroutines, the caller included.
func (e *Engine) parallelFor(n int, fn func(i int)) {
	workers := min(e.Threads(), n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	pool := e.getPool()
	var next atomic.Int64
	var wg sync.WaitGroup
	wg.Add(n)
	body := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(i)
			wg.Done()
		}
	}
	for w := 1; w < workers; w++ {
		select {
		case pool.work <- body:
		default: // invitations already queued: the helpers are busy
		}
	}
	body()
	wg.Wait()
}
func (e *Engine) getPool() *workerPool {
	e.poolOnce.Do(func() {
		e.pool = newWorkerPool(e.Threads() - 1)
		// The helpers reference only the channel, so an unreachable Engine can be collected and
		// its helpers released.
		runtime.AddCleanup(e, func(p *workerPool) { p.close() }, e.pool)
	})
	return e.pool
}
