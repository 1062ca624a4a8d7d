package runtime

import (
	"context"
	"fmt"
	"html"
	"strings"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/train"
)

// Adapter is a LoRA adapter (PEFT-compatible, runtime/lora) on a loaded model, as a session holds it.
// Its weights are float32 host slices owned by LoRA; Finetune updates them in place after every
// optimizer step, so the adapter always holds the weights of the last completed step (also after
// an interrupt). The adapter is applied to the model only for the duration of a call that uses it
// (Evaluate, Generate), so the bare model stays the base everywhere else.
type Adapter struct {
	Name    string
	Model   *LoadedModel        // the base model (borrowed: freeing the adapter does not free it)
	LoRA    *lora.Adapter       // config and weights; nil after Free
	Path    string              // the directory it was loaded from or last saved to ("" if none)
	History []train.StepMetrics // every optimizer step trained in this session, in order
}

// AdapterOptions choose a new adapter's shape. Zero values mean the defaults noted (those of
// `finlora train`): rank 8, alpha 16, no dropout, q_proj/k_proj/v_proj, plain LoRA.
type AdapterOptions struct {
	Rank    int      // r (8 when 0)
	Alpha   float64  // lora_alpha (16 when 0): the scale is alpha/r, or alpha/sqrt(r) with RSLoRA
	Dropout float64  // dropout probability on the LoRA input during training
	Targets []string // module names (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)
	RSLoRA  bool     // rank-stabilized scaling alpha/sqrt(r)
	DoRA    bool     // weight-decomposed LoRA (a magnitude vector per module)
	Seed    uint64   // seeds the initialisation of A (B starts at zero, so the adapter starts as a no-op)
}

// NewAdapter creates a fresh adapter on m (A kaiming-uniform, B zero: the model's outputs are
// unchanged until it is trained) and stores it under name in the Default session, freeing what
// the name held. The session owns it.
func NewAdapter(m *LoadedModel, name string, opts AdapterOptions) (*Adapter, error) {
	if err := usableModel(m); err != nil {
		return nil, fmt.Errorf("new adapter %q: %w", name, err)
	}
	if name == "" {
		return nil, fmt.Errorf("new adapter: empty name")
	}
	cfg := lora.DefaultConfig()
	if opts.Rank > 0 {
		cfg.R = opts.Rank
	}
	if opts.Alpha > 0 {
		cfg.LoraAlpha = opts.Alpha
	}
	cfg.LoraDropout, cfg.UseRSLoRA, cfg.UseDoRA = opts.Dropout, opts.RSLoRA, opts.DoRA
	if len(opts.Targets) > 0 {
		cfg.TargetModules = lora.Targets{Names: append([]string(nil), opts.Targets...)}
	}
	cfg.BaseModelNameOrPath = m.Path
	base, err := train.NewBase(m.Model, 8)
	if err != nil {
		return nil, fmt.Errorf("new adapter %q: %w", name, err)
	}
	lins, err := base.Linears(opts.DoRA)
	base.Close()
	if err != nil {
		return nil, fmt.Errorf("new adapter %q: %w", name, err)
	}
	la, err := lora.New(cfg, lins, opts.Seed)
	if err != nil {
		return nil, fmt.Errorf("new adapter %q: %w", name, err)
	}
	a := &Adapter{Name: name, Model: m, LoRA: la}
	return a, Put(name, a)
}

// LoadAdapter reads a PEFT adapter directory (adapter_config.json + adapter_model.safetensors)
// for model m, checks that its modules fit m's linear layers, and stores it under name in the
// Default session. The session owns it.
func LoadAdapter(m *LoadedModel, name, dir string) (*Adapter, error) {
	if err := usableModel(m); err != nil {
		return nil, fmt.Errorf("load adapter %s: %w", dir, err)
	}
	if name == "" {
		return nil, fmt.Errorf("load adapter %s: empty name", dir)
	}
	la, err := lora.Load(dir)
	if err != nil {
		return nil, err
	}
	unlock, err := lockModel(context.Background(), m)
	if err != nil {
		return nil, err
	}
	detach, err := lora.Attach(m.Model, la) // checks every module against the model
	unlock()
	if err != nil {
		return nil, fmt.Errorf("load adapter %s onto model %q: %w", dir, m.Name, err)
	}
	detach()
	a := &Adapter{Name: name, Model: m, LoRA: la, Path: dir}
	return a, Put(name, a)
}

// GetAdapter returns the adapter stored under name in the Default session (borrowed).
func GetAdapter(name string) (*Adapter, error) {
	obj, ok := Get(name)
	if !ok {
		return nil, fmt.Errorf("no adapter named %q (session holds: %s)", name, strings.Join(Names(), ", "))
	}
	a, ok := obj.(*Adapter)
	if !ok {
		return nil, fmt.Errorf("%q is a %T, not an adapter", name, obj)
	}
	return a, nil
}

func usableModel(m *LoadedModel) error {
	switch {
	case m == nil:
		return fmt.Errorf("no model (nil)")
	case m.Model == nil:
		return fmt.Errorf("model %q has been freed", m.Name)
	case m.Tokenizer == nil:
		return fmt.Errorf("model %q has no tokenizer", m.Name)
	}
	return nil
}

func (a *Adapter) check() error {
	if a == nil || a.LoRA == nil {
		name := "<nil>"
		if a != nil {
			name = a.Name
		}
		return fmt.Errorf("adapter %q has been freed", name)
	}
	return usableModel(a.Model)
}

// Save writes the adapter in PEFT's format into dir (created if needed; files replaced
// atomically): adapter_config.json and adapter_model.safetensors with keys
// base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight etc. Path becomes dir.
func (a *Adapter) Save(dir string) error {
	if a == nil || a.LoRA == nil {
		return fmt.Errorf("save adapter: it has been freed")
	}
	if a.Model != nil {
		unlock, err := lockModel(context.Background(), a.Model)
		if err != nil {
			return err
		}
		defer unlock()
	}
	if err := a.LoRA.Save(dir); err != nil {
		return fmt.Errorf("save adapter %q: %w", a.Name, err)
	}
	a.Path = dir
	return nil
}

// NumParams is the number of trainable parameters (A, B and DoRA magnitudes).
func (a *Adapter) NumParams() int {
	if a == nil || a.LoRA == nil {
		return 0
	}
	return a.LoRA.NumParams()
}

// Steps is the number of optimizer steps trained in this session. Like every method that reads
// the weights or the history, it waits for a Finetune still finishing its step (after an interrupt).
func (a *Adapter) Steps() int {
	defer a.wait()()
	return len(a.History)
}

// LastLoss is the training loss of the last step (0 before any training).
func (a *Adapter) LastLoss() float64 {
	defer a.wait()()
	if len(a.History) == 0 {
		return 0
	}
	return a.History[len(a.History)-1].Loss
}

// wait takes the model's call lock (see lockModel) and returns its release.
func (a *Adapter) wait() (unlock func()) {
	if a == nil || a.Model == nil {
		return func() {}
	}
	unlock, _ = lockModel(context.Background(), a.Model)
	return unlock
}

// with applies the adapter to its model (nil a: the bare model) for the duration of fn.
func with(m *LoadedModel, a *Adapter, fn func() error) error {
	if a == nil {
		return fn()
	}
	if err := a.check(); err != nil {
		return err
	}
	if a.Model != m {
		return fmt.Errorf("adapter %q belongs to model %q, not %q", a.Name, a.Model.Name, m.Name)
	}
	detach, err := lora.Attach(m.Model, a.LoRA)
	if err != nil {
		return fmt.Errorf("apply adapter %q: %w", a.Name, err)
	}
	defer detach()
	return fn()
}

// Generate continues prompt with the adapter applied (see LoadedModel.Generate).
func (a *Adapter) Generate(ctx context.Context, prompt string, opts GenerateOptions) (string, error) {
	if err := a.check(); err != nil {
		return "", err
	}
	unlock, err := lockModel(ctx, a.Model)
	if err != nil {
		return "", err
	}
	defer unlock()
	var out string
	err = with(a.Model, a, func() error {
		var err error
		out, err = a.Model.Generate(ctx, prompt, opts)
		return err
	})
	return out, err
}

// String is a one-line summary.
func (a *Adapter) String() string {
	if a == nil || a.LoRA == nil {
		return "adapter (freed)"
	}
	c := a.LoRA.Config
	kind := "LoRA"
	if c.UseDoRA {
		kind = "DoRA"
	}
	if c.UseRSLoRA {
		kind += " (rsLoRA scale)"
	}
	return fmt.Sprintf("adapter %q: %s r=%d alpha=%g on %s, %d modules, %d parameters, %d steps trained",
		a.Name, kind, c.R, c.LoraAlpha, targetsString(c.TargetModules), len(a.LoRA.Modules), a.NumParams(), a.Steps())
}

func targetsString(t lora.Targets) string {
	if t.Names != nil {
		return strings.Join(t.Names, ",")
	}
	return "/" + t.Regex + "/"
}

// HTML is the notebook's view: config, size, training so far, where it was saved.
func (a *Adapter) HTML() string {
	if a == nil || a.LoRA == nil {
		return "<div><b>adapter</b> (freed)</div>"
	}
	c := a.LoRA.Config
	model := "(freed)"
	if a.Model != nil {
		model = a.Model.Name + " — " + a.Model.Path
	}
	rows := [][2]string{
		{"base model", model},
		{"rank / alpha / scale", fmt.Sprintf("%d / %g / %s", c.R, c.LoraAlpha, scaleString(c))},
		{"targets", targetsString(c.TargetModules)},
		{"dropout", fmt.Sprint(c.LoraDropout)},
		{"DoRA", fmt.Sprint(c.UseDoRA)},
		{"modules", fmt.Sprint(len(a.LoRA.Modules))},
		{"trainable parameters", fmt.Sprintf("%s (%d)", humanCount(int64(a.NumParams())), a.NumParams())},
		{"steps trained", fmt.Sprint(a.Steps())},
	}
	if a.Steps() > 0 {
		rows = append(rows, [2]string{"last loss", fmt.Sprintf("%.4f", a.LastLoss())})
	}
	if a.Path != "" {
		rows = append(rows, [2]string{"saved at / loaded from", a.Path})
	}
	var sb strings.Builder
	sb.WriteString(`<div class="finlora-adapter"><table style="border-collapse:collapse">`)
	fmt.Fprintf(&sb, `<caption style="text-align:left;font-weight:bold">adapter %s</caption>`, html.EscapeString(a.Name))
	for _, r := range rows {
		fmt.Fprintf(&sb, `<tr><th style="text-align:left;padding-right:1em">%s</th><td style="text-align:left">%s</td></tr>`,
			html.EscapeString(r[0]), html.EscapeString(r[1]))
	}
	sb.WriteString("</table></div>")
	return sb.String()
}

func scaleString(c lora.Config) string {
	if c.UseRSLoRA {
		return fmt.Sprintf("alpha/√r = %.4g", c.ScaleFor(""))
	}
	return fmt.Sprintf("alpha/r = %.4g", c.ScaleFor(""))
}

// Free drops the adapter's weights; idempotent. The model is not freed.
func (a *Adapter) Free() error {
	if a != nil {
		a.LoRA = nil
	}
	return nil
}
