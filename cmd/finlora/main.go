// Command finlora is the one binary of the project: the Jupyter kernel, its installer, and the
// command-line tools (tokenize, logits, generate, train, eval, quantize, bench, doctor, ...).
//
// Each subcommand lives in a file of its own in this folder and registers itself in init with
// register; main only dispatches.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
)

// command is one subcommand: its name as typed, a one-line summary for the usage text, and the
// function that runs it with the arguments after the name.
type command struct {
	name    string
	summary string
	run     func(args []string) error
}

var commands = map[string]command{}

// register adds a subcommand; it panics on a duplicate name, a programming error caught at start-up.
func register(name, summary string, run func(args []string) error) {
	if _, dup := commands[name]; dup {
		panic("finlora: subcommand registered twice: " + name)
	}
	commands[name] = command{name: name, summary: summary, run: run}
}

// errUsage marks an error caused by bad command-line arguments: main exits 2 for it.
var errUsage = errors.New("usage")

// parseFlags parses a subcommand's args into fs (made with flag.ContinueOnError). -h/--help comes
// back as flag.ErrHelp itself (fs has printed its usage; main exits 0); any other parse error is
// wrapped with errUsage (exit 2).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: finlora <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-16s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nrun 'finlora <command> -h' for a command's flags")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "finlora: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := c.run(os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "finlora %s: %v\n", c.name, err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
