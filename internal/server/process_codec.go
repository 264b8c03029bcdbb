package server

import (
	"encoding/base64"

	pb "github.com/sandboxd/envd/internal/gen/process"
)

// processJSONCodec is the process service's "json" codec. It writes output
// data events itself, `{"event":{"data":{"stdout":"<base64>"}}}`, exactly
// what protojson writes for them (PROTOCOL.md 1.2) but several times
// faster, and hands every other message to protojson as connect-go's own
// JSON codec does (unknown request fields are discarded).
type processJSONCodec struct{}

func (processJSONCodec) Name() string { return "json" }

func (c processJSONCodec) Marshal(m any) ([]byte, error) { return c.MarshalAppend(nil, m) }

func (processJSONCodec) MarshalAppend(dst []byte, m any) ([]byte, error) {
	var ev *pb.ProcessEvent
	switch v := m.(type) {
	case *pb.StartResponse:
		ev = v.GetEvent()
	case *pb.ConnectResponse:
		ev = v.GetEvent()
	}
	if d := ev.GetData(); d != nil {
		name, data := "", []byte(nil)
		switch o := d.GetOutput().(type) {
		case *pb.ProcessEvent_DataEvent_Stdout:
			name, data = "stdout", o.Stdout
		case *pb.ProcessEvent_DataEvent_Stderr:
			name, data = "stderr", o.Stderr
		case *pb.ProcessEvent_DataEvent_Pty:
			name, data = "pty", o.Pty
		}
		if name != "" {
			dst = append(dst, `{"event":{"data":{"`...)
			dst = append(dst, name...)
			dst = append(dst, `":"`...)
			dst = base64.StdEncoding.AppendEncode(dst, data)
			return append(dst, `"}}}`...), nil
		}
	}
	return protoJSONAppend(dst, m)
}

func (processJSONCodec) Unmarshal(b []byte, m any) error { return protoJSONUnmarshal(b, m) }
