package wire

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	fs "github.com/sandboxd/envd/internal/gen/filesystem"
	fw "github.com/sandboxd/envd/internal/gen/filesystem/filesystemwire"
	ps "github.com/sandboxd/envd/internal/gen/process"
	pw "github.com/sandboxd/envd/internal/gen/process/processwire"
)

// fuzzTargets are the messages each fuzz input is decoded as: together
// they hold every field kind.
func fuzzTargets() []pair {
	return []pair{
		{"config", &ps.ProcessConfig{}, &pw.ProcessConfig{}},
		{"start", &ps.StartRequest{}, &pw.StartRequest{}},
		{"event", &ps.StartResponse{}, &pw.StartResponse{}},
		{"input", &ps.SendInputRequest{}, &pw.SendInputRequest{}},
		{"stream", &ps.StreamInputRequest{}, &pw.StreamInputRequest{}},
		{"signal", &ps.SendSignalRequest{}, &pw.SendSignalRequest{}},
		{"list", &ps.ListResponse{}, &pw.ListResponse{}},
		{"stat", &fs.StatResponse{}, &fw.StatResponse{}},
		{"watch", &fs.WatchDirResponse{}, &fw.WatchDirResponse{}},
	}
}

func FuzzUnmarshalProto(f *testing.F) {
	for _, c := range allPairs() {
		f.Add(marshalPB(f, c.pb))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range fuzzTargets() {
			agree(t, c.name, c.pb, c.wire, b)
		}
	})
}

func FuzzUnmarshalProtoJSON(f *testing.F) {
	for _, c := range allPairs() {
		b, err := protojson.Marshal(c.pb)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(`{"exit_code":"1e1","unknown":[{"a":null}],"data":{"stdout":"-_8"}}`)
	f.Add(`{"process":{"pid":"12"},"input":{"pty":"AA"},"modifiedTime":"2024-01-02T03:04:05.1+01:30"}`)
	f.Fuzz(func(t *testing.T, in string) {
		for _, c := range fuzzTargets() {
			jsonAgree(t, c.pb, c.wire, in)
		}
	})
}
