package lora

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
)

// Linear describes one linear layer of a base model that an adapter may target.
type Linear struct {
	Path    string    // module path without the PEFT prefix, e.g. "model.layers.0.self_attn.q_proj"
	In, Out int       // the layer computes y[Out] = W[Out, In]·x[In]
	Weight  []float32 // [Out, In] row-major; needed only to initialise a DoRA magnitude; not retained
}

// Module is the adapter of one linear layer. A, B and Magnitude are owned by the Module; callers
// may read and (for training) update them in place.
type Module struct {
	Path      string    // as in Linear.Path
	In, Out   int       // the base layer's shape
	R         int       // rank
	Scale     float32   // alpha/r, or alpha/sqrt(r) with rsLoRA
	A         []float32 // [R, In] row-major
	B         []float32 // [Out, R] row-major
	Magnitude []float32 // [Out]: DoRA's magnitude vector; nil for plain LoRA

	merged     bool      // the update was added into a base weight by Merge
	mergedNorm []float32 // DoRA: the row norms used by Merge, for Unmerge
}

// Adapter is one named LoRA adapter: its config and one Module per targeted linear layer.
type Adapter struct {
	Config  Config
	Modules map[string]*Module // keyed by Module.Path
}

// Paths returns the module paths in sorted order (the order used for optimizer state and files).
func (a *Adapter) Paths() []string {
	ps := make([]string, 0, len(a.Modules))
	for p := range a.Modules {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// NumParams returns the number of trainable parameters (A, B and magnitudes).
func (a *Adapter) NumParams() int {
	n := 0
	for _, m := range a.Modules {
		n += len(m.A) + len(m.B) + len(m.Magnitude)
	}
	return n
}

// Clone returns a deep copy (merge state not copied).
func (a *Adapter) Clone() *Adapter {
	c := &Adapter{Config: a.Config, Modules: make(map[string]*Module, len(a.Modules))}
	for p, m := range a.Modules {
		c.Modules[p] = &Module{Path: m.Path, In: m.In, Out: m.Out, R: m.R, Scale: m.Scale,
			A: append([]float32(nil), m.A...), B: append([]float32(nil), m.B...),
			Magnitude: append([]float32(nil), m.Magnitude...)}
		if m.Magnitude == nil {
			c.Modules[p].Magnitude = nil
		}
	}
	return c
}

// New creates an adapter for the linear layers of a base model that cfg targets, initialised per
// cfg.InitLoraWeights with a generator seeded by seed (each module's stream is derived from seed and
// its path, so the result does not depend on the order of linears). For DoRA each targeted Linear
// must carry its Weight.
func New(cfg Config, linears []Linear, seed uint64) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Adapter{Config: cfg, Modules: map[string]*Module{}}
	for _, l := range linears {
		ok, err := cfg.Targets(l.Path)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		r := cfg.RankFor(l.Path)
		m := &Module{Path: l.Path, In: l.In, Out: l.Out, R: r, Scale: float32(cfg.ScaleFor(l.Path)),
			A: make([]float32, r*l.In), B: make([]float32, l.Out*r)}
		if err := m.initWeights(cfg.InitLoraWeights, seed); err != nil {
			return nil, err
		}
		if cfg.UseDoRA {
			if len(l.Weight) != l.In*l.Out {
				return nil, fmt.Errorf("lora: DoRA init of %s needs its base weight [%d, %d], got %d values", l.Path, l.Out, l.In, len(l.Weight))
			}
			m.Magnitude = m.rowNorms(l.Weight)
		}
		a.Modules[l.Path] = m
	}
	if len(a.Modules) == 0 {
		return nil, fmt.Errorf("lora: target_modules %s matches none of the %d linear layers", mustJSON(cfg.TargetModules), len(linears))
	}
	return a, nil
}

func mustJSON(t Targets) string {
	b, _ := t.MarshalJSON()
	return string(b)
}

// rng returns the module's generator: PCG seeded by seed and a hash of the path.
func (m *Module) rng(seed uint64) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(m.Path))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// kaimingUniform fills w (a [rows, fanIn] weight) as torch's nn.Linear default init does:
// kaiming_uniform_ with a = sqrt(5), i.e. U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
func kaimingUniform(w []float32, fanIn int, g *rand.Rand) {
	bound := 1 / math.Sqrt(float64(fanIn))
	for i := range w {
		w[i] = float32((2*g.Float64() - 1) * bound)
	}
}

func (m *Module) initWeights(mode InitMode, seed uint64) error {
	g := m.rng(seed)
	switch mode.Value {
	case "", "true":
		kaimingUniform(m.A, m.In, g)
		clear(m.B)
	case "false":
		kaimingUniform(m.A, m.In, g)
		kaimingUniform(m.B, m.R, g)
	case "gaussian":
		std := 1 / float64(m.R)
		for i := range m.A {
			m.A[i] = float32(g.NormFloat64() * std)
		}
		clear(m.B)
	default:
		return fmt.Errorf("lora: init_lora_weights %q is not supported here (use true, false or \"gaussian\")", mode.Value)
	}
	return nil
}

// Delta returns scale·B·A as [Out, In] row-major (a new slice the caller owns), accumulated in float64.
func (m *Module) Delta() []float32 {
	d := make([]float32, m.Out*m.In)
	row := make([]float64, m.In)
	for o := 0; o < m.Out; o++ {
		clear(row)
		for k := 0; k < m.R; k++ {
			b := float64(m.B[o*m.R+k])
			if b == 0 {
				continue
			}
			ak := m.A[k*m.In : (k+1)*m.In]
			for i, av := range ak {
				row[i] += b * float64(av)
			}
		}
		for i, v := range row {
			d[o*m.In+i] = float32(float64(m.Scale) * v)
		}
	}
	return d
}

// rowNorms returns ‖W + scale·B·A‖ per output row ([Out]), the DoRA weight norm.
func (m *Module) rowNorms(w []float32) []float32 {
	d := m.Delta()
	n := make([]float32, m.Out)
	for o := 0; o < m.Out; o++ {
		var s float64
		for i := 0; i < m.In; i++ {
			v := float64(w[o*m.In+i]) + float64(d[o*m.In+i])
			s += v * v
		}
		n[o] = float32(math.Sqrt(s))
	}
	return n
}

// WeightNorm returns DoRA's per-row norm ‖W + scale·B·A‖ ([Out]) for base weight w ([Out, In]).
func (m *Module) WeightNorm(w []float32) []float32 { return m.rowNorms(w) }

// Merged reports whether Merge has been applied and not undone.
func (m *Module) Merged() bool { return m.merged }

// Merge adds the adapter into the base weight w ([Out, In], modified in place):
// W ← W + scale·B·A, or for DoRA W ← (magnitude/‖W + scale·B·A‖)·(W + scale·B·A) row by row.
func (m *Module) Merge(w []float32) error {
	if len(w) != m.Out*m.In {
		return fmt.Errorf("lora: merge %s: base weight has %d values, want [%d, %d]", m.Path, len(w), m.Out, m.In)
	}
	if m.merged {
		return fmt.Errorf("lora: merge %s: already merged", m.Path)
	}
	d := m.Delta()
	if m.Magnitude != nil {
		m.mergedNorm = m.rowNorms(w)
	}
	for o := 0; o < m.Out; o++ {
		f := float32(1)
		if m.Magnitude != nil {
			f = m.Magnitude[o] / m.mergedNorm[o]
		}
		for i := 0; i < m.In; i++ {
			w[o*m.In+i] = f * (w[o*m.In+i] + d[o*m.In+i])
		}
	}
	m.merged = true
	return nil
}

// Unmerge undoes Merge on the same weight w: W ← W − scale·B·A, or for DoRA W ← W·‖·‖/magnitude −
// scale·B·A with the norms remembered by Merge. Round-off of float32 remains (about 1e-7 relative).
func (m *Module) Unmerge(w []float32) error {
	if len(w) != m.Out*m.In {
		return fmt.Errorf("lora: unmerge %s: base weight has %d values, want [%d, %d]", m.Path, len(w), m.Out, m.In)
	}
	if !m.merged {
		return fmt.Errorf("lora: unmerge %s: not merged", m.Path)
	}
	d := m.Delta()
	for o := 0; o < m.Out; o++ {
		f := float32(1)
		if m.Magnitude != nil {
			f = m.mergedNorm[o] / m.Magnitude[o]
		}
		for i := 0; i < m.In; i++ {
			w[o*m.In+i] = f*w[o*m.In+i] - d[o*m.In+i]
		}
	}
	m.merged, m.mergedNorm = false, nil
	return nil
}
