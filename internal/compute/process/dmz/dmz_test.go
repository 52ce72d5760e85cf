package dmz

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const errorBase = 0xfffffe00

func ready() (r [8]byte) { return record(0xffffff03) }

func record(v uint32) (r [8]byte) {
	binary.LittleEndian.PutUint32(r[:], v)
	return r
}

// TestBuildELF checks the image's shape with debug/elf: what the kernel's
// loader reads.
func TestBuildELF(t *testing.T) {
	img, err := Build(Config{Sync: 3, Fifo: -1, Hello: ready(), Wait: true, Paths: []string{"/a/x", "/b/x"}, Argv: []string{"x", "y"}, Env: []string{"A=1"}, ErrorBase: errorBase})
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(img.ELF))
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != elf.ET_EXEC || f.Machine != elf.EM_X86_64 || len(f.Progs) != 3 {
		t.Fatalf("type %v machine %v progs %d", f.Type, f.Machine, len(f.Progs))
	}
	code, data := f.Progs[0], f.Progs[1]
	if code.Flags != elf.PF_R|elf.PF_X || f.Entry != code.Vaddr || data.Flags != elf.PF_R|elf.PF_W {
		t.Fatalf("segments: %+v %+v entry %#x", code.ProgHeader, data.ProgHeader, f.Entry)
	}
	for _, p := range f.Progs[:2] {
		if p.Off%4096 != p.Vaddr%4096 || p.Off+p.Filesz > uint64(len(img.ELF)) {
			t.Fatalf("segment %+v does not map", p.ProgHeader)
		}
	}
	if f.Progs[2].Type != elf.PT_GNU_STACK || f.Progs[2].Flags&elf.PF_X != 0 {
		t.Fatalf("stack: %+v", f.Progs[2].ProgHeader)
	}
	// ready, wait, cloexec, two execves, the error report.
	if len(img.Calls) != 6 || len(img.Steps) != 5 || img.Steps[4] != `exec "/b/x"` {
		t.Fatalf("calls %d steps %q", len(img.Calls), img.Steps)
	}
	for _, c := range img.Calls {
		if c.IP <= code.Vaddr || c.IP > code.Vaddr+code.Memsz {
			t.Fatalf("call %d at %#x outside the code", c.Nr, c.IP)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	for _, c := range []Config{
		{Sync: 3, Fifo: -1},
		{Sync: 3, Fifo: -1, Paths: []string{"/x"}, Argv: []string{"a\x00b"}},
		{Sync: 3, Fifo: -1, Paths: []string{"/x"}, Argv: []string{"x"}, Env: []string{strings.Repeat("A", 3<<20)}},
		{Sync: -1, Fifo: -1, Paths: []string{"/x"}, Argv: []string{"x"}},
	} {
		if _, err := Build(c); err == nil {
			t.Errorf("Build(%.60v) succeeded", c)
		}
	}
}

// started is a trampoline running in a child, its end of Sync at fd 3.
type started struct {
	cmd  *exec.Cmd
	sync *os.File
	out  bytes.Buffer
}

// start runs the trampoline built from c (Sync 3, Fifo 4 when fifo is
// set) from a sealed memfd, as the direct init does.
func start(t *testing.T, c Config, fifo *os.File, prepare ...func(sync *os.File)) *started {
	t.Helper()
	if !Supported() {
		t.Skip("trampolines are x86-64 code")
	}
	img, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	mfd, err := unix.MemfdCreate("dmz-test", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	mem := os.NewFile(uintptr(mfd), "memfd")
	defer mem.Close()
	if _, err := mem.Write(img.ELF); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(mem.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_WRITE|unix.F_SEAL_GROW|unix.F_SEAL_SHRINK); err != nil {
		t.Fatal(err)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := &started{sync: os.NewFile(uintptr(pair[0]), "sync")}
	t.Cleanup(func() { s.sync.Close() })
	for _, fn := range prepare {
		fn(s.sync)
	}
	child := os.NewFile(uintptr(pair[1]), "child")
	defer child.Close()
	s.cmd = &exec.Cmd{Path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), mfd), Args: []string{"dmz"}, Stdout: &s.out, Stderr: &s.out}
	s.cmd.ExtraFiles = []*os.File{child}
	if fifo != nil {
		s.cmd.ExtraFiles = append(s.cmd.ExtraFiles, fifo)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() })
	return s
}

func (s *started) record(t *testing.T) (uint32, syscall.Errno) {
	t.Helper()
	var b [8]byte
	if _, err := io.ReadFull(s.sync, b[:]); err != nil {
		t.Fatalf("read record: %v", err)
	}
	return binary.LittleEndian.Uint32(b[:]), syscall.Errno(binary.LittleEndian.Uint32(b[4:]))
}

func TestTrampolineRuns(t *testing.T) {
	echo, err := exec.LookPath("echo")
	if err != nil {
		t.Skip(err)
	}
	tests := []struct {
		name string
		fifo bool
	}{{"reply on sync", false}, {"exec fifo", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Sync: 3, Fifo: -1, Hello: ready(), Wait: true, Paths: []string{"/nonexistent/echo", echo},
				Argv: []string{"echo", "hello from", "the process"}, Env: []string{"A=1"}, ErrorBase: errorBase}
			var fifoW *os.File
			var fifoR *os.File
			if tt.fifo {
				c.Fifo = 4
				if fifoR, fifoW, err = os.Pipe(); err != nil {
					t.Fatal(err)
				}
				defer fifoW.Close()
			}
			s := start(t, c, fifoR)
			if fifoR != nil {
				fifoR.Close()
			}
			if v, e := s.record(t); v != 0xffffff03 || e != 0 {
				t.Fatalf("first record %#x/%v, want ready", v, e)
			}
			start := s.sync
			if tt.fifo {
				start = fifoW
			}
			if _, err := start.Write([]byte{1}); err != nil {
				t.Fatal(err)
			}
			// Executed: the pipe is closed on exec.
			if n, err := s.sync.Read(make([]byte, 8)); err != io.EOF {
				t.Fatalf("after start: read %d, %v; want EOF", n, err)
			}
			if err := s.cmd.Wait(); err != nil {
				t.Fatalf("process: %v (%s)", err, s.out.String())
			}
			if got := s.out.String(); got != "hello from the process\n" {
				t.Fatalf("output %q", got)
			}
		})
	}
}

func TestTrampolineReportsExecError(t *testing.T) {
	s := start(t, Config{Sync: 3, Fifo: -1, Hello: ready(), Wait: true, Paths: []string{"/nonexistent/a", "/nonexistent/b"}, Argv: []string{"a"}, ErrorBase: errorBase}, nil)
	if v, _ := s.record(t); v != 0xffffff03 {
		t.Fatalf("first record %#x", v)
	}
	if _, err := s.sync.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	v, e := s.record(t)
	// ready, wait, cloexec, exec a, exec b: step 4 failed.
	if v != errorBase+4 || e != unix.ENOENT {
		t.Fatalf("record %#x/%v, want step 4/ENOENT", v, e)
	}
	var ee *exec.ExitError
	if err := s.cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v", err)
	}
}

// TestTrampolineChecksSteps: a bad fd fails the first step, which is
// reported (on the fd that works).
func TestTrampolineChecksSteps(t *testing.T) {
	s := start(t, Config{Sync: 3, Fifo: 9, Hello: ready(), Wait: true, Paths: []string{"/bin/true"}, Argv: []string{"true"}, ErrorBase: errorBase}, nil)
	if v, _ := s.record(t); v != 0xffffff03 {
		t.Fatalf("first record %#x", v)
	}
	if v, e := s.record(t); v != errorBase+1 || e != unix.EBADF {
		t.Fatalf("record %#x/%v, want step 1 (wait on fifo)/EBADF", v, e)
	}
}

// TestTrampolineForks: with Fork, the trampoline exits 0 at once and its
// child, a child of the trampoline's parent (CLONE_PARENT) in a session of
// its own, says hello (the pid rides on the record's credentials) and
// executes the process.
func TestTrampolineForks(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	const hello = 0xffffff04
	s := start(t, Config{Sync: 3, Fork: true, Hello: record(hello), Paths: []string{sh},
		Argv: []string{"sh", "-c", `echo "$$ $(cut -d' ' -f6 /proc/$$/stat)"`}, ErrorBase: errorBase}, nil,
		func(sync *os.File) {
			if err := unix.SetsockoptInt(int(sync.Fd()), unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
				t.Fatal(err)
			}
		})
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("the trampoline's parent side: %v", err)
	}
	var rec [8]byte
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	n, oobn, _, _, err := unix.Recvmsg(int(s.sync.Fd()), rec[:], oob, 0)
	if err != nil || n != 8 || binary.LittleEndian.Uint32(rec[:]) != hello {
		t.Fatalf("hello: %d bytes %x, %v", n, rec, err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("credentials: %v", err)
	}
	cred, err := unix.ParseUnixCredentials(&msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	pid := int(cred.Pid)
	if pid == s.cmd.Process.Pid {
		t.Fatal("hello came from the trampoline's parent side")
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("wait for the child %d (ours by CLONE_PARENT): %v, %v", pid, ws, err)
	}
	// The process's pid and session id: a session leader.
	if got, want := s.out.String(), fmt.Sprintf("%d %d\n", pid, pid); got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
}

// FuzzBuild: any process Build accepts becomes an ELF debug/elf reads,
// whose code lies inside its segment.
func FuzzBuild(f *testing.F) {
	f.Add("/bin/sh", "sh", "-c", "PATH=/bin", true)
	f.Add("", "x", "", "", false)
	f.Fuzz(func(t *testing.T, path, arg0, arg1, env string, fork bool) {
		img, err := Build(Config{Sync: 997, Fifo: -1, Fork: fork, Wait: !fork, Paths: []string{path, "/x/" + path},
			Argv: []string{arg0, arg1}, Env: []string{env}, ErrorBase: errorBase})
		if err != nil {
			return
		}
		ef, err := elf.NewFile(bytes.NewReader(img.ELF))
		if err != nil {
			t.Fatalf("Build made an ELF debug/elf refuses: %v", err)
		}
		code := ef.Progs[0]
		if ef.Entry != code.Vaddr || code.Off+code.Filesz != uint64(len(img.ELF)) {
			t.Fatalf("entry %#x, code %+v, file %d bytes", ef.Entry, code.ProgHeader, len(img.ELF))
		}
		if len(img.Steps) == 0 || len(img.Calls) != len(img.Steps)+1 {
			t.Fatalf("%d calls for %d steps", len(img.Calls), len(img.Steps))
		}
	})
}
