package interp

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestComplete(t *testing.T) {
	e := newEval(t)
	mustExec(t, e, "type Point struct{ X, Y int }\nfunc (p Point) Norm() int { return p.X*p.X + p.Y*p.Y }\nπtal := 3\nbuf := strings.Builder{}\nmyVariable := 1")
	tests := []struct {
		code       string
		cursor     int // code points; -1: end
		want       []string
		start, end int
	}{
		{"fmt.Prin", -1, []string{"Print", "Printf", "Println"}, 4, 8},
		{"strings.Repl", -1, []string{"Replace", "ReplaceAll", "Replacer"}, 8, 12},
		{"display.Progr", -1, []string{"Progress"}, 8, 13},
		{"buf.Wri", -1, []string{"Write", "WriteByte", "WriteRune", "WriteString"}, 4, 7},
		{"myVar", -1, []string{"myVariable"}, 0, 5},
		{"πt", -1, []string{"πtal"}, 0, 2},
		// non-ASCII before the cursor: offsets are code points
		{"s := \"héllo wörld\"; fmt.Sprin", -1, []string{"Sprint", "Sprintf", "Sprintln"}, 24, 29},
		{"x := \"ü\"; strings.ToU(x)", 21, []string{"ToUpper", "ToUpperSpecial"}, 18, 21},
		{"retu", -1, []string{"return"}, 0, 4},
		{"appe", -1, []string{"append"}, 0, 4},
	}
	for _, tc := range tests {
		cur := tc.cursor
		if cur < 0 {
			cur = len([]rune(tc.code))
		}
		m, s, en, _ := e.Complete(tc.code, cur)
		for _, w := range tc.want {
			if !slices.Contains(m, w) {
				t.Errorf("Complete(%q, %d) = %v, lacks %q", tc.code, cur, m, w)
			}
		}
		if s != tc.start || en != tc.end {
			t.Errorf("Complete(%q, %d) range [%d,%d), want [%d,%d)", tc.code, cur, s, en, tc.start, tc.end)
		}
	}
	if m, _, _, _ := e.Complete("fmt.Prin", 8); slices.Contains(m, "Sprint") {
		t.Errorf("fmt.Prin completes to names without the prefix: %v", m)
	}
}

func TestInspect(t *testing.T) {
	e := newEval(t)
	mustExec(t, e, "// twice doubles.\nfunc twice(x int) int { return 2 * x }\nanswer := 42")
	tests := []struct {
		code   string
		cursor int
		want   []string
	}{
		{"strings.ToUpper(s)", 10, []string{"func ToUpper(s string) string", "upper case"}},
		{"fmt.Println(", 12, []string{"func Println(a ...any) (n int, err error)"}},
		{"x := display.NewProgress(3, \"é\")", 15, []string{"func NewProgress(total int, message string) *Progress", "progress bar"}},
		{"twice(2)", 2, []string{"func twice(x int) int"}},
		{"answer", 3, []string{"int", "42"}},
		{"len(x)", 1, []string{"func len(v Type) int"}},
	}
	for _, tc := range tests {
		data, found := e.Inspect(tc.code, tc.cursor, 0)
		text, _ := data["text/plain"].(string)
		if !found {
			t.Errorf("Inspect(%q, %d): not found", tc.code, tc.cursor)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("Inspect(%q, %d) = %q, lacks %q", tc.code, tc.cursor, text, w)
			}
		}
	}
	if _, found := e.Inspect("   ", 1, 0); found {
		t.Error("Inspect of blanks found something")
	}
}

func TestIsComplete(t *testing.T) {
	e := newEval(t)
	tests := []struct{ code, status, indent string }{
		{"x := 1", "complete", ""},
		{"func f() {", "incomplete", "\t"},
		{"if x {\n\tfor {", "incomplete", "\t\t"},
		{"y := f(1,", "incomplete", "\t"},
		{"z := 1 +", "incomplete", "\t"},
		{"s := `raw", "incomplete", ""},
		{"x := 1)", "invalid", ""},
		{"x := := 2", "invalid", ""},
		{"%time\nfmt.Println(1)", "complete", ""},
		{"", "complete", ""},
		{"func f() {}\nf()\nx := 3\nx", "complete", ""},
	}
	for _, tc := range tests {
		s, in := e.IsComplete(tc.code)
		if s != tc.status || in != tc.indent {
			t.Errorf("IsComplete(%q) = %q %q, want %q %q", tc.code, s, in, tc.status, tc.indent)
		}
	}
}

func TestMagics(t *testing.T) {
	e := newEval(t)
	out, _ := mustExec(t, e, "%help")
	if !strings.Contains(out.stdout(), "%time") {
		t.Errorf("%%help: %q", out.stdout())
	}
	out, res := mustExec(t, e, "%time\ntime.Sleep(20 * time.Millisecond)\nfmt.Println(\"slept\")\n7")
	if !strings.HasPrefix(out.stdout(), "slept\ntime: ") || res["text/plain"] != "7" {
		t.Errorf("%%time: %q %v", out.stdout(), res)
	}
	out, _ = mustExec(t, e, "%time fmt.Println(\"same line\")")
	if !strings.HasPrefix(out.stdout(), "same line\ntime: ") {
		t.Errorf("%%time on one line: %q", out.stdout())
	}
	out, _ = mustExec(t, e, "%env FINLORA_TEST_VAR=héllo")
	if out.stdout() != "env: FINLORA_TEST_VAR=héllo\n" {
		t.Errorf("%%env set: %q", out.stdout())
	}
	t.Cleanup(func() { _ = unsetenv("FINLORA_TEST_VAR") })
	_, res = mustExec(t, e, "os.Getenv(\"FINLORA_TEST_VAR\")")
	if res["text/plain"] != "héllo" {
		t.Errorf("cell sees %v", res)
	}
	out, _ = mustExec(t, e, "%env FINLORA_TEST_VAR")
	if out.stdout() != "héllo\n" {
		t.Errorf("%%env get: %q", out.stdout())
	}
	mustExec(t, e, "alpha := 3.5\nfunc beta() {}\ntype Gamma struct{}")
	obj := &freeCounter{}
	if err := runtimePut("model", obj); err != nil {
		t.Fatal(err)
	}
	out, _ = mustExec(t, e, "%who")
	for _, w := range []string{"alpha", "float64", "beta", "Gamma", "model", "freeCounter"} {
		if !strings.Contains(out.stdout(), w) {
			t.Errorf("%%who lacks %q: %q", w, out.stdout())
		}
	}
	out, _ = mustExec(t, e, "%reset")
	if !strings.Contains(out.stdout(), "reset") || obj.n != 1 {
		t.Errorf("%%reset: %q, session object freed %d times", out.stdout(), obj.n)
	}
	if _, _, err := exec(t, e, "alpha"); err == nil {
		t.Error("alpha survives %reset")
	}
	if _, res := mustExec(t, e, "strings.Repeat(\"ab\", 2)"); res["text/plain"] != "abab" {
		t.Errorf("after reset: %v", res)
	}
	if _, _, err := exec(t, e, "%nosuchmagic"); err == nil {
		t.Error("unknown magic: no error")
	}
}

func TestDisplayAndInput(t *testing.T) {
	e := newEval(t)
	out := newFake()
	out.inputs = []string{"Ada", "42"}
	res, err := e.Execute(context.Background(), `h := display.HTML("<b>v1</b>")
h.Update("<b>v2</b>")
p := display.NewProgress(3, "steps")
for i := 0; i < 3; i++ { p.Add(1) }
p.Finish()
name, _ := display.Input("name? ")
var n int
fmt.Scan(&n)
fmt.Println("hello", name, n)
display.SVG("<svg width=\"4\" height=\"4\"></svg>")`, out)
	if err != nil {
		t.Fatal(err)
	}
	if res != nil {
		t.Errorf("a display call as final expression shows a result too: %v", res)
	}
	if out.stdout() != "hello Ada 42\n" {
		t.Errorf("stdout %q", out.stdout())
	}
	if len(out.displays) < 5 {
		t.Fatalf("%d displays: %+v", len(out.displays), out.displays)
	}
	d0, d1 := out.displays[0], out.displays[1]
	if d0.update || !d1.update || d0.id != d1.id || d1.data["text/html"] != "<b>v2</b>" {
		t.Errorf("html handle: %+v %+v", d0, d1)
	}
	last := out.displays[len(out.displays)-2]
	if !last.update || !strings.Contains(last.data["text/plain"].(string), "3/3") {
		t.Errorf("progress final: %+v", last)
	}
	if out.prompts[0] != "name? " {
		t.Errorf("prompts %q", out.prompts)
	}
	// a value with a rich rendering (compiled type) shows as HTML
	_, res = mustExec(t, e, "display.PlainFromHTML(\"<i>x</i>\")")
	if res["text/plain"] != "x" {
		t.Errorf("result %v", res)
	}
}
