package process

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/compute/process/cgroups"
)

// The init pipe carries binary frames, not JSON. Both ends are this binary
// (init is exec'd from a sealed copy of the parent's own file), so the
// format never meets another version. encoding/json costs each process
// that uses it ~1 ms on its first decode (type analysis of the spec's
// structs, cold code), which init paid on the start path before its first
// mount; these hand-written codecs cost microseconds.
//
// A frame is a little-endian uint32 length and that many bytes. Inside,
// integers are varints, strings and byte slices are length-prefixed, lists
// are a count followed by their items, and an optional value (a pointer in
// the spec) is a presence byte followed by the value.

// maxFrame bounds a frame's length so that a corrupt header cannot make
// the reader allocate without limit (the largest real frame is a config
// with a compiled seccomp profile: tens of KiB).
const maxFrame = 64 << 20

// errWire is returned for a frame that does not decode.
var errWire = errors.New("init pipe: malformed frame")

// wireWriter appends values to a frame.
//
// Its primitives are kept out of line (go:noinline): inlined, the appends
// made the codec 40 KB of code, and runsilo's resident memory grows with
// the size of its binary (see bench/README.md).
type wireWriter struct{ b []byte }

//go:noinline
func (w *wireWriter) uint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }

//go:noinline
func (w *wireWriter) int(v int64) { w.b = binary.AppendVarint(w.b, v) }

//go:noinline
func (w *wireWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

//go:noinline
func (w *wireWriter) str(s string) {
	w.uint(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *wireWriter) bytes(p []byte) {
	w.uint(uint64(len(p)))
	w.b = append(w.b, p...)
}

func (w *wireWriter) strs(l []string) {
	w.uint(uint64(len(l)))
	for _, s := range l {
		w.str(s)
	}
}

func (w *wireWriter) ints(l []int) {
	w.uint(uint64(len(l)))
	for _, v := range l {
		w.int(int64(v))
	}
}

func (w *wireWriter) strMap(m map[string]string) {
	w.uint(uint64(len(m)))
	for k, v := range m {
		w.str(k)
		w.str(v)
	}
}

// wireReader reads values back. The first failure sticks: later reads
// return zero values, and err tells the caller once at the end.
type wireReader struct {
	b   []byte
	err error
}

func (r *wireReader) fail() {
	if r.err == nil {
		r.err = errWire
	}
	r.b = nil
}

//go:noinline
func (r *wireReader) uint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

//go:noinline
func (r *wireReader) int() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

//go:noinline
func (r *wireReader) bool() bool {
	if len(r.b) == 0 || r.b[0] > 1 {
		r.fail()
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

// n reads a count or length and checks it against the bytes left, each
// item taking at least one byte: a corrupt count cannot make us allocate.
func (r *wireReader) n() int {
	v := r.uint()
	if v > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(v)
}

func (r *wireReader) raw() []byte {
	n := r.n()
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

//go:noinline
func (r *wireReader) str() string { return string(r.raw()) }

func (r *wireReader) bytes() []byte {
	p := r.raw()
	if len(p) == 0 {
		return nil
	}
	return append([]byte(nil), p...)
}

func (r *wireReader) strs() []string {
	n := r.n()
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = r.str()
	}
	return l
}

func (r *wireReader) ints() []int {
	n := r.n()
	if n == 0 {
		return nil
	}
	l := make([]int, n)
	for i := range l {
		l[i] = int(r.int())
	}
	return l
}

func (r *wireReader) strMap() map[string]string {
	n := r.n()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		k := r.str()
		m[k] = r.str()
	}
	return m
}

// uint32 reads a value that must fit in 32 bits (ids, modes, sizes).
func (r *wireReader) uint32() uint32 {
	v := r.uint()
	if v > 1<<32-1 {
		r.fail()
		return 0
	}
	return uint32(v)
}

// writeFrame sends one frame.
func writeFrame(w io.Writer, payload []byte) error {
	buf := make([]byte, 4, 4+len(payload))
	binary.LittleEndian.PutUint32(buf, uint32(len(payload)))
	_, err := w.Write(append(buf, payload...))
	return err
}

// readFrame reads one frame; io.EOF means the other end closed between
// frames.
func readFrame(rd io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, fmt.Errorf("init pipe: frame of %d bytes: %w", n, errWire)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(rd, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return payload, nil
}

// encodeMessage is the frame payload of m.
func encodeMessage(m *message) []byte {
	w := &wireWriter{}
	w.str(m.Type)
	w.int(int64(m.Fd))
	w.str(m.Error)
	w.bool(m.Config != nil)
	if m.Config != nil {
		w.initConfig(m.Config)
	}
	return w.b
}

// decodeMessage parses a frame payload.
func decodeMessage(p []byte) (*message, error) {
	r := &wireReader{b: p}
	m := &message{Type: r.str(), Fd: int(r.int()), Error: r.str()}
	if r.bool() {
		m.Config = r.initConfig()
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}

func (w *wireWriter) initConfig(c *initConfig) {
	w.str(c.ID)
	w.str(c.Bundle)
	w.str(c.Rootfs)
	for _, b := range []bool{c.Exec, c.NoPivot, c.NoNewKeyring, c.NewUserNS, c.NewMountNS, c.NewUTSNS, c.NewCgroupNS} {
		w.bool(b)
	}
	w.int(int64(c.ConsoleFd))
	w.int(int64(c.FifoFd))
	w.int(int64(c.PreserveFds))
	w.cgroupMounts(c.CgroupMounts)
	w.strs(c.CgroupTasks)
	w.ints(c.CgroupTaskFds)
	w.bytes(c.Seccomp)
	w.bool(c.State != nil)
	if s := c.State; s != nil {
		w.str(s.Version)
		w.str(s.ID)
		w.str(string(s.Status))
		w.int(int64(s.Pid))
		w.str(s.Bundle)
		w.strMap(s.Annotations)
	}
	w.bool(c.Process != nil)
	if c.Process != nil {
		w.process(c.Process)
	}
	w.bool(c.Spec != nil)
	if c.Spec != nil {
		w.spec(c.Spec)
	}
}

func (r *wireReader) initConfig() *initConfig {
	c := &initConfig{ID: r.str(), Bundle: r.str(), Rootfs: r.str()}
	for _, b := range []*bool{&c.Exec, &c.NoPivot, &c.NoNewKeyring, &c.NewUserNS, &c.NewMountNS, &c.NewUTSNS, &c.NewCgroupNS} {
		*b = r.bool()
	}
	c.ConsoleFd = int(r.int())
	c.FifoFd = int(r.int())
	c.PreserveFds = int(r.int())
	c.CgroupMounts = r.cgroupMounts()
	c.CgroupTasks = r.strs()
	c.CgroupTaskFds = r.ints()
	c.Seccomp = r.bytes()
	if r.bool() {
		c.State = &specs.State{Version: r.str(), ID: r.str(), Status: specs.ContainerState(r.str()),
			Pid: int(r.int()), Bundle: r.str(), Annotations: r.strMap()}
	}
	if r.bool() {
		c.Process = r.process()
	}
	if r.bool() {
		c.Spec = r.spec()
	}
	return c
}

func (w *wireWriter) cgroupMounts(l []cgroups.MountSource) {
	w.uint(uint64(len(l)))
	for _, s := range l {
		w.str(s.Subdir)
		w.str(s.HostPath)
		w.strs(s.Symlinks)
		w.int(int64(s.Version))
	}
}

func (r *wireReader) cgroupMounts() []cgroups.MountSource {
	n := r.n()
	if n == 0 {
		return nil
	}
	l := make([]cgroups.MountSource, n)
	for i := range l {
		s := &l[i]
		s.Subdir, s.HostPath, s.Symlinks, s.Version = r.str(), r.str(), r.strs(), int(r.int())
	}
	return l
}

// process carries every field of specs.Process that init reads: identity,
// capabilities, rlimits, arguments, terminal. The rest (AppArmor, SELinux,
// scheduler, I/O priority) is refused or ignored by validation in the parent.
func (w *wireWriter) process(p *specs.Process) {
	w.bool(p.Terminal)
	w.bool(p.ConsoleSize != nil)
	if b := p.ConsoleSize; b != nil {
		w.uint(uint64(b.Height))
		w.uint(uint64(b.Width))
	}
	w.uint(uint64(p.User.UID))
	w.uint(uint64(p.User.GID))
	w.bool(p.User.Umask != nil)
	if p.User.Umask != nil {
		w.uint(uint64(*p.User.Umask))
	}
	w.uint(uint64(len(p.User.AdditionalGids)))
	for _, g := range p.User.AdditionalGids {
		w.uint(uint64(g))
	}
	w.str(p.User.Username)
	w.strs(p.Args)
	w.strs(p.Env)
	w.str(p.Cwd)
	w.bool(p.Capabilities != nil)
	if c := p.Capabilities; c != nil {
		for _, l := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
			w.strs(l)
		}
	}
	w.uint(uint64(len(p.Rlimits)))
	for _, l := range p.Rlimits {
		w.str(l.Type)
		w.uint(l.Hard)
		w.uint(l.Soft)
	}
	w.bool(p.NoNewPrivileges)
	w.bool(p.OOMScoreAdj != nil)
	if p.OOMScoreAdj != nil {
		w.int(int64(*p.OOMScoreAdj))
	}
}

func (r *wireReader) process() *specs.Process {
	p := &specs.Process{Terminal: r.bool()}
	if r.bool() {
		p.ConsoleSize = &specs.Box{Height: uint(r.uint()), Width: uint(r.uint())}
	}
	p.User.UID = r.uint32()
	p.User.GID = r.uint32()
	if r.bool() {
		u := r.uint32()
		p.User.Umask = &u
	}
	if n := r.n(); n > 0 {
		p.User.AdditionalGids = make([]uint32, n)
		for i := range p.User.AdditionalGids {
			p.User.AdditionalGids[i] = r.uint32()
		}
	}
	p.User.Username = r.str()
	p.Args = r.strs()
	p.Env = r.strs()
	p.Cwd = r.str()
	if r.bool() {
		p.Capabilities = &specs.LinuxCapabilities{Bounding: r.strs(), Effective: r.strs(),
			Permitted: r.strs(), Inheritable: r.strs(), Ambient: r.strs()}
	}
	if n := r.n(); n > 0 {
		p.Rlimits = make([]specs.POSIXRlimit, n)
		for i := range p.Rlimits {
			p.Rlimits[i] = specs.POSIXRlimit{Type: r.str(), Hard: r.uint(), Soft: r.uint()}
		}
	}
	p.NoNewPrivileges = r.bool()
	if r.bool() {
		v := int(r.int())
		p.OOMScoreAdj = &v
	}
	return p
}

// spec carries the part of the spec init reads; initSpec in the parent
// trims a spec to exactly this part, and the codec's tests check that the
// two agree.
func (w *wireWriter) spec(s *specs.Spec) {
	w.str(s.Hostname)
	w.str(s.Domainname)
	w.bool(s.Root != nil)
	if s.Root != nil {
		w.str(s.Root.Path)
		w.bool(s.Root.Readonly)
	}
	w.uint(uint64(len(s.Mounts)))
	for _, m := range s.Mounts {
		w.str(m.Destination)
		w.str(m.Type)
		w.str(m.Source)
		w.strs(m.Options)
	}
	w.bool(s.Hooks != nil)
	if h := s.Hooks; h != nil {
		w.hooks(h.CreateContainer)
		w.hooks(h.StartContainer)
	}
	w.bool(s.Linux != nil)
	if l := s.Linux; l != nil {
		w.uint(uint64(len(l.Devices)))
		for _, d := range l.Devices {
			w.str(d.Type)
			w.str(d.Path)
			w.int(d.Major)
			w.int(d.Minor)
			w.bool(d.FileMode != nil)
			if d.FileMode != nil {
				w.uint(uint64(*d.FileMode))
			}
			for _, id := range []*uint32{d.UID, d.GID} {
				w.bool(id != nil)
				if id != nil {
					w.uint(uint64(*id))
				}
			}
		}
		w.strMap(l.Sysctl)
		w.strs(l.MaskedPaths)
		w.strs(l.ReadonlyPaths)
		w.str(l.RootfsPropagation)
		w.bool(l.Personality != nil)
		if p := l.Personality; p != nil {
			w.str(string(p.Domain))
			w.uint(uint64(len(p.Flags)))
			for _, f := range p.Flags {
				w.str(string(f))
			}
		}
	}
}

func (r *wireReader) spec() *specs.Spec {
	s := &specs.Spec{Hostname: r.str(), Domainname: r.str()}
	if r.bool() {
		s.Root = &specs.Root{Path: r.str(), Readonly: r.bool()}
	}
	if n := r.n(); n > 0 {
		s.Mounts = make([]specs.Mount, n)
		for i := range s.Mounts {
			s.Mounts[i] = specs.Mount{Destination: r.str(), Type: r.str(), Source: r.str(), Options: r.strs()}
		}
	}
	if r.bool() {
		s.Hooks = &specs.Hooks{CreateContainer: r.hooks(), StartContainer: r.hooks()}
	}
	if r.bool() {
		l := &specs.Linux{}
		if n := r.n(); n > 0 {
			l.Devices = make([]specs.LinuxDevice, n)
			for i := range l.Devices {
				d := &l.Devices[i]
				d.Type, d.Path, d.Major, d.Minor = r.str(), r.str(), r.int(), r.int()
				if r.bool() {
					m := os.FileMode(r.uint32())
					d.FileMode = &m
				}
				for _, id := range []**uint32{&d.UID, &d.GID} {
					if r.bool() {
						v := r.uint32()
						*id = &v
					}
				}
			}
		}
		l.Sysctl = r.strMap()
		l.MaskedPaths = r.strs()
		l.ReadonlyPaths = r.strs()
		l.RootfsPropagation = r.str()
		if r.bool() {
			p := &specs.LinuxPersonality{Domain: specs.LinuxPersonalityDomain(r.str())}
			if n := r.n(); n > 0 {
				p.Flags = make([]specs.LinuxPersonalityFlag, n)
				for i := range p.Flags {
					p.Flags[i] = specs.LinuxPersonalityFlag(r.str())
				}
			}
			l.Personality = p
		}
		s.Linux = l
	}
	return s
}

func (w *wireWriter) hooks(l []specs.Hook) {
	w.uint(uint64(len(l)))
	for _, h := range l {
		w.str(h.Path)
		w.strs(h.Args)
		w.strs(h.Env)
		w.bool(h.Timeout != nil)
		if h.Timeout != nil {
			w.int(int64(*h.Timeout))
		}
	}
}

func (r *wireReader) hooks() []specs.Hook {
	n := r.n()
	if n == 0 {
		return nil
	}
	l := make([]specs.Hook, n)
	for i := range l {
		l[i] = specs.Hook{Path: r.str(), Args: r.strs(), Env: r.strs()}
		if r.bool() {
			t := int(r.int())
			l[i].Timeout = &t
		}
	}
	return l
}
