package train

import (
	"fmt"

	"github.com/finlora/finlora/lora"
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

// Layer holds the frozen weights of one decoder layer, borrowed from the Base's owner: linear
// weights are [out, in] (HF layout) F32/F16/BF16; biases (Qwen2) and per-head norms (Qwen3) are nil
// when the architecture has none.
type Layer struct {
	AttnNorm, MLPNorm   *tensor.Tensor // [H]
	Q, K, V, O          *tensor.Tensor // [Hq·D, H], [Hkv·D, H], [Hkv·D, H], [H, Hq·D]
	Gate, Up, Down      *tensor.Tensor // [I, H], [I, H], [H, I]
	QBias, KBias, VBias *tensor.Tensor // [Hq·D], [Hkv·D], [Hkv·D] or nil
	QNorm, KNorm        *tensor.Tensor // [D] or nil
}

// Base is a frozen decoder on a backend as the training graph sees it. The tensors belong to whoever
// made the Base: Close frees them only when the Base was made by LoadBase.
type Base struct {
	Arch      Arch
	Backend   tensor.Backend
	Embed     *tensor.Tensor // [V, H]
	FinalNorm *tensor.Tensor // [H]
	LMHead    *tensor.Tensor // [V, H]; the same tensor as Embed when embeddings are tied
	Layers    []Layer
	Cos, Sin  *tensor.Tensor // rotary tables F32 [P, D/2] (scaling applied), P = max positions
	NegSin    *tensor.Tensor // −Sin, for the backward of Rope

	owned []*tensor.Tensor
}

// Close frees the tensors the Base owns (all of them after LoadBase; none for a borrowed Base).
func (m *Base) Close() error {
	err := tensor.FreeAll(m.owned...)
	m.owned = nil
	return err
}

// ModulePath returns the PEFT module path of linear `name` (q_proj, k_proj, v_proj, o_proj,
// gate_proj, up_proj, down_proj) of layer l, e.g. "model.layers.0.self_attn.q_proj".
func ModulePath(l int, name string) string {
	switch name {
	case "gate_proj", "up_proj", "down_proj":
		return fmt.Sprintf("model.layers.%d.mlp.%s", l, name)
	}
	return fmt.Sprintf("model.layers.%d.self_attn.%s", l, name)
}

// LinearNames are the adaptable linear layers of a decoder layer, in order.
var LinearNames = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// weight returns the weight of linear `name` in layer ly.
func (ly *Layer) weight(name string) *tensor.Tensor {
	switch name {
	case "q_proj":
		return ly.Q
	case "k_proj":
		return ly.K
	case "v_proj":
		return ly.V
	case "o_proj":
		return ly.O
	case "gate_proj":
		return ly.Gate
	case "up_proj":
		return ly.Up
	case "down_proj":
		return ly.Down
	}
	panic("train: unknown linear " + name)
}

// Linears lists the adaptable linear layers for lora.New. With weights set, each carries its
// weight as float32 (needed for DoRA's magnitude init; a copy the caller owns).
func (m *Base) Linears(weights bool) ([]lora.Linear, error) {
	var out []lora.Linear
	for l := range m.Layers {
		for _, n := range LinearNames {
			w := m.Layers[l].weight(n)
			lin := lora.Linear{Path: ModulePath(l, n), In: w.Dim(1), Out: w.Dim(0)}
			if weights {
				v, err := m.Backend.ToFloat32(w)
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

// CheckAdapter verifies that every module of a targets a linear layer of m with matching shapes.
func (m *Base) CheckAdapter(a *lora.Adapter) error {
	shapes := map[string][2]int{}
	for l := range m.Layers {
		for _, n := range LinearNames {
			w := m.Layers[l].weight(n)
			shapes[ModulePath(l, n)] = [2]int{w.Dim(0), w.Dim(1)}
		}
	}
	for _, p := range a.Paths() {
		mod := a.Modules[p]
		s, ok := shapes[p]
		if !ok {
			return fmt.Errorf("train: adapter module %s is not a linear layer of the model", p)
		}
		if s != [2]int{mod.Out, mod.In} {
			return fmt.Errorf("train: adapter module %s is [%d, %d], the model's layer is %v", p, mod.Out, mod.In, s)
		}
	}
	return nil
}
