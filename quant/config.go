package quant

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Format is a quantized weight format: "nf4", "fp4" (4-bit) or "int8" (LLM.int8).
type Format string

// The formats.
const (
	FormatNF4  Format = "nf4"
	FormatFP4  Format = "fp4"
	FormatInt8 Format = "int8"
)

// Config says how a checkpoint is (to be) quantized; it maps to transformers'
// BitsAndBytesConfig, saved as "quantization_config" in config.json.
type Config struct {
	Format       Format
	BlockSize    int      // 4-bit block size; 0 means 64 (transformers can only create 64)
	DoubleQuant  bool     // 4-bit: double quantization of the absmax
	ComputeDType string   // recorded as bnb_4bit_compute_dtype; "" means bfloat16 for 4-bit, float32 for int8
	SkipModules  []string // module names left in float (llm_int8_skip_modules), matched as in transformers
}

// Check validates c.
func (c Config) Check() error {
	switch c.Format {
	case FormatNF4, FormatFP4:
		if c.BlockSize != 0 {
			if err := CheckBlockSize(c.BlockSize); err != nil {
				return fmt.Errorf("quant config: %w", err)
			}
		}
	case FormatInt8:
		if c.DoubleQuant {
			return fmt.Errorf("quant config: double quantization applies to 4-bit formats only")
		}
	default:
		return fmt.Errorf("quant config: unknown format %q (want nf4, fp4 or int8)", string(c.Format))
	}
	return nil
}

func (c Config) computeDType() string {
	if c.ComputeDType != "" {
		return c.ComputeDType
	}
	if c.Format == FormatInt8 {
		return "float32"
	}
	return "bfloat16"
}

// QuantizationConfig returns the "quantization_config" object transformers writes for c (the
// to_dict of BitsAndBytesConfig): for int8, the 4-bit fields keep their defaults (fp4, float32).
func (c Config) QuantizationConfig() map[string]any {
	is4 := c.Format != FormatInt8
	qt := string(c.Format)
	if !is4 {
		qt = "fp4"
	}
	var skip any
	if len(c.SkipModules) > 0 {
		l := make([]any, len(c.SkipModules))
		for i, s := range c.SkipModules {
			l[i] = s
		}
		skip = l
	}
	return map[string]any{
		"_load_in_4bit":                    is4,
		"_load_in_8bit":                    !is4,
		"bnb_4bit_compute_dtype":           c.computeDType(),
		"bnb_4bit_quant_storage":           "uint8",
		"bnb_4bit_quant_type":              qt,
		"bnb_4bit_use_double_quant":        is4 && c.DoubleQuant,
		"llm_int8_enable_fp32_cpu_offload": false,
		"llm_int8_has_fp16_weight":         false,
		"llm_int8_skip_modules":            skip,
		"llm_int8_threshold":               6.0,
		"load_in_4bit":                     is4,
		"load_in_8bit":                     !is4,
		"quant_method":                     "bitsandbytes",
	}
}

// RewriteConfigJSON returns config.json text src with "quantization_config" for c added (or
// replaced), written as transformers writes config.json (json.dumps indent=2, sorted keys, a final
// newline), keeping every other value's literal text.
func RewriteConfigJSON(src []byte, c Config) ([]byte, error) {
	v, err := decodeJSONNumbers(src)
	if err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("config.json: not a JSON object")
	}
	m["quantization_config"] = c.QuantizationConfig()
	out, err := pyIndentJSON(m)
	if err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	return append(out, '\n'), nil
}

// ParseQuantizationConfig reads the "quantization_config" of a config.json: ok is false when there
// is none; an error when it is not bitsandbytes or is inconsistent. BlockSize is left 0 (the
// checkpoint's quant states carry it).
func ParseQuantizationConfig(configJSON []byte) (c Config, ok bool, err error) {
	var doc struct {
		Q *struct {
			Method       string   `json:"quant_method"`
			Load4        bool     `json:"load_in_4bit"`
			Load8        bool     `json:"load_in_8bit"`
			QuantType    string   `json:"bnb_4bit_quant_type"`
			DoubleQuant  bool     `json:"bnb_4bit_use_double_quant"`
			ComputeDType string   `json:"bnb_4bit_compute_dtype"`
			Skip         []string `json:"llm_int8_skip_modules"`
		} `json:"quantization_config"`
	}
	if err := json.Unmarshal(configJSON, &doc); err != nil {
		return c, false, fmt.Errorf("config.json: quantization_config: %w", err)
	}
	q := doc.Q
	if q == nil {
		return c, false, nil
	}
	if q.Method != "bitsandbytes" {
		return c, true, fmt.Errorf("config.json: quantization_config.quant_method %q is not supported (want bitsandbytes)", q.Method)
	}
	switch {
	case q.Load4 && q.Load8:
		return c, true, fmt.Errorf("config.json: quantization_config has both load_in_4bit and load_in_8bit")
	case q.Load4:
		if q.QuantType != "nf4" && q.QuantType != "fp4" {
			return c, true, fmt.Errorf("config.json: quantization_config.bnb_4bit_quant_type %q: want nf4 or fp4", q.QuantType)
		}
		c.Format, c.DoubleQuant = Format(q.QuantType), q.DoubleQuant
	case q.Load8:
		c.Format = FormatInt8
	default:
		return c, true, fmt.Errorf("config.json: quantization_config has neither load_in_4bit nor load_in_8bit")
	}
	c.ComputeDType, c.SkipModules = strings.TrimPrefix(q.ComputeDType, "torch."), q.Skip
	return c, true, nil
}
