package kernel

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// shellLoop handles shell requests one at a time, in order, until the kernel stops. After an
// execute_request that failed with stop_on_error, the execute requests already queued are
// answered "aborted" without running (other requests are handled normally) until the queue is
// empty.
func (k *Kernel) shellLoop(q <-chan *Message) {
	aborting := false
	for {
		var m *Message
		if aborting {
			select {
			case m = <-q:
			default:
				aborting = false
				continue
			}
		} else {
			select {
			case m = <-q:
			case <-k.stopped:
				return
			case <-k.ctx.Done():
				return
			}
		}
		select {
		case <-k.stopped:
			return
		default:
		}
		if aborting && m.Header.MsgType == "execute_request" {
			k.abortExecute(m)
			continue
		}
		if failed := k.handleShell(m); failed {
			aborting = true
		}
	}
}

// handleShell answers one shell request between status busy and status idle. It returns true
// when the request was an execute_request that failed and asked to stop on error.
func (k *Kernel) handleShell(m *Message) (abort bool) {
	k.publishStatus("busy", m)
	defer k.publishStatus("idle", m)
	defer k.recoverHandler("shell", m)
	t := m.Header.MsgType
	if t != "shutdown_request" && t != "interrupt_request" {
		k.evMu.Lock()
		defer k.evMu.Unlock()
	}
	switch t {
	case "execute_request":
		return k.handleExecute(m)
	case "kernel_info_request":
		k.send(k.socks.shell, "kernel_info_reply", m, k.kernelInfo())
	case "complete_request":
		k.handleComplete(m)
	case "inspect_request":
		k.handleInspect(m)
	case "is_complete_request":
		k.handleIsComplete(m)
	case "history_request":
		k.handleHistory(m)
	case "comm_info_request":
		k.send(k.socks.shell, "comm_info_reply", m, map[string]any{"status": "ok", "comms": map[string]any{}})
	case "comm_open", "comm_msg", "comm_close":
		// No comm targets are registered: like ipykernel without a target, ignore.
		k.log.Printf("shell: %s ignored (no comm targets)", t)
	case "shutdown_request", "interrupt_request":
		// Accepted on shell too (protocol < 5.2 clients); replies go back on shell.
		k.handleControlRequest(k.socks.shell, m)
	default:
		k.log.Printf("shell: unknown message type %q ignored", t)
	}
	return false
}

// recoverHandler turns a panic in a handler (or in the Evaluator it called) into a log line and,
// for a request, an error reply, so that one bad request never stops the kernel.
func (k *Kernel) recoverHandler(channel string, m *Message) {
	r := recover()
	if r == nil {
		return
	}
	k.log.Printf("%s: panic while handling %s: %v\n%s", channel, m.Header.MsgType, r, debug.Stack())
	if reply, ok := strings.CutSuffix(m.Header.MsgType, "_request"); ok {
		s := k.socks.shell
		if channel == "control" {
			s = k.socks.control
		}
		evalue := fmt.Sprint(r)
		k.send(s, reply+"_reply", m, map[string]any{"status": "error", "ename": "KernelPanic",
			"evalue": evalue, "traceback": []string{"KernelPanic: " + evalue}})
	}
}

// decodeContent unmarshals m's content into v; on failure it answers m with an error reply on
// shell and returns false.
func (k *Kernel) decodeContent(m *Message, v any, replyType string) bool {
	if err := json.Unmarshal(m.Content, v); err != nil {
		evalue := fmt.Sprintf("bad %s content: %v", m.Header.MsgType, err)
		k.log.Printf("shell: %s", evalue)
		k.send(k.socks.shell, replyType, m, map[string]any{"status": "error", "ename": "BadRequest",
			"evalue": evalue, "traceback": []string{"BadRequest: " + evalue}})
		return false
	}
	return true
}

// kernelInfo is the content of kernel_info_reply.
func (k *Kernel) kernelInfo() map[string]any {
	goVersion := strings.TrimPrefix(runtime.Version(), "go")
	banner := k.opt.banner
	if banner == "" {
		banner = fmt.Sprintf("FinLoRA %s: Go cells interpreted by yaegi (host Go %s).\n"+
			"Type %%help in a cell for the kernel's magics.", k.opt.implVersion, goVersion)
	}
	return map[string]any{
		"status":                 "ok",
		"protocol_version":       ProtocolVersion,
		"implementation":         "finlora",
		"implementation_version": k.opt.implVersion,
		"language_info": map[string]any{
			"name":               "go",
			"version":            goVersion,
			"mimetype":           "text/x-go",
			"file_extension":     ".go",
			"pygments_lexer":     "go",
			"codemirror_mode":    "go",
			"nbconvert_exporter": "script",
		},
		"banner":   banner,
		"debugger": false,
		"help_links": []map[string]string{
			{"text": "Go language specification", "url": "https://go.dev/ref/spec"},
			{"text": "Go standard library", "url": "https://pkg.go.dev/std"},
			{"text": "yaegi (the Go interpreter)", "url": "https://github.com/traefik/yaegi"},
		},
	}
}

// handleComplete answers complete_request through the Evaluator.
func (k *Kernel) handleComplete(m *Message) {
	var req struct {
		Code      string `json:"code"`
		CursorPos *int   `json:"cursor_pos"`
	}
	if !k.decodeContent(m, &req, "complete_reply") {
		return
	}
	cursor := clampCursor(req.Code, req.CursorPos)
	matches, start, end, md := k.ev.Complete(req.Code, cursor)
	if matches == nil {
		matches = []string{}
	}
	if md == nil {
		md = map[string]any{}
	}
	k.send(k.socks.shell, "complete_reply", m, map[string]any{"status": "ok", "matches": matches,
		"cursor_start": start, "cursor_end": end, "metadata": md})
}

// handleInspect answers inspect_request through the Evaluator.
func (k *Kernel) handleInspect(m *Message) {
	var req struct {
		Code        string `json:"code"`
		CursorPos   *int   `json:"cursor_pos"`
		DetailLevel int    `json:"detail_level"`
	}
	if !k.decodeContent(m, &req, "inspect_reply") {
		return
	}
	data, found := k.ev.Inspect(req.Code, clampCursor(req.Code, req.CursorPos), req.DetailLevel)
	if data == nil || !found {
		data = map[string]any{}
	}
	k.send(k.socks.shell, "inspect_reply", m, map[string]any{"status": "ok", "found": found,
		"data": data, "metadata": map[string]any{}})
}

// handleIsComplete answers is_complete_request through the Evaluator.
func (k *Kernel) handleIsComplete(m *Message) {
	var req struct {
		Code string `json:"code"`
	}
	if !k.decodeContent(m, &req, "is_complete_reply") {
		return
	}
	status, indent := k.ev.IsComplete(req.Code)
	content := map[string]any{"status": status}
	if status == "incomplete" {
		content["indent"] = indent
	}
	k.send(k.socks.shell, "is_complete_reply", m, content)
}

// clampCursor returns the cursor position in code points, defaulting to the end of code and
// clamped into [0, len(code in runes)].
func clampCursor(code string, pos *int) int {
	n := len([]rune(code))
	if pos == nil || *pos > n {
		return n
	}
	if *pos < 0 {
		return 0
	}
	return *pos
}
