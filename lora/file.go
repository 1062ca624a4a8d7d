package lora

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/finlora/finlora/runtime/safetensors"
)

// File names of a PEFT adapter directory.
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
)

// PEFT's key layout in adapter_model.safetensors: Prefix + module path + one of the suffixes.
const (
	Prefix          = "base_model.model."
	SuffixA         = ".lora_A.weight"
	SuffixB         = ".lora_B.weight"
	SuffixMagnitude = ".lora_magnitude_vector"
)

// KeyA returns the PEFT tensor name of the A matrix ([r, in]) of the module at path.
func KeyA(path string) string { return Prefix + path + SuffixA }

// KeyB returns the PEFT tensor name of the B matrix ([out, r]) of the module at path.
func KeyB(path string) string { return Prefix + path + SuffixB }

// KeyMagnitude returns the PEFT tensor name of the DoRA magnitude vector ([out]) of the module at
// path.
func KeyMagnitude(path string) string { return Prefix + path + SuffixMagnitude }

// ReadConfig reads and validates adapter_config.json of dir (or the file itself if path names it).
func ReadConfig(path string) (Config, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, ConfigFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("lora: read config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("lora: parse %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("lora: %s: %w", path, err)
	}
	return c, nil
}

// Load reads a PEFT adapter directory (adapter_config.json + adapter_model.safetensors, F32, F16 or
// BF16 tensors). Module paths, shapes and ranks come from the tensors; each module's scale from the
// config (rank_pattern/alpha_pattern and use_rslora applied). A lora_A without its lora_B (or the
// reverse), a rank disagreeing with the config, or a missing DoRA magnitude is an error naming the key.
func Load(dir string) (*Adapter, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	wpath := filepath.Join(dir, WeightsFile)
	f, err := safetensors.Open(wpath)
	if err != nil {
		return nil, fmt.Errorf("lora: load %s: %w", dir, err)
	}
	defer f.Close()
	a := &Adapter{Config: cfg, Modules: map[string]*Module{}}
	get := func(name string, dims int) ([]float32, []int, error) {
		info, ok := f.Info(name)
		if !ok {
			return nil, nil, fmt.Errorf("lora: %s: missing tensor %q", wpath, name)
		}
		if len(info.Shape) != dims {
			return nil, nil, fmt.Errorf("lora: %s: tensor %q has shape %v, want %d dimensions", wpath, name, info.Shape, dims)
		}
		v, err := f.Float32(name)
		if err != nil {
			return nil, nil, fmt.Errorf("lora: %s: %w", wpath, err)
		}
		return v, info.Shape, nil
	}
	for _, name := range f.Names() {
		if !strings.HasSuffix(name, SuffixA) {
			if !strings.HasSuffix(name, SuffixB) && !strings.HasSuffix(name, SuffixMagnitude) {
				return nil, fmt.Errorf("lora: %s: tensor %q is not a LoRA weight (only lora_A, lora_B and lora_magnitude_vector are supported)", wpath, name)
			}
			continue
		}
		path := strings.TrimSuffix(strings.TrimPrefix(name, Prefix), SuffixA)
		if !strings.HasPrefix(name, Prefix) {
			return nil, fmt.Errorf("lora: %s: tensor %q lacks the PEFT prefix %q", wpath, name, Prefix)
		}
		A, sa, err := get(name, 2)
		if err != nil {
			return nil, err
		}
		B, sb, err := get(KeyB(path), 2)
		if err != nil {
			return nil, err
		}
		if sa[0] != sb[1] {
			return nil, fmt.Errorf("lora: %s: %s has rank %d but %s has rank %d", wpath, name, sa[0], KeyB(path), sb[1])
		}
		if want := cfg.RankFor(path); want != sa[0] {
			return nil, fmt.Errorf("lora: %s: %s has rank %d, config says %d", wpath, name, sa[0], want)
		}
		m := &Module{Path: path, In: sa[1], Out: sb[0], R: sa[0], Scale: float32(cfg.ScaleFor(path)), A: A, B: B}
		if cfg.UseDoRA {
			mag, sm, err := get(KeyMagnitude(path), 1)
			if err != nil {
				return nil, err
			}
			if sm[0] != m.Out {
				return nil, fmt.Errorf("lora: %s: %s has %d values, want %d", wpath, KeyMagnitude(path), sm[0], m.Out)
			}
			m.Magnitude = mag
		}
		a.Modules[path] = m
	}
	for _, name := range f.Names() {
		if strings.HasSuffix(name, SuffixB) {
			if _, ok := a.Modules[strings.TrimSuffix(strings.TrimPrefix(name, Prefix), SuffixB)]; !ok {
				return nil, fmt.Errorf("lora: %s: %s has no matching lora_A", wpath, name)
			}
		}
	}
	if len(a.Modules) == 0 {
		return nil, fmt.Errorf("lora: %s holds no LoRA weights", wpath)
	}
	return a, nil
}

// Save writes the adapter to dir (created if needed) as PEFT does: adapter_config.json (keys sorted,
// indented by 2, inference_mode true) and adapter_model.safetensors with F32 tensors under PEFT's keys and metadata
// {"format": "pt"}. Each file is written atomically (temporary file, sync, rename).
func (a *Adapter) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lora: save: %w", err)
	}
	var ts []safetensors.Tensor
	for _, p := range a.Paths() {
		m := a.Modules[p]
		ts = append(ts,
			safetensors.Tensor{Name: KeyA(p), DType: safetensors.F32, Shape: []int{m.R, m.In}, Data: safetensors.Float32Bytes(m.A)},
			safetensors.Tensor{Name: KeyB(p), DType: safetensors.F32, Shape: []int{m.Out, m.R}, Data: safetensors.Float32Bytes(m.B)})
		if m.Magnitude != nil {
			ts = append(ts, safetensors.Tensor{Name: KeyMagnitude(p), DType: safetensors.F32, Shape: []int{m.Out}, Data: safetensors.Float32Bytes(m.Magnitude)})
		}
	}
	if err := safetensors.Write(filepath.Join(dir, WeightsFile), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("lora: save %s: %w", dir, err)
	}
	cfg := a.Config
	cfg.InferenceMode = true // PEFT's save_pretrained writes inference_mode: true
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("lora: save %s: encode config: %w", dir, err)
	}
	var ind strings.Builder
	var raw json.RawMessage = b
	out, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return fmt.Errorf("lora: save %s: indent config: %w", dir, err)
	}
	ind.Write(out)
	return writeFileAtomic(filepath.Join(dir, ConfigFile), []byte(ind.String()))
}

// writeFileAtomic writes b to path (mode 0644, as safetensors.Write leaves the weights file)
// through a synced temporary file in the same directory and a rename.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("lora: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("lora: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("lora: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("lora: write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil { // CreateTemp made it 0600
		return fmt.Errorf("lora: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("lora: write %s: %w", path, err)
	}
	return nil
}
