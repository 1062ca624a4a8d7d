package main

import (
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/cuda"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/train"
)

func init() {
	register("bench", "time LoRA training steps on a random-initialised model (tokens/s, step time, peak memory, MFU)", runBench)
}

// benchPresets are model shapes for 'finlora bench -preset'.
var benchPresets = map[string]func() *model.Config{
	"llama-3.1-8b": func() *model.Config {
		return &model.Config{ModelType: "llama", VocabSize: 128256, HiddenSize: 4096, IntermediateSize: 14336, NumLayers: 32,
			NumHeads: 32, NumKVHeads: 8, HeadDim: 128, RMSNormEps: 1e-5, MaxPositionEmbeddings: 131072,
			Rope:  model.Rope{Theta: 500000, Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192},
			DType: tensor.BF16, BOSTokenID: -1, PadTokenID: -1}
	},
	"tiny": model.TinyConfig,
}

// runBench builds a random model of the preset's shape (bf16 weights), a LoRA adapter, and times
// optimizer steps of the trainer on batch x seq tokens of random ids, with gradient checkpointing
// off and/or on. MFU is model FLOPs per second (see benchFLOPs) over a bf16 GEMM rate measured on
// the same device.
func runBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	preset := fs.String("preset", "llama-3.1-8b", "model shape: "+strings.Join(presetNames(), ", "))
	layers := fs.Int("layers", 0, "override the number of decoder layers (0: the preset's)")
	rank := fs.Int("r", 8, "LoRA rank")
	alpha := fs.Float64("alpha", 32, "LoRA alpha")
	targets := fs.String("targets", "q_proj,k_proj,v_proj", "LoRA target modules, comma separated")
	batch := fs.Int("batch", 4, "rows per step")
	seq := fs.Int("seq", 512, "tokens per row")
	recompute := fs.String("recompute", "both", "gradient checkpointing: on, off or both")
	steps := fs.Int("steps", 5, "timed steps")
	warmup := fs.Int("warmup", 2, "untimed steps first")
	device := fs.String("device", "", "backend (default: $FINLORA_DEVICE, else the GPU when there is one)")
	gemm := fs.Int("gemm", 8192, "size of the square bf16 GEMM timed for MFU (0: skip)")
	profile := fs.Bool("profile", false, "after the timed runs, profile one more step per setting (device time per kernel)")
	quantF := fs.String("quant", "", "hold the decoder's linear layers quantized (QLoRA): nf4, fp4 or int8 (default: bf16)")
	decode := fs.Int("decode", 0, "also time greedy decoding of this many tokens at batch 1 (0: skip; -steps 0 skips training)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	mk, ok := benchPresets[*preset]
	if !ok {
		return fmt.Errorf("%w: unknown preset %q (have %s)", errUsage, *preset, strings.Join(presetNames(), ", "))
	}
	modes := map[string][]bool{"on": {true}, "off": {false}, "both": {false, true}}[*recompute]
	if modes == nil {
		return fmt.Errorf("%w: -recompute %q (want on, off or both)", errUsage, *recompute)
	}
	cfg := mk()
	if *layers > 0 {
		cfg.NumLayers = *layers
	}
	var b tensor.Backend
	var err error
	if *device != "" {
		b, err = tensor.Get(*device)
	} else {
		b, err = tensor.Default()
	}
	if err != nil {
		return err
	}
	cb, _ := b.(*cuda.Backend)
	fmt.Printf("bench: %s (%d layers, %.2fB params), LoRA r=%d alpha=%g on %s, batch %d x %d tokens, on %s (%s)\n",
		*preset, cfg.NumLayers, float64(cfg.Params())/1e9, *rank, *alpha, *targets, *batch, *seq, b.Name(), b.Capabilities().Device)

	rate := 0.0
	if cb != nil && *gemm > 0 {
		if rate, err = cb.GemmRate(*gemm, *gemm, *gemm, 20); err != nil {
			return fmt.Errorf("bench: gemm rate: %w", err)
		}
		fmt.Printf("measured bf16 GEMM rate (cuBLASLt, %d^3, median of 20): %.1f TFLOP/s\n", *gemm, rate)
	}

	t0 := time.Now()
	memBefore := b.MemStats().Current
	src := newBenchSource(cfg)
	baseName := "bf16"
	var m *model.Model
	if *quantF != "" {
		baseName = *quantF
		m, err = benchQuantModel(context.Background(), cfg, src, b, *quantF)
	} else {
		m, err = model.FromSource(context.Background(), cfg, src, model.LoadOptions{Backend: b, DType: tensor.BF16})
	}
	if err != nil {
		return fmt.Errorf("bench: random model: %w", err)
	}
	defer m.Free()
	modelBytes := b.MemStats().Current - memBefore
	embedBytes := int64(2 * cfg.VocabSize * cfg.HiddenSize)
	if cfg.TieWordEmbeddings {
		embedBytes = 0 // the table is the LM head too: every token reads it
	}
	fmt.Printf("model on the device: %.2f GiB (%s linear layers)\n", float64(modelBytes)/(1<<30), baseName)
	base, err := train.NewBase(m, *seq)
	if err != nil {
		return err
	}
	defer base.Close()
	fmt.Printf("model ready in %v\n", time.Since(t0).Round(time.Millisecond))

	lcfg := lora.DefaultConfig()
	lcfg.R, lcfg.LoraAlpha = *rank, *alpha
	lcfg.TargetModules = lora.Targets{Names: strings.Split(*targets, ",")}
	lins, err := base.Linears(false)
	if err != nil {
		return err
	}
	ad, err := lora.New(lcfg, lins, 1)
	if err != nil {
		return err
	}
	rows := benchRows(*batch*(*steps+*warmup), *seq, cfg.VocabSize)
	flops := benchFLOPs(cfg, *batch, *seq)

	type result struct {
		recompute          bool
		tokS, stepS        float64
		peakAlloc, peakRes float64 // GiB
		mfu                float64
		loss0, lossN       float64
	}
	var results []result
	if *steps <= 0 {
		modes = nil
	}
	for _, rc := range modes {
		if cb != nil { // return the previous run's cached blocks so each run's reserved peak is its own
			if err := cb.Device().Alloc.ReleaseCache(); err != nil {
				return err
			}
			cb.Device().Alloc.ResetPeaks()
		}
		before := b.MemStats()
		tr, err := train.NewTrainer(base, ad.Clone(), rows, train.Config{BatchSize: *batch, Steps: *steps + *warmup,
			GradientCheckpointing: rc, AdamW: train.AdamWConfig{LR: 1e-4, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8}})
		if err != nil {
			return err
		}
		if err := tr.Run(context.Background()); err != nil {
			tr.Close()
			return fmt.Errorf("bench: train (recompute %v): %w", rc, err)
		}
		ms := tr.Metrics()
		tr.Close()
		var durs []float64
		for _, s := range ms[*warmup:] {
			durs = append(durs, s.Duration.Seconds())
		}
		sort.Float64s(durs)
		step := durs[len(durs)/2]
		r := result{recompute: rc, stepS: step, tokS: float64(*batch**seq) / step, loss0: ms[0].Loss, lossN: ms[len(ms)-1].Loss}
		if cb != nil {
			st := cb.AllocStats()
			r.peakAlloc, r.peakRes = float64(st.PeakAll)/(1<<30), float64(st.PeakRes)/(1<<30)
			fmt.Printf("memory (recompute %v): %v\n", rc, st)
		} else {
			r.peakAlloc = float64(b.MemStats().Peak) / (1 << 30) // since the backend was made
			_ = before
		}
		if rate > 0 {
			r.mfu = flops / step / (rate * 1e12)
		}
		for _, s := range ms {
			fmt.Printf("  recompute=%v step %d: loss %.4f, %.3f s, %.0f tok/s\n", rc, s.Step, s.Loss, s.Duration.Seconds(), s.TokensPerSec)
		}
		results = append(results, r)
	}
	if *profile && cb != nil {
		for _, rc := range modes {
			if err := benchProfile(cb, base, ad, rows, *batch, rc); err != nil {
				return err
			}
		}
	}
	if *decode > 0 && cb != nil {
		if err := benchDecode(m, cb, baseName, modelBytes, embedBytes, *decode, *profile); err != nil {
			return err
		}
	}
	if len(results) == 0 {
		return nil
	}
	fmt.Printf("\nmodel FLOPs per step (4·N_linear·tokens + attention, no recompute counted): %.3g\n", flops)
	fmt.Printf("%-10s %-6s %-10s %10s %10s %12s %12s %7s\n", "impl", "base", "recompute", "tok/s", "step s", "peak alloc", "peak resv", "MFU")
	for _, r := range results {
		fmt.Printf("%-10s %-6s %-10v %10.0f %10.3f %9.2f GiB %9.2f GiB %6.1f%%\n", "finlora", baseName, r.recompute, r.tokS, r.stepS, r.peakAlloc, r.peakRes, 100*r.mfu)
	}
	return nil
}

// benchProfile runs three steps: the host time in driver and cuBLASLt calls of the second (no
// events), then the device time per kernel of the third.
func benchProfile(cb *cuda.Backend, base *train.Base, ad *lora.Adapter, rows []train.Example, batch int, rc bool) error {
	var host []cuda.HostCall
	var tracedStep float64
	tr, err := train.NewTrainer(base, ad.Clone(), rows, train.Config{BatchSize: batch, Steps: 3, GradientCheckpointing: rc,
		AdamW: train.AdamWConfig{LR: 1e-4, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8},
		Progress: func(s train.StepMetrics) {
			switch s.Step {
			case 1:
				cuda.StartHostTrace()
			case 2:
				host, tracedStep = cuda.StopHostTrace(), s.Duration.Seconds()
				cb.StartProfile()
			}
		}})
	if err != nil {
		return err
	}
	err = tr.Run(context.Background())
	tr.Close()
	if err != nil {
		return err
	}
	prof, err := cb.StopProfile()
	if err != nil {
		return err
	}
	var hostMs float64
	for _, c := range host {
		hostMs += c.Ms
	}
	fmt.Printf("\nhost calls of one step (recompute %v, step %.3f s with the trace on): %.1f ms inside driver and cuBLASLt calls\n", rc, tracedStep, hostMs)
	for i, c := range host {
		if i == 12 {
			break
		}
		fmt.Printf("  host %-32s %7d calls %8.2f ms\n", c.Name, c.Calls, c.Ms)
	}
	var total float64
	groups := map[string]float64{}
	for _, e := range prof {
		total += e.Ms
		g := e.Name
		if i := strings.IndexAny(g, " _"); i > 0 {
			g = g[:i]
		}
		groups[g] += e.Ms
	}
	fmt.Printf("\nprofile of one step (recompute %v): %.1f ms of device time in kernels and matmuls\n", rc, total)
	var gn []string
	for g := range groups {
		gn = append(gn, g)
	}
	sort.Slice(gn, func(i, j int) bool { return groups[gn[i]] > groups[gn[j]] })
	for _, g := range gn {
		fmt.Printf("  group %-14s %8.2f ms %5.1f%%\n", g, groups[g], 100*groups[g]/total)
	}
	for i, e := range prof {
		if i == 25 {
			break
		}
		fmt.Printf("  %-48s %6d calls %8.2f ms %5.1f%%\n", e.Name, e.Calls, e.Ms, 100*e.Ms/total)
	}
	return nil
}

func presetNames() []string {
	var n []string
	for k := range benchPresets {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// benchFLOPs is the model FLOPs of one LoRA training step: forward 2·N·tokens for every linear
// layer and the LM head, the backward's input gradients as much again (frozen weights get no weight
// gradient; LoRA's are negligible), and causal attention 2·2·B·Hq·D·T²/2 per layer forward, twice
// that backward.
func benchFLOPs(c *model.Config, batch, seq int) float64 {
	d, hd := float64(c.HiddenSize), float64(c.HeadDim)
	q, kv := float64(c.NumHeads)*hd, float64(c.NumKVHeads)*hd
	perLayer := d*q + 2*d*kv + q*d + 3*d*float64(c.IntermediateSize)
	n := float64(c.NumLayers)*perLayer + float64(c.VocabSize)*d
	tokens := float64(batch * seq)
	attn := 2 * 2 * float64(batch) * float64(c.NumHeads) * hd * float64(seq) * float64(seq) / 2 * float64(c.NumLayers)
	return 4*n*tokens + 3*attn
}

func benchRows(n, seq, vocab int) []train.Example {
	rows := make([]train.Example, n)
	r := uint64(12345)
	for i := range rows {
		ids := make([]int32, seq)
		for j := range ids {
			r = r*6364136223846793005 + 1442695040888963407
			ids[j] = int32((r >> 33) % uint64(vocab))
		}
		rows[i] = train.Example{InputIDs: ids, Labels: append([]int32(nil), ids...)}
	}
	return rows
}

// benchSource is a safetensors.Source of BF16 tensors for model.FromSource that makes an 8B model
// in seconds: every matrix is a window of one shared pool of N(0, 0.02²)-like values (uniform with
// that standard deviation, generated in parallel once), norm weights a window of a pool around 1.
// Windows start at an offset hashed from the name, so tensors differ. Not a trained model: for
// timing only.
type benchSource struct {
	specs       map[string][]int
	pool, norms []byte
}

func newBenchSource(c *model.Config) *benchSource {
	s := &benchSource{specs: map[string][]int{}}
	d, hd := c.HiddenSize, c.HeadDim
	maxN := 0
	add := func(name string, shape ...int) {
		s.specs[name] = shape
		maxN = max(maxN, tensor.Numel(shape))
	}
	add("model.embed_tokens.weight", c.VocabSize, d)
	add("model.norm.weight", d)
	if !c.TieWordEmbeddings {
		add("lm_head.weight", c.VocabSize, d)
	}
	for i := 0; i < c.NumLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		add(p+"input_layernorm.weight", d)
		add(p+"post_attention_layernorm.weight", d)
		add(p+"self_attn.q_proj.weight", c.NumHeads*hd, d)
		add(p+"self_attn.k_proj.weight", c.NumKVHeads*hd, d)
		add(p+"self_attn.v_proj.weight", c.NumKVHeads*hd, d)
		add(p+"self_attn.o_proj.weight", d, c.NumHeads*hd)
		add(p+"mlp.gate_proj.weight", c.IntermediateSize, d)
		add(p+"mlp.up_proj.weight", c.IntermediateSize, d)
		add(p+"mlp.down_proj.weight", d, c.IntermediateSize)
		if c.QKNorm {
			add(p+"self_attn.q_norm.weight", hd)
			add(p+"self_attn.k_norm.weight", hd)
		}
	}
	const slack = 1 << 20
	s.pool = randomBF16(maxN+slack, 0, 0.02)
	s.norms = randomBF16(64<<10+slack, 1, 0.1)
	return s
}

// randomBF16 returns n bf16 values (little-endian bytes), uniform with the given mean and standard
// deviation, generated on all cores.
func randomBF16(n int, mean, std float64) []byte {
	out := make([]byte, 2*n)
	workers := runtime.GOMAXPROCS(0)
	chunk := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min(n, (w+1)*chunk)
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func(lo, hi int, seed uint64) {
			defer wg.Done()
			r := seed*0x9e3779b97f4a7c15 | 1
			half := std * 1.7320508 // uniform on [-a, a] has std a/sqrt(3)
			for i := lo; i < hi; i++ {
				r ^= r << 13
				r ^= r >> 7
				r ^= r << 17
				u := float64(r>>11)/(1<<53)*2 - 1
				h := tensor.Float32ToBF16(float32(mean + half*u))
				out[2*i], out[2*i+1] = byte(h), byte(h>>8)
			}
		}(lo, hi, uint64(w+1))
	}
	wg.Wait()
	return out
}

func (s *benchSource) Names() []string {
	var n []string
	for k := range s.specs {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func (s *benchSource) Info(name string) (safetensors.TensorInfo, bool) {
	sh, ok := s.specs[name]
	if !ok {
		return safetensors.TensorInfo{}, false
	}
	return safetensors.TensorInfo{Name: name, DType: safetensors.BF16, Shape: sh, End: int64(2 * tensor.Numel(sh))}, true
}

// Bytes returns a window of a shared pool: the caller (the loader) copies it to the device and
// must not modify it.
func (s *benchSource) Bytes(name string) ([]byte, error) {
	sh, ok := s.specs[name]
	if !ok {
		return nil, fmt.Errorf("bench source: no tensor %s", name)
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	off := int(h.Sum64() % (1 << 20))
	pool := s.pool
	if len(sh) == 1 {
		pool = s.norms
	}
	n := tensor.Numel(sh)
	return pool[2*off : 2*(off+n)], nil
}

func (s *benchSource) Float32(name string) ([]float32, error) {
	raw, err := s.Bytes(name)
	if err != nil {
		return nil, err
	}
	v := make([]float32, len(raw)/2)
	for i := range v {
		v[i] = tensor.BF16ToFloat32(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
	}
	return v, nil
}

var _ safetensors.Source = (*benchSource)(nil)
