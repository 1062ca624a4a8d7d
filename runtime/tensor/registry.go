package tensor

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
)

// Factory makes a backend. Name is the full name asked for ("cuda:1"): a factory registered as
// "cuda" receives every "cuda:N".
type Factory func(name string) (Backend, error)

var (
	regMu     sync.Mutex
	factories = map[string]Factory{}
	instances = map[string]Backend{}
)

// Register makes a backend kind available under name (e.g. "cpu", "cuda"); backends register in
// their package's init. Registering a name twice panics (a programming error).
func Register(name string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := factories[name]; dup {
		panic("tensor: backend registered twice: " + name)
	}
	factories[name] = f
}

// Registered lists the registered backend kinds, sorted.
func Registered() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Get returns the backend named name ("cpu", "cuda", "cuda:1"), creating it on first use; later
// calls return the same instance (a device is opened once per process). Importing the backend's
// package (e.g. `_ "github.com/finlora/finlora/runtime/tensor/cpu"`) registers it.
func Get(name string) (Backend, error) {
	regMu.Lock()
	defer regMu.Unlock()
	if b, ok := instances[name]; ok {
		return b, nil
	}
	kind, _, _ := strings.Cut(name, ":")
	f, ok := factories[kind]
	if !ok {
		names := make([]string, 0, len(factories))
		for n := range factories {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("tensor: no backend %q (registered: %s)", name, strings.Join(names, ", "))
	}
	b, err := f(name)
	if err != nil {
		return nil, fmt.Errorf("tensor: open backend %q: %w", name, err)
	}
	instances[name] = b
	return b, nil
}

// Default returns the backend named by $FINLORA_DEVICE when set; otherwise "cuda" when registered
// and it opens, else "cpu".
func Default() (Backend, error) {
	if d := strings.TrimSpace(os.Getenv("FINLORA_DEVICE")); d != "" {
		return Get(d)
	}
	regMu.Lock()
	_, hasCUDA := factories["cuda"]
	regMu.Unlock()
	if hasCUDA {
		if b, err := Get("cuda"); err == nil {
			return b, nil
		}
	}
	return Get("cpu")
}
