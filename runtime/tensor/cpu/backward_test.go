package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

// The backward ops are checked against central finite differences of float64 reference forwards
// written here: for a random upstream gradient dy, ∂(Σ dy⊙f(x))/∂x_i ≈ (L(x+h·e_i) − L(x−h·e_i))/2h.

func randVec(g *rand.Rand, n int, s float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = g.NormFloat64() * s
	}
	return v
}

func f32s(v []float64) []float32 {
	o := make([]float32, len(v))
	for i, x := range v {
		o[i] = float32(x)
	}
	return o
}

// numGrad returns the finite-difference gradient of Σ dy⊙f(x) with respect to x.
func numGrad(x, dy []float64, f func(x []float64) []float64) []float64 {
	const h = 1e-6
	g := make([]float64, len(x))
	for i := range x {
		old := x[i]
		x[i] = old + h
		yp := f(x)
		x[i] = old - h
		ym := f(x)
		x[i] = old
		var s float64
		for j := range dy {
			s += dy[j] * (yp[j] - ym[j])
		}
		g[i] = s / (2 * h)
	}
	return g
}

func tens(t *testing.T, b *Backend, shape []int, v []float64) *tensor.Tensor {
	t.Helper()
	x, err := b.FromFloat32(tensor.F32, shape, f32s(v))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func host(t *testing.T, b *Backend, x *tensor.Tensor) []float32 {
	t.Helper()
	v, err := b.ToFloat32(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// closeTo fails when max|got−want| > tol·max(1, max|want|).
func closeTo(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	var d, m float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i])-want[i]))
		m = math.Max(m, math.Abs(want[i]))
	}
	if d > tol*math.Max(1, m) {
		t.Errorf("%s: max abs diff %.3g (max |want| %.3g)", what, d, m)
	}
}

func refRMSNorm(x, w []float64, d int, eps float64, addOne bool) []float64 {
	y := make([]float64, len(x))
	for r := 0; r < len(x)/d; r++ {
		var ss float64
		for i := 0; i < d; i++ {
			ss += x[r*d+i] * x[r*d+i]
		}
		inv := 1 / math.Sqrt(ss/float64(d)+eps)
		for i := 0; i < d; i++ {
			wi := w[i]
			if addOne {
				wi++
			}
			y[r*d+i] = x[r*d+i] * inv * wi
		}
	}
	return y
}

func TestRMSNormBackward(t *testing.T) {
	b := New(2)
	g := rand.New(rand.NewPCG(1, 2))
	for _, addOne := range []bool{false, true} {
		rows, d := 5, 12
		x, w, dy := randVec(g, rows*d, 1), randVec(g, d, 0.5), randVec(g, rows*d, 1)
		want := numGrad(x, dy, func(x []float64) []float64 { return refRMSNorm(x, w, d, 1e-5, addOne) })
		dx := tens(t, b, []int{rows, d}, make([]float64, rows*d))
		if err := b.RMSNormBackward(dx, tens(t, b, []int{rows, d}, dy), tens(t, b, []int{rows, d}, x), tens(t, b, []int{d}, w), 1e-5, addOne); err != nil {
			t.Fatal(err)
		}
		closeTo(t, "rmsnorm dx", host(t, b, dx), want, 1e-5)
	}
}

func TestSwiGLUBackward(t *testing.T) {
	b := New(2)
	g := rand.New(rand.NewPCG(3, 4))
	n := 40
	gate, up, dy := randVec(g, n, 2), randVec(g, n, 1), randVec(g, n, 1)
	silu := func(x float64) float64 { return x / (1 + math.Exp(-x)) }
	wantG := numGrad(gate, dy, func(gt []float64) []float64 {
		y := make([]float64, n)
		for i := range y {
			y[i] = silu(gt[i]) * up[i]
		}
		return y
	})
	wantU := numGrad(up, dy, func(u []float64) []float64 {
		y := make([]float64, n)
		for i := range y {
			y[i] = silu(gate[i]) * u[i]
		}
		return y
	})
	dg, du := tens(t, b, []int{n}, make([]float64, n)), tens(t, b, []int{n}, make([]float64, n))
	if err := b.SwiGLUBackward(dg, du, tens(t, b, []int{n}, dy), tens(t, b, []int{n}, gate), tens(t, b, []int{n}, up)); err != nil {
		t.Fatal(err)
	}
	closeTo(t, "swiglu dgate", host(t, b, dg), wantG, 1e-5)
	closeTo(t, "swiglu dup", host(t, b, du), wantU, 1e-5)
}

func TestCrossEntropyBackward(t *testing.T) {
	b := New(2)
	g := rand.New(rand.NewPCG(5, 6))
	n, v := 6, 9
	logits := randVec(g, n*v, 2)
	labels := []int32{3, -100, 0, 8, -100, 5}
	count := 4.0
	// L = mean over counted rows of logsumexp − logit[label]; dy = 1 (scalar loss)
	want := numGrad(logits, []float64{1}, func(x []float64) []float64 {
		var s float64
		for r, l := range labels {
			if l == -100 {
				continue
			}
			m := math.Inf(-1)
			for i := 0; i < v; i++ {
				m = math.Max(m, x[r*v+i])
			}
			var z float64
			for i := 0; i < v; i++ {
				z += math.Exp(x[r*v+i] - m)
			}
			s += m + math.Log(z) - x[r*v+int(l)]
		}
		return []float64{s / count}
	})
	lt, _ := b.FromInt32([]int{n}, labels)
	dl := tens(t, b, []int{n, v}, make([]float64, n*v))
	if err := b.CrossEntropyBackward(dl, tens(t, b, []int{n, v}, logits), lt, float32(1/count)); err != nil {
		t.Fatal(err)
	}
	closeTo(t, "cross-entropy dlogits", host(t, b, dl), want, 1e-5)
}

// refAttention is GQA attention in float64 with AttentionParams' visibility rule.
func refAttention(q, k, v []float64, B, T, Hq, S, Hkv, D int, p tensor.AttentionParams) []float64 {
	out := make([]float64, len(q))
	kvLen := p.KVLen
	if kvLen == 0 {
		kvLen = p.QStart + T
	}
	for bi := 0; bi < B; bi++ {
		for h := 0; h < Hq; h++ {
			hk := h / (Hq / Hkv)
			for t := 0; t < T; t++ {
				qs := p.QStart + t
				var ws []float64
				var js []int
				m := math.Inf(-1)
				for j := 0; j < kvLen; j++ {
					if (p.KeyStart != nil && j < p.KeyStart[bi]) || j > qs || (p.Window > 0 && qs-j >= p.Window) {
						continue
					}
					var s float64
					for i := 0; i < D; i++ {
						s += q[((bi*T+t)*Hq+h)*D+i] * k[((bi*S+j)*Hkv+hk)*D+i]
					}
					s *= float64(p.Scale)
					ws, js = append(ws, s), append(js, j)
					m = math.Max(m, s)
				}
				var z float64
				for i := range ws {
					ws[i] = math.Exp(ws[i] - m)
					z += ws[i]
				}
				for n, j := range js {
					for i := 0; i < D; i++ {
						out[((bi*T+t)*Hq+h)*D+i] += ws[n] / z * v[((bi*S+j)*Hkv+hk)*D+i]
					}
				}
			}
		}
	}
	return out
}

func TestAttentionBackward(t *testing.T) {
	b := New(2)
	g := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		name                string
		B, T, Hq, Hkv, S, D int
		p                   tensor.AttentionParams
	}{
		{"causal gqa", 2, 5, 4, 2, 5, 4, tensor.AttentionParams{}},
		{"left padding", 2, 6, 2, 1, 6, 3, tensor.AttentionParams{KeyStart: []int{0, 2}}},
		{"cache and window", 1, 3, 2, 2, 7, 4, tensor.AttentionParams{QStart: 3, KVLen: 6, Window: 3}},
	} {
		tc.p.Scale = float32(1 / math.Sqrt(float64(tc.D)))
		nq, nk := tc.B*tc.T*tc.Hq*tc.D, tc.B*tc.S*tc.Hkv*tc.D
		q, k, v, dy := randVec(g, nq, 1), randVec(g, nk, 1), randVec(g, nk, 1), randVec(g, nq, 1)
		if tc.p.KeyStart != nil { // padding query rows produce zeros and get no gradient
			for bi := 0; bi < tc.B; bi++ {
				for t := 0; t < tc.p.KeyStart[bi]; t++ {
					for i := 0; i < tc.Hq*tc.D; i++ {
						dy[(bi*tc.T+t)*tc.Hq*tc.D+i] = 0
					}
				}
			}
		}
		f := func(q, k, v []float64) []float64 {
			return refAttention(q, k, v, tc.B, tc.T, tc.Hq, tc.S, tc.Hkv, tc.D, tc.p)
		}
		wq := numGrad(q, dy, func(x []float64) []float64 { return f(x, k, v) })
		wk := numGrad(k, dy, func(x []float64) []float64 { return f(q, x, v) })
		wv := numGrad(v, dy, func(x []float64) []float64 { return f(q, k, x) })
		qs, ks := []int{tc.B, tc.T, tc.Hq, tc.D}, []int{tc.B, tc.S, tc.Hkv, tc.D}
		dq, dk, dv := tens(t, b, qs, make([]float64, nq)), tens(t, b, ks, make([]float64, nk)), tens(t, b, ks, make([]float64, nk))
		err := b.AttentionBackward(dq, dk, dv, tens(t, b, qs, dy), tens(t, b, qs, q), tens(t, b, ks, k), tens(t, b, ks, v),
			tens(t, b, qs, f(q, k, v)), tc.p)
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, tc.name+" dq", host(t, b, dq), wq, 1e-5)
		closeTo(t, tc.name+" dk", host(t, b, dk), wk, 1e-5)
		closeTo(t, tc.name+" dv", host(t, b, dv), wv, 1e-5)
	}
}

func TestSumRowsMulCols(t *testing.T) {
	b := New(2)
	g := rand.New(rand.NewPCG(9, 10))
	r, c := 7, 5
	x, v, dy := randVec(g, r*c, 1), randVec(g, c, 1), randVec(g, r*c, 1)
	// d(Σ dy⊙(x·v))/dv = Σ_r dy⊙x: SumRows of dy⊙x
	want := numGrad(v, dy, func(v []float64) []float64 {
		y := make([]float64, r*c)
		for i := range y {
			y[i] = x[i] * v[i%c]
		}
		return y
	})
	prod := tens(t, b, []int{r, c}, make([]float64, r*c))
	if err := b.Mul(prod, tens(t, b, []int{r, c}, dy), tens(t, b, []int{r, c}, x)); err != nil {
		t.Fatal(err)
	}
	out := tens(t, b, []int{c}, []float64{1, 1, 1, 1, 1})
	if err := b.SumRows(out, prod, 0); err != nil {
		t.Fatal(err)
	}
	closeTo(t, "sum rows", host(t, b, out), want, 1e-5)
	mc := tens(t, b, []int{r, c}, make([]float64, r*c))
	if err := b.MulCols(mc, tens(t, b, []int{r, c}, x), tens(t, b, []int{c}, v)); err != nil {
		t.Fatal(err)
	}
	wantMC := make([]float64, r*c)
	for i := range wantMC {
		wantMC[i] = x[i] * v[i%c]
	}
	closeTo(t, "mul cols", host(t, b, mc), wantMC, 1e-6)
	ss, err := b.SumSquares(tens(t, b, []int{c}, v))
	if err != nil {
		t.Fatal(err)
	}
	var want2 float64
	for _, x := range v {
		want2 += float64(float32(x)) * float64(float32(x))
	}
	if math.Abs(ss-want2) > 1e-9*want2 {
		t.Errorf("sum squares %g, want %g", ss, want2)
	}
}

// The backward of Rope is Rope with the table −sin (as tensor.Ops.Rope documents).
func TestRopeBackward(t *testing.T) {
	b := New(2)
	g := rand.New(rand.NewPCG(11, 12))
	B, T, H, D, P := 2, 3, 2, 6, 5
	n := B * T * H * D
	cos, sin := make([]float64, P*D/2), make([]float64, P*D/2)
	for i := range cos {
		a := g.Float64() * 6
		cos[i], sin[i] = math.Cos(a), math.Sin(a)
	}
	pos := []int32{0, 2, 4, 1, 3, 0}
	ref := func(x []float64) []float64 {
		y := make([]float64, n)
		for bt := 0; bt < B*T; bt++ {
			p := int(pos[bt])
			for h := 0; h < H; h++ {
				o := (bt*H + h) * D
				for i := 0; i < D/2; i++ {
					c, s := cos[p*D/2+i], sin[p*D/2+i]
					y[o+i] = x[o+i]*c - x[o+i+D/2]*s
					y[o+i+D/2] = x[o+i+D/2]*c + x[o+i]*s
				}
			}
		}
		return y
	}
	x, dy := randVec(g, n, 1), randVec(g, n, 1)
	want := numGrad(x, dy, ref)
	negSin := make([]float64, len(sin))
	for i, v := range sin {
		negSin[i] = -v
	}
	d := tens(t, b, []int{B, T, H, D}, dy)
	pt, _ := b.FromInt32([]int{B, T}, pos)
	if err := b.Rope(d, pt, tens(t, b, []int{P, D / 2}, cos), tens(t, b, []int{P, D / 2}, negSin)); err != nil {
		t.Fatal(err)
	}
	closeTo(t, "rope backward", host(t, b, d), want, 1e-5)
}
