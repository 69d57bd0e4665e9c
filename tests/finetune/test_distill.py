"""Distillation data (issue 21, point 3): `harness run --split train` records a model's answers on the train
split (priced, cached, marked as train in the manifest and the reports), and `harness finetune export
--from-run RUN_DIR --variant NAME` turns its clean answers into training data: errors, answer issues and
format-invalid answers are dropped, the leakage rules hold, and a test-split run is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.data.evalset import load_evalset
from harness.prompts.variants import render_prompt
from harness.rundir import RunFolder
from tests.conftest import TASK, TEST_DAY, TEST_ITEMS, write_jsonl
from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text

TEACHER = {"intent": "lost_card", "urgent": True}  # the "production model's" answer, unlike every label below
CLEAN = [(f"c{i:02d}", f"training message number {i} about my card") for i in range(10)]
BAD = {"b-invalid": "card question with a rambling reply", "b-error": "card question the server fails on",
       "b-trunc": "card question cut off at max tokens"}
LEAK = [("ft-dup", "Someone  STOLE my card"),  # repeats test item t2
        ("ft-near", "my card has not arrived after two weeks")]  # nearly repeats t4


def teacher(body: dict) -> Reply:
    text = last_user_text(body)
    if BAD["b-invalid"] in text:
        return Reply(text="I think it is a lost card.", prompt_tokens=50, completion_tokens=8)
    if BAD["b-error"] in text:
        return Reply(status=500)
    if BAD["b-trunc"] in text:
        return Reply(text='{"intent": "lost', finish_reason="length", prompt_tokens=50, completion_tokens=64)
    return Reply(text=json.dumps(TEACHER), prompt_tokens=50, completion_tokens=8)


@pytest.fixture
def server():
    s = FakeOpenAIServer(teacher, models=["gpt-4o-mini"]).start()
    yield s
    s.stop()


@pytest.fixture
def setup(tmp_path: Path, server: FakeOpenAIServer) -> Path:
    d = tmp_path / "evalsets" / "distil"
    d.mkdir(parents=True)
    (d / "task.yaml").write_text(yaml.safe_dump(TASK, sort_keys=False))
    write_jsonl(d / "test.jsonl", [{"id": i, "input": {"text": t}, "expected": {"intent": lab, "urgent": u}}
                                   for i, t, lab, u, _ in TEST_ITEMS])
    train = CLEAN + list(BAD.items()) + LEAK
    write_jsonl(d / "train.jsonl", [{"id": i, "input": {"text": t}, "expected": {"intent": "refund", "urgent": False}}
                                    for i, t in train])
    cfg = {
        "name": "distil",
        "evalset": str(d),
        "models": {"prod": {"provider": "openai-compatible", "base_url": server.base_url, "model": "gpt-4o-mini",
                            "structured_output": "json_schema", "max_retries": 0},
                   "tuned": {"provider": "openai", "model_file": str(tmp_path / "ft-id.txt"),
                             "api_key_env": "FT_TEST_KEY"}},
        "variants": [{"name": "production", "kind": "baseline", "model": "prod"},
                     {"name": "shots", "kind": "few_shot", "model": "prod", "shots": 2},
                     {"name": "fine-tuned", "kind": "fine_tuned", "model": "tuned"}],
        "run": {"concurrency": 4, "temperature": 0, "max_tokens": 64},
        "finetune": {"output_dir": str(tmp_path / "ft-out")},
    }
    path = tmp_path / "distil.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _run(cfg: Path, out: Path, *extra: str) -> int:
    return main(["run", str(cfg), "--variants", "production", "--out", str(out), "--no-progress", "--today", TEST_DAY,
                 *extra])


def test_a_train_split_run_asks_the_train_items_prices_caches_and_says_so(tmp_path, setup, server, capsys):
    out = tmp_path / "train-run"
    assert _run(setup, out, "--split", "train") == 0
    printed = capsys.readouterr().out
    folder = RunFolder.open(out)
    records = folder.latest_records()
    ev = load_evalset(load_evalset_path(setup))
    assert sorted(r.item_id for r in records) == sorted(i.id for i in ev.train)
    assert not {r.item_id for r in records} & {i.id for i in ev.test}
    assert folder.manifest.split == "train" and json.loads(folder.manifest_path.read_text())["split"] == "train"
    assert folder.manifest.selection.items == len(ev.train)
    assert all(r.cost_usd is not None and r.cost_usd > 0 for r in records if r.error is None)  # priced
    assert "TRAIN SPLIT" in printed and "not a held-out evaluation" in printed
    assert "TRAIN SPLIT" in (out / "report.md").read_text() and "TRAIN SPLIT" in (out / "report.html").read_text()

    calls = len(server.requests)
    again = tmp_path / "train-run-2"
    assert _run(setup, again, "--split", "train") == 0
    cached = [r for r in RunFolder.open(again).latest_records() if r.error is None]
    assert cached and all(r.cache_hit for r in cached)
    assert len(server.requests) - calls == 1  # only the failed call is asked again

    capsys.readouterr()
    test_run = tmp_path / "test-run"
    assert _run(setup, test_run) == 0
    assert RunFolder.open(test_run).manifest.split == "test"
    assert "TRAIN SPLIT" not in capsys.readouterr().out


def load_evalset_path(cfg: Path) -> Path:
    return Path(yaml.safe_load(cfg.read_text())["evalset"])


def test_a_train_split_run_refuses_few_shot_variants(tmp_path, setup, capsys):
    code = main(["run", str(setup), "--variants", "production,shots", "--split", "train", "--out",
                 str(tmp_path / "r"), "--no-progress", "--today", TEST_DAY])
    err = capsys.readouterr().err
    assert code == 2 and "shots" in err and "few-shot" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_export_from_run_uses_only_clean_answers_and_the_leakage_rules(tmp_path, setup, capsys):
    run_dir = tmp_path / "train-run"
    assert _run(setup, run_dir, "--split", "train") == 0
    capsys.readouterr()
    out = tmp_path / "distilled.jsonl"
    assert main(["finetune", "export", str(setup), "--from-run", str(run_dir), "--variant", "production",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    ev = load_evalset(load_evalset_path(setup))
    by_text = {i.input["text"]: i for i in ev.train}
    assert len(rows) == len(CLEAN)
    for row in rows:
        *prompt, answer = row["messages"]
        assert answer == {"role": "assistant", "content": json.dumps(TEACHER)}  # the recorded answer, not the label
        item = next(i for t, i in by_text.items() if t in prompt[-1]["content"])
        assert item.id.startswith("c")
        assert prompt == render_prompt(ev, item.input, system_role=True)  # the fine-tuned variant's renderer
    text = out.read_text("utf-8")
    for bad in [*BAD.values(), *(t for _, t in LEAK)]:
        assert bad not in text
    line = next(x for x in printed.splitlines() if x.startswith("distilled"))
    assert "10 of 15 train items" in line
    for part in ("1 call failed", "1 answer issue", "1 not format-valid", "1 repeat a test item",
                 "1 nearly repeat a test item"):
        assert part in line, line


def test_export_from_a_test_split_run_is_refused(tmp_path, setup, capsys):
    run_dir = tmp_path / "test-run"
    assert _run(setup, run_dir) == 0
    capsys.readouterr()
    out = tmp_path / "distilled.jsonl"
    code = main(["finetune", "export", str(setup), "--from-run", str(run_dir), "--variant", "production",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "test split" in err and "--split train" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    code = main(["finetune", "export", str(setup), "--from-run", str(run_dir)])
    assert code == 2 and "--variant NAME" in capsys.readouterr().err
