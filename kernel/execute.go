package kernel

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// executeRequest is the content of execute_request. Pointer fields distinguish "absent" from
// false so that the protocol's defaults (true) apply.
type executeRequest struct {
	Code            string            `json:"code"`
	Silent          bool              `json:"silent"`
	StoreHistory    *bool             `json:"store_history"`
	UserExpressions map[string]string `json:"user_expressions"`
	AllowStdin      *bool             `json:"allow_stdin"`
	StopOnError     *bool             `json:"stop_on_error"`
}

func orTrue(b *bool) bool { return b == nil || *b }

// handleExecute runs one cell: execute_input, the cell's outputs, execute_result or error on
// iopub, then execute_reply on shell (status busy/idle are published by the caller). It returns
// true when the cell failed and the request asked to stop on error.
func (k *Kernel) handleExecute(m *Message) (abort bool) {
	var req executeRequest
	if !k.decodeContent(m, &req, "execute_reply") {
		return false
	}
	storeHistory := orTrue(req.StoreHistory) && !req.Silent
	if storeHistory {
		k.execCount++
	}
	count := k.execCount
	if !req.Silent {
		k.publish("execute_input", m, map[string]any{"code": req.Code, "execution_count": count})
	}

	ctx, cancel := context.WithCancel(k.ctx)
	defer cancel()
	k.setCell(cancel)
	defer k.setCell(nil)

	out := newCellOutput(k, m, ctx, req.Silent, orTrue(req.AllowStdin))
	result, err := k.execute(ctx, req.Code, out)
	out.flush()

	reply := map[string]any{"execution_count": count}
	var resultText string
	if err != nil {
		ename, evalue, tb := describeError(err, ctx)
		if !req.Silent {
			k.publish("error", m, map[string]any{"ename": ename, "evalue": evalue, "traceback": tb,
				"execution_count": count})
		}
		reply["status"] = "error"
		reply["ename"], reply["evalue"], reply["traceback"] = ename, evalue, tb
		abort = orTrue(req.StopOnError)
	} else {
		if result != nil && !req.Silent {
			k.publish("execute_result", m, map[string]any{"execution_count": count, "data": k.mimeBundle(result),
				"metadata": map[string]any{}})
			resultText, _ = result["text/plain"].(string)
		}
		reply["status"] = "ok"
		reply["payload"] = []any{}
		reply["user_expressions"] = k.userExpressions(ctx, req.UserExpressions)
	}
	if storeHistory {
		if herr := k.hist.add(count, req.Code, resultText); herr != nil {
			k.log.Printf("history: %v", herr)
		}
	}
	k.send(k.socks.shell, "execute_reply", m, reply)
	return abort
}

// execute calls the Evaluator, turning a panic that escapes it into an error.
func (k *Kernel) execute(ctx context.Context, code string, out Output) (result map[string]any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicError{fmt.Sprint(r)}
		}
	}()
	return k.ev.Execute(ctx, code, out)
}

// panicError is a panic that escaped the Evaluator.
type panicError struct{ v string }

func (p panicError) Error() string       { return p.v }
func (p panicError) EName() string       { return "panic" }
func (p panicError) Traceback() []string { return []string{"panic: " + p.v} }

// describeError returns the ename, evalue and traceback of a cell error: those of a CellError in
// err's chain when there is one; else "Interrupted" when the cell's context was cancelled, or
// "Error" with the error text.
func describeError(err error, ctx context.Context) (ename, evalue string, tb []string) {
	evalue = err.Error()
	var ce CellError
	if errors.As(err, &ce) {
		ename, tb = ce.EName(), ce.Traceback()
		// Error() of a CellError often reads "EName: value"; evalue is the value alone.
		if ename != "" {
			evalue = strings.TrimPrefix(evalue, ename+": ")
		}
	}
	if ename == "" {
		ename = "Error"
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			ename = "Interrupted"
		}
	}
	if tb == nil {
		tb = strings.Split(ename+": "+evalue, "\n")
	}
	return ename, evalue, tb
}

// userExpressions evaluates each user expression after a successful cell, with output discarded.
// Each value is {status:"ok", data, metadata} or an error object.
func (k *Kernel) userExpressions(ctx context.Context, exprs map[string]string) map[string]any {
	res := map[string]any{}
	for name, expr := range exprs {
		data, err := k.execute(ctx, expr, discardOutput{})
		if err != nil {
			ename, evalue, tb := describeError(err, ctx)
			res[name] = map[string]any{"status": "error", "ename": ename, "evalue": evalue, "traceback": tb}
			continue
		}
		if data == nil {
			data = map[string]any{"text/plain": ""}
		}
		res[name] = map[string]any{"status": "ok", "data": data, "metadata": map[string]any{}}
	}
	return res
}

// abortExecute answers a queued execute_request without running it, after an earlier cell
// failed with stop_on_error.
func (k *Kernel) abortExecute(m *Message) {
	k.publishStatus("busy", m)
	defer k.publishStatus("idle", m)
	k.evMu.Lock()
	count := k.execCount
	k.evMu.Unlock()
	k.send(k.socks.shell, "execute_reply", m, map[string]any{"status": "aborted", "execution_count": count})
}
