package server

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sandboxd/envd/internal/filesystem"
	fspb "github.com/sandboxd/envd/internal/gen/filesystem"
)

func fsSampleEntries() []*fspb.EntryInfo {
	target := "/real/target"
	empty := ""
	return []*fspb.EntryInfo{
		{}, // every field zero: "{}"
		{Name: "a.txt", Type: fspb.FileType_FILE_TYPE_FILE, Path: "/tmp/a.txt", Size: 12, Mode: 0o644,
			Permissions: "-rw-r--r--", Owner: "root", Group: "root",
			ModifiedTime: timestamppb.New(time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC))},
		{Name: "d", Type: fspb.FileType_FILE_TYPE_DIRECTORY, ModifiedTime: timestamppb.New(time.Date(2025, 1, 2, 3, 4, 5, 120000000, time.UTC))},
		{Name: "l", SymlinkTarget: &target, ModifiedTime: timestamppb.New(time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC))},
		{Name: "e", SymlinkTarget: &empty, ModifiedTime: timestamppb.New(time.Date(2000, 1, 1, 0, 0, 0, 1000, time.UTC))},
		{Name: `quote" back\ tab	nl
 ctl` + "\x01\x1f" + ` ünï ☃ <>&`, Size: -1, Mode: 0o777,
			Metadata: map[string]string{"z": "last", "a": "first", "content-type": `text/"x"`}},
		{Name: "big", Size: 1 << 62},
	}
}

// The fast ListDir JSON must decode to exactly what protojson would have
// sent, and (without control characters) be byte-identical once
// protojson's randomised whitespace is compacted away.
func TestFilesystemJSONMatchesProtojson(t *testing.T) {
	entries := fsSampleEntries()
	for i := range 200 { // random extra entries
		r := rand.New(rand.NewPCG(uint64(i), 7))
		entries = append(entries, &fspb.EntryInfo{
			Name: strings.Repeat("x", r.IntN(5)), Type: fspb.FileType(r.IntN(4)), Size: r.Int64N(1 << 40),
			Mode: uint32(r.IntN(0o1000)), ModifiedTime: timestamppb.New(time.Unix(r.Int64N(4e9), r.Int64N(1e9)))})
	}
	for _, msg := range []*fspb.ListDirResponse{{}, {Entries: entries}} {
		got, err := fsJSONCodec{name: "json"}.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(got) {
			t.Fatalf("invalid JSON: %s", got)
		}
		var back fspb.ListDirResponse
		if err := protojson.Unmarshal(got, &back); err != nil {
			t.Fatalf("protojson rejects %s: %v", got, err)
		}
		if !proto.Equal(&back, msg) {
			t.Fatalf("round trip differs:\n got %v\nwant %v", &back, msg)
		}
		ref, _ := protojson.Marshal(msg)
		var compact bytes.Buffer
		_ = json.Compact(&compact, ref)
		if !bytes.Contains(compact.Bytes(), []byte(`\u0001`)) && compact.String() != string(got) {
			t.Fatalf("bytes differ:\n got %s\nwant %s", got, compact.Bytes())
		}
	}
	// Byte-identical for the ordinary entries.
	plain := &fspb.ListDirResponse{Entries: fsSampleEntries()[:5]}
	got, _ := fsJSONCodec{}.Marshal(plain)
	ref, _ := protojson.Marshal(plain)
	var compact bytes.Buffer
	_ = json.Compact(&compact, ref)
	if compact.String() != string(got) {
		t.Fatalf("bytes differ:\n got %s\nwant %s", got, compact.Bytes())
	}
}

func TestFilesystemJSONEntryAnswersMatchProtojson(t *testing.T) {
	for _, e := range append(fsSampleEntries()[:5], nil) {
		for _, msg := range []proto.Message{&fspb.StatResponse{Entry: e}, &fspb.MakeDirResponse{Entry: e}, &fspb.MoveResponse{Entry: e}} {
			got, err := fsJSONCodec{}.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := protojson.Marshal(msg)
			var compact bytes.Buffer
			_ = json.Compact(&compact, ref)
			if compact.String() != string(got) {
				t.Fatalf("%T bytes differ:\n got %s\nwant %s", msg, got, compact.Bytes())
			}
		}
	}
}

func TestFilesystemJSONFallsBackAndUnmarshals(t *testing.T) {
	c := fsJSONCodec{name: "json"}
	b, err := c.Marshal(&fspb.GetWatcherEventsResponse{Events: []*fspb.FilesystemEvent{{Name: "x", Type: fspb.EventType_EVENT_TYPE_WRITE}}})
	if err != nil || !strings.Contains(string(b), `"EVENT_TYPE_WRITE"`) {
		t.Fatalf("fallback marshal: %s %v", b, err)
	}
	var req fspb.ListDirRequest
	if err := c.Unmarshal([]byte(`{"path":"/x","depth":2,"newerField":true}`), &req); err != nil || req.Path != "/x" || req.Depth != 2 {
		t.Fatalf("unmarshal with unknown field: %v %v", &req, err)
	}
	if err := c.Unmarshal(nil, &req); err == nil {
		t.Fatal("empty payload accepted")
	}
}

// A file name that is not valid UTF-8 must not fail a whole listing:
// proto3 strings must be UTF-8, so the wire name is repaired.
func TestWireEntryRepairsInvalidUTF8(t *testing.T) {
	e := wireEntry(filesystem.EntryInfo{Name: "bad\xff.bin", Path: "/tmp/bad\xff.bin", IsSymlink: true, SymlinkTarget: "/t\xfe"}, false)
	if e.Name != "bad\uFFFD.bin" || e.Path != "/tmp/bad\uFFFD.bin" || e.GetSymlinkTarget() != "/t\uFFFD" {
		t.Fatalf("entry %v", e)
	}
	if _, err := proto.Marshal(e); err != nil {
		t.Fatalf("proto marshal: %v", err)
	}
	if _, err := protojson.Marshal(e); err != nil {
		t.Fatalf("protojson marshal: %v", err)
	}
	if e := wireEntry(filesystem.EntryInfo{Name: "old", ModTime: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)}, false); e.ModifiedTime != nil {
		t.Fatalf("out-of-range mtime kept: %v", e.ModifiedTime)
	}
}
