"""Shared fixtures for the Jupyter-level tests of the finlora kernel (see README.md).

run.sh builds the kernel from the tree, installs its spec into a throwaway JUPYTER_DATA_DIR and
runs pytest here. The kernel name can be changed with FINLORA_KERNEL_NAME.
"""
import os
import queue
import time

import pytest
from jupyter_client.manager import start_new_kernel

KERNEL_NAME = os.environ.get("FINLORA_KERNEL_NAME", "finlora")
TIMEOUT = 30


@pytest.fixture(scope="module")
def kernel():
    """A running kernel and a client with started channels; shut down after the module."""
    km, kc = start_new_kernel(kernel_name=KERNEL_NAME, startup_timeout=60)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def run_cell(kc, code, timeout=TIMEOUT, **kw):
    """Executes code and returns (reply, iopub messages of the request between busy and idle)."""
    msg_id = kc.execute(code, **kw)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    return reply, collect_iopub(kc, msg_id, timeout)


def collect_iopub(kc, msg_id, timeout=TIMEOUT):
    """The iopub messages whose parent is msg_id, up to and including status idle."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no status idle for {msg_id}; got {[m['msg_type'] for m in out]}")
        try:
            msg = kc.get_iopub_msg(timeout=left)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        out.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return out


def stream_text(msgs, name="stdout"):
    return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == name)


def result_text(msgs):
    for m in msgs:
        if m["msg_type"] == "execute_result":
            return m["content"]["data"].get("text/plain")
    return None
