package quant

import (
	"testing"

	st "github.com/finlora/finlora/runtime/safetensors"
)

// FuzzReadWeight4 feeds arbitrary quant-state JSON and absmax lengths to the reader: it must
// return an error or a weight whose parts agree (Dequantize then cannot panic).
//
//	go test -run '^$' -fuzz FuzzReadWeight4 -fuzztime 15s ./quant/
func FuzzReadWeight4(f *testing.F) {
	f.Add([]byte(`{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [4, 64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.05}`), 4, true)
	f.Add([]byte(`{"quant_type": "fp4", "blocksize": 128, "dtype": "bfloat16", "shape": [3, 3]}`), 1, false)
	f.Add([]byte(`{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [1e3]}`), 2, false)
	f.Fuzz(func(t *testing.T, js []byte, nAbsmax int, nested bool) {
		if nAbsmax < 0 || nAbsmax > 4096 {
			return
		}
		const W = "l.layers.0.q_proj.weight"
		m := memSource{
			W + ".quant_state.bitsandbytes__nf4": {DType: st.U8, Shape: []int{len(js)}, Data: js},
			W + ".quant_map":                     {DType: st.F32, Shape: []int{16}, Data: st.Float32Bytes(Codebook(NF4))},
			W:                                    {DType: st.U8, Shape: []int{128, 1}, Data: make([]byte, 128)},
		}
		if nested {
			m[W+".absmax"] = st.Tensor{DType: st.U8, Shape: []int{nAbsmax}, Data: make([]byte, nAbsmax)}
			m[W+".nested_absmax"] = st.Tensor{DType: st.F32, Shape: []int{1}, Data: make([]byte, 4)}
			m[W+".nested_quant_map"] = st.Tensor{DType: st.F32, Shape: []int{256}, Data: st.Float32Bytes(DynamicMap())}
		} else {
			m[W+".absmax"] = st.Tensor{DType: st.F32, Shape: []int{nAbsmax}, Data: make([]byte, 4*nAbsmax)}
		}
		w, err := ReadWeight4(m, W)
		if err != nil {
			return
		}
		if got := w.Dequantize(nil); len(got) != w.NumElements() {
			t.Fatalf("dequantized %d values for shape %v", len(got), w.Shape)
		}
	})
}
