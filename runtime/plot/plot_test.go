package plot

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		n      int
		want   []float64
	}{
		{0, 10, 5, []float64{0, 2, 4, 6, 8, 10}},
		{0.13, 0.91, 4, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{1, 20, 6, []float64{0, 5, 10, 15, 20}},
		{2.31, 2.37, 3, []float64{2.3, 2.32, 2.34, 2.36, 2.38}},
		{-3, 3, 3, []float64{-4, -2, 0, 2, 4}},
		{5, 5, 3, nil},
		{0, math.NaN(), 3, nil},
	} {
		got := Ticks(tc.lo, tc.hi, tc.n)
		if len(got) != len(tc.want) {
			t.Errorf("Ticks(%g, %g, %d) = %v, want %v", tc.lo, tc.hi, tc.n, got, tc.want)
			continue
		}
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-9 {
				t.Errorf("Ticks(%g, %g, %d) = %v, want %v", tc.lo, tc.hi, tc.n, got, tc.want)
				break
			}
		}
		if len(got) > 0 && (got[0] > tc.lo || got[len(got)-1] < tc.hi) {
			t.Errorf("Ticks(%g, %g, %d) = %v does not cover the range", tc.lo, tc.hi, tc.n, got)
		}
	}
}

func TestFormatTick(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 2: "2", 0.25: "0.25", 1.5e-5: "1.5e-05", 12345: "1.234e+04", 2e6: "2e+06", -0.3: "-0.3"} {
		if got := FormatTick(v); got != want {
			t.Errorf("FormatTick(%g) = %q, want %q", v, got, want)
		}
	}
}

// parse checks that s is well-formed XML and returns the element names and the <polyline>
// point lists in document order.
func parse(t *testing.T, s string) (elems []string, polylines [][]string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed SVG: %v\n%s", err, s)
		}
		if se, ok := tok.(xml.StartElement); ok {
			elems = append(elems, se.Name.Local)
			if se.Name.Local == "polyline" {
				for _, a := range se.Attr {
					if a.Name.Local == "points" {
						polylines = append(polylines, strings.Fields(a.Value))
					}
				}
			}
		}
	}
	return elems, polylines
}

func TestLineChartSVG(t *testing.T) {
	c := &LineChart{Title: "loss <train>", XLabel: "step", YLabel: "loss", Series: []Series{
		{Name: "train", X: []float64{1, 2, 3, 4}, Y: []float64{3, 2.5, math.NaN(), 1}},
		{Name: "eval", X: []float64{1, 4}, Y: []float64{3.2, 1.4}},
	}}
	s := c.SVG()
	elems, lines := parse(t, s)
	if elems[0] != "svg" {
		t.Fatalf("root element %q", elems[0])
	}
	if !strings.Contains(s, "loss &lt;train&gt;") {
		t.Error("title not escaped")
	}
	// The NaN breaks the first series into [1,2] and [4] (a single point draws no line), so
	// two polylines: the first series' first part and the second series.
	if len(lines) != 2 || len(lines[0]) != 2 || len(lines[1]) != 2 {
		t.Fatalf("polylines %v", lines)
	}
	// The first point is at the left edge of the plot, and y decreases upward.
	var x0, y0, x1, y1 float64
	mustScan(t, lines[0][0], &x0, &y0)
	mustScan(t, lines[0][1], &x1, &y1)
	if x0 != marginLeft || !(x1 > x0) || !(y1 > y0) {
		t.Errorf("points %v: want x0=%d, x increasing, lower loss lower on screen (greater y)", lines[0], marginLeft)
	}
	if !strings.Contains(s, ">eval</text>") || !strings.Contains(s, ">train</text>") {
		t.Error("legend missing")
	}
}

func mustScan(t *testing.T, pt string, x, y *float64) {
	t.Helper()
	var err error
	parts := strings.Split(pt, ",")
	if len(parts) != 2 {
		t.Fatalf("point %q", pt)
	}
	if _, err = fmtSscan(parts[0], x); err == nil {
		_, err = fmtSscan(parts[1], y)
	}
	if err != nil {
		t.Fatalf("point %q: %v", pt, err)
	}
}

func TestLineChartEmptyAndFlat(t *testing.T) {
	s := (&LineChart{}).SVG()
	parse(t, s)
	if !strings.Contains(s, "no data yet") {
		t.Error("empty chart should say so")
	}
	flat := &LineChart{Series: []Series{{X: []float64{1}, Y: []float64{2}}}}
	elems, lines := parse(t, flat.SVG())
	if len(lines) != 0 {
		t.Errorf("one point drew a line: %v", lines)
	}
	circles := 0
	for _, e := range elems {
		if e == "circle" {
			circles++
		}
	}
	if circles != 1 {
		t.Errorf("%d circles for one point", circles)
	}
	if !reflect.DeepEqual(flat.Series[0].X, []float64{1}) {
		t.Error("SVG modified its input")
	}
}

func fmtSscan(s string, v *float64) (int, error) { return fmt.Sscan(s, v) }
