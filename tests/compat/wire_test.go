package compat

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sandboxd/envd/internal/testenv"
)

// The tests here build requests and read answers byte by byte, with field
// numbers and JSON names taken from PROTOCOL.md rather than from our
// generated code: they see envd the way a client with its own copy of the
// schema does (the host agents' generated code, the SDK's JSON codec). A
// field renumbered or renamed in proto/ passes every Go round trip but
// fails here.

// wireFields decodes one protobuf message into field number -> values
// (uint64 for varints, []byte for length-delimited).
func wireFields(t *testing.T, b []byte) map[protowire.Number][]any {
	t.Helper()
	out := map[protowire.Number][]any{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		var v any
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			t.Fatalf("field %d: unexpected wire type %d", num, typ)
		}
		if n < 0 {
			t.Fatalf("field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		out[num] = append(out[num], v)
	}
	return out
}

func one[T any](t *testing.T, f map[protowire.Number][]any, num protowire.Number) T {
	t.Helper()
	vs := f[num]
	if len(vs) != 1 {
		t.Fatalf("field %d: %d values, want 1 (fields %v)", num, len(vs), f)
	}
	v, ok := vs[0].(T)
	if !ok {
		t.Fatalf("field %d: %T, want %T", num, vs[0], v)
	}
	return v
}

func keys(f map[protowire.Number][]any) []protowire.Number {
	var ks []protowire.Number
	for k := range f {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func envelope(payload []byte) []byte {
	b := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

// rawStream posts one enveloped request and returns the response envelopes
// (data messages, then the end-of-stream JSON).
func rawStream(t *testing.T, e *testenv.Env, path, ctype string, req []byte) (msgs [][]byte, end []byte) {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, e.URL+path, bytes.NewReader(envelope(req)))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", ctype)
	r.Header.Set("Connect-Timeout-Ms", "20000")
	resp, err := e.HTTP.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ctype {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(resp.Body, hdr[:]); err != nil {
			t.Fatalf("stream ended without an end-of-stream envelope: %v", err)
		}
		p := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
		if _, err := io.ReadFull(resp.Body, p); err != nil {
			t.Fatal(err)
		}
		if hdr[0]&0x02 != 0 {
			return msgs, p
		}
		if hdr[0] != 0 {
			t.Fatalf("flags %#x: process output must never be compressed", hdr[0])
		}
		msgs = append(msgs, p)
	}
}

func rawUnary(t *testing.T, e *testenv.Env, path, ctype string, req []byte) []byte {
	t.Helper()
	resp, err := e.HTTP.Post(e.URL+path, ctype, bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

// startRequest is StartRequest{process{cmd:/bin/sh, args:[-c, script]},
// stdin:false}, encoded by hand (PROTOCOL.md 2.1).
func startRequest(script string) []byte {
	var cfg []byte
	cfg = protowire.AppendTag(cfg, 1, protowire.BytesType)
	cfg = protowire.AppendString(cfg, "/bin/sh")
	for _, a := range []string{"-c", script} {
		cfg = protowire.AppendTag(cfg, 2, protowire.BytesType)
		cfg = protowire.AppendString(cfg, a)
	}
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	req = protowire.AppendBytes(req, cfg)
	req = protowire.AppendTag(req, 4, protowire.VarintType)
	return protowire.AppendVarint(req, 0)
}

func TestWireBinaryAsForeignGeneratedCodeSeesIt(t *testing.T) {
	forFlavours(t, func(t *testing.T, flavor string) {
		e := testenv.Start(t, testenv.Options{Args: []string{"--flavor", flavor}})
		msgs, end := rawStream(t, e, "/process.Process/Start", "application/connect+proto",
			startRequest("printf hi; printf oops >&2; exit 3"))
		var kinds []protowire.Number
		var stdout, stderr []byte
		for _, m := range msgs {
			ev := wireFields(t, one[[]byte](t, wireFields(t, m), 1)) // StartResponse.event = 1
			if len(ev) != 1 {
				t.Fatalf("ProcessEvent with fields %v: the oneof has exactly one", keys(ev))
			}
			k := keys(ev)[0]
			kinds = append(kinds, k)
			body := wireFields(t, one[[]byte](t, ev, k))
			switch k {
			case 1: // start{pid = 1}
				if one[uint64](t, body, 1) == 0 {
					t.Fatal("start pid 0")
				}
			case 2: // data{stdout = 1 | stderr = 2 | pty = 3}
				for _, v := range body[1] {
					stdout = append(stdout, v.([]byte)...)
				}
				for _, v := range body[2] {
					stderr = append(stderr, v.([]byte)...)
				}
				if len(body[3]) != 0 {
					t.Fatal("pty data from a pipe process")
				}
			case 3: // end{exit_code sint32 = 1, exited = 2, status = 3, error = 4}
				if code := protowire.DecodeZigZag(one[uint64](t, body, 1)); code != 3 {
					t.Fatalf("exit_code (sint32, field 1) = %d, want 3; fields %v", code, keys(body))
				}
				if one[uint64](t, body, 2) != 1 || string(one[[]byte](t, body, 3)) != "exit status 3" || string(one[[]byte](t, body, 4)) != "exit status 3" {
					t.Fatalf("end fields %v", body)
				}
			default:
				t.Fatalf("unexpected ProcessEvent field %d", k)
			}
		}
		if string(stdout) != "hi" || string(stderr) != "oops" {
			t.Fatalf("stdout %q stderr %q", stdout, stderr)
		}
		if kinds[0] != 1 || kinds[len(kinds)-1] != 3 || string(end) != "{}" {
			t.Fatalf("event order %v, end-of-stream %s", kinds, end)
		}

		dir := t.TempDir()
		path := filepath.Join(dir, "f.txt")
		if err := os.WriteFile(path, []byte("hello"), 0o640); err != nil {
			t.Fatal(err)
		}
		mtime := time.Unix(1700000000, 250)
		os.Chtimes(path, mtime, mtime)
		req := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), path)
		entry := wireFields(t, one[[]byte](t, wireFields(t, rawUnary(t, e, "/filesystem.Filesystem/Stat", "application/proto", req)), 1))
		if string(one[[]byte](t, entry, 1)) != "f.txt" || one[uint64](t, entry, 2) != 1 || string(one[[]byte](t, entry, 3)) != path ||
			one[uint64](t, entry, 4) != 5 || one[uint64](t, entry, 5) != 0o640 || string(one[[]byte](t, entry, 6)) != "-rw-r-----" ||
			string(one[[]byte](t, entry, 7)) != "root" || string(one[[]byte](t, entry, 8)) != "root" {
			t.Fatalf("EntryInfo fields: %v", entry)
		}
		ts := wireFields(t, one[[]byte](t, entry, 9)) // Timestamp{seconds = 1, nanos = 2}
		if one[uint64](t, ts, 1) != 1700000000 || one[uint64](t, ts, 2) != 250 {
			t.Fatalf("modified_time %v", ts)
		}
	})
}

// The JS SDK's view: Connect JSON with lowerCamelCase names, int64 as
// strings, enums by name, bytes in base64 (PROTOCOL.md 1.2).
func TestWireJSONAsTheSDKSeesIt(t *testing.T) {
	forFlavours(t, func(t *testing.T, flavor string) {
		e := testenv.Start(t, testenv.Options{Args: []string{"--flavor", flavor}})
		msgs, end := rawStream(t, e, "/process.Process/Start", "application/connect+json",
			[]byte(`{"process":{"cmd":"/bin/sh","args":["-c","printf hi; exit 3"]},"stdin":false}`))
		var got []string
		for _, m := range msgs {
			var ev struct {
				Event map[string]json.RawMessage `json:"event"`
			}
			if err := json.Unmarshal(m, &ev); err != nil || len(ev.Event) != 1 {
				t.Fatalf("event %s: %v", m, err)
			}
			for k, v := range ev.Event {
				if k == "data" {
					var d struct{ Stdout string }
					json.Unmarshal(v, &d)
					b, _ := base64.StdEncoding.DecodeString(d.Stdout)
					got = append(got, "data:"+string(b))
					continue
				}
				if k == "start" {
					var s map[string]any
					json.Unmarshal(v, &s)
					if pid, ok := s["pid"].(float64); !ok || pid <= 0 {
						t.Fatalf("start %s: pid must be a JSON number", v)
					}
					v = []byte("{}")
				}
				var c bytes.Buffer // protojson varies its spacing on purpose
				if err := json.Compact(&c, v); err != nil {
					t.Fatal(err)
				}
				got = append(got, k+":"+c.String())
			}
		}
		want := []string{"start:{}", "data:hi", `end:{"exitCode":3,"exited":true,"status":"exit status 3","error":"exit status 3"}`}
		if !slices.Equal(got, want) || string(end) != "{}" {
			t.Fatalf("JSON stream:\n got %q\nwant %q (end %s)", got, want, end)
		}

		path := filepath.Join(t.TempDir(), "f.txt")
		os.WriteFile(path, []byte("hello"), 0o644)
		mtime := time.Date(2025, 1, 1, 0, 0, 0, 123000000, time.UTC)
		os.Chtimes(path, mtime, mtime)
		b := rawUnary(t, e, "/filesystem.Filesystem/Stat", "application/json", []byte(`{"path":"`+path+`"}`))
		var stat struct{ Entry map[string]any }
		if err := json.Unmarshal(b, &stat); err != nil {
			t.Fatal(err)
		}
		wantEntry := map[string]any{"name": "f.txt", "type": "FILE_TYPE_FILE", "path": path, "size": "5", "mode": float64(0o644),
			"permissions": "-rw-r--r--", "owner": "root", "group": "root", "modifiedTime": "2025-01-01T00:00:00.123Z"}
		for k, v := range wantEntry {
			if stat.Entry[k] != v {
				t.Errorf("entry %q = %#v, want %#v (body %s)", k, stat.Entry[k], v, b)
			}
		}
		if len(stat.Entry) != len(wantEntry) {
			t.Errorf("entry has fields %v, want exactly %v", stat.Entry, wantEntry)
		}
		// Requests accept snake_case too, and unknown fields are ignored.
		b = rawUnary(t, e, "/filesystem.Filesystem/ListDir", "application/json", []byte(`{"path":"`+filepath.Dir(path)+`","depth":1,"future_field":true}`))
		if !bytes.Contains(b, []byte(`"entries":[{"name":"f.txt"`)) {
			t.Fatalf("ListDir JSON %s", b)
		}
	})
}
