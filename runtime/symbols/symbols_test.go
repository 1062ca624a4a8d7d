package symbols

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/traefik/yaegi/extract"
)

// generatedPackages returns the import paths named by the go:generate lines of symbols.go.
func generatedPackages(t *testing.T) []string {
	f, err := os.Open("symbols.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pkgs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "//go:generate ") || !strings.Contains(line, " extract ") {
			continue
		}
		fields := strings.Fields(line)
		pkgs = append(pkgs, fields[len(fields)-1])
	}
	if len(pkgs) == 0 {
		t.Fatal("symbols.go has no go:generate extract lines")
	}
	return pkgs
}

// TestSymbolsUpToDate regenerates every package's symbols in memory (what `go generate` writes)
// and compares them with the checked-in files; it fails when a package's API changed and
// `go generate ./runtime/symbols/` was not run, or when a generated file has no go:generate line.
func TestSymbolsUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the project's packages from source")
	}
	want := map[string]bool{}
	r := strings.NewReplacer("/", "-", ".", "_", "~", "_")
	ext := extract.Extractor{Dest: "symbols"}
	for _, pkg := range generatedPackages(t) {
		var buf bytes.Buffer
		importPath, err := ext.Extract(pkg, "symbols", &buf)
		if err != nil {
			t.Errorf("extract %s: %v", pkg, err)
			continue
		}
		name := r.Replace(importPath) + ".go"
		want[name] = true
		have, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s: %v (run go generate ./runtime/symbols/)", name, err)
			continue
		}
		if !bytes.Equal(have, buf.Bytes()) {
			t.Errorf("%s is stale: run go generate ./runtime/symbols/", name)
		}
	}
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "symbols.go" {
			continue
		}
		if !want[f] {
			t.Errorf("%s has no go:generate line in symbols.go: delete it or add the line", f)
		}
	}
}
