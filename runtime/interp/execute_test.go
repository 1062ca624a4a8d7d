package interp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	yaegi "github.com/traefik/yaegi/interp"

	finlora "github.com/finlora/finlora/runtime"
	"golang.org/x/sys/unix"
)

// exec runs a cell on a fresh fake output and returns the output, the result and the error.
func exec(t *testing.T, e *Evaluator, code string) (*fakeOutput, map[string]any, error) {
	t.Helper()
	out := newFake()
	res, err := e.Execute(context.Background(), code, out)
	return out, res, err
}

func mustExec(t *testing.T, e *Evaluator, code string) (*fakeOutput, map[string]any) {
	t.Helper()
	out, res, err := exec(t, e, code)
	if err != nil {
		t.Fatalf("cell %q: %v\nstderr: %s", code, err, out.stderr())
	}
	return out, res
}

func TestMixedCell(t *testing.T) {
	e := newEval(t)
	out, res := mustExec(t, e, `func double(x int) int { return 2 * x }
y := double(3)
type P struct{ A int }
fmt.Println("y is", y)
z := P{y}
z`)
	if got := out.stdout(); got != "y is 6\n" {
		t.Errorf("stdout %q", got)
	}
	if res["text/plain"] != "{6}" {
		t.Errorf("result %v", res)
	}
	// a fresh kernel has fmt, os, strings, math, time, display, runtime without import lines;
	// importing one again is harmless.
	_, res = mustExec(t, e, "import \"strings\"\nimport \"strconv\"\nstrings.ToUpper(strconv.Itoa(int(math.Sqrt(16))) + time.Second.String() + os.DevNull)")
	if res["text/plain"] != "41S/DEV/NULL" {
		t.Errorf("result %v", res)
	}
	// a cell ending in a statement or a print has no result
	mustExec(t, e, "type counter struct{ n int }\nfunc (c *counter) Inc() { c.n++ }\ncnt := &counter{}\nfunc noResult(x int) {}")
	for _, c := range []string{"a := 1", `fmt.Println("x")`, "func g() {}", "import \"bytes\"",
		"cnt.Inc()", "noResult(41)", "func() {}()", "os.Setenv(\"FINLORA_X\", \"1\")", "close(make(chan int))"} {
		if _, res := mustExec(t, e, c); res != nil {
			t.Errorf("cell %q: result %v, want none", c, res)
		}
	}
	if _, res := mustExec(t, e, "cnt.n"); res["text/plain"] != "1" {
		t.Errorf("a void method call as final expression ran %v times, want 1", res)
	}
	mustExec(t, e, "runs := 0")
	mustExec(t, e, "func() { runs++ }()")
	mustExec(t, e, "func() {\n\truns++\n}()\nruns += 0")
	if _, res := mustExec(t, e, "runs"); res["text/plain"] != "2" {
		t.Errorf("a function literal called at the end of a cell ran %v times, want 2", res)
	}
	// errors in such a chunk keep the cell's columns
	_, _, err := exec(t, e, "func() { undefinedThing() }()")
	if err == nil || !strings.Contains(err.Error(), "cell:1:10") {
		t.Errorf("error position: %v", err)
	}
}

func TestRichResultOfCellType(t *testing.T) {
	e := newEval(t)
	_, res := mustExec(t, e, `type Table struct{ Rows []string }
func (t Table) HTML() string { return "<table><tr><td>" + strings.Join(t.Rows, "</td></tr><tr><td>") + "</td></tr></table>" }
tbl := Table{[]string{"a", "b"}}
tbl`)
	if res["text/html"] != "<table><tr><td>a</td></tr><tr><td>b</td></tr></table>" || res["text/plain"] != "{[a b]}" {
		t.Errorf("result %v", res)
	}
	_, res = mustExec(t, e, "type Plain struct{ N int }\npl := Plain{3}\npl")
	if len(res) != 1 || res["text/plain"] != "{3}" {
		t.Errorf("plain result %v", res)
	}
}

func TestRedefinition(t *testing.T) {
	e := newEval(t)
	mustExec(t, e, "x := 1\nfunc f() int { return 1 }")
	mustExec(t, e, "x := \"now a string\"\nfunc f() int { return 2 }")
	_, res := mustExec(t, e, `fmt.Sprint(x, f())`)
	if res["text/plain"] != "now a string2" {
		t.Errorf("after redefinition: %v", res)
	}
}

func TestCompileErrorLines(t *testing.T) {
	e := newEval(t)
	_, _, err := exec(t, e, "a := 1\n\nfmt.Println(a + undefinedName)\n")
	var ce *Error
	if !errors.As(err, &ce) || ce.EName() != "CompileError" || !strings.Contains(ce.Value, "cell:3:17") {
		t.Fatalf("err = %#v", err)
	}
	if !strings.Contains(strings.Join(ce.Traceback(), "\n"), "line 3: fmt.Println(a + undefinedName)") {
		t.Errorf("traceback %q", ce.Traceback())
	}
	// first line: the interpreter's wrapper is not counted in the column
	_, _, err = exec(t, e, "  x := nope")
	if !errors.As(err, &ce) || !strings.Contains(ce.Value, "cell:1:3") {
		t.Fatalf("first-line column: %v", err)
	}
	// syntax error
	_, _, err = exec(t, e, "x := 1\ny := (2 +\n")
	if !errors.As(err, &ce) || ce.EName() != "CompileError" {
		t.Fatalf("syntax: %v", err)
	}
	// the evaluator lives on
	if _, res := mustExec(t, e, "1 + 1"); res["text/plain"] != "2" {
		t.Fatalf("after errors: %v", res)
	}
}

func TestPanicInCell(t *testing.T) {
	e := newEval(t)
	_, _, err := exec(t, e, "func boom() {\n\tpanic(\"kaboom\")\n}\n\nboom()")
	var ce *Error
	if !errors.As(err, &ce) || ce.EName() != "Panic" || !strings.Contains(ce.Value, "kaboom") {
		t.Fatalf("err = %v", err)
	}
	tb := strings.Join(ce.Traceback(), "\n")
	if !strings.Contains(tb, "line 2: \tpanic(\"kaboom\")") || !strings.Contains(tb, "line 5: boom()") {
		t.Errorf("traceback lacks the cell lines:\n%s", tb)
	}
	if _, res := mustExec(t, e, "\"alive\""); res["text/plain"] != "alive" {
		t.Fatalf("after panic: %v", res)
	}
}

func TestPanicInGoroutine(t *testing.T) {
	e := newEval(t)
	out, _, err := exec(t, e, `done := make(chan bool)
for i := 0; i < 3; i++ {
	go func(n int) {
		defer func() { done <- true }()
		if n == 1 {
			panic(fmt.Sprint("worker ", n))
		}
	}(i)
}
for i := 0; i < 3; i++ { <-done }
time.Sleep(50 * time.Millisecond)`)
	var ce *Error
	if !errors.As(err, &ce) || ce.EName() != "GoroutinePanic" || !strings.Contains(ce.Value, "worker 1") || !strings.Contains(ce.Value, "line 3") {
		t.Fatalf("err = %v, stderr %q", err, out.stderr())
	}
	// arguments are evaluated when the go statement runs, as in Go
	_, res := mustExec(t, e, `ch := make(chan int, 3)
func send(c chan int, v int) { c <- v }
for j := 0; j < 3; j++ { go send(ch, j*10) }
a, b, c := <-ch, <-ch, <-ch
a + b + c`)
	if res["text/plain"] != "30" {
		t.Fatalf("go with arguments: %v", res)
	}
	if _, res := mustExec(t, e, "\"alive\""); res["text/plain"] != "alive" {
		t.Fatalf("after goroutine panic: %v", res)
	}
}

func TestInterrupt(t *testing.T) {
	e := newEval(t)
	mustExec(t, e, "counter := 41")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	start := time.Now()
	_, err := e.Execute(ctx, "for {\n}", newFake())
	took := time.Since(start)
	var ce *Error
	if !errors.As(err, &ce) || ce.EName() != "Interrupted" {
		t.Fatalf("err = %v", err)
	}
	if took > 1200*time.Millisecond {
		t.Errorf("interrupt took %v", took)
	}
	t.Logf("for {} interrupted %v after the cancel", took-200*time.Millisecond)
	if _, res := mustExec(t, e, "counter + 1"); res["text/plain"] != "42" {
		t.Fatalf("state after interrupt: %v", res)
	}
	// the cell's context reaches compiled code through runtime.Ctx: a compiled call that
	// waits on it returns when the cell is interrupted
	returned := make(chan error, 1)
	err = e.in.Use(yaegi.Exports{"example.com/waiter/waiter": {
		"Wait": reflect.ValueOf(func() { ctx := finlora.Ctx(); <-ctx.Done(); returned <- ctx.Err() }),
	}})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, e, `import "example.com/waiter"`)
	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	if _, err := e.Execute(ctx, "waiter.Wait()", newFake()); err == nil {
		t.Fatal("interrupted compiled call: no error")
	}
	select {
	case err := <-returned:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("compiled call saw %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("compiled call did not see the cancellation")
	}
}

func TestCaptureCompiledOutput(t *testing.T) {
	e := newEval(t)
	err := e.in.Use(yaegi.Exports{"example.com/compiled/compiled": {
		"Hello": reflect.ValueOf(func(n int) {
			fmt.Println("compiled stdout", n)
			fmt.Fprintln(os.Stderr, "compiled stderr", n)
			unix.Write(1, []byte("raw fd 1\n"))
		}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := mustExec(t, e, "import \"example.com/compiled\"\nfmt.Print(\"interpreted \")\ncompiled.Hello(7)\nfmt.Fprintln(os.Stderr, \"interp stderr\")")
	if got := out.stdout(); got != "interpreted compiled stdout 7\nraw fd 1\n" {
		t.Errorf("stdout %q", got)
	}
	if got := out.stderr(); got != "compiled stderr 7\ninterp stderr\n" {
		t.Errorf("stderr %q", got)
	}
	// a big output arrives whole and in order; invalid UTF-8 passes through
	out, _ = mustExec(t, e, "for i := 0; i < 20000; i++ { fmt.Println(i, \"héllo\") }\nfmt.Print(\"\\xff end\")")
	s := out.stdout()
	if !strings.HasPrefix(s, "0 héllo\n1 héllo\n") || !strings.HasSuffix(s, "19999 héllo\n\xff end") || strings.Count(s, "\n") != 20000 {
		t.Errorf("big output: %d bytes, %d lines, tail %q", len(s), strings.Count(s, "\n"), s[max(0, len(s)-30):])
	}
}
