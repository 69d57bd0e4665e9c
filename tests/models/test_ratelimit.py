"""Rate limits: the harness paces a model's calls under its requests/tokens per minute and adapts to the
server's x-ratelimit-* headers and 429s, against a loopback server that enforces a limit and counts violations.

The server enforces a per-minute limit the way OpenAI does, over a shorter window (N per minute = N/60 x W per
W seconds), so a test sees many windows in a few seconds."""

from __future__ import annotations

import asyncio
import json

import pytest

from harness.api import run
from harness.models import ratelimit
from harness.models.ratelimit import RateLimiter, estimate_tokens, parse_duration
from harness.rundir.folder import read_records
from harness.runner.runner import RunOptions
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAIServer, Reply
from tests.fakes.ratelimit import RateLimitedHandler, request_tokens
from tests.runner.test_reliability import big_evalset


def answer(body):
    return Reply(text='{"intent": "refund"}', prompt_tokens=20, completion_tokens=5)


def run_limited(tmp_path, handler, n, model_extra, concurrency=16):
    server = FakeOpenAIServer(handler, models=["gpt-4o-mini"]).start()
    try:
        cfg = make_config(tmp_path, big_evalset(tmp_path, n), server.base_url)
        import yaml

        data = yaml.safe_load(cfg.read_text())
        data["models"]["small"].update(model_extra)
        data["run"]["concurrency"] = concurrency
        cfg.write_text(yaml.safe_dump(data))
        res = run(cfg, RunOptions(results_dir=tmp_path / "results", progress=False, use_cache=False))
    finally:
        server.stop()
    records = read_records(res.run_dir / "records.jsonl")
    assert res.status == "completed" and len(records) == n
    run_limited.manifest = json.loads((res.run_dir / "manifest.json").read_text())
    return records


def test_parse_duration_and_estimate():
    assert parse_duration("1s") == 1.0
    assert parse_duration("6m0s") == 360.0
    assert parse_duration("20ms") == pytest.approx(0.02)
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_duration("0.5") == 0.5
    assert parse_duration("soon") is None and parse_duration(None) is None
    body = {"messages": [{"role": "user", "content": "x" * 41}], "max_tokens": 64}
    assert estimate_tokens(body) == 11 + 64 == request_tokens(body)


def test_pacer_spreads_calls_evenly():
    async def go():
        lim = RateLimiter(requests_per_minute=6000)  # 100/s, paced at HEADROOM
        times = []
        for _ in range(20):
            async with lim.slot():
                times.append(asyncio.get_running_loop().time())
        return times

    times = asyncio.run(go())
    expected = ratelimit.MINUTE_S / (6000 * ratelimit.HEADROOM)
    # The schedule is absolute: call k never starts before k intervals after the first (a late wake-up on a busy
    # machine is made up by the next call, so spacing between two late calls can be shorter, but no call is ever
    # ahead of its slot), and lateness does not accumulate (the whole run is not much longer than scheduled).
    for k, t in enumerate(times):
        assert t - times[0] >= k * expected * 0.99, (k, t - times[0])
    assert times[-1] - times[0] <= 19 * expected + 0.5


def test_requests_per_minute_respected(tmp_path):
    # 1,200 per minute, enforced as 40 per sliding 2 s window; 90 calls take about 4.7 s.
    limit = RateLimitedHandler(answer, requests=40, window_s=2.0)
    records = run_limited(tmp_path, limit, 90, {"requests_per_minute": 1200}, concurrency=16)
    assert limit.violations == 0
    assert run_limited.manifest["variants"]["baseline"]["rate_limit"]["requests_per_minute"] == 1200
    assert all(r.error is None for r in records)
    rate = limit.throughput()
    assert 0.9 * 20 <= rate <= 20 * 1.02, rate


def test_tokens_per_minute_respected(tmp_path):
    # Each request is about 60 tokens (prompt characters / 4 + max_tokens 32): 72,000 tokens per minute is
    # about 20 requests a second, enforced per sliding 2 s window; the request limit is far away.
    limit = RateLimitedHandler(answer, tokens=2400, window_s=2.0)
    server_side = []

    def counting(body):
        server_side.append(request_tokens(body))
        return answer(body)

    limit.inner = counting
    records = run_limited(tmp_path, limit, 90, {"tokens_per_minute": 72_000}, concurrency=16)
    assert limit.violations == 0
    assert all(r.error is None for r in records)
    tokens_per_s = limit.throughput() * (sum(server_side) / len(server_side))
    assert 0.9 * 1200 <= tokens_per_s <= 1200 * 1.02, tokens_per_s


def test_adapts_to_remaining_headers_without_configured_limits(tmp_path):
    # No limits in the config: the server's x-ratelimit-remaining/reset headers alone keep the run under
    # 15 requests per 0.5 s fixed window.
    limit = RateLimitedHandler(answer, requests=15, window_s=0.5, fixed=True, headers=True)
    records = run_limited(tmp_path, limit, 60, {}, concurrency=4)
    assert all(r.error is None for r in records)
    assert limit.violations == 0
    assert limit.throughput() >= 0.5 * 30


def test_429s_pause_every_call_of_the_model(tmp_path):
    # No limits and no headers: the first 429 pauses all workers (Retry-After), so the violations stay few
    # although 16 calls are in flight, and every item is answered.
    limit = RateLimitedHandler(answer, requests=10, window_s=1.0, retry_after_s=0.5)
    records = run_limited(tmp_path, limit, 50, {"max_retries": 8}, concurrency=16)
    assert all(r.error is None for r in records), [r.error for r in records if r.error]
    assert limit.violations <= 40
    assert sum(r.attempts - 1 for r in records) == limit.violations
    described = run_limited.manifest["variants"]["baseline"]["rate_limit"]
    assert described["rate_limited_429"] == limit.violations and described["learned_requests_per_minute"]


def test_latency_leaves_out_the_pacing_wait(tmp_path):
    # issue 17: 600 requests per minute paced at 8 concurrent calls, so each call waits ~0.8 s for its slot in
    # the limiter while the server answers in 0.02 s: latency_s is the server's time, wait_s holds the pacing.
    limit = RateLimitedHandler(lambda body: Reply(text='{"intent": "refund"}', prompt_tokens=20, completion_tokens=5,
                                                  delay_s=0.02), requests=20, window_s=2.0)
    records = run_limited(tmp_path, limit, 30, {"requests_per_minute": 600}, concurrency=8)
    assert limit.violations == 0 and all(r.error is None and r.attempts == 1 for r in records)
    latencies = sorted(r.latency_s for r in records)
    waits = sorted(r.wait_s for r in records)
    assert latencies[0] >= 0.02 and latencies[-1] < 0.3, latencies
    assert waits[len(waits) // 2] > 0.5, waits  # 8 x 0.105 s ahead of each call once the run is going
    per_model = run_limited.manifest["calls"]["client_wait_s"]
    assert per_model == {"small": pytest.approx(sum(waits), abs=0.01)}
