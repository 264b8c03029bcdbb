// Package compat is the compatibility gate (issue 8): the wire schema pinned
// to PROTOCOL.md section 2, the Wrenn host agent's flows replayed against the
// built binary, and every RPC compared across codecs and transports. Both
// host flavours run unless ENVD_COMPAT_FLAVOR names one.
package compat

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	fspb "github.com/sandboxd/envd/internal/gen/filesystem"
	pb "github.com/sandboxd/envd/internal/gen/process"
)

// wantMessages is PROTOCOL.md 2.1 and 2.2 transcribed by hand, one line per
// field: "number name type [repeated|optional|oneof=NAME]". It is kept
// independent of proto/ on purpose: a renumbered, retyped or renamed field
// in the .proto files (and so in the generated code both our client and our
// server use) breaks every real client, yet leaves Go round trips green.
var wantMessages = map[string][]string{
	"process.PTY":                            {"1 size process.PTY.Size"},
	"process.PTY.Size":                       {"1 cols uint32", "2 rows uint32"},
	"process.ProcessConfig":                  {"1 cmd string", "2 args string repeated", "3 envs map<string,string>", "4 cwd string optional"},
	"process.ListRequest":                    {},
	"process.ProcessInfo":                    {"1 config process.ProcessConfig", "2 pid uint32", "3 tag string optional"},
	"process.ListResponse":                   {"1 processes process.ProcessInfo repeated"},
	"process.StartRequest":                   {"1 process process.ProcessConfig", "2 pty process.PTY optional", "3 tag string optional", "4 stdin bool optional"},
	"process.UpdateRequest":                  {"1 process process.ProcessSelector", "2 pty process.PTY optional"},
	"process.UpdateResponse":                 {},
	"process.ProcessEvent":                   {"1 start process.ProcessEvent.StartEvent oneof=event", "2 data process.ProcessEvent.DataEvent oneof=event", "3 end process.ProcessEvent.EndEvent oneof=event", "4 keepalive process.ProcessEvent.KeepAlive oneof=event"},
	"process.ProcessEvent.StartEvent":        {"1 pid uint32"},
	"process.ProcessEvent.DataEvent":         {"1 stdout bytes oneof=output", "2 stderr bytes oneof=output", "3 pty bytes oneof=output"},
	"process.ProcessEvent.EndEvent":          {"1 exit_code sint32", "2 exited bool", "3 status string", "4 error string optional"},
	"process.ProcessEvent.KeepAlive":         {},
	"process.StartResponse":                  {"1 event process.ProcessEvent"},
	"process.ConnectResponse":                {"1 event process.ProcessEvent"},
	"process.SendInputRequest":               {"1 process process.ProcessSelector", "2 input process.ProcessInput"},
	"process.SendInputResponse":              {},
	"process.ProcessInput":                   {"1 stdin bytes oneof=input", "2 pty bytes oneof=input"},
	"process.StreamInputRequest":             {"1 start process.StreamInputRequest.StartEvent oneof=event", "2 data process.StreamInputRequest.DataEvent oneof=event", "3 keepalive process.StreamInputRequest.KeepAlive oneof=event"},
	"process.StreamInputRequest.StartEvent":  {"1 process process.ProcessSelector"},
	"process.StreamInputRequest.DataEvent":   {"2 input process.ProcessInput"},
	"process.StreamInputRequest.KeepAlive":   {},
	"process.StreamInputResponse":            {},
	"process.SendSignalRequest":              {"1 process process.ProcessSelector", "2 signal process.Signal"},
	"process.SendSignalResponse":             {},
	"process.CloseStdinRequest":              {"1 process process.ProcessSelector"},
	"process.CloseStdinResponse":             {},
	"process.ConnectRequest":                 {"1 process process.ProcessSelector"},
	"process.ProcessSelector":                {"1 pid uint32 oneof=selector", "2 tag string oneof=selector"},
	"filesystem.MoveRequest":                 {"1 source string", "2 destination string"},
	"filesystem.MoveResponse":                {"1 entry filesystem.EntryInfo"},
	"filesystem.MakeDirRequest":              {"1 path string"},
	"filesystem.MakeDirResponse":             {"1 entry filesystem.EntryInfo"},
	"filesystem.RemoveRequest":               {"1 path string"},
	"filesystem.RemoveResponse":              {},
	"filesystem.StatRequest":                 {"1 path string"},
	"filesystem.StatResponse":                {"1 entry filesystem.EntryInfo"},
	"filesystem.EntryInfo":                   {"1 name string", "2 type filesystem.FileType", "3 path string", "4 size int64", "5 mode uint32", "6 permissions string", "7 owner string", "8 group string", "9 modified_time google.protobuf.Timestamp", "10 symlink_target string optional", "11 metadata map<string,string>"},
	"filesystem.ListDirRequest":              {"1 path string", "2 depth uint32"},
	"filesystem.ListDirResponse":             {"1 entries filesystem.EntryInfo repeated"},
	"filesystem.WatchDirRequest":             {"1 path string", "2 recursive bool", "3 include_entry bool", "4 allow_network_mounts bool"},
	"filesystem.FilesystemEvent":             {"1 name string", "2 type filesystem.EventType", "3 entry filesystem.EntryInfo optional"},
	"filesystem.WatchDirResponse":            {"1 start filesystem.WatchDirResponse.StartEvent oneof=event", "2 filesystem filesystem.FilesystemEvent oneof=event", "3 keepalive filesystem.WatchDirResponse.KeepAlive oneof=event"},
	"filesystem.WatchDirResponse.StartEvent": {},
	"filesystem.WatchDirResponse.KeepAlive":  {},
	"filesystem.CreateWatcherRequest":        {"1 path string", "2 recursive bool", "3 include_entry bool", "4 allow_network_mounts bool"},
	"filesystem.CreateWatcherResponse":       {"1 watcher_id string"},
	"filesystem.GetWatcherEventsRequest":     {"1 watcher_id string"},
	"filesystem.GetWatcherEventsResponse":    {"1 events filesystem.FilesystemEvent repeated"},
	"filesystem.RemoveWatcherRequest":        {"1 watcher_id string"},
	"filesystem.RemoveWatcherResponse":       {},
}

var wantEnums = map[string][]string{
	"process.Signal":       {"SIGNAL_UNSPECIFIED=0", "SIGNAL_SIGTERM=15", "SIGNAL_SIGKILL=9"},
	"filesystem.FileType":  {"FILE_TYPE_UNSPECIFIED=0", "FILE_TYPE_FILE=1", "FILE_TYPE_DIRECTORY=2", "FILE_TYPE_SYMLINK=3"},
	"filesystem.EventType": {"EVENT_TYPE_UNSPECIFIED=0", "EVENT_TYPE_CREATE=1", "EVENT_TYPE_WRITE=2", "EVENT_TYPE_REMOVE=3", "EVENT_TYPE_RENAME=4", "EVENT_TYPE_CHMOD=5"},
}

// wantMethods: "Name Input -> Output kind" (PROTOCOL.md 2.1, 2.2 tables).
var wantMethods = map[string][]string{
	"process.Process": {
		"List process.ListRequest -> process.ListResponse unary",
		"Connect process.ConnectRequest -> process.ConnectResponse server-stream",
		"Start process.StartRequest -> process.StartResponse server-stream",
		"Update process.UpdateRequest -> process.UpdateResponse unary",
		"StreamInput process.StreamInputRequest -> process.StreamInputResponse client-stream",
		"SendInput process.SendInputRequest -> process.SendInputResponse unary",
		"SendSignal process.SendSignalRequest -> process.SendSignalResponse unary",
		"CloseStdin process.CloseStdinRequest -> process.CloseStdinResponse unary",
	},
	"filesystem.Filesystem": {
		"Stat filesystem.StatRequest -> filesystem.StatResponse unary",
		"MakeDir filesystem.MakeDirRequest -> filesystem.MakeDirResponse unary",
		"Move filesystem.MoveRequest -> filesystem.MoveResponse unary",
		"ListDir filesystem.ListDirRequest -> filesystem.ListDirResponse unary",
		"Remove filesystem.RemoveRequest -> filesystem.RemoveResponse unary",
		"WatchDir filesystem.WatchDirRequest -> filesystem.WatchDirResponse server-stream",
		"CreateWatcher filesystem.CreateWatcherRequest -> filesystem.CreateWatcherResponse unary",
		"GetWatcherEvents filesystem.GetWatcherEventsRequest -> filesystem.GetWatcherEventsResponse unary",
		"RemoveWatcher filesystem.RemoveWatcherRequest -> filesystem.RemoveWatcherResponse unary",
	},
}

func fieldLine(f protoreflect.FieldDescriptor) string {
	typ := f.Kind().String()
	switch {
	case f.IsMap():
		typ = fmt.Sprintf("map<%s,%s>", f.MapKey().Kind(), f.MapValue().Kind())
	case f.Kind() == protoreflect.MessageKind:
		typ = string(f.Message().FullName())
	case f.Kind() == protoreflect.EnumKind:
		typ = string(f.Enum().FullName())
	}
	line := fmt.Sprintf("%d %s %s", f.Number(), f.Name(), typ)
	switch {
	case f.IsList():
		line += " repeated"
	case f.HasOptionalKeyword():
		line += " optional"
	case f.ContainingOneof() != nil:
		line += " oneof=" + string(f.ContainingOneof().Name())
	}
	return line
}

// walk collects every message and enum declared in fd, nested ones included.
func walk(msgs protoreflect.MessageDescriptors, enums protoreflect.EnumDescriptors, gotM, gotE map[string][]string) {
	for i := range enums.Len() {
		e := enums.Get(i)
		var vals []string
		for j := range e.Values().Len() {
			v := e.Values().Get(j)
			vals = append(vals, fmt.Sprintf("%s=%d", v.Name(), v.Number()))
		}
		gotE[string(e.FullName())] = vals
	}
	for i := range msgs.Len() {
		m := msgs.Get(i)
		if m.IsMapEntry() {
			continue
		}
		lines := []string{}
		for j := range m.Fields().Len() {
			lines = append(lines, fieldLine(m.Fields().Get(j)))
		}
		gotM[string(m.FullName())] = lines
		walk(m.Messages(), m.Enums(), gotM, gotE)
	}
}

// TestSchemaPinnedToProtocol compares the generated descriptors, field by
// field, with the spec's tables: numbers, names, types, labels, oneofs, enum
// values and RPC shapes. Any difference is a wire break for the SDK or the
// Wrenn host agent.
func TestSchemaPinnedToProtocol(t *testing.T) {
	gotM, gotE := map[string][]string{}, map[string][]string{}
	gotS := map[string][]string{}
	for _, fd := range []protoreflect.FileDescriptor{pb.File_process_process_proto, fspb.File_filesystem_filesystem_proto} {
		walk(fd.Messages(), fd.Enums(), gotM, gotE)
		for i := range fd.Services().Len() {
			s := fd.Services().Get(i)
			var ms []string
			for j := range s.Methods().Len() {
				m := s.Methods().Get(j)
				kind := "unary"
				switch {
				case m.IsStreamingClient() && m.IsStreamingServer():
					kind = "bidi-stream"
				case m.IsStreamingServer():
					kind = "server-stream"
				case m.IsStreamingClient():
					kind = "client-stream"
				}
				ms = append(ms, fmt.Sprintf("%s %s -> %s %s", m.Name(), m.Input().FullName(), m.Output().FullName(), kind))
			}
			gotS[string(s.FullName())] = ms
		}
	}
	diff(t, "message", wantMessages, gotM, true)
	diff(t, "enum", wantEnums, gotE, true)
	diff(t, "service", wantMethods, gotS, false)
	if pb.File_process_process_proto.Package() != "process" || fspb.File_filesystem_filesystem_proto.Package() != "filesystem" {
		t.Errorf("proto packages must be exactly process and filesystem (URL paths depend on them)")
	}
}

// diff reports every declaration whose lines differ; sorted compares sets
// (field order in a .proto file is not part of the wire contract).
func diff(t *testing.T, what string, want, got map[string][]string, sorted bool) {
	t.Helper()
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s %s: missing from the generated schema", what, name)
			continue
		}
		w, g = slices.Clone(w), slices.Clone(g)
		if sorted {
			slices.Sort(w)
			slices.Sort(g)
		}
		if !slices.Equal(w, g) {
			t.Errorf("%s %s differs from PROTOCOL.md section 2:\n  spec: %s\n  gen:  %s", what, name,
				strings.Join(w, "; "), strings.Join(g, "; "))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s %s: in the generated schema but not in PROTOCOL.md section 2", what, name)
		}
	}
}
