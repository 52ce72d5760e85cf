package process

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-containers/silo/internal/compute"
	"github.com/silo-containers/silo/internal/errdefs"
)

const (
	stateFile = "state.json"
	fifoFile  = "exec.fifo"
	// startingFile marks a container that `run` is starting (it has no
	// fifo: the start goes over the init pipe): created until its
	// process is exec'd, as runc's run reports it.
	startingFile = "starting"
)

// containerState is what runsilo persists about a container between
// invocations. It is written atomically (temp file, fsync, rename).
type containerState struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Pid         int               `json:"pid"`
	PidStart    uint64            `json:"pid_start"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
	CgroupPaths map[string]string `json:"cgroup_paths,omitempty"`
	// CgroupCreated lists cgroup directories made for this container
	// (parents included) so that delete removes exactly those.
	CgroupCreated []string `json:"cgroup_created,omitempty"`
	// Namespaces maps namespace type to the path that processes of this
	// container join (for exec).
	Namespaces map[specs.LinuxNamespaceType]string `json:"namespaces,omitempty"`
	// RawSpec is the spec as JSON, kept as such: encoding a specs.Spec
	// with encoding/json first builds encoders for its whole type graph
	// (~100 types, 200 KB of allocations, ~0.5 ms), and decoding one costs
	// as much, while delete, kill and state never look at it. spec()
	// decodes it on first use; hooks() decodes only the hooks.
	RawSpec json.RawMessage `json:"spec"`

	// spec is RawSpec decoded (or the spec the container was created
	// from); when set and RawSpec is nil, saveState encodes it.
	spec *specs.Spec
}

// specOf returns the container's spec, decoding RawSpec once.
func (st *containerState) specOf() (*specs.Spec, error) {
	if st.spec == nil {
		var s specs.Spec
		if err := json.Unmarshal(st.RawSpec, &s); err != nil {
			return nil, fmt.Errorf("parse spec in state of %q: %w", st.ID, err)
		}
		st.spec = &s
	}
	return st.spec, nil
}

// hooks returns the spec's hooks, decoding only them when the spec itself
// has not been decoded.
func (st *containerState) hooks() (*specs.Hooks, error) {
	if st.spec != nil {
		return st.spec.Hooks, nil
	}
	var s struct {
		Hooks *specs.Hooks `json:"hooks"`
	}
	if err := json.Unmarshal(st.RawSpec, &s); err != nil {
		return nil, fmt.Errorf("parse hooks in state of %q: %w", st.ID, err)
	}
	return s.Hooks, nil
}

// checkID refuses ids that are empty, too long or could escape the state
// directory: letters, digits and "_.+-", not starting with a punctuation
// character (so never "." or "..").
func checkID(id string) error {
	ok := id != "" && len(id) <= 255 // a directory name
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = alnum || i > 0 && strings.IndexByte("_.+-", c) >= 0
	}
	if !ok {
		return fmt.Errorf("container id %q: must be letters, digits and _.+- (not first), at most 255 bytes: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (b *Backend) dir(id string) string { return filepath.Join(b.Root, id) }

func (b *Backend) loadState(id string) (*containerState, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(b.dir(id), stateFile))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("read state of %q: %w", id, err)
	}
	var st containerState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("parse state of %q: %w", id, err)
	}
	return &st, nil
}

// saveState writes the state atomically: a reader sees the old or the new
// file, never a torn one. There is no fsync: the state lives in /run and,
// like the containers it describes, does not outlive a reboot, so a
// flush to disk would buy nothing and costs milliseconds per create.
func (b *Backend) saveState(st *containerState) error {
	if st.RawSpec == nil && st.spec != nil {
		raw, err := json.Marshal(st.spec)
		if err != nil {
			return fmt.Errorf("encode spec of %q: %w", st.ID, err)
		}
		st.RawSpec = raw
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state of %q: %w", st.ID, err)
	}
	return writeFileAtomic(filepath.Join(b.dir(st.ID), stateFile), data, 0o600)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	return nil
}

// pidStartTime reads field 22 of /proc/pid/stat: the start time that tells
// a live init from a recycled pid.
func pidStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat: short", pid)
	}
	if fields[0] == "Z" || fields[0] == "X" {
		return 0, os.ErrNotExist
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// initAlive reports whether the container's init is still the process
// that was started (not exited, not a reused pid).
func (st *containerState) initAlive() bool {
	if st.Pid <= 0 {
		return false
	}
	start, err := pidStartTime(st.Pid)
	return err == nil && start == st.PidStart
}

// status derives the OCI status from the live system: nothing is cached, so
// a crash of runsilo between two calls cannot make the state lie.
func (b *Backend) status(st *containerState) compute.State {
	if !st.initAlive() {
		return compute.Stopped
	}
	if _, err := os.Lstat(filepath.Join(b.dir(st.ID), fifoFile)); err == nil {
		return compute.Created
	}
	if _, err := os.Lstat(filepath.Join(b.dir(st.ID), startingFile)); err == nil {
		return compute.Created
	}
	if frozen, err := b.cgroupManager(st).Frozen(); err == nil && frozen {
		return compute.Paused
	}
	return compute.Running
}

// ociState is the state document the OCI spec defines, as `state` prints it
// and hooks read it on stdin.
func (b *Backend) ociState(st *containerState, status compute.State) *specs.State {
	pid := st.Pid
	if status == compute.Stopped {
		pid = 0
	}
	return &specs.State{
		Version:     specs.Version,
		ID:          st.ID,
		Status:      specs.ContainerState(status),
		Pid:         pid,
		Bundle:      st.Bundle,
		Annotations: st.Annotations,
	}
}
