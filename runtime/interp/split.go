package interp

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"strings"
)

// tok is one scanned token.
type tok struct {
	pos token.Pos
	tok token.Token
	lit string
}

// itemKind classifies a top-level piece of a cell.
type itemKind int

const (
	itemImport itemKind = iota
	itemDecl            // func, method, type, var, const declaration
	itemStmt            // statement or expression
)

func (k itemKind) String() string { return [...]string{"import", "declaration", "statement"}[k] }

// item is one top-level declaration or statement of a cell.
type item struct {
	kind       itemKind
	start, end int // byte offsets in the cell
	line, col  int // 1-based position of start (col in bytes)
	text       string
}

// chunk is a run of consecutive items of one kind, evaluated by one interpreter call.
type chunk struct {
	kind      itemKind
	items     []item
	start     int
	line, col int
	text      string // cell[start:end of last item]
}

// splitCell cuts a cell into top-level items with the Go scanner (tracking bracket depth and
// semicolons, inserted ones included) and groups consecutive items of the same kind into chunks.
// A scanner error is returned with its cell position.
func splitCell(src string) ([]chunk, error) {
	fset := token.NewFileSet()
	file := fset.AddFile("cell", -1, len(src))
	var s scanner.Scanner
	var scanErr error
	s.Init(file, []byte(src), func(pos token.Position, msg string) {
		if scanErr == nil {
			scanErr = fmt.Errorf("%d:%d: %s", pos.Line, pos.Column, msg)
		}
	}, 0)
	var toks []tok
	for {
		pos, t, lit := s.Scan()
		if t == token.EOF {
			break
		}
		toks = append(toks, tok{pos, t, lit})
	}
	if scanErr != nil {
		return nil, scanErr
	}
	var items []item
	depth := 0
	begin := -1 // index in toks of the current item's first token
	closeItem := func(endOff int) {
		if begin < 0 {
			return
		}
		startOff := file.Offset(toks[begin].pos)
		p := file.Position(toks[begin].pos)
		text := strings.TrimRight(src[startOff:endOff], " \t\r\n;")
		items = append(items, item{kind: classify(toks, begin), start: startOff, end: startOff + len(text), line: p.Line, col: p.Column, text: text})
		begin = -1
	}
	for i, t := range toks {
		switch t.tok {
		case token.LPAREN, token.LBRACE, token.LBRACK:
			depth++
		case token.RPAREN, token.RBRACE, token.RBRACK:
			depth--
		}
		if t.tok == token.SEMICOLON && depth == 0 {
			closeItem(file.Offset(t.pos))
			continue
		}
		if begin < 0 {
			begin = i
		}
	}
	closeItem(len(src))
	return groupItems(src, items), nil
}

// classify decides the kind of the item whose first token is toks[i].
func classify(toks []tok, i int) itemKind {
	switch toks[i].tok {
	case token.IMPORT:
		return itemImport
	case token.CONST, token.VAR, token.TYPE:
		return itemDecl
	case token.FUNC:
		if i+1 >= len(toks) {
			return itemStmt
		}
		switch toks[i+1].tok {
		case token.IDENT:
			return itemDecl // func name(...)
		case token.LPAREN: // method receiver, or a function literal's parameters
			depth := 0
			for j := i + 1; j < len(toks); j++ {
				switch toks[j].tok {
				case token.LPAREN:
					depth++
				case token.RPAREN:
					depth--
				}
				if depth == 0 {
					if j+1 < len(toks) && toks[j+1].tok == token.IDENT {
						return itemDecl
					}
					return itemStmt
				}
			}
		}
	}
	return itemStmt
}

func groupItems(src string, items []item) []chunk {
	var chunks []chunk
	for _, it := range items {
		if n := len(chunks); n > 0 && chunks[n-1].kind == it.kind {
			c := &chunks[n-1]
			c.items = append(c.items, it)
			c.text = src[c.start:it.end]
			continue
		}
		chunks = append(chunks, chunk{kind: it.kind, items: []item{it}, start: it.start, line: it.line, col: it.col, text: it.text})
	}
	return chunks
}

// padded returns text placed at its cell position: line-1 newlines and col-1 spaces before it, so
// the interpreter's line numbers are the cell's.
func padded(text string, line, col int) string {
	return strings.Repeat("\n", line-1) + strings.Repeat(" ", col-1) + text
}

// Wrappers the interpreter puts before a chunk on its first line (yaegi v0.16.1, interp/ast.go);
// columns on the cell's first line are shifted by their length.
const (
	declPrefix = "package main;"
	stmtPrefix = "package main; func main() {"
)

// parseChunk parses a chunk the way the interpreter will, returning the file set, the file and
// the offset in the parsed source of the cell's byte 0.
func parseChunk(text string, kind itemKind, line, col, start int) (*token.FileSet, *ast.File, int, error) {
	fset := token.NewFileSet()
	pad := padded(text, line, col)
	var src, prefix string
	if kind == itemStmt {
		prefix = stmtPrefix
		src = prefix + pad + "\n}"
	} else {
		prefix = declPrefix
		src = prefix + pad
	}
	f, err := parser.ParseFile(fset, "cell", src, parser.ParseComments)
	// offset of cell byte 0 = len(prefix) + len(pad) - len(text) - start
	base := len(prefix) + len(pad) - len(text) - start
	return fset, f, base, err
}

// finalExpr returns the expression of the cell's last item when it is an expression statement
// (its value is the cell's result), else nil.
func finalExpr(chunks []chunk) ast.Expr {
	if len(chunks) == 0 {
		return nil
	}
	last := chunks[len(chunks)-1]
	if last.kind != itemStmt {
		return nil
	}
	it := last.items[len(last.items)-1]
	e, err := parser.ParseExpr(it.text)
	if err != nil {
		return nil
	}
	return e
}

// declaredNames returns the names an item declares at the top level, for %who and Inspect.
func declaredNames(it item) []string {
	var names []string
	switch it.kind {
	case itemDecl:
		f, err := parser.ParseFile(token.NewFileSet(), "", "package p;"+it.text, 0)
		if err != nil {
			return nil
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					names = append(names, d.Name.Name)
				}
			case *ast.GenDecl:
				names = append(names, genDeclNames(d)...)
			}
		}
	case itemStmt:
		f, err := parser.ParseFile(token.NewFileSet(), "", "package p; func _() {"+it.text+"\n}", 0)
		if err != nil || len(f.Decls) == 0 {
			return nil
		}
		body := f.Decls[0].(*ast.FuncDecl).Body
		for _, st := range body.List {
			switch st := st.(type) {
			case *ast.AssignStmt:
				if st.Tok == token.DEFINE {
					for _, l := range st.Lhs {
						if id, ok := l.(*ast.Ident); ok && id.Name != "_" {
							names = append(names, id.Name)
						}
					}
				}
			case *ast.DeclStmt:
				if g, ok := st.Decl.(*ast.GenDecl); ok {
					names = append(names, genDeclNames(g)...)
				}
			}
		}
	}
	return names
}

// genDeclNames returns the type, const and var names a declaration (top level or in a block)
// declares.
func genDeclNames(g *ast.GenDecl) []string {
	var names []string
	for _, s := range g.Specs {
		switch s := s.(type) {
		case *ast.TypeSpec:
			names = append(names, s.Name.Name)
		case *ast.ValueSpec:
			for _, n := range s.Names {
				names = append(names, n.Name)
			}
		}
	}
	return names
}
