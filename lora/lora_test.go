package lora

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/safetensors"
)

func TestLoadFixtures(t *testing.T) {
	for _, tc := range []struct {
		dir     string
		modules int
		r       int
		scale   float32
	}{
		{"testdata/lora-llama-qkv/adapter_start", 6, 4, 2},
		{"testdata/lora-llama-qkv/adapter_end", 6, 4, 2},
		{"testdata/lora-llama-all/adapter_start", 14, 8, 2},
	} {
		a, err := Load(tc.dir)
		if err != nil {
			t.Fatalf("%s: %v", tc.dir, err)
		}
		if len(a.Modules) != tc.modules {
			t.Errorf("%s: %d modules, want %d", tc.dir, len(a.Modules), tc.modules)
		}
		m := a.Modules["model.layers.1.self_attn.k_proj"]
		if m == nil {
			t.Fatalf("%s: no k_proj of layer 1 among %v", tc.dir, a.Paths())
		}
		if m.R != tc.r || m.In != 64 || m.Out != 32 || m.Scale != tc.scale {
			t.Errorf("%s: k_proj r=%d in=%d out=%d scale=%g", tc.dir, m.R, m.In, m.Out, m.Scale)
		}
		// values equal the file's
		f, err := safetensors.Open(filepath.Join(tc.dir, WeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := f.Float32(KeyB("model.layers.1.self_attn.k_proj"))
		f.Close()
		if !reflect.DeepEqual(want, m.B) {
			t.Errorf("%s: lora_B differs from the file", tc.dir)
		}
	}
}

func TestSaveRoundTrip(t *testing.T) {
	src := "testdata/lora-llama-all/adapter_start"
	a, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	// same tensor names, shapes and bytes as PEFT's file
	want, err := safetensors.Open(filepath.Join(src, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	got, err := safetensors.Open(filepath.Join(dir, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if !reflect.DeepEqual(want.Names(), got.Names()) {
		t.Fatalf("names differ:\n%v\n%v", want.Names(), got.Names())
	}
	for _, n := range want.Names() {
		wi, _ := want.Info(n)
		gi, _ := got.Info(n)
		wb, _ := want.Bytes(n)
		gb, _ := got.Bytes(n)
		if !reflect.DeepEqual(wi.Shape, gi.Shape) || wi.DType != gi.DType || string(wb) != string(gb) {
			t.Errorf("%s: %v %v vs %v %v or data differ", n, wi.DType, wi.Shape, gi.DType, gi.Shape)
		}
	}
	if got.Metadata()["format"] != "pt" {
		t.Errorf("metadata %v, want format=pt", got.Metadata())
	}
	// both files readable by others, as PEFT leaves them (umask 022)
	for _, f := range []string{WeightsFile, ConfigFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		} else if st.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", f, st.Mode().Perm())
		}
	}
	// same config keys and values
	var wj, gj map[string]any
	readJSON(t, filepath.Join(src, ConfigFile), &wj)
	readJSON(t, filepath.Join(dir, ConfigFile), &gj)
	if !reflect.DeepEqual(wj, gj) {
		for k := range wj {
			if !reflect.DeepEqual(wj[k], gj[k]) {
				t.Errorf("config key %q: %v vs %v", k, wj[k], gj[k])
			}
		}
		for k := range gj {
			if _, ok := wj[k]; !ok {
				t.Errorf("config key %q added", k)
			}
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func TestSampleConfigs(t *testing.T) {
	for _, tc := range []struct {
		file    string
		r       int
		alpha   float64
		dropout float64
		rslora  bool
		dora    bool
		scale   float64
	}{
		{"finer_llama_3_1_8b_8bits_r8_rslora.json", 8, 16, 0.05, true, false, 16 / math.Sqrt(8)},
		{"headline_llama_3_1_8b_4bits_r4.json", 4, 32, 0.1, false, false, 8},
		{"ner_llama_3_1_8B_8bits_r8_dora.json", 8, 16, 0.05, false, true, 2},
		{"sentiment_llama_3_1_8b_4bits_r4.json", 4, 32, 0.1, false, false, 8},
		{"sentiment_llama_3_1_8b_8bits_r8.json", 8, 32, 0.1, false, false, 4},
	} {
		path := filepath.Join("testdata/peft-adapter-configs", tc.file)
		c, err := ReadConfig(path)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if c.R != tc.r || c.LoraAlpha != tc.alpha || c.LoraDropout != tc.dropout || c.UseRSLoRA != tc.rslora || c.UseDoRA != tc.dora {
			t.Errorf("%s: got %+v", tc.file, c)
		}
		if s := c.ScaleFor("model.layers.3.self_attn.q_proj"); math.Abs(s-tc.scale) > 1e-12 {
			t.Errorf("%s: scale %g, want %g", tc.file, s, tc.scale)
		}
		for _, p := range []string{"model.layers.0.self_attn.q_proj", "model.layers.31.self_attn.k_proj", "model.layers.2.self_attn.v_proj"} {
			if ok, _ := c.Targets(p); !ok {
				t.Errorf("%s: %s not targeted", tc.file, p)
			}
		}
		if ok, _ := c.Targets("model.layers.0.self_attn.o_proj"); ok {
			t.Errorf("%s: o_proj targeted", tc.file)
		}
		// round trip keeps every key and value (fan_in_fan_out null included)
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var want, got map[string]any
		readJSON(t, path, &want)
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if !reflect.DeepEqual(v, got[k]) {
				t.Errorf("%s: key %q: %v became %v", tc.file, k, v, got[k])
			}
		}
	}
}

func TestTargetsAndPatterns(t *testing.T) {
	var c Config
	if err := json.Unmarshal([]byte(`{"r": 4, "lora_alpha": 8, "target_modules": ".*\\.(q|v)_proj",
		"layers_to_transform": [1], "rank_pattern": {"v_proj": 2}, "alpha_pattern": {"model.layers.1.self_attn.q_proj": 32},
		"init_lora_weights": "gaussian", "some_future_key": {"x": [1, 2]}}`), &c); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path  string
		ok    bool
		r     int
		scale float64
	}{
		{"model.layers.1.self_attn.q_proj", true, 4, 8},
		{"model.layers.1.self_attn.v_proj", true, 2, 4},
		{"model.layers.0.self_attn.q_proj", false, 4, 2},
		{"model.layers.1.self_attn.k_proj", false, 4, 2},
	} {
		ok, err := c.Targets(tc.path)
		if err != nil || ok != tc.ok || c.RankFor(tc.path) != tc.r || c.ScaleFor(tc.path) != tc.scale {
			t.Errorf("%s: targeted %v (%v) r %d scale %g", tc.path, ok, err, c.RankFor(tc.path), c.ScaleFor(tc.path))
		}
	}
	b, _ := json.Marshal(c)
	if !strings.Contains(string(b), `"some_future_key":{"x":[1,2]}`) || !strings.Contains(string(b), `"init_lora_weights":"gaussian"`) ||
		!strings.Contains(string(b), `"target_modules":".*\\.(q|v)_proj"`) {
		t.Errorf("round trip lost fields: %s", b)
	}
}

func testLinears(withWeights bool) []Linear {
	var ls []Linear
	for l := 0; l < 2; l++ {
		for _, n := range []string{"q_proj", "k_proj", "v_proj", "o_proj"} {
			lin := Linear{Path: "model.layers." + string(rune('0'+l)) + ".self_attn." + n, In: 16, Out: 12}
			if withWeights {
				lin.Weight = make([]float32, 16*12)
				for i := range lin.Weight {
					lin.Weight[i] = float32(math.Sin(float64(i*7+l))) * 0.3
				}
			}
			ls = append(ls, lin)
		}
	}
	return ls
}

func TestInit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.R = 4
	a, err := New(cfg, testLinears(false), 42)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Modules) != 6 {
		t.Fatalf("%d modules, want 6 (q,k,v of 2 layers)", len(a.Modules))
	}
	b, _ := New(cfg, testLinears(false), 42)
	c, _ := New(cfg, testLinears(false), 43)
	m := a.Modules["model.layers.0.self_attn.q_proj"]
	bound := float32(1 / math.Sqrt(16))
	var maxAbs float32
	for _, v := range m.A {
		maxAbs = max(maxAbs, float32(math.Abs(float64(v))))
	}
	if maxAbs > bound || maxAbs < bound*0.8 {
		t.Errorf("A max |a| = %g, want just under the kaiming bound %g", maxAbs, bound)
	}
	for _, v := range m.B {
		if v != 0 {
			t.Fatal("B not zero")
		}
	}
	if !reflect.DeepEqual(m.A, b.Modules[m.Path].A) {
		t.Error("same seed gave different A")
	}
	if reflect.DeepEqual(m.A, c.Modules[m.Path].A) {
		t.Error("different seeds gave the same A")
	}
	if reflect.DeepEqual(m.A, a.Modules["model.layers.0.self_attn.k_proj"].A) {
		t.Error("two modules got the same A")
	}
}

func maxRel(got, want []float32) float64 {
	var d, w float64
	for i := range got {
		d = math.Max(d, math.Abs(float64(got[i]-want[i])))
		w = math.Max(w, math.Abs(float64(want[i])))
	}
	return d / w
}

func TestMergeUnmerge(t *testing.T) {
	for _, dora := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.UseDoRA = dora
		cfg.InitLoraWeights = InitMode{Value: "false"} // non-zero B so the merge does something
		lins := testLinears(true)
		a, err := New(cfg, lins, 1)
		if err != nil {
			t.Fatal(err)
		}
		lin := lins[1]
		m := a.Modules[lin.Path]
		if dora {
			// magnitude init = row norms of W + s·BA
			n := m.WeightNorm(lin.Weight)
			if maxRel(m.Magnitude, n) > 1e-6 {
				t.Error("DoRA magnitude is not ‖W+sBA‖ at init")
			}
			for i := range m.Magnitude {
				m.Magnitude[i] *= 1 + 0.1*float32(i%3)
			}
		}
		w := append([]float32(nil), lin.Weight...)
		if err := m.Merge(w); err != nil {
			t.Fatal(err)
		}
		// merged layer applied to x equals base + adapter branch computed separately in float64
		x := make([]float64, m.In)
		for i := range x {
			x[i] = math.Cos(float64(i))
		}
		norm := m.WeightNorm(lin.Weight)
		for o := 0; o < m.Out; o++ {
			var base, ax, got float64
			for i := 0; i < m.In; i++ {
				base += float64(lin.Weight[o*m.In+i]) * x[i]
				got += float64(w[o*m.In+i]) * x[i]
			}
			for k := 0; k < m.R; k++ {
				var ak float64
				for i := 0; i < m.In; i++ {
					ak += float64(m.A[k*m.In+i]) * x[i]
				}
				ax += float64(m.B[o*m.R+k]) * ak
			}
			want := base + float64(m.Scale)*ax
			if dora {
				want *= float64(m.Magnitude[o]) / float64(norm[o])
			}
			if math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("dora=%v row %d: merged %g, want %g", dora, o, got, want)
			}
		}
		if err := m.Merge(w); err == nil {
			t.Error("double merge accepted")
		}
		if err := m.Unmerge(w); err != nil {
			t.Fatal(err)
		}
		if r := maxRel(w, lin.Weight); r > 1e-6 {
			t.Errorf("dora=%v: unmerge left relative error %g", dora, r)
		}
	}
}

func TestSet(t *testing.T) {
	s := NewSet()
	a, _ := New(DefaultConfig(), testLinears(false), 1)
	b, _ := New(DefaultConfig(), testLinears(false), 2)
	if err := s.Add("a", a); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("b", b); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("a", b); err == nil {
		t.Error("duplicate accepted")
	}
	if n, got := s.Active(); n != "a" || got != a {
		t.Errorf("active %q", n)
	}
	if err := s.SetActive("b"); err != nil {
		t.Fatal(err)
	}
	if _, got := s.Active(); got != b {
		t.Error("active not b")
	}
	if err := s.SetActive("zz"); err == nil {
		t.Error("unknown adapter accepted")
	}
	s.Remove("b")
	if n, got := s.Active(); n != "" || got != nil {
		t.Error("removing the active adapter left it active")
	}
	if !reflect.DeepEqual(s.Names(), []string{"a"}) {
		t.Errorf("names %v", s.Names())
	}
}

func TestDoRASaveLoad(t *testing.T) {
	cfg := DefaultConfig()
	cfg.UseDoRA = true
	a, err := New(cfg, testLinears(true), 3)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if info, ok := f.Info("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"); !ok || !reflect.DeepEqual(info.Shape, []int{12}) {
		t.Errorf("magnitude key missing or misshaped: %v %v", ok, info.Shape)
	}
	f.Close()
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for p, m := range a.Modules {
		if !reflect.DeepEqual(m.Magnitude, b.Modules[p].Magnitude) || !reflect.DeepEqual(m.A, b.Modules[p].A) {
			t.Errorf("%s differs after reload", p)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), ConfigFile) {
		t.Errorf("missing config: %v", err)
	}
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"r": 0, "target_modules": ["q_proj"]}`), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "r = 0") {
		t.Errorf("r=0: %v", err)
	}
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"r": 4, "target_modules": ["q_proj"]}`), 0o644)
	safetensors.Write(filepath.Join(dir, WeightsFile), []safetensors.Tensor{{Name: KeyA("model.layers.0.self_attn.q_proj"), DType: safetensors.F32, Shape: []int{4, 2}, Data: make([]byte, 32)}}, nil)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "lora_B") {
		t.Errorf("missing B: %v", err)
	}
}
