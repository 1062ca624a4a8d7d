package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/finlora/finlora/runtime/tokenizer"
)

func init() {
	register("tokenize", "tokenize a JSON array of strings (stdin) into a JSON array of id arrays (stdout)", runTokenize)
}

// runTokenize is `finlora tokenize --tokenizer DIR [--no-special]`.
func runTokenize(args []string) error {
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	dir := fs.String("tokenizer", "", "directory holding tokenizer.json (and tokenizer_config.json)")
	noSpecial := fs.Bool("no-special", false, "do not add the special tokens of the post-processor (e.g. BOS)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: finlora tokenize --tokenizer DIR [--no-special] < strings.json > ids.json")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("%w: --tokenizer DIR is required", errUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	tk, err := tokenizer.LoadDir(*dir)
	if err != nil {
		return err
	}
	return tokenizeJSON(tk, !*noSpecial, os.Stdin, os.Stdout)
}

// tokenizeJSON reads a JSON array of strings from in and writes the ids of each, as compact JSON
// ([[1,2],[3]]) followed by a newline, to out.
func tokenizeJSON(tk tokenizer.Tokenizer, addSpecial bool, in io.Reader, out io.Writer) error {
	var texts []string
	if err := json.NewDecoder(in).Decode(&texts); err != nil {
		return fmt.Errorf("tokenize: reading stdin: want a JSON array of strings: %w", err)
	}
	ids := make([][]int, len(texts))
	for i, s := range texts {
		ids[i] = tk.Encode(s, addSpecial)
		if ids[i] == nil {
			ids[i] = []int{}
		}
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	if _, err := out.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("tokenize: writing stdout: %w", err)
	}
	return nil
}
