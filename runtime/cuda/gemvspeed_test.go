package cuda

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/finlora/finlora/quant"
	"github.com/finlora/finlora/runtime/tensor"
)

// TestQuantGEMVSpeed (FINLORA_GEMV_BENCH=1 only; a measurement, not a check) times the 4-bit
// decode GEMVs on the Llama-3.1-8B shapes (NF4, double quant, block 64, bf16 checkpoint dtype) at
// m = 1: the median device time of one call over 30 rounds, each round cycling through copies of
// every weight (≥ 160 MB together: more than the L2 holds), and the rate over the bytes a call
// must read (packed codes and absmax codes; x and the nested absmax are negligible). It prints a
// per-token estimate (32 layers of q, k, v, o, gate, up, down), then the dequantization kernels'
// time into bf16 (x of 8 rows: dequantize + GEMM), new and old.
func TestQuantGEMVSpeed(t *testing.T) {
	if os.Getenv("FINLORA_GEMV_BENCH") != "1" {
		t.Skip("FINLORA_GEMV_BENCH=1 runs it")
	}
	b := gpu(t)
	saved := b.GEMV4
	defer func() { b.GEMV4 = saved }()
	type shape struct {
		name   string
		n, k   int
		perTok int // calls per token (32 layers)
	}
	shapes := []shape{{"q/o 4096x4096", 4096, 4096, 64}, {"k/v 1024x4096", 1024, 4096, 64}, {"gate/up 14336x4096", 14336, 4096, 64}, {"down 4096x14336", 4096, 14336, 32}}
	if only := os.Getenv("FINLORA_GEMV_SHAPES"); only != "" { // e.g. "gate/up": one shape (profiling)
		shapes = slices.DeleteFunc(shapes, func(s shape) bool { return !strings.Contains(s.name, only) })
	}
	g := rand.New(rand.NewPCG(3, 4))
	weights := map[string][]*tensor.QTensor{}
	xs := map[string]*tensor.Tensor{}
	outs := map[string]*tensor.Tensor{}
	bytes := map[string]float64{}
	for _, s := range shapes {
		w := make([]float32, s.n*s.k)
		for i := range w {
			w[i] = float32(g.NormFloat64()) * 0.02
		}
		if err := quant.RoundToDType(w, "bfloat16"); err != nil {
			t.Fatal(err)
		}
		q, err := quant.Quantize4(w, []int{s.n, s.k}, quant.Options4{Type: quant.NF4, DoubleQuant: true, DType: "bfloat16"})
		if err != nil {
			t.Fatal(err)
		}
		h, err := q.Host()
		if err != nil {
			t.Fatal(err)
		}
		bytes[s.name] = float64(len(h.Packed) + len(h.AbsmaxCodes) + 4*len(h.Absmax))
		copies := max(3, int(160e6/bytes[s.name])) // together well over the 50 MB L2
		for c := 0; c < copies; c++ {
			qt, err := b.QuantFromHost(h)
			if err != nil {
				t.Fatal(err)
			}
			defer qt.Free()
			weights[s.name] = append(weights[s.name], qt)
		}
		xv := make([]float32, s.k)
		for i := range xv {
			xv[i] = float32(g.NormFloat64())
		}
		xs[s.name], _ = b.FromFloat32(tensor.F32, []int{1, s.k}, xv)
		outs[s.name], _ = b.Alloc(tensor.F32, 1, s.n)
		defer xs[s.name].Free()
		defer outs[s.name].Free()
	}
	var lines []string
	single := map[string]float64{} // "kernel shape": median ms of one call
	for _, kern := range []string{"gemv4h", "gemv4s", "gemv4t"} {
		b.GEMV4 = kern
		tok := 0.0
		for _, s := range shapes {
			var per []float64
			for round := 0; round < 31; round++ {
				b.StartProfile()
				for _, w := range weights[s.name] {
					if err := b.QuantMatMul(outs[s.name], xs[s.name], w, true, 1, 0); err != nil {
						t.Fatal(err)
					}
				}
				prof, err := b.StopProfile()
				if err != nil {
					t.Fatal(err)
				}
				if round == 0 {
					continue // warm-up: module load
				}
				for _, e := range prof {
					per = append(per, e.Ms/float64(e.Calls))
				}
			}
			sort.Float64s(per)
			ms := per[len(per)/2]
			tok += ms * float64(s.perTok)
			lines = append(lines, fmt.Sprintf("gemv speed %-7s %-20s %8.2f us %7.0f GB/s", kern, s.name, 1e3*ms, bytes[s.name]/(ms*1e-3)/1e9))
			single[kern+" "+s.name] = ms
		}
		lines = append(lines, fmt.Sprintf("gemv speed %-7s per token (32 layers x 7 linears)  %.3f ms", kern, tok))
	}
	// gate and up with their SwiGLU in one launch (gemv4t_swiglu; consecutive copies as the pair)
	b.GEMV4 = ""
	gu := weights["gate/up 14336x4096"]
	if len(gu) == 0 {
		for _, l := range lines {
			fmt.Println(l)
		}
		return
	}
	var per []float64
	for round := 0; round < 31; round++ {
		b.StartProfile()
		for i := 0; i+1 < len(gu); i += 2 {
			if ok, err := b.QuantSwiGLU(outs["gate/up 14336x4096"], xs["gate/up 14336x4096"], gu[i], gu[i+1], nil); err != nil || !ok {
				t.Fatalf("QuantSwiGLU: %v, %v", ok, err)
			}
		}
		prof, err := b.StopProfile()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range prof {
			if round > 0 {
				per = append(per, e.Ms/float64(e.Calls))
			}
		}
	}
	sort.Float64s(per)
	ms := per[len(per)/2]
	lines = append(lines, fmt.Sprintf("gemv speed %-7s %-20s %8.2f us %7.0f GB/s (gate and up: %.2f us a weight)", "gemv4t_swiglu",
		"gate+up 14336x4096", 1e3*ms, 2*bytes["gate/up 14336x4096"]/(ms*1e-3)/1e9, 1e3*ms/2))
	// q, k and v in one launch (gemv4t3), then a token of the fused decode: 32 x (qkv + o + gate/up/SwiGLU + down)
	qo, kv := weights["q/o 4096x4096"], weights["k/v 1024x4096"]
	if len(qo) > 0 && len(kv) > 1 {
		kvOut, _ := b.Alloc(tensor.F32, 1, 1024)
		vOut, _ := b.Alloc(tensor.F32, 1, 1024)
		defer kvOut.Free()
		defer vOut.Free()
		var per3 []float64
		for round := 0; round < 31; round++ {
			b.StartProfile()
			for i := range qo {
				j := (2 * i) % (len(kv) - 1)
				ok, err := b.QuantMatMulSharedX([]*tensor.Tensor{outs["q/o 4096x4096"], kvOut, vOut}, xs["q/o 4096x4096"], []*tensor.QTensor{qo[i], kv[j], kv[j+1]}, nil)
				if err != nil || !ok {
					t.Fatalf("QuantMatMulSharedX: %v, %v", ok, err)
				}
			}
			prof, err := b.StopProfile()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range prof {
				if round > 0 {
					per3 = append(per3, e.Ms/float64(e.Calls))
				}
			}
		}
		sort.Float64s(per3)
		ms3 := per3[len(per3)/2]
		lines = append(lines, fmt.Sprintf("gemv speed %-7s %-20s %8.2f us %7.0f GB/s", "gemv4t3", "q+k+v 6144x4096", 1e3*ms3,
			(bytes["q/o 4096x4096"]+2*bytes["k/v 1024x4096"])/(ms3*1e-3)/1e9))
		if o, d := single["gemv4t q/o 4096x4096"], single["gemv4t down 4096x14336"]; o > 0 && d > 0 {
			lines = append(lines, fmt.Sprintf("gemv speed fused decode per token (32 x (q+k+v, o, gate+up+SwiGLU, down))  %.3f ms", 32*(ms3+o+ms+d)))
		}
	}
	// dequantization into bf16 (the training path: x of 8 rows takes dequantize + GEMM), both kernels;
	// bytes: codes read plus bf16 written
	for _, old := range []bool{false, true} {
		b.OldDequant = old
		for _, s := range shapes {
			x8, _ := b.Alloc(tensor.F32, 8, s.k)
			o8, _ := b.Alloc(tensor.F32, 8, s.n)
			var per []float64
			name := ""
			for round := 0; round < 11; round++ {
				b.StartProfile()
				for _, w := range weights[s.name] {
					if err := b.QuantMatMul(o8, x8, w, true, 1, 0); err != nil {
						t.Fatal(err)
					}
				}
				prof, err := b.StopProfile()
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range prof {
					if round > 0 && len(e.Name) > 7 && e.Name[:7] == "dequant" {
						per, name = append(per, e.Ms/float64(e.Calls)), e.Name
					}
				}
			}
			x8.Free()
			o8.Free()
			sort.Float64s(per)
			ms := per[len(per)/2]
			lines = append(lines, fmt.Sprintf("gemv speed %-15s %-20s %8.2f us %7.0f GB/s (codes read + bf16 written)", name, s.name, 1e3*ms,
				(float64(s.n*s.k)*2.5)/(ms*1e-3)/1e9))
		}
	}
	b.OldDequant = false
	for _, l := range lines {
		fmt.Println(l)
	}
}
