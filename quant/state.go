package quant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// QuantState is the non-tensor part of a 4-bit weight's state as bitsandbytes packs it into the
// U8 tensor "<weight>.quant_state.bitsandbytes__<quant_type>" (QuantState.as_dict(packed=True)):
// a JSON object. The nested fields are present only with double quantization.
type QuantState struct {
	QuantType       QuantType
	BlockSize       int
	DType           string // torch dtype name without "torch.": "float32", "bfloat16", "float16"
	Shape           []int
	Nested          bool
	NestedBlockSize int
	NestedDType     string
	NestedOffset    float32 // stored as the float64 repr of a float32
}

// maxElements bounds the element count a quant state may declare (2^40).
const maxElements = 1 << 40

// StateTensorSuffix returns the name suffix of the packed state tensor of quant type t, e.g.
// "quant_state.bitsandbytes__nf4".
func StateTensorSuffix(t QuantType) string { return "quant_state.bitsandbytes__" + string(t) }

// MarshalJSON renders the state exactly as Python's json.dumps(dict) renders bitsandbytes' dict:
// keys in the order quant_type, blocksize, dtype, shape[, nested_blocksize, nested_dtype,
// nested_offset], separators ", " and ": ", the offset as Python's repr of the float32 value.
func (s *QuantState) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"quant_type": `)
	pyString(&b, string(s.QuantType))
	b.WriteString(`, "blocksize": ` + strconv.Itoa(s.BlockSize) + `, "dtype": `)
	pyString(&b, s.DType)
	b.WriteString(`, "shape": [`)
	for i, d := range s.Shape {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(d))
	}
	b.WriteByte(']')
	if s.Nested {
		b.WriteString(`, "nested_blocksize": ` + strconv.Itoa(s.NestedBlockSize) + `, "nested_dtype": `)
		pyString(&b, s.NestedDType)
		b.WriteString(`, "nested_offset": ` + pyFloatRepr(float64(s.NestedOffset)))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ParseQuantState parses the packed state JSON of tensor name (used in errors). Every field
// bitsandbytes writes is required (the nested ones only when any of them is present), with the
// right JSON type; quant_type must be nf4 or fp4 and the dtypes ones bitsandbytes writes.
func ParseQuantState(name string, data []byte) (*QuantState, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("quant state %s: bad JSON: %w", name, err)
	}
	s := &QuantState{}
	field := func(key string, dst any, required bool) (bool, error) {
		m, ok := raw[key]
		if !ok {
			if required {
				return false, fmt.Errorf("quant state %s: missing field %q", name, key)
			}
			return false, nil
		}
		if err := json.Unmarshal(m, dst); err != nil {
			return false, fmt.Errorf("quant state %s: field %q: %w", name, key, err)
		}
		return true, nil
	}
	var qt string
	if _, err := field("quant_type", &qt, true); err != nil {
		return nil, err
	}
	s.QuantType = QuantType(qt)
	if !s.QuantType.Valid() {
		return nil, fmt.Errorf("quant state %s: field \"quant_type\": unknown quant type %q (want nf4 or fp4)", name, qt)
	}
	if _, err := field("blocksize", &s.BlockSize, true); err != nil {
		return nil, err
	}
	if err := CheckBlockSize(s.BlockSize); err != nil {
		return nil, fmt.Errorf("quant state %s: field \"blocksize\": %w", name, err)
	}
	if _, err := field("dtype", &s.DType, true); err != nil {
		return nil, err
	}
	if _, ok := dtypeRounders[s.DType]; !ok {
		return nil, fmt.Errorf("quant state %s: field \"dtype\": unsupported dtype %q", name, s.DType)
	}
	if _, err := field("shape", &s.Shape, true); err != nil {
		return nil, err
	}
	if len(s.Shape) == 0 {
		return nil, fmt.Errorf("quant state %s: field \"shape\": empty", name)
	}
	n := 1
	for _, d := range s.Shape {
		if d <= 0 || d > maxElements || n > maxElements/d {
			return nil, fmt.Errorf("quant state %s: field \"shape\": %v is empty or too large", name, s.Shape)
		}
		n *= d
	}
	_, hasBS := raw["nested_blocksize"]
	_, hasDT := raw["nested_dtype"]
	_, hasOff := raw["nested_offset"]
	if !(hasBS || hasDT || hasOff) {
		return s, nil
	}
	s.Nested = true
	if _, err := field("nested_blocksize", &s.NestedBlockSize, true); err != nil {
		return nil, err
	}
	if err := CheckBlockSize(s.NestedBlockSize); err != nil {
		return nil, fmt.Errorf("quant state %s: field \"nested_blocksize\": %w", name, err)
	}
	if _, err := field("nested_dtype", &s.NestedDType, true); err != nil {
		return nil, err
	}
	if s.NestedDType != "float32" {
		return nil, fmt.Errorf("quant state %s: field \"nested_dtype\": %q, only float32 is supported", name, s.NestedDType)
	}
	var off float64
	if _, err := field("nested_offset", &off, true); err != nil {
		return nil, err
	}
	s.NestedOffset = float32(off)
	return s, nil
}
