package model

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

const baseCfg = `"vocab_size": 100, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4`

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name  string
		json  string
		check func(c *Config) string
	}{
		{"llama hub form", `{"model_type": "llama", ` + baseCfg + `, "num_key_value_heads": 2, "rope_theta": 500000.0,
			"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
			"torch_dtype": "bfloat16", "eos_token_id": [128001, 128008, 128009], "bos_token_id": 128000}`,
			func(c *Config) string {
				if c.Rope.Type != "llama3" || c.Rope.Theta != 500000 || c.Rope.OriginalMaxPositions != 8192 || c.DType != tensor.BF16 {
					return fmt.Sprintf("rope %+v dtype %s", c.Rope, c.DType)
				}
				if fmt.Sprint(c.EOSTokenIDs) != "[128001 128008 128009]" || c.BOSTokenID != 128000 || c.PadTokenID != -1 {
					return fmt.Sprintf("ids bos %d eos %v pad %d", c.BOSTokenID, c.EOSTokenIDs, c.PadTokenID)
				}
				if c.HeadDim != 16 || c.NumKVHeads != 2 || c.TieWordEmbeddings || c.AttentionBias {
					return fmt.Sprintf("%+v", c)
				}
				return ""
			}},
		{"llama transformers-5 form", `{"model_type": "llama", ` + baseCfg + `, "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
			"low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}, "dtype": "float16", "tie_word_embeddings": true}`,
			func(c *Config) string {
				if c.Rope.Type != "llama3" || c.Rope.Theta != 500000 || c.DType != tensor.F16 || !c.TieWordEmbeddings || c.NumKVHeads != 4 {
					return fmt.Sprintf("%+v", c)
				}
				return ""
			}},
		{"qwen2 bias", `{"model_type": "qwen2", ` + baseCfg + `, "rope_theta": 1000000.0, "sliding_window": 4096, "use_sliding_window": false}`,
			func(c *Config) string {
				if !c.AttentionBias || c.AttentionOutBias || c.QKNorm || c.LayerWindow(1) != 0 {
					return fmt.Sprintf("%+v", c)
				}
				return ""
			}},
		{"qwen3 head_dim", `{"model_type": "qwen3", ` + baseCfg + `, "head_dim": 32, "rope_theta": 1000000.0}`,
			func(c *Config) string {
				if c.HeadDim != 32 || !c.QKNorm || c.AttentionBias {
					return fmt.Sprintf("%+v", c)
				}
				return ""
			}},
		{"mistral window", `{"model_type": "mistral", ` + baseCfg + `, "sliding_window": 4096, "head_dim": null}`,
			func(c *Config) string {
				if c.LayerWindow(0) != 4096 || c.HeadDim != 16 || c.Rope.Theta != 10000 {
					return fmt.Sprintf("%+v", c)
				}
				return ""
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(c); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct{ json, want string }{
		{`{"model_type": "gpt2", ` + baseCfg + `}`, "supported: llama, mistral, qwen2, qwen3"},
		{`{` + baseCfg + `}`, "no model_type"},
		{`{"model_type": "llama", "vocab_size": 10}`, "missing hidden_size"},
		{`{"model_type": "llama", ` + baseCfg + `, "num_key_value_heads": 3}`, "not a multiple"},
		{`{"model_type": "llama", ` + baseCfg + `, "rope_scaling": {"rope_type": "yarn", "factor": 4}}`, `rope_type "yarn" not supported`},
		{`{"model_type": "llama", ` + baseCfg + `, "rope_scaling": {"rope_type": "llama3", "factor": 8}}`, "needs low_freq_factor"},
		{`{"model_type": "llama", ` + baseCfg + `, "hidden_act": "gelu"}`, "hidden_act"},
		{`{"model_type": "llama", ` + baseCfg + `, "eos_token_id": "x"}`, "eos_token_id"},
		{`{"model_type": "llama", ` + baseCfg + `, "torch_dtype": "complex64"}`, "unknown dtype"},
		{`not json`, "parse config.json"},
	}
	for _, tc := range cases {
		_, err := ParseConfig([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%.60s...) = %v, want an error containing %q", tc.json, err, tc.want)
		}
	}
}

// InvFreq against values computed by hand from transformers' _compute_llama3_parameters formulas
// for theta 500000, head_dim 16, factor 8, low 1, high 4, original 16 (the tiny-llama fixture).
func TestInvFreqLlama3(t *testing.T) {
	c := &Config{HeadDim: 16, Rope: Rope{Theta: 500000, Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 16}}
	inv := c.InvFreq()
	for i, f := range inv {
		base := math.Pow(500000, -float64(2*i)/16)
		wave := 2 * math.Pi / base
		var want float64
		switch {
		case wave < 4: // 16/4
			want = base
		case wave > 16: // 16/1
			want = base / 8
		default:
			s := (16/wave - 1) / 3
			want = (1-s)*base/8 + s*base
		}
		if math.Abs(f-want) > 1e-12*want {
			t.Errorf("inv_freq[%d] = %g, want %g", i, f, want)
		}
	}
	// By hand: i=0 has wavelength 2π ∈ [4, 16]: smoothed with s = (16/2π − 1)/3, giving
	// (1−s)/8 + s ≈ 0.5760564; i=2 has wavelength ≈ 267 > 16: 500000^(−1/4)/8 ≈ 0.00470075.
	if math.Abs(inv[0]-0.5760564) > 1e-7 || math.Abs(inv[2]-0.00470075) > 1e-8 {
		t.Errorf("inv_freq = %v", inv)
	}
}
