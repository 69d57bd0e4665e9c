"""The reports read records compactly: the same tables as from full records, the same repair rules, a small
fraction of the memory."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pandas as pd

from harness.analysis import summary
from harness.api import run
from harness.rundir.compact import read_latest_compact
from harness.rundir.folder import RunFolder, latest_records, read_records
from harness.runner.runner import RunOptions
from tests.conftest import make_config, right_answer
from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text


def flaky(body):
    if "someone stole" in last_user_text(body):
        return Reply(status=422)  # a refused request, recorded (400 would stop the run)
    return right_answer(body)


def test_compact_tables_equal_the_full_ones(tmp_path, evalset_dir):
    with FakeOpenAIServer(flaky, models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, evalset_dir, srv.base_url, run={"concurrency": 2, "repeats": 2, "seed": 1},
                          variants=[{"name": "baseline", "kind": "baseline", "model": "small"},
                                    {"name": "fs", "kind": "few_shot", "model": "small", "shots": 2,
                                     "selection": "first"}])
        res = run(cfg, RunOptions(results_dir=tmp_path / "r", progress=False, use_cache=False))
    folder = RunFolder.open(res.run_dir)
    full_manifest, full = folder.manifest, folder.latest_records()
    small = folder.compact_records()
    assert [r.key for r in full] == [r.key for r in small]
    assert any(r.error for r in small)
    config = folder.config_dict()
    a = summary.analyse(full_manifest, full, config).df
    b = summary.analyse(full_manifest, small, config).df
    pd.testing.assert_frame_equal(a, b)
    for f, c in zip(full, small, strict=True):
        assert (f.raw_text, f.parsed, f.scores, f.usage, f.cost_usd, f.error, f.expected) == \
            (c.raw_text, c.parsed, c.scores, c.usage, c.cost_usd, c.error, c.expected)
        assert (f.format_valid, f.correct, f.fields, f.primary, f.retrieval) == \
            (c.format_valid, c.correct, c.fields, c.primary, c.retrieval)
        assert c.request["prompt_chars"] == sum(len(m["content"]) for m in f.request["messages"])


def test_compact_reader_follows_the_repair_rules(tmp_path, evalset_dir, fake_server):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    res = run(cfg, RunOptions(results_dir=tmp_path / "r", progress=False, use_cache=False))
    path = res.run_dir / "records.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    retried = json.loads(lines[0])
    retried["raw_text"] = "retried"
    # a garbled line, a torn start run into a whole record, a retried key, and a torn last line
    text = (lines[0] + b"garbage\n" + lines[1][:40] + lines[2] + lines[3]
            + (json.dumps(retried) + "\n").encode() + lines[1][:50])
    path.write_bytes(text)
    full = latest_records(read_records(path))
    small = read_latest_compact(path)
    assert [r.key for r in full] == [r.key for r in small]
    assert [r.raw_text for r in full] == [r.raw_text for r in small]
    assert small[0].raw_text == "retried"


def test_compact_records_are_small(tmp_path, evalset_dir, fake_server):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    res = run(cfg, RunOptions(results_dir=tmp_path / "r", progress=False, use_cache=False))
    line = json.loads((res.run_dir / "records.jsonl").read_text().splitlines()[0])
    big = tmp_path / "big.jsonl"
    n = 20_000
    with big.open("w") as fh:
        for i in range(n):
            line["item_id"] = f"item-{i:06d}"
            line["latency_s"] = 0.001 * i
            fh.write(json.dumps(line) + "\n")
    tracemalloc.start()
    recs = read_latest_compact(big)
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(recs) == n
    assert current / n < 700, f"{current / n:.0f} bytes per record"


def test_old_layout_lines_read_the_same_compact_and_full(tmp_path):
    """A run folder written before the typed score: both readers upgrade its lines to the same typed fields."""
    fixture = Path(__file__).resolve().parent.parent / "fixtures" / "records_old_layout.jsonl"
    path = tmp_path / "records.jsonl"
    path.write_bytes(fixture.read_bytes())
    full = read_records(path)
    small = read_latest_compact(path)
    assert len(full) == len(small) == 6
    typed = ("json_parsed", "format_valid", "json_extractable", "correct", "correct_lenient", "fields", "primary",
             "retrieval", "scores", "score_errors", "eval_cost_usd")
    for f, c in zip(full, small, strict=True):
        assert [getattr(f, k) for k in typed] == [getattr(c, k) for k in typed]
    assert small[0].scores["voice"].value == 0.75 and small[1].score_errors["voice"].error.startswith("judge failed")
    assert small[0].retrieval.recall_at_k == 0.0 and small[4].primary is None and small[5].primary is None
