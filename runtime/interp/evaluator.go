// Package interp is the notebook's Go evaluator: yaegi (github.com/traefik/yaegi) with the
// standard library and the project's packages (runtime/symbols), cells split into declarations
// and statements, output capture, goroutine panics recovered, per-cell contexts, magics,
// completion, inspection and is_complete.
//
// *Evaluator has the methods of the kernel's Evaluator interface (kernel/evaluator.go) without
// importing package kernel; cmd/finlora joins the two.
//
// How a cell runs: magic lines at its top are handled (magics.go); the rest is cut with the Go
// scanner into top-level items, and consecutive items of one kind (imports, declarations,
// statements) are evaluated together, in order, each padded with blank lines so the interpreter's
// line numbers are the cell's. go statements are rewritten to a helper that recovers panics
// (gorewrite.go). Standard output and error are captured at the file-descriptor level
// (capture.go) and flushed before Execute returns.
//
// Limitations of yaegi v0.16.1 seen here (beyond those in DESIGN.md): a top-level var or const
// declaration cannot refer to a name a cell defined with := ("variable definition loop"; use :=);
// an undefined name in a := statement is reported as a "definition loop"; closures created in a
// loop share the loop variable (Go 1.21 semantics: pass it as an argument); the interpreted
// standard library is Go 1.22's.
package interp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/token"
	"io"
	"os"
	"reflect"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"sync"

	yaegi "github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"

	finlora "github.com/finlora/finlora/runtime"
	"github.com/finlora/finlora/runtime/display"
	"github.com/finlora/finlora/runtime/symbols"
)

// Evaluator runs notebook cells. Its methods are safe for concurrent use; cells run one at a
// time. Create it with New and Close it when done (it redirects the process's standard output
// and error while open).
type Evaluator struct {
	execMu sync.Mutex // held while a cell runs

	mu      sync.Mutex
	in      *yaegi.Interpreter
	imports map[string]string // package name in cells → import path
	pending map[string]string // imports of the chunk being evaluated
	defs    map[string]string // name declared by a cell → the declaration's text
	cellID  int
	running map[int]*cellRun // cells still executing, by id
	cur     *cellRun         // the cell running now, nil between cells
	stdin   []byte           // the rest of the last line read for the interpreter's stdin
	frames  []string         // panic frames the interpreter printed during the current cell
	closed  bool
}

// cellRun is the state of one Execute.
type cellRun struct {
	id       int
	out      Output
	goPanics []string // reports of goroutine panics while the cell ran
}

// Preimported are the packages a fresh interpreter has imported: name in cells → import path.
var Preimported = map[string]string{
	"fmt":     "fmt",
	"os":      "os",
	"strings": "strings",
	"math":    "math",
	"time":    "time",
	"display": "github.com/finlora/finlora/runtime/display",
	"runtime": "github.com/finlora/finlora/runtime",
}

// New returns an Evaluator with a fresh interpreter. It starts capturing the process's standard
// output and error (file descriptors 1 and 2): while a cell runs, what anything writes there goes
// to the cell's Output; between cells it goes to the original descriptors (see LogWriter).
func New() (*Evaluator, error) {
	e := &Evaluator{running: map[int]*cellRun{}}
	if err := capture.acquire(); err != nil {
		fmt.Fprintf(LogWriter(), "finlora: output of compiled code will not be captured: %v\n", err)
	}
	if err := e.reset(); err != nil {
		capture.release()
		return nil, err
	}
	return e, nil
}

// Close stops capturing output (when no other Evaluator is open) and frees the objects of the
// runtime's Default session. The Evaluator must not be used afterwards.
func (e *Evaluator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	capture.flush()
	capture.release()
	return finlora.Default().FreeAll()
}

// Reset drops all interpreter state and frees the objects of the runtime's Default session,
// as after a kernel restart.
func (e *Evaluator) Reset() error {
	errFree := finlora.Default().FreeAll()
	if err := e.reset(); err != nil {
		return err
	}
	if errFree != nil {
		return fmt.Errorf("reset: free session objects: %w", errFree)
	}
	return nil
}

func (e *Evaluator) reset() error {
	in := yaegi.New(yaegi.Options{
		Stdin:        inputReader{e},
		Stdout:       os.Stdout, // fd 1: captured
		Stderr:       panicFilter{e},
		Unrestricted: true, // cells see the real environment (%env and os.Getenv agree)
	})
	for _, syms := range []yaegi.Exports{stdlib.Symbols, symbols.Symbols, e.cellExports()} {
		if err := in.Use(syms); err != nil {
			return fmt.Errorf("interpreter: load symbols: %w", err)
		}
	}
	var imp strings.Builder
	imp.WriteString("import (\n")
	names := make([]string, 0, len(Preimported))
	for n := range Preimported {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&imp, "\t%s %q\n", n, Preimported[n])
	}
	fmt.Fprintf(&imp, "\t%s %q\n)", cellPkg, cellPkg)
	if _, err := in.Eval(imp.String()); err != nil {
		return fmt.Errorf("interpreter: pre-import packages: %w", err)
	}
	e.mu.Lock()
	e.in = in
	e.imports = map[string]string{cellPkg: cellPkg}
	for n, p := range Preimported {
		e.imports[n] = p
	}
	e.defs = map[string]string{}
	e.mu.Unlock()
	return nil
}

// cellExports is the helper package the rewritten cells call (see rewriteGo).
func (e *Evaluator) cellExports() yaegi.Exports {
	return yaegi.Exports{cellPkg + "/" + cellPkg: {
		"Go": reflect.ValueOf(e.goWrapped),
		// Rich renderings of values of cell-defined types: the interpreter wraps such a value
		// into the display interface when it is passed as one (see richBundle).
		"Bundle":   reflect.ValueOf(func(v display.MIMEBundler) map[string]any { return display.BundleOf(v) }),
		"HTML":     reflect.ValueOf(func(v display.HTMLer) map[string]any { return display.BundleOf(v) }),
		"Markdown": reflect.ValueOf(func(v display.Markdowner) map[string]any { return display.BundleOf(v) }),
		"SVG":      reflect.ValueOf(func(v display.SVGer) map[string]any { return display.BundleOf(v) }),
		"PNG":      reflect.ValueOf(func(v display.PNGer) map[string]any { return display.BundleOf(v) }),
	}}
}

// goWrapped calls fn(args...) on a new goroutine that recovers a panic and reports it: to the
// cell that started it while that cell runs (which then fails), else to the running cell's
// stderr, else to the log. Arguments are converted to fn's parameter types where Go would
// convert an untyped constant; nil becomes the parameter's zero value.
func (e *Evaluator) goWrapped(cellID, line int, fn any, args ...any) {
	report := func(r any) {
		msg := fmt.Sprintf("panic in a goroutine started at cell line %d: %v", line, r)
		e.mu.Lock()
		c := e.running[cellID]
		if c != nil {
			c.goPanics = append(c.goPanics, msg)
		}
		cur := e.cur
		e.mu.Unlock()
		switch {
		case c != nil:
			c.out.Stream("stderr", msg+"\n")
		case cur != nil:
			cur.out.Stream("stderr", msg+" (in an earlier cell)\n")
		default:
			fmt.Fprintf(LogWriter(), "finlora: %s\n", msg)
		}
	}
	fv := reflect.ValueOf(fn)
	if fv.Kind() != reflect.Func {
		report(fmt.Sprintf("go statement: %T is not a function", fn))
		return
	}
	ft := fv.Type()
	in := make([]reflect.Value, len(args))
	for i, a := range args {
		var pt reflect.Type
		switch {
		case ft.IsVariadic() && i >= ft.NumIn()-1:
			pt = ft.In(ft.NumIn() - 1).Elem()
		case i < ft.NumIn():
			pt = ft.In(i)
		default:
			report(fmt.Sprintf("go statement: %d arguments for %v", len(args), ft))
			return
		}
		if a == nil {
			in[i] = reflect.Zero(pt)
			continue
		}
		v := reflect.ValueOf(a)
		if !v.Type().AssignableTo(pt) && v.Type().ConvertibleTo(pt) {
			v = v.Convert(pt)
		}
		in[i] = v
	}
	go func() {
		defer func() {
			if r := recover(); r != nil {
				report(r)
			}
		}()
		fv.Call(in)
	}()
}

// panicFilter is the interpreter's stderr: it keeps the frames yaegi prints while a panic
// unwinds ("3:12: panic: main.f(...)") for the traceback and passes everything else to fd 2.
type panicFilter struct{ e *Evaluator }

var rePanicFrame = regexp.MustCompile(`^(?:_\.go:)?\d+:\d+: panic`)

func (f panicFilter) Write(p []byte) (int, error) {
	if rePanicFrame.Match(p) {
		f.e.mu.Lock()
		if len(f.e.frames) < 64 {
			f.e.frames = append(f.e.frames, strings.TrimSpace(string(p)))
		}
		f.e.mu.Unlock()
		return len(p), nil
	}
	return os.Stderr.Write(p)
}

// inputReader is the interpreter's stdin: each line asked from the running cell's front end.
type inputReader struct{ e *Evaluator }

func (r inputReader) Read(p []byte) (int, error) {
	r.e.mu.Lock()
	c := r.e.cur
	if len(r.e.stdin) > 0 {
		n := copy(p, r.e.stdin)
		r.e.stdin = r.e.stdin[n:]
		r.e.mu.Unlock()
		return n, nil
	}
	r.e.mu.Unlock()
	if c == nil {
		return 0, io.EOF
	}
	line, err := c.out.Input("", false)
	if err != nil {
		return 0, err
	}
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.e.stdin = append(r.e.stdin, line+"\n"...)
	n := copy(p, r.e.stdin)
	r.e.stdin = r.e.stdin[n:]
	return n, nil
}

// Execute runs one cell (see kernel.Evaluator): magics, then its items in order. ctx cancels it.
// result is the MIME bundle of the final expression, nil if the cell ends otherwise. A failure is
// an *Error.
func (e *Evaluator) Execute(ctx context.Context, code string, out Output) (result map[string]any, err error) {
	e.execMu.Lock()
	defer e.execMu.Unlock()

	e.mu.Lock()
	e.cellID++
	c := &cellRun{id: e.cellID, out: out}
	e.running[c.id] = c
	e.cur = c
	e.frames = nil
	e.stdin = nil
	e.mu.Unlock()

	capture.flush() // what was written before the cell is not the cell's
	prevSink := capture.setSink(out)
	restorePub := display.SetPublisher(out)
	restoreCtx := finlora.SetCellContext(ctx)
	defer func() {
		capture.flush()
		capture.setSink(prevSink)
		restorePub()
		restoreCtx()
		e.mu.Lock()
		delete(e.running, c.id)
		e.cur = nil
		panics := c.goPanics
		e.mu.Unlock()
		if err == nil && len(panics) > 0 {
			result = nil
			err = &Error{Name: "GoroutinePanic", Value: panics[0], Trace: append([]string{"\x1b[0;31mGoroutinePanic\x1b[0m: " + panics[0]}, panics[1:]...)}
		}
	}()
	defer func() { // a panic of the evaluator itself must not take the kernel down
		if r := recover(); r != nil {
			err = &Error{Name: "InternalError", Value: fmt.Sprint(r), Trace: []string{fmt.Sprint(r), string(debug.Stack())}}
		}
	}()
	return e.runMagics(ctx, code, out)
}

// run evaluates the Go code of a cell (magics removed, lines kept).
func (e *Evaluator) run(ctx context.Context, code string) (map[string]any, error) {
	chunks, err := splitCell(code)
	if err != nil {
		msg := "cell:" + err.Error()
		return nil, &Error{Name: "CompileError", Value: msg, Trace: traceback("CompileError", msg, code, nil)}
	}
	e.mu.Lock()
	in, id := e.in, e.cellID
	e.mu.Unlock()
	var last reflect.Value
	for _, c := range chunks {
		src, prefixLen, skip, err := e.chunkSource(c, id)
		if err != nil {
			return nil, &Error{Name: "CompileError", Value: err.Error(), Trace: traceback("CompileError", err.Error(), code, nil)}
		}
		if skip {
			e.record(c)
			continue
		}
		v, err := in.EvalWithContext(ctx, src)
		if err != nil {
			return nil, e.cellError(ctx, err, code, prefixLen)
		}
		e.record(c)
		last = v
	}
	fe := finalExpr(chunks)
	if fe == nil || !last.IsValid() || isPrintCall(fe) || e.isVoidCall(in, fe) {
		return nil, nil
	}
	if last.Kind() == reflect.Interface && last.IsNil() {
		return nil, nil // a nil error (or any nil interface) is not worth a result, as Python's None
	}
	if !last.CanInterface() {
		return map[string]any{"text/plain": fmt.Sprintf("%v", last)}, nil
	}
	v := last.Interface()
	if _, ok := v.(display.Displayed); ok {
		return nil, nil // it has shown itself
	}
	b := display.BundleOf(v)
	if len(b) == 1 {
		if rich := e.richBundle(in, fe, last); rich != nil {
			rich["text/plain"] = b["text/plain"]
			return rich, nil
		}
	}
	return b, nil
}

// richBundle renders the value of a final expression of a cell-defined type with a rendering
// method (HTML, Markdown, SVG, PNG, MIMEBundle), which compiled code cannot see on the value the
// interpreter returns: the expression is passed to helpers taking the display interfaces. Only
// names and selector chains are re-evaluated (no side effects); nil when nothing applies.
func (e *Evaluator) richBundle(in *yaegi.Interpreter, fe ast.Expr, v reflect.Value) map[string]any {
	switch v.Kind() {
	case reflect.Struct, reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
	default:
		if v.Type().PkgPath() != "" || v.Type().Name() == "" {
			break
		}
		return nil
	}
	text := selectorText(fe)
	if text == "" {
		return nil
	}
	for _, f := range []string{"Bundle", "HTML", "Markdown", "SVG", "PNG"} {
		r, err := in.Eval(fmt.Sprintf("%s.%s(%s)", cellPkg, f, text))
		if err != nil || !r.IsValid() || !r.CanInterface() {
			continue
		}
		if m, ok := r.Interface().(map[string]any); ok && len(m) > 1 {
			return m
		}
	}
	return nil
}

// chunkSource returns what the interpreter evaluates for a chunk: go statements rewritten,
// imports already bound dropped, padded to the cell's lines. skip: nothing to evaluate.
func (e *Evaluator) chunkSource(c chunk, cellID int) (src string, prefixLen int, skip bool, err error) {
	switch c.kind {
	case itemImport:
		text, err := e.newImports(c)
		if err != nil {
			return "", 0, false, err
		}
		if text == "" {
			return "", 0, true, nil
		}
		return text, len(declPrefix), false, nil
	case itemDecl:
		text, _ := rewriteGo(c, cellID)
		return padded(text, c.line, c.col), len(declPrefix), false, nil
	default:
		text, _ := rewriteGo(c, cellID)
		if strings.HasPrefix(text, "func") {
			// A chunk starting with the func keyword is first tried as declarations by yaegi, and a
			// function literal called there ran twice; an empty statement first makes it a statement.
			return ";" + padded(text, c.line, c.col), len(stmtPrefix) + 1, false, nil
		}
		return padded(text, c.line, c.col), len(stmtPrefix), false, nil
	}
}

// record remembers the names a successfully evaluated chunk declared.
func (e *Evaluator) record(c chunk) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c.kind == itemImport {
		for n, p := range e.pending {
			e.imports[n] = p
		}
		e.pending = nil
	}
	for _, it := range c.items {
		for _, n := range declaredNames(it) {
			e.defs[n] = it.text
		}
	}
}

// isPrintCall reports whether x is a call of fmt's Print functions, whose byte count is not
// worth showing as a result.
func isPrintCall(x ast.Expr) bool {
	call, ok := x.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && pkg.Name == "fmt" && (strings.HasPrefix(sel.Sel.Name, "Print") || strings.HasPrefix(sel.Sel.Name, "Fprint"))
}

// isVoidCall reports whether x calls a function without results (the interpreter then returns a
// leftover value that must not be shown). The function is looked up without calling it: a
// function literal by its type, a builtin by name, a name or selector chain by evaluating it.
func (e *Evaluator) isVoidCall(in *yaegi.Interpreter, x ast.Expr) bool {
	call, ok := x.(*ast.CallExpr)
	if !ok {
		return false
	}
	switch fun := call.Fun.(type) {
	case *ast.FuncLit:
		return fun.Type.Results == nil || len(fun.Type.Results.List) == 0
	case *ast.Ident:
		switch fun.Name {
		case "close", "delete", "panic", "print", "println", "clear":
			return true
		}
	}
	text := selectorText(call.Fun)
	if text == "" {
		return false
	}
	v, err := in.Eval(text)
	return err == nil && v.IsValid() && v.Kind() == reflect.Func && v.Type().NumOut() == 0
}

// selectorText returns "a.b.c" for an identifier or a selector chain of identifiers, else "".
func selectorText(x ast.Expr) string {
	switch x := x.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		if s := selectorText(x.X); s != "" {
			return s + "." + x.Sel.Name
		}
	}
	return ""
}

// cellError converts an interpreter error into an *Error with the cell's positions.
func (e *Evaluator) cellError(ctx context.Context, err error, code string, prefixLen int) error {
	e.mu.Lock()
	frames := e.frames
	e.frames = nil
	e.mu.Unlock()
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		msg := "the cell was interrupted"
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "the cell's deadline passed"
		}
		return &Error{Name: "Interrupted", Value: msg, Trace: []string{"\x1b[0;31mInterrupted\x1b[0m: " + msg}}
	}
	var p yaegi.Panic
	if errors.As(err, &p) {
		fs := make([]string, len(frames))
		for i, f := range frames {
			fs[i] = cellPositions(f, 0)
		}
		value := fmt.Sprint(p.Value)
		if len(fs) > 0 {
			value += " (" + strings.SplitN(fs[0], ": panic", 2)[0] + ")"
		}
		return &Error{Name: "Panic", Value: value, Trace: traceback("Panic", fmt.Sprint(p.Value), code, fs)}
	}
	msg := cellPositions(err.Error(), prefixLen)
	if strings.Contains(msg, "definition loop") {
		msg += " (the interpreter says this for an undefined name on that line, and for a var or const" +
			" declaration that refers to a name a cell defined with :=; use := there)"
	}
	return &Error{Name: "CompileError", Value: msg, Trace: traceback("CompileError", msg, code, nil)}
}

// newImports returns the import declarations of c that bind new names, each on its cell line;
// an import of a name already bound to another package is an error.
func (e *Evaluator) newImports(c chunk) (string, error) {
	fset, f, base, err := parseChunk(c.text, itemDecl, c.line, c.col, c.start)
	if err != nil {
		return padded(c.text, c.line, c.col), nil // let the interpreter report it
	}
	lines := make([][]string, strings.Count(c.text, "\n")+1)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending = map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.IMPORT {
			continue
		}
		for _, s := range g.Specs {
			spec := s.(*ast.ImportSpec)
			path := strings.Trim(spec.Path.Value, "\"`")
			name := path[strings.LastIndex(path, "/")+1:]
			if spec.Name != nil {
				name = spec.Name.Name
			}
			if name == "_" || name == "." {
				continue
			}
			if have, ok := e.imports[name]; ok {
				if have == path {
					continue
				}
				pos := fset.Position(spec.Pos())
				hint := ""
				if name == "runtime" {
					hint = `; in cells runtime is FinLoRA's runtime, import Go's with a name: import goruntime "runtime"`
				}
				return "", fmt.Errorf("cell:%d:%d: import %q: the name %s is already %q%s", pos.Line, pos.Column-len(declPrefix)*b2i(pos.Line == 1), path, name, have, hint)
			}
			l := fset.Position(spec.Pos()).Offset - base - c.start
			li := strings.Count(c.text[:l], "\n")
			lines[li] = append(lines[li], fmt.Sprintf("import %s %q", name, path))
			e.pending[name] = path // bound by record once the interpreter accepted it
		}
	}
	var b bytes.Buffer
	any := false
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		if len(l) > 0 {
			any = true
			b.WriteString(strings.Join(l, "; "))
		}
	}
	if !any {
		return "", nil
	}
	return strings.Repeat("\n", c.line-1) + b.String(), nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
