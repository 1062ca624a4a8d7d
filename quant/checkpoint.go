package quant

import (
	"fmt"
	"strings"
	"unsafe"

	st "github.com/finlora/finlora/runtime/safetensors"
)

// Tensor names of a quantized linear layer relative to its weight name W (".../q_proj.weight"),
// as transformers saves bitsandbytes layers.
const (
	suffixAbsmax         = ".absmax"
	suffixQuantMap       = ".quant_map"
	suffixNestedAbsmax   = ".nested_absmax"
	suffixNestedQuantMap = ".nested_quant_map"
)

// moduleOf returns the module prefix of a weight name: "a.b.q_proj.weight" -> "a.b.q_proj".
func moduleOf(weight string) string { return strings.TrimSuffix(weight, ".weight") }

// SCBName returns the name of the int8 row scale tensor of weight name W: "<module>.SCB".
func SCBName(weight string) string { return moduleOf(weight) + ".SCB" }

// WeightFormatName returns the name of the int8 layout tensor of weight name W: "<module>.weight_format".
func WeightFormatName(weight string) string { return moduleOf(weight) + ".weight_format" }

// Tensors returns the tensors transformers saves for this 4-bit weight under weight name name, in
// bitsandbytes' dtypes and shapes (see the package doc). The slices alias w's (not copied).
func (w *Weight4) Tensors(name string) []st.Tensor {
	n := w.NumElements()
	out := []st.Tensor{{Name: name, DType: st.U8, Shape: []int{(n + 1) / 2, 1}, Data: w.Packed}}
	qmap := Codebook(w.Type)
	state := QuantState{QuantType: w.Type, BlockSize: w.BlockSize, DType: w.DType, Shape: w.Shape}
	if w.Nested != nil {
		nd := w.Nested
		out = append(out,
			st.Tensor{Name: name + suffixAbsmax, DType: st.U8, Shape: []int{len(nd.Codes)}, Data: nd.Codes},
			st.Tensor{Name: name + suffixNestedAbsmax, DType: st.F32, Shape: []int{len(nd.Absmax)}, Data: st.Float32Bytes(nd.Absmax)},
			st.Tensor{Name: name + suffixNestedQuantMap, DType: st.F32, Shape: []int{len(nd.Map)}, Data: st.Float32Bytes(nd.Map)})
		state.Nested, state.NestedBlockSize, state.NestedDType, state.NestedOffset = true, nd.BlockSize, "float32", nd.Offset
	} else {
		out = append(out, st.Tensor{Name: name + suffixAbsmax, DType: st.F32, Shape: []int{len(w.Absmax)}, Data: st.Float32Bytes(w.Absmax)})
	}
	js, _ := state.MarshalJSON()
	out = append(out,
		st.Tensor{Name: name + suffixQuantMap, DType: st.F32, Shape: []int{16}, Data: st.Float32Bytes(qmap)},
		st.Tensor{Name: name + "." + StateTensorSuffix(w.Type), DType: st.U8, Shape: []int{len(js)}, Data: js})
	return out
}

// Tensors returns the tensors transformers saves for this int8 weight under weight name name:
// the I8 weight, "<module>.SCB" (F32 [rows]) and "<module>.weight_format" (U8 scalar 0: row-major).
// The weight's Data aliases q.Q.
func (q *WeightInt8) Tensors(name string) []st.Tensor {
	var data []byte
	if len(q.Q) > 0 {
		data = unsafe.Slice((*byte)(unsafe.Pointer(&q.Q[0])), len(q.Q)) // same bytes, no copy
	}
	return []st.Tensor{
		{Name: name, DType: st.I8, Shape: []int{q.Rows, q.Cols}, Data: data},
		{Name: SCBName(name), DType: st.F32, Shape: []int{q.Rows}, Data: st.Float32Bytes(q.SCB)},
		{Name: WeightFormatName(name), DType: st.U8, Shape: []int{}, Data: []byte{0}},
	}
}

// Is4bit reports whether src holds a 4-bit weight under name: a U8 weight with a
// "<name>.quant_state.bitsandbytes__nf4|fp4" tensor beside it; it returns the quant type.
func Is4bit(src st.Source, name string) (QuantType, bool) {
	for _, t := range []QuantType{NF4, FP4} {
		if _, ok := src.Info(name + "." + StateTensorSuffix(t)); ok {
			return t, true
		}
	}
	return "", false
}

// IsInt8 reports whether src holds an LLM.int8 weight under name (an I8 weight with its SCB).
func IsInt8(src st.Source, name string) bool {
	info, ok := src.Info(name)
	if !ok || info.DType != st.I8 {
		return false
	}
	_, ok = src.Info(SCBName(name))
	return ok
}

// ReadWeight4 reads the 4-bit weight saved under weight name name and checks that its parts agree:
// the state JSON parses, the packed weight is U8 of (n+1)/2 bytes for the state's shape, absmax
// has ceil(n/blocksize) entries (F32, or U8 codes with the nested tensors present and sized),
// the quant maps are the bitsandbytes codebooks. Every error names the tensor and field. The
// returned weight owns copies of the data.
func ReadWeight4(src st.Source, name string) (*Weight4, error) {
	qt, ok := Is4bit(src, name)
	if !ok {
		return nil, fmt.Errorf("read 4-bit weight %s: no tensor %s.quant_state.bitsandbytes__nf4 or __fp4", name, name)
	}
	s, err := readQuantState(src, name, qt)
	if err != nil {
		return nil, fmt.Errorf("read 4-bit weight %s: %w", name, err)
	}
	w := &Weight4{Type: qt, Shape: s.Shape, DType: s.DType, BlockSize: s.BlockSize}
	n := w.NumElements()
	nb := w.NumBlocks()
	packed, err := tensorBytes(src, name, st.U8)
	if err != nil {
		return nil, fmt.Errorf("read 4-bit weight %s: %w", name, err)
	}
	if len(packed) != (n+1)/2 {
		return nil, fmt.Errorf("read 4-bit weight %s: tensor %s holds %d bytes, the state's shape %v needs %d",
			name, name, len(packed), s.Shape, (n+1)/2)
	}
	w.Packed = append([]byte(nil), packed...)
	if err := checkMap(src, name+suffixQuantMap, Codebook(qt)); err != nil {
		return nil, fmt.Errorf("read 4-bit weight %s: %w", name, err)
	}
	absName := name + suffixAbsmax
	if !s.Nested {
		a, err := tensorFloat32(src, absName, st.F32)
		if err != nil {
			return nil, fmt.Errorf("read 4-bit weight %s: %w", name, err)
		}
		if len(a) != nb {
			return nil, fmt.Errorf("read 4-bit weight %s: tensor %s has %d entries, %d blocks of %d need %d",
				name, absName, len(a), n, s.BlockSize, nb)
		}
		w.Absmax = a
		return w, nil
	}
	codes, err := tensorBytes(src, absName, st.U8)
	if err != nil {
		return nil, fmt.Errorf("read 4-bit weight %s (double quantized): %w", name, err)
	}
	if len(codes) != nb {
		return nil, fmt.Errorf("read 4-bit weight %s: tensor %s has %d codes, %d blocks of %d need %d",
			name, absName, len(codes), n, s.BlockSize, nb)
	}
	nested, err := tensorFloat32(src, name+suffixNestedAbsmax, st.F32)
	if err != nil {
		return nil, fmt.Errorf("read 4-bit weight %s (double quantized): %w", name, err)
	}
	if want := ceilDiv(nb, s.NestedBlockSize); len(nested) != want {
		return nil, fmt.Errorf("read 4-bit weight %s: tensor %s has %d entries, %d absmax in blocks of %d need %d",
			name, name+suffixNestedAbsmax, len(nested), nb, s.NestedBlockSize, want)
	}
	nmap, err := tensorFloat32(src, name+suffixNestedQuantMap, st.F32)
	if err != nil {
		return nil, fmt.Errorf("read 4-bit weight %s (double quantized): %w", name, err)
	}
	if len(nmap) != 256 {
		return nil, fmt.Errorf("read 4-bit weight %s: tensor %s has %d entries, want 256", name, name+suffixNestedQuantMap, len(nmap))
	}
	w.Nested = &NestedAbsmax{Codes: append([]byte(nil), codes...), Absmax: nested, Offset: s.NestedOffset,
		BlockSize: s.NestedBlockSize, Map: nmap}
	return w, nil
}

// readQuantState parses the packed state tensor of the 4-bit weight name of quant type qt.
func readQuantState(src st.Source, name string, qt QuantType) (*QuantState, error) {
	stateName := name + "." + StateTensorSuffix(qt)
	js, err := tensorBytes(src, stateName, st.U8)
	if err != nil {
		return nil, err
	}
	s, err := ParseQuantState(stateName, js)
	if err != nil {
		return nil, err
	}
	if s.QuantType != qt {
		return nil, fmt.Errorf("quant state %s: field \"quant_type\" is %q", stateName, s.QuantType)
	}
	return s, nil
}

// ReadWeightInt8 reads the LLM.int8 weight saved under weight name name: I8 [rows, cols], SCB F32
// [rows], and weight_format (when present) 0 = row-major. The result owns copies of the data.
func ReadWeightInt8(src st.Source, name string) (*WeightInt8, error) {
	info, ok := src.Info(name)
	if !ok {
		return nil, fmt.Errorf("read int8 weight %s: no such tensor", name)
	}
	if info.DType != st.I8 || len(info.Shape) != 2 {
		return nil, fmt.Errorf("read int8 weight %s: tensor is %s %v, want I8 [rows, cols]", name, info.DType, info.Shape)
	}
	raw, err := src.Bytes(name)
	if err != nil {
		return nil, fmt.Errorf("read int8 weight %s: %w", name, err)
	}
	q := &WeightInt8{Rows: info.Shape[0], Cols: info.Shape[1], Q: make([]int8, len(raw))}
	for i, b := range raw {
		q.Q[i] = int8(b)
	}
	scb, err := tensorFloat32(src, SCBName(name), st.F32)
	if err != nil {
		return nil, fmt.Errorf("read int8 weight %s: %w", name, err)
	}
	if len(scb) != q.Rows {
		return nil, fmt.Errorf("read int8 weight %s: tensor %s has %d entries for %d rows", name, SCBName(name), len(scb), q.Rows)
	}
	q.SCB = scb
	if _, ok := src.Info(WeightFormatName(name)); ok {
		f, err := tensorBytes(src, WeightFormatName(name), st.U8)
		if err != nil {
			return nil, fmt.Errorf("read int8 weight %s: %w", name, err)
		}
		if len(f) != 1 || f[0] != 0 {
			return nil, fmt.Errorf("read int8 weight %s: tensor %s = %v: only format 0 (row-major) is supported", name, WeightFormatName(name), f)
		}
	}
	return q, nil
}

// tensorBytes returns the raw bytes of tensor name, which must exist with dtype want.
func tensorBytes(src st.Source, name string, want st.DType) ([]byte, error) {
	info, ok := src.Info(name)
	if !ok {
		return nil, fmt.Errorf("missing tensor %s", name)
	}
	if info.DType != want {
		return nil, fmt.Errorf("tensor %s has dtype %s, want %s", name, info.DType, want)
	}
	return src.Bytes(name)
}

// tensorFloat32 returns tensor name (dtype want) as a new float32 slice.
func tensorFloat32(src st.Source, name string, want st.DType) ([]float32, error) {
	b, err := tensorBytes(src, name, want)
	if err != nil {
		return nil, err
	}
	return st.BytesFloat32(b), nil
}

// checkMap verifies that the F32 tensor name holds exactly the given codebook.
func checkMap(src st.Source, name string, want []float32) error {
	got, err := tensorFloat32(src, name, st.F32)
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return fmt.Errorf("tensor %s has %d entries, want %d", name, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("tensor %s entry %d is %v, the bitsandbytes codebook has %v", name, i, got[i], want[i])
		}
	}
	return nil
}
