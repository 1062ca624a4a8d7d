//go:build !unix

package interp

import "os"

type streamSink interface {
	Stream(name, text string)
}

// stdio does not redirect descriptors on this platform: output of compiled code is not captured.
type stdio struct{ sink streamSink }

var capture = &stdio{}

// LogWriter returns the process's standard error (output is not captured on this platform).
func LogWriter() *os.File { return os.Stderr }

// OriginalStdout returns the process's standard output.
func OriginalStdout() *os.File { return os.Stdout }

func (s *stdio) acquire() error { return nil }
func (s *stdio) release()       {}
func (s *stdio) flush()         {}
func (s *stdio) setSink(sink streamSink) streamSink {
	prev := s.sink
	s.sink = sink
	return prev
}
