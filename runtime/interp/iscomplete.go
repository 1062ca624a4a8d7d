package interp

import (
	"go/scanner"
	"go/token"
	"strings"
)

// IsComplete answers is_complete_request (see kernel.Evaluator): "incomplete" with an indent
// when brackets are open, a raw string or comment is unterminated, or the code ends in an
// operator or comma; "invalid" when it cannot be Go; else "complete". Magic lines are complete.
func (e *Evaluator) IsComplete(code string) (status string, indent string) {
	lines := strings.Split(code, "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "%") {
			lines[i] = ""
		}
	}
	code = strings.Join(lines, "\n")
	if strings.TrimSpace(code) == "" {
		return "complete", ""
	}
	var s scanner.Scanner
	fset := token.NewFileSet()
	unterminated, badTok := false, false
	s.Init(fset.AddFile("", -1, len(code)), []byte(code), func(_ token.Position, msg string) {
		if strings.Contains(msg, "not terminated") {
			unterminated = true
		} else {
			badTok = true
		}
	}, 0)
	depth := 0
	last := token.ILLEGAL
	for {
		_, t, lit := s.Scan()
		if t == token.EOF {
			break
		}
		switch t {
		case token.LPAREN, token.LBRACE, token.LBRACK:
			depth++
		case token.RPAREN, token.RBRACE, token.RBRACK:
			depth--
			if depth < 0 {
				return "invalid", ""
			}
		}
		if t == token.SEMICOLON && lit == "\n" {
			continue // inserted at a line end
		}
		last = t
	}
	if unterminated {
		return "incomplete", ""
	}
	if depth > 0 {
		return "incomplete", strings.Repeat("\t", depth)
	}
	if continues(last) {
		return "incomplete", "\t"
	}
	if badTok {
		return "invalid", ""
	}
	chunks, err := splitCell(code)
	if err != nil {
		return "invalid", ""
	}
	for _, c := range chunks {
		if _, _, _, err := parseChunk(c.text, c.kind, c.line, c.col, c.start); err != nil {
			return "invalid", ""
		}
	}
	return "complete", ""
}

// continues reports whether a line ending in token t must go on (binary operators, assignments,
// comma, period, arrow).
func continues(t token.Token) bool {
	switch {
	case t.IsOperator() && t != token.RPAREN && t != token.RBRACE && t != token.RBRACK &&
		t != token.SEMICOLON && t != token.INC && t != token.DEC && t != token.ELLIPSIS &&
		t != token.LPAREN && t != token.LBRACE && t != token.LBRACK && t != token.COLON:
		return true
	}
	return false
}
