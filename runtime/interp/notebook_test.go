package interp

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	reExpect      = regexp.MustCompile(`(?m)^\s*// expect: (.+)$`)
	reExpectError = regexp.MustCompile(`(?m)^\s*// expect-error: (.+)$`)
)

// TestTourNotebook runs the code cells of notebooks/00-kernel-tour.ipynb through the evaluator
// (no Jupyter needed) and checks the notebook convention: every "// expect: TEXT" appears in the
// cell's outputs, and only cells marked "// expect-error: TEXT" (and tagged raises-exception, as
// nbclient wants) fail, with TEXT in the error.
func TestTourNotebook(t *testing.T) {
	raw, err := os.ReadFile("../../notebooks/00-kernel-tour.ipynb")
	if err != nil {
		t.Fatal(err)
	}
	var nb struct {
		Cells []struct {
			Type     string   `json:"cell_type"`
			Source   []string `json:"source"`
			Metadata struct {
				Tags []string `json:"tags"`
			} `json:"metadata"`
		} `json:"cells"`
		Metadata struct {
			Kernelspec struct{ Name, Language string } `json:"kernelspec"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &nb); err != nil {
		t.Fatal(err)
	}
	if nb.Metadata.Kernelspec.Name != "finlora" || nb.Metadata.Kernelspec.Language != "go" {
		t.Errorf("kernelspec %+v", nb.Metadata.Kernelspec)
	}
	e := newEval(t)
	for i, c := range nb.Cells {
		if c.Type != "code" {
			continue
		}
		src := strings.Join(c.Source, "")
		out := newFake()
		res, err := e.Execute(context.Background(), src, out)
		var all strings.Builder
		all.WriteString(out.stdout() + out.stderr())
		for _, d := range out.displays {
			for _, v := range d.data {
				fmt.Fprintf(&all, "%v\n", v)
			}
		}
		for _, v := range res {
			fmt.Fprintf(&all, "%v\n", v)
		}
		wantErr := reExpectError.FindStringSubmatch(src)
		if tagged := slices.Contains(c.Metadata.Tags, "raises-exception"); tagged != (wantErr != nil) {
			t.Errorf("cell %d: expect-error %v but raises-exception tag %v (nbconvert stops at an untagged error)", i, wantErr != nil, tagged)
		}
		switch {
		case err != nil && wantErr == nil:
			t.Errorf("cell %d failed: %v\n%s", i, err, src)
			continue
		case err == nil && wantErr != nil:
			t.Errorf("cell %d: no error, want one with %q", i, wantErr[1])
		case err != nil:
			ce := err.(*Error)
			text := ce.Name + ": " + ce.Value + "\n" + strings.Join(ce.Traceback(), "\n")
			if !strings.Contains(text, wantErr[1]) {
				t.Errorf("cell %d: error %q lacks %q", i, text, wantErr[1])
			}
		}
		for _, m := range reExpect.FindAllStringSubmatch(src, -1) {
			if !strings.Contains(all.String(), m[1]) {
				t.Errorf("cell %d: outputs lack %q:\n%s", i, m[1], all.String())
			}
		}
	}
}
