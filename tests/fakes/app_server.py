"""A team's application behind an HTTP endpoint, on 127.0.0.1, for the `provider: http` tests.

It answers each POSTed JSON body with whatever its handler returns (a JSON payload, a status, a delay), and keeps
the bodies and headers it received, so a test sees exactly what the harness sent.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.openai_server import LoopbackServer


@dataclass
class AppReply:
    payload: Any = None  # sent as JSON
    status: int = 200
    delay_s: float = 0.0
    raw: bytes | None = None  # sent as-is instead of the payload (a body that is not JSON)
    headers: dict[str, str] = field(default_factory=dict)  # e.g. Retry-After on a 429


AppHandler = Callable[[dict[str, Any]], AppReply]


class FakeAppServer(LoopbackServer):
    def __init__(self, handler: AppHandler):
        self.handler = handler
        self.bodies: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{self.root_url}/answer"

    def start(self) -> FakeAppServer:
        server = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.bodies.append(body)
                    server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
                reply = server.handler(body)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                data = reply.raw if reply.raw is not None else json.dumps(reply.payload).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json" if reply.raw is None else "text/plain")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

        self._serve(_H)
        return self
