"""The model client against a loopback server: retries, Retry-After, latency, usage, refusals, the body sent."""

from __future__ import annotations

import asyncio
import email.utils
import json
import threading
import time
from collections import Counter
from types import SimpleNamespace

import pytest

from harness.config import ModelConfig
from harness.models.client import ModelClient, ModelRefused, retry_after_s
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


# -- point 7: Retry-After that cannot be read; issue 17: latency apart from the waits -------------------------------

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


def test_latency_is_the_answering_attempt_and_the_backoff_is_wait():
    # issue 17: latency is the attempt that answered, from when it left; the backoff is client-side wait.
    with FakeOpenAIServer(scripted(Reply(status=503, headers={"Retry-After": "0.4"}, delay_s=0.1),
                                   Reply(text=ANSWER, delay_s=0.05))) as srv:
        result = ask(client_for(srv.base_url, max_retries=2))
    assert isinstance(result, Completion)
    assert result.attempts == 2
    assert 0.05 <= result.latency_s < 0.3  # the answer's 0.05 s, not the 0.1 s failure nor the 0.4 s wait
    assert 0.4 <= result.wait_s < 0.6


def test_a_failed_call_has_the_last_attempts_latency_and_its_waits():
    with FakeOpenAIServer(scripted(Reply(status=500, headers={"Retry-After": "0.2"}))) as srv:
        result = ask(client_for(srv.base_url, max_retries=2))
    assert isinstance(result, CallError)
    assert result.attempts == 3 and result.latency_s < 0.2 and result.wait_s >= 0.4


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


# -- issue 17: permanent errors stop, harness bugs propagate, odd bodies are bad responses ---------------

QUOTA = {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                   "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}


def error_body(message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": None}}).encode()


@pytest.mark.parametrize("status, body, kind, says", [
    (401, error_body("Incorrect API key provided: sk-secret-123456"), "auth", "check the API key in MY_KEY"),
    (403, error_body("You do not have access to this model"), "forbidden", "check the API key in MY_KEY"),
    (404, error_body("The model `fake-model` does not exist"), "not_found", "`model` (or model_file) and base_url"),
    (400, error_body("This model's maximum context length is 8192 tokens"), "bad_request",
     "the request was refused (HTTP 400: This model's maximum context length is 8192 tokens)"),
    (429, json.dumps(QUOTA).encode(), "quota", "add credit or check the plan"),
])
def test_permanent_errors_are_not_retried_and_say_what_to_do(monkeypatch, status, body, kind, says):
    monkeypatch.setenv("MY_KEY", "sk-secret-123456")
    with FakeOpenAIServer(scripted(Reply(status=status, raw_body=body))) as srv:
        m = ModelConfig(provider="openai-compatible", base_url=srv.base_url, model="fake-model",
                        api_key_env="MY_KEY", max_retries=3)
        client = ModelClient("small", m, "fake-model", srv.base_url, "sk-secret-123456", None, backoff_base_s=0.01)
        with pytest.raises(ModelRefused) as info:
            ask(client)
        assert len(srv.requests) == 1  # never retried
    message = str(info.value)
    assert info.value.kind == kind and info.value.status == status
    assert message.startswith("models.small (fake-model): ") and says in message
    assert "\n" not in message and "sk-secret-123456" not in message


def test_a_rate_limit_429_is_still_retried():
    body = json.dumps({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})
    with FakeOpenAIServer(scripted(Reply(status=429, raw_body=body.encode(), headers={"Retry-After": "0"}),
                                   Reply(text=ANSWER))) as srv:
        result = ask(client_for(srv.base_url, max_retries=2))
    assert isinstance(result, Completion) and result.attempts == 2


def test_a_bug_in_the_response_parser_propagates(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("bug in the parser")

    monkeypatch.setattr(ModelClient, "_to_completion", broken)
    with FakeOpenAIServer(scripted(Reply(text=ANSWER))) as srv, pytest.raises(RuntimeError, match="bug in the parser"):
        ask(client_for(srv.base_url))


@pytest.mark.parametrize("body", [
    b'{"id": "x", "choices": [ {"mess',  # cut short
    b'{"id": "x", "object": "chat.completion", "choices": ["text"]}',
    b'{"id": "x", "object": "chat.completion", "choices": [{"message": {"content": ["a", "b"]}}]}',
    b'{"id": "x", "object": "chat.completion", "choices": {"0": 1}}',
    b'{"id": "x", "object": "chat.completion", "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],'
    b' "usage": {"prompt_tokens": "many", "completion_tokens": 1, "total_tokens": 2}}',
])
def test_a_body_that_is_not_a_chat_completion_is_a_bad_response(body):
    with FakeOpenAIServer(scripted(Reply(raw_body=body))) as srv:
        result = ask(client_for(srv.base_url, max_retries=2))
        assert len(srv.requests) == 1
    assert isinstance(result, CallError) and result.kind == "bad_response", result
