package interp

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Error is the error of a cell: Jupyter's ename, evalue and traceback. It implements the
// kernel's CellError (EName, Traceback).
type Error struct {
	Name  string   // "CompileError", "Panic", "GoroutinePanic", "Interrupted", "MagicError"
	Value string   // one-line message, positions as cell:LINE:COL
	Trace []string // traceback lines: the message, then each frame with the cell's source line
}

// Error returns "Name: Value".
func (e *Error) Error() string { return e.Name + ": " + e.Value }

// EName returns Jupyter's ename (Name).
func (e *Error) EName() string { return e.Name }

// Traceback returns Jupyter's traceback lines (Trace).
func (e *Error) Traceback() []string { return e.Trace }

// rePos matches a position the interpreter prints: "_.go:3:5", "3:5" at the start of a
// message or after ": " in it.
var rePos = regexp.MustCompile(`(?:^|(?:_\.go|cell):|\b)(\d+):(\d+)(:)`)

// cellPositions rewrites the interpreter's positions in msg to the cell's ("cell:LINE:COL"):
// lines already are the cell's (chunks are padded), columns on line 1 lose the wrapper length.
func cellPositions(msg string, prefixLen int) string {
	return rePos.ReplaceAllStringFunc(msg, func(m string) string {
		s := rePos.FindStringSubmatch(m)
		line, _ := strconv.Atoi(s[1])
		col, _ := strconv.Atoi(s[2])
		if line == 1 && col > prefixLen {
			col -= prefixLen
		}
		return fmt.Sprintf("cell:%d:%d:", line, col)
	})
}

var reCellPos = regexp.MustCompile(`cell:(\d+):(\d+)`)

// traceback returns the header line and, for each cell position in lines, the source line with
// a caret under the column.
func traceback(name, value, code string, frames []string) []string {
	src := strings.Split(code, "\n")
	tb := []string{"\x1b[0;31m" + name + "\x1b[0m: " + value}
	show := func(where string) {
		m := reCellPos.FindStringSubmatch(where)
		if m == nil {
			return
		}
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		if line < 1 || line > len(src) {
			return
		}
		text := src[line-1]
		caret := ""
		if col >= 1 && col <= len(text)+1 {
			caret = "\n      " + strings.Repeat(" ", len([]rune(text[:col-1]))) + "^"
		}
		tb = append(tb, fmt.Sprintf("  line %d: %s%s", line, text, caret))
	}
	if len(frames) == 0 {
		show(value)
	}
	for _, f := range frames {
		if !strings.Contains(f, "cell:") {
			continue
		}
		tb = append(tb, "  at "+f)
		show(f)
	}
	return tb
}
