package daemon_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	pb "github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/testenv"
)

// BEHAVIOR.md 1.6: --cmd runs through the process table as Wrenn-Go did
// (shell -l -c CMD, tag "startCmd"), so a client can reach it by tag and
// read its exit code even after it ended (exit retention).
func TestBootCmdIsTaggedAndConnectable(t *testing.T) {
	e := testenv.Start(t, testenv.Options{Args: []string{"--cmd", "exit 7"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := e.Process(testenv.Codecs[0]).Connect(ctx, connect.NewRequest(&pb.ConnectRequest{
		Process: &pb.ProcessSelector{Selector: &pb.ProcessSelector_Tag{Tag: "startCmd"}}}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	for stream.Receive() {
		if end := stream.Msg().GetEvent().GetEnd(); end != nil {
			if end.GetExitCode() != 7 {
				t.Fatalf("--cmd end %v", end)
			}
			return
		}
	}
	t.Fatalf("no end event for --cmd: %v", stream.Err())
}
