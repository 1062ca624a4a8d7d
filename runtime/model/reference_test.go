package model

import (
	"math"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// refModel is a float64 re-implementation of the HF decoders written straight from the
// transformers modeling code (one sequence, no cache), for the variants the fixtures lack
// (qwen2 biases, tied embeddings, sliding windows).
type refModel struct {
	m *Model
	w map[*tensor.Tensor][]float64
}

func (r *refModel) get(t *testing.T, x *tensor.Tensor) []float64 {
	if v, ok := r.w[x]; ok {
		return v
	}
	f, err := r.m.Backend.ToFloat32(x)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float64, len(f))
	for i := range f {
		v[i] = float64(f[i])
	}
	r.w[x] = v
	return v
}

func (r *refModel) linear(t *testing.T, l *Linear, x []float64, rows int) []float64 {
	w := r.get(t, l.Weight)
	out := make([]float64, rows*l.Out)
	for i := 0; i < rows; i++ {
		for o := 0; o < l.Out; o++ {
			var s float64
			for k := 0; k < l.In; k++ {
				s += x[i*l.In+k] * w[o*l.In+k]
			}
			if l.Bias != nil {
				s += r.get(t, l.Bias)[o]
			}
			out[i*l.Out+o] = s
		}
	}
	return out
}

func rmsnorm(x, w []float64, d int, eps float64) []float64 {
	out := make([]float64, len(x))
	for i := 0; i < len(x)/d; i++ {
		var ss float64
		for j := 0; j < d; j++ {
			ss += x[i*d+j] * x[i*d+j]
		}
		inv := 1 / math.Sqrt(ss/float64(d)+eps)
		for j := 0; j < d; j++ {
			out[i*d+j] = x[i*d+j] * inv * w[j]
		}
	}
	return out
}

func (r *refModel) logits(t *testing.T, ids []int32) []float64 {
	c := r.m.Config
	T, D, hd := len(ids), c.HiddenSize, c.HeadDim
	emb := r.get(t, r.m.Embed)
	x := make([]float64, T*D)
	for i, id := range ids {
		copy(x[i*D:(i+1)*D], emb[int(id)*D:(int(id)+1)*D])
	}
	inv := c.InvFreq()
	rope := func(v []float64, heads int) {
		for p := 0; p < T; p++ {
			for h := 0; h < heads; h++ {
				row := v[(p*heads+h)*hd : (p*heads+h+1)*hd]
				rot := make([]float64, hd)
				for i := 0; i < hd; i++ {
					a := float64(p) * inv[i%(hd/2)]
					// x·cos + rotate_half(x)·sin, rotate_half(x) = cat(−x[hd/2:], x[:hd/2])
					rh := -row[(i+hd/2)%hd]
					if i >= hd/2 {
						rh = row[i-hd/2]
					}
					rot[i] = row[i]*math.Cos(a) + rh*math.Sin(a)
				}
				copy(row, rot)
			}
		}
	}
	for _, l := range r.m.Layers {
		h := rmsnorm(x, r.get(t, l.InputNorm), D, c.RMSNormEps)
		q, k, v := r.linear(t, l.Q, h, T), r.linear(t, l.K, h, T), r.linear(t, l.V, h, T)
		if l.QNorm != nil {
			q = rmsnorm(q, r.get(t, l.QNorm), hd, c.RMSNormEps)
			k = rmsnorm(k, r.get(t, l.KNorm), hd, c.RMSNormEps)
		}
		rope(q, c.NumHeads)
		rope(k, c.NumKVHeads)
		att := make([]float64, T*c.NumHeads*hd)
		for p := 0; p < T; p++ {
			for hh := 0; hh < c.NumHeads; hh++ {
				kh := hh / (c.NumHeads / c.NumKVHeads)
				var js []int
				var sc []float64
				for j := 0; j <= p; j++ {
					if l.Window > 0 && p-j >= l.Window {
						continue
					}
					var s float64
					for i := 0; i < hd; i++ {
						s += q[(p*c.NumHeads+hh)*hd+i] * k[(j*c.NumKVHeads+kh)*hd+i]
					}
					js, sc = append(js, j), append(sc, s/math.Sqrt(float64(hd)))
				}
				mx := math.Inf(-1)
				for _, s := range sc {
					mx = math.Max(mx, s)
				}
				var z float64
				for _, s := range sc {
					z += math.Exp(s - mx)
				}
				for n, j := range js {
					w := math.Exp(sc[n]-mx) / z
					for i := 0; i < hd; i++ {
						att[(p*c.NumHeads+hh)*hd+i] += w * v[(j*c.NumKVHeads+kh)*hd+i]
					}
				}
			}
		}
		o := r.linear(t, l.O, att, T)
		for i := range x {
			x[i] += o[i]
		}
		h = rmsnorm(x, r.get(t, l.PostAttnNorm), D, c.RMSNormEps)
		g, u := r.linear(t, l.Gate, h, T), r.linear(t, l.Up, h, T)
		for i := range g {
			g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
		}
		dn := r.linear(t, l.Down, g, T)
		for i := range x {
			x[i] += dn[i]
		}
	}
	x = rmsnorm(x, r.get(t, r.m.Norm), D, c.RMSNormEps)
	return r.linear(t, r.m.LMHead, x, T)
}

// Every supported variant on random weights agrees with the float64 reference above.
func TestVariantsAgainstFloat64Reference(t *testing.T) {
	variant := func(mt string, edit func(c *Config)) *Config {
		c := TinyConfig()
		c.ModelType = mt
		c.VocabSize = 97
		edit(c)
		return c
	}
	cases := map[string]*Config{
		"llama-tied": variant("llama", func(c *Config) { c.TieWordEmbeddings = true; c.NumKVHeads = 4 }),
		"llama-llama3-rope": variant("llama", func(c *Config) {
			c.Rope = Rope{Theta: 500000, Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8}
		}),
		"llama-biases":   variant("llama", func(c *Config) { c.AttentionBias, c.AttentionOutBias, c.MLPBias = true, true, true }),
		"qwen2":          variant("qwen2", func(c *Config) { c.AttentionBias = true; c.Rope.Theta = 1e6 }),
		"qwen3":          variant("qwen3", func(c *Config) { c.QKNorm = true; c.HeadDim = 32 }),
		"mistral-window": variant("mistral", func(c *Config) { c.SlidingWindow = 5 }),
		"qwen2-window-upper-layers": variant("qwen2", func(c *Config) {
			c.AttentionBias, c.UseSlidingWindow, c.SlidingWindow, c.MaxWindowLayers = true, true, 4, 1
		}),
	}
	ids := []int32{1, 50, 3, 96, 7, 7, 20, 64, 0, 12, 33}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := Random(cpu.New(0), cfg, 5, tensor.F32)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			got := hostLogits(t, m, Input{IDs: ids, B: 1}, nil)
			want := (&refModel{m: m, w: map[*tensor.Tensor][]float64{}}).logits(t, ids)
			var worst, scale float64
			for i := range want {
				worst = math.Max(worst, math.Abs(float64(got[i])-want[i]))
				scale = math.Max(scale, math.Abs(want[i]))
			}
			if worst/scale > 1e-5 {
				t.Errorf("relative error %.3g against the float64 reference", worst/scale)
			}
		})
	}
}
