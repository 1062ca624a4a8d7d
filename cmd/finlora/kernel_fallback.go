package main

import (
	"context"
	"errors"
	"fmt"
	"go/scanner"
	"go/token"
	"reflect"
	"strings"
	"sync"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"

	"github.com/finlora/finlora/kernel"
)

// newEvaluator returns the kernel's Evaluator. TEMPORARY: a minimal adapter over yaegi used until
// runtime/interp lands (no cell splitting, completion, inspection or display API).
func newEvaluator() (kernel.Evaluator, error) {
	f := &fallbackEvaluator{}
	return f, f.Reset()
}

type fallbackEvaluator struct {
	mu  sync.Mutex
	in  *interp.Interpreter
	out kernel.Output // Output of the running cell
}

// outWriter sends what the interpreter writes to the running cell's Output.
type outWriter struct {
	f    *fallbackEvaluator
	name string
}

func (w outWriter) Write(p []byte) (int, error) {
	w.f.mu.Lock()
	o := w.f.out
	w.f.mu.Unlock()
	if o != nil {
		o.Stream(w.name, string(p))
	}
	return len(p), nil
}

func (f *fallbackEvaluator) Reset() error {
	in := interp.New(interp.Options{Stdout: outWriter{f, "stdout"}, Stderr: outWriter{f, "stderr"}})
	if err := in.Use(stdlib.Symbols); err != nil {
		return err
	}
	if _, err := in.Eval(`import ("fmt"; "os"; "strings"; "math"; "time")`); err != nil {
		return err
	}
	f.in = in
	return nil
}

func (f *fallbackEvaluator) Execute(ctx context.Context, code string, out kernel.Output) (map[string]any, error) {
	f.mu.Lock()
	f.out = out
	f.mu.Unlock()
	v, err := f.in.EvalWithContext(ctx, code)
	if err != nil {
		return nil, err
	}
	if !v.IsValid() || (v.Kind() == reflect.Func && v.IsNil()) {
		return nil, nil
	}
	return map[string]any{"text/plain": fmt.Sprint(v.Interface())}, nil
}

func (f *fallbackEvaluator) Complete(code string, cursor int) ([]string, int, int, map[string]any) {
	return nil, cursor, cursor, nil
}

func (f *fallbackEvaluator) Inspect(code string, cursor, detail int) (map[string]any, bool) {
	return nil, false
}

func (f *fallbackEvaluator) IsComplete(code string) (string, string) {
	var s scanner.Scanner
	depth := 0
	fs := token.NewFileSet().AddFile("cell", -1, len(code))
	var scanErr error
	s.Init(fs, []byte(code), func(_ token.Position, msg string) { scanErr = errors.New(msg) }, 0)
	for {
		_, tok, _ := s.Scan()
		if tok == token.EOF {
			break
		}
		switch tok.String() {
		case "{", "(", "[":
			depth++
		case "}", ")", "]":
			depth--
		}
	}
	switch {
	case scanErr != nil && strings.Contains(scanErr.Error(), "not terminated"):
		return "incomplete", ""
	case depth > 0:
		return "incomplete", strings.Repeat("\t", depth)
	case depth < 0:
		return "invalid", ""
	}
	return "complete", ""
}
