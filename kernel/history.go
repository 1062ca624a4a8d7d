package kernel

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// History limits: at most histKeep entries are loaded; the file is rewritten with the newest
// histKeep entries when it holds more than 2*histKeep lines.
const histKeep = 10000

// histEntry is one executed cell as stored, one JSON object per line of the history file.
type histEntry struct {
	Session int    `json:"session"` // kernel session number, 1 for the first kernel that used the file
	Line    int    `json:"line"`    // the cell's execution_count in that session
	Source  string `json:"source"`
	Output  string `json:"output,omitempty"` // text/plain of the execute_result, if any
}

// history is the execution history of this and earlier kernels. It is safe for concurrent use.
type history struct {
	mu      sync.Mutex
	f       *os.File // nil: in memory only
	entries []histEntry
	session int // current session number
}

// DefaultHistoryPath is where the history is kept by default: finlora/history.jsonl under the
// Jupyter data dir ($JUPYTER_DATA_DIR, else $XDG_DATA_HOME/jupyter, else ~/.local/share/jupyter).
func DefaultHistoryPath() string {
	dir := os.Getenv("JUPYTER_DATA_DIR")
	if dir == "" {
		base := os.Getenv("XDG_DATA_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				home = os.TempDir()
			}
			base = filepath.Join(home, ".local", "share")
		}
		dir = filepath.Join(base, "jupyter")
	}
	return filepath.Join(dir, "finlora", "history.jsonl")
}

// openHistory loads the history file at path (DefaultHistoryPath when "", memory only when "-")
// and starts a new session after the last one recorded. Unreadable lines are skipped.
func openHistory(path string) (*history, error) {
	h := &history{session: 1}
	if path == "-" {
		return h, nil
	}
	if path == "" {
		path = DefaultHistoryPath()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create history folder: %w", err)
	}
	lines := 0
	if b, err := os.ReadFile(path); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			lines++
			var e histEntry
			if json.Unmarshal(sc.Bytes(), &e) != nil || e.Session <= 0 {
				continue
			}
			h.entries = append(h.entries, e)
			h.session = max(h.session, e.Session+1)
		}
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("read history %s: %w", path, err)
	}
	if len(h.entries) > histKeep {
		h.entries = append([]histEntry(nil), h.entries[len(h.entries)-histKeep:]...)
	}
	if lines > 2*histKeep {
		if err := h.rewrite(path); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	h.f = f
	return h, nil
}

// rewrite replaces the file at path by the entries in memory (atomically, through a rename).
func (h *history) rewrite(path string) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, e := range h.entries {
		enc.Encode(e)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("compact history %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("compact history %s: %w", path, err)
	}
	return nil
}

// add records a cell of the current session and appends it to the file.
func (h *history) add(line int, source, output string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := histEntry{Session: h.session, Line: line, Source: source, Output: output}
	h.entries = append(h.entries, e)
	if len(h.entries) > 2*histKeep {
		h.entries = append([]histEntry(nil), h.entries[len(h.entries)-histKeep:]...)
	}
	if h.f == nil {
		return nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode history entry: %w", err)
	}
	if _, err := h.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("append to history %s: %w", h.f.Name(), err)
	}
	return nil
}

// newSession starts a new session (after an in-process restart).
func (h *history) newSession() {
	h.mu.Lock()
	h.session++
	h.mu.Unlock()
}

func (h *history) close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return nil
	}
	err := h.f.Close()
	h.f = nil
	return err
}

// historyQuery is the content of history_request.
type historyQuery struct {
	Output     bool   `json:"output"`
	Raw        bool   `json:"raw"`
	AccessType string `json:"hist_access_type"` // "tail", "range" or "search"
	Session    int    `json:"session"`          // range: absolute if > 0, relative to the current if <= 0
	Start      int    `json:"start"`            // range: first line
	Stop       *int   `json:"stop"`             // range: line after the last; absent or 0: to the end
	N          *int   `json:"n"`                // tail, search: the last n entries
	Pattern    string `json:"pattern"`          // search: glob (*, ?, [...]) over the whole source
	Unique     bool   `json:"unique"`           // search: each source once (its latest run)
}

// query answers a history request: a list of [session, line, source] or, with output,
// [session, line, [source, output or null]], oldest first.
func (h *history) query(q historyQuery) ([]any, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var sel []histEntry
	lastN := func(es []histEntry) []histEntry {
		if q.N != nil && *q.N >= 0 && len(es) > *q.N {
			return es[len(es)-*q.N:]
		}
		return es
	}
	switch q.AccessType {
	case "tail", "":
		if q.N == nil {
			n := 10
			q.N = &n
		}
		sel = lastN(h.entries)
	case "range":
		session := q.Session
		if session <= 0 {
			session += h.session
		}
		for _, e := range h.entries {
			if e.Session == session && e.Line >= q.Start && (q.Stop == nil || *q.Stop <= 0 || e.Line < *q.Stop) {
				sel = append(sel, e)
			}
		}
	case "search":
		pattern := q.Pattern
		if pattern == "" {
			pattern = "*"
		}
		seen := map[string]bool{}
		for i := len(h.entries) - 1; i >= 0; i-- { // newest first, for unique
			e := h.entries[i]
			if !globMatch(pattern, e.Source) || (q.Unique && seen[e.Source]) {
				continue
			}
			seen[e.Source] = true
			sel = append(sel, e)
		}
		for i, j := 0, len(sel)-1; i < j; i, j = i+1, j-1 {
			sel[i], sel[j] = sel[j], sel[i]
		}
		sel = lastN(sel)
	default:
		return nil, fmt.Errorf("hist_access_type %q: want tail, range or search", q.AccessType)
	}
	out := make([]any, 0, len(sel))
	for _, e := range sel {
		if q.Output {
			var o any
			if e.Output != "" {
				o = e.Output
			}
			out = append(out, []any{e.Session, e.Line, []any{e.Source, o}})
		} else {
			out = append(out, []any{e.Session, e.Line, e.Source})
		}
	}
	return out, nil
}

// globMatch reports whether s matches pattern in the manner of SQLite's GLOB (which IPython's
// history search uses): * any run of characters (newlines included), ? one character,
// [abc] / [a-z] / [^abc] a character class; case-sensitive.
func globMatch(pattern, s string) bool {
	p, r := []rune(pattern), []rune(s)
	// Iterative matcher with backtracking to the last star.
	pi, si, starP, starS := 0, 0, -1, 0
	for si < len(r) {
		if pi < len(p) {
			switch p[pi] {
			case '*':
				starP, starS = pi, si
				pi++
				continue
			case '?':
				pi++
				si++
				continue
			case '[':
				if ok, next := matchClass(p, pi, r[si]); next > 0 && ok {
					pi, si = next, si+1
					continue
				} else if next < 0 && p[pi] == r[si] { // unterminated class: literal '['
					pi++
					si++
					continue
				}
			default:
				if p[pi] == r[si] {
					pi++
					si++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		pi, si = starP+1, starS
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchClass matches c against the class starting at p[i] == '['. It returns whether c is in the
// class and the index after the closing ']', or next = -1 if the class is unterminated.
func matchClass(p []rune, i int, c rune) (ok bool, next int) {
	j := i + 1
	negate := j < len(p) && (p[j] == '^' || p[j] == '!')
	if negate {
		j++
	}
	first := true
	for ; j < len(p); j++ {
		if p[j] == ']' && !first {
			return ok != negate, j + 1
		}
		first = false
		if j+2 < len(p) && p[j+1] == '-' && p[j+2] != ']' {
			if p[j] <= c && c <= p[j+2] {
				ok = true
			}
			j += 2
			continue
		}
		if p[j] == c {
			ok = true
		}
	}
	return false, -1
}

// handleHistory answers history_request.
func (k *Kernel) handleHistory(m *Message) {
	var q historyQuery
	if !k.decodeContent(m, &q, "history_reply") {
		return
	}
	items, err := k.hist.query(q)
	if err != nil {
		k.send(k.socks.shell, "history_reply", m, map[string]any{"status": "error", "ename": "BadRequest",
			"evalue": err.Error(), "traceback": []string{"BadRequest: " + err.Error()}})
		return
	}
	k.send(k.socks.shell, "history_reply", m, map[string]any{"status": "ok", "history": items})
}
