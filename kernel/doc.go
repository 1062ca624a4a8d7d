// Package kernel speaks the Jupyter messaging protocol (version 5.3) over ZeroMQ
// (github.com/go-zeromq/zmq4) for a language runtime behind the Evaluator interface.
//
// The package is split the way the protocol is layered:
//
//   - connection.go: the connection file a front end writes (ports, transport, HMAC key).
//   - wire.go, signer.go: message framing [ids…, "<IDS|MSG>", hmac, header, parent_header,
//     metadata, content, buffers…] and HMAC-SHA256 signing and verification.
//   - sockets.go: the five sockets (shell, control, stdin ROUTER; iopub PUB; heartbeat REP).
//   - kernel.go: New, Run, Close and Serve; the loops that read each socket.
//   - shell.go, execute.go, control.go, stdin.go: the request handlers.
//   - output.go: what a running cell writes, coalesced into stream messages.
//   - history.go: the execution history, kept in a JSON-lines file across restarts.
//
// The kernel knows nothing of LLMs or of yaegi: cmd/finlora joins it to runtime/interp.
// No request, however malformed, stops the kernel: bad frames and bad signatures are dropped and
// logged, and a panic inside a handler or the Evaluator is recovered and reported to the client.
package kernel
