// This file holds the model part of the runtime API: loading a model (with its tokenizer) under a
// name in a Session, tokenizing, generating, an HTML summary, and freeing. Every API here is
// concrete and non-generic (yaegi cannot export generics), and long calls take the cell's context.

package runtime

import (
	"context"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/finlora/finlora/runtime/generate"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor"
	_ "github.com/finlora/finlora/runtime/tensor/cpu" // registers the "cpu" backend
	"github.com/finlora/finlora/runtime/tokenizer"
)

// TinyModelPath is the path that LoadModel reads as "the embedded tiny random model"
// (model.TinyRandom with seed 0 and model.ByteTokenizer): untrained, for demos without a real model.
const TinyModelPath = "tiny-random"

// ModelOptions choose the device and weight dtype of a load. The zero value loads on the default
// device ($FINLORA_DEVICE, else the GPU when there is one, else the CPU) in the stored dtype.
type ModelOptions struct {
	Device string // "cpu", "cuda", "cuda:1"; "" for the default
	DType  string // "f32", "bf16", "f16"; "" keeps the stored dtype
}

// LoadedModel is a model with its tokenizer, as a session holds it. It owns the model's device
// memory until Free.
type LoadedModel struct {
	Name      string
	Path      string // directory it came from, or TinyModelPath
	Model     *model.Model
	Tokenizer tokenizer.Tokenizer // nil when the directory has no tokenizer.json
	LoadTime  time.Duration
}

// OpenModel loads the Hugging Face model directory path (config.json, safetensors, and
// tokenizer.json if present), or the embedded tiny model when path is TinyModelPath. The caller
// owns it: Free it, or Put it in a Session (Session.LoadModel does both steps).
func OpenModel(ctx context.Context, path string, opts ModelOptions) (*LoadedModel, error) {
	start := time.Now()
	var b tensor.Backend
	var err error
	if opts.Device != "" {
		b, err = tensor.Get(opts.Device)
	} else {
		b, err = tensor.Default()
	}
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	var dt tensor.DType
	if opts.DType != "" {
		if dt, err = tensor.ParseDType(opts.DType); err != nil || !dt.IsFloat() {
			return nil, fmt.Errorf("load model %s: dtype %q: want f32, bf16 or f16", path, opts.DType)
		}
	}
	lm := &LoadedModel{Path: path}
	if path == TinyModelPath {
		if lm.Model, err = model.TinyRandom(b, 0); err != nil {
			return nil, err
		}
		lm.Tokenizer = model.ByteTokenizer{}
	} else {
		if lm.Model, err = model.Load(ctx, path, model.LoadOptions{Backend: b, DType: dt}); err != nil {
			return nil, err
		}
		if _, statErr := os.Stat(filepath.Join(path, "tokenizer.json")); statErr == nil {
			tk, err := tokenizer.LoadDir(path)
			if err != nil {
				lm.Model.Free()
				return nil, fmt.Errorf("load model %s: %w", path, err)
			}
			lm.Tokenizer = tk
		}
	}
	lm.LoadTime = time.Since(start)
	return lm, nil
}

func (lm *LoadedModel) needTokenizer() error {
	if lm.Tokenizer == nil {
		return fmt.Errorf("model %q (%s) has no tokenizer: its directory has no tokenizer.json", lm.Name, lm.Path)
	}
	return nil
}

// Tokenize returns the ids of text, with the model's special tokens (BOS) added.
func (lm *LoadedModel) Tokenize(text string) ([]int, error) {
	if err := lm.needTokenizer(); err != nil {
		return nil, err
	}
	return lm.Tokenizer.Encode(text, true), nil
}

// Decode returns the text of ids, special tokens left out.
func (lm *LoadedModel) Decode(ids []int) (string, error) {
	if err := lm.needTokenizer(); err != nil {
		return "", err
	}
	return lm.Tokenizer.Decode(ids, true), nil
}

// GenerateOptions control LoadedModel.Generate (see generate.Options for the meaning of each).
// The zero value is greedy decoding of up to 64 new tokens, stopping at the model's EOS ids.
type GenerateOptions struct {
	MaxNewTokens int
	Temperature  float64
	TopK         int
	TopP         float64
	Seed         uint64
	Stop         []string
}

// Generate continues one prompt and returns the new text (EOS and stop string excluded).
func (lm *LoadedModel) Generate(ctx context.Context, prompt string, opts GenerateOptions) (string, error) {
	out, err := lm.GenerateBatch(ctx, []string{prompt}, opts)
	if len(out) == 1 {
		return out[0], err
	}
	return "", err
}

// GenerateBatch continues several prompts together (left padded, one KV cache) and returns their
// new texts in order. On cancellation it returns the texts so far with ctx's error.
func (lm *LoadedModel) GenerateBatch(ctx context.Context, prompts []string, opts GenerateOptions) ([]string, error) {
	if err := lm.needTokenizer(); err != nil {
		return nil, err
	}
	ids := make([][]int, len(prompts))
	for i, p := range prompts {
		ids[i] = lm.Tokenizer.Encode(p, true)
	}
	eos := append(lm.Tokenizer.EOS(), lm.Model.Config.EOSTokenIDs...)
	pad := lm.Tokenizer.Pad()
	if pad < 0 || pad >= lm.Model.Config.VocabSize {
		pad = 0
	}
	res, err := generate.Generate(ctx, lm.Model, ids, generate.Options{
		MaxNewTokens: opts.MaxNewTokens, Temperature: opts.Temperature, TopK: opts.TopK, TopP: opts.TopP,
		Seed: opts.Seed, Stop: opts.Stop, EOS: eos, PadID: pad,
	}, lm.Tokenizer)
	if res == nil {
		return nil, err
	}
	if res.Text == nil { // cancelled before the end: decode what there is
		res.Text = make([]string, len(res.Tokens))
		for i, t := range res.Tokens {
			res.Text[i] = lm.Tokenizer.Decode(t, true)
		}
	}
	return res.Text, err
}

// String is a one-line summary.
func (lm *LoadedModel) String() string {
	if lm.Model == nil {
		return fmt.Sprintf("model %q (freed)", lm.Name)
	}
	m := lm.Model
	return fmt.Sprintf("model %q: %s, %s params, %s weights, %s on %s", lm.Name, m.Config.ModelType,
		humanCount(m.Params()), weightsPrecision(lm), humanBytes(m.Bytes()), m.Backend.Name())
}

// HTML is the notebook's rich view of the model: architecture, parameters, dtype, memory.
func (lm *LoadedModel) HTML() string {
	if lm.Model == nil {
		return "<div><b>model " + html.EscapeString(lm.Name) + "</b> (freed)</div>"
	}
	m, c := lm.Model, lm.Model.Config
	tok := "none (no tokenizer.json)"
	if lm.Tokenizer != nil {
		tok = fmt.Sprintf("%d ids, BOS %d, EOS %v", lm.Tokenizer.VocabSize(), lm.Tokenizer.BOS(), lm.Tokenizer.EOS())
	}
	arch := strings.Join(c.Architectures, ", ")
	if arch == "" {
		arch = c.ModelType
	}
	rope := fmt.Sprintf("%s, θ = %g", c.Rope.Type, c.Rope.Theta)
	if c.Rope.Type == "llama3" {
		rope += fmt.Sprintf(", factor %g (low %g, high %g, original %d)", c.Rope.Factor, c.Rope.LowFreqFactor, c.Rope.HighFreqFactor, c.Rope.OriginalMaxPositions)
	}
	var extras []string
	if c.TieWordEmbeddings {
		extras = append(extras, "tied embeddings")
	}
	if c.AttentionBias {
		extras = append(extras, "q/k/v bias")
	}
	if c.QKNorm {
		extras = append(extras, "per-head q/k RMSNorm")
	}
	if w := c.LayerWindow(c.NumLayers - 1); w > 0 {
		extras = append(extras, fmt.Sprintf("sliding window %d", w))
	}
	adapters := 0
	for _, l := range m.Linears() {
		if l.Adapter != nil {
			adapters++
		}
	}
	ms := m.Backend.MemStats()
	rows := [][2]string{
		{"source", lm.Path},
		{"architecture", fmt.Sprintf("%s (model_type %s)", arch, c.ModelType)},
		{"layers", fmt.Sprintf("%d × (attention %d query / %d key-value heads of %d, SwiGLU MLP %d)", c.NumLayers, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize)},
		{"hidden size", fmt.Sprint(c.HiddenSize)},
		{"vocabulary", fmt.Sprint(c.VocabSize)},
		{"rotary", rope},
		{"features", strings.Join(append(extras, "RMSNorm ε = "+fmt.Sprint(c.RMSNormEps)), ", ")},
		{"parameters", fmt.Sprintf("%s (%d)", humanCount(m.Params()), m.Params())},
		{"weights", fmt.Sprintf("%s, %s", weightsPrecision(lm), humanBytes(m.Bytes()))},
		{"device", fmt.Sprintf("%s — %s", m.Backend.Name(), m.Backend.Capabilities().Device)},
		{"device memory", fmt.Sprintf("%s in use by all tensors of this backend (peak %s)", humanBytes(ms.Current), humanBytes(ms.Peak))},
		{"adapters attached", fmt.Sprint(adapters)},
		{"tokenizer", tok},
		{"loaded in", lm.LoadTime.Round(time.Millisecond).String()},
	}
	var sb strings.Builder
	sb.WriteString(`<div class="finlora-model"><table style="border-collapse:collapse">`)
	fmt.Fprintf(&sb, `<caption style="text-align:left;font-weight:bold">model %s</caption>`, html.EscapeString(lm.Name))
	for _, r := range rows {
		fmt.Fprintf(&sb, `<tr><th style="text-align:left;padding-right:1em">%s</th><td style="text-align:left">%s</td></tr>`,
			html.EscapeString(r[0]), html.EscapeString(r[1]))
	}
	sb.WriteString("</table></div>")
	return sb.String()
}

// Free releases the model's device memory; idempotent. Attached adapters are not freed.
func (lm *LoadedModel) Free() error {
	if lm == nil || lm.Model == nil {
		return nil
	}
	err := lm.Model.Free()
	lm.Model = nil
	return err
}

// LoadModel loads path (see OpenModel) and stores it in the Session under name; a model (or other
// object) previously stored under that name is freed once the new one has loaded. The Session owns
// the model: free it with Session.Free(name).
func (s *Session) LoadModel(ctx context.Context, name, path string, opts ModelOptions) (*LoadedModel, error) {
	if name == "" {
		return nil, fmt.Errorf("load model %s: empty name", path)
	}
	lm, err := OpenModel(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	lm.Name = name
	if err := s.Put(name, lm); err != nil {
		return lm, err
	}
	return lm, nil
}

// Model returns the model stored under name.
func (s *Session) Model(name string) (*LoadedModel, error) {
	obj, ok := s.Get(name)
	if !ok {
		return nil, fmt.Errorf("no model named %q (session holds: %s)", name, strings.Join(s.Names(), ", "))
	}
	lm, ok := obj.(*LoadedModel)
	if !ok {
		return nil, fmt.Errorf("%q is a %T, not a model", name, obj)
	}
	return lm, nil
}

// LoadModel loads path into the Default session under name (see Session.LoadModel). In a cell:
//
//	m, err := runtime.LoadModel(runtime.Ctx(), "base", "/models/Llama-3.1-8B", runtime.ModelOptions{DType: "bf16"})
func LoadModel(ctx context.Context, name, path string, opts ModelOptions) (*LoadedModel, error) {
	return defaultSession.LoadModel(ctx, name, path, opts)
}

// Model returns the model stored under name in the Default session.
func Model(name string) (*LoadedModel, error) { return defaultSession.Model(name) }

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f B", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f K", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
