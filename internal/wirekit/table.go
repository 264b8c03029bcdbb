package wirekit

import (
	"strconv"
	"unsafe"
)

// The generated messages describe themselves with a Message table and call
// the table-driven codecs here, so the binary holds one encoder and one
// decoder per format instead of one per message. The tables address the
// Go fields by offset; the generator emits them next to the struct types
// (unsafe.Offsetof), which is what keeps the offsets and kinds honest.
// Each message's methods are the only references to its table, so the
// linker still drops what the program never calls.

// Kind is the type of one value of a field.
type Kind uint8

// Value kinds. Enum values are int32 in Go; Message values are pointers to
// generated structs (Field.Msg describes them), Timestamp values are
// *Timestamp.
const (
	KindBool Kind = iota + 1
	KindInt32
	KindSint32
	KindUint32
	KindInt64
	KindSint64
	KindUint64
	KindEnum
	KindString
	KindBytes
	KindMessage
	KindTimestamp
)

// Card is how a field holds its values.
type Card uint8

const (
	// Implicit: the Go field is the value, present when not zero (proto3),
	// or a message pointer, present when not nil.
	Implicit Card = iota
	// Optional: the Go field is *T for a proto3 optional scalar.
	Optional
	// List: the Go field is []T.
	List
	// Map: the Go field is map[string]string (the only map envd uses).
	Map
	// Member: a member of a oneof; Field.Oneof reaches its value.
	Member
)

// Field describes one field of a message.
type Field struct {
	Num    int32
	Off    uint16 // offset of the Go field (of the oneof interface for members)
	Kind   Kind
	Card   Card
	KeyLen uint8 // Names[:KeyLen] is the JSON member key, `"jsonName":`
	OneofN uint8 // index of the field's oneof in Message.Oneofs
	// Names is the quoted JSON key and colon, then the proto name when it
	// differs from the JSON name.
	Names string
	Msg   *Message // KindMessage
	Enum  *Enum    // KindEnum
	// Oneof returns a pointer to the member's value in message p: with set
	// false nil unless the oneof holds this member, with set true after
	// storing a new zero member in the oneof.
	Oneof func(p unsafe.Pointer, set bool) unsafe.Pointer
}

// Enum lists an enum type's values in declaration order: Names[i] is the
// name of number Nums[i]. An aliased number's first name is its JSON name.
type Enum struct {
	Names []string
	Nums  []int32
}

// Name is the name of number n, "" when the enum has none.
func (e *Enum) Name(n int32) string {
	for i, v := range e.Nums {
		if v == n {
			return e.Names[i]
		}
	}
	return ""
}

// String is Name, or n in decimal when the enum has no name for it.
func (e *Enum) String(n int32) string {
	if s := e.Name(n); s != "" {
		return s
	}
	return strconv.Itoa(int(n))
}

// Value is the number named s.
func (e *Enum) Value(s string) (int32, bool) {
	for i, v := range e.Names {
		if v == s {
			return e.Nums[i], true
		}
	}
	return 0, false
}

// Message describes a message type.
type Message struct {
	Name   string  // full proto name, for errors
	Fields []Field // declaration order (JSON order)
	Order  []uint8 // indexes of Fields in number order, nil when the same
	Oneofs []string
	New    func() unsafe.Pointer // a new zero message
}

func (f *Field) jsonName() string { return f.Names[1 : f.KeyLen-2] }

// protoName is the field's name in the .proto file.
func (f *Field) protoName() string {
	if int(f.KeyLen) == len(f.Names) {
		return f.jsonName()
	}
	return f.Names[f.KeyLen:]
}

// wireType is the binary wire type of one value.
func (f *Field) wireType() int {
	if f.Kind >= KindString {
		return BytesType
	}
	return VarintType
}

func (f *Field) tag() uint64 { return uint64(f.Num)<<3 | uint64(f.wireType()) }

// field returns the i-th field in number order.
func (m *Message) field(i int) *Field {
	if m.Order != nil {
		i = int(m.Order[i])
	}
	return &m.Fields[i]
}

// at is the address of f's Go field in message p.
func at(p unsafe.Pointer, f *Field) unsafe.Pointer { return unsafe.Add(p, f.Off) }

// value is the address of f's single value in message p, nil when the
// field is absent (Implicit, Optional and Member fields only).
func value(p unsafe.Pointer, f *Field) unsafe.Pointer {
	v := at(p, f)
	switch f.Card {
	case Optional:
		return *(*unsafe.Pointer)(v)
	case Member:
		return f.Oneof(p, false)
	}
	var zero bool
	switch f.Kind {
	case KindBool:
		zero = !*(*bool)(v)
	case KindInt32, KindSint32, KindUint32, KindEnum:
		zero = *(*uint32)(v) == 0
	case KindInt64, KindSint64, KindUint64:
		zero = *(*uint64)(v) == 0
	case KindString:
		zero = len(*(*string)(v)) == 0
	case KindBytes:
		zero = len(*(*[]byte)(v)) == 0
	default:
		zero = *(*unsafe.Pointer)(v) == nil
	}
	if zero {
		return nil
	}
	return v
}

// slice is the layout of a Go slice header.
type slice struct {
	data     unsafe.Pointer
	len, cap int
}

// elemSize is the size of one Go value of kind k in a list.
func elemSize(k Kind) uintptr {
	switch k {
	case KindString:
		return unsafe.Sizeof("")
	case KindBytes:
		return unsafe.Sizeof([]byte(nil))
	}
	return unsafe.Sizeof(unsafe.Pointer(nil))
}

// list returns f's elements in message p: the first one's address, the
// count and the stride.
func list(p unsafe.Pointer, f *Field) (unsafe.Pointer, int, uintptr) {
	s := (*slice)(at(p, f))
	return s.data, s.len, elemSize(f.Kind)
}

// varintOf is the varint encoding of the scalar at v.
func varintOf(k Kind, v unsafe.Pointer) uint64 {
	switch k {
	case KindBool:
		return BoolVarint(*(*bool)(v))
	case KindInt32, KindEnum:
		return uint64(int64(*(*int32)(v)))
	case KindSint32:
		return EncodeZigZag(int64(*(*int32)(v)))
	case KindUint32:
		return uint64(*(*uint32)(v))
	case KindSint64:
		return EncodeZigZag(*(*int64)(v))
	}
	return *(*uint64)(v)
}

// val is one decoded value on its way into a message.
type val struct {
	u uint64 // scalars, in their Go representation
	s string
	b []byte
	p unsafe.Pointer // messages
}

// store writes v into the Go value of kind k at dst.
func store(dst unsafe.Pointer, k Kind, v *val) {
	switch k {
	case KindBool:
		*(*bool)(dst) = v.u != 0
	case KindInt32, KindSint32, KindUint32, KindEnum:
		*(*uint32)(dst) = uint32(v.u)
	case KindInt64, KindSint64, KindUint64:
		*(*uint64)(dst) = v.u
	case KindString:
		*(*string)(dst) = v.s
	case KindBytes:
		*(*[]byte)(dst) = v.b
	default:
		*(*unsafe.Pointer)(dst) = v.p
	}
}

// set stores one decoded value of f in message p: it replaces a single
// value or a oneof's member and appends to a list.
func set(p unsafe.Pointer, f *Field, v *val) {
	dst := at(p, f)
	switch f.Card {
	case Optional:
		var q unsafe.Pointer
		switch f.Kind {
		case KindBool:
			q = unsafe.Pointer(new(bool))
		case KindInt32, KindSint32, KindUint32, KindEnum:
			q = unsafe.Pointer(new(uint32))
		case KindInt64, KindSint64, KindUint64:
			q = unsafe.Pointer(new(uint64))
		case KindString:
			q = unsafe.Pointer(new(string))
		default:
			q = unsafe.Pointer(new([]byte))
		}
		*(*unsafe.Pointer)(dst) = q
		dst = q
	case Member:
		dst = f.Oneof(p, true)
	case List:
		switch f.Kind {
		case KindString:
			l := (*[]string)(dst)
			*l = append(*l, v.s)
		case KindBytes:
			l := (*[][]byte)(dst)
			*l = append(*l, v.b)
		default:
			l := (*[]unsafe.Pointer)(dst)
			*l = append(*l, v.p)
		}
		return
	}
	store(dst, f.Kind, v)
}

// iface is the layout of a non-empty interface value.
type iface struct{ tab, data unsafe.Pointer }

// reset zeroes every field of message p, as *x = T{} does.
func reset(p unsafe.Pointer, m *Message) {
	for i := range m.Fields {
		f := &m.Fields[i]
		v := at(p, f)
		switch f.Card {
		case Member:
			*(*iface)(v) = iface{}
			continue
		case List:
			*(*slice)(v) = slice{}
			continue
		case Optional, Map:
			*(*unsafe.Pointer)(v) = nil
			continue
		}
		var zero val
		store(v, f.Kind, &zero)
	}
}

// ResetMessage zeroes message p.
func ResetMessage(p unsafe.Pointer, m *Message) { reset(p, m) }
