"""Tool calls (issue 20, point 2): task.yaml's tools go out through the SDK's `tools` parameter, the calls come back
into the record (and through the response cache), and the core checks score them: format validity against the
declared tools' parameters, order-free matching of the expected calls, per-argument results as per-field
accuracy; the fine-tuning export writes OpenAI's tool-calling training format. The demo config
(configs/tool_calls.yaml) runs against the loopback fake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import harness
from harness.config import load_config
from harness.data.evalset import load_evalset
from harness.errors import EvalSetError
from harness.finetune.export import export
from harness.finetune.openai_format import validate_training_file
from harness.records import Record, ToolCall
from harness.scoring.scorers import summarize
from harness.scoring.tool_calls import ToolCallScorer
from tests.conftest import REPO, write_jsonl
from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text

DEMO = REPO / "evalsets" / "tool_calls_demo"
TOOLS = yaml.safe_load((DEMO / "task.yaml").read_text())["tools"]
NO_TOOL = "I can only help with shop orders and callbacks here. For anything else, please call 0800 555 0199."
REFUND = {"tool_calls": [{"name": "refund_order", "arguments": {"order_id": "LK-31008", "reason": "damaged"}}]}
TWO = {"tool_calls": [{"name": "get_order_status", "arguments": {"order_id": "LK-50101"}},
                      {"name": "get_order_status", "arguments": {"order_id": "LK-50102"}}]}


def call(name: str, args: Any) -> ToolCall:
    return ToolCall(name=name, arguments=args if isinstance(args, str) else json.dumps(args))


@pytest.fixture(scope="module")
def scorer() -> ToolCallScorer:
    return ToolCallScorer(TOOLS)


@pytest.mark.parametrize(("calls", "text", "expected", "valid", "correct", "fields"), [
    # right
    ([call("refund_order", {"order_id": "LK-31008", "reason": "damaged"})], "", REFUND, True, True,
     {"refund_order.order_id": True, "refund_order.reason": True}),
    # wrong name: a declared tool, the wrong one
    ([call("get_order_status", {"order_id": "LK-31008"})], "", REFUND, True, False,
     {"refund_order.order_id": False, "refund_order.reason": False}),
    # wrong name: a tool that is not declared
    ([call("cancel_order", {"order_id": "LK-31008"})], "", REFUND, False, False,
     {"refund_order.order_id": False, "refund_order.reason": False}),
    # wrong argument (a valid one, the wrong value)
    ([call("refund_order", {"order_id": "LK-31008", "reason": "changed_mind"})], "", REFUND, True, False,
     {"refund_order.order_id": True, "refund_order.reason": False}),
    # invalid arguments: not JSON
    ([call("refund_order", '{"order_id": "LK-31008", "reason": ')], "", REFUND, False, False,
     {"refund_order.order_id": False, "refund_order.reason": False}),
    # invalid arguments: JSON that breaks the schema (an enum value the tool does not take), even if "close"
    ([call("refund_order", {"order_id": "LK-31008", "reason": "broken"})], "", REFUND, False, False,
     {"refund_order.order_id": True, "refund_order.reason": False}),
    # invalid arguments: a required one missing
    ([call("refund_order", {"order_id": "LK-31008"})], "", REFUND, False, False,
     {"refund_order.order_id": True, "refund_order.reason": False}),
    # an extra call besides the right one
    ([call("refund_order", {"order_id": "LK-31008", "reason": "damaged"}),
      call("get_order_status", {"order_id": "LK-31008"})], "", REFUND, True, False,
     {"refund_order.order_id": True, "refund_order.reason": True}),
    # no call: text where a call was expected (valid text, not correct)
    ([], "Sorry to hear that, I will refund it.", REFUND, True, False,
     {"refund_order.order_id": False, "refund_order.reason": False}),
    # two expected calls answered in the other order: right (order-free)
    ([call("get_order_status", {"order_id": "LK-50102"}), call("get_order_status", {"order_id": "LK-50101"})],
     "", TWO, True, True, {"get_order_status#1.order_id": True, "get_order_status#2.order_id": True}),
    # one of two expected calls missing
    ([call("get_order_status", {"order_id": "LK-50102"})], "", TWO, True, False,
     {"get_order_status#1.order_id": False, "get_order_status#2.order_id": True}),
    # text expected, text given: right, then wrong
    ([], NO_TOOL.upper(), NO_TOOL, True, True, None),
    ([], "Our Leeds store opens at nine.", NO_TOOL, True, False, None),
    # text expected, a call given: wrong, however valid the call
    ([call("get_order_status", {"order_id": "LK-20417"})], "", NO_TOOL, True, False, None),
    # no call and no text: not a valid answer
    ([], "  ", NO_TOOL, False, False, None),
])
def test_tool_call_scoring(scorer, calls, text, expected, valid, correct, fields):
    parsed, checks = scorer.score(text, calls, expected)
    assert (checks.format_valid, checks.correct, checks.fields) == (valid, correct, fields)
    assert checks.correct_lenient == correct
    if calls:
        assert [p["name"] for p in parsed] == [c.name for c in calls]


def test_per_argument_accuracy_reaches_the_summary(scorer):
    right = [call("refund_order", {"order_id": "LK-31008", "reason": "damaged"})]
    wrong_reason = [call("refund_order", {"order_id": "LK-31008", "reason": "changed_mind"})]
    records = []
    for n, calls in enumerate([right, wrong_reason, None]):
        rec = Record(item_id=f"i{n}", variant="v", model="m", model_id="m", request={}, expected=REFUND)
        if calls is None:
            rec.error, rec.error_kind = "timeout", "timeout"  # an unanswered call counts as wrong on every argument
        else:
            rec.parsed, checks = scorer.score("", calls, REFUND)
            checks.write(rec)
            rec.primary = float(bool(rec.correct))
        records.append(rec)
    row = summarize(records, {}, {r.item_id: REFUND for r in records})
    assert row["acc_refund_order.order_id"] == pytest.approx(2 / 3)
    assert row["acc_refund_order.reason"] == pytest.approx(1 / 3)
    assert row["accuracy"] == pytest.approx(1 / 3)


# -- the demo config end to end, against the loopback fake ------------------------------------------------------

# What the fake model answers, by a phrase of each test item's last user turn: right on t01-t04, t07, t10-t12;
# a wrong refund reason on t06, a text answer where a call is expected on t08, a call where text is expected
# on t05, and arguments that break the schema on t09... which expects text: so 8 of 12 right.
SCRIPT: dict[str, Reply] = {
    "LK-20417": Reply(text="", tool_calls=[{"name": "get_order_status", "arguments": {"order_id": "LK-20417"}}]),
    "LK-31008": Reply(text="", tool_calls=[{"name": "refund_order",
                                            "arguments": {"order_id": "LK-31008", "reason": "damaged"}}]),
    "Has it shipped": Reply(text="", tool_calls=[{"name": "get_order_status", "arguments": {"order_id": "LK-11890"}}]),
    "this afternoon": Reply(text="", tool_calls=[{"name": "schedule_callback",
                                                  "arguments": {"phone": "07700900123", "time_slot": "afternoon"}}]),
    "Leeds store": Reply(text="", tool_calls=[{"name": "get_order_status", "arguments": {"order_id": "LK-00000"}}]),
    "LK-40552": Reply(text="", tool_calls=[{"name": "refund_order",
                                            "arguments": {"order_id": "LK-40552", "reason": "damaged"}}]),
    "LK-50101": Reply(text="", tool_calls=[{"name": "get_order_status", "arguments": {"order_id": "LK-50102"}},
                                           {"name": "get_order_status", "arguments": {"order_id": "LK-50101"}}]),
    "Just refund it": Reply(text="Refund done."),
    "Orbit handset": Reply(text="", tool_calls=[{"name": "schedule_callback", "arguments": '{"phone": 7}'}]),
    "LK-61230": Reply(text="", tool_calls=[{"name": "refund_order",
                                            "arguments": {"order_id": "LK-61230", "reason": "changed_mind"}}]),
    "tomorrow morning": Reply(text="", tool_calls=[{"name": "schedule_callback",
                                                    "arguments": {"phone": "07700900456", "time_slot": "morning"}}]),
    "voicemail PIN": Reply(text=NO_TOOL),
}


def scripted(body: dict[str, Any]) -> Reply:
    text = last_user_text(body)
    return next(reply for phrase, reply in SCRIPT.items() if phrase in text)


def demo_config(tmp_path: Path, base_url: str) -> Path:
    cfg = yaml.safe_load((REPO / "configs" / "tool_calls.yaml").read_text())
    cfg["models"]["assistant"]["base_url"] = base_url
    cfg["evalset"] = str(DEMO)
    path = tmp_path / "tool_calls.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_the_demo_config_scores_tool_calls(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLS_DEMO_API_KEY", "test-key")
    server = FakeOpenAIServer(scripted, models=["Qwen/Qwen2.5-7B-Instruct"]).start()
    try:
        path = demo_config(tmp_path, server.base_url)
        first = harness.run(path, out=tmp_path / "r1", progress=False)
        n_calls = len(server.requests)
        again = harness.run(path, out=tmp_path / "r2", progress=False)  # every answer from the cache
    finally:
        server.stop()
    assert n_calls == 24 and len(server.requests) == 24
    body = server.requests[0]
    assert [t["function"]["name"] for t in body["tools"]] == ["get_order_status", "refund_order", "schedule_callback"]
    assert body["tool_choice"] == "auto" and "response_format" not in body
    for run in (first, again):
        records = {(r["variant"], r["item_id"]): r for r in map(json.loads, (run.path / "records.jsonl").open())}
        base = {i: r for (v, i), r in records.items() if v == "baseline"}
        assert {i for i, r in base.items() if r["correct"]} == {"t01", "t02", "t03", "t04", "t07", "t10", "t11", "t12"}
        assert {i for i, r in base.items() if not r["format_valid"]} == {"t09"}
        assert base["t07"]["tool_calls"][0] == {"name": "get_order_status", "arguments": '{"order_id": "LK-50102"}',
                                                "id": "call_0"}
        assert base["t06"]["fields"] == {"refund_order.order_id": True, "refund_order.reason": False}
        assert base["t08"]["raw_text"] == "Refund done." and base["t08"]["answer_issue"] is None
        row = run.summary.set_index("variant").loc["baseline"]
        assert row["accuracy"] == pytest.approx(8 / 12) and row["format_valid"] == pytest.approx(11 / 12)
        # per argument, over the items expecting it: reason is right on t02 and t10 of t02, t06, t08, t10
        assert row["acc_refund_order.reason"] == pytest.approx(2 / 4)
        assert row["acc_get_order_status.order_id"] == pytest.approx(2 / 2)
    assert all(r["cache_hit"] for r in map(json.loads, (again.path / "records.jsonl").open()))
    assert "refund_order.reason" in (first.path / "report.md").read_text()  # per-argument accuracy in the tables


def test_the_export_writes_openai_tool_calling_lines(tmp_path):
    cfg = yaml.safe_load((REPO / "configs" / "tool_calls.yaml").read_text())
    cfg["evalset"] = str(DEMO)
    cfg["models"]["tuned"] = {"provider": "openai", "model_file": str(tmp_path / "id.txt"), "api_key_env": "K"}
    cfg["variants"].append({"name": "ft", "kind": "fine_tuned", "model": "tuned"})
    cfg["finetune"] = {"output_dir": str(tmp_path / "out"), "base_model": "gpt-4o-mini-2024-07-18"}
    path = tmp_path / "ft.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    res = export(load_config(path), load_evalset(DEMO))
    lines = {json.loads(x)["messages"][1]["content"]: json.loads(x) for x in res.train_path.open()}
    assert len(lines) == 6 and all(line["tools"] == TOOLS for line in lines.values())
    two = lines["Where are my parcels?"]["messages"]  # a conversation, answered by two calls
    assert [m["role"] for m in two] == ["system", "user", "assistant", "user", "assistant"]
    assert two[-1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_order_status", "arguments": '{"order_id": "LK-35570"}'}},
        {"id": "call_2", "type": "function",
         "function": {"name": "get_order_status", "arguments": '{"order_id": "LK-35571"}'}}]}
    assert lines["Do you sell gift cards?"]["messages"][-1] == {"role": "assistant", "content": NO_TOOL}
    assert validate_training_file(res.train_path, res.estimator, min_examples=1).ok
    bad = tmp_path / "bad.jsonl"  # the format check catches a call without its arguments as JSON text
    line = lines["Where are my parcels?"]
    line["messages"][-1]["tool_calls"][0]["function"]["arguments"] = {"order_id": "LK-35570"}
    bad.write_text(json.dumps(line) + "\n")
    report = validate_training_file(bad, res.estimator, min_examples=1)
    assert report.errors == [f"{bad}:1: messages[4].tool_calls[0] must be {{id, type: function, function: "
                             f"{{name, arguments}}}} with arguments as JSON text"]


@pytest.mark.parametrize(("change", "why"), [
    ({"expected": {"tool_calls": [{"name": "cancel_order", "arguments": {}}]}},
     r"test\.jsonl:1: expected tool_calls\[0\] calls 'cancel_order', which task\.yaml tools does not declare"),
    ({"expected": {"tool_calls": [{"name": "refund_order", "arguments": {"order_id": "LK-1", "reason": "damaged"}}]}},
     r"test\.jsonl:1: expected tool_calls\[0\]\.arguments do not match refund_order's parameters at order_id"),
    ({"expected": {"order": "LK-12345"}}, r"test\.jsonl:1: expected must be \{\"tool_calls\""),
])
def test_expected_calls_are_checked_against_the_tools(tmp_path, change, why):
    d = tmp_path / "ev"
    d.mkdir()
    (d / "task.yaml").write_text((DEMO / "task.yaml").read_text())
    write_jsonl(d / "test.jsonl", [{"id": "x", "input": {"message": "hi"}, **change}])
    with pytest.raises(EvalSetError, match=why):
        load_evalset(d)


def test_bad_tools_in_task_yaml_are_one_line(tmp_path):
    d = tmp_path / "ev"
    d.mkdir()
    task = yaml.safe_load((DEMO / "task.yaml").read_text())
    write_jsonl(d / "test.jsonl", [{"id": "x", "input": {"message": "hi"}, "expected": "ok"}])
    task["tool_choice"] = {"type": "function", "function": {"name": "nope"}}
    (d / "task.yaml").write_text(yaml.safe_dump(task))
    with pytest.raises(EvalSetError, match=r"task\.yaml: tool_choice names 'nope', which is not a declared tool"):
        load_evalset(d)
    task["tool_choice"] = "auto"
    task["tools"][1]["function"]["parameters"]["properties"]["reason"]["type"] = "text"
    (d / "task.yaml").write_text(yaml.safe_dump(task))
    with pytest.raises(EvalSetError, match=r"tools\[1\]\.function\.parameters is not a valid JSON Schema"):
        load_evalset(d)


# -- the providers send the tools and read the calls --------------------------------------------------------------

@pytest.mark.parametrize("provider", ["openai", "azure", "openai-compatible"])
def test_each_openai_sdk_provider_sends_tools_and_reads_calls(provider, monkeypatch):
    import asyncio

    from harness.config import ModelConfig
    from harness.models.client import ModelClient

    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k")
    server = FakeOpenAIServer(lambda body: Reply(text="", tool_calls=[
        {"name": "get_order_status", "arguments": {"order_id": "LK-20417"}}])).start()
    try:
        settings = {"azure": {"azure_endpoint": server.root_url, "deployment": "d", "api_version": "2024-10-21"}}
        cfg = ModelConfig(provider=provider, **settings.get(provider, {"base_url": server.base_url,
                                                                        "model": "gpt-4o-mini"}))
        choice = {"type": "function", "function": {"name": "get_order_status"}}
        client = ModelClient("m", cfg, "gpt-4o-mini", cfg.endpoint, "k", None, tools=TOOLS, tool_choice=choice)
        request = client.build_request([{"role": "user", "content": "LK-20417?"}], temperature=0, max_tokens=9,
                                       seed=None, stop=[])
        result = asyncio.run(client.complete(request))
    finally:
        server.stop()
    assert server.requests[0]["tools"] == TOOLS and server.requests[0]["tool_choice"] == choice
    assert result.tool_calls == [ToolCall(name="get_order_status", arguments='{"order_id": "LK-20417"}', id="call_0")]
    assert result.text == "" and result.finish_reason == "tool_calls"


def test_a_call_without_a_function_name_is_a_bad_response():
    import asyncio

    from harness.config import ModelConfig
    from harness.models.client import ModelClient

    body = {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [{
        "index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": None,
                    "tool_calls": [{"id": "c", "type": "function", "function": {"arguments": "{}"}}]}}]}
    server = FakeOpenAIServer(lambda b: Reply(raw_body=json.dumps(body).encode())).start()
    try:
        cfg = ModelConfig(provider="openai-compatible", model="m", base_url=server.base_url)
        client = ModelClient("m", cfg, "m", server.base_url, None, None, tools=TOOLS)
        request = client.build_request([{"role": "user", "content": "hi"}], temperature=0, max_tokens=9, seed=None,
                                       stop=[])
        result = asyncio.run(client.complete(request))
    finally:
        server.stop()
    assert (result.kind, result.message) == ("bad_response", "response tool call has no function name")


def test_validate_warns_that_the_embedded_model_cannot_call_tools(tmp_path, capsys):
    from harness.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: tl\nevalset: {REPO / 'evalsets' / 'tool_calls_demo'}\n"
                   "models:\n  gemma: {provider: local, model: gemma-3-270m, price_per_hour: 0.05}\n"
                   "variants:\n  - {name: baseline, kind: baseline, model: gemma}\n")
    assert main(["validate", str(cfg), "--today", "2026-12-05"]) == 0
    assert "warning: variant baseline: provider local cannot call tools" in capsys.readouterr().out
