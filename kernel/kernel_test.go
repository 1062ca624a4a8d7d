package kernel

import (
	"strings"
	"testing"
	"time"
)

func TestKernelInfo(t *testing.T) {
	c := startKernel(t, &fakeEvaluator{}, WithVersion("9.9"))
	for _, s := range []struct {
		name string
		ch   chan *Message
	}{{"shell", c.shellC}, {"control", c.controlC}} {
		sock := c.shell
		if s.name == "control" {
			sock = c.control
		}
		id := c.send(sock, "kernel_info_request", map[string]any{})
		r := c.reply(s.ch, id)
		if r.Header.MsgType != "kernel_info_reply" || r.Header.Version != "5.3" {
			t.Fatalf("%s: got %+v", s.name, r.Header)
		}
		ct := contentMap(t, r)
		li := ct["language_info"].(map[string]any)
		for k, want := range map[string]string{"name": "go", "mimetype": "text/x-go", "file_extension": ".go",
			"pygments_lexer": "go", "codemirror_mode": "go"} {
			if li[k] != want {
				t.Errorf("%s: language_info.%s = %v, want %s", s.name, k, li[k], want)
			}
		}
		if ct["protocol_version"] != "5.3" || ct["implementation"] != "finlora" || ct["implementation_version"] != "9.9" ||
			ct["banner"] == "" || len(ct["help_links"].([]any)) == 0 || ct["status"] != "ok" {
			t.Errorf("%s: kernel_info %v", s.name, ct)
		}
		if got := fmtTypes(c.collect(id)); got != "[status:busy status:idle]" {
			t.Errorf("%s: iopub %s", s.name, got)
		}
	}
}

func TestExecuteSequence(t *testing.T) {
	c := startKernel(t, &fakeEvaluator{})
	tests := []struct {
		code   string
		status string
		iopub  string // message types between busy and idle
		check  func(t *testing.T, r *Message, io []*Message)
	}{
		{"print hello, world", "ok", "[status:busy execute_input stream status:idle]", func(t *testing.T, r *Message, io []*Message) {
			if ct := contentMap(t, io[2]); ct["name"] != "stdout" || ct["text"] != "hello, world" {
				t.Errorf("stream %v", ct)
			}
			if ct := contentMap(t, io[1]); ct["code"] != "print hello, world" || ct["execution_count"] != 1.0 {
				t.Errorf("execute_input %v", ct)
			}
		}},
		{"eprint oops", "ok", "[status:busy execute_input stream status:idle]", func(t *testing.T, r *Message, io []*Message) {
			if contentField(t, io[2], "name") != "stderr" {
				t.Errorf("stream %s", io[2].Content)
			}
		}},
		{"inc", "ok", "[status:busy execute_input execute_result status:idle]", func(t *testing.T, r *Message, io []*Message) {
			ct := contentMap(t, io[2])
			if ct["data"].(map[string]any)["text/plain"] != "1" || ct["execution_count"] != 3.0 {
				t.Errorf("execute_result %v", ct)
			}
		}},
		{"inc", "ok", "[status:busy execute_input execute_result status:idle]", func(t *testing.T, r *Message, io []*Message) {
			if contentField(t, io[2], "data").(map[string]any)["text/plain"] != "2" {
				t.Errorf("state not kept across cells: %s", io[2].Content)
			}
		}},
		{"error boom", "error", "[status:busy execute_input error status:idle]", func(t *testing.T, r *Message, io []*Message) {
			ct := contentMap(t, r)
			if ct["ename"] != "FakeError" || ct["evalue"] != "boom" || ct["traceback"].([]any)[0] != "cell line 1: boom" {
				t.Errorf("error reply %v", ct)
			}
			if e := contentMap(t, io[2]); e["ename"] != "FakeError" {
				t.Errorf("error message %v", e)
			}
		}},
		{"display d1 hi", "ok", "[status:busy execute_input display_data status:idle]", func(t *testing.T, r *Message, io []*Message) {
			ct := contentMap(t, io[2])
			if ct["transient"].(map[string]any)["display_id"] != "d1" || ct["data"].(map[string]any)["text/html"] != "<b>hi</b>" {
				t.Errorf("display_data %v", ct)
			}
		}},
		{"display - plain", "ok", "[status:busy execute_input display_data status:idle]", func(t *testing.T, r *Message, io []*Message) {
			if _, has := contentMap(t, io[2])["transient"]; has {
				t.Errorf("display_data without id has transient: %s", io[2].Content)
			}
		}},
		{"update d1 there", "ok", "[status:busy execute_input update_display_data status:idle]", nil},
		{"clear", "ok", "[status:busy execute_input clear_output status:idle]", nil},
		{"panic now", "error", "[status:busy execute_input error status:idle]", func(t *testing.T, r *Message, io []*Message) {
			if contentField(t, r, "ename") != "panic" {
				t.Errorf("reply %s", r.Content)
			}
		}},
		{"nan", "ok", "[status:busy execute_input execute_result status:idle]", func(t *testing.T, r *Message, io []*Message) {
			if !strings.Contains(string(io[2].Content), "unencodable") {
				t.Errorf("execute_result %s", io[2].Content)
			}
		}},
		{"inc", "ok", "[status:busy execute_input execute_result status:idle]", nil}, // alive after all that
	}
	for i, tc := range tests {
		r, io := c.execute(tc.code, nil)
		if got := contentField(t, r, "status"); got != tc.status {
			t.Errorf("%d %q: status %v, want %s (%s)", i, tc.code, got, tc.status, r.Content)
		}
		if got := contentField(t, r, "execution_count"); got != float64(i+1) {
			t.Errorf("%d %q: execution_count %v, want %d", i, tc.code, got, i+1)
		}
		if got := fmtTypes(io); got != tc.iopub {
			t.Errorf("%d %q: iopub %s, want %s", i, tc.code, got, tc.iopub)
			continue
		}
		if tc.check != nil {
			tc.check(t, r, io)
		}
	}
}

func TestSilentAndUserExpressions(t *testing.T) {
	c := startKernel(t, &fakeEvaluator{})
	r, io := c.execute("print quiet", map[string]any{"silent": true})
	if fmtTypes(io) != "[status:busy status:idle]" || contentField(t, r, "execution_count") != 0.0 {
		t.Errorf("silent: reply %s iopub %s", r.Content, fmtTypes(io))
	}
	r, _ = c.execute("inc", map[string]any{"user_expressions": map[string]any{"a": "result forty-two", "b": "error bad"}})
	ue := contentField(t, r, "user_expressions").(map[string]any)
	a, b := ue["a"].(map[string]any), ue["b"].(map[string]any)
	if a["status"] != "ok" || a["data"].(map[string]any)["text/plain"] != "forty-two" || b["status"] != "error" || b["ename"] != "FakeError" {
		t.Errorf("user_expressions %v", ue)
	}
	r, _ = c.execute("inc", map[string]any{"store_history": false})
	if contentField(t, r, "execution_count") != 1.0 {
		t.Errorf("store_history=false advanced the count: %s", r.Content)
	}
}

func TestStopOnErrorAbortsQueue(t *testing.T) {
	c := startKernel(t, &fakeEvaluator{})
	code := func(s string) map[string]any {
		return map[string]any{"code": s, "silent": false, "store_history": true, "user_expressions": map[string]any{},
			"allow_stdin": false, "stop_on_error": true}
	}
	first := c.send(c.shell, "execute_request", code("sleeperr 300"))
	second := c.send(c.shell, "execute_request", code("print a"))
	third := c.send(c.shell, "execute_request", code("print b"))
	if s := contentField(t, c.reply(c.shellC, first), "status"); s != "error" {
		t.Fatalf("first: %v", s)
	}
	for _, id := range []string{second, third} {
		if s := contentField(t, c.reply(c.shellC, id), "status"); s != "aborted" {
			t.Errorf("queued cell: status %v, want aborted", s)
		}
		if got := fmtTypes(c.collect(id)); got != "[status:busy status:idle]" {
			t.Errorf("aborted cell iopub %s", got)
		}
	}
	// The queue is empty again: new cells run.
	if r, _ := c.execute("print c", nil); contentField(t, r, "status") != "ok" {
		t.Errorf("after abort: %s", r.Content)
	}
	// stop_on_error=false: the next queued cell runs.
	nostop := code("sleeperr 200")
	nostop["stop_on_error"] = false
	first = c.send(c.shell, "execute_request", nostop)
	second = c.send(c.shell, "execute_request", code("print d"))
	c.reply(c.shellC, first)
	if s := contentField(t, c.reply(c.shellC, second), "status"); s != "ok" {
		t.Errorf("stop_on_error=false: next cell status %v", s)
	}
}

func TestInterruptDuringCell(t *testing.T) {
	c := startKernel(t, &fakeEvaluator{})
	c.execute("inc", nil)
	id := c.send(c.shell, "execute_request", map[string]any{"code": "loop", "silent": false, "store_history": true,
		"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true})
	time.Sleep(200 * time.Millisecond)
	select {
	case m := <-c.shellC:
		t.Fatalf("loop returned early: %s", m.Content)
	default:
	}
	iid := c.send(c.control, "interrupt_request", map[string]any{})
	if s := contentField(t, c.reply(c.controlC, iid), "status"); s != "ok" {
		t.Fatalf("interrupt_reply %v", s)
	}
	r := c.reply(c.shellC, id)
	if ct := contentMap(t, r); ct["status"] != "error" || ct["ename"] != "Interrupted" {
		t.Errorf("interrupted cell reply %v", ct)
	}
	r, io := c.execute("inc", nil)
	if contentField(t, io[2], "data").(map[string]any)["text/plain"] != "2" {
		t.Errorf("state lost after interrupt: %s / %s", r.Content, io[2].Content)
	}
}

func TestBadSignatureDropped(t *testing.T) {
	c := startKernel(t, &fakeEvaluator{})
	fr, _ := c.frames("kernel_info_request", map[string]any{}, []byte(strings.Repeat("0", 64)))
	c.sendRaw(c.shell, fr)
	select {
	case m := <-c.shellC:
		t.Fatalf("reply to a badly signed message: %s", m.Header.MsgType)
	case <-time.After(500 * time.Millisecond):
	}
	if !strings.Contains(c.logBuf.String(), "bad signature") {
		t.Errorf("bad signature not logged; log:\n%s", c.logBuf.String())
	}
	good := c.send(c.shell, "kernel_info_request", map[string]any{})
	if r := c.reply(c.shellC, good); r.Header.MsgType != "kernel_info_reply" {
		t.Errorf("got %s", r.Header.MsgType)
	}
}

func TestMalformedAndUnknownMessages(t *testing.T) {
	c := startKernel(t, &fakeEvaluator{})
	sign := func(parts ...string) []byte {
		var b [][]byte
		for _, p := range parts {
			b = append(b, []byte(p))
		}
		return []byte(c.sig.sign(b...))
	}
	hdr := `{"msg_id":"m1","msg_type":"execute_request","session":"s","username":"u","date":"","version":"5.3"}`
	bad := [][][]byte{
		{[]byte("garbage")},
		{delimiter},
		{delimiter, sign(hdr, "{}", "{}", "{"), []byte(hdr), []byte("{}"), []byte("{}"), []byte("{")},
		{delimiter, sign("{", "{}", "{}", "{}"), []byte("{"), []byte("{}"), []byte("{}"), []byte("{}")},
		{delimiter, sign(hdr, "{}", "{}", `{"code": 5}`), []byte(hdr), []byte("{}"), []byte("{}"), []byte(`{"code": 5}`)},
	}
	for _, fr := range bad {
		c.sendRaw(c.shell, fr)
	}
	// The execute_request with a number for code gets an error reply; the others nothing.
	r := c.reply(c.shellC, "m1")
	if contentField(t, r, "status") != "error" {
		t.Errorf("bad content: %s", r.Content)
	}
	// Invalid UTF-8 in content is replaced, not fatal.
	hdr2 := strings.Replace(hdr, "m1", "m2", 1)
	content := "{\"code\": \"print \xff\xfe ok\", \"silent\": false}"
	c.sendRaw(c.shell, [][]byte{delimiter, sign(hdr2, "{}", "{}", content), []byte(hdr2), []byte("{}"), []byte("{}"), []byte(content)})
	if r := c.reply(c.shellC, "m2"); contentField(t, r, "status") != "ok" {
		t.Errorf("invalid UTF-8 cell: %s", r.Content)
	}
	// Unknown types and comms: status busy/idle, no reply, no crash.
	for _, typ := range []string{"frobnicate_request", "comm_open", "comm_msg", "comm_close"} {
		id := c.send(c.shell, typ, map[string]any{"comm_id": "x", "target_name": "t", "data": map[string]any{}})
		if got := fmtTypes(c.collect(id)); got != "[status:busy status:idle]" {
			t.Errorf("%s: iopub %s", typ, got)
		}
	}
	id := c.send(c.control, "debug_request", map[string]any{})
	c.collect(id)
	id = c.send(c.shell, "comm_info_request", map[string]any{})
	if ct := contentMap(t, c.reply(c.shellC, id)); ct["status"] != "ok" || len(ct["comms"].(map[string]any)) != 0 {
		t.Errorf("comm_info_reply %v", ct)
	}
	if r, _ := c.execute("inc", nil); contentField(t, r, "status") != "ok" {
		t.Errorf("kernel broken after bad input: %s", r.Content)
	}
}

func TestHugeOutputCoalesced(t *testing.T) {
	c := startKernel(t, &fakeEvaluator{})
	const n = 10 << 20
	start := time.Now()
	r, io := c.execute("big 10485760", nil)
	if contentField(t, r, "status") != "ok" {
		t.Fatalf("reply %s", r.Content)
	}
	total, streams := 0, 0
	for _, m := range io {
		if m.Header.MsgType == "stream" {
			streams++
			total += len(contentField(t, m, "text").(string))
		}
	}
	t.Logf("10 MiB printed in 1000-byte writes: %d stream messages, %v", streams, time.Since(start))
	if total != n {
		t.Errorf("received %d bytes of stream text, want %d", total, n)
	}
	if streams > n/streamChunk+20 {
		t.Errorf("%d stream messages for %d bytes: output not coalesced", streams, n)
	}
}

func TestStreamTimerFlushAndOrder(t *testing.T) {
	c := startKernel(t, &fakeEvaluator{})
	// Output of a goroutine after its cell returned still reaches the front end with the cell
	// as parent (flushed by the timer).
	id := c.send(c.shell, "execute_request", map[string]any{"code": "goprint late", "silent": false})
	c.collect(id)
	deadline := time.After(2 * time.Second)
	for {
		select {
		case m := <-c.iopubC:
			if m.Header.MsgType == "stream" && parentMsgID(m.ParentHeader) == id {
				return
			}
		case <-deadline:
			t.Fatal("late goroutine output never published")
		}
	}
}

func TestInputRequest(t *testing.T) {
	c := startKernel(t, &fakeEvaluator{})
	id := c.send(c.shell, "execute_request", map[string]any{"code": "input name? ", "silent": false, "allow_stdin": true})
	var req *Message
	select {
	case req = <-c.stdinC:
	case <-time.After(5 * time.Second):
		t.Fatal("no input_request")
	}
	if req.Header.MsgType != "input_request" || contentField(t, req, "prompt") != "name?" || parentMsgID(req.ParentHeader) != id {
		t.Fatalf("input_request %+v %s parent %s", req.Header, req.Content, req.ParentHeader)
	}
	m := &Message{Header: newHeader("input_reply", c.session, "tester"), ParentHeader: req.RawHeader,
		Content: []byte(`{"value": "Ada"}`)}
	fr, _ := m.encode(c.sig)
	c.sendRaw(c.stdin, fr)
	if r := c.reply(c.shellC, id); contentField(t, r, "status") != "ok" {
		t.Fatalf("reply %s", r.Content)
	}
	found := false
	for _, m := range c.collect(id) {
		if m.Header.MsgType == "stream" && contentField(t, m, "text") == "got: Ada" {
			found = true
		}
	}
	if !found {
		t.Error("the cell did not receive the input")
	}
	// allow_stdin false: Input fails, the cell reports the error.
	r, _ := c.execute("input again? ", map[string]any{"allow_stdin": false})
	if ct := contentMap(t, r); ct["status"] != "error" || !strings.Contains(ct["evalue"].(string), "allow_stdin") {
		t.Errorf("allow_stdin=false: %v", ct)
	}
	// An interrupt ends a wait for input.
	id = c.send(c.shell, "execute_request", map[string]any{"code": "input never", "silent": false, "allow_stdin": true})
	<-c.stdinC
	c.reply(c.controlC, c.send(c.control, "interrupt_request", map[string]any{}))
	if ct := contentMap(t, c.reply(c.shellC, id)); ct["status"] != "error" {
		t.Errorf("interrupted input: %v", ct)
	}
}

func TestCompleteInspectIsComplete(t *testing.T) {
	c := startKernel(t, &fakeEvaluator{})
	id := c.send(c.shell, "complete_request", map[string]any{"code": "x pr", "cursor_pos": 4})
	ct := contentMap(t, c.reply(c.shellC, id))
	if ct["status"] != "ok" || ct["cursor_start"] != 2.0 || ct["cursor_end"] != 4.0 || len(ct["matches"].([]any)) != 2 {
		t.Errorf("complete_reply %v", ct)
	}
	id = c.send(c.shell, "complete_request", map[string]any{"code": "zzz", "cursor_pos": 99})
	if ct := contentMap(t, c.reply(c.shellC, id)); ct["cursor_end"] != 3.0 || len(ct["matches"].([]any)) != 0 {
		t.Errorf("complete_reply out of range cursor %v", ct)
	}
	id = c.send(c.shell, "inspect_request", map[string]any{"code": "print", "cursor_pos": 2, "detail_level": 0})
	if ct := contentMap(t, c.reply(c.shellC, id)); ct["found"] != true || ct["data"].(map[string]any)["text/plain"] == nil {
		t.Errorf("inspect_reply %v", ct)
	}
	id = c.send(c.shell, "inspect_request", map[string]any{"code": "zz", "cursor_pos": 1})
	if ct := contentMap(t, c.reply(c.shellC, id)); ct["found"] != false {
		t.Errorf("inspect_reply %v", ct)
	}
	for code, want := range map[string]string{"x := 1": "complete", "for {": "incomplete", "}": "invalid"} {
		id = c.send(c.shell, "is_complete_request", map[string]any{"code": code})
		ct := contentMap(t, c.reply(c.shellC, id))
		if ct["status"] != want {
			t.Errorf("is_complete %q: %v, want %s", code, ct, want)
		}
		if _, has := ct["indent"]; has != (want == "incomplete") {
			t.Errorf("is_complete %q: indent presence wrong: %v", code, ct)
		}
	}
}

func TestHeartbeat(t *testing.T) {
	c := startKernel(t, &fakeEvaluator{})
	if err := c.hb.Send(zmqMsg("ping")); err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() {
		m, err := c.hb.Recv()
		if err == nil {
			done <- string(m.Bytes())
		}
	}()
	select {
	case got := <-done:
		if got != "ping" {
			t.Errorf("heartbeat echoed %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat echo")
	}
}

func TestShutdown(t *testing.T) {
	ev := &fakeEvaluator{}
	c := startKernel(t, ev)
	c.execute("inc", nil)
	id := c.send(c.control, "shutdown_request", map[string]any{"restart": false})
	if ct := contentMap(t, c.reply(c.controlC, id)); ct["status"] != "ok" || ct["restart"] != false {
		t.Errorf("shutdown_reply %v", ct)
	}
	select {
	case err := <-c.runErr:
		if err != nil {
			t.Errorf("Run returned %v after shutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after shutdown_request")
	}
}

func TestShutdownDuringLongCell(t *testing.T) {
	c := startKernel(t, &fakeEvaluator{})
	c.send(c.shell, "execute_request", map[string]any{"code": "loop", "silent": false})
	time.Sleep(100 * time.Millisecond)
	c.reply(c.controlC, c.send(c.control, "shutdown_request", map[string]any{"restart": true}))
	select {
	case err := <-c.runErr:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestStayOnRestart(t *testing.T) {
	ev := &fakeEvaluator{}
	c := startKernel(t, ev, WithStayOnRestart())
	c.execute("inc", nil)
	c.execute("inc", nil)
	id := c.send(c.control, "shutdown_request", map[string]any{"restart": true})
	if ct := contentMap(t, c.reply(c.controlC, id)); ct["restart"] != true {
		t.Errorf("shutdown_reply %v", ct)
	}
	r, io := c.execute("inc", nil)
	if contentField(t, io[2], "data").(map[string]any)["text/plain"] != "1" || ev.resets != 1 ||
		contentField(t, r, "execution_count") != 1.0 {
		t.Errorf("after restart: reply %s result %s resets %d", r.Content, io[2].Content, ev.resets)
	}
	// History is kept: the two cells before the restart are still there, in session 1.
	id = c.send(c.shell, "history_request", map[string]any{"output": false, "raw": true, "hist_access_type": "tail", "n": 10})
	h := contentField(t, c.reply(c.shellC, id), "history").([]any)
	if len(h) != 3 || h[0].([]any)[0] != 1.0 || h[2].([]any)[0] != 2.0 {
		t.Errorf("history after restart %v", h)
	}
}
