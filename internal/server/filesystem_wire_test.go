package server

import (
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sandboxd/envd/internal/filesystem"
	fspb "github.com/sandboxd/envd/internal/gen/filesystem"
)

// A file name that is not valid UTF-8 must not fail a whole listing:
// proto3 strings must be UTF-8, so the wire name is repaired, and what
// envd encodes decodes with protobuf-go in both codecs.
func TestWireEntryRepairsInvalidUTF8(t *testing.T) {
	e := wireEntry(filesystem.EntryInfo{Name: "bad\xff.bin", Path: "/tmp/bad\xff.bin", IsSymlink: true, SymlinkTarget: "/t\xfe"}, false)
	if e.Name != "bad\uFFFD.bin" || e.Path != "/tmp/bad\uFFFD.bin" || e.GetSymlinkTarget() != "/t\uFFFD" {
		t.Fatalf("entry %v", e)
	}
	var back fspb.EntryInfo
	if err := proto.Unmarshal(e.AppendProto(nil), &back); err != nil || back.Name != e.Name {
		t.Fatalf("proto: %v %v", err, &back)
	}
	if err := protojson.Unmarshal(e.AppendProtoJSON(nil), &back); err != nil || back.GetSymlinkTarget() != "/t\uFFFD" {
		t.Fatalf("json: %v %v", err, &back)
	}
	if e := wireEntry(filesystem.EntryInfo{Name: "old", ModTime: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)}, false); e.ModifiedTime != nil {
		t.Fatalf("out-of-range mtime kept: %v", e.ModifiedTime)
	}
}
