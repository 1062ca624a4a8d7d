package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/finlora/finlora/kernel"
)

func init() {
	register("kernel", "serve the Jupyter kernel (Jupyter starts it from kernel.json)", runKernel)
}

// runKernel implements: finlora kernel --connection-file FILE. It serves until the front end
// sends shutdown_request or the process gets SIGTERM/SIGHUP; SIGINT interrupts the running cell.
func runKernel(args []string) error {
	fs := flag.NewFlagSet("kernel", flag.ContinueOnError)
	connFile := fs.String("connection-file", "", "Jupyter connection `FILE` (written by the front end)")
	history := fs.String("history", "", "history `FILE` (default: finlora/history.jsonl in the Jupyter data dir; - for none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *connFile == "" && fs.NArg() == 1 { // also accept the file as the only argument
		*connFile = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *connFile == "" {
		return fmt.Errorf("%w: --connection-file is required", errUsage)
	}
	info, err := kernel.ReadConnectionFile(*connFile)
	if err != nil {
		return err
	}
	ev, logw, err := newEvaluator()
	if err != nil {
		return fmt.Errorf("start the Go interpreter: %w", err)
	}
	k, err := kernel.New(info, ev, kernel.WithVersion(version), kernel.WithHistoryFile(*history), kernel.WithLog(logw))
	if err != nil {
		return err
	}
	defer k.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	// A Ctrl-C in the terminal that started Jupyter reaches the kernel too: treat it as an
	// interrupt of the running cell, never as a reason to exit.
	sigint := make(chan os.Signal, 1)
	signal.Notify(sigint, os.Interrupt)
	defer signal.Stop(sigint)
	go func() {
		for range sigint {
			k.Interrupt()
		}
	}()
	if err := k.Run(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
