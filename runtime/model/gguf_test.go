package model

import (
	"context"
	"math"
	"reflect"
	"testing"

	"github.com/finlora/finlora/runtime/modeltest"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/tensortest"
	"github.com/finlora/finlora/runtime/tokenizer"
)

func TestUnpermuteRows(t *testing.T) {
	// 2 heads of HD=4, one element per row: GGUF row order within a head is HF rows 0,2,1,3.
	ggufRows := []int{0, 2, 1, 3, 4, 6, 5, 7}
	got, err := unpermuteRows(ggufRows, 8, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7}; !reflect.DeepEqual(got, want) {
		t.Errorf("unpermute = %v, want %v", got, want)
	}
	if _, err := unpermuteRows(ggufRows, 8, 1, 3); err == nil {
		t.Error("8 rows into 3 heads: no error")
	}
}

// installedModel returns the installed model file NAME (modeltest.Require: skipped when absent,
// failing with FINLORA_REQUIRE_MODEL=1).
func installedModel(t *testing.T, name string) string { return modeltest.Require(t, name) }

// meanNLL returns the mean next-token negative log-likelihood (nats) of ids under logits [1, T, V].
func meanNLL(t *testing.T, b tensor.Backend, logits *tensor.Tensor, ids []int32) float64 {
	t.Helper()
	v, err := b.ToFloat32(logits)
	if err != nil {
		t.Fatal(err)
	}
	V := logits.Dim(2)
	var sum float64
	for i := 0; i+1 < len(ids); i++ {
		sum += tensortest.NLL(v[i*V:(i+1)*V], int(ids[i+1]))
	}
	return sum / float64(len(ids)-1)
}

const financeText = "The company reported quarterly revenue of $4.2 billion, up 12% from a year earlier, " +
	"and raised its full-year guidance as demand for its cloud services continued to grow."

// TestSmolLM2GGUF loads the real SmolLM2-135M-Instruct Q4_1 file through the Llama path and checks
// that it predicts English text like a trained model (mean NLL far below the ~10.8 nats of chance).
func TestSmolLM2GGUF(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	path := installedModel(t, "smollm2-135m")
	tok, err := tokenizer.LoadGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadGGUF(context.Background(), path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	t.Logf("config: %s", m.Config)
	ids := tok.Encode(financeText, false)
	in := make([]int32, len(ids))
	for i, id := range ids {
		in[i] = int32(id)
	}
	lg, err := m.Forward(context.Background(), Input{IDs: in, B: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Free()
	nll := meanNLL(t, m.Backend, lg, in)
	t.Logf("SmolLM2 mean NLL over %d tokens: %.3f nats (chance: %.1f)", len(in), nll, math.Log(float64(m.Config.VocabSize)))
	if nll > 4 {
		t.Errorf("mean NLL %.3f: the model does not predict text (broken load?)", nll)
	}
}
