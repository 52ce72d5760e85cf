package archive

import (
	"crypto/sha256"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/silo-containers/silo/internal/errdefs"
)

// pipeline reads a stream on its own goroutine in large chunks, hashing and
// counting them there, and hands the chunks to Read. Decompression (which
// happens inside the source's Read) and sha256 thus overlap with the
// extraction syscalls on the other core.
type pipeline struct {
	ch   chan []byte
	done chan struct{}
	once sync.Once

	cur  []byte // chunk being consumed (returned to the pool when empty)
	data []byte // unread part of cur

	// Written by the producer before it closes ch.
	err  error
	sum  digest.Digest
	size int64
}

const chunkSize = 256 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

func newPipeline(r io.Reader, max int64) *pipeline {
	p := &pipeline{ch: make(chan []byte, 8), done: make(chan struct{})}
	go p.produce(r, max)
	return p
}

func (p *pipeline) produce(r io.Reader, max int64) {
	defer close(p.ch)
	h := sha256.New()
	for {
		buf := *chunkPool.Get().(*[]byte)
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			h.Write(buf[:n])
			p.size += int64(n)
			if p.size > max {
				p.err = fmt.Errorf("uncompressed stream larger than %d bytes: %w", max, errdefs.ErrInvalidArgument)
				return
			}
			select {
			case p.ch <- buf[:n]:
			case <-p.done:
				return
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			p.sum = digest.NewDigest(digest.SHA256, h)
			return
		}
		if err != nil {
			p.err = err
			return
		}
	}
}

func (p *pipeline) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		p.release()
		c, ok := <-p.ch
		if !ok {
			if p.err != nil {
				return 0, p.err
			}
			return 0, io.EOF
		}
		p.cur, p.data = c, c
	}
	n := copy(b, p.data)
	p.data = p.data[n:]
	return n, nil
}

func (p *pipeline) release() {
	if p.cur != nil {
		b := p.cur[:cap(p.cur)]
		chunkPool.Put(&b)
		p.cur = nil
	}
}

// Finish reads the stream to its end and returns its digest and size.
func (p *pipeline) Finish() (digest.Digest, int64, error) {
	if _, err := io.Copy(io.Discard, p); err != nil {
		return "", 0, err
	}
	return p.sum, p.size, nil
}

// Close stops the producer. It does not wait for a Read blocked in the
// source; closing the source (the caller's job) ends that.
func (p *pipeline) Close() error {
	p.once.Do(func() { close(p.done) })
	p.release()
	return nil
}
