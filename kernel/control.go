package kernel

import "encoding/json"

// handleControl answers one control request between status busy and status idle. It runs on the
// control goroutine, so it is served while a cell runs on shell.
func (k *Kernel) handleControl(m *Message) {
	k.publishStatus("busy", m)
	defer k.publishStatus("idle", m)
	defer k.recoverHandler("control", m)
	switch t := m.Header.MsgType; t {
	case "kernel_info_request":
		k.send(k.socks.control, "kernel_info_reply", m, k.kernelInfo())
	case "interrupt_request", "shutdown_request":
		k.handleControlRequest(k.socks.control, m)
	default:
		k.log.Printf("control: unknown message type %q ignored", t)
	}
}

// handleControlRequest answers interrupt_request and shutdown_request on s (control, or shell
// for old clients).
func (k *Kernel) handleControlRequest(s *socket, m *Message) {
	switch m.Header.MsgType {
	case "interrupt_request":
		if k.cancelCell() {
			k.log.Printf("interrupt: cancelling the running cell")
		}
		k.send(s, "interrupt_reply", m, map[string]any{"status": "ok"})
	case "shutdown_request":
		var req struct {
			Restart bool `json:"restart"`
		}
		_ = json.Unmarshal(m.Content, &req)
		content := map[string]any{"status": "ok", "restart": req.Restart}
		if req.Restart && k.opt.stayOnRestart {
			k.cancelCell()
			k.restart()
			k.send(s, "shutdown_reply", m, content)
			k.publish("shutdown_reply", m, content)
			return
		}
		k.send(s, "shutdown_reply", m, content)
		k.publish("shutdown_reply", m, content)
		k.stop()
	}
}

// restart resets the Evaluator in place (history is kept, in memory and in its file). It waits
// for the running cell, which was cancelled, to leave the evaluator first.
func (k *Kernel) restart() {
	k.evMu.Lock()
	defer k.evMu.Unlock()
	if err := k.ev.Reset(); err != nil {
		k.log.Printf("restart: reset evaluator: %v", err)
	}
	k.hist.newSession()
	k.execCount = 0
}
