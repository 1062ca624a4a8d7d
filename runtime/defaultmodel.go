package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/finlora/finlora/runtime/gguf"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tokenizer"
	"github.com/finlora/finlora/runtime/train"
)

// InstalledModelNames are the models scripts/install-model.sh can install, in the order
// DefaultModel prefers them: each lives at $FINLORA_HOME/models/NAME/model.gguf.
var InstalledModelNames = []string{"gemma3-270m", "smollm2-135m"}

// ModelHome returns $FINLORA_HOME, or ~/.cache/finlora when it is unset (as install-model.sh).
func ModelHome() string {
	if h := os.Getenv("FINLORA_HOME"); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "finlora")
	}
	return filepath.Join(home, ".cache", "finlora")
}

// InstalledModelPath returns the GGUF file of an installed model (one of InstalledModelNames), or
// "" when it is not installed.
func InstalledModelPath(name string) string {
	p := filepath.Join(ModelHome(), "models", name, "model.gguf")
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		return p
	}
	return ""
}

// ModelChoice records which model DefaultModel loaded and why the ones before it were passed over.
type ModelChoice struct {
	Path    string   // what was loaded: a directory, a .gguf file, or TinyModelPath
	Random  bool     // the tiny random model (untrained: its answers are noise until finetuned)
	Skipped []string // "path: reason" for each candidate that could not be used
}

// String is a one-line statement of which model runs.
func (c ModelChoice) String() string {
	if c.Random {
		return "the embedded tiny random model (untrained, ~0.1 M parameters, byte tokenizer)"
	}
	return "the pretrained model " + c.Path
}

// LoadDefaultModel loads DefaultModel's choice under name into the Default session (replacing, and
// freeing, what the name held) and returns it with the choice. The session owns the model
// (runtime.Free(name) releases it). In a cell:
//
//	m, choice, err := runtime.LoadDefaultModel(runtime.Ctx(), "base")
func LoadDefaultModel(ctx context.Context, name string) (*LoadedModel, ModelChoice, error) {
	if name == "" {
		return nil, ModelChoice{}, errors.New("load default model: empty name")
	}
	lm, choice, err := DefaultModel(ctx)
	if err != nil {
		return nil, choice, err
	}
	lm.Name = name
	if err := Put(name, lm); err != nil {
		return lm, choice, err
	}
	return lm, choice, nil
}

// OpenModelFile is OpenModel that also reads GGUF files (path ending in .gguf): the model through
// model.LoadGGUF (llama-architecture files; quantized weights dequantized to opts.DType, F32 by
// default) and the tokenizer from the file's metadata. The caller owns (frees) the model.
func OpenModelFile(ctx context.Context, path string, opts ModelOptions) (*LoadedModel, error) {
	if !gguf.IsFileName(path) {
		return OpenModel(ctx, path, opts)
	}
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
	lo := model.LoadOptions{Backend: b}
	if opts.DType != "" {
		if lo.DType, err = tensor.ParseDType(opts.DType); err != nil || !lo.DType.IsFloat() {
			return nil, fmt.Errorf("load model %s: dtype %q: want f32, bf16 or f16", path, opts.DType)
		}
	}
	m, err := model.LoadGGUF(ctx, path, lo)
	if err != nil {
		return nil, err
	}
	tk, err := tokenizer.LoadGGUF(path)
	if err != nil {
		m.Free()
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return &LoadedModel{Path: path, Model: m, Tokenizer: tk, LoadTime: time.Since(start)}, nil
}

// DefaultModel loads the model the tutorial and `finlora demo` run on: the path in $FINLORA_MODEL
// when set (an error there is returned, never silently replaced), else the first installed model
// of InstalledModelNames that loads and can be finetuned (the trainer accepts it), else the
// embedded tiny random model. The caller owns the model; choice says which one it is.
func DefaultModel(ctx context.Context) (*LoadedModel, ModelChoice, error) {
	if p := os.Getenv("FINLORA_MODEL"); p != "" {
		lm, err := OpenModelFile(ctx, p, ModelOptions{})
		if err != nil {
			return nil, ModelChoice{}, fmt.Errorf("FINLORA_MODEL=%s: %w", p, err)
		}
		return lm, ModelChoice{Path: p, Random: p == TinyModelPath}, nil
	}
	var choice ModelChoice
	for _, name := range InstalledModelNames {
		p := InstalledModelPath(name)
		if p == "" {
			continue
		}
		lm, err := OpenModelFile(ctx, p, ModelOptions{})
		if err == nil {
			err = checkTrainable(lm)
			if err != nil {
				lm.Free()
			}
		}
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, choice, ctxErr
			}
			choice.Skipped = append(choice.Skipped, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		choice.Path = p
		return lm, choice, nil
	}
	lm, err := OpenModel(ctx, TinyModelPath, ModelOptions{})
	if err != nil {
		return nil, choice, err
	}
	choice.Path, choice.Random = TinyModelPath, true
	return lm, choice, nil
}

// checkTrainable reports why the trainer cannot finetune lm (a tokenizer is needed too).
func checkTrainable(lm *LoadedModel) error {
	if lm.Tokenizer == nil {
		return errors.New("no tokenizer")
	}
	base, err := train.NewBase(lm.Model, 8)
	if err != nil {
		return err
	}
	return base.Close()
}

// IsRandomModel reports whether lm is the embedded tiny random model.
func IsRandomModel(lm *LoadedModel) bool { return lm != nil && lm.Path == TinyModelPath }

// AboutAccuracy is an honest sentence on what accuracy means for lm on a task with the given
// number of labels: chance level for the random model, a small pretrained model's zero-shot
// ability otherwise.
func AboutAccuracy(lm *LoadedModel, labels int) string {
	chance := ""
	if labels > 0 {
		chance = fmt.Sprintf(" (1/%d = %.0f%% if it guessed uniformly)", labels, 100/float64(labels))
	}
	if IsRandomModel(lm) {
		return "This is the embedded tiny random model: it was never trained on text, so before finetuning " +
			"its answers are noise and its accuracy is at or below chance level" + chance + ". Whatever it scores " +
			"after finetuning it learned from these few training rows alone — typically the answer format and " +
			"the most frequent label — not financial understanding. Compare with the majority-label rate."
	}
	return "This is a small pretrained model (" + lm.Path + "); its base accuracy is its zero-shot ability on " +
		"this task" + chance + ". A few training steps mostly teach the answer format and the label " +
		"distribution; compare with the majority-label rate, and train longer for real gains."
}
