package tensorops

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// workerPool is a set of helper goroutines started once per Engine, so a product costs a
// hand-off per helper instead of a goroutine start.
//
// Work is split into chunks claimed through an atomic counter; the caller claims chunks too and
// waits only for chunks a helper has actually started. A helper that picks up an invitation
// late (busy with another caller's product, or not yet rescheduled) finds no chunk left and
// returns, so the caller never waits on an idle or busy helper, concurrent callers cannot
// deadlock, and a core slowed by other load simply takes fewer chunks.
//
// After a job a helper spins for spinWindow, watching for the next one, before it parks on the
// channel. Decoding runs a hundred or more short parallel regions per token (a few hundred µs
// each, with µs of serial work between them); waking a parked goroutine costs tens of µs of
// futex and scheduler latency per region, which left a fifth of the second core idle.
type workerPool struct {
	work     chan func()
	job      atomic.Pointer[func()] // the newest job, for spinning helpers
	gen      atomic.Uint64          // bumped when job changes
	spinning atomic.Int32           // helpers currently spinning
}

// spinWindow bounds how long an idle helper keeps its core busy waiting for the next job.
const spinWindow = 200 * time.Microsecond

func newWorkerPool(helpers int) *workerPool {
	p := &workerPool{work: make(chan func(), 4*helpers)}
	for i := 0; i < helpers; i++ {
		go p.helper()
	}
	return p
}

func (p *workerPool) helper() {
	for f := range p.work {
		f()
		// Run jobs published while spinning, until spinWindow passes with none.
		seen := p.gen.Load()
		p.spinning.Add(1)
		for spinFor(func() bool { return p.gen.Load() != seen }) {
			seen = p.gen.Load()
			if job := p.job.Load(); job != nil {
				p.spinning.Add(-1)
				(*job)()
				p.spinning.Add(1)
			}
		}
		p.spinning.Add(-1)
	}
}

// spinFor polls ready until it reports true (spinFor returns true) or spinWindow passes (false).
func spinFor(ready func() bool) bool {
	deadline := time.Now().Add(spinWindow)
	for i := 1; ; i++ {
		if ready() {
			return true
		}
		if i%256 == 0 && time.Now().After(deadline) {
			return false
		}
	}
}

// submit offers job to want helpers: spinning ones see it at once, the others are woken
// through the channel. Either way a helper may run job after the call has finished; job
// then finds no chunk left and returns.
func (p *workerPool) submit(job *func(), want int) {
	p.job.Store(job)
	p.gen.Add(1)
	for w := int(p.spinning.Load()); w < want; w++ {
		select {
		case p.work <- *job:
		default: // invitations already queued: the helpers are busy
		}
	}
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
	var next, done atomic.Int64
	var wg sync.WaitGroup
	wg.Add(n)
	body := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(i)
			done.Add(1)
			wg.Done()
		}
	}
	pool.submit(&body, workers-1)
	body()
	// The helper's last chunk usually ends within microseconds of ours; parking in wg.Wait and
	// being woken again would cost more than that, so watch the counter for a while first.
	spinFor(func() bool { return done.Load() >= int64(n) })
	wg.Wait()
	// Drop the finished job so its closure (and what it references) can be collected, unless
	// another call has published a newer one.
	pool.job.CompareAndSwap(&body, nil)
}

func (e *Engine) getPool() *workerPool {
	e.poolOnce.Do(func() {
		e.pool = newWorkerPool(e.Threads() - 1)
		// The helpers reference only the pool, not the Engine, so an unreachable Engine can be
		// collected and its helpers released.
		runtime.AddCleanup(e, func(p *workerPool) { p.close() }, e.pool)
	})
	return e.pool
}
