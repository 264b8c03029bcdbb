package wirekit

import (
	"strconv"
	"unsafe"
)

// AppendMessageJSON appends the proto3 JSON protojson writes for message p
// (declaration order, zero values omitted, nil: {}) to b.
func AppendMessageJSON(b []byte, p unsafe.Pointer, m *Message) []byte {
	if p == nil {
		return append(b, "{}"...)
	}
	b = append(b, '{')
	start := len(b)
	for i := range m.Fields {
		f := &m.Fields[i]
		key := f.Names[:f.KeyLen]
		switch f.Card {
		case List:
			e, c, stride := list(p, f)
			if c == 0 {
				continue
			}
			b = append(AppendJSONKey(b, start, key), '[')
			for j := 0; j < c; j++ {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONValue(b, f, unsafe.Add(e, uintptr(j)*stride))
			}
			b = append(b, ']')
		case Map:
			mp := *(*map[string]string)(at(p, f))
			if len(mp) == 0 {
				continue
			}
			b = append(AppendJSONKey(b, start, key), '{')
			for j, k := range SortedKeys(mp) {
				if j > 0 {
					b = append(b, ',')
				}
				b = AppendJSONString(append(AppendJSONString(b, k), ':'), mp[k])
			}
			b = append(b, '}')
		default:
			if v := value(p, f); v != nil {
				b = appendJSONValue(AppendJSONKey(b, start, key), f, v)
			}
		}
	}
	return append(b, '}')
}

// appendJSONValue appends the JSON of the value of f at v.
func appendJSONValue(b []byte, f *Field, v unsafe.Pointer) []byte {
	switch f.Kind {
	case KindString:
		return AppendJSONString(b, *(*string)(v))
	case KindBytes:
		return AppendJSONBytes(b, *(*[]byte)(v))
	case KindMessage:
		return AppendMessageJSON(b, *(*unsafe.Pointer)(v), f.Msg)
	case KindTimestamp:
		return (*(**Timestamp)(v)).AppendProtoJSON(b)
	case KindBool:
		return strconv.AppendBool(b, *(*bool)(v))
	case KindInt32, KindSint32:
		return strconv.AppendInt(b, int64(*(*int32)(v)), 10)
	case KindUint32:
		return strconv.AppendUint(b, uint64(*(*uint32)(v)), 10)
	case KindEnum:
		n := *(*int32)(v)
		return AppendJSONEnum(b, f.Enum.Name(n), n)
	case KindUint64:
		return AppendJSONUint64(b, *(*uint64)(v))
	}
	return AppendJSONInt64(b, *(*int64)(v))
}

// UnmarshalMessageJSON resets message p and decodes proto3 JSON b into it
// as protojson does with DiscardUnknown; only whitespace may follow the
// object.
func UnmarshalMessageJSON(b []byte, p unsafe.Pointer, m *Message) error {
	reset(p, m)
	d := NewJSONDecoder(b)
	if err := decodeMessageJSON(d, p, m); err != nil {
		return err
	}
	return d.End()
}

func decodeMessageJSON(d *JSONDecoder, p unsafe.Pointer, m *Message) error {
	if err := d.ObjectStart(); err != nil {
		return err
	}
	var seen, oneofs uint64
	for first := true; ; first = false {
		name, more, err := d.Member(first)
		if err != nil || !more {
			return err
		}
		i := -1
		for j := range m.Fields {
			if f := &m.Fields[j]; name == f.jsonName() || name == f.protoName() {
				i = j
				break
			}
		}
		if i < 0 {
			err = d.Skip()
		} else if ok, e := d.Present(&seen, uint(i), name); e != nil {
			err = e
		} else if ok {
			err = decodeFieldJSON(d, p, m, &m.Fields[i], &oneofs, name)
		}
		if err != nil {
			return err
		}
	}
}

// decodeFieldJSON reads the (non-null) value of field f, named name in the
// input, into message p.
func decodeFieldJSON(d *JSONDecoder, p unsafe.Pointer, m *Message, f *Field, oneofs *uint64, name string) error {
	switch f.Card {
	case List:
		err := d.ArrayStart()
		for first := true; err == nil; first = false {
			var more bool
			if more, err = d.Elem(first); err != nil || !more {
				break
			}
			var v val
			if _, err = readJSON(d, f, &v); err == nil {
				set(p, f, &v)
			}
		}
		return err
	case Map:
		mp := (*map[string]string)(at(p, f))
		err := d.ObjectStart()
		for first := true; err == nil; first = false {
			k, more, e := d.Member(first)
			if e != nil || !more {
				return e
			}
			if _, dup := (*mp)[k]; dup {
				return d.DuplicateKey(k)
			}
			var v string
			if v, err = d.String(); err == nil {
				if *mp == nil {
					*mp = make(map[string]string)
				}
				(*mp)[k] = v
			}
		}
		return err
	case Member:
		if err := d.Oneof(oneofs, uint(f.OneofN), name, m.Oneofs[f.OneofN]); err != nil {
			return err
		}
	}
	var v val
	ok, err := readJSON(d, f, &v)
	if ok && err == nil {
		set(p, f, &v)
	}
	return err
}

// readJSON reads one value of f's kind into v; ok false is an enum name
// the schema does not know, which leaves the field unset.
func readJSON(d *JSONDecoder, f *Field, v *val) (ok bool, err error) {
	switch f.Kind {
	case KindBool:
		var x bool
		x, err = d.Bool()
		v.u = BoolVarint(x)
	case KindInt32, KindSint32:
		var x int32
		x, err = d.Int32()
		v.u = uint64(uint32(x))
	case KindUint32:
		var x uint32
		x, err = d.Uint32()
		v.u = uint64(x)
	case KindInt64, KindSint64:
		var x int64
		x, err = d.Int64()
		v.u = uint64(x)
	case KindUint64:
		v.u, err = d.Uint64()
	case KindEnum:
		var x int32
		x, ok, err = d.Enum(f.Enum)
		v.u = uint64(uint32(x))
		return ok, err
	case KindString:
		v.s, err = d.String()
	case KindBytes:
		v.b, err = d.Bytes()
	case KindMessage:
		v.p = f.Msg.New()
		err = decodeMessageJSON(d, v.p, f.Msg)
	case KindTimestamp:
		t := new(Timestamp)
		err = t.DecodeJSON(d)
		v.p = unsafe.Pointer(t)
	}
	return true, err
}
