package server

import (
	"testing"
	"time"
)

// PROTOCOL.md 4.4 / 6 #7, #8: both hyperloop spellings, volume mounts in
// snake_case, timestamps as RFC 3339 or seconds (number or numeric string),
// absent vs empty env.
func TestLifecycleDecodeInitFields(t *testing.T) {
	req, err := decodeInit([]byte(`{"hyperloopIp":"10.0.0.1","volumeMounts":[{"nfs_target":"h:/e","path":"/mnt/v"}],
		"lifecycleID":"lc","caBundle":"pem","defaultWorkdir":"/w","timestamp":"2026-05-01T12:00:00.123456789Z","accessToken":"abc"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
	if req.HyperloopIP != "10.0.0.1" || len(req.VolumeMounts) != 1 || req.VolumeMounts[0].Target != "h:/e" ||
		req.VolumeMounts[0].Path != "/mnt/v" || req.LifecycleID != "lc" || req.CABundle != "pem" ||
		req.DefaultWorkdir != "/w" || !req.Timestamp.Equal(want) || *req.AccessToken != "abc" || req.EnvVars != nil {
		t.Fatalf("decoded %+v", req)
	}
	req, _ = decodeInit([]byte(`{"hyperloopIP":"10.0.0.2","hyperloopIp":"10.0.0.3","envVars":{}}`))
	if req.HyperloopIP != "10.0.0.2" || req.EnvVars == nil || len(req.EnvVars) != 0 {
		t.Fatalf("E2B spelling wins; empty envVars is present: %+v", req)
	}
	for _, ts := range []string{`1777636800`, `"1777636800"`, `1777636800.5`} {
		req, err := decodeInit([]byte(`{"timestamp":` + ts + `}`))
		if err != nil || req.Timestamp.Unix() != 1777636800 {
			t.Fatalf("timestamp %s: %v %v", ts, req.Timestamp, err)
		}
	}
	for _, bad := range []string{`{"timestamp":-1}`, `{"timestamp":"1e400"}`, `{"timestamp":true}`, `{"accessToken":"a\"b"}`} {
		if _, err := decodeInit([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// The /init and /files/compose bodies are read without encoding/json (binary
// size) but as it reads them: keys case-insensitively, null as absent,
// unknown keys ignored, last value wins, wrong types refused.
func TestLifecycleDecodeInitAsEncodingJSONDoes(t *testing.T) {
	req, err := decodeInit([]byte(`{"ACCESSTOKEN":"tok","EnvVars":{"A":"1","B":""},"defaultuser":"u",
		"unknown":{"nested":[1,2,{"x":null}]},"volumeMounts":null,"caBundle":null,"lifecycleID":"a","lifecycleID":"b"}`))
	if err != nil {
		t.Fatal(err)
	}
	if *req.AccessToken != "tok" || req.EnvVars["A"] != "1" || len(req.EnvVars) != 2 || req.DefaultUser != "u" ||
		req.VolumeMounts != nil || req.CABundle != "" || req.LifecycleID != "b" {
		t.Fatalf("decoded %+v", req)
	}
	if req, err := decodeInit([]byte(`{"envVars":null,"accessToken":null}`)); err != nil || req.EnvVars != nil || req.AccessToken != nil {
		t.Fatalf("nulls: %+v %v", req, err)
	}
	for _, bad := range []string{`{"envVars":{"A":1}}`, `{"defaultUser":5}`, `{"volumeMounts":{}}`,
		`{"volumeMounts":[{"path":1}]}`, `[]`, `{"a":1`, `{"a":1} x`, `{"accessToken":""}`} {
		if _, err := decodeInit([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestFilesDecodeComposeAsEncodingJSONDoes(t *testing.T) {
	req, err := decodeCompose([]byte(`{"source_paths":["/a","/b"],"Destination":"/c","username":"user","x":[]} trailing`))
	if err != nil || len(req.SourcePaths) != 2 || req.SourcePaths[1] != "/b" || req.Destination != "/c" || *req.Username != "user" {
		t.Fatalf("decoded %+v %v", req, err)
	}
	if req, err := decodeCompose([]byte(`{"source_paths":null,"username":null}`)); err != nil || req.SourcePaths != nil || req.Username != nil {
		t.Fatalf("nulls: %+v %v", req, err)
	}
	for _, bad := range []string{`{"source_paths":"/a"}`, `{"source_paths":[1]}`, `{"username":true}`, ``, `"x"`} {
		if _, err := decodeCompose([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
