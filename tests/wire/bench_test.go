package wire

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	ps "github.com/sandboxd/envd/internal/gen/process"
	pw "github.com/sandboxd/envd/internal/gen/process/processwire"
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
