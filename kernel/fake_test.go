package kernel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fakeEvaluator is a tiny command language standing in for the yaegi evaluator in the
// dispatcher tests. Each cell is one command:
//
//	print TEXT      stdout TEXT            eprint TEXT   stderr TEXT
//	result TEXT     execute_result TEXT    error TEXT    a CellError
//	inc             increments a counter kept across cells and returns it as the result
//	loop            blocks until the cell's context is cancelled
//	big N           prints N bytes of 'x' in 1000-byte writes
//	display ID TEXT display_data (ID "-" for none)   update ID TEXT   update_display_data
//	clear           clear_output           input PROMPT  reads a line, prints "got: LINE"
//	panic           panics                 sleeperr MS   sleeps MS ms then errors
//	goprint TEXT    a goroutine prints TEXT after the cell returns
type fakeEvaluator struct {
	mu      sync.Mutex
	counter int
	resets  int
}

type fakeCellError struct{ msg string }

func (e fakeCellError) Error() string       { return e.msg }
func (e fakeCellError) EName() string       { return "FakeError" }
func (e fakeCellError) Traceback() []string { return []string{"cell line 1: " + e.msg} }

func (f *fakeEvaluator) Execute(ctx context.Context, code string, out Output) (map[string]any, error) {
	cmd, arg, _ := strings.Cut(strings.TrimSpace(code), " ")
	switch cmd {
	case "", "nop":
		return nil, nil
	case "print":
		out.Stream("stdout", arg)
	case "eprint":
		out.Stream("stderr", arg)
	case "result":
		return map[string]any{"text/plain": arg}, nil
	case "error":
		return nil, fakeCellError{arg}
	case "inc":
		f.mu.Lock()
		defer f.mu.Unlock()
		f.counter++
		return map[string]any{"text/plain": strconv.Itoa(f.counter)}, nil
	case "loop":
		<-ctx.Done()
		return nil, ctx.Err()
	case "big":
		n, _ := strconv.Atoi(arg)
		chunk := strings.Repeat("x", 999) + "\n"
		for n > 0 {
			w := min(n, len(chunk))
			out.Stream("stdout", chunk[:w])
			n -= w
		}
	case "display", "update":
		id, text, _ := strings.Cut(arg, " ")
		if id == "-" {
			id = ""
		}
		out.Display(map[string]any{"text/plain": text, "text/html": "<b>" + text + "</b>"}, nil, id, cmd == "update")
	case "clear":
		out.ClearOutput(false)
	case "input":
		line, err := out.Input(arg, false)
		if err != nil {
			return nil, err
		}
		out.Stream("stdout", "got: "+line)
	case "panic":
		panic("fake evaluator panics: " + arg)
	case "sleeperr":
		ms, _ := strconv.Atoi(arg)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return nil, errors.New("failed after sleeping")
	case "goprint":
		go func() {
			time.Sleep(20 * time.Millisecond)
			out.Stream("stdout", arg)
		}()
	case "nan":
		return map[string]any{"text/plain": "nan", "application/json": func() {}}, nil
	default:
		return nil, fmt.Errorf("unknown command %q", cmd)
	}
	return nil, nil
}

func (f *fakeEvaluator) Complete(code string, cursor int) ([]string, int, int, map[string]any) {
	word := []rune(code)[:cursor]
	start := len(word)
	for start > 0 && word[start-1] != ' ' {
		start--
	}
	prefix := string(word[start:])
	var m []string
	for _, c := range []string{"print", "println", "panic", "inc"} {
		if strings.HasPrefix(c, prefix) {
			m = append(m, c)
		}
	}
	return m, start, cursor, nil
}

func (f *fakeEvaluator) Inspect(code string, cursor int, detail int) (map[string]any, bool) {
	if strings.Contains(code, "print") {
		return map[string]any{"text/plain": "print TEXT: writes TEXT to stdout"}, true
	}
	return nil, false
}

func (f *fakeEvaluator) IsComplete(code string) (string, string) {
	switch {
	case strings.HasSuffix(code, "{"):
		return "incomplete", "\t"
	case strings.HasPrefix(code, "}"):
		return "invalid", ""
	}
	return "complete", ""
}

func (f *fakeEvaluator) Reset() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counter = 0
	f.resets++
	return nil
}
