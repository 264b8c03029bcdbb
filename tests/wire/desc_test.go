package wire

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	fs "github.com/sandboxd/envd/internal/gen/filesystem"
	fw "github.com/sandboxd/envd/internal/gen/filesystem/filesystemwire"
	ps "github.com/sandboxd/envd/internal/gen/process"
	pw "github.com/sandboxd/envd/internal/gen/process/processwire"
	"github.com/sandboxd/envd/internal/rpc"
)

// checkFileDesc compares a generated FileDesc with the protoc-gen-go
// descriptor of the same file.
func checkFileDesc(t *testing.T, got *rpc.FileDesc, want protoreflect.FileDescriptor) {
	t.Helper()
	if got.Name != want.Path() {
		t.Errorf("Name = %q, want %q", got.Name, want.Path())
	}
	wantProto := protodesc.ToFileDescriptorProto(want)
	wantProto.SourceCodeInfo = nil
	var gotProto descriptorpb.FileDescriptorProto
	if err := proto.Unmarshal(got.Raw, &gotProto); err != nil || !proto.Equal(&gotProto, wantProto) {
		t.Errorf("%s: Raw is not the file's descriptor (err %v)", got.Name, err)
	}
	var services []string
	for i := range want.Services().Len() {
		services = append(services, string(want.Services().Get(i).FullName()))
	}
	if !slices.Equal(got.Services, services) {
		t.Errorf("%s: Services = %v, want %v", got.Name, got.Services, services)
	}
	for _, s := range got.Symbols {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(s))
		if err != nil || d.ParentFile().Path() != want.Path() {
			t.Errorf("%s: symbol %s does not resolve to the file (%v)", got.Name, s, err)
		}
	}
	if len(got.Deps) != want.Imports().Len() {
		t.Fatalf("%s: %d deps, want %d", got.Name, len(got.Deps), want.Imports().Len())
	}
	for i, dep := range got.Deps {
		checkFileDesc(t, dep, want.Imports().Get(i).FileDescriptor)
	}
}

func TestFileDescriptors(t *testing.T) {
	checkFileDesc(t, pw.File_process_process_proto, ps.File_process_process_proto)
	checkFileDesc(t, fw.File_filesystem_filesystem_proto, fs.File_filesystem_filesystem_proto)
	checkFileDesc(t, fw.File_filesystem_filesystem_proto.Deps[0], timestamppb.File_google_protobuf_timestamp_proto)
	for _, want := range []string{"process.Process.Start", "process.PTY.Size", "process.ProcessEvent.DataEvent.stdout",
		"process.SIGNAL_SIGKILL", "process.Signal", "process.ProcessSelector.selector"} {
		if !slices.Contains(pw.File_process_process_proto.Symbols, want) {
			t.Errorf("symbol %s missing", want)
		}
	}
}

func TestEnumStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{pw.Signal_SIGNAL_SIGKILL.String(), ps.Signal_SIGNAL_SIGKILL.String()},
		{pw.Signal(99).String(), ps.Signal(99).String()},
		{fw.FileType_FILE_TYPE_DIRECTORY.String(), fs.FileType_FILE_TYPE_DIRECTORY.String()},
		{fw.EventType(-3).String(), fs.EventType(-3).String()},
	} {
		if c.got != c.want {
			t.Errorf("String() = %q, want %q", c.got, c.want)
		}
	}
	if *pw.Signal_SIGNAL_SIGTERM.Enum() != pw.Signal_SIGNAL_SIGTERM {
		t.Error("Enum() pointer")
	}
}

func TestGettersAreNilSafe(t *testing.T) {
	var ev *pw.ProcessEvent
	var sel *pw.ProcessSelector
	var end *pw.ProcessEvent_EndEvent
	var e *fw.EntryInfo
	if ev.GetData() != nil || ev.GetEvent() != nil || sel.GetPid() != 0 || sel.GetTag() != "" ||
		end.GetError() != "" || e.GetModifiedTime() != nil || e.GetMetadata() != nil || e.GetType() != fw.FileType_FILE_TYPE_UNSPECIFIED {
		t.Error("nil getters")
	}
	s := &pw.ProcessSelector{Selector: &pw.ProcessSelector_Tag{Tag: "t"}}
	if s.GetTag() != "t" || s.GetPid() != 0 {
		t.Error("oneof getters")
	}
	if (&pw.StartRequest{Stdin: ptr(false)}).GetStdin() || !(&pw.StartRequest{Stdin: ptr(true)}).GetStdin() {
		t.Error("optional getter")
	}
}
