package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
)

// A minimal GGUF writer for tests, written from the format description in doc.go.

type testKV struct {
	key string
	t   ValueType
	v   any // Go value; for arrays a testArr
}

type testArr struct {
	elem ValueType
	vals []any // elements; for nested arrays testArr values
}

type testTensor struct {
	name string
	dims []uint64 // GGML order
	typ  Type
	data []byte
}

type testFile struct {
	version   uint32
	kvs       []testKV
	tensors   []testTensor
	alignment uint64 // used to place data; also written as general.alignment by the caller if wanted
}

type wbuf struct{ bytes.Buffer }

func (w *wbuf) u8(v uint8)   { w.WriteByte(v) }
func (w *wbuf) u16(v uint16) { binary.Write(&w.Buffer, binary.LittleEndian, v) }
func (w *wbuf) u32(v uint32) { binary.Write(&w.Buffer, binary.LittleEndian, v) }
func (w *wbuf) u64(v uint64) { binary.Write(&w.Buffer, binary.LittleEndian, v) }
func (w *wbuf) str(s string) { w.u64(uint64(len(s))); w.WriteString(s) }

func (w *wbuf) value(t ValueType, v any) {
	switch t {
	case ValueUint8:
		w.u8(v.(uint8))
	case ValueInt8:
		w.u8(uint8(v.(int8)))
	case ValueUint16:
		w.u16(v.(uint16))
	case ValueInt16:
		w.u16(uint16(v.(int16)))
	case ValueUint32:
		w.u32(v.(uint32))
	case ValueInt32:
		w.u32(uint32(v.(int32)))
	case ValueFloat32:
		w.u32(math.Float32bits(v.(float32)))
	case ValueBool:
		if v.(bool) {
			w.u8(1)
		} else {
			w.u8(0)
		}
	case ValueString:
		w.str(v.(string))
	case ValueUint64:
		w.u64(v.(uint64))
	case ValueInt64:
		w.u64(uint64(v.(int64)))
	case ValueFloat64:
		w.u64(math.Float64bits(v.(float64)))
	case ValueArray:
		a := v.(testArr)
		w.u32(uint32(a.elem))
		w.u64(uint64(len(a.vals)))
		for _, e := range a.vals {
			w.value(a.elem, e)
		}
	default:
		panic("bad type")
	}
}

// bytes serializes the file; tensor data is laid out in order, each at the next aligned offset.
func (f testFile) bytes() []byte {
	al := f.alignment
	if al == 0 {
		al = DefaultAlignment
	}
	var w wbuf
	w.WriteString(Magic)
	v := f.version
	if v == 0 {
		v = 3
	}
	w.u32(v)
	w.u64(uint64(len(f.tensors)))
	w.u64(uint64(len(f.kvs)))
	for _, kv := range f.kvs {
		w.str(kv.key)
		w.u32(uint32(kv.t))
		w.value(kv.t, kv.v)
	}
	off := uint64(0)
	offs := make([]uint64, len(f.tensors))
	for i, t := range f.tensors {
		w.str(t.name)
		w.u32(uint32(len(t.dims)))
		for _, d := range t.dims {
			w.u64(d)
		}
		w.u32(uint32(t.typ))
		offs[i] = off
		w.u64(off)
		off += uint64(len(t.data))
		off = (off + al - 1) / al * al
	}
	for w.Len()%int(al) != 0 {
		w.u8(0)
	}
	base := w.Len()
	for i, t := range f.tensors {
		for uint64(w.Len()-base) < offs[i] {
			w.u8(0)
		}
		w.Write(t.data)
	}
	return w.Bytes()
}
