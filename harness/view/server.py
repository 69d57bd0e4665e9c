"""The local server behind `harness view`: the page, and the run's data in pieces as the page asks for them.

It listens on 127.0.0.1 only and answers only requests addressed to that host and port (a page elsewhere
cannot reach it through a DNS name that resolves to 127.0.0.1).

    GET /                      the page
    GET /api/meta              the runs and the gate's verdict
    GET /api/rows              the compact per-item arrays the page filters, counts and sorts on
    GET /api/snippets?i=1,2    the text of the rows on screen
    GET /api/search?q=words    the items whose id, input, expected answer or any answer holds every word
    GET /api/item?i=N          one item in full: every variant's records, messages sent, scores, judge
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from harness.errors import HarnessError
from harness.view.model import ViewModel
from harness.view.page import render_page, title_of

MAX_SNIPPETS = 500  # rows asked for at once (a screen holds a few dozen)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


class ViewServer:
    def __init__(self, model: ViewModel, port: int = 0):
        self.model = model
        self.page = render_page(title_of(model), server=True).encode("utf-8")
        self.meta = _json(model.meta())
        self.rows = _json(model.rows())  # built once: every page load gets the same bytes
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.handle(self)

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

        try:
            self.httpd = _Server(("127.0.0.1", port), _Handler)
        except OSError as exc:
            raise HarnessError(f"--port {port}: cannot listen on 127.0.0.1 ({exc.strerror}); pick another port or "
                               "leave --port out for a free one") from None
        self.port = self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _index_in_background(self) -> None:
        threading.Thread(target=self.model.build_search_index, daemon=True).start()

    def start(self) -> ViewServer:
        self._index_in_background()
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def serve_forever(self) -> None:
        self._index_in_background()
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ViewServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- requests ----------------------------------------------------------------------------------------

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        host = (req.headers.get("Host") or "").lower()
        if host not in (f"127.0.0.1:{self.port}", f"localhost:{self.port}"):
            return self._send(req, 403, b"this server answers only http://127.0.0.1:%d/" % self.port, "text/plain")
        url = urlsplit(req.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if url.path in ("/", "/index.html"):
                return self._send(req, 200, self.page, "text/html; charset=utf-8")
            body = self._api(url.path, query)
        except (ValueError, HarnessError) as exc:
            return self._send(req, 400, _json({"error": str(exc)}), "application/json")
        if body is None:
            return self._send(req, 404, _json({"error": f"{url.path}: not found"}), "application/json")
        self._send(req, 200, body, "application/json")

    def _api(self, path: str, query: dict[str, str]) -> bytes | None:
        if path == "/api/meta":
            return self.meta
        if path == "/api/rows":
            return self.rows
        if path == "/api/snippets":
            indices = [int(x) for x in query.get("i", "").split(",") if x.strip()][:MAX_SNIPPETS]
            return _json(self.model.snippets(indices))
        if path == "/api/search":
            return _json(self.model.search(query.get("q", "")))
        if path == "/api/item":
            return _json(self.model.item(int(query.get("i", "-1"))))
        return None

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: bytes, kind: str) -> None:
        req.send_response(status)
        req.send_header("Content-Type", kind)
        req.send_header("Content-Length", str(len(body)))
        req.send_header("Cache-Control", "no-store")
        req.send_header("X-Content-Type-Options", "nosniff")
        req.send_header("Referrer-Policy", "no-referrer")
        req.end_headers()
        req.wfile.write(body)
