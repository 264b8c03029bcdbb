package cgroups

import (
	"sync"
	"time"
)

// watchdog fires once when a freeze was armed and nobody disarmed it in
// time (BEHAVIOR.md 10.8: a sandbox whose resume never came must not stay
// frozen forever). One goroutine, owned by the Manager, waits on it.
type watchdog struct {
	after    time.Duration
	mu       sync.Mutex // guards deadline
	deadline time.Time  // zero: disarmed
	wake     chan struct{}
}

func newWatchdog(after time.Duration) *watchdog {
	return &watchdog{after: after, wake: make(chan struct{}, 1)}
}

// arm (re)starts the countdown.
func (w *watchdog) arm() { w.set(time.Now().Add(w.after)) }

// disarm stops the countdown.
func (w *watchdog) disarm() { w.set(time.Time{}) }

func (w *watchdog) set(d time.Time) {
	w.mu.Lock()
	w.deadline = d
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // a wake-up is already pending; it reads the new deadline
	}
}

// run calls fire when the armed deadline passes, until stop closes.
func (w *watchdog) run(stop <-chan struct{}, fire func()) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		w.mu.Lock()
		d := w.deadline
		w.mu.Unlock()
		var expired <-chan time.Time
		if !d.IsZero() {
			t.Reset(time.Until(d))
			expired = t.C
		}
		select {
		case <-stop:
			t.Stop()
			return
		case <-w.wake:
			t.Stop()
		case <-expired:
			w.mu.Lock()
			same := w.deadline.Equal(d)
			if same {
				w.deadline = time.Time{}
			}
			w.mu.Unlock()
			if same {
				fire()
			}
		}
	}
}
