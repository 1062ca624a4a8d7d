package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Magic is the 4-byte file signature "GGUF" (read as a little-endian u32: 0x46554747).
const Magic = "GGUF"

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// MaxDims is the most dimensions a tensor may have (GGML_MAX_DIMS).
const MaxDims = 4

// maxArrayDepth bounds the nesting of metadata arrays.
const maxArrayDepth = 16

// ErrFormat is wrapped by every error about a malformed file.
var ErrFormat = errors.New("malformed GGUF")

// TensorInfo describes one tensor of a GGUF file. Dims are in GGML order (Dims[0] = ne[0], the
// fastest-varying); Offset is relative to the data section; Size is the byte size of the data.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   Type
	Offset uint64
	Size   uint64
}

// NumElements returns the product of the dims.
func (t TensorInfo) NumElements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Shape returns the dims in HF/PyTorch order (reversed: outermost first) as ints, so a weight
// stored with dims [in, out] has Shape [out, in].
func (t TensorInfo) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[len(t.Dims)-1-i] = int(d)
	}
	return s
}

// header is the parsed front of a file.
type header struct {
	version    uint32
	meta       *Metadata
	tensors    []TensorInfo // file order
	byName     map[string]int
	names      []string // sorted
	alignment  uint64
	dataOffset uint64 // absolute offset of the data section
}

// parser reads little-endian fields from a byte image, tracking the offset for error messages.
type parser struct {
	b   []byte
	off uint64
}

func (p *parser) errf(at uint64, field, format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: %s: %s", ErrFormat, at, field, fmt.Sprintf(format, args...))
}

func (p *parser) need(n uint64, field string) error {
	if rem := uint64(len(p.b)) - p.off; n > rem {
		return p.errf(p.off, field, "need %d bytes, only %d left (truncated file?)", n, rem)
	}
	return nil
}

func (p *parser) bytes(n uint64, field string) ([]byte, error) {
	if err := p.need(n, field); err != nil {
		return nil, err
	}
	s := p.b[p.off : p.off+n]
	p.off += n
	return s, nil
}

func (p *parser) u8(field string) (uint8, error) {
	s, err := p.bytes(1, field)
	if err != nil {
		return 0, err
	}
	return s[0], nil
}

func (p *parser) u16(field string) (uint16, error) {
	s, err := p.bytes(2, field)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(s), nil
}

func (p *parser) u32(field string) (uint32, error) {
	s, err := p.bytes(4, field)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(s), nil
}

func (p *parser) u64(field string) (uint64, error) {
	s, err := p.bytes(8, field)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(s), nil
}

func (p *parser) str(field string) (string, error) {
	at := p.off
	n, err := p.u64(field + " length")
	if err != nil {
		return "", err
	}
	if rem := uint64(len(p.b)) - p.off; n > rem {
		return "", p.errf(at, field, "string length %d runs past the end of the file (%d bytes left)", n, rem)
	}
	s, _ := p.bytes(n, field)
	return string(s), nil
}

// parseHeader parses and validates everything before the data section of the file image b.
func parseHeader(b []byte) (*header, error) {
	p := &parser{b: b}
	magic, err := p.bytes(4, "magic")
	if err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, p.errf(0, "magic", "got %q, want %q", magic, Magic)
	}
	h := &header{}
	if h.version, err = p.u32("version"); err != nil {
		return nil, err
	}
	if h.version != 2 && h.version != 3 {
		return nil, p.errf(4, "version", "version %d is not supported (want 2 or 3)", h.version)
	}
	nTensors, err := p.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := p.u64("metadata kv count")
	if err != nil {
		return nil, err
	}
	// Each kv takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at least
	// 8 + 4 + 8 + 4 + 8 bytes (a one-dim tensor with an empty name). Anything more cannot fit.
	rem := uint64(len(b)) - p.off
	if nKV > rem/13 {
		return nil, p.errf(16, "metadata kv count", "%d pairs cannot fit in the %d bytes left", nKV, rem)
	}
	if nTensors > rem/32 {
		return nil, p.errf(8, "tensor count", "%d tensors cannot fit in the %d bytes left", nTensors, rem)
	}
	h.meta = &Metadata{kv: make(map[string]Value, nKV)}
	for i := uint64(0); i < nKV; i++ {
		at := p.off
		key, err := p.str(fmt.Sprintf("metadata key #%d", i))
		if err != nil {
			return nil, err
		}
		if _, dup := h.meta.kv[key]; dup {
			return nil, p.errf(at, fmt.Sprintf("metadata key #%d", i), "duplicate key %q", key)
		}
		field := fmt.Sprintf("metadata %q", key)
		t, err := p.u32(field + " type")
		if err != nil {
			return nil, err
		}
		v, err := p.value(ValueType(t), field, 0)
		if err != nil {
			return nil, err
		}
		h.meta.keys = append(h.meta.keys, key)
		h.meta.kv[key] = Value{Type: ValueType(t), Data: v}
	}
	h.alignment = DefaultAlignment
	if v, ok := h.meta.kv["general.alignment"]; ok {
		a, ok := v.Data.(uint32)
		if !ok {
			return nil, p.errf(0, "general.alignment", "type is %s, want uint32", v.Type)
		}
		if a == 0 || a&(a-1) != 0 {
			return nil, p.errf(0, "general.alignment", "%d is not a power of two", a)
		}
		h.alignment = uint64(a)
	}
	h.tensors = make([]TensorInfo, 0, nTensors)
	h.byName = make(map[string]int, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		t, err := p.tensorInfo(i, h.alignment)
		if err != nil {
			return nil, err
		}
		if _, dup := h.byName[t.Name]; dup {
			return nil, p.errf(p.off, fmt.Sprintf("tensor info #%d", i), "duplicate tensor name %q", t.Name)
		}
		h.byName[t.Name] = len(h.tensors)
		h.tensors = append(h.tensors, t)
	}
	h.dataOffset = (p.off + h.alignment - 1) / h.alignment * h.alignment
	if h.dataOffset > uint64(len(b)) {
		if nTensors == 0 {
			h.dataOffset = uint64(len(b)) // a file of metadata only may end unpadded
		} else {
			return nil, p.errf(p.off, "data section", "aligned start %d is past the end of the file (%d bytes)", h.dataOffset, len(b))
		}
	}
	dataLen := uint64(len(b)) - h.dataOffset
	for _, t := range h.tensors {
		if t.Offset > dataLen || t.Size > dataLen-t.Offset {
			return nil, fmt.Errorf("%w: tensor %q: data [%d, %d) relative to the data section at offset %d runs past the end of the file (data section is %d bytes)",
				ErrFormat, t.Name, t.Offset, t.Offset+t.Size, h.dataOffset, dataLen)
		}
	}
	if err := checkOverlaps(h.tensors); err != nil {
		return nil, err
	}
	h.names = make([]string, 0, len(h.tensors))
	for _, t := range h.tensors {
		h.names = append(h.names, t.Name)
	}
	sort.Strings(h.names)
	return h, nil
}

// tensorInfo reads tensor info number i and checks dims, type, size and offset alignment.
func (p *parser) tensorInfo(i uint64, alignment uint64) (TensorInfo, error) {
	field := fmt.Sprintf("tensor info #%d", i)
	name, err := p.str(field + " name")
	if err != nil {
		return TensorInfo{}, err
	}
	field = fmt.Sprintf("tensor %q", name)
	at := p.off
	nd, err := p.u32(field + " n_dims")
	if err != nil {
		return TensorInfo{}, err
	}
	if nd == 0 || nd > MaxDims {
		return TensorInfo{}, p.errf(at, field+" n_dims", "%d dims (want 1..%d)", nd, MaxDims)
	}
	t := TensorInfo{Name: name, Dims: make([]uint64, nd)}
	n := uint64(1)
	for d := range t.Dims {
		at := p.off
		if t.Dims[d], err = p.u64(fmt.Sprintf("%s dim %d", field, d)); err != nil {
			return TensorInfo{}, err
		}
		if t.Dims[d] > math.MaxInt32*4 || (t.Dims[d] != 0 && n > math.MaxInt64/t.Dims[d]) {
			return TensorInfo{}, p.errf(at, fmt.Sprintf("%s dim %d", field, d), "dimension %d is too large", t.Dims[d])
		}
		n *= t.Dims[d]
	}
	at = p.off
	ty, err := p.u32(field + " type")
	if err != nil {
		return TensorInfo{}, err
	}
	t.Type = Type(ty)
	if !t.Type.Known() {
		return TensorInfo{}, p.errf(at, field+" type", "unknown ggml type %d", ty)
	}
	if t.Dims[0]%uint64(t.Type.BlockSize()) != 0 {
		return TensorInfo{}, p.errf(at, field+" type", "dim 0 (%d) is not a multiple of the %s block size %d", t.Dims[0], t.Type, t.Type.BlockSize())
	}
	size, ok := t.Type.RowBytes(int64(n))
	if !ok {
		return TensorInfo{}, p.errf(at, field+" type", "%d elements do not form whole %s blocks", n, t.Type)
	}
	t.Size = uint64(size)
	at = p.off
	if t.Offset, err = p.u64(field + " offset"); err != nil {
		return TensorInfo{}, err
	}
	if t.Offset%alignment != 0 {
		return TensorInfo{}, p.errf(at, field+" offset", "data offset %d is not a multiple of the alignment %d", t.Offset, alignment)
	}
	return t, nil
}

// checkOverlaps reports two tensors whose data ranges overlap.
func checkOverlaps(ts []TensorInfo) error {
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return ts[idx[a]].Offset < ts[idx[b]].Offset })
	for k := 1; k < len(idx); k++ {
		a, b := ts[idx[k-1]], ts[idx[k]]
		if a.Size > 0 && b.Size > 0 && a.Offset+a.Size > b.Offset {
			return fmt.Errorf("%w: tensors %q [%d, %d) and %q [%d, %d) overlap in the data section",
				ErrFormat, a.Name, a.Offset, a.Offset+a.Size, b.Name, b.Offset, b.Offset+b.Size)
		}
	}
	return nil
}

// value reads one metadata value of type t.
func (p *parser) value(t ValueType, field string, depth int) (any, error) {
	switch t {
	case ValueUint8:
		return p.u8(field)
	case ValueInt8:
		v, err := p.u8(field)
		return int8(v), err
	case ValueUint16:
		return p.u16(field)
	case ValueInt16:
		v, err := p.u16(field)
		return int16(v), err
	case ValueUint32:
		return p.u32(field)
	case ValueInt32:
		v, err := p.u32(field)
		return int32(v), err
	case ValueFloat32:
		v, err := p.u32(field)
		return math.Float32frombits(v), err
	case ValueBool:
		at := p.off
		v, err := p.u8(field)
		if err != nil {
			return nil, err
		}
		if v > 1 {
			return nil, p.errf(at, field, "bool byte is %d, want 0 or 1", v)
		}
		return v == 1, nil
	case ValueString:
		return p.str(field)
	case ValueUint64:
		return p.u64(field)
	case ValueInt64:
		v, err := p.u64(field)
		return int64(v), err
	case ValueFloat64:
		v, err := p.u64(field)
		return math.Float64frombits(v), err
	case ValueArray:
		return p.array(field, depth)
	}
	return nil, p.errf(p.off-4, field+" type", "unknown value type %d", uint32(t))
}

// array reads an array value: element type, count, elements.
func (p *parser) array(field string, depth int) (Array, error) {
	if depth >= maxArrayDepth {
		return Array{}, p.errf(p.off, field, "arrays nested deeper than %d", maxArrayDepth)
	}
	at := p.off
	et, err := p.u32(field + " element type")
	if err != nil {
		return Array{}, err
	}
	elem := ValueType(et)
	if !elem.known() {
		return Array{}, p.errf(at, field+" element type", "unknown value type %d", et)
	}
	at = p.off
	n, err := p.u64(field + " array length")
	if err != nil {
		return Array{}, err
	}
	minSize := uint64(8) // string length or nested array header (12)
	if s := valueSizes[elem]; s > 0 {
		minSize = uint64(s)
	} else if elem == ValueArray {
		minSize = 12
	}
	if rem := uint64(len(p.b)) - p.off; n > rem/minSize {
		return Array{}, p.errf(at, field+" array length", "%d elements of %s cannot fit in the %d bytes left", n, elem, rem)
	}
	a := Array{Elem: elem}
	switch elem {
	case ValueUint8, ValueInt8, ValueBool:
		raw, _ := p.bytes(n, field)
		switch elem {
		case ValueUint8:
			a.Data = append([]uint8(nil), raw...)
		case ValueInt8:
			s := make([]int8, n)
			for i, v := range raw {
				s[i] = int8(v)
			}
			a.Data = s
		default:
			s := make([]bool, n)
			for i, v := range raw {
				if v > 1 {
					return Array{}, p.errf(p.off-n+uint64(i), fmt.Sprintf("%s[%d]", field, i), "bool byte is %d, want 0 or 1", v)
				}
				s[i] = v == 1
			}
			a.Data = s
		}
	case ValueUint16, ValueInt16:
		raw, _ := p.bytes(2*n, field)
		if elem == ValueUint16 {
			s := make([]uint16, n)
			for i := range s {
				s[i] = binary.LittleEndian.Uint16(raw[2*i:])
			}
			a.Data = s
		} else {
			s := make([]int16, n)
			for i := range s {
				s[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
			}
			a.Data = s
		}
	case ValueUint32, ValueInt32, ValueFloat32:
		raw, _ := p.bytes(4*n, field)
		switch elem {
		case ValueUint32:
			s := make([]uint32, n)
			for i := range s {
				s[i] = binary.LittleEndian.Uint32(raw[4*i:])
			}
			a.Data = s
		case ValueInt32:
			s := make([]int32, n)
			for i := range s {
				s[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			a.Data = s
		default:
			s := make([]float32, n)
			for i := range s {
				s[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			a.Data = s
		}
	case ValueUint64, ValueInt64, ValueFloat64:
		raw, _ := p.bytes(8*n, field)
		switch elem {
		case ValueUint64:
			s := make([]uint64, n)
			for i := range s {
				s[i] = binary.LittleEndian.Uint64(raw[8*i:])
			}
			a.Data = s
		case ValueInt64:
			s := make([]int64, n)
			for i := range s {
				s[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
			a.Data = s
		default:
			s := make([]float64, n)
			for i := range s {
				s[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
			}
			a.Data = s
		}
	case ValueString:
		s := make([]string, n)
		for i := range s {
			if s[i], err = p.str(field); err != nil {
				return Array{}, fmt.Errorf("element %d: %w", i, err)
			}
		}
		a.Data = s
	case ValueArray:
		s := make([]Array, n)
		for i := range s {
			if s[i], err = p.array(field, depth+1); err != nil {
				return Array{}, fmt.Errorf("element %d: %w", i, err)
			}
		}
		a.Data = s
	}
	return a, nil
}
