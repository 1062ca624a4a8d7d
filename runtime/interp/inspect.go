package interp

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"strings"
	"sync"
)

// Inspect returns the signature and doc comment of the identifier under cursor (code points),
// as {"text/plain": ...} (see kernel.Evaluator). For pkg.Name of the standard library or of this
// module, the doc comes from the package source (GOROOT, the module's folder) when present, else
// the reflect type; for a name a cell declared, the declaration; for a cell variable, its type
// and value.
func (e *Evaluator) Inspect(code string, cursor int, detailLevel int) (map[string]any, bool) {
	b := byteOffset(code, cursor)
	sb, eb := identBefore(code, b), identAfter(code, b)
	if sb == eb && b > 0 { // cursor just after "name(" or "name ": look at what precedes
		b2 := b - 1
		for b2 > 0 && (code[b2] == '(' || code[b2] == ' ') {
			b2--
		}
		sb, eb = identBefore(code, b2+1), identAfter(code, b2+1)
	}
	name := code[sb:eb]
	if name == "" {
		return nil, false
	}
	x := ""
	if sb > 0 && code[sb-1] == '.' {
		x = code[identBefore(code, sb-1) : sb-1]
	}
	text := e.inspect(x, name, detailLevel)
	if text == "" {
		return nil, false
	}
	return map[string]any{"text/plain": text}, true
}

func (e *Evaluator) inspect(x, name string, detail int) string {
	e.mu.Lock()
	path, isPkg := e.imports[x]
	namePath, nameIsPkg := e.imports[name]
	decl, isDef := e.defs[name]
	in := e.in
	e.mu.Unlock()
	switch {
	case x != "" && isPkg:
		sig := ""
		for _, syms := range in.Symbols(path) {
			if v, ok := syms[name]; ok && v.IsValid() {
				sig = fmt.Sprintf("%s.%s: %s", x, name, v.Type())
			}
		}
		if d := packageDoc(path, name, detail); d != "" {
			return d
		}
		return sig
	case x == "" && nameIsPkg && name != cellPkg:
		if d := packageDoc(namePath, "", detail); d != "" {
			return d
		}
		return fmt.Sprintf("package %s (%q)", name, namePath)
	case x == "" && isDef:
		text := decl
		if v, ok := in.Globals()[name]; ok && v.IsValid() {
			val := fmt.Sprintf("%v", v)
			if len(val) > 200 {
				val = val[:200] + "…"
			}
			text += fmt.Sprintf("\n\ntype: %s\nvalue: %s", typeName(v), val)
		}
		return text
	case x == "":
		if v, ok := in.Globals()[name]; ok && v.IsValid() {
			return fmt.Sprintf("%s %s = %v", name, typeName(v), v)
		}
		return packageDoc("builtin", name, detail)
	case x != "":
		if v, ok := in.Globals()[x]; ok && v.IsValid() {
			for v.Kind() == reflect.Interface && !v.IsNil() {
				v = v.Elem()
			}
			if m, ok := v.Type().MethodByName(name); ok {
				return fmt.Sprintf("%s.%s: %s", x, name, m.Type)
			}
		}
	}
	return ""
}

var (
	docMu    sync.Mutex
	docCache = map[string]*doc.Package{}
)

// moduleRoot is the folder of this module's source when this binary was built here.
func moduleRoot() string {
	_, file, _, ok := goruntime.Caller(0)
	if !ok {
		return ""
	}
	root := filepath.Dir(filepath.Dir(filepath.Dir(file))) // runtime/interp/inspect.go → root
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return ""
	}
	return root
}

const modulePath = "github.com/finlora/finlora"

// loadDoc parses the package at import path from source (GOROOT or this module), cached.
func loadDoc(path string) *doc.Package {
	docMu.Lock()
	defer docMu.Unlock()
	if p, ok := docCache[path]; ok {
		return p
	}
	var dir string
	switch {
	case path == modulePath || strings.HasPrefix(path, modulePath+"/"):
		if root := moduleRoot(); root != "" {
			dir = filepath.Join(root, strings.TrimPrefix(path, modulePath))
		}
	default:
		dir = filepath.Join(goruntime.GOROOT(), "src", path)
	}
	var p *doc.Package
	if dir != "" {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, dir, func(fi fs.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments)
		if err == nil {
			for n, pkg := range pkgs {
				if strings.HasSuffix(n, "_test") {
					continue
				}
				mode := doc.Mode(0)
				if path == "builtin" {
					mode = doc.AllDecls
				}
				p = doc.New(pkg, path, mode)
				break
			}
		}
	}
	docCache[path] = p
	return p
}

// packageDoc returns the declaration and doc comment of name in the package at path (name "":
// the package's doc), or "" when the source is not available.
func packageDoc(path, name string, detail int) string {
	p := loadDoc(path)
	if p == nil {
		return ""
	}
	if name == "" {
		d := p.Doc
		if detail == 0 {
			d = p.Synopsis(p.Doc)
		}
		return fmt.Sprintf("package %s // import %q\n\n%s", p.Name, path, d)
	}
	fset := token.NewFileSet()
	show := func(node any, d string) string {
		var buf bytes.Buffer
		printer.Fprint(&buf, fset, node)
		return buf.String() + "\n\n" + strings.TrimSpace(d)
	}
	for _, f := range p.Funcs {
		if f.Name == name {
			f.Decl.Body = nil
			return show(f.Decl, f.Doc)
		}
	}
	for _, t := range p.Types {
		if t.Name == name {
			return show(&ast.GenDecl{Tok: token.TYPE, Specs: t.Decl.Specs}, t.Doc)
		}
		for _, f := range t.Funcs {
			if f.Name == name {
				f.Decl.Body = nil
				return show(f.Decl, f.Doc)
			}
		}
		for _, vs := range append(append([]*doc.Value{}, t.Consts...), t.Vars...) {
			for _, n := range vs.Names {
				if n == name {
					return show(vs.Decl, vs.Doc)
				}
			}
		}
	}
	for _, vs := range append(append([]*doc.Value{}, p.Consts...), p.Vars...) {
		for _, n := range vs.Names {
			if n == name {
				return show(vs.Decl, vs.Doc)
			}
		}
	}
	return ""
}
