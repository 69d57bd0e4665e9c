"""`provider: http`: the team's application behind an HTTP endpoint (a loopback fake here), with the same
retries, error records, statistics and secret handling as a model."""

import json
import threading

import pandas as pd
import pytest
from pydantic import ValidationError

from harness.api import run
from harness.config import ModelConfig
from harness.rundir.folder import read_records
from harness.runner.runner import RunOptions
from tests.conftest import TEST_ITEMS, make_config
from tests.fakes.app_server import AppReply, FakeAppServer

ANSWERS = {text: {"intent": lab, "urgent": urgent} for _, text, lab, urgent, _ in TEST_ITEMS}
BODY = {"question": "{{input.text}}", "conversation": "{{messages}}", "ref": {"id": "{{id}}"}, "fixed": [1, "x"]}
PATHS = {"answer_path": "data.answer", "usage_path": "data.usage", "cost_path": "billing[0].usd",
         "doc_ids_path": "data.sources"}


def good(body) -> AppReply:
    """Answers from the templated body: the question text picks the answer."""
    return AppReply({"data": {"answer": json.dumps(ANSWERS[body["question"]]), "sources": ["delivery"],
                              "usage": {"prompt_tokens": 30, "completion_tokens": 3}},
                     "billing": [{"usd": 0.0005}]})


def http_config(tmp_path, evalset_dir, url, variants=None, models=None, **model):
    bot = {"provider": "http", "url": url, "body": BODY, **PATHS, **model}
    return make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1", models={"bot": bot, **(models or {})},
                       variants=variants or [{"name": "app", "kind": "baseline", "model": "bot"}])


def do_run(cfg, tmp_path, **kw):
    return run(cfg, RunOptions(results_dir=tmp_path / "results", progress=False, **kw))


def records(res):
    return {r.item_id: r for r in read_records(res.run_dir / "records.jsonl")}


def test_the_body_template_is_filled_with_json_values_and_the_paths_are_read(tmp_path, evalset_dir):
    with FakeAppServer(good) as app:
        res = do_run(http_config(tmp_path, evalset_dir, app.url), tmp_path)
    assert res.status == "completed", res.message
    sent = {b["ref"]["id"]: b for b in app.bodies}
    assert sent["t1"]["question"] == "where is my new card" and sent["t1"]["fixed"] == [1, "x"]
    assert sent["t1"]["conversation"][-1] == {"role": "user", "content": "Message: where is my new card"}
    assert isinstance(sent["t1"]["conversation"], list)  # a JSON value, not its text pasted in
    recs = records(res)
    assert all(r.correct for r in recs.values())
    t1 = recs["t1"]
    assert (t1.cost_usd, t1.usage.prompt_tokens, t1.retrieved_doc_ids) == (0.0005, 30, ["delivery"])
    assert t1.request["item"]["id"] == "t1" and "expected" not in t1.request["item"]
    assert [recs[i].retrieval.recall_at_k for i in ("t1", "t2")] == [1.0, 0.0]


def test_a_500_and_a_429_are_retried_and_a_4xx_is_a_client_error(tmp_path, evalset_dir):
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def flaky(body) -> AppReply:
        with lock:
            n = seen[body["ref"]["id"]] = seen.get(body["ref"]["id"], 0) + 1
        if body["ref"]["id"] == "t1" and n == 1:
            return AppReply({"error": "overloaded"}, status=500)
        if body["ref"]["id"] == "t2":
            return AppReply({"error": "unknown product"}, status=422)
        if body["ref"]["id"] == "t3" and n == 1:  # a rate limit: retried after the wait it asks for
            return AppReply({"error": "slow down"}, status=429, headers={"Retry-After": "0.2"})
        return good(body)

    with FakeAppServer(flaky) as app:
        res = do_run(http_config(tmp_path, evalset_dir, app.url), tmp_path)
    recs = records(res)
    assert recs["t1"].correct and recs["t1"].attempts == 2 and seen["t1"] == 2
    assert recs["t3"].correct and recs["t3"].attempts == 2 and recs["t3"].wait_s >= 0.2
    t2 = recs["t2"]
    assert (t2.error_kind, t2.attempts, seen["t2"]) == ("client_error", 1, 1)
    assert t2.error == 'HTTP 422 from the application: {"error": "unknown product"}'


def test_a_persistent_500_is_an_error_record_and_the_variant_is_incomplete(tmp_path, evalset_dir):
    def down_for_t3(body) -> AppReply:
        return AppReply({"error": "boom"}, status=503) if body["ref"]["id"] == "t3" else good(body)

    with FakeAppServer(down_for_t3) as app:
        res = do_run(http_config(tmp_path, evalset_dir, app.url, max_retries=1), tmp_path)
        assert sum(b["ref"]["id"] == "t3" for b in app.bodies) == 2
    t3 = records(res)["t3"]
    assert (t3.error_kind, t3.attempts, t3.correct) == ("server_error", 2, None)
    row = pd.read_csv(res.run_dir / "summary.csv").iloc[0]
    assert row["status"] == "incomplete: 1 of 4 unanswered" and row["accuracy"] == 0.75


def test_a_timeout_is_an_error_record(tmp_path, evalset_dir):
    def slow_t4(body) -> AppReply:
        return AppReply(good(body).payload, delay_s=2.0 if body["ref"]["id"] == "t4" else 0)

    with FakeAppServer(slow_t4) as app:
        res = do_run(http_config(tmp_path, evalset_dir, app.url, timeout_s=0.3, max_retries=0), tmp_path)
    t4 = records(res)["t4"]
    assert t4.error_kind == "timeout" and t4.error == "timeout: no response within timeout_s=0.3"


def test_a_missing_answer_path_names_the_path_and_the_top_level_keys(tmp_path, evalset_dir):
    def renamed(body) -> AppReply:
        return AppReply({"result": {"answer": "x"}, "secret_value_never_shown": "s3cr3t", "status": "ok"})

    with FakeAppServer(renamed) as app:
        res = do_run(http_config(tmp_path, evalset_dir, app.url), tmp_path)
    t1 = records(res)["t1"]
    assert t1.error_kind == "bad_response" and t1.attempts == 1
    assert t1.error == ("answer_path 'data.answer' is not in the response (its top-level keys: result, "
                        "secret_value_never_shown, status)")
    assert "s3cr3t" not in (res.run_dir / "records.jsonl").read_text()


def test_secrets_of_the_http_provider_never_reach_the_run_folder(tmp_path, evalset_dir, monkeypatch):
    monkeypatch.setenv("BOT_TOKEN", "tok-ENV-9f3a7c21")

    def needs_token(body) -> AppReply:
        return AppReply({"error": "no"}, status=500) if body["ref"]["id"] == "t4" else good(body)

    with FakeAppServer(needs_token) as app:
        cfg = http_config(tmp_path, evalset_dir, app.url + "?key=url-KEY-55d0e1b2", max_retries=0,
                          headers={"Authorization": {"env": "BOT_TOKEN"}, "X-Team": "lit-HEADER-7b8c9d0e"},
                          body={**BODY, "api_key": "body-KEY-1a2b3c4d"})
        res = do_run(cfg, tmp_path)
    assert res.status == "completed", res.message
    assert {h["authorization"] for h in app.headers_seen} == {"tok-ENV-9f3a7c21"}  # sent on every call
    assert {h["x-team"] for h in app.headers_seen} == {"lit-HEADER-7b8c9d0e"}
    assert {b["api_key"] for b in app.bodies} == {"body-KEY-1a2b3c4d"}
    written = [p for p in res.run_dir.rglob("*") if p.is_file()]
    assert {"config.json", "manifest.json", "records.jsonl"} <= {p.name for p in written}
    for path in written:
        text = path.read_text("utf-8", errors="replace")
        for secret in ("tok-ENV-9f3a7c21", "lit-HEADER-7b8c9d0e", "url-KEY-55d0e1b2", "body-KEY-1a2b3c4d"):
            assert secret not in text, f"{secret} in {path.name}"
    assert records(res)["t4"].error_kind == "server_error"


def test_a_prompt_baseline_and_an_http_application_share_the_tables(tmp_path, evalset_dir, fake_server):
    model = {"provider": "openai-compatible", "base_url": fake_server.base_url, "model": "gpt-4o-mini"}
    variants = [{"name": "baseline", "kind": "baseline", "model": "small"},
                {"name": "app", "kind": "baseline", "model": "bot"}]
    with FakeAppServer(good) as app:
        res = do_run(http_config(tmp_path, evalset_dir, app.url, variants=variants, models={"small": model}),
                     tmp_path)
    assert res.status == "completed", res.message
    df = pd.read_csv(res.run_dir / "summary.csv").set_index("variant")
    assert list(df.index) == ["baseline", "app"]
    stats = ["n", "errors", "format_valid", "format_valid_lo", "accuracy", "accuracy_lo", "accuracy_hi",
             "cost_per_request_usd", "latency_p50_s", "latency_p95_s", "prompt_tokens_mean"]
    assert df.loc[["baseline", "app"], stats].notna().all().all()
    assert df.loc["app", "vs_variant"] == "baseline" and df.loc["app", "paired_n"] == 4
    assert df.loc["app", "cost_per_request_usd"] == pytest.approx(0.0005)
    assert df.loc["app", "price_basis"] == "reported"
    report = (res.run_dir / "summary.md").read_text()
    assert "| app " in report and "| baseline " in report


@pytest.mark.parametrize(("fields", "message"), [
    ({"answer_path": "a"}, "provider http needs url"),
    ({"url": "http://x"}, "provider http needs answer_path"),
    ({"url": "http://x", "answer_path": "a..b"}, "answer_path: 'a..b' is not a dotted path"),
    ({"url": "http://x", "answer_path": "a", "body": {"q": "Q: {{input.text}}"}}, "must be the whole value"),
    ({"url": "http://x", "answer_path": "a", "body": {"q": "{{expected}}"}}, "unknown placeholder 'expected'"),
    ({"url": "http://x", "answer_path": "a", "api_key_env": "K"}, "provider http does not take api_key_env"),
    ({"url": "http://x", "answer_path": "a", "function": "a:b"}, "function and import_path apply only"),
])
def test_the_config_refuses_what_the_http_provider_cannot_use(fields, message):
    with pytest.raises(ValidationError, match=message):
        ModelConfig(provider="http", **fields)


def test_without_a_body_the_request_itself_is_sent(tmp_path, evalset_dir):
    def echo(body) -> AppReply:
        return AppReply({"answer": json.dumps(ANSWERS[body["item"]["input"]["text"]])})

    with FakeAppServer(echo) as app:
        cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1",
                          models={"bot": {"provider": "http", "url": app.url, "answer_path": "answer"}},
                          variants=[{"name": "app", "kind": "baseline", "model": "bot"}])
        res = do_run(cfg, tmp_path)
    assert all(r.correct for r in records(res).values())
    assert set(app.bodies[0]) == {"messages", "item"} and set(app.bodies[0]["item"]) == {"id", "input", "metadata"}



def test_answers_are_cached_and_a_changed_template_asks_again(tmp_path, evalset_dir, monkeypatch):
    monkeypatch.setenv("BOT_TOKEN", "first-token-value")
    with FakeAppServer(good) as app:
        headers = {"Authorization": {"env": "BOT_TOKEN"}}
        do_run(http_config(tmp_path, evalset_dir, app.url, headers=headers), tmp_path)
        monkeypatch.setenv("BOT_TOKEN", "rotated-token-value")  # a rotated credential still hits
        again = do_run(http_config(tmp_path, evalset_dir, app.url, headers=headers), tmp_path)
        assert len(app.bodies) == 4 and all(r.cache_hit for r in records(again).values())
        assert {r.cost_usd for r in records(again).values()} == {0.0005}
        changed = do_run(http_config(tmp_path, evalset_dir, app.url, headers=headers,
                                     body={**BODY, "fixed": [2, "x"]}), tmp_path)
        assert len(app.bodies) == 8 and not any(r.cache_hit for r in records(changed).values())


def test_a_resumed_run_takes_the_url_and_body_secrets_back_from_the_config_file(tmp_path, evalset_dir):
    from harness.config import RunConfig, load_config
    from harness.redact import redacted_fields, restore_secrets, snapshot

    path = http_config(tmp_path, evalset_dir, "http://127.0.0.1:9/answer?key=url-KEY-55d0e1b2",
                       body={**BODY, "api_key": "body-KEY-1a2b3c4d"})
    original = load_config(path)
    stored = RunConfig.model_validate(json.loads(json.dumps(snapshot(original))))
    assert "KEY" not in json.dumps(snapshot(original))
    assert redacted_fields(stored.models["bot"]) == ["url", "body"]
    restore_secrets(stored, original)
    assert (stored.models["bot"].url, stored.models["bot"].body) == (original.models["bot"].url,
                                                                     original.models["bot"].body)
