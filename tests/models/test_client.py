"""The model client against a loopback server: retries, Retry-After, latency, usage, refusals, the body sent."""

from __future__ import annotations

import asyncio
import email.utils
import threading
import time
from collections import Counter
from types import SimpleNamespace

import pytest

from harness.config import ModelConfig
from harness.models.client import ModelClient, retry_after_s
from harness.records import CallError, Completion
from tests.fakes.openai_server import FakeOpenAIServer, Reply

ANSWER = '{"intent": "refund", "urgent": false}'


def client_for(url: str, **cfg) -> ModelClient:
    m = ModelConfig(provider="openai-compatible", base_url=url, model="fake-model", **cfg)
    return ModelClient("m", m, "fake-model", url, None, {"type": "object"}, backoff_base_s=0.05)


def ask(client: ModelClient, **request) -> Completion | CallError:
    async def go():
        try:
            return await client.complete(client.build_request(
                [{"role": "user", "content": "hello"}], temperature=0, max_tokens=16, seed=1, stop=[], **request))
        finally:
            await client.aclose()

    return asyncio.run(go())


def scripted(*replies: Reply):
    """Answers the n-th request with replies[n] (the last one from then on)."""
    seen = Counter()
    lock = threading.Lock()

    def handler(body):
        with lock:
            n = seen["n"]
            seen["n"] += 1
        return replies[min(n, len(replies) - 1)]

    return handler


def with_headers(**headers: str):
    return SimpleNamespace(response=SimpleNamespace(headers={k.replace("_", "-"): v for k, v in headers.items()}))


# -- point 7: Retry-After that cannot be read, latency over the whole call -------------------------------

def test_unparseable_retry_after_falls_back_to_backoff():
    with FakeOpenAIServer(scripted(Reply(status=429, headers={"Retry-After": "soon"}),
                                   Reply(text=ANSWER))) as srv:
        result = ask(client_for(srv.base_url, max_retries=2))
        assert len(srv.requests) == 2
    assert isinstance(result, Completion), result
    assert result.text == ANSWER and result.attempts == 2


@pytest.mark.parametrize("headers, expected", [
    ({"retry_after": "soon"}, None),
    ({"retry_after": "Mon, 99 Foo 2024 25:61:00 GMT"}, None),
    ({"retry_after": "nan"}, None),
    ({"retry_after": "-3"}, 0.0),
    ({"retry_after": "2.5"}, 2.5),
    ({"retry_after_ms": "soon", "retry_after": "1"}, 1.0),
    ({"retry_after_ms": "250"}, 0.25),
])
def test_retry_after_values(headers, expected):
    assert retry_after_s(with_headers(**headers)) == expected


def test_retry_after_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_s(with_headers(retry_after=when)) <= 31
    naive = email.utils.formatdate(time.time() + 30, usegmt=True).replace(" GMT", "")  # no zone: read as GMT
    assert 25 <= retry_after_s(with_headers(retry_after=naive)) <= 31


def test_latency_covers_every_attempt_and_backoff_wait():
    with FakeOpenAIServer(scripted(Reply(status=503, headers={"Retry-After": "0.4"}, delay_s=0.1),
                                   Reply(text=ANSWER))) as srv:
        result = ask(client_for(srv.base_url, max_retries=2))
    assert isinstance(result, Completion)
    assert result.attempts == 2
    assert result.latency_s >= 0.5  # 0.1 s first attempt + 0.4 s wait + the answer


def test_latency_of_a_failed_call_covers_every_attempt():
    with FakeOpenAIServer(scripted(Reply(status=500, headers={"Retry-After": "0.2"}))) as srv:
        result = ask(client_for(srv.base_url, max_retries=2))
    assert isinstance(result, CallError)
    assert result.attempts == 3 and result.latency_s >= 0.4


# -- point 7: report what the server sent, faithfully -------------------------------------------------

def test_missing_usage_is_none_not_zero():
    with FakeOpenAIServer(scripted(Reply(text=ANSWER, usage=False))) as srv:
        result = ask(client_for(srv.base_url))
    assert isinstance(result, Completion)
    assert result.usage is None


def test_usage_is_reported_when_present():
    with FakeOpenAIServer(scripted(Reply(text=ANSWER, prompt_tokens=12, completion_tokens=3, cached_tokens=4))) as srv:
        result = ask(client_for(srv.base_url))
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.cached_tokens) == (12, 3, 4)


def test_refusal_is_captured_and_finish_reason_kept():
    with FakeOpenAIServer(scripted(Reply(refusal="I can't help with that.", finish_reason="stop"))) as srv:
        result = ask(client_for(srv.base_url))
    assert isinstance(result, Completion)
    assert result.refusal == "I can't help with that."
    assert result.text == "" and result.finish_reason == "stop"


def test_no_refusal_is_none():
    with FakeOpenAIServer(scripted(Reply(text=ANSWER, finish_reason="length"))) as srv:
        result = ask(client_for(srv.base_url))
    assert result.refusal is None and result.finish_reason == "length"


# -- point 5: the body the cache keys on is the body sent ----------------------------------------------

def test_body_for_is_the_body_sent():
    with FakeOpenAIServer(scripted(Reply(text=ANSWER))) as srv:
        client = client_for(srv.base_url, extra_body={"top_p": 0.5, "temperature": 0.7})
        request = client.build_request([{"role": "user", "content": "hi"}], temperature=0, max_tokens=8, seed=3,
                                       stop=[])
        body = client.body_for(request)
        asyncio.run(client.complete(request))
        assert srv.requests == [body]
    assert body["top_p"] == 0.5 and body["temperature"] == 0.7
    assert request["temperature"] == 0 and "top_p" not in request  # the recorded request is left as built


def test_endpoint_url_resolves_openai_base_url(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    m = ModelConfig(provider="openai", model="gpt-4o-mini")
    assert ModelClient("m", m, "gpt-4o-mini", None, "k", {}).endpoint_url.startswith("http://127.0.0.1:9/v1")
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert "api.openai.com" in ModelClient("m", m, "gpt-4o-mini", None, "k", {}).endpoint_url
