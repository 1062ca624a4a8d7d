package display

import (
	"fmt"
	"html"
	"math"
	"strings"
	"sync"
	"time"
)

// Progress is a progress bar: done of total steps, the fraction, the rate (steps per second
// since the start), the estimated time left and a message. In a notebook it is an HTML output
// updated in place; in a terminal a line on standard error rewritten with a carriage return.
// Renderings are throttled to at most one per MinInterval, except the first and the last (Finish).
// It is safe for concurrent use; compiled runtime code (trainer, evaluator) drives it.
type Progress struct {
	mu       sync.Mutex
	total    int
	done     int
	msg      string
	start    time.Time
	last     time.Time // time of the last rendering
	finished bool
	h        *Handle // nil in a terminal
	termLen  int     // length of the last terminal line, to blank leftovers
	now      func() time.Time
}

// MinInterval is the least time between two renderings of a Progress (about 10 per second).
const MinInterval = 100 * time.Millisecond

// NewProgress shows a progress bar of total steps (total <= 0: unknown, no fraction or ETA) with
// a message, and returns it. Call Add or Set as work proceeds and Finish at the end.
func NewProgress(total int, message string) *Progress {
	return newProgress(total, message, time.Now)
}

func newProgress(total int, message string, now func() time.Time) *Progress {
	p := &Progress{total: total, msg: message, now: now}
	p.start = now()
	p.last = p.start
	if Current() != nil {
		p.h = newHandle(func(c any) (map[string]any, error) { return c.(map[string]any), nil }, p.bundleLocked())
	} else {
		p.termLocked()
	}
	return p
}

// Add advances the bar by n steps.
func (p *Progress) Add(n int) { p.mu.Lock(); p.done += n; p.maybeRenderLocked(false) }

// Set sets the number of steps done.
func (p *Progress) Set(done int) { p.mu.Lock(); p.done = done; p.maybeRenderLocked(false) }

// SetTotal changes the number of steps in all (<= 0: unknown).
func (p *Progress) SetTotal(total int) { p.mu.Lock(); p.total = total; p.maybeRenderLocked(false) }

// SetMessage changes the message shown after the bar (for example "loss 1.234").
func (p *Progress) SetMessage(msg string) { p.mu.Lock(); p.msg = msg; p.maybeRenderLocked(false) }

// Finish renders the final state (unthrottled) and, in a terminal, ends the line. Later calls
// change nothing.
func (p *Progress) Finish() {
	p.mu.Lock()
	if p.finished {
		p.mu.Unlock()
		return
	}
	p.maybeRenderLocked(true)
	p.mu.Lock()
	p.finished = true
	if p.h == nil {
		fmt.Fprintln(termErr)
	}
	p.mu.Unlock()
}

// Fraction returns done/total in [0, 1], or NaN when the total is unknown.
func (p *Progress) Fraction() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fractionLocked()
}

// DisplayID returns the display id of the bar in a notebook, "" in a terminal.
func (p *Progress) DisplayID() string {
	if p.h == nil {
		return ""
	}
	return p.h.DisplayID()
}

// String returns the text rendering of the bar.
func (p *Progress) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.plainLocked()
}

// maybeRenderLocked renders when forced or when MinInterval has passed; it unlocks p.mu.
func (p *Progress) maybeRenderLocked(force bool) {
	now := p.now()
	if p.finished || (!force && now.Sub(p.last) < MinInterval) {
		p.mu.Unlock()
		return
	}
	p.last = now
	if p.h == nil {
		p.termLocked()
		p.mu.Unlock()
		return
	}
	b := p.bundleLocked()
	p.mu.Unlock()
	p.h.Update(b) // outside the lock: a publisher may block
}

func (p *Progress) fractionLocked() float64 {
	if p.total <= 0 {
		return math.NaN()
	}
	f := float64(p.done) / float64(p.total)
	return math.Max(0, math.Min(1, f))
}

// stats returns the rate in steps per second and the estimated time left (negative: unknown).
func (p *Progress) statsLocked() (rate float64, eta time.Duration) {
	el := p.last.Sub(p.start).Seconds()
	eta = -1
	if el > 0 && p.done > 0 {
		rate = float64(p.done) / el
		if p.total > 0 && p.done <= p.total {
			eta = time.Duration(float64(p.total-p.done) / rate * float64(time.Second))
		}
	}
	return rate, eta
}

func fmtDur(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// parts returns the count, percent, rate and ETA texts.
func (p *Progress) partsLocked() (count, pct, rate, eta string) {
	r, e := p.statsLocked()
	if p.total > 0 {
		count = fmt.Sprintf("%d/%d", p.done, p.total)
		pct = fmt.Sprintf("%3.0f%%", 100*p.fractionLocked())
	} else {
		count = fmt.Sprintf("%d", p.done)
	}
	if r > 0 {
		rate = fmt.Sprintf("%.3g it/s", r)
	}
	if e >= 0 {
		eta = "ETA " + fmtDur(e)
	}
	if p.finished || (p.total > 0 && p.done >= p.total) {
		eta = "in " + fmtDur(p.last.Sub(p.start))
	}
	return
}

func (p *Progress) plainLocked() string {
	const width = 24
	count, pct, rate, eta := p.partsLocked()
	var bar string
	if f := p.fractionLocked(); !math.IsNaN(f) {
		n := int(f * width)
		bar = "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "] "
	}
	fields := []string{}
	for _, s := range []string{p.msg, bar + count, pct, rate, eta} {
		if s = strings.TrimSpace(s); s != "" {
			fields = append(fields, s)
		}
	}
	return strings.Join(fields, " ")
}

func (p *Progress) bundleLocked() map[string]any {
	count, pct, rate, eta := p.partsLocked()
	var bar string
	if f := p.fractionLocked(); !math.IsNaN(f) {
		bar = fmt.Sprintf(`<progress value="%d" max="%d" style="width:30ch;vertical-align:middle"></progress>`, p.done, p.total)
	} else {
		bar = `<progress style="width:30ch;vertical-align:middle"></progress>`
	}
	var sb strings.Builder
	sb.WriteString(`<div class="finlora-progress" style="font-family:monospace">`)
	if p.msg != "" {
		sb.WriteString(html.EscapeString(p.msg) + " ")
	}
	sb.WriteString(bar)
	for _, s := range []string{count, pct, rate, eta} {
		if s = strings.TrimSpace(s); s != "" {
			sb.WriteString(" " + html.EscapeString(s))
		}
	}
	sb.WriteString("</div>")
	return map[string]any{"text/html": sb.String(), "text/plain": p.plainLocked()}
}

func (p *Progress) termLocked() {
	s := p.plainLocked()
	pad := ""
	if n := p.termLen - len(s); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.termLen = len(s)
	fmt.Fprint(termErr, "\r"+s+pad)
}
