// Package lora holds LoRA adapters compatible with Hugging Face PEFT: the adapter_config.json schema,
// the adapter_model.safetensors key layout, initialisation, rsLoRA and DoRA scaling, several adapters
// on one base with one active per call, and merging into (and unmerging from) base weights.
//
// Weights are float32, row-major, held in Go slices owned by the Module that holds them; a backend
// copies them to a device when it needs to. Shapes follow PEFT: A is [r, in], B is [out, r], the DoRA
// magnitude is [out]; a LoRA-adapted linear layer computes y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ.
package lora

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Config is PEFT's LoraConfig as stored in adapter_config.json. The fields this package acts on are
// typed; every other field of the file is kept verbatim in Extra and written back on save, so a
// config read and written again keeps all of PEFT's keys.
type Config struct {
	PeftType             string             // "LORA"
	TaskType             string             // e.g. "CAUSAL_LM"
	BaseModelNameOrPath  string             // informational
	R                    int                // rank
	LoraAlpha            float64            // alpha; the scale is alpha/r (or alpha/sqrt(r) with UseRSLoRA)
	LoraDropout          float64            // dropout probability on the LoRA branch input, in [0, 1)
	TargetModules        Targets            // which linear layers get an adapter
	UseRSLoRA            bool               // scale alpha/sqrt(r) instead of alpha/r
	UseDoRA              bool               // weight-decomposed LoRA: a magnitude vector per module
	InitLoraWeights      InitMode           // true, false, "gaussian", ... (see InitMode)
	Bias                 string             // only "none" is supported
	FanInFanOut          bool               // must be false for Llama-family linear layers
	LayersToTransform    []int              // nil: all layers
	RankPattern          map[string]int     // per-module rank overrides, keys matched as in PEFT
	AlphaPattern         map[string]float64 // per-module alpha overrides
	InferenceMode        bool
	Extra                map[string]json.RawMessage // all other keys of the file, kept for the round trip
	layersToTransformRaw json.RawMessage
}

// DefaultConfig returns the config `finlora train` uses without --adapter-init: r 8, alpha 16, no
// dropout, q/k/v projections, CAUSAL_LM, PEFT's default init.
func DefaultConfig() Config {
	return Config{PeftType: "LORA", TaskType: "CAUSAL_LM", R: 8, LoraAlpha: 16, Bias: "none",
		TargetModules: Targets{Names: []string{"q_proj", "k_proj", "v_proj"}}, InitLoraWeights: InitMode{Value: "true"}}
}

// Targets is PEFT's target_modules: either a list of names (a module matches when its full path
// equals a name or ends with "."+name) or one regular expression string (matched against the whole
// module path, as Python's re.fullmatch).
type Targets struct {
	Names []string // list form
	Regex string   // string form; used when Names is nil
}

// MarshalJSON writes a list or a string, as read.
func (t Targets) MarshalJSON() ([]byte, error) {
	if t.Names == nil && t.Regex != "" {
		return json.Marshal(t.Regex)
	}
	if t.Names == nil {
		return []byte("null"), nil
	}
	return json.Marshal(t.Names)
}

// UnmarshalJSON accepts a list of strings, a string, or null.
func (t *Targets) UnmarshalJSON(b []byte) error {
	*t = Targets{}
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &t.Regex)
	default:
		if err := json.Unmarshal(b, &t.Names); err != nil {
			return fmt.Errorf("target_modules: want a list of names or a regex string: %w", err)
		}
		if t.Names == nil {
			t.Names = []string{}
		}
		return nil
	}
}

// Match reports whether the module at path (e.g. "model.layers.0.self_attn.q_proj") is targeted.
func (t Targets) Match(path string) (bool, error) {
	if t.Names == nil {
		if t.Regex == "" {
			return false, nil
		}
		re, err := regexp.Compile(`^(?:` + t.Regex + `)$`)
		if err != nil {
			return false, fmt.Errorf("target_modules regex %q: %w", t.Regex, err)
		}
		return re.MatchString(path), nil
	}
	for _, n := range t.Names {
		if path == n || strings.HasSuffix(path, "."+n) {
			return true, nil
		}
	}
	return false, nil
}

// InitMode is PEFT's init_lora_weights: JSON true (A kaiming-uniform, B zero), false (A and B both
// kaiming-uniform as torch's nn.Linear default: the adapter is not a no-op), or a string ("gaussian":
// A normal with std 1/r, B zero; other PEFT methods such as "pissa" or "loftq" are kept on round trip
// but rejected by Init). Value holds "true", "false" or the string itself.
type InitMode struct{ Value string }

// MarshalJSON writes a boolean for "true"/"false", else a string.
func (m InitMode) MarshalJSON() ([]byte, error) {
	switch m.Value {
	case "", "true":
		return []byte("true"), nil
	case "false":
		return []byte("false"), nil
	}
	return json.Marshal(m.Value)
}

// UnmarshalJSON accepts a boolean or a string.
func (m *InitMode) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case bool:
		m.Value = strconv.FormatBool(x)
	case string:
		m.Value = x
	case nil:
		m.Value = "true"
	default:
		return fmt.Errorf("init_lora_weights: want a boolean or a string, got %s", b)
	}
	return nil
}

// known lists the keys Config types; all others go to Extra.
var known = []string{"peft_type", "task_type", "base_model_name_or_path", "r", "lora_alpha", "lora_dropout",
	"target_modules", "use_rslora", "use_dora", "init_lora_weights", "bias", "fan_in_fan_out",
	"layers_to_transform", "rank_pattern", "alpha_pattern", "inference_mode"}

// UnmarshalJSON reads adapter_config.json. Unknown keys go to Extra; null values of typed keys mean
// PEFT's default.
func (c *Config) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*c = Config{PeftType: "LORA", R: 8, LoraAlpha: 8, Bias: "none", InitLoraWeights: InitMode{Value: "true"}}
	field := func(key string, dst any) error {
		v, ok := raw[key]
		if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
		return nil
	}
	var fanInFanOut *bool
	for _, f := range []struct {
		key string
		dst any
	}{
		{"peft_type", &c.PeftType}, {"task_type", &c.TaskType}, {"base_model_name_or_path", &c.BaseModelNameOrPath},
		{"r", &c.R}, {"lora_alpha", &c.LoraAlpha}, {"lora_dropout", &c.LoraDropout},
		{"target_modules", &c.TargetModules}, {"use_rslora", &c.UseRSLoRA}, {"use_dora", &c.UseDoRA},
		{"init_lora_weights", &c.InitLoraWeights}, {"bias", &c.Bias}, {"fan_in_fan_out", &fanInFanOut},
		{"rank_pattern", &c.RankPattern}, {"alpha_pattern", &c.AlphaPattern}, {"inference_mode", &c.InferenceMode},
	} {
		if err := field(f.key, f.dst); err != nil {
			return err
		}
	}
	if fanInFanOut != nil {
		c.FanInFanOut = *fanInFanOut
	}
	if v, ok := raw["layers_to_transform"]; ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		var one int
		if err := json.Unmarshal(v, &one); err == nil {
			c.LayersToTransform = []int{one}
		} else if err := json.Unmarshal(v, &c.LayersToTransform); err != nil {
			return fmt.Errorf("field \"layers_to_transform\": want an int or a list of ints: %w", err)
		}
		c.layersToTransformRaw = append(json.RawMessage(nil), v...)
	}
	c.Extra = map[string]json.RawMessage{}
	for k, v := range raw {
		if !isKnown(k) {
			c.Extra[k] = v
		}
	}
	// PEFT writes fan_in_fan_out: null in some versions; keep the null on round trip.
	if v, ok := raw["fan_in_fan_out"]; ok && fanInFanOut == nil {
		c.Extra["fan_in_fan_out"] = v
	}
	return nil
}

func isKnown(k string) bool {
	for _, n := range known {
		if n == k {
			return true
		}
	}
	return false
}

// MarshalJSON writes adapter_config.json as PEFT does: keys sorted, every typed field present, Extra
// merged in.
func (c Config) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for k, v := range c.Extra {
		m[k] = v
	}
	m["peft_type"] = c.PeftType
	m["task_type"] = c.TaskType
	if c.TaskType == "" {
		m["task_type"] = nil
	}
	m["base_model_name_or_path"] = c.BaseModelNameOrPath
	m["r"] = c.R
	m["lora_alpha"] = jsonNumber(c.LoraAlpha)
	m["lora_dropout"] = c.LoraDropout
	m["target_modules"] = c.TargetModules
	m["use_rslora"] = c.UseRSLoRA
	m["use_dora"] = c.UseDoRA
	m["init_lora_weights"] = c.InitLoraWeights
	m["bias"] = c.Bias
	if _, isNull := c.Extra["fan_in_fan_out"]; !isNull || c.FanInFanOut {
		m["fan_in_fan_out"] = c.FanInFanOut
	}
	switch {
	case c.layersToTransformRaw != nil && sameInts(c.layersToTransformRaw, c.LayersToTransform):
		m["layers_to_transform"] = c.layersToTransformRaw
	case c.LayersToTransform == nil:
		m["layers_to_transform"] = nil
	default:
		m["layers_to_transform"] = c.LayersToTransform
	}
	rp, ap := c.RankPattern, c.AlphaPattern
	if rp == nil {
		rp = map[string]int{}
	}
	if ap == nil {
		ap = map[string]float64{}
	}
	m["rank_pattern"] = rp
	m["alpha_pattern"] = ap
	m["inference_mode"] = c.InferenceMode
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(m[k])
		if err != nil {
			return nil, fmt.Errorf("adapter config field %q: %w", k, err)
		}
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// jsonNumber writes integral floats without a fraction (PEFT writes lora_alpha as an int).
func jsonNumber(f float64) json.RawMessage {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return json.RawMessage(strconv.FormatInt(int64(f), 10))
	}
	return json.RawMessage(strconv.FormatFloat(f, 'g', -1, 64))
}

func sameInts(raw json.RawMessage, xs []int) bool {
	var got []int
	if err := json.Unmarshal(raw, &got); err != nil {
		var one int
		if json.Unmarshal(raw, &one) != nil {
			return false
		}
		got = []int{one}
	}
	if len(got) != len(xs) {
		return false
	}
	for i := range got {
		if got[i] != xs[i] {
			return false
		}
	}
	return true
}

// Validate checks the fields this package acts on; the error names the field.
func (c *Config) Validate() error {
	switch {
	case c.PeftType != "" && c.PeftType != "LORA":
		return fmt.Errorf("adapter config: peft_type %q is not LORA", c.PeftType)
	case c.R <= 0:
		return fmt.Errorf("adapter config: r = %d, want > 0", c.R)
	case c.LoraDropout < 0 || c.LoraDropout >= 1:
		return fmt.Errorf("adapter config: lora_dropout = %g, want in [0, 1)", c.LoraDropout)
	case c.Bias != "" && c.Bias != "none":
		return fmt.Errorf("adapter config: bias %q is not supported (only \"none\")", c.Bias)
	case c.FanInFanOut:
		return fmt.Errorf("adapter config: fan_in_fan_out = true is not supported for Llama-family linear layers")
	case c.TargetModules.Names == nil && c.TargetModules.Regex == "":
		return fmt.Errorf("adapter config: target_modules is empty")
	}
	if c.TargetModules.Names == nil {
		if _, err := c.TargetModules.Match(""); err != nil {
			return fmt.Errorf("adapter config: %w", err)
		}
	}
	for k, r := range c.RankPattern {
		if r <= 0 {
			return fmt.Errorf("adapter config: rank_pattern[%q] = %d, want > 0", k, r)
		}
	}
	return nil
}

// patternKey returns the value of the first pattern key matching path as PEFT does (a key matches
// when the path is the key or ends with "."+key; keys are tried longest first so the most specific
// wins), and whether one matched.
func patternKey[V any](pat map[string]V, path string) (V, bool) {
	keys := make([]string, 0, len(pat))
	for k := range pat {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return len(keys[i]) > len(keys[j]) || (len(keys[i]) == len(keys[j]) && keys[i] < keys[j])
	})
	for _, k := range keys {
		if path == k || strings.HasSuffix(path, "."+k) {
			return pat[k], true
		}
		if re, err := regexp.Compile(`(^|\.)(?:` + k + `)$`); err == nil && re.MatchString(path) {
			return pat[k], true
		}
	}
	var zero V
	return zero, false
}

// RankFor returns the rank of the module at path (rank_pattern, else r).
func (c *Config) RankFor(path string) int {
	if r, ok := patternKey(c.RankPattern, path); ok {
		return r
	}
	return c.R
}

// AlphaFor returns lora_alpha of the module at path (alpha_pattern, else lora_alpha).
func (c *Config) AlphaFor(path string) float64 {
	if a, ok := patternKey(c.AlphaPattern, path); ok {
		return a
	}
	return c.LoraAlpha
}

// ScaleFor returns the scale applied to B·A at path: alpha/sqrt(r) with use_rslora, else alpha/r.
func (c *Config) ScaleFor(path string) float64 {
	r, a := float64(c.RankFor(path)), c.AlphaFor(path)
	if c.UseRSLoRA {
		return a / math.Sqrt(r)
	}
	return a / r
}

// Targets reports whether the module at path gets an adapter: target_modules matches and, when
// layers_to_transform is set, the path's layer index (the number after "layers.") is listed.
func (c *Config) Targets(path string) (bool, error) {
	ok, err := c.TargetModules.Match(path)
	if err != nil || !ok {
		return false, err
	}
	if c.LayersToTransform == nil {
		return true, nil
	}
	layer, found := LayerIndex(path)
	if !found {
		return false, nil
	}
	for _, l := range c.LayersToTransform {
		if l == layer {
			return true, nil
		}
	}
	return false, nil
}

// LayerIndex returns N from a path containing "layers.N.", and whether there was one.
func LayerIndex(path string) (int, bool) {
	i := strings.Index(path, "layers.")
	if i < 0 {
		return 0, false
	}
	rest := path[i+len("layers."):]
	j := strings.IndexByte(rest, '.')
	if j < 0 {
		j = len(rest)
	}
	n, err := strconv.Atoi(rest[:j])
	return n, err == nil
}
