package gguf

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"github.com/finlora/finlora/runtime/modeltest"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/finlora/finlora/runtime/safetensors"
)

// blockFixture is one entry of testdata/blocks.json (see testdata/README.md): the first blocks of
// a real tensor and gguf-py's dequantization of them, as float32 bit patterns.
type blockFixture struct {
	Model   string `json:"model"`
	Tensor  string `json:"tensor"`
	Blocks  int    `json:"blocks"`
	Raw     string `json:"raw"`
	F32Bits string `json:"f32_bits"`
}

var typeByName = func() map[string]Type {
	m := map[string]Type{}
	for t, tr := range traits {
		m[tr.name] = t
	}
	return m
}()

// TestGGUFPyBlocks checks bit-exact agreement with gguf-py on blocks cut from the real models.
// blocks-synthetic.json holds seeded random blocks of every type gguf-py dequantizes (all
// supported types but Q8_K), so the types no model here uses are checked against it too.
func TestGGUFPyBlocks(t *testing.T) {
	for _, c := range []struct {
		file string
		want []string
	}{
		{"testdata/blocks.json", []string{"F32", "Q4_1", "Q4_K", "Q5_0", "Q6_K", "Q8_0"}},
		{"testdata/blocks-synthetic.json", []string{"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
			"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"}},
	} {
		t.Run(filepath.Base(c.file), func(t *testing.T) { checkBlockFixture(t, c.file, c.want) })
	}
}

func checkBlockFixture(t *testing.T, file string, types []string) {
	js, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var fx map[string]blockFixture
	if err := json.Unmarshal(js, &fx); err != nil {
		t.Fatal(err)
	}
	for _, name := range types {
		if _, ok := fx[name]; !ok {
			t.Errorf("fixture lacks %s", name)
		}
	}
	for name, f := range fx {
		typ, ok := typeByName[name]
		if !ok {
			t.Errorf("%s: unknown type", name)
			continue
		}
		raw, _ := hex.DecodeString(f.Raw)
		bits, _ := hex.DecodeString(f.F32Bits)
		want := safetensors.BytesFloat32(bits)
		got, err := Dequantize(typ, raw, len(want))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		bad := 0
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				if bad < 3 {
					t.Errorf("%s (%s of %s) value %d: got %v, gguf-py %v", name, f.Tensor, f.Model, i, got[i], want[i])
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d values differ", name, bad, len(want))
		}
	}
}

// TestRealModels dequantizes every tensor of each installed model and compares the sha256 of the
// float32 bytes with gguf-py's (testdata/tensors-<model>.json). Skipped when the model is not
// installed (scripts/install-model.sh all); set FINLORA_REQUIRE_MODEL=1 to make that a failure.
func TestRealModels(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for _, model := range []string{"gemma3-270m", "smollm2-135m"} {
		t.Run(model, func(t *testing.T) {
			p := modeltest.Require(t, model)
			js, err := os.ReadFile("testdata/tensors-" + model + ".json")
			if err != nil {
				t.Fatal(err)
			}
			var ref map[string]struct {
				Type   string   `json:"type"`
				Dims   []uint64 `json:"dims"`
				SHA256 string   `json:"sha256"`
			}
			if err := json.Unmarshal(js, &ref); err != nil {
				t.Fatal(err)
			}
			f, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if len(f.Names()) != len(ref) {
				t.Errorf("%d tensors, gguf-py saw %d", len(f.Names()), len(ref))
			}
			counts := map[Type]int{}
			for _, ti := range f.Tensors() {
				r, ok := ref[ti.Name]
				if !ok {
					t.Errorf("%s: not in the reference", ti.Name)
					continue
				}
				if ti.Type.String() != r.Type || !reflect.DeepEqual(ti.Dims, r.Dims) {
					t.Errorf("%s: %s %v, gguf-py %s %v", ti.Name, ti.Type, ti.Dims, r.Type, r.Dims)
				}
				v, err := f.Float32(ti.Name)
				if err != nil {
					t.Errorf("%s: %v", ti.Name, err)
					continue
				}
				sum := sha256.Sum256(safetensors.Float32Bytes(v))
				if hex.EncodeToString(sum[:]) != r.SHA256 {
					t.Errorf("%s (%s): dequantized values differ from gguf-py's", ti.Name, ti.Type)
				}
				counts[ti.Type]++
			}
			t.Logf("%s: %d tensors checked against gguf-py, by type %v", model, len(f.Names()), counts)
		})
	}
}
