package display

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/png"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type msg struct {
	data   map[string]any
	id     string
	update bool
}

type fakePub struct {
	mu   sync.Mutex
	msgs []msg
}

func (f *fakePub) Display(data, _ map[string]any, id string, update bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, msg{data, id, update})
}
func (f *fakePub) ClearOutput(bool)                       {}
func (f *fakePub) Input(p string, _ bool) (string, error) { return "typed:" + p, nil }

func withPub(t *testing.T) *fakePub {
	f := &fakePub{}
	t.Cleanup(SetPublisher(f))
	return f
}

func TestHandleUpdateInPlace(t *testing.T) {
	f := withPub(t)
	h := HTML("<table><tr><td>a</td><td>1</td></tr></table>")
	if err := h.Update("<b>two</b>"); err != nil {
		t.Fatal(err)
	}
	if len(f.msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(f.msgs))
	}
	first, second := f.msgs[0], f.msgs[1]
	if first.update || !second.update || first.id != h.DisplayID() || second.id != h.DisplayID() || h.DisplayID() == "" {
		t.Fatalf("ids/update flags wrong: %+v %+v id %q", first, second, h.DisplayID())
	}
	if got := first.data["text/plain"]; got != "a\t1" {
		t.Fatalf("plain of table = %q", got)
	}
	if got := second.data["text/html"]; got != "<b>two</b>" {
		t.Fatalf("updated html = %q", got)
	}
	if err := h.Update(42); err == nil {
		t.Fatal("updating HTML with an int: no error")
	}
}

func TestKinds(t *testing.T) {
	f := withPub(t)
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 3, 2))); err != nil {
		t.Fatal(err)
	}
	PNG(buf.Bytes())
	SVG(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>`)
	Markdown("# title")
	JSON(map[string]int{"a": 1})
	Text("plain")
	bad := PNG([]byte("not a png"))
	want := []struct{ key, contains string }{
		{"image/png", base64.StdEncoding.EncodeToString(buf.Bytes())},
		{"image/svg+xml", "<svg"},
		{"text/markdown", "# title"},
		{"text/plain", `"a": 1`},
		{"text/plain", "plain"},
		{"text/plain", "not a PNG"},
	}
	if len(f.msgs) != len(want) {
		t.Fatalf("%d messages, want %d", len(f.msgs), len(want))
	}
	for i, w := range want {
		got, _ := f.msgs[i].data[w.key].(string)
		if !strings.Contains(got, w.contains) {
			t.Errorf("message %d %s = %q, want it to contain %q", i, w.key, got, w.contains)
		}
	}
	if f.msgs[0].data["text/plain"] != "<PNG image 3x2, "+strconv.Itoa(buf.Len())+" bytes>" {
		t.Errorf("png plain = %v", f.msgs[0].data["text/plain"])
	}
	if bad.Err() == nil {
		t.Error("bad PNG: Err() is nil")
	}
	if _, ok := f.msgs[3].data["application/json"].(map[string]any); !ok {
		t.Errorf("application/json is %T, want a JSON object", f.msgs[3].data["application/json"])
	}
}

type rich struct{}

func (rich) HTML() string   { return "<i>rich</i>" }
func (rich) String() string { return "rich!" }

type bundler struct{}

func (bundler) MIMEBundle() map[string]any {
	return map[string]any{"text/latex": "$x$", "text/plain": "x"}
}

func TestBundleOf(t *testing.T) {
	b := BundleOf(rich{})
	if b["text/html"] != "<i>rich</i>" || b["text/plain"] != "rich!" {
		t.Fatalf("BundleOf(rich) = %v", b)
	}
	b = BundleOf(bundler{})
	if b["text/latex"] != "$x$" || b["text/plain"] != "x" {
		t.Fatalf("BundleOf(bundler) = %v", b)
	}
	if b := BundleOf(3); len(b) != 1 || b["text/plain"] != "3" {
		t.Fatalf("BundleOf(3) = %v", b)
	}
}

func TestProgressThrottleAndStats(t *testing.T) {
	f := withPub(t)
	clock := time.Unix(1000, 0)
	now := func() time.Time { return clock }
	p := newProgress(100, "train", now)
	for i := 0; i < 50; i++ { // 50 steps in 50 ms: no re-render after the first
		clock = clock.Add(time.Millisecond)
		p.Add(1)
	}
	if len(f.msgs) != 1 {
		t.Fatalf("%d renderings within 50 ms, want 1 (the first)", len(f.msgs))
	}
	clock = clock.Add(50 * time.Millisecond) // 100 ms since start: renders
	p.SetMessage("loss 1.5")
	if len(f.msgs) != 2 || !f.msgs[1].update || f.msgs[1].id != p.DisplayID() {
		t.Fatalf("after 100 ms: %d messages %+v", len(f.msgs), f.msgs)
	}
	plain := f.msgs[1].data["text/plain"].(string)
	// 50 steps in 0.1 s: 500 it/s; 50 left: 0.1 s → rounds to 0:00.
	for _, w := range []string{"loss 1.5", "50/100", "50%", "500 it/s", "ETA 0:00"} {
		if !strings.Contains(plain, w) {
			t.Errorf("plain %q lacks %q", plain, w)
		}
	}
	if !strings.Contains(f.msgs[1].data["text/html"].(string), `<progress value="50" max="100"`) {
		t.Errorf("html = %v", f.msgs[1].data["text/html"])
	}
	if p.Fraction() != 0.5 {
		t.Errorf("Fraction = %v", p.Fraction())
	}
	p.Set(100)
	p.Finish() // unthrottled
	p.Finish()
	if len(f.msgs) != 3 || !strings.Contains(f.msgs[2].data["text/plain"].(string), "100/100") {
		t.Fatalf("finish: %d messages, last %v", len(f.msgs), f.msgs[len(f.msgs)-1].data)
	}
}

func TestTerminal(t *testing.T) {
	t.Cleanup(SetPublisher(nil))
	var out, errb bytes.Buffer
	oo, oe, oi := termOut, termErr, termIn
	termOut, termErr, termIn = &out, &errb, strings.NewReader("hello\n")
	termReader = nil
	defer func() { termOut, termErr, termIn = oo, oe, oi; termReader = nil }()

	h := HTML("<p>a &amp; b</p>")
	h.Update("<p>c</p>")
	if out.String() != "a & b\nc\n" {
		t.Fatalf("terminal HTML = %q", out.String())
	}
	clock := time.Unix(0, 0)
	p := newProgress(4, "", func() time.Time { return clock })
	clock = clock.Add(time.Second)
	p.Set(4)
	p.Finish()
	if s := errb.String(); !strings.HasPrefix(s, "\r[") || !strings.Contains(s, "\r[########################] 4/4 100% 4 it/s in 0:01") || !strings.HasSuffix(s, "\n") {
		t.Fatalf("terminal progress = %q", s)
	}
	errb.Reset()
	line, err := Input("name? ")
	if err != nil || line != "hello" || errb.String() != "name? " {
		t.Fatalf("Input = %q %v, prompt %q", line, err, errb.String())
	}
}

func TestInputNotebook(t *testing.T) {
	withPub(t)
	if s, err := Input("x"); err != nil || s != "typed:x" {
		t.Fatalf("Input = %q %v", s, err)
	}
}
