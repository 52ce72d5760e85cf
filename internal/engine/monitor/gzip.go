package monitor

import (
	"errors"
	"os"
	"strconv"
)

// gzip compresses a rotated log file of the local driver (src) into dst
// with the host's gzip: the monitor does not link compress/gzip, which
// would bring fmt and its init into every monitor (≈30 KiB more Pss each),
// for a few rotations in a container's life. Without a gzip binary the
// rotated files stay uncompressed (the reader takes both).
func (m *monitor) gzip(src, dst string) error {
	bin, err := lookPath("gzip")
	if err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	defer out.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	// Under reapMu, as the runtime commands: the reaper must not take
	// gzip's status.
	m.reapMu.Lock()
	defer m.reapMu.Unlock()
	p, err := os.StartProcess(bin, []string{"gzip", "-1", "-n", "-c"}, &os.ProcAttr{Dir: "/", Files: []*os.File{in, out, devnull}})
	if err != nil {
		return err
	}
	ws, err := waitChild(p.Pid)
	_ = p.Release()
	if err != nil {
		return err
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return errors.New("gzip " + src + ": exit status " + strconv.Itoa(ws.ExitStatus()))
	}
	return out.Sync()
}
