package vm

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// QMP is a client for qemu's machine protocol: newline-delimited JSON on a
// unix socket. Asynchronous events between replies are skipped.
type QMP struct {
	mu sync.Mutex // guards conn and r: one command in flight at a time
	c  *net.UnixConn
	r  *bufio.Reader
}

// qmpTimeout bounds one command round trip (TCG under load is slow, but a
// QMP reply never takes this long unless qemu is wedged).
const qmpTimeout = 60 * time.Second

// dialQMP connects to a QMP socket, reads the greeting and leaves
// negotiation mode.
func dialQMP(path string) (*QMP, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	q := &QMP{c: c, r: bufio.NewReaderSize(c, 64<<10)}
	_ = c.SetDeadline(time.Now().Add(qmpTimeout))
	if _, err := q.r.ReadBytes('\n'); err != nil { // {"QMP": {...}}
		c.Close()
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	if _, err := q.Execute("qmp_capabilities", nil); err != nil {
		c.Close()
		return nil, err
	}
	return q, nil
}

// Close closes the socket.
func (q *QMP) Close() error { return q.c.Close() }

// Execute runs one command and returns its "return" value. fds, when
// given, travel with the command as SCM_RIGHTS (for getfd).
func (q *QMP) Execute(cmd string, args any, fds ...int) (json.RawMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	msg := map[string]any{"execute": cmd}
	if args != nil {
		msg["arguments"] = args
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	_ = q.c.SetDeadline(time.Now().Add(qmpTimeout))
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := q.c.WriteMsgUnix(append(b, '\n'), oob, nil); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", cmd, err)
		}
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("qmp %s: bad reply %q: %w", cmd, line, err)
		}
		switch {
		case resp.Event != "":
			continue
		case resp.Error != nil:
			return nil, fmt.Errorf("qmp %s: %s: %s", cmd, resp.Error.Class, resp.Error.Desc)
		case resp.Return != nil:
			return resp.Return, nil
		}
		return nil, errors.New("qmp " + cmd + ": reply without return or error")
	}
}

// status returns query-status's "status" (running, paused, inmigrate, ...).
func (q *QMP) status() (string, error) {
	raw, err := q.Execute("query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	return st.Status, json.Unmarshal(raw, &st)
}

// migrateStatus returns query-migrate's status and error description.
func (q *QMP) migrateStatus() (string, string, error) {
	raw, err := q.Execute("query-migrate", nil)
	if err != nil {
		return "", "", err
	}
	var st struct {
		Status string `json:"status"`
		Error  string `json:"error-desc"`
	}
	return st.Status, st.Error, json.Unmarshal(raw, &st)
}
