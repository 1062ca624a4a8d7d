"""The kernel survives what a real session throws at it (issue 2, acceptance): interrupts of an
endless loop through the control channel, badly signed and malformed messages, a panicking
goroutine, 10 MB of output, invalid UTF-8."""
import json
import queue
import time
import uuid

import pytest
import zmq
from jupyter_client.session import Session

from conftest import TIMEOUT, collect_iopub, result_text, run_cell, stream_text


def raw_socket(km, channel="shell"):
    """A DEALER socket of our own on the kernel's shell (or control) port."""
    info = km.get_connection_info()
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.identity = uuid.uuid4().hex.encode()
    sock.connect(f"{info['transport']}://{info['ip']}:{info[channel + '_port']}")
    return sock


def recv_reply(sock, session, timeout_ms):
    """The next message on sock, verified with session's key; None if nothing comes in time."""
    if not sock.poll(timeout_ms):
        return None
    frames = sock.recv_multipart()
    _, msg_list = session.feed_identities(frames)
    return session.deserialize(msg_list)


def signed_frames(session, msg_type, content_bytes, header_bytes=None):
    header = header_bytes or json.dumps(
        {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": session.session,
         "username": "test", "date": "2026-01-01T00:00:00Z", "version": "5.3"}).encode()
    parts = [header, b"{}", b"{}", content_bytes]
    return [b"<IDS|MSG>", session.sign(parts)] + parts


def test_interrupt_endless_loop_then_state_kept(kernel):
    km, kc = kernel
    reply, _ = run_cell(kc, "x := 41")
    assert reply["content"]["status"] == "ok", reply["content"]
    msg_id = kc.execute("for {\n}")
    time.sleep(1.0)
    # The loop is still running: no reply yet.
    with pytest.raises(queue.Empty):
        kc.get_shell_msg(timeout=0.5)
    t0 = time.monotonic()
    km.interrupt_kernel()  # interrupt_mode "message": an interrupt_request on the control channel
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error", reply["content"]
    assert time.monotonic() - t0 < 10
    collect_iopub(kc, msg_id)
    reply, msgs = run_cell(kc, "x + 1")
    assert reply["content"]["status"] == "ok", reply["content"]
    assert result_text(msgs) == "42"


def test_bad_signature_gets_no_reply_good_one_does(kernel):
    km, kc = kernel
    sock = raw_socket(km)
    try:
        good = Session(key=km.session.key, signature_scheme="hmac-sha256")
        bad = Session(key=b"not-the-key", signature_scheme="hmac-sha256")
        bad.send(sock, "kernel_info_request", {})
        assert recv_reply(sock, good, 1500) is None, "the kernel answered a badly signed message"
        good.send(sock, "kernel_info_request", {})
        reply = recv_reply(sock, good, TIMEOUT * 1000)
        assert reply is not None, "no reply to a well signed message"
        assert reply["header"]["msg_type"] == "kernel_info_reply"
        assert reply["content"]["language_info"]["name"] == "go"
    finally:
        sock.close()
    assert km.is_alive()


def test_malformed_frames_and_unknown_types(kernel):
    km, kc = kernel
    sock = raw_socket(km)
    good = Session(key=km.session.key, signature_scheme="hmac-sha256")
    try:
        sock.send_multipart([b"garbage"])
        sock.send_multipart([b"<IDS|MSG>"])
        sock.send_multipart([b"<IDS|MSG>", b"sig", b"{"])
        sock.send_multipart(signed_frames(good, "execute_request", b"{not json"))
        sock.send_multipart(signed_frames(good, "execute_request", b"[1, 2]"))
        sock.send_multipart(signed_frames(good, "kernel_info_request", b"{}", header_bytes=b"{\"msg_id\": "))
        sock.send_multipart(signed_frames(good, "frobnicate_request", b"{}"))
        sock.send_multipart(signed_frames(good, "comm_open", b'{"comm_id": "c", "target_name": "nope", "data": {}}'))
        sock.send_multipart(signed_frames(good, "comm_msg", b'{"comm_id": "c", "data": {}}'))
        sock.send_multipart(signed_frames(good, "comm_close", b'{"comm_id": "c", "data": {}}'))
        # Invalid UTF-8 inside a JSON string of an execute_request.
        sock.send_multipart(signed_frames(good, "execute_request",
                                          b'{"code": "s := \\"\xff\xfe\\"", "silent": false, "store_history": false}'))
        # Whatever the kernel makes of these, it must go on answering.
        good.send(sock, "comm_info_request", {})
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = recv_reply(sock, good, 1000)
            if reply is not None and reply["header"]["msg_type"] == "comm_info_reply":
                assert reply["content"] == {"status": "ok", "comms": {}}
                break
            assert time.monotonic() < deadline, "no comm_info_reply after malformed messages"
    finally:
        sock.close()
    reply, msgs = run_cell(kc, "1 + 1")
    assert reply["content"]["status"] == "ok" and result_text(msgs) == "2"
    assert km.is_alive()


def test_panicking_goroutine_is_reported_and_kernel_lives(kernel):
    km, kc = kernel
    reply, msgs = run_cell(kc, 'go func() { panic("boom in a goroutine") }()\ntime.Sleep(300 * time.Millisecond)')
    everything = json.dumps([m["content"] for m in msgs]) + json.dumps(reply["content"])
    assert "boom in a goroutine" in everything, "the goroutine's panic was not reported"
    time.sleep(0.3)
    assert km.is_alive(), "a panicking goroutine killed the kernel"
    reply, msgs = run_cell(kc, "2 * 21")
    assert reply["content"]["status"] == "ok" and result_text(msgs) == "42"


def test_huge_output_10mb(kernel):
    km, kc = kernel
    n = 10 << 20
    t0 = time.monotonic()
    reply, msgs = run_cell(kc, 'fmt.Print(strings.Repeat("x", 10<<20))', timeout=120)
    assert reply["content"]["status"] == "ok", reply["content"]
    streams = [m for m in msgs if m["msg_type"] == "stream"]
    assert len(stream_text(msgs)) == n
    assert len(streams) < 1000, f"{len(streams)} stream messages for 10 MB: output not coalesced"
    print(f"10 MB print: {len(streams)} stream messages, {time.monotonic() - t0:.2f}s")
    # Many small prints are coalesced too.
    reply, msgs = run_cell(kc, "for i := 0; i < 20000; i++ {\n\tfmt.Println(i)\n}", timeout=120)
    assert reply["content"]["status"] == "ok"
    text = stream_text(msgs)
    assert text.endswith("19999\n") and text.count("\n") == 20000
    assert sum(m["msg_type"] == "stream" for m in msgs) < 2000
    # A 10 MB execute_result.
    reply, msgs = run_cell(kc, 'strings.Repeat("y", 10<<20)', timeout=120)
    assert reply["content"]["status"] == "ok"
    assert len(result_text(msgs) or "") >= n
    assert km.is_alive()


def test_invalid_utf8_output(kernel):
    km, kc = kernel
    reply, msgs = run_cell(kc, 'fmt.Print("a" + string([]byte{0xff, 0xfe}) + "b")')
    assert reply["content"]["status"] == "ok", reply["content"]
    assert stream_text(msgs) == "a\ufffd\ufffdb"


def test_stop_on_error_aborts_queued_cells(kernel):
    km, kc = kernel
    first = kc.execute('time.Sleep(300 * time.Millisecond)\npanic("stop here")')
    second = kc.execute('fmt.Println("must not run")')
    replies = {}
    while len(replies) < 2:
        r = kc.get_shell_msg(timeout=TIMEOUT)
        replies[r["parent_header"]["msg_id"]] = r["content"]
    assert replies[first]["status"] == "error"
    assert replies[second]["status"] == "aborted"
    collect_iopub(kc, first)
    msgs = collect_iopub(kc, second)
    assert stream_text(msgs) == ""
    reply, _ = run_cell(kc, "1")
    assert reply["content"]["status"] == "ok"


def test_input_request_on_stdin(kernel):
    km, kc = kernel
    msg_id = kc.execute('name, err := display.Input("your name? ")\nfmt.Println("hello", name, err)', allow_stdin=True)
    req = kc.get_stdin_msg(timeout=TIMEOUT)
    assert req["msg_type"] == "input_request"
    assert req["content"]["prompt"] == "your name? " and req["content"]["password"] is False
    assert req["parent_header"]["msg_id"] == msg_id
    kc.input("Ada")
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert "hello Ada <nil>" in stream_text(collect_iopub(kc, msg_id))
    # A front end that does not allow stdin: the helper returns an error, nothing hangs.
    reply, msgs = run_cell(kc, 'name, err := display.Input("again? ")\nfmt.Println("err:", err != nil)', allow_stdin=False)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert "err: true" in stream_text(msgs)


def test_restart_gives_fresh_state_and_keeps_history(kernel):
    km, kc = kernel
    marker = f"restartMarker{uuid.uuid4().hex[:8]}"
    reply, _ = run_cell(kc, f"{marker} := 7")
    assert reply["content"]["status"] == "ok", reply["content"]
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=60)
    # A fresh interpreter: the variable is gone.
    reply, msgs = run_cell(kc, marker)
    assert reply["content"]["status"] == "error", reply["content"]
    # The history of the previous process is still there (search covers all sessions).
    msg_id = kc.history(hist_access_type="search", pattern=f"{marker} := *", output=False, raw=True)
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=TIMEOUT)
    hist = reply["content"]["history"]
    assert [h[2] for h in hist] == [f"{marker} := 7"], hist
    # ...and in an earlier session than the cells run since the restart.
    msg_id = kc.history(hist_access_type="tail", n=1, output=False, raw=True)
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["content"]["history"][0][0] > hist[0][0]
