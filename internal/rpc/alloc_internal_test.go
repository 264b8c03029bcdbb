package rpc

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/sandboxd/envd/internal/wirekit"
)

// A long output stream reuses pooled envelope buffers: sending data events
// of any size up to the process read size (256 KiB) allocates nothing once
// the pool has grown.
func TestStreamSendReusesItsBuffer(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/process.Process/Start", nil)
	c := &conn{w: rec, rc: http.NewResponseController(rec), r: req, proto: protoConnectStream,
		contentType: "application/connect+proto", cfg: &config{readMax: DefaultReadMax, compressMin: 1 << 30}, pools: &pools{}}
	big, small := &blob{make([]byte, 256<<10)}, &blob{make([]byte, 100)}
	if err := send(c, big); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(50, func() {
		rec.Body.Reset()
		for _, m := range []*blob{small, big, small} {
			if err := send(c, m); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs > 0 {
		t.Fatalf("send allocates %.1f times per message", allocs)
	}
}

// blob is a message with one bytes field (1), grown to size first as the
// generated messages do.
type blob struct{ b []byte }

func (m *blob) AppendProto(b []byte) []byte {
	b = slices.Grow(b, len(m.b)+4)
	return wirekit.AppendBytesField(b, 1<<3|2, m.b)
}
func (m *blob) UnmarshalProto([]byte) error     { return nil }
func (m *blob) AppendProtoJSON(b []byte) []byte { return append(b, "{}"...) }
func (m *blob) UnmarshalProtoJSON([]byte) error { return nil }
