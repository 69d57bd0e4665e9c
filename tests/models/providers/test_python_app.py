"""`provider: python`: the team's own function is the system under test, with the same concurrency, retries,
cache, latency, cost, error records and statistics as a model."""

import json
import textwrap
import uuid

import pandas as pd
import pytest
from pydantic import ValidationError

from harness.api import run
from harness.config import ModelConfig, load_config
from harness.errors import ConfigError
from harness.rundir.folder import read_records
from harness.runner.runner import RunOptions
from tests.conftest import TEST_ITEMS, make_config

# Answers each tiny-task item from its input (the item's id, input and metadata are all it is given).
ANSWERS = {text: {"intent": lab, "urgent": urgent} for _, text, lab, urgent, _ in TEST_ITEMS}
DOC_IDS = {"t1": ["delivery", "security"], "t2": ["refunds", "security"], "t3": ["refunds"], "t4": ["security"]}


def write_app(tmp_path, source: str) -> str:
    """A module beside the config (imported from the config's folder), under a name of its own per test."""
    name = f"app_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    header = f"import asyncio, json, time\nANSWERS = {ANSWERS!r}\nDOC_IDS = {DOC_IDS!r}\n"
    (tmp_path / name / "bot.py").write_text(header + textwrap.dedent(source))
    return f"{name}.bot"


def app_config(tmp_path, evalset_dir, function: str, **model):
    return make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1",
                       models={"bot": {"provider": "python", "function": function, **model}},
                       variants=[{"name": "app", "kind": "baseline", "model": "bot", "top_k": 2}])


def do_run(cfg, tmp_path, **kw):
    return run(cfg, RunOptions(results_dir=tmp_path / "results", progress=False, **kw))


def summary_row(res):
    return pd.read_csv(res.run_dir / "summary.csv").set_index("variant").loc["app"]


def test_a_sync_function_returning_text(tmp_path, evalset_dir):
    module = write_app(tmp_path, """
        SEEN = []
        def answer(messages, item):
            SEEN.append(item)
            messages.append({"role": "assistant", "content": "mutated"})  # never reaches the record
            return json.dumps(ANSWERS[item["input"]["text"]])
    """)
    res = do_run(app_config(tmp_path, evalset_dir, f"{module}:answer"), tmp_path)
    assert res.status == "completed", res.message
    recs = {r.item_id: r for r in read_records(res.run_dir / "records.jsonl")}
    assert all(r.correct and r.error is None for r in recs.values())
    assert recs["t1"].request["item"] == {"id": "t1", "input": {"text": "where is my new card"}, "metadata": {}}
    assert recs["t1"].request["messages"][-1] == {"role": "user", "content": "Message: where is my new card"}
    assert all(r.latency_s is not None and r.latency_s >= 0 for r in recs.values())
    # no price and none reported: unknown, never $0, and the run is not stopped for want of a price
    assert all(r.cost_usd is None for r in recs.values())
    row = summary_row(res)
    assert row["accuracy"] == 1.0 and pd.isna(row["cost_per_request_usd"]) and row["price_basis"] == "reported"
    import importlib

    seen = importlib.import_module(module).SEEN
    assert all("expected" not in item for item in seen) and len(seen) == 4


def test_an_async_function_returning_a_dict_reports_usage_cost_and_doc_ids(tmp_path, evalset_dir):
    module = write_app(tmp_path, """
        RUNNING = [0, 0]  # now, most at once
        async def answer(messages, item):
            RUNNING[0] += 1
            RUNNING[1] = max(RUNNING)
            await asyncio.sleep(0.05)
            RUNNING[0] -= 1
            return {"text": json.dumps(ANSWERS[item["input"]["text"]]), "cost_usd": 0.002,
                    "usage": {"prompt_tokens": 50, "completion_tokens": 5}, "doc_ids": DOC_IDS[item["id"]]}
    """)
    res = do_run(app_config(tmp_path, evalset_dir, f"{module}:answer"), tmp_path)
    assert res.status == "completed", res.message
    import importlib

    assert importlib.import_module(module).RUNNING[1] > 1  # run.concurrency 4: called concurrently
    recs = {r.item_id: r for r in read_records(res.run_dir / "records.jsonl")}
    assert {r.cost_usd for r in recs.values()} == {0.002}
    assert recs["t1"].usage.prompt_tokens == 50 and recs["t1"].usage.total_tokens == 55
    assert recs["t2"].retrieved_doc_ids == ["refunds", "security"]
    # expected: t1 delivery, t2 security, t3 refunds, t4 delivery; top_k 2
    assert [recs[i].retrieval.recall_at_k for i in ("t1", "t2", "t3", "t4")] == [1.0, 1.0, 1.0, 0.0]
    assert [recs[i].retrieval.mrr for i in ("t1", "t2", "t3", "t4")] == [1.0, 0.5, 1.0, 0.0]
    row = summary_row(res)
    assert row["recall_at_k"] == pytest.approx(0.75) and row["mrr"] == pytest.approx(0.625)
    assert row["cost_per_request_usd"] == pytest.approx(0.002) and row["prompt_tokens_mean"] == 50
    # a second run answers from the cache, with what the application reported
    again = do_run(app_config(tmp_path, evalset_dir, f"{module}:answer"), tmp_path)
    cached = read_records(again.run_dir / "records.jsonl")
    assert all(r.cache_hit for r in cached) and {r.cost_usd for r in cached} == {0.002}
    assert {r.item_id: r.retrieved_doc_ids for r in cached}["t2"] == ["refunds", "security"]
    assert summary_row(again)["mrr"] == pytest.approx(0.625)


def test_a_raised_exception_is_an_error_record_and_timeouts_are_retried(tmp_path, evalset_dir):
    module = write_app(tmp_path, """
        CALLS = {}
        def answer(messages, item):
            n = CALLS[item["id"]] = CALLS.get(item["id"], 0) + 1
            if item["id"] == "t2":
                raise ValueError("no route for " + item["id"])
            if item["id"] == "t3" and n == 1:
                raise TimeoutError("backend slow")
            return json.dumps(ANSWERS[item["input"]["text"]])
    """)
    res = do_run(app_config(tmp_path, evalset_dir, f"{module}:answer"), tmp_path)
    recs = {r.item_id: r for r in read_records(res.run_dir / "records.jsonl")}
    t2 = recs["t2"]
    assert (t2.error_kind, t2.error, t2.attempts) == ("client_error", "ValueError: no route for t2", 1)
    assert not t2.correct and "Traceback" not in (res.run_dir / "records.jsonl").read_text()
    assert recs["t3"].correct and recs["t3"].attempts == 2  # TimeoutError: retried
    row = summary_row(res)
    assert row["status"].startswith("incomplete") and row["errors"] == 1 and row["accuracy"] == 0.75


def test_a_function_that_outlasts_timeout_s_is_a_timeout(tmp_path, evalset_dir):
    module = write_app(tmp_path, """
        async def answer(messages, item):
            await asyncio.sleep(5 if item["id"] == "t1" else 0)
            return json.dumps(ANSWERS[item["input"]["text"]])
    """)
    res = do_run(app_config(tmp_path, evalset_dir, f"{module}:answer", timeout_s=0.2, max_retries=0), tmp_path)
    t1 = {r.item_id: r for r in read_records(res.run_dir / "records.jsonl")}["t1"]
    assert t1.error_kind == "timeout" and "timeout_s=0.2" in t1.error


@pytest.mark.parametrize(("model", "expected"), [
    ({"price_per_call": 0.01}, 0.01),
    ({"price": {"input": 1.0, "output": 2.0}}, (40 * 1.0 + 10 * 2.0) / 1e6),
])
def test_price_per_call_or_per_token_when_the_application_reports_no_cost(tmp_path, evalset_dir, model, expected):
    module = write_app(tmp_path, """
        def answer(messages, item):
            return {"text": json.dumps(ANSWERS[item["input"]["text"]]),
                    "usage": {"prompt_tokens": 40, "completion_tokens": 10}}
    """)
    res = do_run(app_config(tmp_path, evalset_dir, f"{module}:answer", **model), tmp_path)
    assert [r.cost_usd for r in read_records(res.run_dir / "records.jsonl")] == [pytest.approx(expected)] * 4
    assert summary_row(res)["cost_per_request_usd"] == pytest.approx(expected)


def test_a_function_that_cannot_be_imported_skips_its_variant_saying_why(tmp_path, evalset_dir):
    res = do_run(app_config(tmp_path, evalset_dir, "no_such_app_module.bot:answer"), tmp_path)
    info = json.loads((res.run_dir / "manifest.json").read_text())["variants"]["app"]
    assert info["skipped"].startswith("cannot import no_such_app_module.bot:answer: ModuleNotFoundError")


def test_a_bad_return_value_is_a_bad_response_record(tmp_path, evalset_dir):
    module = write_app(tmp_path, """
        def answer(messages, item):
            return {"txt": "typo"} if item["id"] == "t1" else 42
    """)
    res = do_run(app_config(tmp_path, evalset_dir, f"{module}:answer"), tmp_path)
    recs = {r.item_id: r for r in read_records(res.run_dir / "records.jsonl")}
    assert recs["t1"].error_kind == "bad_response" and "unknown keys txt" in recs["t1"].error
    assert recs["t2"].error == f"{module}:answer returned a int; return the answer text or a dict with text"


@pytest.mark.parametrize(("fields", "message"), [
    ({"function": "myapp.bot"}, 'provider python needs function: "package.module:function"'),
    ({"function": "a:b", "base_url": "http://x/v1"}, "provider python does not take base_url"),
    ({"function": "a:b", "headers": {"X": "y"}}, "provider python does not take headers"),
    ({"function": "a:b", "price_per_call": 0.1, "price": {"input": 1, "output": 1}}, "price_per_call or price"),
    ({"function": "a:b", "url": "http://x"}, "url, body, answer_path, .* apply only to provider: http"),
    ({"model": "m", "base_url": "http://x/v1", "function": "a:b"}, "function and import_path apply only"),
])
def test_the_config_refuses_what_the_python_provider_does_not_take(fields, message):
    provider = "openai-compatible" if "model" in fields else "python"
    with pytest.raises(ValidationError, match=message):
        ModelConfig(provider=provider, **fields)


def test_batch_mode_refuses_an_application_in_one_line(tmp_path, evalset_dir):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1",
                      models={"bot": {"provider": "python", "function": "a.b:c"}},
                      variants=[{"name": "app", "kind": "baseline", "model": "bot"}], run={"mode": "batch"})
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert "\n" not in str(err.value)
    assert "which model 'bot' (provider: python) does not serve; use mode: sync" in str(err.value)


def test_editing_the_function_s_module_asks_again(tmp_path, evalset_dir):
    module = write_app(tmp_path, """
        def answer(messages, item):
            return json.dumps(ANSWERS[item["input"]["text"]])
    """)
    first = do_run(app_config(tmp_path, evalset_dir, f"{module}:answer"), tmp_path)
    same = do_run(app_config(tmp_path, evalset_dir, f"{module}:answer"), tmp_path)
    assert all(r.cache_hit for r in read_records(same.run_dir / "records.jsonl"))
    path = tmp_path / module.split(".")[0] / "bot.py"
    path.write_text(path.read_text() + "\n# a change to the application\n")
    edited = do_run(app_config(tmp_path, evalset_dir, f"{module}:answer"), tmp_path)
    assert not any(r.cache_hit for r in read_records(edited.run_dir / "records.jsonl"))
    assert first.status == edited.status == "completed"
