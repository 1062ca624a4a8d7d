package gguf

import "fmt"

// ValueType is the type tag of a metadata value (gguf_type).
type ValueType uint32

// The metadata value types of GGUF.
const (
	ValueUint8   ValueType = 0
	ValueInt8    ValueType = 1
	ValueUint16  ValueType = 2
	ValueInt16   ValueType = 3
	ValueUint32  ValueType = 4
	ValueInt32   ValueType = 5
	ValueFloat32 ValueType = 6
	ValueBool    ValueType = 7
	ValueString  ValueType = 8
	ValueArray   ValueType = 9
	ValueUint64  ValueType = 10
	ValueInt64   ValueType = 11
	ValueFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
	"bool", "string", "array", "uint64", "int64", "float64"}

// valueSizes are the encoded sizes of the fixed-size types (0 for string and array).
var valueSizes = [...]int{1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8}

// String returns the type's name ("uint32"), or "value_type(N)" for an unknown one.
func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("value_type(%d)", uint32(t))
}

func (t ValueType) known() bool { return int(t) < len(valueTypeNames) }

// Value is one metadata value. Data holds, by Type: uint8, int8, uint16, int16, uint32, int32,
// float32, bool, string, uint64, int64, float64, or for ValueArray an Array.
type Value struct {
	Type ValueType
	Data any
}

// Array is a metadata array. Data is a slice of the element type's Go type ([]uint8 ... []float64,
// []bool, []string), or []Array for an array of arrays.
type Array struct {
	Elem ValueType
	Data any
}

// Len returns the number of elements.
func (a Array) Len() int {
	switch v := a.Data.(type) {
	case []uint8:
		return len(v)
	case []int8:
		return len(v)
	case []uint16:
		return len(v)
	case []int16:
		return len(v)
	case []uint32:
		return len(v)
	case []int32:
		return len(v)
	case []float32:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []float64:
		return len(v)
	case []Array:
		return len(v)
	}
	return 0
}

// Uint returns v as an unsigned integer if it is an integer type holding a value >= 0.
func (v Value) Uint() (uint64, bool) {
	switch x := v.Data.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8, int16, int32, int64:
		i, _ := v.Int()
		if i < 0 {
			return 0, false
		}
		return uint64(i), true
	}
	return 0, false
}

// Int returns v as a signed integer if it is an integer type that fits in int64.
func (v Value) Int() (int64, bool) {
	switch x := v.Data.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x > 1<<63-1 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

// Float returns v as a float64 if it is a float or integer type.
func (v Value) Float() (float64, bool) {
	switch x := v.Data.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if i, ok := v.Int(); ok {
		return float64(i), true
	}
	if u, ok := v.Uint(); ok {
		return float64(u), true
	}
	return 0, false
}

// String formats v for display (arrays longer than 8 elements are abbreviated).
func (v Value) String() string {
	if a, ok := v.Data.(Array); ok {
		return fmt.Sprintf("[%s × %d]", a.Elem, a.Len())
	}
	if s, ok := v.Data.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v.Data)
}
