package interp

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	finlora "github.com/finlora/finlora/runtime"
)

// MagicHelp is what %help prints.
const MagicHelp = `FinLoRA Go kernel: cells are Go (yaegi). Declarations, statements and a final expression
may be mixed in any order; the value of a final expression is shown. Pre-imported: fmt, os,
strings, math, time, display (rich output), runtime (the FinLoRA session; import Go's runtime
package as: import goruntime "runtime").

Magics (lines at the top of a cell):
  %help                 this text
  %time [code]          run the rest of the cell (and code on the same line) and print the wall time
  %env                  list the environment; %env NAME prints one variable; %env NAME=VALUE sets it
  %who                  names defined by cells and objects held by the runtime session
  %reset                fresh interpreter; frees the session's objects

Display: display.HTML(s), display.Markdown(s), display.SVG(s), display.PNG(b), display.JSON(v),
display.Text(s) return a handle whose Update re-renders in place; display.NewProgress(total, msg)
is a progress bar (Add, Set, SetMessage, Finish); display.Input(prompt) reads a line.
runtime.Ctx() is the cell's context (cancelled by an interrupt).
`

// runMagics handles the magic lines at the top of a cell, then runs the rest of it. Magic lines
// are blanked (not removed) so the Go code keeps its line numbers.
func (e *Evaluator) runMagics(ctx context.Context, code string, out Output) (map[string]any, error) {
	lines := strings.Split(code, "\n")
	timed := false
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "//") {
			continue
		}
		if !strings.HasPrefix(t, "%") {
			break
		}
		name, arg, _ := strings.Cut(t[1:], " ")
		arg = strings.TrimSpace(arg)
		lines[i] = ""
		switch name {
		case "help":
			out.Stream("stdout", MagicHelp)
		case "time":
			timed = true
			if arg != "" { // code on the magic's line keeps its columns
				lines[i] = strings.Repeat(" ", strings.Index(l, arg)) + arg
			}
		case "env":
			if err := magicEnv(arg, out); err != nil {
				return nil, err
			}
		case "who":
			out.Stream("stdout", e.who())
		case "reset":
			if err := e.Reset(); err != nil {
				return nil, &Error{Name: "MagicError", Value: err.Error(), Trace: []string{"%reset: " + err.Error()}}
			}
			out.Stream("stdout", "interpreter reset; session objects freed\n")
		default:
			msg := fmt.Sprintf("unknown magic %%%s (line %d); %%help lists them", name, i+1)
			return nil, &Error{Name: "MagicError", Value: msg, Trace: []string{"\x1b[0;31mMagicError\x1b[0m: " + msg}}
		}
		if timed {
			break // %time applies to everything after it
		}
	}
	rest := strings.Join(lines, "\n")
	if strings.TrimSpace(rest) == "" {
		return nil, nil
	}
	start := time.Now()
	res, err := e.run(ctx, rest)
	if timed {
		capture.flush() // the cell's own output first
		out.Stream("stdout", fmt.Sprintf("time: %s\n", fmtWall(time.Since(start))))
	}
	return res, err
}

func fmtWall(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func magicEnv(arg string, out Output) error {
	switch {
	case arg == "":
		env := os.Environ()
		sort.Strings(env)
		out.Stream("stdout", strings.Join(env, "\n")+"\n")
	case strings.Contains(arg, "="):
		k, v, _ := strings.Cut(arg, "=")
		k = strings.TrimSpace(k)
		if err := os.Setenv(k, strings.TrimSpace(v)); err != nil {
			return &Error{Name: "MagicError", Value: err.Error(), Trace: []string{"%env: " + err.Error()}}
		}
		out.Stream("stdout", fmt.Sprintf("env: %s=%s\n", k, os.Getenv(k)))
	default:
		v, ok := os.LookupEnv(arg)
		if !ok {
			out.Stream("stdout", fmt.Sprintf("env: %s is not set\n", arg))
			return nil
		}
		out.Stream("stdout", v+"\n")
	}
	return nil
}

// Who returns the names the session holds: cell-defined names (variables with their type) and
// the runtime session's objects, sorted.
func (e *Evaluator) Who() (cellNames []string, sessionNames []string) {
	e.mu.Lock()
	for n := range e.defs {
		cellNames = append(cellNames, n)
	}
	e.mu.Unlock()
	sort.Strings(cellNames)
	return cellNames, finlora.Default().Names()
}

func (e *Evaluator) who() string {
	cells, sess := e.Who()
	e.mu.Lock()
	globals := e.in.Globals()
	e.mu.Unlock()
	var b strings.Builder
	if len(cells) == 0 && len(sess) == 0 {
		return "nothing defined yet\n"
	}
	if len(cells) > 0 {
		b.WriteString("cell names:\n")
		for _, n := range cells {
			kind := "func/type"
			if v, ok := globals[n]; ok && v.IsValid() {
				kind = typeName(v)
			}
			fmt.Fprintf(&b, "  %-20s %s\n", n, kind)
		}
	}
	if len(sess) > 0 {
		b.WriteString("session objects (runtime.Get):\n")
		for _, n := range sess {
			o, _ := finlora.Get(n)
			fmt.Fprintf(&b, "  %-20s %T\n", n, o)
		}
	}
	return b.String()
}

func typeName(v reflect.Value) string {
	if v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	return v.Type().String()
}
