package train

import (
	"fmt"
	"html"
	"strings"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor"
)

// Memory is the memory of a model, and of a training run on it, by component, in bytes. Model
// parts are the storage of the weights on the backend (tensor bytes; quantized layers at their
// quantized size: codes, scales, nested scales, tables); training parts are filled by
// Trainer.Memory. The String and HTML views list the components and the total.
type Memory struct {
	Backend          string // backend name ("cpu", "cuda:0")
	Embeddings       int64  // token embeddings (a tied LM head is counted here only)
	LMHead           int64  // untied LM head (bitsandbytes leaves it dense)
	QuantizedLinears int64  // packed (quantized) projections of the decoder layers
	QuantizedCount   int    // how many projections are packed
	DenseLinears     int64  // dense projections (weights and biases)
	Norms            int64  // RMSNorm weights (and Qwen3's q/k norms)
	Rope             int64  // the trainer's rotary tables (Base.Cos, Sin, NegSin)
	Adapters         int64  // adapter weights and gradient accumulators on the backend (A, B, dA, dB, DoRA vectors)
	Optimizer        int64  // AdamW moments, float32 on the host (2 per adapter parameter)
	// Activations is the peak of activation bytes held at once during a micro-batch (forward,
	// loss, backward; with gradient checkpointing, layer inputs plus one layer), measured over the
	// micro-batches run so far by the trainer; 0 before the first step.
	Activations int64
}

// ModelMemory returns the model components of m's memory.
func ModelMemory(m *model.Model) Memory {
	r := Memory{Backend: m.Backend.Name(), Embeddings: m.Embed.Bytes(), Norms: m.Norm.Bytes()}
	for _, l := range m.Layers {
		r.Norms += l.InputNorm.Bytes() + l.PostAttnNorm.Bytes()
		if l.QNorm != nil {
			r.Norms += l.QNorm.Bytes() + l.KNorm.Bytes()
		}
		for _, p := range l.Linears() {
			if p.Packed != nil {
				r.QuantizedLinears += p.Bytes()
				r.QuantizedCount++
			} else {
				r.DenseLinears += p.Bytes()
			}
		}
	}
	if !m.Config.TieWordEmbeddings {
		r.LMHead = m.LMHead.Bytes()
	}
	return r
}

// Memory returns the memory of the run: the base model's components, the rotary tables, the
// adapter on the backend, the optimizer state and the activation peak measured so far.
func (t *Trainer) Memory() Memory {
	var r Memory
	if gp := t.Base.Gemma; gp != nil {
		r = gemma3Memory(gp.Model)
		for _, x := range []*tensor.Tensor{gp.CosLocal, gp.SinLocal, gp.NegSinLocal} {
			r.Rope += x.Bytes()
		}
	} else {
		r = ModelMemory(t.Base.Model)
	}
	for _, x := range []*tensor.Tensor{t.Base.Cos, t.Base.Sin, t.Base.NegSin} {
		if x != nil {
			r.Rope += x.Bytes()
		}
	}
	if t.dev != nil {
		for _, m := range t.dev.mods {
			for _, x := range []*tensor.Tensor{m.A, m.B, m.dA, m.dB, m.dMag, m.mscale, m.invNorm} {
				if x != nil {
					r.Adapters += x.Bytes()
				}
			}
		}
	}
	for i := range t.opt.M {
		r.Optimizer += 4 * int64(len(t.opt.M[i])+len(t.opt.V[i]))
	}
	if t.g != nil {
		r.Activations = t.g.live.peak
	}
	return r
}

// Total is the sum of the components.
func (r Memory) Total() int64 {
	return r.Embeddings + r.LMHead + r.QuantizedLinears + r.DenseLinears + r.Norms + r.Rope + r.Adapters + r.Optimizer + r.Activations
}

func (r Memory) rows() [][2]string {
	q := humanBytes(r.QuantizedLinears)
	if r.QuantizedCount > 0 {
		q += fmt.Sprintf(" (%d layers)", r.QuantizedCount)
	}
	return [][2]string{
		{"embeddings", humanBytes(r.Embeddings)},
		{"LM head", humanBytes(r.LMHead)},
		{"quantized linears", q},
		{"dense linears", humanBytes(r.DenseLinears)},
		{"norms", humanBytes(r.Norms)},
		{"rotary tables", humanBytes(r.Rope)},
		{"adapters", humanBytes(r.Adapters)},
		{"optimizer (host)", humanBytes(r.Optimizer)},
		{"activations (peak)", humanBytes(r.Activations)},
		{"total", humanBytes(r.Total())},
	}
}

// String lists the components on one line each.
func (r Memory) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "memory on %s:\n", r.Backend)
	for _, row := range r.rows() {
		fmt.Fprintf(&sb, "  %-20s %s\n", row[0], row[1])
	}
	return sb.String()
}

// HTML is a table of the components for a notebook.
func (r Memory) HTML() string {
	var sb strings.Builder
	sb.WriteString(`<table style="border-collapse:collapse">`)
	fmt.Fprintf(&sb, `<caption style="text-align:left;font-weight:bold">memory on %s</caption>`, html.EscapeString(r.Backend))
	for _, row := range r.rows() {
		fmt.Fprintf(&sb, `<tr><th style="text-align:left;padding-right:1em">%s</th><td style="text-align:right">%s</td></tr>`,
			html.EscapeString(row[0]), html.EscapeString(row[1]))
	}
	sb.WriteString("</table>")
	return sb.String()
}

// liveBytes counts bytes held now and at most (single goroutine: the graph's).
type liveBytes struct{ cur, peak int64 }

func (l *liveBytes) add(n int64) {
	if l == nil {
		return
	}
	l.cur += n
	l.peak = max(l.peak, l.cur)
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
