package tensortest

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

func testMemory(t *testing.T, b tensor.Backend) {
	e := &env{t: t, b: b}
	defer e.free()
	r := rng(t.Name())
	v := randn(r, 24)
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
		x := e.from(dt, []int{2, 3, 4}, v)
		want := rounded(dt, v)
		got := e.host(x)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s round trip [%d] = %g, want %g", dt, i, got[i], want[i])
			}
		}
		raw, err := b.ToHost(x)
		if err != nil || len(raw) != 24*dt.Size() {
			t.Fatalf("ToHost %s: %d bytes, %v", dt, len(raw), err)
		}
		y, err := b.FromHost(dt, []int{24}, raw)
		if err != nil {
			t.Fatal(err)
		}
		e.live = append(e.live, y)
		if g := e.host(y); fmt.Sprint(g) != fmt.Sprint(got) {
			t.Fatalf("FromHost(ToHost) differs for %s", dt)
		}
		z := e.zeros(tensor.F32, 24)
		if err := b.Copy(z, x); err != nil {
			t.Fatal(err)
		}
		if g := e.host(z); fmt.Sprint(g) != fmt.Sprint(want) {
			t.Fatalf("Copy %s → F32 differs", dt)
		}
	}
	v2, err := e.zeros(tensor.F32, 2, 3, 4).View(6, -1)
	if err != nil || v2.Dim(1) != 4 {
		t.Fatalf("View(6,-1): %v, %v", v2, err)
	}
	ids := e.ints([]int{3}, []int32{5, -1, 7})
	got, err := b.ToInt32(ids)
	if err != nil || fmt.Sprint(got) != "[5 -1 7]" {
		t.Fatalf("ToInt32 = %v, %v", got, err)
	}
	before := b.MemStats().Current
	x, _ := b.Alloc(tensor.F32, 1000)
	if b.MemStats().Current != before+4000 {
		t.Errorf("MemStats after Alloc of 4000 bytes: %+v (before %d)", b.MemStats(), before)
	}
	if err := x.Free(); err != nil || x.Free() != nil {
		t.Fatalf("Free twice: %v", err)
	}
	if b.MemStats().Current != before {
		t.Errorf("MemStats after Free: %+v (before %d)", b.MemStats(), before)
	}
}

func testGemm(t *testing.T, b tensor.Backend) {
	cases := []struct {
		m, n, k     int
		ta, tb      bool
		alpha, beta float32
		dt          tensor.DType
	}{
		{1, 5, 3, false, true, 1, 0, tensor.F32},
		{7, 130, 67, false, true, 1, 0, tensor.F32},
		{70, 65, 33, false, true, 0.5, 1, tensor.BF16},
		{3, 9, 16, false, true, 1, 0, tensor.F16},
		{1, 7, 19, false, true, 1, 0, tensor.BF16},
		{2, 13, 37, false, true, 1, 0.5, tensor.BF16},
		{4, 8, 64, false, true, 1, 0, tensor.BF16},
		{5, 6, 41, false, true, 1, 0, tensor.F32},
		{5, 300, 7, false, false, 1, 0, tensor.F32},
		{6, 4, 9, false, false, 2, 0.5, tensor.BF16},
		{9, 40, 150, false, false, 1, 1, tensor.BF16},
		{4, 33, 200, false, false, 1, 0, tensor.F32},
		{70, 20, 300, true, false, 1, 0, tensor.F32},
		{8, 6, 10, true, false, 1, 0, tensor.F32},
		{8, 6, 10, true, true, 1, 1, tensor.F32},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%dx%dx%d_tA=%v_tB=%v_%s", c.m, c.n, c.k, c.ta, c.tb, c.dt)
		t.Run(name, func(t *testing.T) {
			e := &env{t: t, b: b}
			defer e.free()
			r := rng(t.Name())
			av, wv, ov := randn(r, c.m*c.k), randn(r, c.k*c.n), randn(r, c.m*c.n)
			ashape, wshape := []int{c.m, c.k}, []int{c.k, c.n}
			if c.ta {
				ashape = []int{c.k, c.m}
			}
			if c.tb {
				wshape = []int{c.n, c.k}
			}
			a, w, out := e.from(tensor.F32, ashape, av), e.from(c.dt, wshape, wv), e.from(tensor.F32, []int{c.m, c.n}, ov)
			wr := rounded(c.dt, wv)
			at := func(i, p int) float64 {
				if c.ta {
					return float64(av[p*c.m+i])
				}
				return float64(av[i*c.k+p])
			}
			bt := func(p, j int) float64 {
				if c.tb {
					return float64(wr[j*c.k+p])
				}
				return float64(wr[p*c.n+j])
			}
			want := make([]float64, c.m*c.n)
			for i := 0; i < c.m; i++ {
				for j := 0; j < c.n; j++ {
					var s float64
					for p := 0; p < c.k; p++ {
						s += at(i, p) * bt(p, j)
					}
					want[i*c.n+j] = float64(c.alpha)*s + float64(c.beta)*float64(ov[i*c.n+j])
				}
			}
			if err := b.Gemm(out, a, w, c.ta, c.tb, c.alpha, c.beta); err != nil {
				t.Fatal(err)
			}
			near(t, "gemm", e.host(out), want, Tolerance[c.dt]*math.Sqrt(float64(c.k)))
		})
	}
}

func testElementwise(t *testing.T, b tensor.Backend) {
	e := &env{t: t, b: b}
	defer e.free()
	r := rng(t.Name())
	n := 1000
	av, bv := randn(r, n), randn(r, n)
	a, c := e.from(tensor.F32, []int{10, 100}, av), e.from(tensor.F32, []int{10, 100}, bv)
	out := e.zeros(tensor.F32, 10, 100)
	ref := func(f func(x, y float64) float64) []float64 {
		w := make([]float64, n)
		for i := range w {
			w[i] = f(float64(av[i]), float64(bv[i]))
		}
		return w
	}
	check := func(name string, err error, want []float64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		near(t, name, e.host(out), want, 1e-6)
	}
	check("add", b.Add(out, a, c, -0.5), ref(func(x, y float64) float64 { return x - 0.5*y }))
	check("mul", b.Mul(out, a, c), ref(func(x, y float64) float64 { return x * y }))
	check("scale", b.Scale(out, a, 3), ref(func(x, y float64) float64 { return 3 * x }))
	check("swiglu", b.SwiGLU(out, a, c), ref(func(x, y float64) float64 { return x / (1 + math.Exp(-x)) * y }))
	bias := randn(r, 100)
	bt := e.from(tensor.BF16, []int{100}, bias)
	br := rounded(tensor.BF16, bias)
	if err := b.Copy(out, a); err != nil {
		t.Fatal(err)
	}
	check("addbias", b.AddBias(out, bt), func() []float64 {
		w := make([]float64, n)
		for i := range w {
			w[i] = float64(av[i]) + float64(br[i%100])
		}
		return w
	}())
	// in place
	if err := b.Scale(a, a, 2); err != nil {
		t.Fatal(err)
	}
	near(t, "scale in place", e.host(a), ref(func(x, y float64) float64 { return 2 * x }), 1e-6)
}

func testRMSNorm(t *testing.T, b tensor.Backend) {
	for _, addOne := range []bool{false, true} {
		e := &env{t: t, b: b}
		r := rng(fmt.Sprint(t.Name(), addOne))
		rows, d := 5, 48
		xv, wv := randn(r, rows*d), randn(r, d)
		x, w, out := e.from(tensor.F32, []int{rows, d}, xv), e.from(tensor.BF16, []int{d}, wv), e.zeros(tensor.F32, rows, d)
		wr := rounded(tensor.BF16, wv)
		want := make([]float64, rows*d)
		for i := 0; i < rows; i++ {
			var ss float64
			for j := 0; j < d; j++ {
				ss += float64(xv[i*d+j]) * float64(xv[i*d+j])
			}
			inv := 1 / math.Sqrt(ss/float64(d)+1e-5)
			for j := 0; j < d; j++ {
				f := float64(wr[j])
				if addOne {
					f++
				}
				want[i*d+j] = float64(xv[i*d+j]) * inv * f
			}
		}
		if err := b.RMSNorm(out, x, w, 1e-5, addOne); err != nil {
			t.Fatal(err)
		}
		near(t, fmt.Sprint("rmsnorm addOne=", addOne), e.host(out), want, 1e-5)
		if err := b.RMSNorm(x, x, w, 1e-5, addOne); err != nil {
			t.Fatal(err)
		}
		near(t, "rmsnorm in place", e.host(x), want, 1e-5)
		e.free()
	}
}

func testRope(t *testing.T, b tensor.Backend) {
	e := &env{t: t, b: b}
	defer e.free()
	r := rng(t.Name())
	B, T, H, D, P := 2, 3, 2, 8, 10
	xv := randn(r, B*T*H*D)
	pos := []int32{0, 1, 2, 4, 5, 9}
	cv, sv := make([]float32, P*D/2), make([]float32, P*D/2)
	for p := 0; p < P; p++ {
		for i := 0; i < D/2; i++ {
			a := float64(p) * math.Pow(100, -float64(2*i)/float64(D))
			cv[p*D/2+i], sv[p*D/2+i] = float32(math.Cos(a)), float32(math.Sin(a))
		}
	}
	x := e.from(tensor.F32, []int{B, T, H, D}, xv)
	want := make([]float64, len(xv))
	for bt := 0; bt < B*T; bt++ {
		p := int(pos[bt])
		for h := 0; h < H; h++ {
			v := xv[(bt*H+h)*D:]
			for i := 0; i < D/2; i++ {
				c, s := float64(cv[p*D/2+i]), float64(sv[p*D/2+i])
				want[(bt*H+h)*D+i] = float64(v[i])*c - float64(v[i+D/2])*s
				want[(bt*H+h)*D+i+D/2] = float64(v[i+D/2])*c + float64(v[i])*s
			}
		}
	}
	if err := b.Rope(x, e.ints([]int{B, T}, pos), e.from(tensor.F32, []int{P, D / 2}, cv), e.from(tensor.F32, []int{P, D / 2}, sv)); err != nil {
		t.Fatal(err)
	}
	near(t, "rope", e.host(x), want, 1e-6)
	bad := e.ints([]int{B, T}, []int32{0, 1, 2, 3, 4, 10})
	if err := b.Rope(x, bad, e.from(tensor.F32, []int{P, D / 2}, cv), e.from(tensor.F32, []int{P, D / 2}, sv)); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("rope with a position outside the table: %v, want ErrShape", err)
	}
}

// refAttention computes attention in float64 following tensor.AttentionParams literally.
func refAttention(q, k, v []float32, B, T, hq, S, hkv, D int, p tensor.AttentionParams) (out, lse []float64) {
	out = make([]float64, B*T*hq*D)
	lse = make([]float64, B*hq*T)
	kvLen := p.KVLen
	if kvLen == 0 {
		kvLen = p.QStart + T
	}
	for bi := 0; bi < B; bi++ {
		for t := 0; t < T; t++ {
			for h := 0; h < hq; h++ {
				kh := h / (hq / hkv)
				qs := p.QStart + t
				var sc []float64
				var js []int
				for j := 0; j < S; j++ {
					ks := 0
					if p.KeyStart != nil {
						ks = p.KeyStart[bi]
					}
					if j < ks || j > qs || j >= kvLen || (p.Window > 0 && qs-j >= p.Window) {
						continue
					}
					var s float64
					for i := 0; i < D; i++ {
						s += float64(q[((bi*T+t)*hq+h)*D+i]) * float64(k[((bi*S+j)*hkv+kh)*D+i])
					}
					sc = append(sc, s*float64(p.Scale))
					js = append(js, j)
				}
				if len(sc) == 0 {
					lse[(bi*hq+h)*T+t] = math.Inf(-1)
					continue
				}
				mx := math.Inf(-1)
				for _, s := range sc {
					mx = math.Max(mx, s)
				}
				var z float64
				for _, s := range sc {
					z += math.Exp(s - mx)
				}
				lse[(bi*hq+h)*T+t] = mx + math.Log(z)
				for n, j := range js {
					w := math.Exp(sc[n]-mx) / z
					for i := 0; i < D; i++ {
						out[((bi*T+t)*hq+h)*D+i] += w * float64(v[((bi*S+j)*hkv+kh)*D+i])
					}
				}
			}
		}
	}
	return out, lse
}

func testAttention(t *testing.T, b tensor.Backend) {
	cases := []struct {
		name                string
		B, T, hq, S, hkv, D int
		p                   tensor.AttentionParams
	}{
		{"prefill", 2, 5, 4, 5, 2, 8, tensor.AttentionParams{}},
		{"left-padding", 3, 6, 4, 6, 1, 8, tensor.AttentionParams{KeyStart: []int{0, 2, 5}}},
		{"decode-cache", 2, 1, 4, 9, 2, 8, tensor.AttentionParams{QStart: 6, KVLen: 7, KeyStart: []int{1, 0}}},
		{"chunk-cache", 1, 3, 2, 12, 2, 16, tensor.AttentionParams{QStart: 4, KVLen: 7}},
		{"window", 1, 7, 2, 7, 1, 8, tensor.AttentionParams{Window: 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &env{t: t, b: b}
			defer e.free()
			r := rng(t.Name())
			p := c.p
			p.Scale = float32(1 / math.Sqrt(float64(c.D)))
			qv, kv, vv := randn(r, c.B*c.T*c.hq*c.D), randn(r, c.B*c.S*c.hkv*c.D), randn(r, c.B*c.S*c.hkv*c.D)
			want, wantLSE := refAttention(qv, kv, vv, c.B, c.T, c.hq, c.S, c.hkv, c.D, p)
			out := e.zeros(tensor.F32, c.B, c.T, c.hq, c.D)
			p.LSE = e.zeros(tensor.F32, c.B, c.hq, c.T)
			err := b.Attention(out, e.from(tensor.F32, []int{c.B, c.T, c.hq, c.D}, qv),
				e.from(tensor.F32, []int{c.B, c.S, c.hkv, c.D}, kv), e.from(tensor.F32, []int{c.B, c.S, c.hkv, c.D}, vv), p)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "attention", e.host(out), want, 1e-5)
			gl := e.host(p.LSE)
			for i := range wantLSE {
				if math.IsInf(wantLSE[i], -1) != math.IsInf(float64(gl[i]), -1) {
					t.Fatalf("LSE[%d] = %g, want %g", i, gl[i], wantLSE[i])
				}
				if math.IsInf(wantLSE[i], -1) {
					wantLSE[i], gl[i] = 0, 0
				}
			}
			near(t, "attention LSE", gl, wantLSE, 1e-5)
		})
	}
}

func testEmbedding(t *testing.T, b tensor.Backend) {
	e := &env{t: t, b: b}
	defer e.free()
	r := rng(t.Name())
	V, D := 11, 6
	tv := randn(r, V*D)
	table := e.from(tensor.BF16, []int{V, D}, tv)
	tr := rounded(tensor.BF16, tv)
	ids := []int32{3, 0, 10, 3}
	out := e.zeros(tensor.F32, 2, 2, D)
	if err := b.Embedding(out, table, e.ints([]int{2, 2}, ids)); err != nil {
		t.Fatal(err)
	}
	want := make([]float64, 0, len(ids)*D)
	for _, id := range ids {
		for j := 0; j < D; j++ {
			want = append(want, float64(tr[int(id)*D+j]))
		}
	}
	near(t, "embedding", e.host(out), want, 0)
	if err := b.Embedding(out, table, e.ints([]int{4}, []int32{0, 1, 11, 2})); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("embedding of id 11 in a vocabulary of 11: %v, want ErrShape", err)
	}
}

func testSoftmaxCE(t *testing.T, b tensor.Backend) {
	e := &env{t: t, b: b}
	defer e.free()
	r := rng(t.Name())
	N, V := 4, 37
	xv := randn(r, N*V)
	for i := range xv {
		xv[i] *= 5
	}
	x := e.from(tensor.F32, []int{N, V}, xv)
	labels := []int32{3, -100, 36, 0}
	sm, want, wantCE := e.zeros(tensor.F32, N, V), make([]float64, N*V), make([]float64, N)
	wantArg := make([]int32, N)
	for i := 0; i < N; i++ {
		mx := math.Inf(-1)
		for j := 0; j < V; j++ {
			if float64(xv[i*V+j]) > mx {
				mx, wantArg[i] = float64(xv[i*V+j]), int32(j)
			}
		}
		var z float64
		for j := 0; j < V; j++ {
			z += math.Exp(float64(xv[i*V+j]) - mx)
		}
		for j := 0; j < V; j++ {
			want[i*V+j] = math.Exp(float64(xv[i*V+j])-mx) / z
		}
		if labels[i] != -100 {
			wantCE[i] = mx + math.Log(z) - float64(xv[i*V+int(labels[i])])
		}
	}
	if err := b.Softmax(sm, x); err != nil {
		t.Fatal(err)
	}
	near(t, "softmax", e.host(sm), want, 1e-6)
	loss := e.zeros(tensor.F32, N)
	if err := b.CrossEntropy(loss, x, e.ints([]int{N}, labels)); err != nil {
		t.Fatal(err)
	}
	near(t, "cross entropy", e.host(loss), wantCE, 1e-6)
	am := e.ints([]int{N}, make([]int32, N))
	if err := b.ArgMax(am, x); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.ToInt32(am); fmt.Sprint(got) != fmt.Sprint(wantArg) {
		t.Errorf("argmax = %v, want %v", got, wantArg)
	}
}

func testSlice(t *testing.T, b tensor.Backend) {
	e := &env{t: t, b: b}
	defer e.free()
	v := make([]float32, 2*5*3)
	for i := range v {
		v[i] = float32(i)
	}
	full := e.from(tensor.F32, []int{2, 5, 3}, v)
	part := e.zeros(tensor.F32, 2, 2, 3)
	if err := b.Slice(part, full, 1, 3); err != nil {
		t.Fatal(err)
	}
	got := e.host(part)
	if fmt.Sprint(got) != "[9 10 11 12 13 14 24 25 26 27 28 29]" {
		t.Errorf("slice = %v", got)
	}
	if err := b.Scale(part, part, -1); err != nil {
		t.Fatal(err)
	}
	if err := b.SetSlice(full, part, 1, 0); err != nil {
		t.Fatal(err)
	}
	got = e.host(full)
	if got[0] != -9 || got[5] != -14 || got[6] != 6 || got[15] != -24 || got[21] != 21 {
		t.Errorf("set slice = %v", got)
	}
	if err := b.Slice(part, full, 1, 4); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("slice past the end: %v, want ErrShape", err)
	}
}

func testErrors(t *testing.T, b tensor.Backend) {
	e := &env{t: t, b: b}
	defer e.free()
	a, w, out := e.zeros(tensor.F32, 2, 3), e.zeros(tensor.F32, 4, 5), e.zeros(tensor.F32, 2, 4)
	if err := b.Gemm(out, a, w, false, true, 1, 0); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("gemm with mismatched K: %v, want ErrShape", err)
	}
	ids := e.ints([]int{2}, []int32{0, 1})
	if err := b.Add(out, ids, out, 1); !errors.Is(err, tensor.ErrDType) {
		t.Errorf("add of an I32 tensor: %v, want ErrDType", err)
	}
	dead, _ := b.Alloc(tensor.F32, 2, 4)
	dead.Free()
	if err := b.Scale(out, dead, 1); !errors.Is(err, tensor.ErrFreed) {
		t.Errorf("scale of a freed tensor: %v, want ErrFreed", err)
	}
	if err := b.Attention(out, a, a, a, tensor.AttentionParams{}); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("attention on rank-2 tensors: %v, want ErrShape", err)
	}
}
