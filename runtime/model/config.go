package model

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/finlora/finlora/runtime/tensor"
)

// Supported lists the config.json model_type values this package loads.
var Supported = []string{"llama", "mistral", "qwen2", "qwen3"}

// Config is the architecture of a decoder, from a Hugging Face config.json. Both spellings of
// transformers are read: the hub's (rope_theta + rope_scaling, torch_dtype) and transformers 5's
// (rope_parameters, dtype).
type Config struct {
	ModelType     string   // "llama", "mistral", "qwen2", "qwen3"
	Architectures []string // e.g. ["LlamaForCausalLM"], informational

	VocabSize        int // rows of the embedding and of the LM head
	HiddenSize       int // D, the residual width
	IntermediateSize int // MLP width
	NumLayers        int // num_hidden_layers
	NumHeads         int // query heads Hq
	NumKVHeads       int // key/value heads Hkv (GQA); defaults to NumHeads
	HeadDim          int // per-head width; defaults to HiddenSize/NumHeads

	RMSNormEps            float64
	Rope                  Rope
	MaxPositionEmbeddings int

	TieWordEmbeddings bool // LM head shares the embedding matrix (no lm_head.weight)
	AttentionBias     bool // bias on q_proj, k_proj, v_proj (qwen2 always; llama/qwen3 from attention_bias)
	AttentionOutBias  bool // bias on o_proj (llama/qwen3 attention_bias; never for qwen2)
	MLPBias           bool // bias on gate/up/down (llama mlp_bias)
	QKNorm            bool // per-head RMSNorm of q and k before RoPE (qwen3)

	SlidingWindow    int // attention window in tokens; 0 = none
	MaxWindowLayers  int // qwen2/3: layers ≥ this use SlidingWindow (when UseSlidingWindow)
	UseSlidingWindow bool

	DType tensor.DType // the stored dtype (torch_dtype / dtype); Invalid if absent

	BOSTokenID  int   // -1 if absent
	EOSTokenIDs []int // may be empty
	PadTokenID  int   // -1 if absent
}

// Rope is the rotary embedding setup: the base and an optional frequency scaling.
type Rope struct {
	Theta float64 // rope_theta
	Type  string  // "default", "linear" or "llama3"
	// Factor, LowFreqFactor, HighFreqFactor and OriginalMaxPositions are those of rope_scaling
	// (llama3); Factor alone for "linear".
	Factor               float64
	LowFreqFactor        float64
	HighFreqFactor       float64
	OriginalMaxPositions int
}

// SupportedRopeTypes lists the rope_type values implemented.
var SupportedRopeTypes = []string{"default", "linear", "llama3"}

// LoadConfig reads dir/config.json (or the file itself if path names a file).
func LoadConfig(path string) (*Config, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = strings.TrimRight(path, "/") + "/config.json"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("model config %s: %w", path, err)
	}
	return c, nil
}

// rawConfig mirrors the config.json keys read; pointers tell absent from zero.
type rawConfig struct {
	ModelType        string          `json:"model_type"`
	Architectures    []string        `json:"architectures"`
	VocabSize        *int            `json:"vocab_size"`
	HiddenSize       *int            `json:"hidden_size"`
	IntermediateSize *int            `json:"intermediate_size"`
	NumLayers        *int            `json:"num_hidden_layers"`
	NumHeads         *int            `json:"num_attention_heads"`
	NumKVHeads       *int            `json:"num_key_value_heads"`
	HeadDim          *int            `json:"head_dim"`
	HiddenAct        *string         `json:"hidden_act"`
	RMSNormEps       *float64        `json:"rms_norm_eps"`
	RopeTheta        *float64        `json:"rope_theta"`
	RopeScaling      json.RawMessage `json:"rope_scaling"`
	RopeParameters   json.RawMessage `json:"rope_parameters"`
	MaxPos           *int            `json:"max_position_embeddings"`
	Tie              *bool           `json:"tie_word_embeddings"`
	AttentionBias    *bool           `json:"attention_bias"`
	MLPBias          *bool           `json:"mlp_bias"`
	SlidingWindow    *int            `json:"sliding_window"`
	UseSlidingWindow *bool           `json:"use_sliding_window"`
	MaxWindowLayers  *int            `json:"max_window_layers"`
	TorchDType       *string         `json:"torch_dtype"`
	DType            *string         `json:"dtype"`
	BOS              json.RawMessage `json:"bos_token_id"`
	EOS              json.RawMessage `json:"eos_token_id"`
	Pad              json.RawMessage `json:"pad_token_id"`
}

type rawRope struct {
	RopeType       string   `json:"rope_type"`
	Type           string   `json:"type"` // older spelling of rope_type
	RopeTheta      *float64 `json:"rope_theta"`
	Factor         *float64 `json:"factor"`
	LowFreqFactor  *float64 `json:"low_freq_factor"`
	HighFreqFactor *float64 `json:"high_freq_factor"`
	OriginalMaxPos *int     `json:"original_max_position_embeddings"`
}

// ParseConfig parses config.json bytes and validates the result.
func ParseConfig(data []byte) (*Config, error) {
	var r rawConfig
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse config.json: %w", err)
	}
	c := &Config{ModelType: r.ModelType, Architectures: r.Architectures}
	switch r.ModelType {
	case "llama", "mistral", "qwen2", "qwen3":
	case "":
		return nil, fmt.Errorf("config.json has no model_type (supported: %s)", strings.Join(Supported, ", "))
	default:
		return nil, fmt.Errorf("unsupported model_type %q (supported: %s)", r.ModelType, strings.Join(Supported, ", "))
	}
	req := func(name string, p *int) (int, error) {
		if p == nil {
			return 0, fmt.Errorf("config.json: missing %s", name)
		}
		if *p <= 0 {
			return 0, fmt.Errorf("config.json: %s = %d, want > 0", name, *p)
		}
		return *p, nil
	}
	var err error
	for _, f := range []struct {
		name string
		p    *int
		dst  *int
	}{
		{"vocab_size", r.VocabSize, &c.VocabSize},
		{"hidden_size", r.HiddenSize, &c.HiddenSize},
		{"intermediate_size", r.IntermediateSize, &c.IntermediateSize},
		{"num_hidden_layers", r.NumLayers, &c.NumLayers},
		{"num_attention_heads", r.NumHeads, &c.NumHeads},
	} {
		if *f.dst, err = req(f.name, f.p); err != nil {
			return nil, err
		}
	}
	c.NumKVHeads = c.NumHeads
	if r.NumKVHeads != nil {
		c.NumKVHeads = *r.NumKVHeads
	}
	if c.NumKVHeads <= 0 || c.NumHeads%c.NumKVHeads != 0 {
		return nil, fmt.Errorf("config.json: num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumHeads, c.NumKVHeads)
	}
	if r.HeadDim != nil && *r.HeadDim > 0 {
		c.HeadDim = *r.HeadDim
	} else {
		if c.HiddenSize%c.NumHeads != 0 {
			return nil, fmt.Errorf("config.json: hidden_size %d not divisible by num_attention_heads %d and no head_dim", c.HiddenSize, c.NumHeads)
		}
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if c.HeadDim%2 != 0 {
		return nil, fmt.Errorf("config.json: head_dim %d must be even for rotary embeddings", c.HeadDim)
	}
	if r.HiddenAct != nil && *r.HiddenAct != "silu" {
		return nil, fmt.Errorf("config.json: hidden_act %q not supported (only silu)", *r.HiddenAct)
	}
	c.RMSNormEps = 1e-6
	if r.RMSNormEps != nil {
		c.RMSNormEps = *r.RMSNormEps
	}
	if r.MaxPos != nil {
		c.MaxPositionEmbeddings = *r.MaxPos
	}
	if c.Rope, err = parseRope(&r); err != nil {
		return nil, err
	}
	c.TieWordEmbeddings = r.Tie != nil && *r.Tie
	switch c.ModelType {
	case "qwen2":
		c.AttentionBias = true
	case "llama", "qwen3", "mistral":
		if r.AttentionBias != nil && *r.AttentionBias {
			c.AttentionBias, c.AttentionOutBias = true, true
		}
	}
	if c.ModelType == "llama" && r.MLPBias != nil {
		c.MLPBias = *r.MLPBias
	}
	c.QKNorm = c.ModelType == "qwen3"
	if r.SlidingWindow != nil {
		c.SlidingWindow = *r.SlidingWindow
	}
	if r.UseSlidingWindow != nil {
		c.UseSlidingWindow = *r.UseSlidingWindow
	}
	if r.MaxWindowLayers != nil {
		c.MaxWindowLayers = *r.MaxWindowLayers
	}
	for _, s := range []*string{r.DType, r.TorchDType} { // transformers 5's dtype wins
		if s != nil && *s != "" {
			if c.DType, err = tensor.ParseDType(*s); err != nil {
				return nil, fmt.Errorf("config.json: dtype: %w", err)
			}
			break
		}
	}
	if c.BOSTokenID, err = optionalID("bos_token_id", r.BOS); err != nil {
		return nil, err
	}
	if c.PadTokenID, err = optionalID("pad_token_id", r.Pad); err != nil {
		return nil, err
	}
	if c.EOSTokenIDs, err = idList("eos_token_id", r.EOS); err != nil {
		return nil, err
	}
	return c, nil
}

func parseRope(r *rawConfig) (Rope, error) {
	rp := Rope{Theta: 10000, Type: "default"}
	if r.RopeTheta != nil {
		rp.Theta = *r.RopeTheta
	}
	var raw json.RawMessage
	for _, m := range []json.RawMessage{r.RopeParameters, r.RopeScaling} { // transformers 5 form wins
		if len(m) > 0 && string(m) != "null" {
			raw = m
			break
		}
	}
	if raw != nil {
		var s rawRope
		if err := json.Unmarshal(raw, &s); err != nil {
			return rp, fmt.Errorf("config.json: rope parameters %s: %w (per-layer-type rope parameters are not supported)", raw, err)
		}
		if s.RopeTheta != nil {
			rp.Theta = *s.RopeTheta
		}
		rp.Type = s.RopeType
		if rp.Type == "" {
			rp.Type = s.Type
		}
		if rp.Type == "" {
			rp.Type = "default"
		}
		get := func(p *float64, name string) (float64, error) {
			if p == nil {
				return 0, fmt.Errorf("config.json: rope type %q needs %s", rp.Type, name)
			}
			return *p, nil
		}
		var err error
		switch rp.Type {
		case "default":
		case "linear":
			if rp.Factor, err = get(s.Factor, "factor"); err != nil {
				return rp, err
			}
		case "llama3":
			if rp.Factor, err = get(s.Factor, "factor"); err != nil {
				return rp, err
			}
			if rp.LowFreqFactor, err = get(s.LowFreqFactor, "low_freq_factor"); err != nil {
				return rp, err
			}
			if rp.HighFreqFactor, err = get(s.HighFreqFactor, "high_freq_factor"); err != nil {
				return rp, err
			}
			if s.OriginalMaxPos == nil {
				return rp, fmt.Errorf("config.json: rope type llama3 needs original_max_position_embeddings")
			}
			rp.OriginalMaxPositions = *s.OriginalMaxPos
			if rp.HighFreqFactor <= rp.LowFreqFactor {
				return rp, fmt.Errorf("config.json: llama3 rope: high_freq_factor %g must exceed low_freq_factor %g", rp.HighFreqFactor, rp.LowFreqFactor)
			}
		default:
			return rp, fmt.Errorf("config.json: rope_type %q not supported (supported: %s)", rp.Type, strings.Join(SupportedRopeTypes, ", "))
		}
	}
	if !(rp.Theta > 0) || math.IsInf(rp.Theta, 0) {
		return rp, fmt.Errorf("config.json: rope_theta %g must be positive", rp.Theta)
	}
	return rp, nil
}

// optionalID reads an int, null or absent (−1).
func optionalID(name string, raw json.RawMessage) (int, error) {
	ids, err := idList(name, raw)
	if err != nil {
		return -1, err
	}
	if len(ids) == 0 {
		return -1, nil
	}
	return ids[0], nil
}

// idList reads an int, a list of ints, null or absent.
func idList(name string, raw json.RawMessage) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if json.Unmarshal(raw, &one) == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("config.json: %s = %s: want an id or a list of ids", name, raw)
	}
	return many, nil
}

// LayerWindow is the sliding-window size of layer i (0 = full attention).
func (c *Config) LayerWindow(i int) int {
	switch c.ModelType {
	case "mistral":
		return c.SlidingWindow
	case "qwen2", "qwen3":
		if c.UseSlidingWindow && i >= c.MaxWindowLayers {
			return c.SlidingWindow
		}
	}
	return 0
}

// Params counts the parameters the config implies (embedding and LM head counted once if tied).
func (c *Config) Params() int64 {
	d, hd := int64(c.HiddenSize), int64(c.HeadDim)
	q, kv := int64(c.NumHeads)*hd, int64(c.NumKVHeads)*hd
	layer := d*q + 2*d*kv + q*d + 3*d*int64(c.IntermediateSize) + 2*d
	if c.AttentionBias {
		layer += q + 2*kv
	}
	if c.AttentionOutBias {
		layer += d
	}
	if c.MLPBias {
		layer += 2*int64(c.IntermediateSize) + d
	}
	if c.QKNorm {
		layer += 2 * hd
	}
	n := int64(c.NumLayers)*layer + int64(c.VocabSize)*d + d
	if !c.TieWordEmbeddings {
		n += int64(c.VocabSize) * d
	}
	return n
}

// InvFreq returns the D/2 rotary inverse frequencies after scaling, as transformers computes them
// (_compute_default_rope_parameters, linear, _compute_llama3_parameters), in float64.
func (c *Config) InvFreq() []float64 {
	half := c.HeadDim / 2
	inv := make([]float64, half)
	for i := range inv {
		inv[i] = 1 / math.Pow(c.Rope.Theta, float64(2*i)/float64(c.HeadDim))
	}
	switch c.Rope.Type {
	case "linear":
		for i := range inv {
			inv[i] /= c.Rope.Factor
		}
	case "llama3":
		r := c.Rope
		old := float64(r.OriginalMaxPositions)
		lowWave, highWave := old/r.LowFreqFactor, old/r.HighFreqFactor
		for i, f := range inv {
			wave := 2 * math.Pi / f
			switch {
			case wave < highWave: // high frequency: unchanged
			case wave > lowWave: // low frequency: scaled down
				inv[i] = f / r.Factor
			default: // in between: smooth interpolation
				smooth := (old/wave - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
				inv[i] = (1-smooth)*f/r.Factor + smooth*f
			}
		}
	}
	return inv
}

// String summarizes the architecture in one line.
func (c *Config) String() string {
	keys := []string{}
	if c.TieWordEmbeddings {
		keys = append(keys, "tied")
	}
	if c.QKNorm {
		keys = append(keys, "qk-norm")
	}
	if c.AttentionBias {
		keys = append(keys, "qkv-bias")
	}
	sort.Strings(keys)
	return fmt.Sprintf("%s: %d layers, hidden %d, heads %d/%d x %d, mlp %d, vocab %d, rope %s θ=%g %s",
		c.ModelType, c.NumLayers, c.HiddenSize, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize,
		c.VocabSize, c.Rope.Type, c.Rope.Theta, strings.Join(keys, ","))
}
