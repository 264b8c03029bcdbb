package wire

import (
	"strconv"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	fw "github.com/sandboxd/envd/internal/gen/filesystem/filesystemwire"
	ps "github.com/sandboxd/envd/internal/gen/process"
	pw "github.com/sandboxd/envd/internal/gen/process/processwire"
	"github.com/sandboxd/envd/internal/wirekit"
)

func payload32K() []byte {
	b := make([]byte, 32<<10)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func stdoutEvent() (*ps.StartResponse, *pw.StartResponse) {
	p := payload32K()
	return &ps.StartResponse{Event: &ps.ProcessEvent{Event: &ps.ProcessEvent_Data{Data: &ps.ProcessEvent_DataEvent{Output: &ps.ProcessEvent_DataEvent_Stdout{Stdout: p}}}}},
		&pw.StartResponse{Event: &pw.ProcessEvent{Event: &pw.ProcessEvent_Data{Data: &pw.ProcessEvent_DataEvent{Output: &pw.ProcessEvent_DataEvent_Stdout{Stdout: p}}}}}
}

// The hot path: process output streaming. With a reused buffer the wire
// encoders allocate nothing.
func BenchmarkAppendProtoStartResponse32K(b *testing.B) {
	pb, w := stdoutEvent()
	b.Run("wire", func(b *testing.B) {
		buf := w.AppendProto(nil)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			buf = w.AppendProto(buf[:0])
		}
	})
	b.Run("protobuf-go", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = proto.MarshalOptions{}.MarshalAppend(buf[:0], pb)
		}
	})
}

func BenchmarkAppendProtoJSONStartResponse32K(b *testing.B) {
	pb, w := stdoutEvent()
	b.Run("wire", func(b *testing.B) {
		buf := w.AppendProtoJSON(nil)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			buf = w.AppendProtoJSON(buf[:0])
		}
	})
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = protojson.Marshal(pb)
		}
	})
}

func BenchmarkUnmarshalProtoSendInput32K(b *testing.B) {
	in, err := proto.Marshal(&ps.SendInputRequest{
		Process: &ps.ProcessSelector{Selector: &ps.ProcessSelector_Pid{Pid: 1234}},
		Input:   &ps.ProcessInput{Input: &ps.ProcessInput_Stdin{Stdin: payload32K()}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("wire", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		var m pw.SendInputRequest
		for b.Loop() {
			if err := m.UnmarshalProto(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("protobuf-go", func(b *testing.B) {
		b.ReportAllocs()
		var m ps.SendInputRequest
		for b.Loop() {
			if err := proto.Unmarshal(in, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func listDir10K() *fw.ListDirResponse {
	r := &fw.ListDirResponse{}
	for i := range 10000 {
		name := "file-" + strconv.Itoa(i) + ".txt"
		r.Entries = append(r.Entries, &fw.EntryInfo{
			Name: name, Type: fw.FileType_FILE_TYPE_FILE, Path: "/home/user/dir/" + name,
			Size: int64(i) * 1031, Mode: 0o644, Permissions: "-rw-r--r--", Owner: "user", Group: "user",
			ModifiedTime: &wirekit.Timestamp{Seconds: 1700000000 + int64(i), Nanos: int32(i) * 1000},
		})
	}
	return r
}

// ListDir of a large directory: the JSON encoder of 10,000 entries.
func BenchmarkAppendProtoJSONListDir10K(b *testing.B) {
	r := listDir10K()
	buf := r.AppendProtoJSON(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendProtoJSON(buf[:0])
	}
}

func BenchmarkAppendProtoListDir10K(b *testing.B) {
	r := listDir10K()
	buf := r.AppendProto(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendProto(buf[:0])
	}
}

func BenchmarkUnmarshalProtoJSONStart(b *testing.B) {
	in := []byte(`{"process":{"cmd":"/bin/bash","args":["-l","-c","echo hello"],"envs":{"A":"1","B":"2"},"cwd":"/home/user"},"pty":{"size":{"cols":80,"rows":24}},"tag":"t1","stdin":true}`)
	b.ReportAllocs()
	var m pw.StartRequest
	for b.Loop() {
		if err := m.UnmarshalProtoJSON(in); err != nil {
			b.Fatal(err)
		}
	}
}
