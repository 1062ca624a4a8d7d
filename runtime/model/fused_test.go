package model

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// Tests of the decode fusions of layerForward: Linear.ForwardAdd (the residual add folded into the
// o_proj and down_proj products) and tensor.RopeCacher (rope of q and k plus the KV-cache write in
// one op).

// hostOf returns t's values (test helper).
func hostOf(t *testing.T, b tensor.Backend, x *tensor.Tensor) []float32 {
	t.Helper()
	v, err := b.ToFloat32(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// randTensor makes an F32 (or dt) tensor of normal values times scale on b.
func randTensor(t *testing.T, b tensor.Backend, r *rand.Rand, dt tensor.DType, scale float32, shape ...int) *tensor.Tensor {
	t.Helper()
	v := make([]float32, tensor.Numel(shape))
	for i := range v {
		v[i] = float32(r.NormFloat64()) * scale
	}
	x, err := b.FromFloat32(dt, shape, v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Free() })
	return x
}

// hostAdapter is a test LinearAdapter computed on the host: out = mul·out + x·Dᵀ for a fixed D
// [Out, In]. With mul = 1 it only adds a delta of x (additive reports whether it says so through
// AdditiveAdapter); with mul ≠ 1 it reads out, as DoRA does.
type hostAdapter struct {
	d       []float32
	in, out int
	mul     float32
}

func (h *hostAdapter) Forward(b tensor.Backend, x, out *tensor.Tensor) error {
	xs, err := b.ToFloat32(x)
	if err != nil {
		return err
	}
	ov, err := b.ToFloat32(out)
	if err != nil {
		return err
	}
	for r := 0; r < len(xs)/h.in; r++ {
		for j := 0; j < h.out; j++ {
			var s float64
			for k := 0; k < h.in; k++ {
				s += float64(xs[r*h.in+k]) * float64(h.d[j*h.in+k])
			}
			ov[r*h.out+j] = h.mul*ov[r*h.out+j] + float32(s)
		}
	}
	tmp, err := b.FromFloat32(tensor.F32, out.Shape(), ov)
	if err != nil {
		return err
	}
	defer tmp.Free()
	return b.Copy(out, tmp)
}

// additiveAdapter is hostAdapter marked additive (AdditiveAdapter).
type additiveAdapter struct{ *hostAdapter }

func (additiveAdapter) AddsOnly() bool { return true }

// packedPlain is a PackedWeight over a dense weight (a Gemm) without MatMulTAdd, packedAdder one
// with it: the two packed paths of ForwardAdd.
type packedPlain struct{ w *tensor.Tensor }

func (p packedPlain) MatMulT(b tensor.Backend, x, out *tensor.Tensor) error {
	return b.Gemm(out, x, p.w, false, true, 1, 0)
}
func (p packedPlain) Bytes() int64 { return p.w.Bytes() }
func (p packedPlain) Free() error  { return nil }

type packedAdder struct{ packedPlain }

func (p packedAdder) MatMulTAdd(b tensor.Backend, x, out *tensor.Tensor) error {
	return b.Gemm(out, x, p.w, false, true, 1, 1)
}

// TestLinearForwardAdd: ForwardAdd into a residual r equals Forward into a temporary then
// Add(r, r, tmp), up to float32 rounding order, for dense F32/BF16 weights, a bias, packed weights
// with and without MatMulTAdd, and adapters that only add (fused path) or read out (the fallback:
// fusing them would be wrong, so the comparison checks the choice of path too).
func TestLinearForwardAdd(t *testing.T) {
	b := cpu.New(0)
	r := rand.New(rand.NewPCG(3, 4))
	const rows, in, out = 5, 48, 40
	d := make([]float32, out*in)
	for i := range d {
		d[i] = float32(r.NormFloat64()) * 0.05
	}
	for _, wdt := range []tensor.DType{tensor.F32, tensor.BF16} {
		w := randTensor(t, b, r, wdt, 0.2, out, in)
		for _, bias := range []bool{false, true} {
			for _, packed := range []string{"dense", "packed", "packed-adder"} {
				for _, adapter := range []string{"none", "additive", "unmarked", "reads-out"} {
					name := strings.Join([]string{wdt.String(), map[bool]string{false: "nobias", true: "bias"}[bias], packed, adapter}, "/")
					t.Run(name, func(t *testing.T) {
						l := &Linear{Name: "test_proj", In: in, Out: out}
						switch packed {
						case "dense":
							l.Weight = w
						case "packed":
							l.Packed = packedPlain{w}
						default:
							l.Packed = packedAdder{packedPlain{w}}
						}
						if bias {
							l.Bias = randTensor(t, b, r, wdt, 0.5, out)
						}
						h := &hostAdapter{d: d, in: in, out: out, mul: 1}
						switch adapter {
						case "additive":
							l.Adapter = additiveAdapter{h}
						case "unmarked":
							l.Adapter = h
						case "reads-out":
							h.mul = 1.5
							l.Adapter = h
						}
						x := randTensor(t, b, r, tensor.F32, 1, rows, in)
						res := randTensor(t, b, r, tensor.F32, 2, rows, out)
						want, _ := b.Alloc(tensor.F32, rows, out)
						defer want.Free()
						tmp, _ := b.Alloc(tensor.F32, rows, out)
						defer tmp.Free()
						if err := b.Copy(want, res); err != nil {
							t.Fatal(err)
						}
						if err := l.Forward(b, x, tmp); err != nil {
							t.Fatal(err)
						}
						if err := b.Add(want, want, tmp, 1); err != nil {
							t.Fatal(err)
						}
						if err := l.ForwardAdd(b, x, res); err != nil {
							t.Fatal(err)
						}
						if rel := maxRelErr(hostOf(t, b, res), hostOf(t, b, want)); rel > 1e-6 {
							t.Errorf("ForwardAdd differs from Forward + Add by %.3g relative", rel)
						}
					})
				}
			}
		}
	}
}

// hideRopeCacher is a backend without tensor.RopeCacher (nor any other extension): the model
// takes the Rope, Rope, SetSlice, SetSlice path on it.
type hideRopeCacher struct{ tensor.Backend }

// nopAdapter adds nothing and is not marked additive, so ForwardAdd takes its fallback: Forward
// into a temporary, then Add, the layer's computation before the fusion.
type nopAdapter struct{}

func (nopAdapter) Forward(tensor.Backend, *tensor.Tensor, *tensor.Tensor) error { return nil }

// decodeLogits runs decodeThrough on a cache of len(ids) positions.
func decodeLogits(t *testing.T, m *Model, ids []int32) []float32 {
	t.Helper()
	c, err := m.NewCache(1, len(ids))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free()
	return decodeThrough(t, m, ids, c)
}

// decodeThrough runs a prefill of 10 tokens, a chunk of 3 and the rest token by token through the
// cache c, returning every position's logits.
func decodeThrough(t *testing.T, m *Model, ids []int32, c *Cache) []float32 {
	t.Helper()
	var got []float32
	for _, span := range [][2]int{{0, 10}, {10, 13}} {
		got = append(got, hostLogits(t, m, Input{IDs: ids[span[0]:span[1]], B: 1}, c)...)
	}
	for i := 13; i < len(ids); i++ {
		got = append(got, hostLogits(t, m, Input{IDs: ids[i : i+1], B: 1}, c)...)
	}
	return got
}

// TestDecodeFusionsMatchUnfused: decoding through the cache with the fused rope + cache write
// (the CPU's RopeQKCache) gives the same logits, bit for bit, as the four separate ops (a backend
// without tensor.RopeCacher); and with the residual adds folded into o_proj and down_proj it gives
// the logits of the unfused Forward + Add (forced by a non-additive adapter on those layers) up to
// float32 rounding order.
func TestDecodeFusionsMatchUnfused(t *testing.T) {
	for _, name := range []string{"tiny-llama", "tiny-qwen3"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			ids := referenceIDs(t, dir)
			fused := loadFixture(t, name)
			if _, ok := fused.Backend.(tensor.RopeCacher); !ok {
				t.Fatal("the CPU backend lacks tensor.RopeCacher")
			}
			plain, err := Load(context.Background(), dir, LoadOptions{Backend: hideRopeCacher{cpu.New(0)}})
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Free()
			if _, ok := plain.Backend.(tensor.RopeCacher); ok {
				t.Fatal("the wrapped backend still has tensor.RopeCacher")
			}
			got := decodeLogits(t, fused, ids)
			four := decodeLogits(t, plain, ids)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(four[i]) {
					t.Fatalf("logit %d: %g with RopeQKCache, %g with Rope, Rope, SetSlice, SetSlice", i, got[i], four[i])
				}
			}
			for _, l := range plain.Layers {
				l.O.Adapter, l.Down.Adapter = nopAdapter{}, nopAdapter{}
			}
			unfused := decodeLogits(t, plain, ids)
			if rel := maxRelErr(got, unfused); rel > 1e-5 {
				t.Errorf("fused residual adds differ from Forward + Add by %.3g relative", rel)
			} else {
				t.Logf("fused residual adds: %.3g relative to Forward + Add", rel)
			}
			full := hostLogits(t, fused, Input{IDs: ids, B: 1}, nil)
			if rel := maxRelErr(got, full); rel > 1e-5 {
				t.Errorf("cached decode differs from the full recompute by %.3g", rel)
			}
		})
	}
}

// TestRopeQKCacheCPU: the CPU's RopeQKCache equals Rope, Rope, SetSlice, SetSlice (q, k, both
// caches, bit for bit) at a batch of 2 into a cache with free slots on both sides, and a position
// outside the table is ErrShape leaving everything unchanged.
func TestRopeQKCacheCPU(t *testing.T) {
	b := cpu.New(0)
	r := rand.New(rand.NewPCG(5, 6))
	const B, T, Hq, Hkv, D, C, P, start = 2, 3, 4, 2, 8, 9, 16, 4
	cos := randTensor(t, b, r, tensor.F32, 1, P, D/2)
	sin := randTensor(t, b, r, tensor.F32, 1, P, D/2)
	pos, _ := b.FromInt32([]int{B, T}, []int32{4, 5, 6, 0, 1, 15})
	defer pos.Free()
	mk := func() [5]*tensor.Tensor {
		rr := rand.New(rand.NewPCG(7, 8))
		return [5]*tensor.Tensor{randTensor(t, b, rr, tensor.F32, 1, B, T, Hq, D), randTensor(t, b, rr, tensor.F32, 1, B, T, Hkv, D),
			randTensor(t, b, rr, tensor.F32, 1, B, T, Hkv, D), randTensor(t, b, rr, tensor.F32, 1, B, C, Hkv, D),
			randTensor(t, b, rr, tensor.F32, 1, B, C, Hkv, D)}
	}
	got, want := mk(), mk()
	if err := b.RopeQKCache(got[0], got[1], got[2], pos, cos, sin, got[3], got[4], start); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{b.Rope(want[0], pos, cos, sin), b.Rope(want[1], pos, cos, sin),
		b.SetSlice(want[3], want[1], 1, start), b.SetSlice(want[4], want[2], 1, start)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range []string{"q", "k", "v", "ck", "cv"} {
		g, w := hostOf(t, b, got[i]), hostOf(t, b, want[i])
		for j := range g {
			if math.Float32bits(g[j]) != math.Float32bits(w[j]) {
				t.Fatalf("%s[%d] = %g, want %g", n, j, g[j], w[j])
			}
		}
	}
	bad, _ := b.FromInt32([]int{B, T}, []int32{4, 5, 6, 0, 1, P})
	defer bad.Free()
	fresh := mk()
	before := hostOf(t, b, fresh[3])
	if err := b.RopeQKCache(fresh[0], fresh[1], fresh[2], bad, cos, sin, fresh[3], fresh[4], start); !errors.Is(err, tensor.ErrShape) {
		t.Fatalf("position %d of a table of %d: %v, want ErrShape", P, P, err)
	}
	if rel := maxRelErr(hostOf(t, b, fresh[3]), before); rel != 0 {
		t.Error("a failed RopeQKCache wrote the cache")
	}
	if err := b.RopeQKCache(got[0], got[1], got[2], pos, cos, sin, got[3], got[4], C-T+1); err == nil {
		t.Error("slots past the cache capacity accepted")
	}
}
