"""Run folders for the viewer's tests, made by real runs against the loopback fake server.

An accepted run and a candidate run of four variants (baseline, few-shot, RAG, fine-tuned) on 30 items:
- baseline and rag (gpt-4o-mini) answer items 0-3 wrongly in both runs;
- in the candidate, the fine-tuned model answers items 1-7 wrongly and fails item 11 with HTTP 500 (the gate
  fails: accuracy drops significantly, and the error rate rises beyond the tolerance);
- in the candidate, few-shot (gpt-4o) answers item 5 with hostile markup instead of JSON (a bad answer);
- item 9's input itself carries markup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.api import run
from harness.runner.runner import RunOptions
from tests.analysis.test_compare import FT_MODEL, LABELS, item_number, scripted
from tests.conftest import TASK, write_jsonl
from tests.fakes.openai_server import FakeOpenAIServer, Reply

HOSTILE = '<script>window.__pwned=1</script>"><img src=x onerror="window.__pwned=2">'
HOSTILE_INPUT = '<img src=x onerror="window.__pwned=3">'
N_ITEMS = 30
DOCS = {"delivery": "Cards are delivered within 5 working days. Tracking is in the app.",
        "security": "If a card is lost or stolen, freeze it in the app immediately and order a new one.",
        "refunds": "Refunds for merchant purchases go through the merchant; disputed charges take 10 days."}
# What the candidate run holds, as the view must count it (see the module docstring).
EXPECTED = {"all": 30, "errors": 1, "bad": 1, "unknown": 0, "r2w": 8, "w2r": 0, "disagree": 9, "gate": 8}
GATE_ITEMS = [f"q{i:03d}" for i in (1, 2, 3, 4, 5, 6, 7, 11)]


def make_evalset(root: Path) -> Path:
    d = root / "evalsets" / "view"
    (d / "docs").mkdir(parents=True)
    (d / "task.yaml").write_text(yaml.safe_dump(TASK, sort_keys=False))
    for doc_id, text in DOCS.items():
        (d / "docs" / f"{doc_id}.md").write_text(text)
    items = []
    for i in range(N_ITEMS):
        text = f"message number {i} please" + (f" {HOSTILE_INPUT}" if i == 9 else "")
        items.append({"id": f"q{i:03d}", "input": {"text": text},
                      "expected": {"intent": LABELS[i % 3], "urgent": i % 2 == 0},
                      "expected_doc_ids": [list(DOCS)[i % 3]], "metadata": {"channel": ["email", "chat"][i % 2]}})
    write_jsonl(d / "test.jsonl", items)
    write_jsonl(d / "train.jsonl", [
        {"id": f"r{i:03d}", "input": {"text": f"training message {i}"},
         "expected": {"intent": LABELS[i % 3], "urgent": i % 2 == 1}} for i in range(12)])
    return d


def config(root: Path, evalset: Path, url: str, name: str) -> Path:
    def model(model_id: str) -> dict[str, Any]:
        return {"provider": "openai-compatible", "base_url": url, "model": model_id, "max_retries": 0}

    cfg = {"name": name, "evalset": str(evalset),
           "models": {"small": model("gpt-4o-mini"), "big": model("gpt-4o"), "tuned": model(FT_MODEL)},
           "variants": [{"name": "baseline", "kind": "baseline", "model": "small"},
                        {"name": "fs", "kind": "few_shot", "model": "big", "shots": 2},
                        {"name": "rag", "kind": "rag", "model": "small", "top_k": 2},
                        {"name": "ft", "kind": "fine_tuned", "model": "tuned"}],
           "run": {"concurrency": 4, "temperature": 0, "max_tokens": 64, "seed": 7}}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def candidate_script():
    base = scripted(wrong={"gpt-4o-mini": {0, 1, 2, 3}, FT_MODEL: {1, 2, 3, 4, 5, 6, 7}}, errors={FT_MODEL: {11}})

    def handler(body: dict[str, Any]) -> Reply:
        i = item_number(body)
        if body["model"] == "gpt-4o" and i == 5:
            return Reply(text=HOSTILE, prompt_tokens=100, completion_tokens=10)
        reply = base(body)
        if body["model"] == "gpt-4o":
            reply.prompt_tokens = 100 + 10 * i  # few-shot's cost grows with the item number: a known sort order
        return reply

    return handler


def build_runs(root: Path) -> tuple[Path, Path]:
    """(accepted run, candidate run); the response cache and the RAG index stay under `root`."""
    evalset = make_evalset(root)
    runs = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("harness.models.cache.cache_dir", lambda: root / "cache")
        for name, script in (("accepted", scripted(wrong={"gpt-4o-mini": {0, 1, 2, 3}})),
                             ("candidate", candidate_script())):
            with FakeOpenAIServer(script, models=["gpt-4o-mini", "gpt-4o", FT_MODEL]) as srv:
                res = run(config(root, evalset, srv.base_url, name),
                          RunOptions(results_dir=root / "results", out=root / name, progress=False, use_cache=False))
            runs.append(res.run_dir)
    return runs[0], runs[1]


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines() if line.strip()]
