package quant

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	st "github.com/finlora/finlora/runtime/safetensors"
)

// QuantizeCheckpoint writes to outDir a transformers/bitsandbytes checkpoint of the float model in
// srcDir: model.safetensors with the decoder layers' linear weights quantized (QuantizeSource),
// laid out as transformers writes it (safetensors.WriteOrdered with ByDTypeThenName, metadata
// {"format":"pt"}), config.json with c's quantization_config (RewriteConfigJSON), and every other
// file of srcDir except weights (tokenizer, generation config, ...) copied. srcDir may hold one model.safetensors or shards with
// an index. Memory: the quantized tensors are kept until the file is written (the header needs all
// sizes); float tensors passed through are views of the mapped source.
func QuantizeCheckpoint(ctx context.Context, srcDir, outDir string, c Config) error {
	if err := c.Check(); err != nil {
		return err
	}
	cfgIn, err := os.ReadFile(filepath.Join(srcDir, "config.json"))
	if err != nil {
		return fmt.Errorf("quantize checkpoint: %w", err)
	}
	if _, ok, err := ParseQuantizationConfig(cfgIn); ok || err != nil {
		return fmt.Errorf("quantize checkpoint: %s is already quantized", srcDir)
	}
	src, closeSrc, err := openWeights(srcDir)
	if err != nil {
		return fmt.Errorf("quantize checkpoint: %w", err)
	}
	defer closeSrc()
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("quantize checkpoint: %w", err)
	}
	var out []st.Tensor
	err = QuantizeSource(ctx, src, c, func(it Item) error {
		out = append(out, it.Tensors...)
		return nil
	})
	if err != nil {
		return err
	}
	if err := st.WriteOrdered(filepath.Join(outDir, "model.safetensors"), out, map[string]string{"format": "pt"}, st.ByDTypeThenName); err != nil {
		return fmt.Errorf("quantize checkpoint: %w", err)
	}
	cfgOut, err := RewriteConfigJSON(cfgIn, c)
	if err != nil {
		return fmt.Errorf("quantize checkpoint %s: %w", srcDir, err)
	}
	if err := os.WriteFile(filepath.Join(outDir, "config.json"), cfgOut, 0o644); err != nil {
		return fmt.Errorf("quantize checkpoint: %w", err)
	}
	entries, err := os.ReadDir(srcDir)
	if err != nil {
		return fmt.Errorf("quantize checkpoint: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || n == "config.json" || strings.HasSuffix(n, ".safetensors") || n == "model.safetensors.index.json" ||
			strings.HasSuffix(n, ".bin") {
			continue
		}
		if err := copyFile(filepath.Join(srcDir, n), filepath.Join(outDir, n)); err != nil {
			return fmt.Errorf("quantize checkpoint: %w", err)
		}
	}
	return nil
}

// openWeights opens dir/model.safetensors, or the sharded set of dir.
func openWeights(dir string) (st.Source, func() error, error) {
	single := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(single); err == nil {
		f, err := st.Open(single)
		if err != nil {
			return nil, nil, err
		}
		return f, f.Close, nil
	}
	s, err := st.OpenDir(dir)
	if err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	return out.Close()
}
