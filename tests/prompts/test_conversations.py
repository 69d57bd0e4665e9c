"""Conversations as an item's input (issue 20, point 1): every variant kind sends every turn in order, wrapped in
its instructions, examples, retrieved passages or training prompt; the fine-tuning export writes the whole
conversation; leakage checks, the held-out guard and similarity selection read the conversation's words; a bad
conversation is one line naming the file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import harness
from harness.config import load_config
from harness.data.evalset import load_evalset
from harness.data.leakage import check_leakage
from harness.errors import EvalSetError
from harness.finetune.data import training_items
from harness.finetune.export import export
from harness.finetune.openai_format import validate_training_file
from harness.prompts.kinds.base import PrepareContext, kind_of
from tests.conftest import write_jsonl
from tests.fakes.openai_server import FakeOpenAIServer, Reply

TASK = {"instructions": "You are the support desk of a bank. Answer the customer's last message.",
        "input_template": "Question: {text}"}


def conv(*turns: str) -> list[dict[str, str]]:
    return [{"role": "user" if n % 2 == 0 else "assistant", "content": t} for n, t in enumerate(turns)]


TEST = {
    "c1": conv("my card has not arrived", "When did you order it?", "nine days ago, is that normal?"),
    "c2": conv("I was charged twice for one coffee", "Which day was it?", "last tuesday at the station kiosk"),
}
TRAIN = {
    "k1": conv("how long do cards take to arrive", "Five working days.", "and if it is later than that?"),
    "k2": conv("a shop charged me twice", "Sorry to hear that.", "what can I do about it"),
}
DOCS = {"delivery": "Cards arrive within five working days; after ten days we send a new one.",
        "disputes": "Double charges are refunded by the merchant; open a dispute in the app after three days."}


@pytest.fixture
def conv_evalset(tmp_path: Path) -> Path:
    d = tmp_path / "evalsets" / "conv"
    (d / "docs").mkdir(parents=True)
    (d / "task.yaml").write_text(yaml.safe_dump(TASK, sort_keys=False))
    write_jsonl(d / "test.jsonl", [{"id": i, "input": {"messages": m}, "expected": "ok"} for i, m in TEST.items()])
    # a single-message item in the same split: the template still serves it
    write_jsonl(d / "train.jsonl", [{"id": i, "input": {"messages": m}, "expected": f"answer {i}"}
                                    for i, m in TRAIN.items()]
                + [{"id": "k3", "input": {"text": "do you have a branch in leeds"}, "expected": "No."}])
    for doc_id, text in DOCS.items():
        (d / "docs" / f"{doc_id}.md").write_text(text)
    return d


def contains_in_order(sent: list[dict[str, Any]], turns: list[dict[str, str]]) -> bool:
    """Every turn appears, with its role, in order, after the last example (the item's turns come last)."""
    pos = 0
    for turn in turns:
        while pos < len(sent) and not (sent[pos]["role"] == turn["role"] and turn["content"] in (sent[pos]["content"] or "")):
            pos += 1
        if pos == len(sent):
            return False
        pos += 1
    return True


def test_every_kind_sends_every_turn_in_order(tmp_path, conv_evalset):
    server = FakeOpenAIServer(lambda body: Reply(text="ok"), models=["gpt-4o-mini", "ft-model"]).start()
    try:
        (tmp_path / "ft-id.txt").write_text("ft-model")
        cfg = {
            "name": "conv", "evalset": str(conv_evalset),
            "models": {"small": {"provider": "openai-compatible", "base_url": server.base_url, "model": "gpt-4o-mini"},
                       "tuned": {"provider": "openai-compatible", "base_url": server.base_url,
                                 "model_file": str(tmp_path / "ft-id.txt"), "price_as": "gpt-4o-mini"}},
            "variants": [{"name": "baseline", "kind": "baseline", "model": "small"},
                         {"name": "few-shot", "kind": "few_shot", "model": "small", "shots": 3, "selection": "first"},
                         {"name": "rag", "kind": "rag", "model": "small", "top_k": 1},
                         {"name": "ft", "kind": "fine_tuned", "model": "tuned"}],
            "run": {"concurrency": 2, "temperature": 0, "max_tokens": 16, "seed": 1},
        }
        path = tmp_path / "conv.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        result = harness.run(path, out=tmp_path / "r", progress=False)
    finally:
        server.stop()
    assert result.status == "completed"
    records = {(r["variant"], r["item_id"]): r for r in map(json.loads, (result.path / "records.jsonl").open())}
    assert len(records) == 8 and all(r["error"] is None and r["correct"] for r in records.values())
    for (variant, item_id), rec in records.items():
        sent = rec["request"]["messages"]
        assert sent[0]["role"] == "system" and "support desk" in sent[0]["content"]
        turns = TEST[item_id]
        assert contains_in_order(sent[-len(turns):], turns), (variant, item_id, sent)
        assert sent[-1]["role"] == "user"
        if variant == "few-shot":  # the examples (conversations too) come before the item, with their answers
            assert contains_in_order(sent, [*TRAIN["k1"], {"role": "assistant", "content": "answer k1"}, *turns])
        if variant == "rag":  # the passages sit above the turn to answer; the history is left as it was
            assert sent[-1]["content"].startswith("Reference documents:") and sent[-2] == turns[-2]
        if variant in ("baseline", "ft"):
            assert sent[1:] == turns
    assert len(records) == len(server.requests)


def test_retrieval_and_similarity_embed_the_conversation(conv_evalset):
    """The query is the turn to answer, then the history: never the repr of a list of dicts."""
    ev = load_evalset(conv_evalset)
    seen: list[str] = []

    def embed(texts):
        seen.extend(texts)
        return np.ones((len(texts), 4), dtype=np.float32)

    ctx = PrepareContext(ev)
    kind = kind_of(load_config_variant(conv_evalset, {"kind": "few_shot", "shots": 2, "selection": "similar"}))
    prepared = kind.prepare(ctx, ev.test, system_role=True, embed_fn=embed)
    assert seen[0] == "nine days ago, is that normal?\n\nmy card has not arrived\nWhen did you order it?"
    assert "how long do cards take to arrive" in "\n".join(seen)  # the pool, embedded the same way
    assert not any("'role'" in t or "content" in t for t in seen)
    assert len(prepared["c1"].shot_ids) == 2


def load_config_variant(evalset: Path, variant: dict[str, Any]):
    cfg = {"name": "x", "evalset": str(evalset),
           "models": {"m": {"provider": "openai-compatible", "base_url": "http://127.0.0.1:9/v1", "model": "m"}},
           "variants": [{"name": "v", "model": "m", **variant}]}
    path = evalset.parent / "x.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path).variants[0]


def test_leakage_and_the_held_out_guard_read_the_turns(conv_evalset):
    # a train conversation repeating test item c2 word for word (other case), and one with c1's words in
    # other turns: both are found, by the leakage check and by the export's held-out guard
    rows = [json.loads(line) for line in (conv_evalset / "train.jsonl").open()]
    rows.append({"id": "dup", "input": {"messages": conv("I was charged TWICE for one coffee", "Which day was it?",
                                                         "last Tuesday at the station kiosk")}, "expected": "x"})
    write_jsonl(conv_evalset / "train.jsonl", rows)
    ev = load_evalset(conv_evalset)
    found = {(f.test_id, f.other_id, f.kind) for f in check_leakage(ev)}
    assert ("c2", "dup", "exact") in found and not any(f[1] in ("k1", "k2") for f in found)
    split = training_items(ev, seed=0)
    assert split.excluded == {"dup": "c2"} and "dup" not in {i.id for i in split.train}


def test_export_writes_the_whole_conversation(tmp_path, conv_evalset):
    cfg = {"name": "convft", "evalset": str(conv_evalset),
           "models": {"tuned": {"provider": "openai", "model_file": str(tmp_path / "id.txt"), "api_key_env": "K"}},
           "variants": [{"name": "ft", "kind": "fine_tuned", "model": "tuned"}],
           "finetune": {"output_dir": str(tmp_path / "out"), "base_model": "gpt-4o-mini-2024-07-18"}}
    path = tmp_path / "ft.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = export(load_config(path), load_evalset(conv_evalset))
    lines = [json.loads(x) for x in res.train_path.open()]
    by_last = {line["messages"][-1]["content"]: line["messages"] for line in lines}
    assert by_last["answer k1"] == [{"role": "system", "content": TASK["instructions"]}, *TRAIN["k1"],
                                    {"role": "assistant", "content": "answer k1"}]
    assert by_last["No."][1] == {"role": "user", "content": "Question: do you have a branch in leeds"}
    assert validate_training_file(res.train_path, res.estimator, min_examples=1).ok


@pytest.mark.parametrize(("messages", "why"), [
    ([{"role": "customer", "content": "hi"}], r"input\.messages\[0\]\.role is 'customer'; use user or assistant"),
    ([], r"input\.messages is empty"),
    (conv("hi", "hello"), r"input\.messages\[1\] is an assistant turn; the last turn must be the user's"),
    ([{"role": "user", "content": ""}], r"input\.messages\[0\]\.content must be non-empty text"),
])
def test_a_bad_conversation_is_one_line_naming_the_file_and_line(conv_evalset, messages, why):
    with (conv_evalset / "test.jsonl").open("a") as f:
        f.write(json.dumps({"id": "bad", "input": {"messages": messages}, "expected": "x"}) + "\n")
    with pytest.raises(EvalSetError, match=rf"test\.jsonl:3: {why}") as err:
        load_evalset(conv_evalset)
    assert "\n" not in str(err.value)


def test_the_task_names_the_conversation_field_and_may_leave_out_the_template(conv_evalset):
    (conv_evalset / "task.yaml").write_text(yaml.safe_dump({"instructions": "Answer.", "messages_field": "history"}))
    write_jsonl(conv_evalset / "test.jsonl", [{"id": "h1", "input": {"history": TEST["c1"]}, "expected": "ok"}])
    write_jsonl(conv_evalset / "train.jsonl", [{"id": "h2", "input": {"text": "no conversation"}, "expected": "x"}])
    with pytest.raises(EvalSetError, match=r"train\.jsonl:1: input has no conversation under 'history' and "
                                           r"task\.yaml has no input_template"):
        load_evalset(conv_evalset)
    (conv_evalset / "train.jsonl").unlink()
    ev = load_evalset(conv_evalset)
    assert ev.render_input(ev.test[0]) == ("user: my card has not arrived\nassistant: When did you order it?\n"
                                           "user: nine days ago, is that normal?")
