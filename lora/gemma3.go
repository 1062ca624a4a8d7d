package lora

import "github.com/finlora/finlora/runtime/model"

// AttachGemma3 is Attach for a Gemma 3 model: it hooks a's modules onto the projections of g
// (matched by HF module name, "model.layers.N.self_attn.q_proj" as in Gemma3ForCausalLM) and
// returns detach, which restores the previous hooks. g does not own a.
func AttachGemma3(g *model.Gemma3, a *Adapter) (detach func(), err error) {
	// A lookup view: Attach reads only Linear(name) and Backend of the model it is given.
	view := &model.Model{Backend: g.Backend, Source: g.Source, LMHead: g.LMHead}
	for _, l := range g.Layers {
		view.Layers = append(view.Layers, &model.Layer{Index: l.Index, Q: l.Q, K: l.K, V: l.V, O: l.O,
			Gate: l.Gate, Up: l.Up, Down: l.Down})
	}
	return Attach(view, a)
}
