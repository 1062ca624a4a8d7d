package kernel

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything\nat all", true},
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*1?2*", "x := 102 + 1", true},
		{"*fmt.Print*", "x := 1\nfmt.Println(x)", true},
		{"[abc]x", "bx", true},
		{"[abc]x", "dx", false},
		{"[a-c]x", "cx", true},
		{"[^a-c]x", "dx", true},
		{"[^a-c]x", "ax", false},
		{"[]]", "]", true},
		{"[ab", "[ab", true}, // unterminated class: literal
		{"ü*", "über", true},
		{"?", "ü", true},
		{"ABC", "abc", false}, // case-sensitive, as SQLite GLOB
		{"**a", "bba", true},
	}
	for _, tc := range tests {
		if got := globMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func ip(n int) *int { return &n }

func histJSON(t *testing.T, h *history, q historyQuery) string {
	t.Helper()
	items, err := h.query(q)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(items)
	return string(b)
}

func TestHistoryQueriesAndPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "history.jsonl")
	h, err := openHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, src := range []string{"x := 1", "y := 2", "x + y", "x := 1"} {
		out := ""
		if src == "x + y" {
			out = "3"
		}
		if err := h.add(i+1, src, out); err != nil {
			t.Fatal(err)
		}
	}
	h.close()
	// A new kernel reads the file and starts session 2.
	h, err = openHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	h.add(1, "z := 3", "")

	tests := []struct {
		name string
		q    historyQuery
		want string
	}{
		{"tail 2", historyQuery{AccessType: "tail", N: ip(2)}, `[[1,4,"x := 1"],[2,1,"z := 3"]]`},
		{"tail output", historyQuery{AccessType: "tail", N: ip(3), Output: true},
			`[[1,3,["x + y","3"]],[1,4,["x := 1",null]],[2,1,["z := 3",null]]]`},
		{"range session 1", historyQuery{AccessType: "range", Session: 1, Start: 2, Stop: ip(4)}, `[[1,2,"y := 2"],[1,3,"x + y"]]`},
		{"range relative", historyQuery{AccessType: "range", Session: -1, Start: 4}, `[[1,4,"x := 1"]]`},
		{"range current", historyQuery{AccessType: "range", Session: 0, Start: 1}, `[[2,1,"z := 3"]]`},
		{"search", historyQuery{AccessType: "search", Pattern: "x*"}, `[[1,1,"x := 1"],[1,3,"x + y"],[1,4,"x := 1"]]`},
		{"search unique", historyQuery{AccessType: "search", Pattern: "x :=*", Unique: true}, `[[1,4,"x := 1"]]`},
		{"search n", historyQuery{AccessType: "search", Pattern: "*:=*", N: ip(2)}, `[[1,4,"x := 1"],[2,1,"z := 3"]]`},
		{"search none", historyQuery{AccessType: "search", Pattern: "nothing"}, `[]`},
	}
	for _, tc := range tests {
		if got := histJSON(t, h, tc.q); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if _, err := h.query(historyQuery{AccessType: "sideways"}); err == nil {
		t.Error("bad hist_access_type accepted")
	}
}

func TestHistoryCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	h, err := openHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2*histKeep+5; i++ {
		h.add(i+1, fmt.Sprintf("cell %d", i), "")
	}
	h.close()
	h, err = openHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	if len(h.entries) != histKeep || h.entries[histKeep-1].Source != fmt.Sprintf("cell %d", 2*histKeep+4) {
		t.Errorf("%d entries after reload, last %q", len(h.entries), h.entries[len(h.entries)-1].Source)
	}
	if h.session != 2 {
		t.Errorf("session %d, want 2", h.session)
	}
}

func TestDefaultHistoryPath(t *testing.T) {
	t.Setenv("JUPYTER_DATA_DIR", "/j")
	if got := DefaultHistoryPath(); got != "/j/finlora/history.jsonl" {
		t.Errorf("with JUPYTER_DATA_DIR: %s", got)
	}
	t.Setenv("JUPYTER_DATA_DIR", "")
	t.Setenv("XDG_DATA_HOME", "/x")
	if got := DefaultHistoryPath(); got != "/x/jupyter/finlora/history.jsonl" {
		t.Errorf("with XDG_DATA_HOME: %s", got)
	}
}
