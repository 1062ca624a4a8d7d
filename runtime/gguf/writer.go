package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Builder assembles a GGUF v3 file: metadata in the order set, then tensor infos and data in the
// order added, each tensor's data at the next multiple of the alignment. It keeps references to the
// data slices given to AddTensor until WriteTo returns.
type Builder struct {
	keys      []string
	vals      map[string]Value
	tensors   []builderTensor
	alignment uint64
}

type builderTensor struct {
	info TensorInfo
	data []byte
}

// NewBuilder returns an empty builder with the default alignment (32). A "general.alignment" key
// set as uint32 changes the alignment used for the data.
func NewBuilder() *Builder { return &Builder{vals: map[string]Value{}, alignment: DefaultAlignment} }

// Set stores key with a value inferred from its Go type: uint8, int8, uint16, int16, uint32, int32,
// float32, bool, string, uint64, int64, float64, a slice of one of those (an array), an Array
// (any array, nested ones included) or a Value. Setting a key again replaces its value in place.
func (b *Builder) Set(key string, v any) error {
	val, err := toValue(v)
	if err != nil {
		return fmt.Errorf("gguf builder: key %q: %w", key, err)
	}
	if key == "general.alignment" {
		a, ok := val.Data.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 {
			return fmt.Errorf("gguf builder: general.alignment must be a power-of-two uint32, got %v", v)
		}
		b.alignment = uint64(a)
	}
	if _, ok := b.vals[key]; !ok {
		b.keys = append(b.keys, key)
	}
	b.vals[key] = val
	return nil
}

func toValue(v any) (Value, error) {
	switch x := v.(type) {
	case Value:
		return x, nil
	case Array:
		return Value{ValueArray, x}, nil
	case uint8:
		return Value{ValueUint8, x}, nil
	case int8:
		return Value{ValueInt8, x}, nil
	case uint16:
		return Value{ValueUint16, x}, nil
	case int16:
		return Value{ValueInt16, x}, nil
	case uint32:
		return Value{ValueUint32, x}, nil
	case int32:
		return Value{ValueInt32, x}, nil
	case float32:
		return Value{ValueFloat32, x}, nil
	case bool:
		return Value{ValueBool, x}, nil
	case string:
		return Value{ValueString, x}, nil
	case uint64:
		return Value{ValueUint64, x}, nil
	case int64:
		return Value{ValueInt64, x}, nil
	case float64:
		return Value{ValueFloat64, x}, nil
	case []uint8:
		return Value{ValueArray, Array{ValueUint8, x}}, nil
	case []int8:
		return Value{ValueArray, Array{ValueInt8, x}}, nil
	case []uint16:
		return Value{ValueArray, Array{ValueUint16, x}}, nil
	case []int16:
		return Value{ValueArray, Array{ValueInt16, x}}, nil
	case []uint32:
		return Value{ValueArray, Array{ValueUint32, x}}, nil
	case []int32:
		return Value{ValueArray, Array{ValueInt32, x}}, nil
	case []float32:
		return Value{ValueArray, Array{ValueFloat32, x}}, nil
	case []bool:
		return Value{ValueArray, Array{ValueBool, x}}, nil
	case []string:
		return Value{ValueArray, Array{ValueString, x}}, nil
	case []uint64:
		return Value{ValueArray, Array{ValueUint64, x}}, nil
	case []int64:
		return Value{ValueArray, Array{ValueInt64, x}}, nil
	case []float64:
		return Value{ValueArray, Array{ValueFloat64, x}}, nil
	case []Array:
		return Value{ValueArray, Array{ValueArray, x}}, nil
	}
	return Value{}, fmt.Errorf("unsupported Go type %T", v)
}

// AddTensor appends a tensor: dims in GGML order (dims[0] fastest), data exactly the bytes of that
// many elements of typ (whole blocks for quantized types).
func (b *Builder) AddTensor(name string, typ Type, dims []uint64, data []byte) error {
	if !typ.Known() {
		return fmt.Errorf("gguf builder: tensor %q: unknown type %d", name, uint32(typ))
	}
	if len(dims) == 0 || len(dims) > MaxDims {
		return fmt.Errorf("gguf builder: tensor %q: %d dims (want 1..%d)", name, len(dims), MaxDims)
	}
	n := uint64(1)
	for _, d := range dims {
		n *= d
	}
	if dims[0]%uint64(typ.BlockSize()) != 0 {
		return fmt.Errorf("gguf builder: tensor %q: dim 0 (%d) is not a multiple of the %s block size %d", name, dims[0], typ, typ.BlockSize())
	}
	size, _ := typ.RowBytes(int64(n))
	if int64(len(data)) != size {
		return fmt.Errorf("gguf builder: tensor %q: %d bytes of data, %d %s elements need %d", name, len(data), n, typ, size)
	}
	for _, t := range b.tensors {
		if t.info.Name == name {
			return fmt.Errorf("gguf builder: duplicate tensor %q", name)
		}
	}
	b.tensors = append(b.tensors, builderTensor{TensorInfo{Name: name, Dims: append([]uint64(nil), dims...), Type: typ, Size: uint64(size)}, data})
	return nil
}

// WriteTo writes the file to w.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: bufio.NewWriterSize(w, 1<<20)}
	le := func(v any) { _ = binary.Write(cw, binary.LittleEndian, v) }
	str := func(s string) { le(uint64(len(s))); _, _ = io.WriteString(cw, s) }
	cw.Write([]byte(Magic))
	le(uint32(3))
	le(uint64(len(b.tensors)))
	le(uint64(len(b.keys)))
	for _, k := range b.keys {
		v := b.vals[k]
		str(k)
		le(uint32(v.Type))
		if err := writeValue(cw, v.Type, v.Data); err != nil {
			return cw.n, fmt.Errorf("gguf builder: key %q: %w", k, err)
		}
	}
	off := uint64(0)
	offs := make([]uint64, len(b.tensors))
	for i, t := range b.tensors {
		str(t.info.Name)
		le(uint32(len(t.info.Dims)))
		for _, d := range t.info.Dims {
			le(d)
		}
		le(uint32(t.info.Type))
		offs[i] = off
		le(off)
		off = (off + t.info.Size + b.alignment - 1) / b.alignment * b.alignment
	}
	pad := func(to uint64) {
		for uint64(cw.n) < to {
			cw.Write([]byte{0})
		}
	}
	base := (uint64(cw.n) + b.alignment - 1) / b.alignment * b.alignment
	pad(base)
	for i, t := range b.tensors {
		pad(base + offs[i])
		cw.Write(t.data)
	}
	if cw.err != nil {
		return cw.n, fmt.Errorf("gguf builder: write: %w", cw.err)
	}
	if err := cw.w.(*bufio.Writer).Flush(); err != nil {
		return cw.n, fmt.Errorf("gguf builder: write: %w", err)
	}
	return cw.n, nil
}

func writeValue(w io.Writer, t ValueType, v any) error {
	le := func(x any) error { return binary.Write(w, binary.LittleEndian, x) }
	switch t {
	case ValueUint8, ValueInt8, ValueUint16, ValueInt16, ValueUint32, ValueInt32, ValueUint64, ValueInt64:
		return le(v)
	case ValueFloat32:
		return le(math.Float32bits(v.(float32)))
	case ValueFloat64:
		return le(math.Float64bits(v.(float64)))
	case ValueBool:
		if v.(bool) {
			return le(uint8(1))
		}
		return le(uint8(0))
	case ValueString:
		s := v.(string)
		if err := le(uint64(len(s))); err != nil {
			return err
		}
		_, err := io.WriteString(w, s)
		return err
	case ValueArray:
		a, ok := v.(Array)
		if !ok {
			return fmt.Errorf("array value holds %T", v)
		}
		if err := le(uint32(a.Elem)); err != nil {
			return err
		}
		if err := le(uint64(a.Len())); err != nil {
			return err
		}
		switch s := a.Data.(type) {
		case []string:
			for _, e := range s {
				if err := writeValue(w, ValueString, e); err != nil {
					return err
				}
			}
		case []bool:
			for _, e := range s {
				if err := writeValue(w, ValueBool, e); err != nil {
					return err
				}
			}
		case []float32:
			for _, e := range s {
				if err := le(math.Float32bits(e)); err != nil {
					return err
				}
			}
		case []float64:
			for _, e := range s {
				if err := le(math.Float64bits(e)); err != nil {
					return err
				}
			}
		case []Array:
			for _, e := range s {
				if err := writeValue(w, ValueArray, e); err != nil {
					return err
				}
			}
		case nil:
		default:
			return le(s) // fixed-size integer slices
		}
		return nil
	}
	return fmt.Errorf("unknown value type %d", uint32(t))
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
