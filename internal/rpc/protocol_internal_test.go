package rpc

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Deadlines as connect-go reads them: Connect-Timeout-Ms up to 10 digits;
// grpc-timeout up to 8 digits and a unit; bad values are invalid_argument.
func TestTimeoutHeaders(t *testing.T) {
	cases := []struct {
		p        protocol
		hdr, val string
		want     time.Duration
		ok, bad  bool
	}{
		{protoConnectUnary, hdrConnectTimeout, "", 0, false, false},
		{protoConnectUnary, hdrConnectTimeout, "1500", 1500 * time.Millisecond, true, false},
		{protoConnectStream, hdrConnectTimeout, "0", 0, true, false},
		{protoConnectUnary, hdrConnectTimeout, "12345678901", 0, false, true},
		{protoConnectUnary, hdrConnectTimeout, "-1", 0, false, true},
		{protoConnectUnary, hdrConnectTimeout, "1e3", 0, false, true},
		{protoGRPC, hdrGRPCTimeout, "2H", 2 * time.Hour, true, false},
		{protoGRPC, hdrGRPCTimeout, "3M", 3 * time.Minute, true, false},
		{protoGRPC, hdrGRPCTimeout, "4S", 4 * time.Second, true, false},
		{protoGRPCWeb, hdrGRPCTimeout, "5m", 5 * time.Millisecond, true, false},
		{protoGRPC, hdrGRPCTimeout, "6u", 6 * time.Microsecond, true, false},
		{protoGRPC, hdrGRPCTimeout, "7n", 7, true, false},
		{protoGRPC, hdrGRPCTimeout, "99999999S", 99999999 * time.Second, true, false},
		{protoGRPC, hdrGRPCTimeout, "100000000S", 0, false, true},
		{protoGRPC, hdrGRPCTimeout, "5x", 0, false, true},
		{protoGRPC, hdrGRPCTimeout, "S", 0, false, true},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.val != "" {
			h.Set(c.hdr, c.val)
		}
		d, ok, err := c.p.timeout(h)
		if (err != nil) != c.bad || ok != c.ok || d != c.want {
			t.Errorf("%s %q: %v %v %v", c.hdr, c.val, d, ok, err)
		}
		if err != nil && err.Code() != CodeInvalidArgument {
			t.Errorf("%s %q: code %v", c.hdr, c.val, err.Code())
		}
	}
}

// A bidi procedure over HTTP/1.1 would leave a full-duplex client hanging:
// 505 and the connection closed, as connect-go answers.
func TestBidiOverHTTP1IsRefused(t *testing.T) {
	_, v1, _, _ := NewReflection(nil)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", nil)
	req.Header.Set("Content-Type", "application/grpc")
	v1.ServeHTTP(rec, req)
	if rec.Code != http.StatusHTTPVersionNotSupported || rec.Header().Get("Connection") != "close" {
		t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
	}
}

// gRPC-Web ends with a trailer block (flag 0x80) of lowercase
// "key: value" lines; gRPC messages are percent-encoded.
func TestGRPCWebTrailerBlock(t *testing.T) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/x.Y/Z", nil)
	req.Header.Set("Content-Type", "application/grpc-web+proto")
	e := NewError(CodeNotFound, errNoJSON)
	e.Meta().Set("X-Why", "gone")
	WriteError(rec, req, e)
	body := rec.Body.Bytes()
	want := "grpc-message: gRPC reflection supports the binary codec only\r\ngrpc-status: 5\r\nx-why: gone\r\n"
	if rec.Code != 200 || len(body) < 5 || body[0] != flagTrailer || string(body[5:]) != want {
		t.Fatalf("status %d body %q", rec.Code, body)
	}
	if got := grpcPercentEncode("50% done\n✓"); got != "50%25 done%0A%E2%9C%93" {
		t.Fatalf("percent-encoded %q", got)
	}
}
