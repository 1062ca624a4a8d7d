// Package modeltest finds, for tests, the real models scripts/install-model.sh installs
// ($FINLORA_HOME/models/NAME/model.gguf, FINLORA_HOME defaulting to ~/.cache/finlora, as
// runtime.ModelHome). It imports nothing of the project, so every package's tests can use it.
package modeltest

import (
	"os"
	"path/filepath"
	"testing"
)

// Path returns the installed model file NAME ("gemma3-270m", "smollm2-135m"), or "" when it is
// not installed.
func Path(name string) string {
	home := os.Getenv("FINLORA_HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			home = filepath.Join(os.TempDir(), "finlora")
		} else {
			home = filepath.Join(h, ".cache", "finlora")
		}
	}
	p := filepath.Join(home, "models", name, "model.gguf")
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return ""
	}
	return p
}

// Require returns the installed model file NAME; when it is absent the test is skipped, or fails
// with FINLORA_REQUIRE_MODEL=1 (CI installs the models and sets it).
func Require(t testing.TB, name string) string {
	t.Helper()
	p := Path(name)
	if p == "" {
		if os.Getenv("FINLORA_REQUIRE_MODEL") == "1" {
			t.Fatalf("FINLORA_REQUIRE_MODEL=1 but model %s is not installed (scripts/install-model.sh)", name)
		}
		t.Skipf("model %s is not installed (scripts/install-model.sh)", name)
	}
	return p
}
