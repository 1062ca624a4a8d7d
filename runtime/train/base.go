package train

import (
	"context"
	"fmt"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor"
)

// Arch is the shape of a Llama-family decoder as the training graph needs it.
type Arch struct {
	Hidden       int     // H
	Heads        int     // query heads Hq
	KVHeads      int     // key/value heads Hkv (Hq a multiple)
	HeadDim      int     // D
	Intermediate int     // I, the MLP width
	Vocab        int     // V
	Layers       int     // number of decoder layers
	Eps          float32 // RMSNorm epsilon
}

// LinearNames are the adaptable linear layers of a decoder layer, in order (PEFT's names).
var LinearNames = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// linearIndex maps a name of LinearNames to its index.
func linearIndex(name string) int {
	for i, n := range LinearNames {
		if n == name {
			return i
		}
	}
	panic("train: unknown linear " + name)
}

// Layer holds the frozen weights of one decoder layer, borrowed from the model: W[i] is the weight
// [out, in] (F32/F16/BF16) of LinearNames[i], or nil when Packed[i] holds it quantized (QLoRA);
// Bias[i] its bias [out] or nil; QNorm/KNorm are the per-head norms [D] of Qwen3, nil otherwise.
type Layer struct {
	AttnNorm, MLPNorm *tensor.Tensor // [H]
	W, Bias           [7]*tensor.Tensor
	Packed            [7]PackedLinear
	QNorm, KNorm      *tensor.Tensor
	Window            int // sliding-window size of this layer; 0 = full attention
}

func (ly *Layer) weight(name string) frozen {
	i := linearIndex(name)
	return frozen{dense: ly.W[i], packed: ly.Packed[i]}
}
func (ly *Layer) bias(name string) *tensor.Tensor { return ly.Bias[linearIndex(name)] }

// Base is a frozen decoder as the training graph sees it. Weight tensors are borrowed from the
// model.Model it was made from (which must outlive it); the rotary tables Cos, Sin, NegSin are the
// Base's own copies, freed by Close.
type Base struct {
	Arch      Arch
	Backend   tensor.Backend
	Model     *model.Model
	Embed     *tensor.Tensor // [V, H]
	FinalNorm *tensor.Tensor // [H]
	LMHead    *tensor.Tensor // [V, H]; the same tensor as Embed when embeddings are tied
	Layers    []Layer
	Cos, Sin  *tensor.Tensor // rotary tables F32 [P, D/2] (scaling applied), P = MaxPositions
	NegSin    *tensor.Tensor // −Sin, for the backward of Rope
	// Gemma, when set, makes this a Gemma 3 base (NewGemma3Base; Model is then nil): Cos/Sin/NegSin
	// are the global layers' tables and the graph runs Gemma's layers (gemma3.go).
	Gemma *Gemma3Parts

	ownsModel bool
}

// NewBase wraps a loaded model for training sequences of up to maxPositions tokens (0: the
// model's max_position_embeddings, capped at 4096). Quantized linear layers of the decoder (packed
// weights implementing PackedLinear, e.g. runtime/qmodel's) stay quantized and frozen: QLoRA. The
// model keeps ownership of its weights.
func NewBase(m *model.Model, maxPositions int) (*Base, error) {
	c := m.Config
	if maxPositions <= 0 {
		maxPositions = min(max(c.MaxPositionEmbeddings, 256), 4096)
	}
	base := &Base{Backend: m.Backend, Model: m, Embed: m.Embed, FinalNorm: m.Norm, LMHead: m.LMHead.Weight,
		Arch: Arch{Hidden: c.HiddenSize, Heads: c.NumHeads, KVHeads: c.NumKVHeads, HeadDim: c.HeadDim,
			Intermediate: c.IntermediateSize, Vocab: c.VocabSize, Layers: c.NumLayers, Eps: float32(c.RMSNormEps)}}
	if m.LMHead.Packed != nil || m.LMHead.Bias != nil {
		return nil, fmt.Errorf("train: model %s: a packed or biased LM head is not supported for training", m.Source)
	}
	for _, ml := range m.Layers {
		ly := Layer{AttnNorm: ml.InputNorm, MLPNorm: ml.PostAttnNorm, QNorm: ml.QNorm, KNorm: ml.KNorm, Window: ml.Window}
		for i, lin := range ml.Linears() {
			f, err := frozenOf(m, lin)
			if err != nil {
				return nil, err
			}
			ly.W[i], ly.Packed[i], ly.Bias[i] = f.dense, f.packed, lin.Bias
		}
		base.Layers = append(base.Layers, ly)
	}
	cos, sin, err := m.RopeTables(maxPositions)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	cv, err := m.Backend.ToFloat32(cos)
	if err != nil {
		return nil, err
	}
	sv, err := m.Backend.ToFloat32(sin)
	if err != nil {
		return nil, err
	}
	neg := make([]float32, len(sv))
	for i, v := range sv {
		neg[i] = -v
	}
	shape := cos.Shape()
	for _, x := range []struct {
		dst **tensor.Tensor
		v   []float32
	}{{&base.Cos, cv}, {&base.Sin, sv}, {&base.NegSin, neg}} {
		if *x.dst, err = m.Backend.FromFloat32(tensor.F32, shape, x.v); err != nil {
			base.Close()
			return nil, fmt.Errorf("train: rope tables: %w", err)
		}
	}
	return base, nil
}

// LoadBase loads a Hugging Face model directory with model.Load onto backend b (nil: the default
// backend) and wraps it; Close then frees the model too.
func LoadBase(b tensor.Backend, dir string) (*Base, error) {
	m, err := model.Load(context.Background(), dir, model.LoadOptions{Backend: b})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	base, err := NewBase(m, 0)
	if err != nil {
		m.Free()
		return nil, err
	}
	base.ownsModel = true
	return base, nil
}

// Close frees the rotary tables and, after LoadBase, the model.
func (m *Base) Close() error {
	err := tensor.FreeAll(m.Cos, m.Sin, m.NegSin)
	m.Cos, m.Sin, m.NegSin = nil, nil, nil
	if e := m.Gemma.close(); e != nil && err == nil {
		err = e
	}
	if m.ownsModel && m.Model != nil {
		if e := m.Model.Free(); e != nil && err == nil {
			err = e
		}
		m.Model = nil
	}
	return err
}

// ModulePath returns the PEFT module path of linear `name` (one of LinearNames) of layer l, e.g.
// "model.layers.0.self_attn.q_proj" or "model.layers.0.mlp.down_proj".
func ModulePath(l int, name string) string {
	switch name {
	case "gate_proj", "up_proj", "down_proj":
		return fmt.Sprintf("model.layers.%d.mlp.%s", l, name)
	}
	return fmt.Sprintf("model.layers.%d.self_attn.%s", l, name)
}

// Linears lists the adaptable linear layers for lora.New. With weights set, each carries its
// weight as float32 (needed for DoRA's magnitude init; a copy the caller owns).
func (m *Base) Linears(weights bool) ([]lora.Linear, error) {
	var out []lora.Linear
	for l := range m.Layers {
		for _, n := range LinearNames {
			w := m.Layers[l].weight(n)
			wOut, wIn := w.dims()
			lin := lora.Linear{Path: ModulePath(l, n), In: wIn, Out: wOut}
			if weights {
				v, err := w.float32(m.Backend)
				if err != nil {
					return nil, fmt.Errorf("train: read weight %s: %w", lin.Path, err)
				}
				lin.Weight = v
			}
			out = append(out, lin)
		}
	}
	return out, nil
}

// CheckAdapter verifies that every module of a is a linear layer of m with matching shapes.
func (m *Base) CheckAdapter(a *lora.Adapter) error {
	for _, p := range a.Paths() {
		mod := a.Modules[p]
		w, err := m.frozenWeight(p)
		if err != nil {
			return err
		}
		if out, in := w.dims(); out != mod.Out || in != mod.In {
			return fmt.Errorf("train: adapter module %s is [%d, %d], the model's layer is [%d, %d]", p, mod.Out, mod.In, out, in)
		}
	}
	return nil
}

// weightOf returns the dense base weight of the module at PEFT path p (nil when it is packed).
func (m *Base) weightOf(p string) (*tensor.Tensor, error) {
	f, err := m.frozenWeight(p)
	return f.dense, err
}

// frozenWeight returns the base weight (dense or packed) of the module at PEFT path p.
func (m *Base) frozenWeight(p string) (frozen, error) {
	for l := range m.Layers {
		for _, n := range LinearNames {
			if ModulePath(l, n) == p {
				return m.Layers[l].weight(n), nil
			}
		}
	}
	return frozen{}, fmt.Errorf("train: adapter module %s is not a linear layer of the model", p)
}
