"""Reaching the embedded server from the parent: ports on 127.0.0.1 and its HTTP endpoints.

Loopback requests must not go through an HTTP(S)_PROXY from the environment, so every request here uses an
opener without proxies. Errors are left to the caller: LocalServer tells "not listening yet" from "refused".
"""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any

_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_taken(port: int) -> bool:
    """Checked before spawning: while our child loads its model, another server on the port would answer
    the health check in its place."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def served_model_ids(base_url: str, timeout: float = 2) -> set[Any]:
    """The ids `GET {base_url}/models` lists; raises OSError, ValueError or HTTPException while not ready."""
    with _NO_PROXY_OPENER.open(f"{base_url}/models", timeout=timeout) as resp:
        return {m.get("id") for m in json.load(resp).get("data", [])}


def post_json(url: str, body: dict[str, Any], timeout: float) -> bytes:
    """POST `body` as JSON and return the response body; an HTTP error status raises urllib.error.HTTPError."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with _NO_PROXY_OPENER.open(req, timeout=timeout) as resp:
        return resp.read()
