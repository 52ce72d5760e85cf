package cgroups

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// freezeTimeout bounds how long Freeze and Thaw wait for the kernel.
const freezeTimeout = 5 * time.Second

// freezerDir returns the directory and version of the freezer: the v1
// freezer hierarchy when mounted, otherwise the cgroup2 core cgroup.freeze
// (which needs no controller, so it works on hybrid hosts too).
func (m *manager) freezerDir() (string, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.v1["freezer"]; ok {
		return d, 1, nil
	}
	if m.v2 != "" {
		return m.v2, 2, nil
	}
	return "", 0, errors.New("freezer: no freezer cgroup")
}

// Freeze implements Manager.
func (m *manager) Freeze() error { return m.setFrozen(true) }

// Thaw implements Manager.
func (m *manager) Thaw() error { return m.setFrozen(false) }

func (m *manager) setFrozen(frozen bool) error {
	dir, v, err := m.freezerDir()
	if err != nil {
		return err
	}
	if v == 1 {
		err = freezeV1(dir, frozen)
	} else {
		err = freezeV2(dir, frozen)
	}
	if err != nil && frozen {
		// Do not leave the container half frozen behind an error.
		if v == 1 {
			_ = writeFile(dir, "freezer.state", "THAWED")
		} else {
			_ = writeFile(dir, "cgroup.freeze", "0")
		}
	}
	return err
}

// freezeV1 drives freezer.state to FROZEN or THAWED. Freezing can stay in
// FREEZING while a task is in an uninterruptible sleep (or while new tasks
// are forked), so the request is re-written while polling, like runc does.
func freezeV1(dir string, frozen bool) error {
	want := "THAWED"
	if frozen {
		want = "FROZEN"
	}
	deadline := time.Now().Add(freezeTimeout)
	delay := 100 * time.Microsecond
	for i := 0; ; i++ {
		if i%10 == 0 {
			if err := writeFile(dir, "freezer.state", want); err != nil {
				return err
			}
		}
		state, err := readFile(dir, "freezer.state")
		if err != nil {
			return err
		}
		if state == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("freezer: %s: state %s after %v, want %s", dir, state, freezeTimeout, want)
		}
		time.Sleep(delay)
		delay = min(delay*2, 10*time.Millisecond)
	}
}

// freezeV2 writes cgroup.freeze and waits for cgroup.events to report the
// group (and all descendants) frozen or thawed.
func freezeV2(dir string, frozen bool) error {
	val := "0"
	if frozen {
		val = "1"
	}
	if err := writeFile(dir, "cgroup.freeze", val); err != nil {
		return err
	}
	deadline := time.Now().Add(freezeTimeout)
	delay := 100 * time.Microsecond
	for {
		got, err := eventsFrozen(dir)
		if err != nil {
			return err
		}
		if got == frozen {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("freezer: %s: cgroup.events frozen %v after %v", dir, got, freezeTimeout)
		}
		time.Sleep(delay)
		delay = min(delay*2, 10*time.Millisecond)
	}
}

// eventsFrozen reads the "frozen" key of cgroup.events.
func eventsFrozen(dir string) (bool, error) {
	s, err := readFile(dir, "cgroup.events")
	if err != nil {
		return false, err
	}
	for line := range strings.SplitSeq(s, "\n") {
		if v, ok := strings.CutPrefix(line, "frozen "); ok {
			return strings.TrimSpace(v) == "1", nil
		}
	}
	return false, fmt.Errorf("read %s/cgroup.events: no frozen key", dir)
}

// Frozen implements Manager. A group still FREEZING is not frozen.
func (m *manager) Frozen() (bool, error) {
	dir, v, err := m.freezerDir()
	if err != nil {
		return false, err
	}
	if v == 2 {
		return eventsFrozen(dir)
	}
	s, err := readFile(dir, "freezer.state")
	if err != nil {
		return false, err
	}
	return s == "FROZEN", nil
}
