// Package plot renders small line charts as SVG documents, in pure Go with no dependencies: the
// training loss curve that a notebook cell updates in place (display.SVG + Handle.Update), and any
// other metric over steps. It draws axes with "nice" tick values (1, 2 or 5 × 10^k), one polyline
// (with dots when there are few points) per series, and a legend when there are several series.
package plot

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Series is one line: the points (X[i], Y[i]). X and Y must have the same length; points whose X
// or Y is NaN or infinite are skipped (the line is broken there).
type Series struct {
	Name  string    // legend label; "" leaves the series out of the legend
	X, Y  []float64 // data coordinates
	Color string    // CSS colour; "" picks one from a fixed palette by the series index
}

// LineChart is a chart of one or more series. The zero value of Width/Height means 480×280 pixels.
type LineChart struct {
	Title, XLabel, YLabel string
	Width, Height         int // pixels of the SVG viewport
	Series                []Series
}

// palette is the colour cycle of series without a Color (colour-blind-safe Tableau 10 subset).
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}

// margins in pixels: left leaves room for y tick labels, bottom for x tick labels and the label.
const (
	marginLeft   = 58
	marginRight  = 14
	marginTop    = 30
	marginBottom = 44
)

// SVG renders the chart as a standalone <svg> document (UTF-8 text, with xmlns). With no finite
// point at all it renders the axes frame and the text "no data yet".
func (c *LineChart) SVG() string {
	w, h := c.Width, c.Height
	if w <= 0 {
		w = 480
	}
	if h <= 0 {
		h = 280
	}
	pw, ph := float64(w-marginLeft-marginRight), float64(h-marginTop-marginBottom)
	xmin, xmax, ymin, ymax, ok := c.bounds()

	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, w, h, w, h)
	fmt.Fprintf(&sb, `<rect x="0" y="0" width="%d" height="%d" fill="white"/>`, w, h)
	if c.Title != "" {
		fmt.Fprintf(&sb, `<text x="%d" y="18" text-anchor="middle" font-size="13" font-weight="bold">%s</text>`, w/2, html.EscapeString(c.Title))
	}
	fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="%g" height="%g" fill="none" stroke="#888"/>`, marginLeft, marginTop, pw, ph)
	if c.XLabel != "" {
		fmt.Fprintf(&sb, `<text x="%g" y="%d" text-anchor="middle">%s</text>`, marginLeft+pw/2, h-6, html.EscapeString(c.XLabel))
	}
	if c.YLabel != "" {
		fmt.Fprintf(&sb, `<text x="12" y="%g" text-anchor="middle" transform="rotate(-90 12 %g)">%s</text>`, marginTop+ph/2, marginTop+ph/2, html.EscapeString(c.YLabel))
	}
	if !ok {
		fmt.Fprintf(&sb, `<text x="%g" y="%g" text-anchor="middle" fill="#888">no data yet</text></svg>`, marginLeft+pw/2, marginTop+ph/2)
		return sb.String()
	}
	xt, yt := Ticks(xmin, xmax, 6), Ticks(ymin, ymax, 5)
	// Widen the ranges to the outer ticks so the curve never touches the frame unannounced.
	if len(yt) > 0 {
		ymin, ymax = math.Min(ymin, yt[0]), math.Max(ymax, yt[len(yt)-1])
	}
	px := func(x float64) float64 { return marginLeft + (x-xmin)/(xmax-xmin)*pw }
	py := func(y float64) float64 { return marginTop + ph - (y-ymin)/(ymax-ymin)*ph }
	for _, t := range xt {
		if t < xmin || t > xmax {
			continue
		}
		x := px(t)
		fmt.Fprintf(&sb, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#eee"/>`, x, float64(marginTop), x, marginTop+ph)
		fmt.Fprintf(&sb, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`, x, marginTop+ph+14, FormatTick(t))
	}
	for _, t := range yt {
		y := py(t)
		fmt.Fprintf(&sb, `<line x1="%d" y1="%.1f" x2="%g" y2="%.1f" stroke="#eee"/>`, marginLeft, y, marginLeft+pw, y)
		fmt.Fprintf(&sb, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, marginLeft-4, y+4, FormatTick(t))
	}
	legendY := marginTop + 12
	for i, s := range c.Series {
		col := s.Color
		if col == "" {
			col = palette[i%len(palette)]
		}
		n := min(len(s.X), len(s.Y))
		var seg []string
		flush := func() {
			if len(seg) > 1 {
				fmt.Fprintf(&sb, `<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`, html.EscapeString(col), strings.Join(seg, " "))
			}
			seg = seg[:0]
		}
		for j := 0; j < n; j++ {
			x, y := s.X[j], s.Y[j]
			if !finite(x) || !finite(y) {
				flush()
				continue
			}
			seg = append(seg, fmt.Sprintf("%.1f,%.1f", px(x), py(y)))
			if n <= 40 {
				fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="2.2" fill="%s"/>`, px(x), py(y), html.EscapeString(col))
			}
		}
		flush()
		if s.Name != "" && len(c.Series) > 1 {
			lx := marginLeft + int(pw) - 110
			fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`, lx, legendY-4, lx+16, legendY-4, html.EscapeString(col))
			fmt.Fprintf(&sb, `<text x="%d" y="%d">%s</text>`, lx+20, legendY, html.EscapeString(s.Name))
			legendY += 14
		}
	}
	sb.WriteString("</svg>")
	return sb.String()
}

// bounds returns the data ranges over all finite points, widened when degenerate; ok is false
// when there is no finite point.
func (c *LineChart) bounds() (xmin, xmax, ymin, ymax float64, ok bool) {
	xmin, ymin = math.Inf(1), math.Inf(1)
	xmax, ymax = math.Inf(-1), math.Inf(-1)
	for _, s := range c.Series {
		for j := 0; j < min(len(s.X), len(s.Y)); j++ {
			x, y := s.X[j], s.Y[j]
			if !finite(x) || !finite(y) {
				continue
			}
			ok = true
			xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	if !ok {
		return 0, 1, 0, 1, false
	}
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	if ymax == ymin {
		d := math.Max(math.Abs(ymin)*0.1, 1e-3)
		ymin, ymax = ymin-d, ymax+d
	}
	return xmin, xmax, ymin, ymax, true
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Ticks returns about n "nice" tick values (multiples of 1, 2 or 5 × 10^k) covering [lo, hi]:
// the first tick is <= lo and the last >= hi. It returns nil for a non-finite or empty range.
func Ticks(lo, hi float64, n int) []float64 {
	if !finite(lo) || !finite(hi) || hi <= lo || n < 1 {
		return nil
	}
	step := niceStep((hi - lo) / float64(n))
	start := math.Floor(lo/step) * step
	var out []float64
	for k := 0.0; len(out) < 4*n+2; k++ {
		v := start + k*step
		out = append(out, v)
		if v >= hi-step*1e-9 {
			break
		}
	}
	return out
}

// niceStep rounds a raw step up to 1, 2 or 5 × 10^k.
func niceStep(raw float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	const tol = 1 + 1e-9 // (2.37-2.31)/3 is 0.0200000000000002: still a step of 0.02
	switch f := raw / p; {
	case f <= tol:
		return p
	case f <= 2*tol:
		return 2 * p
	case f <= 5*tol:
		return 5 * p
	}
	return 10 * p
}

// FormatTick formats a tick value compactly: integers without decimals, others with up to 4
// significant digits, exponent form outside [1e-4, 1e6).
func FormatTick(v float64) string {
	if v == 0 {
		return "0"
	}
	if a := math.Abs(v); a >= 1e6 || a < 1e-4 {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
