package tensor

import (
	"errors"
	"math"
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
