package wirekit

import "unsafe"

// SizeMessage is the length of the binary encoding of message p (nil: 0).
func SizeMessage(p unsafe.Pointer, m *Message) int {
	if p == nil {
		return 0
	}
	n := 0
	for i := range m.Fields {
		f := &m.Fields[i]
		switch f.Card {
		case List:
			e, c, stride := list(p, f)
			for j := 0; j < c; j++ {
				n += f.tagSize() + sizeValue(f, unsafe.Add(e, uintptr(j)*stride))
			}
		case Map:
			mp := *(*map[string]string)(at(p, f))
			if len(mp) == 0 {
				continue
			}
			for k, v := range mp {
				n += f.tagSize() + SizeBytes(2+SizeBytes(len(k))+SizeBytes(len(v)))
			}
		default:
			if v := value(p, f); v != nil {
				n += f.tagSize() + sizeValue(f, v)
			}
		}
	}
	return n
}

// tagSize is the encoded length of f's tag.
func (f *Field) tagSize() int {
	if f.Num < 16 {
		return 1
	}
	return SizeVarint(uint64(f.Num) << 3)
}

// sizeValue is the encoded length of the value of f at v, without the tag.
func sizeValue(f *Field, v unsafe.Pointer) int {
	switch f.Kind {
	case KindString:
		return SizeBytes(len(*(*string)(v)))
	case KindBytes:
		return SizeBytes(len(*(*[]byte)(v)))
	case KindMessage:
		return SizeBytes(SizeMessage(*(*unsafe.Pointer)(v), f.Msg))
	case KindTimestamp:
		return SizeBytes((*(**Timestamp)(v)).SizeProto())
	}
	return SizeVarint(varintOf(f.Kind, v))
}

// AppendMessage appends the binary encoding of message p to b: fields in
// number order, map entries by key, after growing b once for all of it.
func AppendMessage(b []byte, p unsafe.Pointer, m *Message) []byte {
	return appendMessage(Grow(b, SizeMessage(p, m)), p, m)
}

func appendMessage(b []byte, p unsafe.Pointer, m *Message) []byte {
	if p == nil {
		return b
	}
	for i := range m.Fields {
		f := m.field(i)
		switch f.Card {
		case List:
			e, c, stride := list(p, f)
			for j := 0; j < c; j++ {
				b = appendValue(b, f, unsafe.Add(e, uintptr(j)*stride))
			}
		case Map:
			mp := *(*map[string]string)(at(p, f))
			for _, k := range SortedKeys(mp) {
				v := mp[k]
				b = AppendVarint(AppendVarint(b, f.tag()), uint64(2+SizeBytes(len(k))+SizeBytes(len(v))))
				b = AppendStringField(b, 1<<3|BytesType, k)
				b = AppendStringField(b, 2<<3|BytesType, v)
			}
		default:
			if v := value(p, f); v != nil {
				b = appendValue(b, f, v)
			}
		}
	}
	return b
}

// appendValue appends the tag and the value of f at v.
func appendValue(b []byte, f *Field, v unsafe.Pointer) []byte {
	b = AppendVarint(b, f.tag())
	switch f.Kind {
	case KindString:
		s := *(*string)(v)
		return append(AppendVarint(b, uint64(len(s))), s...)
	case KindBytes:
		s := *(*[]byte)(v)
		return append(AppendVarint(b, uint64(len(s))), s...)
	case KindMessage:
		q := *(*unsafe.Pointer)(v)
		return appendMessage(AppendVarint(b, uint64(SizeMessage(q, f.Msg))), q, f.Msg)
	case KindTimestamp:
		t := *(**Timestamp)(v)
		return t.AppendProto(AppendVarint(b, uint64(t.SizeProto())))
	}
	return AppendVarint(b, varintOf(f.Kind, v))
}

// UnmarshalMessage resets message p and decodes b into it.
func UnmarshalMessage(b []byte, p unsafe.Pointer, m *Message) error {
	reset(p, m)
	return MergeMessage(b, p, m)
}

// MergeMessage decodes the binary encoding b into message p, skipping
// unknown fields and known fields sent with another wire type (as
// protobuf-go does). A singular message field seen twice merges.
func MergeMessage(b []byte, p unsafe.Pointer, m *Message) error {
	for len(b) > 0 {
		num, wt, n := ConsumeTag(b)
		if n < 0 {
			return ProtoError(n, m.Name)
		}
		b = b[n:]
		var f *Field
		for i := range m.Fields {
			if m.Fields[i].Num == num {
				f = &m.Fields[i]
				break
			}
		}
		if f == nil || wt != f.wireType() {
			if n = SkipField(num, wt, b); n < 0 {
				return ProtoError(n, m.Name)
			}
			b = b[n:]
			continue
		}
		var v val
		var raw []byte
		switch f.Kind {
		case KindString:
			v.s, n = ConsumeString(b)
		case KindBytes, KindMessage, KindTimestamp:
			raw, n = ConsumeBytes(b)
		default:
			v.u, n = ConsumeVarint(b)
		}
		if n < 0 {
			return fieldError(n, m, f)
		}
		b = b[n:]
		if err := mergeValue(p, m, f, &v, raw); err != nil {
			return err
		}
	}
	return nil
}

// fieldError is the decode error n of field f of m.
//
//go:noinline
func fieldError(n int, m *Message, f *Field) error {
	return ProtoError(n, m.Name+"."+f.protoName())
}

// mergeValue stores one decoded value of f (raw: the payload of bytes,
// messages and map entries) in message p of type m.
func mergeValue(p unsafe.Pointer, m *Message, f *Field, v *val, raw []byte) error {
	switch f.Kind {
	case KindSint32:
		v.u = uint64(uint32(DecodeZigZag32(v.u)))
	case KindSint64:
		v.u = uint64(DecodeZigZag(v.u))
	case KindBytes:
		if f.Card == Map {
			if n := mergeEntry(raw, p, f); n < 0 {
				return fieldError(n, m, f)
			}
			return nil
		}
		v.b = CloneBytes(raw)
	case KindMessage, KindTimestamp:
		// A singular message or the current oneof member merges; a list
		// gets a new element.
		var dst unsafe.Pointer
		switch f.Card {
		case Implicit:
			dst = at(p, f)
		case Member:
			dst = f.Oneof(p, false)
		}
		if dst == nil || *(*unsafe.Pointer)(dst) == nil {
			if f.Kind == KindTimestamp {
				v.p = unsafe.Pointer(new(Timestamp))
			} else {
				v.p = f.Msg.New()
			}
			set(p, f, v)
		} else {
			v.p = *(*unsafe.Pointer)(dst)
		}
		if f.Kind == KindTimestamp {
			return (*Timestamp)(v.p).MergeProto(raw)
		}
		return MergeMessage(raw, v.p, f.Msg)
	}
	set(p, f, v)
	return nil
}

// mergeEntry decodes one map<string, string> entry {1: key, 2: value}: a
// missing key or value is empty, a repeated key replaces the earlier entry.
// It returns a negative length on error.
func mergeEntry(b []byte, p unsafe.Pointer, f *Field) int {
	var kv [2]string
	for len(b) > 0 {
		num, wt, n := ConsumeTag(b)
		if n >= 0 {
			b = b[n:]
			if (num == 1 || num == 2) && wt == BytesType {
				kv[num-1], n = ConsumeString(b)
			} else {
				n = SkipField(num, wt, b)
			}
		}
		if n < 0 {
			return n
		}
		b = b[n:]
	}
	mp := (*map[string]string)(at(p, f))
	if *mp == nil {
		*mp = make(map[string]string)
	}
	(*mp)[kv[0]] = kv[1]
	return 0
}
