from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text

# Skips listed by reason at the end of the run; failures under HARNESS_STRICT_SKIPS=1 (set by .ci/run).
from tests.strict_skips import (  # noqa: F401  (pytest finds hooks by name in this module)
    pytest_collectreport,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_sessionfinish,
    pytest_sessionstart,
    pytest_terminal_summary,
)

REPO = Path(__file__).resolve().parent.parent
# The day every test runs on, whatever the calendar says: in-process code that compares dates asks
# harness.clock.today(), which the `fixed_today` fixture pins here; subprocess CLI tests pass `--today TEST_DAY`.
# It is a day on which no built-in price is stale (tests/models/test_pricing.py checks that), so no test sees a
# price warning it did not ask for; the tests of the warning pass their own day.
TEST_TODAY = dt.date(2025, 11, 1)
TEST_DAY = TEST_TODAY.isoformat()
# A licensed sample of Banking77 (CC BY 4.0, see tests/data/banking77/README.md): no folder outside the repository.
BANKING77 = REPO / "tests" / "data" / "banking77"

TASK = {
    "description": "tiny card-intent task for tests",
    "instructions": "Classify the customer's message.",
    "input_template": "Message: {text}",
    "output_schema": {
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": ["card_arrival", "lost_card", "refund"]},
            "urgent": {"type": "boolean"},
        },
        "required": ["intent", "urgent"],
        "additionalProperties": False,
    },
}

TEST_ITEMS = [
    ("t1", "where is my new card", "card_arrival", False, ["delivery"]),
    ("t2", "someone stole my card", "lost_card", True, ["security"]),
    ("t3", "I want my money back for the order", "refund", False, ["refunds"]),
    ("t4", "card has not arrived after two weeks", "card_arrival", True, ["delivery"]),
]
TRAIN_ITEMS = [
    ("r1", "my card never came", "card_arrival", False),
    ("r2", "lost my wallet with the card inside", "lost_card", True),
    ("r3", "please refund the double charge", "refund", False),
    ("r4", "when will the card be delivered", "card_arrival", False),
    ("r5", "my card was stolen at the station", "lost_card", True),
    ("r6", "how do I get a refund", "refund", False),
]
DOCS = {
    "delivery": "Cards are delivered within 5 working days. Tracking is in the app.",
    "security": "If a card is lost or stolen, freeze it in the app immediately and order a new one.",
    "refunds": "Refunds for merchant purchases go through the merchant; disputed charges take 10 days.",
}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_task_evalset(d: Path, train: list[tuple[str, str, str, bool]], test: list[tuple[str, str, str, bool]]) -> Path:
    """An eval set of the tiny card-intent TASK in folder d: (id, text, intent, urgent) rows per split."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "task.yaml").write_text(yaml.safe_dump(TASK, sort_keys=False))
    for name, rows in (("train.jsonl", train), ("test.jsonl", test)):
        write_jsonl(d / name, [{"id": i, "input": {"text": t}, "expected": {"intent": lab, "urgent": u}}
                               for i, t, lab, u in rows])
    return d


@pytest.fixture
def evalset_dir(tmp_path: Path) -> Path:
    d = tmp_path / "evalsets" / "tiny"
    (d / "docs").mkdir(parents=True)
    (d / "task.yaml").write_text(yaml.safe_dump(TASK, sort_keys=False))
    write_jsonl(d / "test.jsonl", [
        {"id": i, "input": {"text": t}, "expected": {"intent": lab, "urgent": u}, "expected_doc_ids": docs}
        for i, t, lab, u, docs in TEST_ITEMS
    ])
    write_jsonl(d / "train.jsonl", [
        {"id": i, "input": {"text": t}, "expected": {"intent": lab, "urgent": u}} for i, t, lab, u in TRAIN_ITEMS
    ])
    for doc_id, text in DOCS.items():
        (d / "docs" / f"{doc_id}.md").write_text(text)
    return d


def right_answer(body: dict[str, Any]) -> Reply:
    """Answers every test item correctly, so scoring differences come from the test's own script."""
    text = last_user_text(body)
    for _, msg, lab, urgent, _ in TEST_ITEMS:
        if msg in text:
            return Reply(text=json.dumps({"intent": lab, "urgent": urgent}), prompt_tokens=100, completion_tokens=10)
    return Reply(text='{"intent": "refund", "urgent": false}', prompt_tokens=100, completion_tokens=10)


@pytest.fixture
def fake_server():
    server = FakeOpenAIServer(right_answer, models=["fake-model", "gpt-4o-mini"]).start()
    yield server
    server.stop()


def make_config(tmp_path: Path, evalset: Path, base_url: str, variants: list[dict[str, Any]] | None = None,
                **extra: Any) -> Path:
    cfg = {
        "name": "t",
        "evalset": str(evalset),
        "models": {"small": {"provider": "openai-compatible", "base_url": base_url, "model": "gpt-4o-mini",
                             "structured_output": "json_schema"}},
        "variants": variants or [{"name": "baseline", "kind": "baseline", "model": "small"}],
        "run": {"concurrency": 4, "temperature": 0, "max_tokens": 64, "seed": 7},
    }
    cfg.update(extra)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def fixed_today(monkeypatch: pytest.MonkeyPatch) -> dt.date:
    """The suite does not depend on the date: harness.clock's system date is TEST_TODAY in every test."""
    monkeypatch.setattr("harness.clock.system_today", lambda: TEST_TODAY)
    return TEST_TODAY


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Response cache and Chroma index per test; the assembled GGUF stays shared (it is 253 MB)."""
    d = tmp_path / "cache"
    monkeypatch.setattr("harness.models.cache.cache_dir", lambda: d)
    return d
