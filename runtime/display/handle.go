package display

import (
	"fmt"
	"sync"

	"github.com/google/uuid"
)

// Handle is one output shown in a cell that can be re-rendered in place. It is safe for
// concurrent use. A Handle is created by HTML, Markdown, PNG, SVG, JSON, Text, Show or Raw.
type Handle struct {
	mu     sync.Mutex
	id     string
	pub    Publisher                         // the publisher it was first shown on; nil: terminal
	render func(any) (map[string]any, error) // content → MIME bundle, by kind
	err    error                             // the last rendering error
}

func newHandle(render func(any) (map[string]any, error), content any) *Handle {
	h := &Handle{id: uuid.NewString(), pub: Current(), render: render}
	h.publish(content, false)
	return h
}

// DisplayID returns the Jupyter display_id of the output (a UUID).
func (h *Handle) DisplayID() string { return h.id }

// Err returns the error of the last rendering (for example bytes that are not a PNG file), or nil.
// A failed rendering shows the error text in place of the output.
func (h *Handle) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// Update re-renders the output in place with new content of the handle's kind: a string for
// HTML, Markdown, SVG and Text; []byte for PNG; any JSON-able value for JSON; any value for Show;
// a map[string]any MIME bundle for Raw. In a notebook this sends update_display_data with the
// handle's display id (through the running cell's publisher if there is one, else the one the
// handle was shown on); in a terminal it prints the new content. It returns the rendering error.
func (h *Handle) Update(content any) error {
	return h.publish(content, true)
}

// String returns a short description, so a Handle printed with %v does not dump its fields.
func (h *Handle) String() string { return "display " + h.id }

func (h *Handle) publish(content any, update bool) error {
	data, err := h.render(content)
	if err != nil {
		data = map[string]any{"text/plain": err.Error()}
	}
	h.mu.Lock()
	h.err = err
	p := Current()
	if p == nil {
		p = h.pub
	}
	if p == nil && h.pub == nil {
		h.mu.Unlock()
		fmt.Fprintln(termOut, data["text/plain"])
		return err
	}
	h.mu.Unlock()
	p.Display(data, map[string]any{}, h.id, update)
	return err
}

// HTML shows an HTML fragment. Terminal: the text without tags.
func HTML(html string) *Handle {
	return newHandle(fromString("HTML", htmlBundle), html)
}

// Markdown shows Markdown text (rendered by the front end). Terminal: the source text.
func Markdown(md string) *Handle {
	return newHandle(fromString("Markdown", markdownBundle), md)
}

// Text shows plain text as a display output (unlike fmt.Print, it can be updated in place).
func Text(text string) *Handle {
	return newHandle(fromString("Text", textBundle), text)
}

// SVG shows an SVG image given as the text of an <svg> document. Terminal: its size.
func SVG(svg string) *Handle {
	return newHandle(fromString("SVG", svgBundle), svg)
}

// PNG shows a PNG image given as the bytes of the file; it is not copied (do not change it
// while shown). Terminal: its dimensions.
func PNG(png []byte) *Handle {
	return newHandle(func(c any) (map[string]any, error) {
		b, ok := c.([]byte)
		if !ok {
			return nil, fmt.Errorf("display PNG: update with %T, want []byte", c)
		}
		return pngBundle(b)
	}, png)
}

// JSON shows v as JSON (application/json, a collapsible tree in JupyterLab); v must be
// encodable by encoding/json. Terminal: indented JSON.
func JSON(v any) *Handle {
	return newHandle(jsonBundle, v)
}

// Show shows any value with its richest rendering (see BundleOf).
func Show(v any) *Handle {
	return newHandle(func(c any) (map[string]any, error) { return BundleOf(c), nil }, v)
}

// Raw shows a MIME bundle as given (a "text/plain" entry is recommended for terminals).
func Raw(bundle map[string]any) *Handle {
	return newHandle(func(c any) (map[string]any, error) {
		b, ok := c.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("display Raw: update with %T, want map[string]any", c)
		}
		if _, ok := b["text/plain"]; !ok {
			b2 := map[string]any{"text/plain": ""}
			for k, v := range b {
				b2[k] = v
			}
			b = b2
		}
		return b, nil
	}, bundle)
}

// fromString makes newHandle's render function from a bundle function of text: the content (the
// first one or an Update's) must be a string or a fmt.Stringer; any other is an error naming kind.
func fromString(kind string, bundle func(string) (map[string]any, error)) func(any) (map[string]any, error) {
	return func(c any) (map[string]any, error) {
		s, err := asString(kind, c)
		if err != nil {
			return nil, err
		}
		return bundle(s)
	}
}

func asString(kind string, c any) (string, error) {
	switch s := c.(type) {
	case string:
		return s, nil
	case fmt.Stringer:
		return s.String(), nil
	}
	return "", fmt.Errorf("display %s: update with %T, want string", kind, c)
}
