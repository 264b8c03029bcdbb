package wire

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	fs "github.com/sandboxd/envd/internal/gen/filesystem"
	fw "github.com/sandboxd/envd/internal/gen/filesystem/filesystemwire"
	ps "github.com/sandboxd/envd/internal/gen/process"
	pw "github.com/sandboxd/envd/internal/gen/process/processwire"
	"github.com/sandboxd/envd/internal/wirekit"
)

// compact drops insignificant whitespace (protojson adds some at random).
func compact(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return out.Bytes()
}

func TestAppendProtoJSONMatchesProtojson(t *testing.T) {
	for _, c := range allPairs() {
		want, err := protojson.Marshal(c.pb)
		if err != nil {
			t.Fatal(err)
		}
		got := c.wire.AppendProtoJSON(nil)
		if !bytes.Equal(compact(t, got), compact(t, want)) {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, want)
		}
	}
}

func TestAppendProtoJSONHandBuilt(t *testing.T) {
	for _, c := range []struct {
		m    message
		want string
	}{
		{&pw.ProcessEvent{Event: &pw.ProcessEvent_Data{Data: &pw.ProcessEvent_DataEvent{Output: &pw.ProcessEvent_DataEvent_Stdout{Stdout: []byte{0xfb, 0xff}}}}},
			`{"data":{"stdout":"+/8="}}`},
		{&pw.ProcessEvent_EndEvent{ExitCode: -2, Exited: true, Error: new(string)}, `{"exitCode":-2,"exited":true,"error":""}`},
		{&pw.ProcessConfig{Args: []string{"<&>\u2028\x00\x7f"}, Envs: map[string]string{"b": "", "a": "\"\\"}},
			`{"args":["<&>` + "\u2028" + `\u0000` + "\x7f" + `"],"envs":{"a":"\"\\","b":""}}`},
		{&pw.SendSignalRequest{Signal: 99}, `{"signal":99}`},
		{&pw.SendSignalRequest{Signal: pw.Signal_SIGNAL_SIGTERM}, `{"signal":"SIGNAL_SIGTERM"}`},
		{&fw.EntryInfo{Size: -5, ModifiedTime: &wirekit.Timestamp{Seconds: 1704164645, Nanos: 120000000}},
			`{"size":"-5","modifiedTime":"2024-01-02T03:04:05.120Z"}`},
		{&pw.StartRequest{Pty: &pw.PTY{}}, `{"pty":{}}`},
		{(*pw.StartRequest)(nil), `{}`},
	} {
		if got := string(c.m.AppendProtoJSON(nil)); got != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
	}
}

func TestUnmarshalProtoJSONReadsProtojsonOutput(t *testing.T) {
	for _, c := range allPairs() {
		want := marshalPB(t, c.pb)
		for _, opts := range []protojson.MarshalOptions{{}, {UseProtoNames: true}, {EmitUnpopulated: true, Multiline: true}, {UseEnumNumbers: true}} {
			in, err := opts.Marshal(c.pb)
			if err != nil {
				t.Fatal(err)
			}
			w := fresh(c.wire)
			if err := w.UnmarshalProtoJSON(in); err != nil {
				t.Errorf("%s: %s: %v", c.name, in, err)
				continue
			}
			if got := w.AppendProto(nil); !bytes.Equal(got, want) {
				t.Errorf("%s: from %s\n got %x\nwant %x", c.name, in, got, want)
			}
		}
	}
}

// jsonAgree decodes in with protojson (DiscardUnknown) and the wire type;
// both must fail or both succeed with the same message.
func jsonAgree(t *testing.T, pb proto.Message, wire message, in string) (ok bool) {
	t.Helper()
	p, w := freshPB(pb), fresh(wire)
	perr := protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal([]byte(in), p)
	werr := w.UnmarshalProtoJSON([]byte(in))
	if perr == nil && werr != nil && !json.Valid([]byte(in)) {
		// protojson is laxer than RFC 8259 in places (it takes "0e}" as a
		// number); the wire decoder is not.
		return false
	}
	if (perr == nil) != (werr == nil) {
		t.Errorf("%T %s: protojson err %v, wire err %v", wire, in, perr, werr)
		return false
	}
	if perr != nil {
		return false
	}
	if got, want := w.AppendProto(nil), marshalPB(t, p); !bytes.Equal(got, want) {
		t.Errorf("%T %s: wire decoded %x, protojson %x", wire, in, got, want)
	}
	return true
}

func TestUnmarshalProtoJSONVariants(t *testing.T) {
	cfg := func() (proto.Message, message) { return &ps.ProcessConfig{}, &pw.ProcessConfig{} }
	end := func() (proto.Message, message) { return &ps.ProcessEvent_EndEvent{}, &pw.ProcessEvent_EndEvent{} }
	ev := func() (proto.Message, message) { return &ps.ProcessEvent{}, &pw.ProcessEvent{} }
	sig := func() (proto.Message, message) { return &ps.SendSignalRequest{}, &pw.SendSignalRequest{} }
	in := func() (proto.Message, message) { return &ps.SendInputRequest{}, &pw.SendInputRequest{} }
	ent := func() (proto.Message, message) { return &fs.EntryInfo{}, &fw.EntryInfo{} }
	ls := func() (proto.Message, message) { return &fs.ListDirRequest{}, &fw.ListDirRequest{} }
	for _, c := range []struct {
		msg     func() (proto.Message, message)
		in      string
		wantErr bool
	}{
		// Names, nulls, whitespace, unknown fields.
		{end, `{"exit_code": -3, "exited": true}`, false},
		{end, " {\n\t\"exitCode\" : \"7\" , \"status\":null, \"error\": null}\r\n", false},
		{end, `{"exitCode":1,"exit_code":2}`, true},
		{end, `{"status":"a","status":"b"}`, true},
		{end, `{"status":null,"status":"b"}`, true},
		{end, `{"unknown":{"a":[1,2.5e3,true,false,null,"x",{}]},"exited":true,"more":[]}`, false},
		{end, `{"unknown":[1,]}`, true},
		{end, `{"unknown":tru}`, true},
		{end, `{"unknown":"\x"}`, true},
		{end, `{"Exited":true}`, false},
		{end, `{}`, false},
		{end, `null`, true},
		{end, `[]`, true},
		{end, `{"exited":true} {}`, true},
		{end, `{"exited":true}x`, true},
		{end, `{"exited":true,}`, true},
		{end, `{,"exited":true}`, true},
		{end, `{"exited" true}`, true},
		{end, `{"exited":true`, true},
		{end, `{exited:true}`, true},
		{end, `{'exited':true}`, true},
		{end, ``, true},
		// Integers.
		{end, `{"exitCode":1.0}`, false},
		{end, `{"exitCode":1e2}`, false},
		{end, `{"exitCode":"1.50e1"}`, false},
		{end, `{"exitCode":-0}`, false},
		{end, `{"exitCode":1.5}`, true},
		{end, `{"exitCode":2147483648}`, true},
		{end, `{"exitCode":-2147483648}`, false},
		{end, `{"exitCode":" 1"}`, true},
		{end, `{"exitCode":"0x10"}`, true},
		{end, `{"exitCode":01}`, true},
		{end, `{"exitCode":+1}`, true},
		{end, `{"exitCode":1e-1}`, true},
		{end, `{"exitCode":100e-2}`, false},
		{end, `{"exitCode":true}`, true},
		{end, `{"exitCode":"1e99999999999"}`, true},
		{end, `{"exitCode":0e99999999999}`, false},
		{ent, `{"size":"9223372036854775807","mode":4294967295}`, false},
		{ent, `{"size":-9223372036854775808}`, false},
		{ent, `{"size":9223372036854775808}`, true},
		{ent, `{"mode":-1}`, true},
		{ent, `{"mode":"-0"}`, false},
		{ent, `{"mode":4294967296}`, true},
		{ls, `{"depth":"3"}`, false},
		// Booleans and strings.
		{end, `{"exited":"true"}`, true},
		{end, `{"exited":1}`, true},
		{end, `{"status":"\u00e9\ud83d\ude00\n\/\"\\\b\f\r\t"}`, false},
		{end, `{"status":"\ud83d"}`, true},
		{end, `{"status":"\ud83dx"}`, true},
		{end, `{"status":"\ude00\ud83d"}`, true},
		{end, "{\"status\":\"a\x01\"}", true},
		{end, "{\"status\":\"\xff\"}", true},
		{end, `{"status":5}`, true},
		// Enums.
		{sig, `{"signal":"SIGNAL_SIGKILL"}`, false},
		{sig, `{"signal":15}`, false},
		{sig, `{"signal":12345}`, false},
		{sig, `{"signal":"SIGNAL_NOPE"}`, false},
		{sig, `{"signal":"9"}`, false},
		{sig, `{"signal":1.5}`, true},
		{sig, `{"signal":true}`, true},
		{sig, `{"signal":null}`, false},
		// Oneofs and bytes.
		{ev, `{"start":{"pid":1},"end":{}}`, true},
		{ev, `{"start":null,"end":{"exited":true}}`, false},
		{ev, `{"data":{"stdout":"-_8"}}`, false},
		{ev, `{"data":{"stdout":"+/8="}}`, false},
		{ev, `{"data":{"stdout":"+/8"}}`, false},
		{ev, `{"data":{"stdout":"-_8="}}`, false},
		{ev, `{"data":{"stdout":"!!"}}`, true},
		{ev, `{"data":{"stdout":"", "stderr":""}}`, true},
		{ev, `{"data":{"pty":null, "stderr":"AA=="}}`, false},
		{ev, `{"data":[]}`, true},
		{in, `{"process":{"tag":"t"},"input":{"stdin":"aGVsbG8K"}}`, false},
		{in, `{"process":{"pid":"12"}}`, false},
		{in, `{"process":{"pid":1,"tag":"t"}}`, true},
		// Repeated and maps.
		{cfg, `{"args":["a",null]}`, true},
		{cfg, `{"args":null,"envs":null}`, false},
		{cfg, `{"args":[],"envs":{}}`, false},
		{cfg, `{"args":"a"}`, true},
		{cfg, `{"envs":{"a":"1","a":"2"}}`, true},
		{cfg, `{"envs":{"a":null}}`, true},
		{cfg, `{"envs":{"a":1}}`, true},
		{cfg, `{"envs":{"":"", "\u00e9":"x"}}`, false},
		{cfg, `{"cwd":""}`, false},
		// Timestamps.
		{ent, `{"modifiedTime":"2024-01-02T03:04:05Z"}`, false},
		{ent, `{"modifiedTime":"2024-01-02T03:04:05.1+01:30"}`, false},
		{ent, `{"modifiedTime":"2024-01-02T03:04:05.123456789-07:00"}`, false},
		{ent, `{"modifiedTime":"2024-01-02T03:04:05.1234567891Z"}`, true},
		{ent, `{"modifiedTime":"2024-01-02 03:04:05Z"}`, true},
		{ent, `{"modifiedTime":"0000-12-31T23:59:59Z"}`, true},
		{ent, `{"modifiedTime":"0001-01-01T00:00:00Z"}`, false},
		{ent, `{"modifiedTime":1}`, true},
		{ent, `{"modifiedTime":{}}`, true},
		{ent, `{"modifiedTime":null}`, false},
		{ent, `{"metadata":{"k":"v"},"symlinkTarget":"","symlink_target":""}`, true},
	} {
		pb, wire := c.msg()
		ok := jsonAgree(t, pb, wire, c.in)
		if ok == c.wantErr {
			t.Errorf("%T %s: decoded %v, want error %v", wire, c.in, ok, c.wantErr)
		}
	}
}

func TestUnmarshalProtoJSONStrictSyntax(t *testing.T) {
	// protojson accepts an exponent without digits before a delimiter.
	for _, in := range []string{`{"unknown":0e}`, `{"exitCode":1E+}`, `{"exitCode":1.}`} {
		if err := new(pw.ProcessEvent_EndEvent).UnmarshalProtoJSON([]byte(in)); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}

func TestUnmarshalProtoJSONDeepNesting(t *testing.T) {
	in := `{"unknown":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	if err := new(pw.ListRequest).UnmarshalProtoJSON([]byte(in)); err == nil {
		t.Error("20000 nested arrays accepted")
	}
	in = `{"unknown":` + strings.Repeat(`{"a":`, 500) + "1" + strings.Repeat("}", 500) + `}`
	if err := new(pw.ListRequest).UnmarshalProtoJSON([]byte(in)); err != nil {
		t.Errorf("500 nested objects: %v", err)
	}
}
