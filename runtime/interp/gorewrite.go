package interp

import (
	"fmt"
	"go/ast"
	"go/token"
	"sort"
	"strings"
)

// cellPkg is the name under which the evaluator's helper package is imported in the interpreter.
const cellPkg = "_finlora_cell"

// rewriteGo replaces every go statement of a chunk, go F(A1, A2), by a call of the helper
// cellPkg.Go(cellID, LINE, F, A1, A2), which evaluates the function and its arguments before the
// goroutine starts (as Go does) and runs the call on a goroutine that recovers a panic and reports
// it to the cell (with yaegi, a panic in a goroutine kills the process). The rewrite only replaces
// text on the go statement's first line, so every position stays the cell's. Calls of builtins and
// calls with a final "..." are left as they are.
func rewriteGo(c chunk, cellID int) (string, error) {
	if !strings.Contains(c.text, "go") {
		return c.text, nil
	}
	fset, f, base, err := parseChunk(c.text, c.kind, c.line, c.col, c.start)
	if err != nil {
		return c.text, nil // the interpreter reports the syntax error with the cell's positions
	}
	type edit struct {
		at, end int // offsets in c.text: replace [at,end) by text
		text    string
	}
	var edits []edit
	off := func(p token.Pos) int { return fset.Position(p).Offset - base - c.start }
	ast.Inspect(f, func(nd ast.Node) bool {
		g, ok := nd.(*ast.GoStmt)
		if !ok || g.Call.Ellipsis.IsValid() {
			return true
		}
		if id, ok := g.Call.Fun.(*ast.Ident); ok && builtins[id.Name] {
			return true
		}
		line := fset.Position(g.Pos()).Line
		sep := ""
		if len(g.Call.Args) > 0 {
			sep = ", "
		}
		edits = append(edits,
			edit{off(g.Go), off(g.Call.Fun.Pos()), fmt.Sprintf("%s.Go(%d, %d, ", cellPkg, cellID, line)},
			edit{off(g.Call.Fun.End()), off(g.Call.Lparen) + 1, sep},
		)
		return true
	})
	if len(edits) == 0 {
		return c.text, nil
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].at > edits[j].at })
	out := c.text
	for _, e := range edits {
		out = out[:e.at] + e.text + out[e.end:]
	}
	return out, nil
}

// builtins are Go's predeclared functions (not values: they cannot be passed to cellPkg.Go).
var builtins = map[string]bool{
	"append": true, "cap": true, "clear": true, "close": true, "complex": true, "copy": true,
	"delete": true, "imag": true, "len": true, "make": true, "max": true, "min": true, "new": true,
	"panic": true, "print": true, "println": true, "real": true, "recover": true,
}
