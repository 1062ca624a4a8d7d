package model

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"

	"github.com/finlora/finlora/runtime/gguf"
	"github.com/finlora/finlora/runtime/safetensors"
)

// GGUFArchitectures lists the general.architecture values LoadGGUF reads through the Llama path
// (gemma3 files load with LoadGemma3GGUF). Mistral files say "llama".
var GGUFArchitectures = []string{"llama", "qwen2", "qwen3"}

// ConfigFromGGUF builds the Config of a llama, qwen2 or qwen3 GGUF file from its metadata:
// <arch>.{embedding_length, feed_forward_length, block_count, attention.head_count(_kv),
// attention.key_length, attention.layer_norm_rms_epsilon, rope.freq_base, context_length},
// the vocabulary size from tokenizer.ggml.tokens (or llama.vocab_size), tied embeddings when the
// file has no output.weight, and BOS/EOS/pad ids from tokenizer.ggml.*.
func ConfigFromGGUF(f *gguf.File) (*Config, error) {
	md := f.Metadata()
	arch, err := md.Arch()
	if err != nil {
		return nil, err
	}
	switch arch {
	case "llama", "qwen2", "qwen3":
	default:
		return nil, fmt.Errorf("gguf architecture %q is not read by the llama path (supported: %v)", arch, GGUFArchitectures)
	}
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		return nil, fmt.Errorf("gguf: rope_freqs.weight (llama3 rope scaling) is not supported")
	}
	c := &Config{ModelType: arch, Architectures: []string{map[string]string{
		"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[arch]}}
	switch arch {
	case "qwen2":
		c.AttentionBias = true // q/k/v biases, none on o_proj
	case "qwen3":
		c.QKNorm = true
	}
	if _, ok := f.Tensor("blk.0.attn_output.bias"); ok && arch == "llama" {
		c.AttentionBias, c.AttentionOutBias = true, true
	}
	ints := []struct {
		key string
		dst *int
		def int // -1: required
	}{
		{"embedding_length", &c.HiddenSize, -1},
		{"feed_forward_length", &c.IntermediateSize, -1},
		{"block_count", &c.NumLayers, -1},
		{"attention.head_count", &c.NumHeads, -1},
		{"attention.head_count_kv", &c.NumKVHeads, 0},
		{"attention.key_length", &c.HeadDim, 0},
		{"context_length", &c.MaxPositionEmbeddings, 0},
	}
	for _, k := range ints {
		if !md.Has(arch + "." + k.key) {
			if k.def < 0 {
				return nil, fmt.Errorf("gguf metadata: missing %s.%s", arch, k.key)
			}
			*k.dst = k.def
			continue
		}
		v, err := md.ArchUint(k.key)
		if err != nil {
			return nil, err
		}
		*k.dst = int(v)
	}
	if c.NumKVHeads == 0 {
		c.NumKVHeads = c.NumHeads
	}
	if c.NumHeads <= 0 || c.NumKVHeads <= 0 || c.NumHeads%c.NumKVHeads != 0 {
		return nil, fmt.Errorf("gguf metadata: %d heads, %d kv heads", c.NumHeads, c.NumKVHeads)
	}
	if c.HeadDim == 0 {
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	c.RMSNormEps = 1e-5
	if md.Has(arch + ".attention.layer_norm_rms_epsilon") {
		if c.RMSNormEps, err = md.ArchFloat("attention.layer_norm_rms_epsilon"); err != nil {
			return nil, err
		}
	}
	c.Rope = Rope{Theta: 10000, Type: "default"}
	if md.Has(arch + ".rope.freq_base") {
		if c.Rope.Theta, err = md.ArchFloat("rope.freq_base"); err != nil {
			return nil, err
		}
	}
	if md.Has(arch + ".rope.scaling.type") {
		if st, _ := md.String(arch + ".rope.scaling.type"); st != "none" {
			return nil, fmt.Errorf("gguf: rope scaling %q is not supported", st)
		}
	}
	if c.VocabSize, err = ggufVocabSize(f, arch); err != nil {
		return nil, err
	}
	_, hasOut := f.Tensor("output.weight")
	c.TieWordEmbeddings = !hasOut
	c.BOSTokenID, c.PadTokenID = ggufID(md, "bos_token_id"), ggufID(md, "padding_token_id")
	if e := ggufID(md, "eos_token_id"); e >= 0 {
		c.EOSTokenIDs = []int{e}
	}
	return c, nil
}

func ggufVocabSize(f *gguf.File, arch string) (int, error) {
	md := f.Metadata()
	if toks, err := md.Strings("tokenizer.ggml.tokens"); err == nil {
		return len(toks), nil
	}
	if v, err := md.Uint(arch + ".vocab_size"); err == nil {
		return int(v), nil
	}
	if t, ok := f.Tensor("token_embd.weight"); ok && len(t.Dims) == 2 {
		return int(t.Dims[1]), nil
	}
	return 0, fmt.Errorf("gguf: cannot tell the vocabulary size")
}

func ggufID(md *gguf.Metadata, key string) int {
	v, err := md.Uint("tokenizer.ggml." + key)
	if err != nil {
		return -1
	}
	return int(v)
}

// ggufBlockNames maps GGUF per-layer tensor names (after "blk.N.") to HF names (after
// "model.layers.N."), per architecture.
var llamaBlockNames = map[string]string{
	"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
	"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
	"attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
	"ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}

var ggufBlockNames = map[string]map[string]string{
	"llama": llamaBlockNames,
	"qwen2": llamaBlockNames,
	"qwen3": llamaBlockNames,
	"gemma3": {
		"attn_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm",
		"ffn_norm": "pre_feedforward_layernorm", "post_ffw_norm": "post_feedforward_layernorm",
		"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
		"attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
		"ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
	},
}

var ggufBlockRe = regexp.MustCompile(`^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$`)

// GGUFSource serves the tensors of a GGUF file under their Hugging Face names
// ("model.layers.0.self_attn.q_proj.weight"), so FromSource loads GGUF like safetensors. Shapes are
// in HF order. For the llama architecture, the q_proj/k_proj rows, which llama.cpp's converter
// permuted for its interleaved rotary layout, are put back in HF's half-split order (for Bytes of
// quantized tensors too: whole rows are moved, each row being whole blocks). Tensors without an HF
// name (e.g. rope_freqs) are not served. It does not own the file: close the file after use.
type GGUFSource struct {
	f       *gguf.File
	toGGUF  map[string]string // HF name -> GGUF name
	names   []string          // sorted HF names
	permute map[string]int    // HF name -> heads of the row permutation to undo
}

var _ safetensors.Source = (*GGUFSource)(nil)

// NewGGUFSource maps the tensors of f, whose general.architecture must be llama, qwen2, qwen3 or
// gemma3 (only llama files have permuted Q/K rows: qwen and gemma use the half-split layout).
// heads and kvHeads are the attention head counts (for the llama Q/K un-permutation).
func NewGGUFSource(f *gguf.File, heads, kvHeads int) (*GGUFSource, error) {
	arch, err := f.Metadata().Arch()
	if err != nil {
		return nil, err
	}
	block, ok := ggufBlockNames[arch]
	if !ok {
		return nil, fmt.Errorf("gguf architecture %q has no tensor name mapping", arch)
	}
	s := &GGUFSource{f: f, toGGUF: map[string]string{}, permute: map[string]int{}}
	for _, name := range f.Names() {
		var hf string
		switch name {
		case "token_embd.weight":
			hf = "model.embed_tokens.weight"
		case "output_norm.weight":
			hf = "model.norm.weight"
		case "output.weight":
			hf = "lm_head.weight"
		default:
			m := ggufBlockRe.FindStringSubmatch(name)
			if m == nil {
				continue
			}
			short, ok := block[m[2]]
			if !ok {
				continue
			}
			layer, _ := strconv.Atoi(m[1])
			hf = fmt.Sprintf("model.layers.%d.%s.%s", layer, short, m[3])
			if arch == "llama" && m[3] == "weight" {
				switch m[2] {
				case "attn_q":
					s.permute[hf] = heads
				case "attn_k":
					s.permute[hf] = kvHeads
				}
			}
		}
		s.toGGUF[hf] = name
		s.names = append(s.names, hf)
	}
	sort.Strings(s.names)
	return s, nil
}

// Names returns the HF names served, sorted.
func (s *GGUFSource) Names() []string { return append([]string(nil), s.names...) }

// GGUFName returns the GGUF name behind an HF name.
func (s *GGUFSource) GGUFName(hf string) (string, bool) {
	g, ok := s.toGGUF[hf]
	return g, ok
}

// Info describes the tensor under its HF name (HF shape; DType as gguf.DType spells the GGML type).
func (s *GGUFSource) Info(name string) (safetensors.TensorInfo, bool) {
	g, ok := s.toGGUF[name]
	if !ok {
		return safetensors.TensorInfo{}, false
	}
	info, ok := s.f.Info(g)
	info.Name = name
	return info, ok
}

// Bytes returns the tensor's stored data (GGML blocks for quantized types) with permuted rows put
// back; a view into the file when no permutation applies, else a new slice.
func (s *GGUFSource) Bytes(name string) ([]byte, error) {
	g, ok := s.toGGUF[name]
	if !ok {
		return nil, fmt.Errorf("gguf %s: no tensor %q", s.f.Path(), name)
	}
	b, err := s.f.Bytes(g)
	if err != nil || s.permute[name] == 0 {
		return b, err
	}
	t, _ := s.f.Tensor(g)
	rows := int(t.NumElements() / t.Dims[0])
	return unpermuteRows(b, rows, len(b)/rows, s.permute[name])
}

// Float32 returns the tensor dequantized (row-major, HF shape), rows un-permuted where needed; a
// new slice the caller owns.
func (s *GGUFSource) Float32(name string) ([]float32, error) {
	g, ok := s.toGGUF[name]
	if !ok {
		return nil, fmt.Errorf("gguf %s: no tensor %q", s.f.Path(), name)
	}
	v, err := s.f.Float32(g)
	if err != nil || s.permute[name] == 0 {
		return v, err
	}
	t, _ := s.f.Tensor(g)
	rows := int(t.NumElements() / t.Dims[0])
	return unpermuteRows(v, rows, len(v)/rows, s.permute[name])
}

// unpermuteRows undoes llama.cpp's Q/K permutation. Its converter reorders the rows of each head
// (HD rows: two halves of HD/2) as w.reshape(heads, 2, HD/2, in).swapaxes(1, 2): GGUF row
// h·HD + 2j + s holds HF row h·HD + s·HD/2 + j. rowLen is the length of one row in elements of data.
func unpermuteRows[E any](data []E, rows, rowLen, heads int) ([]E, error) {
	if heads <= 0 || rows%heads != 0 || (rows/heads)%2 != 0 {
		return nil, fmt.Errorf("gguf: cannot un-permute %d rows into %d heads of even size", rows, heads)
	}
	hd := rows / heads
	out := make([]E, len(data))
	for h := 0; h < heads; h++ {
		for j := 0; j < hd/2; j++ {
			for sIdx := 0; sIdx < 2; sIdx++ {
				src := h*hd + 2*j + sIdx
				dst := h*hd + sIdx*hd/2 + j
				copy(out[dst*rowLen:(dst+1)*rowLen], data[src*rowLen:(src+1)*rowLen])
			}
		}
	}
	return out, nil
}

// LoadGGUF loads a llama, qwen2 or qwen3 GGUF file (SmolLM2, Llama 2, Mistral, Qwen2.5, Qwen3 ...)
// through the Llama path: ConfigFromGGUF, GGUFSource, FromSource. Quantized weights are dequantized to
// opts.DType (F32 when Invalid). The file is closed before returning; the caller frees the model.
func LoadGGUF(ctx context.Context, path string, opts LoadOptions) (*Model, error) {
	m, err := WithGGUF(path, func(cfg *Config, src *GGUFSource) (*Model, error) { return FromSource(ctx, cfg, src, opts) })
	if err != nil {
		return nil, err
	}
	m.Source = path
	return m, nil
}

// WithGGUF opens the Llama-family GGUF file path, reads its config (ConfigFromGGUF) and calls build
// with it and the file's tensors under HF names; the file is closed when build returns, so build
// must copy what it keeps (the loaders upload every tensor). Errors name the file.
func WithGGUF[T any](path string, build func(cfg *Config, src *GGUFSource) (T, error)) (T, error) {
	return withGGUF(path, ConfigFromGGUF, func(c *Config) (int, int) { return c.NumHeads, c.NumKVHeads }, build)
}

// WithGemma3GGUF is WithGGUF for a Gemma 3 file (Gemma3ConfigFromGGUF).
func WithGemma3GGUF[T any](path string, build func(cfg *Gemma3Config, src *GGUFSource) (T, error)) (T, error) {
	return withGGUF(path, Gemma3ConfigFromGGUF, func(c *Gemma3Config) (int, int) { return c.NumHeads, c.NumKVHeads }, build)
}

func withGGUF[C, T any](path string, config func(*gguf.File) (C, error), heads func(C) (int, int), build func(C, *GGUFSource) (T, error)) (T, error) {
	var zero T
	f, err := gguf.Open(path)
	if err != nil {
		return zero, fmt.Errorf("load model: %w", err)
	}
	defer f.Close()
	cfg, err := config(f)
	if err != nil {
		return zero, fmt.Errorf("load model %s: %w", path, err)
	}
	h, kv := heads(cfg)
	src, err := NewGGUFSource(f, h, kv)
	if err != nil {
		return zero, fmt.Errorf("load model %s: %w", path, err)
	}
	m, err := build(cfg, src)
	if err != nil {
		return zero, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
}
