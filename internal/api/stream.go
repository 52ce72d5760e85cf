package api

import (
	"encoding/binary"
	"io"
)

// Docker's stream ids in the multiplexed stream header.
const (
	streamStdout = 1
	streamStderr = 2
)

// streamWriter writes log lines to a client: each framed with docker's
// 8-byte header (stream id, three zero bytes, big-endian length) when mux
// is set, raw otherwise (a container with a terminal has one stream).
type streamWriter struct {
	w   io.Writer
	mux bool
	hdr [8]byte
}

func (s *streamWriter) write(stream string, p []byte) error {
	if !s.mux {
		_, err := s.w.Write(p)
		return err
	}
	id := byte(streamStdout)
	if stream == "stderr" {
		id = streamStderr
	}
	s.hdr = [8]byte{id}
	binary.BigEndian.PutUint32(s.hdr[4:], uint32(len(p)))
	if _, err := s.w.Write(s.hdr[:]); err != nil {
		return err
	}
	_, err := s.w.Write(p)
	return err
}
