//go:build cgo

package seccomp

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// FuzzCompile feeds JSON-decoded profiles to Compile: it must never panic
// (nor crash inside libseccomp), and whatever it accepts must be a loadable
// size and agree with Validate.
func FuzzCompile(f *testing.F) {
	seeds := []string{
		`{"defaultAction":"SCMP_ACT_ALLOW"}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],` +
			`"flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG"],` +
			`"syscalls":[{"names":["read","write","socketcall","no_such"],"action":"SCMP_ACT_ALLOW"},` +
			`{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},` +
			`{"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}`,
		`{"defaultAction":"SCMP_ACT_LOG","listenerPath":"/a","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"},` +
			`{"names":["kill"],"action":"SCMP_ACT_TRACE","errnoRet":3,"args":[{"index":1,"value":9,"op":"SCMP_CMP_GT"},{"index":5,"value":1,"op":"SCMP_CMP_LE"}]}]}`,
		`{"defaultAction":"SCMP_ACT_KILL_PROCESS","architectures":["SCMP_ARCH_AARCH64","SCMP_ARCH_ARM","SCMP_ARCH_S390X","SCMP_ARCH_PPC64LE"],` +
			`"syscalls":[{"names":["read"],"action":"SCMP_ACT_TRAP"},{"names":["read"],"action":"SCMP_ACT_ERRNO"},{"names":["ipc","shmget"],"action":"SCMP_ACT_KILL"}]}`,
		`{"defaultAction":"SCMP_ACT_FOO"}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":7,"op":"SCMP_CMP_EQ"}]}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s specs.LinuxSeccomp
		if err := json.Unmarshal(data, &s); err != nil {
			return
		}
		filter, err := Compile(&s)
		verr := Validate(&s)
		if err != nil {
			if filter != nil {
				t.Fatalf("Compile returned a filter and error %v", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if verr != nil {
			t.Fatalf("Compile accepted what Validate rejects: %v", verr)
		}
		if n := len(filter.Program()); n == 0 || n > unix.BPF_MAXINSNS {
			t.Fatalf("program of %d instructions", n)
		}
		if filter.NeedsNotify() != (filter.Flags()&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0) {
			t.Fatalf("NeedsNotify %v but flags %#x", filter.NeedsNotify(), filter.Flags())
		}
	})
}
