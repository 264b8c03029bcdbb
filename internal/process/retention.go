package process

import "time"

type retainedExit struct {
	pid     int
	tag     *string
	at      time.Time
	end     End
	done    chan struct{} // closed
	dropped bool          // a new process took its pid or tag
}

// retention keeps the ends of exited processes for Retention so a late
// Connect still gets them (PROTOCOL.md 3.2), bounded to maxRetained and
// indexed by pid and tag, so every operation is O(1) amortised whatever the
// start rate. The Manager's mutex guards it.
type retention struct {
	queue []*retainedExit // oldest first from head; dropped entries stay until popped
	head  int
	live  int // entries in the queue that are not dropped
	byPid map[int]*retainedExit
	byTag map[string]*retainedExit // the newest exit with that tag
}

func newRetention() retention {
	return retention{byPid: map[int]*retainedExit{}, byTag: map[string]*retainedExit{}}
}

// add retains an exit and prunes what is expired or over the bound.
func (r *retention) add(e *retainedExit) {
	r.queue = append(r.queue, e)
	r.live++
	r.byPid[e.pid] = e
	if e.tag != nil {
		r.byTag[*e.tag] = e
	}
	r.prune(e.at)
}

// drop forgets the exits a new process with this pid or tag supersedes.
func (r *retention) drop(pid int, tag *string) {
	if e, ok := r.byPid[pid]; ok {
		r.forget(e)
	}
	if tag != nil {
		if e, ok := r.byTag[*tag]; ok {
			r.forget(e)
		}
	}
}

func (r *retention) forget(e *retainedExit) {
	if e.dropped {
		return
	}
	e.dropped = true
	r.live--
	if r.byPid[e.pid] == e {
		delete(r.byPid, e.pid)
	}
	if e.tag != nil && r.byTag[*e.tag] == e {
		delete(r.byTag, *e.tag)
	}
}

// find returns the retained exit a selector names, nil when none.
func (r *retention) find(sel Selector, now time.Time) *retainedExit {
	r.prune(now)
	if sel.ByTag {
		return r.byTag[sel.Tag]
	}
	return r.byPid[int(sel.Pid)]
}

// prune pops expired entries and keeps at most maxRetained live ones.
func (r *retention) prune(now time.Time) {
	for r.head < len(r.queue) {
		e := r.queue[r.head]
		if !e.dropped && now.Sub(e.at) < Retention && r.live <= maxRetained {
			break
		}
		r.forget(e)
		r.queue[r.head] = nil
		r.head++
	}
	if r.head > 64 && r.head*2 >= len(r.queue) { // compact: the queue never grows past 2× its content
		n := copy(r.queue, r.queue[r.head:])
		clear(r.queue[n:])
		r.queue, r.head = r.queue[:n], 0
	}
}

// len is the number of live retained exits.
func (r *retention) len() int { return r.live }
