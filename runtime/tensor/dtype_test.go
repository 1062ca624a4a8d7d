package tensor

import (
	"errors"
	"math"
	"math/rand"
	"sort"
	"testing"
)

// Every finite or infinite half and bfloat16 survives widening and narrowing; NaNs stay NaN.
func TestHalfRoundTripExhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToFloat32(uint16(h))
		if math.IsNaN(float64(f)) {
			if g := F16ToFloat32(Float32ToF16(f)); !math.IsNaN(float64(g)) {
				t.Fatalf("f16 NaN %#04x came back as %g", h, g)
			}
		} else if back := Float32ToF16(f); back != uint16(h) {
			t.Fatalf("f16 %#04x -> %g -> %#04x", h, f, back)
		}
		b := BF16ToFloat32(uint16(h))
		if math.IsNaN(float64(b)) {
			if g := BF16ToFloat32(Float32ToBF16(b)); !math.IsNaN(float64(g)) {
				t.Fatalf("bf16 NaN %#04x came back as %g", h, g)
			}
		} else if back := Float32ToBF16(b); back != uint16(h) {
			t.Fatalf("bf16 %#04x -> %g -> %#04x", h, b, back)
		}
	}
}

func TestNarrowingRoundsToNearestEven(t *testing.T) {
	cases := []struct {
		f        float32
		bf, half uint16
	}{
		{1, 0x3f80, 0x3c00},
		{1 + 1.0/256, 0x3f80, 0x3c04},          // bf16 tie (1 + half an ulp) goes to even 1.0
		{1 + 3.0/256, 0x3f82, 0x3c0c},          // bf16 tie goes up to even 0x3f82
		{1 + 1.0/2048, 0x3f80, 0x3c00},         // f16 tie goes to even
		{1 + 3.0/2048, 0x3f80, 0x3c02},         // f16 tie goes up to even
		{65520, 0x4780, 0x7c00},                // f16 overflow rounds to +inf
		{float32(math.Pow(2, -25)), 0x3300, 0}, // f16: exactly half the smallest subnormal: to even 0
		{float32(math.Pow(2, -24)), 0x3380, 1}, // smallest f16 subnormal
		{-2, 0xc000, 0xc000},
	}
	for _, c := range cases {
		if got := Float32ToBF16(c.f); got != c.bf {
			t.Errorf("Float32ToBF16(%g) = %#04x, want %#04x", c.f, got, c.bf)
		}
		if got := Float32ToF16(c.f); got != c.half {
			t.Errorf("Float32ToF16(%g) = %#04x, want %#04x", c.f, got, c.half)
		}
	}
}

// nearestOracle rounds x to the nearest of the sorted finite values vals (ties to the even bit
// pattern, i.e. pattern&1 == 0), or to ±Inf past the largest value plus half an ulp, by search.
func nearestOracle(x float64, vals []float64, pats []uint16, inf uint16, halfUlpMax float64) uint16 {
	if math.Abs(x) >= vals[len(vals)-1]+halfUlpMax {
		if x < 0 {
			return inf | 0x8000
		}
		return inf
	}
	i := sort.SearchFloat64s(vals, x)
	best := -1
	for _, j := range []int{i - 1, i} {
		if j < 0 || j >= len(vals) {
			continue
		}
		if best < 0 {
			best = j
			continue
		}
		db, dj := math.Abs(vals[best]-x), math.Abs(vals[j]-x)
		if dj < db || (dj == db && pats[j]&1 == 0) {
			best = j
		}
	}
	return pats[best]
}

func TestFloat32RoundingAgainstOracle(t *testing.T) {
	type format struct {
		name   string
		widen  func(uint16) float32
		narrow func(float32) uint16
		inf    uint16
	}
	for _, fm := range []format{
		{"bf16", BF16ToFloat32, Float32ToBF16, 0x7f80},
		{"f16", F16ToFloat32, Float32ToF16, 0x7c00},
	} {
		t.Run(fm.name, func(t *testing.T) {
			// All non-negative finite values, sorted, with their patterns.
			var vals []float64
			var pats []uint16
			for h := 0; h < 0x8000; h++ {
				v := float64(fm.widen(uint16(h)))
				if math.IsInf(v, 0) || math.IsNaN(v) {
					continue
				}
				vals = append(vals, v)
				pats = append(pats, uint16(h))
			}
			maxv := vals[len(vals)-1]
			halfUlp := (maxv - vals[len(vals)-2]) / 2
			r := rand.New(rand.NewSource(1))
			check := func(x float32) {
				want := nearestOracle(math.Abs(float64(x)), vals, pats, fm.inf, halfUlp)
				if math.Signbit(float64(x)) {
					want |= 0x8000
				}
				if got := fm.narrow(x); got != want {
					t.Fatalf("%s(%v = %#08x) = %#04x, want %#04x", fm.name, x, math.Float32bits(x), got, want)
				}
			}
			for i := 0; i < 200000; i++ {
				check(math.Float32frombits(r.Uint32() & 0x7f7fffff)) // finite, random magnitude
				// midpoints and their neighbours
				j := r.Intn(len(vals) - 1)
				mid := float32((vals[j] + vals[j+1]) / 2)
				check(mid)
				check(math.Nextafter32(mid, 0))
				check(math.Nextafter32(mid, float32(math.Inf(1))))
				check(-mid)
			}
			check(float32(maxv + halfUlp))
			check(math.Nextafter32(float32(maxv+halfUlp), 0))
		})
	}
}

func TestParseDType(t *testing.T) {
	for in, want := range map[string]DType{"float32": F32, "torch.bfloat16": BF16, "BF16": BF16, "f16": F16, "int32": I32, "U8": U8} {
		if got, err := ParseDType(in); err != nil || got != want {
			t.Errorf("ParseDType(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseDType("complex64"); err == nil {
		t.Error("ParseDType(complex64) succeeded")
	}
}

func TestViewShapes(t *testing.T) {
	x := NewTensor(nil, F32, []int{2, 3, 4}, []float32{})
	v, err := x.View(6, -1)
	if err != nil || v.Dim(0) != 6 || v.Dim(1) != 4 || !v.IsView() || v.Rows() != 6 || v.Cols() != 4 {
		t.Fatalf("View(6, -1) = %v, %v", v, err)
	}
	for _, bad := range [][]int{{5, -1}, {-1, -1}, {25}, {-2, 12}} {
		if _, err := x.View(bad...); !errors.Is(err, ErrShape) {
			t.Errorf("View(%v) = %v, want ErrShape", bad, err)
		}
	}
	if err := v.Free(); err != nil || !v.Freed() || x.Freed() {
		t.Errorf("freeing a view: %v (view freed %v, base freed %v)", err, v.Freed(), x.Freed())
	}
}
