package seccomp

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMarshalRoundTrip(t *testing.T) {
	f, err := Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}},
	})
	if err != nil {
		t.Skipf("compile: %v", err)
	}
	data, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	g, err := UnmarshalFilter(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Program(), g.Program()) || f.Flags() != g.Flags() || f.NeedsNotify() != g.NeedsNotify() {
		t.Fatal("round trip changed the filter")
	}
	for _, bad := range [][]byte{nil, []byte("junk"), data[:len(data)-3], append([]byte("XXXXXXXX"), data[8:]...)} {
		if _, err := UnmarshalFilter(bad); err == nil {
			t.Errorf("UnmarshalFilter(%q...) accepted a corrupt filter", bad[:min(len(bad), 8)])
		}
	}
}
