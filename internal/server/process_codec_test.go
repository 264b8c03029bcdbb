package server

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/sandboxd/envd/internal/gen/process"
)

// The fast JSON path must mean exactly what protojson writes (PROTOCOL.md
// 1.2): every message it writes decodes to the same message.
func TestProcessJSONCodecMatchesProtojson(t *testing.T) {
	data := []byte("\x00\xff€ \"quoted\" \\ and more bytes")
	events := []*pb.ProcessEvent{
		{Event: &pb.ProcessEvent_Data{Data: &pb.ProcessEvent_DataEvent{Output: &pb.ProcessEvent_DataEvent_Stdout{Stdout: data}}}},
		{Event: &pb.ProcessEvent_Data{Data: &pb.ProcessEvent_DataEvent{Output: &pb.ProcessEvent_DataEvent_Stderr{Stderr: data[:1]}}}},
		{Event: &pb.ProcessEvent_Data{Data: &pb.ProcessEvent_DataEvent{Output: &pb.ProcessEvent_DataEvent_Pty{Pty: data[:2]}}}},
		{Event: &pb.ProcessEvent_Start{Start: &pb.ProcessEvent_StartEvent{Pid: 42}}},
		{Event: &pb.ProcessEvent_End{End: &pb.ProcessEvent_EndEvent{ExitCode: -1, Status: "signal: killed", Error: proto.String("signal: killed")}}},
		{Event: &pb.ProcessEvent_Keepalive{Keepalive: &pb.ProcessEvent_KeepAlive{}}},
	}
	c := processJSONCodec{}
	for _, ev := range events {
		for _, m := range []proto.Message{&pb.StartResponse{Event: ev}, &pb.ConnectResponse{Event: ev}} {
			b, err := c.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			back := m.ProtoReflect().New().Interface()
			if err := protojson.Unmarshal(b, back); err != nil {
				t.Fatalf("%s does not parse: %v", b, err)
			}
			if !proto.Equal(back, m) {
				t.Fatalf("%s decodes to %v, want %v", b, back, m)
			}
		}
	}
	var req pb.StartRequest
	if err := c.Unmarshal([]byte(`{"process":{"cmd":"x"},"unknownField":1}`), &req); err != nil || req.GetProcess().GetCmd() != "x" {
		t.Fatalf("unknown fields must be discarded: %v", err)
	}
}
