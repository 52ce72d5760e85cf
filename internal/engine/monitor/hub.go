package monitor

import (
	"io"
	"sync"
)

// Stream ids in the attach framing (Docker's stdcopy: one byte of stream,
// three zero bytes, the payload length as a big-endian uint32).
const (
	frameStdout = 1
	frameStderr = 2
	frameHeader = 8
)

// hub fans container output out to attached clients. A client that does
// not keep up (its queue full) is dropped rather than stalling the
// container: its stream ends.
type hub struct {
	tty bool
	// hold keeps the output (up to holdLimit bytes) until the first
	// client attaches, which gets it first (Config.HoldOutput).
	hold      bool
	held      []heldFrame
	heldBytes int

	mu     sync.Mutex // guards subs and closed
	subs   map[*sub]struct{}
	closed bool
}

// heldFrame is a frame kept for the first client.
type heldFrame struct {
	stream byte
	frame  []byte
}

// holdLimit bounds the output kept for the first client; what goes
// beyond it is only in the log.
const holdLimit = 1 << 20

// sub is one attached client's queue of frames.
type sub struct {
	ch             chan []byte
	stdout, stderr bool
}

// subQueue is how many chunks (each at most 16 KiB) a client may lag.
const subQueue = 256

// add registers a client; nil once the container's output has ended
// (unless held output waits for a first client: it then gets that and
// the end).
func (h *hub) add(stdout, stderr bool) *sub {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed && !h.hold {
		return nil
	}
	if h.subs == nil {
		h.subs = map[*sub]struct{}{}
	}
	s := &sub{ch: make(chan []byte, subQueue+len(h.held)), stdout: stdout, stderr: stderr}
	if h.hold {
		for _, f := range h.held {
			if s.wants(f.stream) {
				s.ch <- f.frame
			}
		}
		h.hold, h.held, h.heldBytes = false, nil, 0
	}
	if h.closed {
		close(s.ch)
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

func (s *sub) wants(stream byte) bool {
	return stream == frameStdout && s.stdout || stream == frameStderr && s.stderr
}

// remove unregisters a client that went away.
func (h *hub) remove(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

// send queues p (output of stream 1 or 2) to every client that wants it.
func (h *hub) send(stream byte, p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 && !h.hold || len(p) == 0 {
		return
	}
	var frame []byte
	if h.tty {
		frame = append([]byte(nil), p...)
	} else {
		n := len(p)
		frame = make([]byte, frameHeader+n)
		frame[0] = stream
		frame[4], frame[5], frame[6], frame[7] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		copy(frame[frameHeader:], p)
	}
	if h.hold && h.heldBytes+len(frame) <= holdLimit {
		h.held = append(h.held, heldFrame{stream, frame})
		h.heldBytes += len(frame)
	}
	for s := range h.subs {
		if !s.wants(stream) {
			continue
		}
		select {
		case s.ch <- frame:
		default:
			delete(h.subs, s)
			close(s.ch)
		}
	}
}

// close ends every client's stream after what is queued.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		close(s.ch)
	}
	h.subs = nil
}

// tee is a reader that also sends what it reads to the hub.
type tee struct {
	r      io.Reader
	h      *hub
	stream byte
}

func (t *tee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.h.send(t.stream, p[:n])
	}
	return n, err
}
