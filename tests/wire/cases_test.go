// Package wire checks the protoc-gen-envdwire messages against protobuf-go:
// every case is built twice, once as the protoc-gen-go type and once as the
// wire type, and both codecs must agree byte for byte (binary) or token for
// token (JSON).
package wire

import (
	"math"
	"reflect"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	fs "github.com/sandboxd/envd/internal/gen/filesystem"
	fw "github.com/sandboxd/envd/internal/gen/filesystem/filesystemwire"
	ps "github.com/sandboxd/envd/internal/gen/process"
	pw "github.com/sandboxd/envd/internal/gen/process/processwire"
	"github.com/sandboxd/envd/internal/wirekit"
)

// message is the contract of internal/rpc.Message.
type message interface {
	AppendProto(b []byte) []byte
	UnmarshalProto(b []byte) error
	AppendProtoJSON(b []byte) []byte
	UnmarshalProtoJSON(b []byte) error
}

type pair struct {
	name string
	pb   proto.Message
	wire message
}

// fresh is a new zero message of m's type.
func fresh(m message) message { return reflect.New(reflect.TypeOf(m).Elem()).Interface().(message) }

func freshPB(m proto.Message) proto.Message { return m.ProtoReflect().New().Interface() }

func ptr[T any](v T) *T { return &v }

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// nasty exercises JSON escaping: quotes, backslash, every escape class,
// HTML characters, DEL, multi-byte runes, U+2028 and U+FFFD.
const nasty = "say \"hi\"\\ \b\f\n\r\t\x00\x01\x1f\x7f <a>&amp; é 😀 \u2028 \uFFFD /"

func processPairs() []pair {
	data := func(name string, pbd *ps.ProcessEvent_DataEvent, wd *pw.ProcessEvent_DataEvent) pair {
		return pair{name,
			&ps.StartResponse{Event: &ps.ProcessEvent{Event: &ps.ProcessEvent_Data{Data: pbd}}},
			&pw.StartResponse{Event: &pw.ProcessEvent{Event: &pw.ProcessEvent_Data{Data: wd}}}}
	}
	return []pair{
		{"config full",
			&ps.ProcessConfig{Cmd: "/bin/bash", Args: []string{"-c", nasty, ""}, Envs: map[string]string{"PATH": "/bin", "A": "1", "": "", "Z": "ü", "a": nasty}, Cwd: ptr("/tmp")},
			&pw.ProcessConfig{Cmd: "/bin/bash", Args: []string{"-c", nasty, ""}, Envs: map[string]string{"PATH": "/bin", "A": "1", "": "", "Z": "ü", "a": nasty}, Cwd: ptr("/tmp")}},
		{"config optional zero",
			&ps.ProcessConfig{Cwd: ptr("")}, &pw.ProcessConfig{Cwd: ptr("")}},
		{"list empty", &ps.ListRequest{}, &pw.ListRequest{}},
		{"list response",
			&ps.ListResponse{Processes: []*ps.ProcessInfo{
				{Config: &ps.ProcessConfig{Cmd: "sleep", Args: []string{"1"}}, Pid: math.MaxUint32, Tag: ptr("t")},
				{},
				{Pid: 1, Tag: ptr("")},
			}},
			&pw.ListResponse{Processes: []*pw.ProcessInfo{
				{Config: &pw.ProcessConfig{Cmd: "sleep", Args: []string{"1"}}, Pid: math.MaxUint32, Tag: ptr("t")},
				{},
				{Pid: 1, Tag: ptr("")},
			}}},
		{"start full",
			&ps.StartRequest{Process: &ps.ProcessConfig{Cmd: "x"}, Pty: &ps.PTY{Size: &ps.PTY_Size{Cols: 80, Rows: 24}}, Tag: ptr("tag"), Stdin: ptr(false)},
			&pw.StartRequest{Process: &pw.ProcessConfig{Cmd: "x"}, Pty: &pw.PTY{Size: &pw.PTY_Size{Cols: 80, Rows: 24}}, Tag: ptr("tag"), Stdin: ptr(false)}},
		{"start empty nested",
			&ps.StartRequest{Process: &ps.ProcessConfig{}, Pty: &ps.PTY{Size: &ps.PTY_Size{}}, Stdin: ptr(true)},
			&pw.StartRequest{Process: &pw.ProcessConfig{}, Pty: &pw.PTY{Size: &pw.PTY_Size{}}, Stdin: ptr(true)}},
		{"update pid zero",
			&ps.UpdateRequest{Process: &ps.ProcessSelector{Selector: &ps.ProcessSelector_Pid{Pid: 0}}, Pty: &ps.PTY{}},
			&pw.UpdateRequest{Process: &pw.ProcessSelector{Selector: &pw.ProcessSelector_Pid{Pid: 0}}, Pty: &pw.PTY{}}},
		{"update tag empty",
			&ps.UpdateRequest{Process: &ps.ProcessSelector{Selector: &ps.ProcessSelector_Tag{Tag: ""}}},
			&pw.UpdateRequest{Process: &pw.ProcessSelector{Selector: &pw.ProcessSelector_Tag{Tag: ""}}}},
		{"selector unset", &ps.ConnectRequest{Process: &ps.ProcessSelector{}}, &pw.ConnectRequest{Process: &pw.ProcessSelector{}}},
		{"event start",
			&ps.StartResponse{Event: &ps.ProcessEvent{Event: &ps.ProcessEvent_Start{Start: &ps.ProcessEvent_StartEvent{Pid: 42}}}},
			&pw.StartResponse{Event: &pw.ProcessEvent{Event: &pw.ProcessEvent_Start{Start: &pw.ProcessEvent_StartEvent{Pid: 42}}}}},
		{"oneof member with nil message",
			&ps.ProcessEvent{Event: &ps.ProcessEvent_Start{}}, &pw.ProcessEvent{Event: &pw.ProcessEvent_Start{}}},
		{"event start zero",
			&ps.ConnectResponse{Event: &ps.ProcessEvent{Event: &ps.ProcessEvent_Start{Start: &ps.ProcessEvent_StartEvent{}}}},
			&pw.ConnectResponse{Event: &pw.ProcessEvent{Event: &pw.ProcessEvent_Start{Start: &pw.ProcessEvent_StartEvent{}}}}},
		data("stdout all bytes", &ps.ProcessEvent_DataEvent{Output: &ps.ProcessEvent_DataEvent_Stdout{Stdout: allBytes()}},
			&pw.ProcessEvent_DataEvent{Output: &pw.ProcessEvent_DataEvent_Stdout{Stdout: allBytes()}}),
		data("stderr empty", &ps.ProcessEvent_DataEvent{Output: &ps.ProcessEvent_DataEvent_Stderr{Stderr: []byte{}}},
			&pw.ProcessEvent_DataEvent{Output: &pw.ProcessEvent_DataEvent_Stderr{Stderr: nil}}),
		data("pty", &ps.ProcessEvent_DataEvent{Output: &ps.ProcessEvent_DataEvent_Pty{Pty: []byte("\x1b[31mred\r\n")}},
			&pw.ProcessEvent_DataEvent{Output: &pw.ProcessEvent_DataEvent_Pty{Pty: []byte("\x1b[31mred\r\n")}}),
		data("stdout 1 and 2 bytes", &ps.ProcessEvent_DataEvent{Output: &ps.ProcessEvent_DataEvent_Stdout{Stdout: []byte{0xff}}},
			&pw.ProcessEvent_DataEvent{Output: &pw.ProcessEvent_DataEvent_Stdout{Stdout: []byte{0xff}}}),
		data("data empty", &ps.ProcessEvent_DataEvent{}, &pw.ProcessEvent_DataEvent{}),
		{"event end",
			&ps.StartResponse{Event: &ps.ProcessEvent{Event: &ps.ProcessEvent_End{End: &ps.ProcessEvent_EndEvent{ExitCode: -1, Exited: true, Status: "signal: killed", Error: ptr("")}}}},
			&pw.StartResponse{Event: &pw.ProcessEvent{Event: &pw.ProcessEvent_End{End: &pw.ProcessEvent_EndEvent{ExitCode: -1, Exited: true, Status: "signal: killed", Error: ptr("")}}}}},
		{"event end extremes",
			&ps.ProcessEvent{Event: &ps.ProcessEvent_End{End: &ps.ProcessEvent_EndEvent{ExitCode: math.MinInt32, Error: ptr(nasty)}}},
			&pw.ProcessEvent{Event: &pw.ProcessEvent_End{End: &pw.ProcessEvent_EndEvent{ExitCode: math.MinInt32, Error: ptr(nasty)}}}},
		{"event end max",
			&ps.ProcessEvent_EndEvent{ExitCode: math.MaxInt32, Status: "exit status 2"},
			&pw.ProcessEvent_EndEvent{ExitCode: math.MaxInt32, Status: "exit status 2"}},
		{"event keepalive",
			&ps.StartResponse{Event: &ps.ProcessEvent{Event: &ps.ProcessEvent_Keepalive{Keepalive: &ps.ProcessEvent_KeepAlive{}}}},
			&pw.StartResponse{Event: &pw.ProcessEvent{Event: &pw.ProcessEvent_Keepalive{Keepalive: &pw.ProcessEvent_KeepAlive{}}}}},
		{"send input stdin",
			&ps.SendInputRequest{Process: &ps.ProcessSelector{Selector: &ps.ProcessSelector_Pid{Pid: 1234}}, Input: &ps.ProcessInput{Input: &ps.ProcessInput_Stdin{Stdin: allBytes()}}},
			&pw.SendInputRequest{Process: &pw.ProcessSelector{Selector: &pw.ProcessSelector_Pid{Pid: 1234}}, Input: &pw.ProcessInput{Input: &pw.ProcessInput_Stdin{Stdin: allBytes()}}}},
		{"send input pty empty",
			&ps.SendInputRequest{Process: &ps.ProcessSelector{Selector: &ps.ProcessSelector_Tag{Tag: nasty}}, Input: &ps.ProcessInput{Input: &ps.ProcessInput_Pty{Pty: []byte{}}}},
			&pw.SendInputRequest{Process: &pw.ProcessSelector{Selector: &pw.ProcessSelector_Tag{Tag: nasty}}, Input: &pw.ProcessInput{Input: &pw.ProcessInput_Pty{}}}},
		{"stream input start",
			&ps.StreamInputRequest{Event: &ps.StreamInputRequest_Start{Start: &ps.StreamInputRequest_StartEvent{Process: &ps.ProcessSelector{Selector: &ps.ProcessSelector_Pid{Pid: 7}}}}},
			&pw.StreamInputRequest{Event: &pw.StreamInputRequest_Start{Start: &pw.StreamInputRequest_StartEvent{Process: &pw.ProcessSelector{Selector: &pw.ProcessSelector_Pid{Pid: 7}}}}}},
		{"stream input data",
			&ps.StreamInputRequest{Event: &ps.StreamInputRequest_Data{Data: &ps.StreamInputRequest_DataEvent{Input: &ps.ProcessInput{Input: &ps.ProcessInput_Stdin{Stdin: []byte("ls\n")}}}}},
			&pw.StreamInputRequest{Event: &pw.StreamInputRequest_Data{Data: &pw.StreamInputRequest_DataEvent{Input: &pw.ProcessInput{Input: &pw.ProcessInput_Stdin{Stdin: []byte("ls\n")}}}}}},
		{"stream input keepalive",
			&ps.StreamInputRequest{Event: &ps.StreamInputRequest_Keepalive{Keepalive: &ps.StreamInputRequest_KeepAlive{}}},
			&pw.StreamInputRequest{Event: &pw.StreamInputRequest_Keepalive{Keepalive: &pw.StreamInputRequest_KeepAlive{}}}},
		{"signal kill",
			&ps.SendSignalRequest{Process: &ps.ProcessSelector{Selector: &ps.ProcessSelector_Pid{Pid: 9}}, Signal: ps.Signal_SIGNAL_SIGKILL},
			&pw.SendSignalRequest{Process: &pw.ProcessSelector{Selector: &pw.ProcessSelector_Pid{Pid: 9}}, Signal: pw.Signal_SIGNAL_SIGKILL}},
		{"signal unknown", &ps.SendSignalRequest{Signal: 99}, &pw.SendSignalRequest{Signal: 99}},
		{"signal negative", &ps.SendSignalRequest{Signal: -5}, &pw.SendSignalRequest{Signal: -5}},
		{"close stdin", &ps.CloseStdinRequest{Process: &ps.ProcessSelector{Selector: &ps.ProcessSelector_Tag{Tag: "t"}}},
			&pw.CloseStdinRequest{Process: &pw.ProcessSelector{Selector: &pw.ProcessSelector_Tag{Tag: "t"}}}},
		{"empty responses", &ps.SendSignalResponse{}, &pw.SendSignalResponse{}},
	}
}

func ts(sec int64, nanos int32) (*timestamppb.Timestamp, *wirekit.Timestamp) {
	return &timestamppb.Timestamp{Seconds: sec, Nanos: nanos}, &wirekit.Timestamp{Seconds: sec, Nanos: nanos}
}

func entry(name string, sec int64, nanos int32, size int64) (*fs.EntryInfo, *fw.EntryInfo) {
	pt, wt := ts(sec, nanos)
	md := func() map[string]string { return map[string]string{"user.x": "1", "b": nasty, "a": ""} }
	return &fs.EntryInfo{Name: name, Type: fs.FileType_FILE_TYPE_SYMLINK, Path: "/home/user/" + name, Size: size, Mode: 0o120777,
			Permissions: "Lrwxrwxrwx", Owner: "user", Group: "wheel", ModifiedTime: pt, SymlinkTarget: ptr("/etc/" + name), Metadata: md()},
		&fw.EntryInfo{Name: name, Type: fw.FileType_FILE_TYPE_SYMLINK, Path: "/home/user/" + name, Size: size, Mode: 0o120777,
			Permissions: "Lrwxrwxrwx", Owner: "user", Group: "wheel", ModifiedTime: wt, SymlinkTarget: ptr("/etc/" + name), Metadata: md()}
}

func filesystemPairs() []pair {
	var out []pair
	for _, c := range []struct {
		name  string
		sec   int64
		nanos int32
		size  int64
	}{
		{"epoch", 0, 0, 0},
		{"millis", 1704164645, 120000000, 1},
		{"micros", 1704164645, 123456000, -1},
		{"nanos", 1704164645, 1, math.MaxInt64},
		{"before epoch", -1, 999999999, math.MinInt64},
		{"year 1", -62135596800, 0, 1 << 40},
		{"year 9999", 253402300799, 999000000, 5},
	} {
		p, w := entry("f "+nasty, c.sec, c.nanos, c.size)
		out = append(out, pair{"stat " + c.name, &fs.StatResponse{Entry: p}, &fw.StatResponse{Entry: w}})
	}
	p1, w1 := entry("a", 1, 0, 10)
	p2, w2 := entry("b", 2, 500, 20)
	ptEmpty, wtEmpty := ts(0, 0)
	out = append(out, []pair{
		{"entry zero with empty timestamp", &fs.EntryInfo{ModifiedTime: ptEmpty, SymlinkTarget: ptr("")}, &fw.EntryInfo{ModifiedTime: wtEmpty, SymlinkTarget: ptr("")}},
		{"entry directory", &fs.EntryInfo{Name: "d", Type: fs.FileType_FILE_TYPE_DIRECTORY, Mode: 0o755},
			&fw.EntryInfo{Name: "d", Type: fw.FileType_FILE_TYPE_DIRECTORY, Mode: 0o755}},
		{"entry unknown type", &fs.EntryInfo{Type: 42}, &fw.EntryInfo{Type: 42}},
		{"list dir", &fs.ListDirResponse{Entries: []*fs.EntryInfo{p1, {}, p2}}, &fw.ListDirResponse{Entries: []*fw.EntryInfo{w1, {}, w2}}},
		{"list dir request", &fs.ListDirRequest{Path: "/", Depth: 3}, &fw.ListDirRequest{Path: "/", Depth: 3}},
		{"move", &fs.MoveRequest{Source: "/a", Destination: nasty}, &fw.MoveRequest{Source: "/a", Destination: nasty}},
		{"move response", &fs.MoveResponse{Entry: &fs.EntryInfo{}}, &fw.MoveResponse{Entry: &fw.EntryInfo{}}},
		{"make dir", &fs.MakeDirResponse{Entry: p1}, &fw.MakeDirResponse{Entry: w1}},
		{"remove", &fs.RemoveRequest{Path: "/x"}, &fw.RemoveRequest{Path: "/x"}},
		{"watch dir request", &fs.WatchDirRequest{Path: "/w", Recursive: true, IncludeEntry: true, AllowNetworkMounts: true},
			&fw.WatchDirRequest{Path: "/w", Recursive: true, IncludeEntry: true, AllowNetworkMounts: true}},
		{"create watcher", &fs.CreateWatcherRequest{Path: "/w", IncludeEntry: true}, &fw.CreateWatcherRequest{Path: "/w", IncludeEntry: true}},
		{"create watcher response", &fs.CreateWatcherResponse{WatcherId: "abc-123"}, &fw.CreateWatcherResponse{WatcherId: "abc-123"}},
		{"watch start", &fs.WatchDirResponse{Event: &fs.WatchDirResponse_Start{Start: &fs.WatchDirResponse_StartEvent{}}},
			&fw.WatchDirResponse{Event: &fw.WatchDirResponse_Start{Start: &fw.WatchDirResponse_StartEvent{}}}},
		{"watch keepalive", &fs.WatchDirResponse{Event: &fs.WatchDirResponse_Keepalive{Keepalive: &fs.WatchDirResponse_KeepAlive{}}},
			&fw.WatchDirResponse{Event: &fw.WatchDirResponse_Keepalive{Keepalive: &fw.WatchDirResponse_KeepAlive{}}}},
		{"watch event", &fs.WatchDirResponse{Event: &fs.WatchDirResponse_Filesystem{Filesystem: &fs.FilesystemEvent{Name: "x", Type: fs.EventType_EVENT_TYPE_CHMOD, Entry: p2}}},
			&fw.WatchDirResponse{Event: &fw.WatchDirResponse_Filesystem{Filesystem: &fw.FilesystemEvent{Name: "x", Type: fw.EventType_EVENT_TYPE_CHMOD, Entry: w2}}}},
		{"watch event empty", &fs.WatchDirResponse{Event: &fs.WatchDirResponse_Filesystem{Filesystem: &fs.FilesystemEvent{Entry: &fs.EntryInfo{}}}},
			&fw.WatchDirResponse{Event: &fw.WatchDirResponse_Filesystem{Filesystem: &fw.FilesystemEvent{Entry: &fw.EntryInfo{}}}}},
		{"watcher events", &fs.GetWatcherEventsResponse{Events: []*fs.FilesystemEvent{{Name: "a", Type: fs.EventType_EVENT_TYPE_CREATE}, {Type: 77}, {}}},
			&fw.GetWatcherEventsResponse{Events: []*fw.FilesystemEvent{{Name: "a", Type: fw.EventType_EVENT_TYPE_CREATE}, {Type: 77}, {}}}},
		{"remove watcher", &fs.RemoveWatcherRequest{WatcherId: "w"}, &fw.RemoveWatcherRequest{WatcherId: "w"}},
		{"remove watcher response", &fs.RemoveWatcherResponse{}, &fw.RemoveWatcherResponse{}},
	}...)
	return out
}

func allPairs() []pair { return append(processPairs(), filesystemPairs()...) }
