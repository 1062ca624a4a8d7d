package display

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"image/png"
	"regexp"
	"strings"
)

// MIMEBundler is implemented by values that render themselves: MIMEBundle returns a map from
// MIME type ("text/html", "image/png" as base64 text, "application/json" as a JSON-able value,
// ...) to content. A "text/plain" entry is added when missing.
type MIMEBundler interface {
	MIMEBundle() map[string]any
}

// HTMLer is implemented by values with an HTML rendering (a fragment, not a whole page).
type HTMLer interface {
	HTML() string
}

// Markdowner is implemented by values with a Markdown rendering.
type Markdowner interface {
	Markdown() string
}

// SVGer is implemented by values with an SVG rendering (an <svg> document as text).
type SVGer interface {
	SVG() string
}

// PNGer is implemented by values with a PNG rendering (the encoded file bytes).
type PNGer interface {
	PNG() []byte
}

// Displayed is implemented by values that have already published themselves (a *Handle, a
// *Progress): the evaluator does not show them again as a cell's result.
type Displayed interface {
	DisplayID() string
}

// BundleOf returns the MIME bundle of v: the entries of the rendering interfaces v implements
// (MIMEBundler first, then HTMLer, Markdowner, SVGer, PNGer) plus "text/plain" (fmt's %v, unless
// a MIMEBundle provides one). The returned map is new; the caller may change it.
func BundleOf(v any) map[string]any {
	b := map[string]any{}
	if m, ok := v.(MIMEBundler); ok {
		for k, x := range m.MIMEBundle() {
			b[k] = x
		}
	}
	if h, ok := v.(HTMLer); ok {
		setIfMissing(b, "text/html", h.HTML())
	}
	if m, ok := v.(Markdowner); ok {
		setIfMissing(b, "text/markdown", m.Markdown())
	}
	if s, ok := v.(SVGer); ok {
		setIfMissing(b, "image/svg+xml", s.SVG())
	}
	if p, ok := v.(PNGer); ok {
		setIfMissing(b, "image/png", base64.StdEncoding.EncodeToString(p.PNG()))
	}
	if _, ok := b["text/plain"]; !ok {
		b["text/plain"] = fmt.Sprintf("%v", v)
	}
	return b
}

func setIfMissing(b map[string]any, k string, v any) {
	if _, ok := b[k]; !ok {
		b[k] = v
	}
}

var (
	reBreak = regexp.MustCompile(`(?i)<\s*(br|/tr|/p|/div|/h[1-6]|/li|/caption|hr)\b[^>]*>`)
	reCell  = regexp.MustCompile(`(?i)<\s*/t[dh]\s*>`)
	reTag   = regexp.MustCompile(`(?s)<[^>]*>`)
	reBlank = regexp.MustCompile(`\n[ \t]*\n+`)
)

// PlainFromHTML returns a terminal rendering of an HTML fragment: tags dropped, table cells
// separated by tabs, rows and blocks by line ends, entities decoded.
func PlainFromHTML(s string) string {
	s = reBreak.ReplaceAllString(s, "\n")
	s = reCell.ReplaceAllString(s, "\t")
	s = reTag.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	s = reBlank.ReplaceAllString(s, "\n")
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(strings.TrimSpace(l), "\t")
	}
	return strings.Join(lines, "\n")
}

func htmlBundle(s string) (map[string]any, error) {
	return map[string]any{"text/html": s, "text/plain": PlainFromHTML(s)}, nil
}

func markdownBundle(s string) (map[string]any, error) {
	return map[string]any{"text/markdown": s, "text/plain": s}, nil
}

func textBundle(s string) (map[string]any, error) {
	return map[string]any{"text/plain": s}, nil
}

func svgBundle(s string) (map[string]any, error) {
	if !strings.Contains(s, "<svg") {
		return nil, fmt.Errorf("display SVG: no <svg element in %d bytes of text", len(s))
	}
	return map[string]any{"image/svg+xml": s, "text/plain": fmt.Sprintf("<SVG image, %d bytes>", len(s))}, nil
}

func pngBundle(p []byte) (map[string]any, error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(p))
	if err != nil {
		return nil, fmt.Errorf("display PNG: %d bytes are not a PNG file: %w", len(p), err)
	}
	return map[string]any{
		"image/png":  base64.StdEncoding.EncodeToString(p),
		"text/plain": fmt.Sprintf("<PNG image %dx%d, %d bytes>", cfg.Width, cfg.Height, len(p)),
	}, nil
}

func jsonBundle(v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("display JSON of %T: %w", v, err)
	}
	var generic any // what a JSON decoder gives: maps, slices, float64, string, bool, nil
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, fmt.Errorf("display JSON of %T: %w", v, err)
	}
	pretty, _ := json.MarshalIndent(generic, "", "  ")
	return map[string]any{"application/json": generic, "text/plain": string(pretty)}, nil
}
