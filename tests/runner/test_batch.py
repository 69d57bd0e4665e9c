"""run.mode: batch end to end against a loopback Batch API (files, batches, output and error files): the same
records as a synchronous run, batch prices, the cache, failed and expired lines, the API's size limits, and
--resume re-attaching to the batches a stopped process submitted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from harness.api import run
from harness.config import ModelConfig, RunConfig
from harness.models.pricing import PriceEntry, PriceTable
from harness.rundir.folder import read_records
from harness.runner import batch as batch_mod
from harness.runner.batch import BatchExecutor, custom_id, parse_custom_id
from harness.runner.runner import RunOptions
from tests.conftest import REPO, TEST_DAY, make_config, right_answer
from tests.fakes import batch_server
from tests.fakes.batch_server import FakeBatchServer
from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text

# `harness run` in a subprocess, on the suite's fixed day (tests/conftest.py TEST_DAY)
HARNESS_RUN = [sys.executable, "-m", "harness", "run", "--today", TEST_DAY]

VARIANTS = [{"name": "baseline", "kind": "baseline", "model": "small"},
            {"name": "few-shot", "kind": "few_shot", "model": "small", "shots": 2, "selection": "first"},
            {"name": "big", "kind": "baseline", "model": "big"}]


def models(url):
    return {"small": {"provider": "openai-compatible", "base_url": url, "model": "gpt-4o-mini",
                      "structured_output": "json_schema"},
            "big": {"provider": "openai-compatible", "base_url": url, "model": "gpt-4o",
                    "structured_output": "json_schema"}}


def flaky(body):
    """right_answer, except that the baseline of t3 on gpt-4o-mini fails with HTTP 500."""
    if "I want my money back" in last_user_text(body) and body["model"] == "gpt-4o-mini" \
            and len(body["messages"]) == 2:
        return Reply(status=500)
    return right_answer(body)


def batch_config(tmp_path, evalset_dir, url, **run_extra):
    return make_config(tmp_path, evalset_dir, url, variants=VARIANTS, models=models(url),
                       run={"concurrency": 4, "temperature": 0, "max_tokens": 64, "seed": 7, "mode": "batch",
                            "batch_poll_s": 0.05, **run_extra})


def do_run(cfg, tmp_path, **kw):
    return run(cfg, RunOptions(results_dir=tmp_path / "results", progress=False, **kw))


def test_custom_id_round_trip():
    cid = custom_id('few|"shot"', "item,1", 2)
    assert parse_custom_id(cid) == ('few|"shot"', "item,1", 2)


def test_batch_run_matches_the_synchronous_run(tmp_path, evalset_dir):
    with FakeBatchServer(flaky, models=["gpt-4o-mini", "gpt-4o"], turnaround_s=0.3) as srv:
        res = do_run(batch_config(tmp_path, evalset_dir, srv.base_url), tmp_path)
        assert res.status == "completed"
        assert len(srv.created) == 2  # one batch per model
        batch_recs = read_records(res.run_dir / "records.jsonl")

        # A second run on the same cache sends only what has no answer yet: the failed line, in a new batch.
        again = do_run(batch_config(tmp_path, evalset_dir, srv.base_url), tmp_path)
        assert len(srv.created) == 3
        assert json.loads((again.run_dir / "batches.json").read_text())["batches"][0]["requests"] == 1
        hits = read_records(again.run_dir / "records.jsonl")
        assert len(hits) == 12 and sum(r.cache_hit for r in hits) == 11

    with FakeOpenAIServer(flaky, models=["gpt-4o-mini", "gpt-4o"]) as sync_srv:
        (tmp_path / "sync").mkdir()
        cfg = make_config(tmp_path / "sync", evalset_dir, sync_srv.base_url, variants=VARIANTS,
                          models={k: {**v, "max_retries": 0} for k, v in models(sync_srv.base_url).items()},
                          run={"concurrency": 4, "temperature": 0, "max_tokens": 64, "seed": 7})
        sync = run(cfg, RunOptions(results_dir=tmp_path / "sync" / "results", progress=False, use_cache=False))
        sync_recs = read_records(sync.run_dir / "records.jsonl")

    assert len(batch_recs) == len(sync_recs) == 12
    by_key = {r.key: r for r in sync_recs}
    for b in batch_recs:
        s = by_key[b.key]
        assert b.request == s.request
        assert (b.raw_text, b.parsed, b.scores, b.usage, b.error_kind) == (s.raw_text, s.parsed, s.scores,
                                                                            s.usage, s.error_kind)
        assert (b.format_valid, b.correct, b.fields, b.primary) == (s.format_valid, s.correct, s.fields, s.primary)
        assert b.shot_ids == s.shot_ids
        if s.cost_usd is not None:
            assert b.cost_usd == pytest.approx(s.cost_usd / 2)  # the Batch API's 50% discount
        assert b.latency_s is None  # a batch has no per-call latency
    failed = [r for r in batch_recs if r.error]
    assert [(r.variant, r.item_id, r.error_kind) for r in failed] == [("baseline", "t3", "server_error")]
    assert "HTTP 500" in failed[0].error

    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    assert manifest["calls"]["mode"] == "batch" and manifest["calls"]["prices"] == "batch"
    assert all(v["price"]["batch"] for v in manifest["variants"].values())
    assert {b["status"] for b in manifest["calls"]["batches"]} == {"completed"}
    # The input files hold the exact bodies, with custom_ids naming variant, item and repeat.
    state = json.loads((res.run_dir / "batches.json").read_text())
    lines = [json.loads(x) for p in state["batches"] for x in (res.run_dir / p["input"]).read_text().splitlines()]
    assert len(lines) == 12
    assert {(ln["method"], ln["url"]) for ln in lines} == {("POST", "/v1/chat/completions")}
    recs_by_cid = {custom_id(r.variant, r.item_id, r.repeat): r for r in batch_recs}
    assert all(ln["body"] == recs_by_cid[ln["custom_id"]].request for ln in lines)
    summary = (res.run_dir / "summary.csv").read_text()
    assert "baseline" in summary and "few-shot" in summary
    assert "answered through the OpenAI Batch API" in (res.run_dir / "report.md").read_text()


def test_split_at_the_api_limits(tmp_path, evalset_dir, monkeypatch):
    monkeypatch.setattr(BatchExecutor, "max_requests", 3)
    with FakeBatchServer(right_answer, models=["gpt-4o-mini", "gpt-4o"], turnaround_s=0.1) as srv:
        cfg = batch_config(tmp_path, evalset_dir, srv.base_url)
        res = do_run(cfg, tmp_path, variants=["baseline", "few-shot"])
        assert res.status == "completed"
        state = json.loads((res.run_dir / "batches.json").read_text())
        assert [p["requests"] for p in state["batches"]] == [3, 3, 2]  # 8 requests of one model
        assert len(srv.created) == 3
        monkeypatch.setattr(BatchExecutor, "max_requests", 1000)
        monkeypatch.setattr(BatchExecutor, "max_bytes", 3000)  # about two lines per file
        res2 = do_run(cfg, tmp_path, variants=["baseline"], use_cache=False)
        state2 = json.loads((res2.run_dir / "batches.json").read_text())
        assert len(state2["batches"]) >= 2 and all(p["bytes"] <= 3000 for p in state2["batches"])
    assert len(read_records(res.run_dir / "records.jsonl")) == 8
    assert all(r.error is None for r in read_records(res2.run_dir / "records.jsonl"))


def test_expired_lines_and_failed_batches_are_errors_with_their_reason(tmp_path, evalset_dir, monkeypatch):
    with FakeBatchServer(right_answer, models=["gpt-4o-mini", "gpt-4o"], turnaround_s=0.1,
                         expire=lambda cid: parse_custom_id(cid)[1] == "t2") as srv:
        res = do_run(batch_config(tmp_path, evalset_dir, srv.base_url), tmp_path, variants=["baseline"])
    recs = {r.item_id: r for r in read_records(res.run_dir / "records.jsonl")}
    assert recs["t2"].error_kind == "batch_expired" and "expired" in recs["t2"].error
    assert all(recs[i].error is None and recs[i].correct for i in ("t1", "t3", "t4"))
    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    assert manifest["calls"]["batches"][0]["status"] == "expired"

    # The server rejects the file (here: more requests than it takes): every line is an error naming why.
    monkeypatch.setattr(batch_server, "MAX_REQUESTS", 2)
    with FakeBatchServer(right_answer, models=["gpt-4o-mini", "gpt-4o"], turnaround_s=0.1) as srv:
        res = do_run(batch_config(tmp_path, evalset_dir, srv.base_url), tmp_path, variants=["baseline"],
                     use_cache=False)
    recs = read_records(res.run_dir / "records.jsonl")
    assert len(recs) == 4 and {r.error_kind for r in recs} == {"batch_failed"}
    assert "too_many_requests" in recs[0].error and "ended failed" in recs[0].error


def test_resume_reattaches_to_the_submitted_batch(tmp_path, evalset_dir):
    with FakeBatchServer(right_answer, models=["gpt-4o-mini", "gpt-4o"], turnaround_s=4.0) as srv:
        cfg = batch_config(tmp_path, evalset_dir, srv.base_url)
        out = tmp_path / "run"
        env = {**os.environ, "HARNESS_CACHE_DIR": str(tmp_path / "c")}
        proc = subprocess.Popen([*HARNESS_RUN, str(cfg), "--no-progress", "--out",
                                 str(out)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        state_path = out / "batches.json"
        deadline = time.time() + 60
        while time.time() < deadline:
            if state_path.exists() and all(p["batch_id"] for p in json.loads(state_path.read_text())["batches"]) \
                    and len(srv.created) == 2:
                break
            time.sleep(0.05)
        assert len(srv.created) == 2, "both batches submitted"
        proc.send_signal(signal.SIGINT)  # Ctrl-C while the batches run
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "interrupted" and "--resume" in manifest["message"]
        assert read_records(out / "records.jsonl") == []

        res = subprocess.run([*HARNESS_RUN, "--resume", str(out), "--no-progress"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert "re-attaching to 2 batch(es)" in res.stderr
        assert len(srv.created) == 2  # no new batch
    recs = read_records(out / "records.jsonl")
    assert len(recs) == 12 and all(r.error is None for r in recs)
    assert len({r.key for r in recs}) == 12
    assert json.loads((out / "manifest.json").read_text())["status"] == "completed"


def test_batch_prices():
    table = PriceTable.load()
    m = ModelConfig(provider="openai", model="gpt-4o-mini")
    sync, batch = table.for_model(m, "gpt-4o-mini"), table.for_model(m, "gpt-4o-mini", batch=True)
    assert (batch.input, batch.output, batch.cached_input) == (sync.input / 2, sync.output / 2, sync.cached_input / 2)
    assert batch.batch and not sync.batch
    table.entries["gpt-4o-mini"] = PriceEntry(input=0.15, output=0.6, batch={"input": 0.07, "output": 0.25})
    assert (table.for_model(m, "gpt-4o-mini", batch=True).input,
            table.for_model(m, "gpt-4o-mini", batch=True).output) == (0.07, 0.25)
    own = ModelConfig(provider="openai", model="x", price={"input": 1.0, "output": 2.0})
    assert table.for_model(own, "x", batch=True).output == 1.0


def test_batch_mode_refuses_the_local_model(tmp_path):
    with pytest.raises(ValueError, match="Batch API"):
        RunConfig.model_validate({"name": "x", "evalset": str(tmp_path), "models": {"l": {"provider": "local"}},
                                  "variants": [{"name": "b", "kind": "baseline", "model": "l"}],
                                  "run": {"mode": "batch"}})
    assert batch_mod.MAX_REQUESTS == 50_000 and batch_mod.MAX_BYTES <= 200 * 1024 * 1024


def test_batch_records_are_judged_like_synchronous_ones(tmp_path):
    """Model-graded scores (a judge on its own synchronous endpoint) are given to batch records too."""
    from tests.scoring.test_judge import JUDGE_CALL_COST, VARIANT_COST, Server, judged_config, judged_set

    ev = judged_set(tmp_path)
    judge = Server({"Paris.": 5, "It is Munich!": 1, "tokyo": 4})
    with judge.fake, FakeBatchServer(judge.handle, models=["gpt-4o-mini"], turnaround_s=0.1) as batch_srv:
        cfg = judged_config(tmp_path, ev, judge.fake.base_url)
        data = yaml.safe_load(cfg.read_text())
        data["models"]["small"]["base_url"] = batch_srv.base_url
        data["run"].update(mode="batch", batch_poll_s=0.05)
        cfg.write_text(yaml.safe_dump(data, sort_keys=False))
        res = run(cfg, RunOptions(results_dir=tmp_path / "r", progress=False))
        assert len(batch_srv.created) == 1 and len(judge.judge_requests()) == 3
    assert not [r for r in judge.fake.requests if r.get("model") != "judge-1"], "answers came from the batch"
    recs = {r.item_id: r for r in read_records(res.run_dir / "records.jsonl")}
    assert recs["fr"].scores["voice"].value == 1.0 and recs["jp"].scores["voice"].value == 0.75
    assert recs["fr"].eval_cost_usd == pytest.approx(JUDGE_CALL_COST)
    assert recs["fr"].cost_usd == pytest.approx(VARIANT_COST / 2)  # the answer at the batch price


def test_retry_errors_sends_the_failed_lines_in_a_new_batch(tmp_path, evalset_dir):
    failed_once: set[str] = set()

    def fails_first_time(body):
        text = last_user_text(body)
        if "I want my money back" in text and text not in failed_once:
            failed_once.add(text)
            return Reply(status=503)
        return right_answer(body)

    with FakeBatchServer(fails_first_time, models=["gpt-4o-mini", "gpt-4o"], turnaround_s=0.1) as srv:
        cfg = batch_config(tmp_path, evalset_dir, srv.base_url)
        res = do_run(cfg, tmp_path, variants=["baseline"])
        assert [r.error_kind for r in read_records(res.run_dir / "records.jsonl") if r.error] == ["server_error"]
        again = run(None, RunOptions(resume=res.run_dir, retry_errors=True, progress=False))
        assert again.status == "completed"
        assert len(srv.created) == 2
    state = json.loads((res.run_dir / "batches.json").read_text())
    assert [p["requests"] for p in state["batches"]] == [4, 1]
    from harness.rundir.folder import latest_records

    latest = latest_records(read_records(res.run_dir / "records.jsonl"))
    assert len(latest) == 4 and not any(r.error for r in latest)


def test_a_permanent_error_at_submission_stops_the_run_and_resume_submits(tmp_path, evalset_dir, monkeypatch):
    # issue 17: a refused key (or quota) at the Batch API is the one line a synchronous call gives, not a traceback
    from harness.models.client import ModelRefused

    with FakeBatchServer(right_answer, models=["gpt-4o-mini", "gpt-4o"], turnaround_s=0.1) as srv:
        real = srv.create_batch
        monkeypatch.setattr(srv, "create_batch", lambda req: (401, {"error": {"message": "Incorrect API key"}}))
        with pytest.raises(ModelRefused, match=r"^models\.(small|big) \(gpt-4o(-mini)?\): the endpoint refused the "
                                               r"credentials \(HTTP 401: Incorrect API key\)") as info:
            do_run(batch_config(tmp_path, evalset_dir, srv.base_url), tmp_path)
        assert "harness run --resume" in str(info.value) and not srv.created
        run_dir = next((tmp_path / "results").iterdir())
        assert json.loads((run_dir / "manifest.json").read_text())["status"] == "failed"
        monkeypatch.setattr(srv, "create_batch", real)
        res = run(None, RunOptions(resume=run_dir, progress=False))
        assert res.status == "completed" and len(srv.created) == 2
    assert len(read_records(res.run_dir / "records.jsonl")) == 12
