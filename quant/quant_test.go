package quant

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	st "github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
)

// nearest returns the index of the codebook entry nearest to x and the distance to the runner-up
// minus the distance to it (a small margin means x sits near a decision threshold).
func nearest(cb []float32, x float32) (int, float64) {
	best, d1, d2 := 0, math.Inf(1), math.Inf(1)
	for i, c := range cb {
		d := math.Abs(float64(x - c))
		if d < d1 {
			best, d1, d2 = i, d, d1
		} else if d < d2 {
			d2 = d
		}
	}
	return best, d2 - d1
}

// TestDecisionTreesAreNearestCode checks the NF4 and FP4 trees against the nearest-codebook rule
// on random and boundary values in [-1, 1] (away from the thresholds, where bitsandbytes' rounded
// threshold constants decide).
func TestDecisionTreesAreNearestCode(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		qt   QuantType
		tree func(float32) byte
		deq  func(byte) float32
	}{
		{NF4, quantizeNF4, func(b byte) float32 { return nf4Codebook[b] }},
		{FP4, quantizeFP4, dequantizeFP4},
	} {
		cb := Codebook(c.qt)
		xs := []float32{-1, 1, 0}
		for i := 0; i < 200000; i++ {
			xs = append(xs, float32(r.Float64()*2-1))
		}
		for _, x := range xs {
			code := c.tree(x)
			want, margin := nearest(cb, x)
			if margin < 1e-5 {
				continue
			}
			if c.deq(code) != cb[want] && !(c.qt == FP4 && cb[want] == 0 && c.deq(code) == 0) {
				t.Fatalf("%s: x=%v coded %d (%v), nearest is %d (%v)", c.qt, x, code, c.deq(code), want, cb[want])
			}
		}
	}
}

func TestDynamicMapShape(t *testing.T) {
	m := DynamicMap()
	if len(m) != 256 || m[0] > -0.99 || m[255] != 1 || m[127] != 0 {
		t.Fatalf("dynamic map: len %d, ends %v %v", len(m), m[0], m[len(m)-1])
	}
	for i := 1; i < 256; i++ {
		if m[i] < m[i-1] {
			t.Fatalf("dynamic map not sorted at %d", i)
		}
	}
	// Every entry must code to itself.
	for i, v := range m {
		if got := quantizeDynamic(&dynamicMap, v); m[got] != v {
			t.Fatalf("entry %d (%v) codes to %d (%v)", i, v, got, m[got])
		}
	}
}

// TestRoundTrip4 quantizes random weights in every 4-bit variant, saves the tensors, reads them
// back, and bounds the dequantization error by half the widest codebook gap times the absmax.
func TestRoundTrip4(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		name   string
		shape  []int
		o      Options4
		zeroes bool
	}{
		{"nf4-dq-64", []int{48, 40}, Options4{Type: NF4, DoubleQuant: true}, false},
		{"fp4-64", []int{48, 40}, Options4{Type: FP4}, false},
		{"fp4-dq-128", []int{33, 31}, Options4{Type: FP4, BlockSize: 128, DoubleQuant: true}, false}, // odd n
		{"nf4-4096-bf16", []int{96, 128}, Options4{Type: NF4, BlockSize: 4096, DType: "bfloat16"}, false},
		{"nf4-dq-many-nested-blocks", []int{640, 64}, Options4{Type: NF4, DoubleQuant: true}, false},
		// An all-zero block codes as 0 (-1.0) times absmax 0. (With double quantization its absmax
		// decodes to a small nonzero value and the block to -absmax, as in bitsandbytes.)
		{"nf4-zero-block", []int{4, 64}, Options4{Type: NF4}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := make([]float32, numElements(c.shape))
			for i := range w {
				w[i] = float32(r.NormFloat64() * 0.05)
			}
			if c.zeroes {
				clear(w[64:128])
			}
			if c.o.DType != "" {
				RoundToDType(w, c.o.DType)
			}
			q, err := Quantize4(w, c.shape, c.o)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ReadWeight4(newMemSource(q.Tensors("m.layers.0.q_proj.weight")), "m.layers.0.q_proj.weight")
			if err != nil {
				t.Fatal(err)
			}
			d1, d2 := q.Dequantize(nil), back.Dequantize(nil)
			if countDiffF32(d1, d2) != 0 {
				t.Fatal("dequantization differs after a save/read round trip")
			}
			absmax := q.BlockAbsmax()
			gap := float32(0.17) // widest NF4 gap is 1-0.723 = 0.277 (half 0.139); FP4's 1-0.667 = 0.333
			if c.o.Type == FP4 {
				gap = 0.17
			}
			for i, v := range w {
				a := absmax[i/q.BlockSize]
				tol := a*gap + a*0.01 + float32(math.Abs(float64(v)))/128 // + double-quant and dtype rounding
				if e := float32(math.Abs(float64(d1[i] - v))); e > tol {
					t.Fatalf("element %d: %v dequantized to %v (block absmax %v)", i, v, d1[i], a)
				}
			}
			if c.zeroes {
				for i := 64; i < 128; i++ {
					if d1[i] != 0 {
						t.Fatalf("zero block element %d dequantized to %v", i, d1[i])
					}
				}
			}
		})
	}
}

func TestQuantize4Errors(t *testing.T) {
	w := make([]float32, 128)
	for _, c := range []struct {
		name  string
		shape []int
		o     Options4
	}{
		{"type", []int{2, 64}, Options4{Type: "int4"}},
		{"blocksize", []int{2, 64}, Options4{Type: NF4, BlockSize: 96}},
		{"small-blocksize", []int{2, 64}, Options4{Type: NF4, BlockSize: 32}},
		{"shape", []int{3, 64}, Options4{Type: NF4}},
		{"dtype", []int{2, 64}, Options4{Type: NF4, DType: "float64"}},
	} {
		if _, err := Quantize4(w, c.shape, c.o); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if _, err := QuantizeInt8(w, 3, 64); err == nil {
		t.Error("int8 with a wrong shape: no error")
	}
}

func TestInt8ZeroRowAndRoundTrip(t *testing.T) {
	w := []float32{0, 0, 0, 0, 1, -0.5, 0.25, 2}
	q, err := QuantizeInt8(w, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []int8{0, 0, 0, 0, 64, -32, 16, 127} // 63.5 -> 64 (even), -31.75 -> -32, 15.875 -> 16
	for i := range want {
		if q.Q[i] != want[i] {
			t.Fatalf("codes %v, want %v", q.Q, want)
		}
	}
	if q.SCB[0] != 0 || q.SCB[1] != 2 {
		t.Fatalf("SCB %v", q.SCB)
	}
	back, err := ReadWeightInt8(newMemSource(q.Tensors("m.layers.0.o_proj.weight")), "m.layers.0.o_proj.weight")
	if err != nil {
		t.Fatal(err)
	}
	if countDiffF32(back.Dequantize(nil), q.Dequantize(nil)) != 0 {
		t.Fatal("int8 round trip changed the values")
	}
}

// TestCorruptStates breaks one part of a saved 4-bit or int8 weight at a time and expects an error
// naming the tensor (and field) at fault.
func TestCorruptStates(t *testing.T) {
	const W = "model.layers.0.mlp.up_proj.weight"
	w := make([]float32, 40*64)
	for i := range w {
		w[i] = float32(i%17) - 8
	}
	q4, _ := Quantize4(w, []int{40, 64}, Options4{Type: NF4, DoubleQuant: true})
	q8, _ := QuantizeInt8(w, 40, 64)
	state := W + ".quant_state.bitsandbytes__nf4"
	setJSON := func(js string) func(memSource) {
		return func(m memSource) {
			m[state] = st.Tensor{Name: state, DType: st.U8, Shape: []int{len(js)}, Data: []byte(js)}
		}
	}
	for _, c := range []struct {
		name string
		int8 bool
		edit func(memSource)
		want []string // substrings of the error
	}{
		{"absmax-length", false, func(m memSource) {
			t := m[W+".absmax"]
			t.Data, t.Shape = t.Data[:10], []int{10}
			m[W+".absmax"] = t
		}, []string{W + ".absmax", "10 codes", "need 40"}},
		{"bad-json", false, setJSON(`{"quant_type": "nf4", "blocksize": 64,`), []string{state, "bad JSON"}},
		{"unknown-quant-type", false, setJSON(`{"quant_type": "nf5", "blocksize": 64, "dtype": "float32", "shape": [40, 64]}`), []string{state, `"quant_type"`, "nf5"}},
		{"shape-mismatch", false, setJSON(`{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [41, 64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.5}`), []string{W, "shape [41 64]", "needs 1312"}},
		{"missing-field", false, setJSON(`{"quant_type": "nf4", "dtype": "float32", "shape": [40, 64]}`), []string{state, `missing field "blocksize"`}},
		{"bad-field-type", false, setJSON(`{"quant_type": "nf4", "blocksize": "64", "dtype": "float32", "shape": [40, 64]}`), []string{state, `field "blocksize"`}},
		{"nested-partial", false, setJSON(`{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [40, 64], "nested_offset": 0.5}`), []string{state, `missing field "nested_blocksize"`}},
		{"missing-nested-absmax", false, func(m memSource) { delete(m, W+".nested_absmax") }, []string{"missing tensor " + W + ".nested_absmax"}},
		{"missing-nested-map", false, func(m memSource) { delete(m, W+".nested_quant_map") }, []string{"missing tensor " + W + ".nested_quant_map"}},
		{"nested-absmax-dtype", false, func(m memSource) {
			t := m[W+".nested_absmax"]
			t.DType = st.I32
			m[W+".nested_absmax"] = t
		}, []string{W + ".nested_absmax", "dtype I32"}},
		{"quant-map", false, func(m memSource) {
			t := m[W+".quant_map"]
			t.Data = append([]byte(nil), t.Data...)
			t.Data[0] ^= 1
			m[W+".quant_map"] = t
		}, []string{W + ".quant_map", "entry 0"}},
		{"packed-dtype", false, func(m memSource) {
			t := m[W]
			t.DType = st.I8
			m[W] = t
		}, []string{"tensor " + W + " has dtype I8"}},
		{"scb-length", true, func(m memSource) {
			t := m["model.layers.0.mlp.up_proj.SCB"]
			t.Data, t.Shape = t.Data[:8], []int{2}
			m["model.layers.0.mlp.up_proj.SCB"] = t
		}, []string{"model.layers.0.mlp.up_proj.SCB", "2 entries for 40 rows"}},
		{"weight-format", true, func(m memSource) {
			m["model.layers.0.mlp.up_proj.weight_format"] = st.Tensor{Name: "x", DType: st.U8, Shape: []int{}, Data: []byte{1}}
		}, []string{"weight_format", "only format 0"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var m memSource
			var err error
			if c.int8 {
				m = newMemSource(q8.Tensors(W))
				c.edit(m)
				_, err = ReadWeightInt8(m, W)
			} else {
				m = newMemSource(q4.Tensors(W))
				c.edit(m)
				_, err = ReadWeight4(m, W)
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range c.want {
				if !contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if _, err2 := NewDequantizedSource(m); err2 == nil {
				t.Error("NewDequantizedSource accepted the corrupt weight")
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestDequantizedSource reads the NF4 fixture through the float view.
func TestDequantizedSource(t *testing.T) {
	ref := openFixture(t, "tiny-llama-bnb-nf4", "model.safetensors")
	deq := openFixture(t, "tiny-llama-bnb-nf4", "reference_dequantized.safetensors")
	src := openFixture(t, "tiny-llama", "model.safetensors")
	d, err := NewDequantizedSource(ref)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Names(), src.Names(); !slices.Equal(got, want) {
		t.Fatalf("names %v, want the float model's %v", got, want)
	}
	for _, n := range d.Names() {
		info, _ := d.Info(n)
		sinfo, _ := src.Info(n)
		if info.DType != st.F32 || !slices.Equal(info.Shape, sinfo.Shape) {
			t.Errorf("%s: %s %v, want F32 %v", n, info.DType, info.Shape, sinfo.Shape)
		}
		got, err := d.Float32(n)
		if err != nil {
			t.Fatal(err)
		}
		want, err := deq.Float32(n)
		if err != nil { // not quantized: passes through
			want, _ = src.Float32(n)
		}
		if countDiffF32(got, want) != 0 {
			t.Errorf("%s differs", n)
		}
	}
}

// TestFastCodesMatchTrees checks the arithmetic-index coders against bitsandbytes' literal trees
// at every threshold, one float32 step either side, and on random values, zeros and NaN.
func TestFastCodesMatchTrees(t *testing.T) {
	var xs []float32
	for _, th := range append(nf4Thresholds[:], fp4Thresholds[:]...) {
		for _, v := range []float32{th, -th} {
			xs = append(xs, v, math.Nextafter32(v, 2), math.Nextafter32(v, -2))
		}
	}
	r := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 100000; i++ {
		xs = append(xs, float32(r.Float64()*2.2-1.1))
	}
	xs = append(xs, 0, negZero32(), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)))
	for _, x := range xs {
		if a, b := codeNF4(x), quantizeNF4(x); a != b {
			t.Fatalf("NF4 %v: fast %d, tree %d", x, a, b)
		}
		if a, b := codeFP4(x), quantizeFP4(x); a != b {
			t.Fatalf("FP4 %v: fast %d, tree %d", x, a, b)
		}
	}
}

func negZero32() float32 { return math.Float32frombits(1 << 31) }

func TestAbsmaxSkipsNaN(t *testing.T) {
	nan := float32(math.NaN())
	for _, c := range []struct {
		x    []float32
		want float32
	}{
		{[]float32{1, -3, 2}, 3}, {[]float32{nan, -2, 1}, 2}, {[]float32{-0.5, nan}, 0.5},
		{[]float32{nan}, 0}, {nil, 0}, {[]float32{float32(math.Inf(-1)), 1}, float32(math.Inf(1))},
		{[]float32{negZero32()}, 0},
	} {
		if got := absmaxOf(c.x); got != c.want || math.Signbit(float64(got)) {
			t.Errorf("absmaxOf(%v) = %v, want %v", c.x, got, c.want)
		}
	}
}

// TestFastRoundings checks roundF16 against runtime/safetensors' converters and roundInt8 against
// math.RoundToEven, around every boundary and on random values.
func TestFastRoundings(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	var xs []float32
	for _, v := range []float32{6.1035156e-05, 6.0975552e-05, 65504, 65519.99, 65520, 1, 0.5, 2048, 0, 1e-8, 3e-5, 70000} {
		xs = append(xs, v, -v, math.Nextafter32(v, 0), math.Nextafter32(v, 1e9))
	}
	for i := 0; i < 200000; i++ {
		xs = append(xs, math.Float32frombits(r.Uint32()), float32(r.NormFloat64()*0.02))
	}
	for _, x := range xs {
		want := tensor.F16ToFloat32(tensor.Float32ToF16(x))
		if got := roundF16(x); math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("roundF16(%v) = %v, want %v", x, got, want)
		}
	}
	for i := 0; i < 200000; i++ {
		f := float32(r.Float64()*260 - 130)
		if i%4 == 0 {
			f = float32(math.Floor(float64(f))) + 0.5
		}
		want := int8(max(-128, min(127, math.RoundToEven(float64(f)))))
		if got := roundInt8(f); got != want {
			t.Fatalf("roundInt8(%v) = %d, want %d", f, got, want)
		}
	}
	if roundInt8(float32(math.NaN())) != 0 {
		t.Fatal("roundInt8(NaN) != 0")
	}
}
