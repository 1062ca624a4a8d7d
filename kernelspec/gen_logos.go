//go:build ignore

// gen_logos draws the kernel's two logos (logo-32x32.png, logo-64x64.png) with image/png:
// a Go-cyan rounded square with a white rising price line. Run once with
//
//	go run gen_logos.go
//
// and commit the PNGs (they are embedded by kernelspec.go).
package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"math"
	"os"
)

func main() {
	for _, n := range []int{32, 64} {
		if err := write(n); err != nil {
			log.Fatal(err)
		}
	}
}

func write(n int) error {
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	bg := color.NRGBA{0x00, 0xAD, 0xD8, 0xFF} // Go cyan
	fg := color.NRGBA{0xFF, 0xFF, 0xFF, 0xFF}
	r := float64(n) * 0.2 // corner radius
	s := float64(n)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			fx, fy := float64(x)+0.5, float64(y)+0.5
			cx := math.Max(r, math.Min(s-r, fx))
			cy := math.Max(r, math.Min(s-r, fy))
			if math.Hypot(fx-cx, fy-cy) <= r {
				img.SetNRGBA(x, y, bg)
			}
		}
	}
	// A rising line through these points (fractions of the size), drawn thick.
	pts := [][2]float64{{0.18, 0.72}, {0.38, 0.52}, {0.52, 0.62}, {0.82, 0.28}}
	width := s * 0.07
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			p := [2]float64{float64(x) + 0.5, float64(y) + 0.5}
			for i := 0; i+1 < len(pts); i++ {
				a := [2]float64{pts[i][0] * s, pts[i][1] * s}
				b := [2]float64{pts[i+1][0] * s, pts[i+1][1] * s}
				if segDist(p, a, b) <= width {
					img.SetNRGBA(x, y, fg)
				}
			}
		}
	}
	f, err := os.Create(fmt.Sprintf("logo-%dx%d.png", n, n))
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func segDist(p, a, b [2]float64) float64 {
	dx, dy := b[0]-a[0], b[1]-a[1]
	t := ((p[0]-a[0])*dx + (p[1]-a[1])*dy) / (dx*dx + dy*dy)
	t = math.Max(0, math.Min(1, t))
	return math.Hypot(p[0]-(a[0]+t*dx), p[1]-(a[1]+t*dy))
}
