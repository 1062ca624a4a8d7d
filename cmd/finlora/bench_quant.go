package main

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/finlora/finlora/quant"
	"github.com/finlora/finlora/runtime/cuda"
	"github.com/finlora/finlora/runtime/generate"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/qmodel"
	"github.com/finlora/finlora/runtime/tensor"
)

// benchQuantModel builds the bench model with the decoder's linear layers quantized (QLoRA's frozen
// base): nf4/fp4 with double quantization, blocksize 64, values rounded to bf16 (the checkpoint's
// dtype, as bitsandbytes records it); int8 = LLM.int8 row-wise absmax, dequantized values rounded
// to bf16 too, so training runs the tensor-core GEMMs on dequantized bf16 tiles. The layers are
// quantized on the host on all cores first (the bench source is synthetic, so this stands in for a
// checkpoint already quantized), then uploaded one at a time as the loader asks for them.
// Embeddings, norms and the LM head stay bf16.
func benchQuantModel(ctx context.Context, cfg *model.Config, src *benchSource, b tensor.Backend, format string) (*model.Model, error) {
	var names []string
	for n := range src.specs {
		if strings.HasSuffix(n, "_proj.weight") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	hosts := make(map[string]*tensor.QuantHost, len(names))
	var mu sync.Mutex
	var firstErr error
	work := make(chan string)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				h, err := benchQuantize(src, name, format)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("bench: quantize %s: %w", name, err)
				}
				hosts[name] = h
				mu.Unlock()
			}
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	fmt.Printf("quantized %d linear layers to %s on the host in %v\n", len(names), format, time.Since(t0).Round(time.Millisecond))
	return model.FromSource(ctx, cfg, src, model.LoadOptions{Backend: b, DType: tensor.BF16,
		Linear: func(name string, in, out int) (model.PackedWeight, error) {
			h := hosts[name+".weight"]
			if h == nil { // the LM head stays dense
				return nil, nil
			}
			delete(hosts, name+".weight") // the host copy goes once uploaded
			return qmodel.Upload(b, h)
		}})
}

func benchQuantize(src *benchSource, name, format string) (*tensor.QuantHost, error) {
	w, err := src.Float32(name)
	if err != nil {
		return nil, err
	}
	sh := src.specs[name]
	switch format {
	case "nf4", "fp4":
		q, err := quant.Quantize4(w, sh, quant.Options4{Type: quant.QuantType(format), DoubleQuant: true, DType: "bfloat16"})
		if err != nil {
			return nil, err
		}
		return q.Host()
	case "int8":
		q, err := quant.QuantizeInt8(w, sh[0], sh[1])
		if err != nil {
			return nil, err
		}
		h, err := q.Host()
		if err != nil {
			return nil, err
		}
		h.Round = tensor.BF16
		return h, nil
	}
	return nil, fmt.Errorf("%w: -quant %q (want nf4, fp4 or int8)", errUsage, format)
}

// benchDecode times greedy decoding at batch 1 (runtime/generate, KV cache): a 16-token prompt
// with 8 and with 8+n new tokens; the difference over n is the time per decoded token. The limit is
// the bytes every token must read (the model's device bytes less the embedding table, of which a
// token reads one row) over the measured copy rate.
func benchDecode(m *model.Model, cb *cuda.Backend, base string, modelBytes, embedBytes int64, n int, profile bool) error {
	prompt := make([]int, 16)
	for i := range prompt {
		prompt[i] = 1000 + 37*i
	}
	timeGen := func(k int) (time.Duration, int, error) {
		t0 := time.Now()
		res, err := generate.Generate(context.Background(), m, [][]int{prompt}, generate.Options{MaxNewTokens: k}, nil)
		if err != nil {
			return 0, 0, err
		}
		return time.Since(t0), len(res.Tokens[0]), nil
	}
	if _, _, err := timeGen(4); err != nil { // warm up (kernel loads, caches)
		return fmt.Errorf("bench: decode: %w", err)
	}
	var per []float64
	for rep := 0; rep < 3; rep++ {
		ta, na, err := timeGen(8)
		if err != nil {
			return fmt.Errorf("bench: decode: %w", err)
		}
		tb, nb, err := timeGen(8 + n)
		if err != nil {
			return fmt.Errorf("bench: decode: %w", err)
		}
		if nb <= na {
			return fmt.Errorf("bench: decode: %d then %d tokens generated (an EOS?)", na, nb)
		}
		per = append(per, (tb-ta).Seconds()/float64(nb-na))
	}
	sort.Float64s(per)
	s := per[len(per)/2]
	rate, err := cb.CopyRate(1<<30, 20)
	if err != nil {
		return err
	}
	read := modelBytes - embedBytes
	limit := float64(read) / (rate * 1e9)
	fmt.Printf("\ndecode (batch 1, greedy, %d new tokens after 8, median of 3): %.3f ms/token, %.1f tokens/s\n", n, 1e3*s, 1/s)
	fmt.Printf("  bytes read per token %.3f GB (model %.3f GB less embeddings %.3f GB); measured copy rate %.0f GB/s (read+write, 1 GiB dtod)\n",
		float64(read)/1e9, float64(modelBytes)/1e9, float64(embedBytes)/1e9, rate)
	fmt.Printf("  bandwidth limit %.3f ms/token (%.0f tokens/s): %.1f%% of the limit\n", 1e3*limit, 1/limit, 100*limit/s)
	if profile { // device time per kernel of one decode of n tokens (after the 8-token baseline)
		cb.StartProfile()
		if _, _, err := timeGen(8 + n); err != nil {
			cb.StopProfile()
			return err
		}
		prof, err := cb.StopProfile()
		if err != nil {
			return err
		}
		var total float64
		for _, e := range prof {
			total += e.Ms
		}
		fmt.Printf("  profile of one decode of 8+%d tokens: %.1f ms of device time (%.3f ms per token if all decode), wall %.1f ms\n",
			n, total, total/float64(8+n), 1e3*s*float64(8+n))
		for i, e := range prof {
			if i == 12 {
				break
			}
			fmt.Printf("    %-48s %6d calls %8.2f ms\n", e.Name, e.Calls, e.Ms)
		}
	}
	fmt.Printf("%-10s %-10s %12s %12s %14s\n", "decode", "base", "ms/token", "tokens/s", "% of BW limit")
	fmt.Printf("%-10s %-10s %12.3f %12.1f %13.1f%%\n", "finlora", base, 1e3*s, 1/s, 100*limit/s)
	return nil
}
