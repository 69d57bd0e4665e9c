"""A rate limit enforced the way an API enforces it, for FakeOpenAIServer: a handler wrapper that counts the
requests (and the tokens, estimated as OpenAI documents it: prompt characters / 4 + max_tokens) arriving in a
window, answers 429 to every request over the limit and counts those violations.

The window is a parameter so tests can use a short one: a limit of N per minute is enforced as N/60 x W per
W seconds, the way OpenAI itself enforces per-minute limits over shorter periods.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.openai_server import Handler, Reply


def request_tokens(body: dict[str, Any]) -> int:
    chars = sum(len(str(m.get("content") or "")) for m in body.get("messages") or [])
    return -(-chars // 4) + int(body.get("max_tokens") or body.get("max_completion_tokens") or 0)


@dataclass
class RateLimitedHandler:
    """Sliding window (`fixed=False`) or fixed windows that reset every `window_s` (`fixed=True`, which is what
    the reset headers describe). With `headers`, every answer carries x-ratelimit-limit/remaining/reset-*."""

    inner: Handler
    requests: int | None = None  # per window
    tokens: int | None = None  # per window
    window_s: float = 1.0
    fixed: bool = False
    headers: bool = False
    retry_after_s: float | None = None  # sent with each 429
    arrivals: list[float] = field(default_factory=list)  # accepted requests
    violations: int = 0
    _log: deque = field(default_factory=deque)  # (time, tokens) of accepted requests in the window
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _window_start: float = 0.0

    def __call__(self, body: dict[str, Any]) -> Reply:
        n_tokens = request_tokens(body)
        with self._lock:
            now = time.monotonic()
            if self.fixed:
                if now >= self._window_start + self.window_s:
                    self._window_start = now
                    self._log.clear()
            else:
                while self._log and self._log[0][0] <= now - self.window_s:
                    self._log.popleft()
            used_r = len(self._log)
            used_t = sum(t for _, t in self._log)
            over = ((self.requests is not None and used_r + 1 > self.requests)
                    or (self.tokens is not None and used_t + n_tokens > self.tokens))
            if over:
                self.violations += 1
                headers = {"retry-after": str(self.retry_after_s)} if self.retry_after_s is not None else {}
                return Reply(status=429, headers={**headers, **self._headers(now, used_r, used_t)})
            self._log.append((now, n_tokens))
            self.arrivals.append(now)
            headers = self._headers(now, used_r + 1, used_t + n_tokens)
        reply = self.inner(body)
        reply.headers = {**reply.headers, **headers}
        return reply

    def _headers(self, now: float, used_r: int, used_t: int) -> dict[str, str]:
        if not self.headers:
            return {}
        if self.fixed:
            reset = max(0.0, self._window_start + self.window_s - now)
        else:
            reset = max(0.0, self._log[0][0] + self.window_s - now) if self._log else 0.0
        out = {}
        if self.requests is not None:
            out.update({"x-ratelimit-remaining-requests": str(max(0, self.requests - used_r)),
                        "x-ratelimit-reset-requests": f"{reset * 1000:.0f}ms"})
        if self.tokens is not None:
            out.update({"x-ratelimit-remaining-tokens": str(max(0, self.tokens - used_t)),
                        "x-ratelimit-reset-tokens": f"{reset * 1000:.0f}ms"})
        return out

    def throughput(self) -> float:
        """Accepted requests per second, first to last arrival."""
        if len(self.arrivals) < 2:
            return 0.0
        return (len(self.arrivals) - 1) / (self.arrivals[-1] - self.arrivals[0])
