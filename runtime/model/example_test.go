package model_test

import (
	"context"
	"fmt"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor"
	_ "github.com/finlora/finlora/runtime/tensor/cpu"
)

// Load a Hugging Face directory, run one forward pass, read the logits on the host.
func ExampleLoad() {
	b, _ := tensor.Get("cpu")
	m, err := model.Load(context.Background(), "testdata/tiny-llama", model.LoadOptions{Backend: b})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Free()
	logits, err := m.Forward(context.Background(), model.Input{IDs: []int32{1, 17, 250}, B: 1}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer logits.Free()
	host, _ := b.ToFloat32(logits)
	fmt.Println(logits.Shape(), len(host), m.Config.ModelType, m.DType)
	fmt.Println(m.Linears()[0].Name)
	// Output:
	// [1 3 384] 1152 llama F32
	// model.layers.0.self_attn.q_proj
}

// Decode with a KV cache: prefill the prompt, then feed one token per step.
func ExampleModel_NewCache() {
	m, _ := model.TinyRandom(nil, 1)
	defer m.Free()
	cache, _ := m.NewCache(1, 16)
	defer cache.Free()
	ids := []int32{model.ByteBOS, 'H', 'i'}
	for step := 0; step < 3; step++ {
		lg, err := m.LastLogits(context.Background(), model.Input{IDs: ids, B: 1}, cache)
		if err != nil {
			fmt.Println(err)
			return
		}
		lg.Free()
		ids = []int32{'!'} // the next input would be the chosen token
	}
	fmt.Println(cache.Len)
	// Output: 5
}
