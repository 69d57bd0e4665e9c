"""Client-side rate limits per model: requests and tokens per minute, paced, and adapted to what the server says.

A model's `requests_per_minute` and `tokens_per_minute` become two pacers (token buckets holding one request's
worth, so calls are spread evenly instead of bursting a minute's quota at once: OpenAI enforces its per-minute
limits over shorter windows too). Every attempt of a call first reserves its slot in both; the tokens of a
request are estimated the way OpenAI counts them against the limit, from the prompt's characters plus
`max_tokens`. The rates run at `HEADROOM` of the configured limits so that jitter between sending and the
server's clock never tips a window over.

The server's own view wins over the estimate:

* `x-ratelimit-remaining-requests` / `-tokens` below what is already in flight pauses new calls until the
  matching `x-ratelimit-reset-*` time;
* `x-ratelimit-limit-requests` / `-tokens` lower than the configured limit (or with none configured) becomes
  the limit;
* a 429 pauses every call of the model (for its Retry-After, else one second) and slows the pace by
  `SLOWDOWN` (once per pause); successful calls bring it back by `RECOVERY` per call. With no limit configured
  or announced, the first 429 sets the requests limit to the rate the server accepted over the last minute
  (at least the last second), so the calls after the pause are paced instead of bursting again.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

MINUTE_S = 60.0
HEADROOM = 0.95  # pace at this share of the configured limits
SLOWDOWN = 0.7  # pace factor applied on each 429
RECOVERY = 0.02  # pace factor regained per successful call, up to 1
MIN_FACTOR = 0.1
DEFAULT_429_PAUSE_S = 1.0
MAX_PAUSE_S = 60.0

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str | None) -> float | None:
    """OpenAI's reset headers: `1s`, `6m0s`, `20ms`, `1h2m3.5s` (a bare number is seconds)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    total, matched = 0.0, False
    for number, unit in _DURATION.findall(value):
        matched = True
        total += float(number) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
    return total if matched else None


def estimate_tokens(body: Mapping[str, Any]) -> int:
    """Tokens a request counts against a tokens-per-minute limit: about one per 4 prompt characters, plus
    the completion budget (OpenAI reserves max_tokens up front)."""
    chars = 0
    for m in body.get("messages") or ():
        content = m.get("content")
        chars += len(content) if isinstance(content, str) else len(str(content or ""))
    completion = body.get("max_tokens") or body.get("max_completion_tokens") or 0
    return -(-chars // 4) + int(completion)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


class _Pace:
    """Virtual scheduling (GCRA): each reservation of n units pushes the next free time by n / rate."""

    def __init__(self, per_minute: float | None):
        self.limit = per_minute
        self.next_at = 0.0

    def rate(self, factor: float) -> float | None:
        return self.limit * HEADROOM * factor / MINUTE_S if self.limit else None


class RateLimiter:
    """One model's limits. Not thread-safe: it lives on the run's event loop."""

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None):
        self.requests = _Pace(requests_per_minute)
        self.tokens = _Pace(tokens_per_minute)
        self.configured = (requests_per_minute, tokens_per_minute)
        self.factor = 1.0
        self.paused_until = 0.0
        self.in_flight = 0
        self.in_flight_tokens = 0
        self.rate_limited = 0  # 429s seen
        self.pauses = 0
        self.learned: float | None = None  # requests per minute learned from a 429
        self._answered: deque[float] = deque()  # times of successful responses in the last minute

    @property
    def needs_tokens(self) -> bool:
        return self.tokens.limit is not None

    @property
    def active(self) -> bool:
        return self.requests.limit is not None or self.tokens.limit is not None or self.paused_until > 0

    def _reserve(self, tokens: int, now: float) -> float:
        start = max(now, self.paused_until, self.requests.next_at, self.tokens.next_at)
        r_rate = self.requests.rate(self.factor)
        if r_rate:
            self.requests.next_at = start + 1.0 / r_rate
        t_rate = self.tokens.rate(self.factor)
        if t_rate:
            self.tokens.next_at = start + tokens / t_rate
        return start

    async def acquire(self, tokens: int = 0) -> None:
        """Wait for this call's turn. A pause that starts while waiting re-queues the call behind it."""
        if not self.active:
            return
        while True:
            now = time.monotonic()
            start = self._reserve(tokens, now)
            if start > now:
                await asyncio.sleep(start - now)
            if time.monotonic() >= self.paused_until:
                return

    @asynccontextmanager
    async def slot(self, tokens: int = 0) -> AsyncIterator[None]:
        """One attempt: its turn, then counted in flight until its response is in."""
        await self.acquire(tokens)
        self.in_flight += 1
        self.in_flight_tokens += tokens
        try:
            yield
        finally:
            self.in_flight -= 1
            self.in_flight_tokens -= tokens

    def pause(self, seconds: float) -> None:
        until = time.monotonic() + min(max(seconds, 0.0), MAX_PAUSE_S)
        if until > self.paused_until:
            self.paused_until = until
            self.pauses += 1

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Adapt to one response's status and rate-limit headers (names lower-case, as httpx gives them)."""
        now = time.monotonic()
        if status == 429:
            self.rate_limited += 1
            if self.requests.limit is None and self._answered:
                span = max(1.0, now - self._answered[0])
                self.requests.limit = self.learned = max(1.0, len(self._answered) / span * MINUTE_S)
            if now >= self.paused_until:  # one slowdown per pause, not one per call that was already in flight
                self.factor = max(MIN_FACTOR, self.factor * SLOWDOWN)
            wait = _retry_after(headers)
            self.pause(wait if wait is not None else DEFAULT_429_PAUSE_S)
            return
        if status < 400:
            answered = self._answered
            answered.append(now)
            while answered[0] < now - MINUTE_S:
                answered.popleft()
            if self.factor < 1.0:
                self.factor = min(1.0, self.factor + RECOVERY)
        for pace, kind in ((self.requests, "requests"), (self.tokens, "tokens")):
            limit = _int_header(headers, f"x-ratelimit-limit-{kind}")
            if limit and limit > 0 and (pace.limit is None or limit < pace.limit):
                pace.limit = limit
        remaining = _int_header(headers, "x-ratelimit-remaining-requests")
        if remaining is not None and remaining <= self.in_flight:
            self.pause(parse_duration(headers.get("x-ratelimit-reset-requests")) or DEFAULT_429_PAUSE_S)
        remaining_tokens = _int_header(headers, "x-ratelimit-remaining-tokens")
        if remaining_tokens is not None and self.in_flight_tokens and remaining_tokens < self.in_flight_tokens:
            self.pause(parse_duration(headers.get("x-ratelimit-reset-tokens")) or DEFAULT_429_PAUSE_S)

    async def on_response(self, response: Any) -> None:
        """httpx response hook."""
        self.observe(response.status_code, response.headers)

    def describe(self) -> dict[str, Any]:
        return {"requests_per_minute": self.requests.limit, "tokens_per_minute": self.tokens.limit,
                "configured": {"requests_per_minute": self.configured[0], "tokens_per_minute": self.configured[1]},
                "learned_requests_per_minute": self.learned, "rate_limited_429": self.rate_limited,
                "pauses": self.pauses}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    return parse_duration(headers.get("retry-after"))
