package interp

import (
	"slices"
	"testing"
)

// declaredNames lists what an item declares: functions (not methods), types, consts and vars at
// the top level; := and var/const/type statements in a statement item.
func TestDeclaredNames(t *testing.T) {
	for _, c := range []struct {
		kind itemKind
		text string
		want []string
	}{
		{itemDecl, "func f() {}", []string{"f"}},
		{itemDecl, "func (T) m() {}", nil},
		{itemDecl, "type T struct{}", []string{"T"}},
		{itemDecl, "var (a, b = 1, 2; c int)", []string{"a", "b", "c"}},
		{itemDecl, "const k = 3", []string{"k"}},
		{itemStmt, "x, _ := 1, 2", []string{"x"}},
		{itemStmt, "var y, z int", []string{"y", "z"}},
		{itemStmt, "type U int", []string{"U"}},
		{itemStmt, "x = 4", nil},
		{itemStmt, "x :=", nil}, // does not parse
	} {
		if got := declaredNames(item{kind: c.kind, text: c.text}); !slices.Equal(got, c.want) {
			t.Errorf("declaredNames(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}
