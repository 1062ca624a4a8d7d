#!/usr/bin/env python3
"""Writes signature_vectors.json: Jupyter messages signed and framed by jupyter_client's Session.

Run with Debian's python3 (python3-jupyter-client):  /usr/bin/python3 gen_signature_vectors.py
The Go tests (kernel/wire_test.go) read the JSON only; they do not need Python.
"""
import base64
import json

import jupyter_client
from jupyter_client.session import Session

CASES = [
    # (key, identities, msg_type, content, buffers)
    (b"8a4b2c1d-0f3e-4e5a-9b6c-7d8e9f0a1b2c", [b"client-1"], "execute_request",
     {"code": 'fmt.Println("héllo, wörld")\nx := 1', "silent": False, "store_history": True,
      "user_expressions": {}, "allow_stdin": True, "stop_on_error": True}, []),
    (b"secret", [b"a", b"b"], "kernel_info_request", {}, []),
    ("clé-ünïcode".encode("utf-8"), [], "complete_request", {"code": "fmt.Pr", "cursor_pos": 6}, []),
    (b"k", [b"id"], "comm_msg", {"comm_id": "c1", "data": {"x": [1, 2, 3]}}, [b"\x00\x01\x02binary", b""]),
    (b"", [b"nokey"], "is_complete_request", {"code": "for {"}, []),
]


def main():
    out = {"jupyter_client_version": jupyter_client.__version__, "vectors": []}
    for key, idents, msg_type, content, buffers in CASES:
        s = Session(key=key, signature_scheme="hmac-sha256", username="tester")
        msg = s.msg(msg_type, content=content)
        frames = s.serialize(msg, ident=idents)
        frames += buffers  # Session.send appends buffers after serialize(), unsigned
        # serialize() puts the delimiter after the idents, then the signature, then the JSON parts.
        i = frames.index(b"<IDS|MSG>")
        sig = frames[i + 1]
        assert sig == s.sign(frames[i + 2:i + 6]), "Session.sign disagrees with serialize"
        out["vectors"].append({
            "key_b64": base64.b64encode(key).decode(),
            "msg_type": msg_type,
            "msg_id": msg["header"]["msg_id"],
            "signature": sig.decode(),
            "frames_b64": [base64.b64encode(bytes(f)).decode() for f in frames],
            "n_identities": len(idents),
            "n_buffers": len(buffers),
        })
    with open("signature_vectors.json", "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
