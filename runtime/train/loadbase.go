package train

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
)

// hfConfig is the part of a Hugging Face config.json the training graph reads (llama, mistral,
// qwen2, qwen3; both the hub form rope_theta + rope_scaling and the transformers-5 rope_parameters).
type hfConfig struct {
	ModelType      string          `json:"model_type"`
	Hidden         int             `json:"hidden_size"`
	Intermediate   int             `json:"intermediate_size"`
	Layers         int             `json:"num_hidden_layers"`
	Heads          int             `json:"num_attention_heads"`
	KVHeads        int             `json:"num_key_value_heads"`
	HeadDim        int             `json:"head_dim"`
	Vocab          int             `json:"vocab_size"`
	Eps            float64         `json:"rms_norm_eps"`
	MaxPositions   int             `json:"max_position_embeddings"`
	TieEmbeddings  bool            `json:"tie_word_embeddings"`
	RopeTheta      float64         `json:"rope_theta"`
	RopeScaling    *ropeParameters `json:"rope_scaling"`
	RopeParameters *ropeParameters `json:"rope_parameters"`
}

type ropeParameters struct {
	RopeType                      string  `json:"rope_type"`
	Type                          string  `json:"type"`
	RopeTheta                     float64 `json:"rope_theta"`
	Factor                        float64 `json:"factor"`
	LowFreqFactor                 float64 `json:"low_freq_factor"`
	HighFreqFactor                float64 `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings"`
}

// LoadBase reads a Hugging Face model directory (config.json and model.safetensors or a sharded
// index) onto backend b for training, keeping the checkpoint's float dtype. The Base owns its
// tensors: Close frees them.
//
// This is a bridge until runtime/model exposes its decoder weights; it reads only what training needs.
func LoadBase(b tensor.Backend, dir string) (*Base, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("train: load model: %w", err)
	}
	var c hfConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("train: load model: parse %s: %w", filepath.Join(dir, "config.json"), err)
	}
	switch c.ModelType {
	case "llama", "mistral", "qwen2", "qwen3":
	default:
		return nil, fmt.Errorf("train: load model %s: model_type %q not supported (llama, mistral, qwen2, qwen3)", dir, c.ModelType)
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	if c.MaxPositions == 0 {
		c.MaxPositions = 4096
	}
	m := &Base{Backend: b, Arch: Arch{Hidden: c.Hidden, Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim,
		Intermediate: c.Intermediate, Vocab: c.Vocab, Layers: c.Layers, Eps: float32(c.Eps)}}
	if c.Hidden <= 0 || c.Heads <= 0 || c.Layers <= 0 || c.Vocab <= 0 || c.Heads%c.KVHeads != 0 || c.HeadDim%2 != 0 {
		return nil, fmt.Errorf("train: load model %s: inconsistent config %+v", dir, m.Arch)
	}
	st, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("train: load model: %w", err)
	}
	defer st.Close()
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	load := func(name string, optional bool) (*tensor.Tensor, error) {
		info, found := st.Info(name)
		if !found {
			if optional {
				return nil, nil
			}
			return nil, fmt.Errorf("train: load model %s: missing tensor %q", dir, name)
		}
		raw, err := st.Bytes(name)
		if err != nil {
			return nil, err
		}
		dt, err := tensor.ParseDType(string(info.DType))
		if err != nil || !dt.IsFloat() {
			return nil, fmt.Errorf("train: load model %s: tensor %q has dtype %s (want F32, F16 or BF16)", dir, name, info.DType)
		}
		t, err := b.FromHost(dt, info.Shape, raw)
		if err != nil {
			return nil, fmt.Errorf("train: load model %s: tensor %q: %w", dir, name, err)
		}
		m.owned = append(m.owned, t)
		return t, nil
	}
	if m.Embed, err = load("model.embed_tokens.weight", false); err != nil {
		return nil, err
	}
	if m.FinalNorm, err = load("model.norm.weight", false); err != nil {
		return nil, err
	}
	if m.LMHead, err = load("lm_head.weight", c.TieEmbeddings); err != nil {
		return nil, err
	}
	if m.LMHead == nil {
		m.LMHead = m.Embed
	}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		var ly Layer
		for _, f := range []struct {
			dst      **tensor.Tensor
			name     string
			optional bool
		}{
			{&ly.AttnNorm, "input_layernorm.weight", false}, {&ly.MLPNorm, "post_attention_layernorm.weight", false},
			{&ly.Q, "self_attn.q_proj.weight", false}, {&ly.K, "self_attn.k_proj.weight", false},
			{&ly.V, "self_attn.v_proj.weight", false}, {&ly.O, "self_attn.o_proj.weight", false},
			{&ly.Gate, "mlp.gate_proj.weight", false}, {&ly.Up, "mlp.up_proj.weight", false}, {&ly.Down, "mlp.down_proj.weight", false},
			{&ly.QBias, "self_attn.q_proj.bias", true}, {&ly.KBias, "self_attn.k_proj.bias", true}, {&ly.VBias, "self_attn.v_proj.bias", true},
			{&ly.QNorm, "self_attn.q_norm.weight", true}, {&ly.KNorm, "self_attn.k_norm.weight", true},
		} {
			if *f.dst, err = load(p+f.name, f.optional); err != nil {
				return nil, err
			}
		}
		m.Layers = append(m.Layers, ly)
	}
	rp := c.RopeParameters
	if rp == nil {
		rp = c.RopeScaling
	}
	theta := c.RopeTheta
	if rp != nil && rp.RopeTheta != 0 {
		theta = rp.RopeTheta
	}
	if theta == 0 {
		theta = 10000
	}
	cos, sin := RopeTables(theta, rp, c.HeadDim, c.MaxPositions)
	neg := make([]float32, len(sin))
	for i, v := range sin {
		neg[i] = -v
	}
	shape := []int{c.MaxPositions, c.HeadDim / 2}
	for _, x := range []struct {
		dst **tensor.Tensor
		v   []float32
	}{{&m.Cos, cos}, {&m.Sin, sin}, {&m.NegSin, neg}} {
		if *x.dst, err = b.FromFloat32(tensor.F32, shape, x.v); err != nil {
			return nil, fmt.Errorf("train: rope tables: %w", err)
		}
		m.owned = append(m.owned, *x.dst)
	}
	ok = true
	return m, nil
}

// RopeTables returns cos and sin [positions, D/2] as transformers computes them in float32:
// inv_freq = 1/theta^(2i/D) (with llama3 frequency scaling when rp says so), angle = pos·inv_freq.
func RopeTables(theta float64, rp *ropeParameters, d, positions int) (cos, sin []float32) {
	half := d / 2
	inv := make([]float32, half)
	for i := range inv {
		inv[i] = float32(1 / math.Pow(theta, float64(float32(2*i)/float32(d))))
	}
	if rp != nil && (rp.RopeType == "llama3" || rp.Type == "llama3") {
		orig := float64(rp.OriginalMaxPositionEmbeddings)
		lowWave, highWave := orig/rp.LowFreqFactor, orig/rp.HighFreqFactor
		for i, f := range inv {
			wave := 2 * math.Pi / float64(f)
			switch {
			case wave > lowWave:
				inv[i] = f / float32(rp.Factor)
			case wave < highWave:
			default:
				smooth := float32((orig/wave - rp.LowFreqFactor) / (rp.HighFreqFactor - rp.LowFreqFactor))
				inv[i] = (1-smooth)*f/float32(rp.Factor) + smooth*f
			}
		}
	}
	cos, sin = make([]float32, positions*half), make([]float32, positions*half)
	for p := 0; p < positions; p++ {
		for i, f := range inv {
			a := float32(p) * f
			cos[p*half+i] = float32(math.Cos(float64(a)))
			sin[p*half+i] = float32(math.Sin(float64(a)))
		}
	}
	return cos, sin
}
