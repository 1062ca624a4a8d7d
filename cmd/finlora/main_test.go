package main

import (
	"errors"
	"flag"
	"testing"
)

// -h on a subcommand is a request for its flags, not a usage error: run returns flag.ErrHelp (main
// exits 0); a bad flag is errUsage (exit 2).
func TestSubcommandHelpAndBadFlag(t *testing.T) {
	for _, name := range []string{"tokenize", "logits", "generate", "quantize", "gguf", "eval", "install-kernel", "kernel", "doctor", "train", "demo", "bench", "experiment"} {
		c, ok := commands[name]
		if !ok {
			t.Errorf("%s: not registered", name)
			continue
		}
		if err := c.run([]string{"-h"}); !errors.Is(err, flag.ErrHelp) || errors.Is(err, errUsage) {
			t.Errorf("%s -h: %v, want flag.ErrHelp", name, err)
		}
		if err := c.run([]string{"--no-such-flag"}); !errors.Is(err, errUsage) {
			t.Errorf("%s --no-such-flag: %v, want errUsage", name, err)
		}
	}
}
