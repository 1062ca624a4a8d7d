package interp

import (
	"go/scanner"
	"go/token"
	"reflect"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

var goKeywords = []string{
	"break", "case", "chan", "const", "continue", "default", "defer", "else", "fallthrough", "for",
	"func", "go", "goto", "if", "import", "interface", "map", "package", "range", "return", "select",
	"struct", "switch", "type", "var",
}

var goPredeclared = []string{
	"any", "bool", "byte", "comparable", "complex64", "complex128", "error", "float32", "float64",
	"int", "int8", "int16", "int32", "int64", "rune", "string", "uint", "uint8", "uint16", "uint32",
	"uint64", "uintptr", "true", "false", "iota", "nil",
	"append", "cap", "clear", "close", "complex", "copy", "delete", "imag", "len", "make", "max",
	"min", "new", "panic", "print", "println", "real", "recover",
}

// Complete returns the candidates for the identifier that ends at cursor (code points) and the
// range [start, end) in code points they replace (see kernel.Evaluator): package members after
// "pkg.", fields and methods after "value." for a value defined by an earlier cell, otherwise
// names defined by cells, imported packages, identifiers of code, keywords and predeclared names.
func (e *Evaluator) Complete(code string, cursor int) (matches []string, start, end int, metadata map[string]any) {
	b := byteOffset(code, cursor)
	sb := identBefore(code, b)
	prefix := code[sb:b]
	start, end = runeOffset(code, sb), runeOffset(code, b)
	var cands []string
	if sb > 0 && code[sb-1] == '.' {
		xb := identBefore(code, sb-1)
		cands = e.members(code[xb : sb-1])
	} else {
		cands = e.names(code)
	}
	seen := map[string]bool{}
	for _, c := range cands {
		if strings.HasPrefix(c, prefix) && !seen[c] && c != prefix {
			seen[c] = true
			matches = append(matches, c)
		}
	}
	sort.Strings(matches)
	return matches, start, end, nil
}

// members returns the names after "x.": package members or a value's fields and methods.
func (e *Evaluator) members(x string) []string {
	if x == "" {
		return nil
	}
	e.mu.Lock()
	path, isPkg := e.imports[x]
	in := e.in
	e.mu.Unlock()
	if isPkg && x != cellPkg {
		var out []string
		for _, syms := range in.Symbols(path) {
			for n := range syms {
				if r, _ := utf8.DecodeRuneInString(n); unicode.IsUpper(r) {
					out = append(out, n)
				}
			}
		}
		return out
	}
	v, ok := in.Globals()[x]
	if !ok || !v.IsValid() {
		return nil
	}
	return valueMembers(v)
}

// valueMembers returns the exported methods of v's type (and of its pointer) and the fields of
// the struct v is or points to.
func valueMembers(v reflect.Value) []string {
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	var out []string
	t := v.Type()
	add := func(t reflect.Type) {
		for i := 0; i < t.NumMethod(); i++ {
			out = append(out, t.Method(i).Name)
		}
	}
	add(t)
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		add(reflect.PointerTo(t))
	}
	st := t
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st.Kind() == reflect.Struct {
		for i := 0; i < st.NumField(); i++ {
			if f := st.Field(i); f.IsExported() {
				out = append(out, f.Name)
			}
		}
	}
	return out
}

// names returns the identifiers that may start at the cursor.
func (e *Evaluator) names(code string) []string {
	out := append(append([]string{}, goKeywords...), goPredeclared...)
	e.mu.Lock()
	for n := range e.imports {
		if n != cellPkg {
			out = append(out, n)
		}
	}
	for n := range e.defs {
		out = append(out, n)
	}
	in := e.in
	e.mu.Unlock()
	for n := range in.Globals() {
		out = append(out, n)
	}
	// identifiers of the code being typed (locals not yet evaluated)
	var s scanner.Scanner
	fset := token.NewFileSet()
	s.Init(fset.AddFile("", -1, len(code)), []byte(code), nil, 0)
	for {
		_, t, lit := s.Scan()
		if t == token.EOF {
			break
		}
		if t == token.IDENT && !strings.HasPrefix(lit, "_") {
			out = append(out, lit)
		}
	}
	return out
}
