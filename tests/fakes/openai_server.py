"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, for tests and benchmarks.

It speaks real HTTP, so the harness's real SDK client, retries and parsing are exercised. Answers come
from a handler function; faults (429 with Retry-After, 5xx, timeouts, resets, malformed bodies, empty
choices, truncation) are injected per request.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.embeddings import EmbeddingsRoute


@dataclass
class Reply:
    text: str = "{}"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None  # reported in completion_tokens_details, as o-series / GPT-5 do
    finish_reason: str = "stop"
    delay_s: float = 0.0
    # faults
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None  # sent as-is (e.g. malformed JSON)
    empty_choices: bool = False
    reset: bool = False  # close the connection without answering
    usage: bool = True  # False: the reply carries no `usage` (some servers and gateways omit it)
    refusal: str | None = None  # an OpenAI-style refusal: message.refusal set, message.content null
    # Function calls to answer with: {"name": ..., "arguments": text or object}; content is null unless `text`
    # is set too, and finish_reason is "tool_calls" unless another one is given.
    tool_calls: list[dict[str, Any]] | None = None


Handler = Callable[[dict[str, Any]], Reply]


def last_user_text(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages", [])):
        if m.get("role") == "user":
            return str(m.get("content", ""))
    return ""


class LoopbackServer:
    """Lifecycle shared by the loopback fakes: serve a handler class on 127.0.0.1, a free port, in a thread."""

    _httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def root_url(self) -> str:
        """The server without the /v1 prefix (an Azure resource endpoint is a bare host)."""
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        class _Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default backlog of 5 drops connections at concurrency 32
            daemon_threads = True

        self._httpd = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Any:
        return self.start()  # type: ignore[attr-defined]  # each fake's start() builds its handler

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class FakeOpenAIServer(EmbeddingsRoute, LoopbackServer):
    def __init__(self, handler: Handler | None = None, *, models: list[str] | None = None):
        self.handler = handler or (lambda body: Reply())
        self.models = models or ["fake-model"]
        self.requests: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.paths_seen: list[str] = []  # path and query string of each POST (Azure routes on both)
        self._lock = threading.Lock()
        self._local = threading.local()

    def current_headers(self) -> dict[str, str]:
        """Headers (lower-cased names) of the request the calling handler thread is answering."""
        return getattr(self._local, "headers", {})

    def start(self) -> FakeOpenAIServer:
        server = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes; with Nagle on, the body waits for the client's
                # delayed ACK (~40 ms) and every request looks 40 ms slower than the server really is.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.path.split("?")[0].rstrip("/").endswith("/models"):
                    data = {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fake"}
                                                       for m in server.models]}
                    self._send(200, json.dumps(data).encode())
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.split("?")[0].rstrip("/").endswith("/embeddings"):  # tests/fakes/embeddings.py
                    self._send(*server.answer_embeddings(body))
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                server._local.headers = headers
                with server._lock:
                    server.requests.append(body)
                    server.headers_seen.append(headers)
                    server.paths_seen.append(self.path)
                reply = server.handler(body)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                    self.connection.close()
                    return
                if reply.raw_body is not None:
                    self._send(reply.status, reply.raw_body, reply.headers)
                    return
                if reply.status != 200:
                    err = {"error": {"message": f"injected status {reply.status}", "type": "fake", "code": None}}
                    self._send(reply.status, json.dumps(err).encode(), reply.headers)
                    return
                prompt = reply.prompt_tokens
                if prompt is None:
                    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
                completion = reply.completion_tokens
                if completion is None:
                    completion = max(1, len(reply.text.split()))
                usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                         "total_tokens": prompt + completion}
                if reply.cached_tokens is not None:
                    usage["prompt_tokens_details"] = {"cached_tokens": reply.cached_tokens}
                if reply.reasoning_tokens is not None:
                    usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens}
                message: dict[str, Any] = {"role": "assistant", "content": reply.text}
                if reply.refusal is not None:
                    message.update(content=None, refusal=reply.refusal)
                finish = reply.finish_reason
                if reply.tool_calls is not None:
                    message.update(content=reply.text or None, tool_calls=[
                        {"id": f"call_{n}", "type": "function", "function": {
                            "name": c["name"], "arguments": c["arguments"] if isinstance(c["arguments"], str)
                            else json.dumps(c["arguments"])}} for n, c in enumerate(reply.tool_calls)])
                    finish = "tool_calls" if finish == "stop" else finish
                choices = [] if reply.empty_choices else [{
                    "index": 0, "message": message, "finish_reason": finish,
                }]
                data = {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                        "model": body.get("model", "fake-model"), "choices": choices}
                if reply.usage:
                    data["usage"] = usage
                self._send(200, json.dumps(data).encode(), reply.headers)

        self._serve(_H)
        return self


def main(argv: list[str] | None = None) -> None:
    """`python -m tests.fakes.openai_server --delay-ms 100`: a standalone scripted server (for benchmarks), which
    prints its base URL on the first line and answers every request with the same JSON until killed."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--text", default='{"intent": "card_arrival"}')
    p.add_argument("--model", action="append", default=None)
    args = p.parse_args(argv)
    reply = Reply(text=args.text, prompt_tokens=60, completion_tokens=8, delay_s=args.delay_ms / 1000)
    serve_until_interrupted(FakeOpenAIServer(lambda body: reply, models=args.model or ["gpt-4o-mini"]))


def serve_until_interrupted(server: Any) -> None:
    """Start a loopback fake, print its URL for the parent process, and serve until Ctrl-C."""
    server.start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
