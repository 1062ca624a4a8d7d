package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/safetensors"
)

// Files of a checkpoint directory (besides the PEFT adapter files of package lora).
const (
	OptimizerFile = "optimizer.safetensors" // AdamW moments: "<PEFT name>.exp_avg" and ".exp_avg_sq", F32
	StateFile     = "trainer_state.json"    // step, data position, run settings and metrics so far
)

// checkpointState is trainer_state.json.
type checkpointState struct {
	Step      int           `json:"step"`  // optimizer steps done
	Epoch     int           `json:"epoch"` // data position of the next step
	Offset    int           `json:"offset"`
	Total     int           `json:"total_steps"`
	Rows      int           `json:"rows"`
	BatchSize int           `json:"batch_size"`
	GradAccum int           `json:"grad_accum"`
	Shuffle   bool          `json:"shuffle"`
	Seed      uint64        `json:"seed"`
	AdamW     AdamWConfig   `json:"adamw"`
	Metrics   []StepMetrics `json:"metrics"`
}

// CheckpointName is the directory name of the checkpoint after `step` steps.
func CheckpointName(step int) string { return fmt.Sprintf("checkpoint-%d", step) }

// SaveCheckpoint writes the adapter, the optimizer state, the step and the data position to
// dir/checkpoint-<step> and returns that path. The directory is assembled under a temporary name
// and renamed into place, so a crash leaves either the whole checkpoint or none.
func (t *Trainer) SaveCheckpoint(dir string) (string, error) {
	final := filepath.Join(dir, CheckpointName(t.opt.Step))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "."+CheckpointName(t.opt.Step)+".tmp")
	if err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp)
	if t.dopt != nil { // the moments live on the device between steps
		if err := t.dopt.pullMoments(t.opt); err != nil {
			return "", fmt.Errorf("train: checkpoint: %w", err)
		}
	}
	if err := t.Adapter.Save(tmp); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	var ts []safetensors.Tensor
	for i, n := range ParamNames(t.Adapter) {
		ts = append(ts,
			safetensors.Tensor{Name: n + ".exp_avg", DType: safetensors.F32, Shape: []int{len(t.opt.M[i])}, Data: safetensors.Float32Bytes(t.opt.M[i])},
			safetensors.Tensor{Name: n + ".exp_avg_sq", DType: safetensors.F32, Shape: []int{len(t.opt.V[i])}, Data: safetensors.Float32Bytes(t.opt.V[i])})
	}
	if err := safetensors.Write(filepath.Join(tmp, OptimizerFile), ts, map[string]string{"step": strconv.Itoa(t.opt.Step)}); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	st := checkpointState{Step: t.opt.Step, Epoch: t.epoch, Offset: t.offset, Total: t.total, Rows: len(t.Data),
		BatchSize: t.Config.BatchSize, GradAccum: t.Config.GradAccum, Shuffle: t.Config.Shuffle, Seed: t.Config.Seed,
		AdamW: t.Config.AdamW, Metrics: t.metrics}
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, StateFile), b, 0o644); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	if err := syncDir(tmp); err != nil {
		return "", err
	}
	if err := os.RemoveAll(final); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("train: checkpoint: %w", err)
	}
	return final, syncDir(dir)
}

// syncDir flushes a directory's entries (and for a checkpoint the state file) to disk.
func syncDir(dir string) error {
	if f, err := os.Open(filepath.Join(dir, StateFile)); err == nil {
		f.Sync()
		f.Close()
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("train: sync %s: %w", dir, err)
	}
	defer f.Close()
	f.Sync() // best effort: some filesystems refuse to sync directories
	return nil
}

// LatestCheckpoint returns the checkpoint-<N> directory of dir with the largest N, or "" if none.
func LatestCheckpoint(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return "", nil
		}
		return "", fmt.Errorf("train: find checkpoint: %w", err)
	}
	var steps []int
	for _, e := range ents {
		if n, ok := strings.CutPrefix(e.Name(), "checkpoint-"); ok && e.IsDir() {
			if s, err := strconv.Atoi(n); err == nil {
				steps = append(steps, s)
			}
		}
	}
	if len(steps) == 0 {
		return "", nil
	}
	sort.Ints(steps)
	return filepath.Join(dir, CheckpointName(steps[len(steps)-1])), nil
}

// Resume restores a checkpoint written by SaveCheckpoint into t, which must have been made with the
// same data, batch size, accumulation, shuffling and seed: the adapter weights (copied into
// t.Adapter), the optimizer moments, the step count, the data position and the metrics so far. The
// next Step is then the one the interrupted run would have taken.
func (t *Trainer) Resume(ckpt string) error {
	raw, err := os.ReadFile(filepath.Join(ckpt, StateFile))
	if err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	var st checkpointState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("train: resume: %s: %w", filepath.Join(ckpt, StateFile), err)
	}
	if st.Rows != len(t.Data) || st.BatchSize != t.Config.BatchSize || st.GradAccum != t.Config.GradAccum ||
		st.Shuffle != t.Config.Shuffle || st.Seed != t.Config.Seed {
		return fmt.Errorf("train: resume %s: checkpoint of %d rows, batch %d, accumulation %d, shuffle %v, seed %d; this run has %d, %d, %d, %v, %d",
			ckpt, st.Rows, st.BatchSize, st.GradAccum, st.Shuffle, st.Seed, len(t.Data), t.Config.BatchSize, t.Config.GradAccum, t.Config.Shuffle, t.Config.Seed)
	}
	a, err := lora.Load(ckpt)
	if err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	if len(a.Modules) != len(t.Adapter.Modules) {
		return fmt.Errorf("train: resume %s: checkpoint adapter has %d modules, this one %d", ckpt, len(a.Modules), len(t.Adapter.Modules))
	}
	f, err := safetensors.Open(filepath.Join(ckpt, OptimizerFile))
	if err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	defer f.Close()
	names := ParamNames(t.Adapter)
	m, v := make([][]float32, len(names)), make([][]float32, len(names))
	for i, n := range names {
		if m[i], err = f.Float32(n + ".exp_avg"); err != nil {
			return fmt.Errorf("train: resume: %w", err)
		}
		if v[i], err = f.Float32(n + ".exp_avg_sq"); err != nil {
			return fmt.Errorf("train: resume: %w", err)
		}
		if len(m[i]) != len(t.opt.M[i]) || len(v[i]) != len(t.opt.V[i]) {
			return fmt.Errorf("train: resume %s: optimizer state of %s has %d values, want %d", ckpt, n, len(m[i]), len(t.opt.M[i]))
		}
	}
	for p, dst := range t.Adapter.Modules {
		src, ok := a.Modules[p]
		if !ok || len(src.A) != len(dst.A) || len(src.B) != len(dst.B) || len(src.Magnitude) != len(dst.Magnitude) {
			return fmt.Errorf("train: resume %s: module %s missing or of another shape", ckpt, p)
		}
		copy(dst.A, src.A)
		copy(dst.B, src.B)
		copy(dst.Magnitude, src.Magnitude)
	}
	t.opt.M, t.opt.V, t.opt.Step = m, v, st.Step
	if t.dopt != nil { // upload the resumed weights and moments before the next step
		t.dopt.fresh = false
	}
	t.epoch, t.offset = st.Epoch, st.Offset
	t.order = epochOrder(len(t.Data), t.Config.Shuffle, t.Config.Seed, t.epoch)
	t.metrics = st.Metrics
	return nil
}
