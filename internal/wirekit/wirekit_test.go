package wirekit

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestVarintMatchesProtowire(t *testing.T) {
	var vals []uint64
	for i := range 64 {
		vals = append(vals, 1<<i-1, 1<<i, 1<<i+1)
	}
	vals = append(vals, math.MaxUint64)
	for _, v := range vals {
		want := protowire.AppendVarint(nil, v)
		if got := AppendVarint(nil, v); !bytes.Equal(got, want) {
			t.Errorf("AppendVarint(%d) = %x, want %x", v, got, want)
		}
		if got := SizeVarint(v); got != len(want) {
			t.Errorf("SizeVarint(%d) = %d, want %d", v, got, len(want))
		}
		for i := 0; i <= len(want); i++ {
			gv, gn := ConsumeVarint(want[:i])
			wv, wn := protowire.ConsumeVarint(want[:i])
			if gv != wv || (gn < 0) != (wn < 0) || gn >= 0 && gn != wn {
				t.Errorf("ConsumeVarint(%x) = %d, %d; protowire %d, %d", want[:i], gv, gn, wv, wn)
			}
		}
	}
	for _, in := range [][]byte{
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00},
		{0x80, 0x00},
	} {
		_, gn := ConsumeVarint(in)
		_, wn := protowire.ConsumeVarint(in)
		if (gn < 0) != (wn < 0) {
			t.Errorf("ConsumeVarint(%x) n = %d, protowire %d", in, gn, wn)
		}
	}
	for _, v := range []int64{0, 1, -1, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64} {
		if EncodeZigZag(v) != protowire.EncodeZigZag(v) || DecodeZigZag(EncodeZigZag(v)) != v {
			t.Errorf("zigzag %d", v)
		}
	}
}

func TestAppendJSONStringMatchesProtojson(t *testing.T) {
	var sb strings.Builder
	for r := rune(0); r < 0x3000; r++ {
		sb.WriteRune(r)
	}
	sb.WriteString("😀\U0010FFFF")
	all := sb.String()
	for _, s := range []string{"", "plain", all, all[:1000], "\"\\", "\x00", "<script>&amp;</script>"} {
		want, err := protojson.Marshal(wrapperspb.String(s))
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("AppendJSONString(%.40q) = %.80s, want %.80s", s, got, want)
		}
	}
	// Invalid UTF-8 becomes U+FFFD instead of failing (documented).
	if got := string(AppendJSONString(nil, "a\xffb\xc3")); got != "\"a\uFFFDb\uFFFD\"" || !utf8.ValidString(got) {
		t.Errorf("invalid UTF-8 written as %q", got)
	}
}

func TestTimestampJSON(t *testing.T) {
	for _, c := range []struct {
		sec   int64
		nanos int32
		want  string
	}{
		{0, 0, `"1970-01-01T00:00:00Z"`},
		{1704164645, 0, `"2024-01-02T03:04:05Z"`},
		{1704164645, 120000000, `"2024-01-02T03:04:05.120Z"`},
		{1704164645, 123456000, `"2024-01-02T03:04:05.123456Z"`},
		{1704164645, 100, `"2024-01-02T03:04:05.000000100Z"`},
		{-1, 999999999, `"1969-12-31T23:59:59.999999999Z"`},
	} {
		ts := &Timestamp{Seconds: c.sec, Nanos: c.nanos}
		got := string(ts.AppendProtoJSON(nil))
		want, _ := protojson.Marshal(&timestamppb.Timestamp{Seconds: c.sec, Nanos: c.nanos})
		if got != c.want || got != string(want) {
			t.Errorf("%d.%09d: got %s, want %s (protojson %s)", c.sec, c.nanos, got, c.want, want)
		}
		var back Timestamp
		if err := back.UnmarshalProtoJSON([]byte(got)); err != nil || back != *ts {
			t.Errorf("%s read back as %+v, %v", got, back, err)
		}
		var bin Timestamp
		if err := bin.UnmarshalProto(ts.AppendProto(nil)); err != nil || bin != *ts {
			t.Errorf("binary round trip of %+v: %+v, %v", ts, bin, err)
		}
	}
	var off Timestamp
	if err := off.UnmarshalProtoJSON([]byte(`"2024-01-02T05:04:05.5+02:00"`)); err != nil || off.AsTime() != time.Date(2024, 1, 2, 3, 4, 5, 5e8, time.UTC) {
		t.Errorf("offset timestamp: %v, %v", off.AsTime(), err)
	}
	now := time.Now()
	if got := NewTimestamp(now).AsTime(); !got.Equal(now) || got.Location() != time.UTC {
		t.Errorf("NewTimestamp(%v).AsTime() = %v", now, got)
	}
	var nilTS *Timestamp
	if nilTS.GetSeconds() != 0 || nilTS.GetNanos() != 0 || nilTS.SizeProto() != 0 || len(nilTS.AppendProto(nil)) != 0 {
		t.Error("nil Timestamp is not empty")
	}
}

func TestNumberLen(t *testing.T) {
	for in, want := range map[string]int{
		"0": 1, "-0": 2, "12": 2, "1.5": 3, "1.": 1, "1.e5": 1, "1e5": 3, "1E+5": 4, "1e-": 1, "01": 1,
		"-": 0, "+1": 0, ".5": 0, "1.5e3x": 5, "": 0, "-a": 0,
	} {
		if got := numberLen(in); got != want {
			t.Errorf("numberLen(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestJSONDecoderErrorsCarryOffsets(t *testing.T) {
	d := NewJSONDecoder([]byte(`  {"a" 1}`))
	if err := d.ObjectStart(); err != nil {
		t.Fatal(err)
	}
	_, _, err := d.Member(true)
	if err == nil || !strings.Contains(err.Error(), "offset 7") {
		t.Errorf("err = %v, want one at offset 7", err)
	}
}
