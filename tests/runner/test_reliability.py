"""Cache, resume after SIGKILL, faults from the model server, secrets, leakage warnings."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pandas as pd
import pytest
import yaml

from harness.api import run
from harness.rundir.folder import read_records
from harness.runner.runner import RunOptions
from tests.conftest import REPO, TEST_DAY, make_config, right_answer, write_jsonl
from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text

# `harness run` in a subprocess, on the suite's fixed day (tests/conftest.py TEST_DAY)
HARNESS_RUN = [sys.executable, "-m", "harness", "run", "--today", TEST_DAY]

LABELS = ["card_arrival", "lost_card", "refund"]


def big_evalset(tmp_path, n=60):
    d = tmp_path / "evalsets" / "big"
    d.mkdir(parents=True)
    (d / "task.yaml").write_text(yaml.safe_dump({
        "instructions": "Classify.", "input_template": "{text}",
        "output_schema": {"type": "object", "properties": {"intent": {"type": "string", "enum": LABELS}},
                          "required": ["intent"]},
    }))
    write_jsonl(d / "test.jsonl", [{"id": f"q{i:03d}", "input": {"text": f"question number {i} about item {i * 7}"},
                                    "expected": {"intent": LABELS[i % 3]}} for i in range(n)])
    return d


def answer_by_number(body):
    text = last_user_text(body)
    i = int(text.split("question number ")[1].split()[0])
    return Reply(text=json.dumps({"intent": LABELS[i % 3]}), prompt_tokens=50, completion_tokens=5)


def do_run(cfg, tmp_path, **kw):
    kw.setdefault("results_dir", tmp_path / "results")
    return run(cfg, RunOptions(progress=False, **kw))


# -- cache -----------------------------------------------------------------------------------------

def test_rerun_reuses_cache_and_marks_hits(tmp_path, evalset_dir, fake_server):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    first = do_run(cfg, tmp_path)
    assert len(fake_server.requests) == 4
    second = do_run(cfg, tmp_path)
    assert len(fake_server.requests) == 4  # nothing asked again
    recs = read_records(second.run_dir / "records.jsonl")
    assert all(r.cache_hit for r in recs) and all(r.attempts == 0 for r in recs)
    row = pd.read_csv(second.run_dir / "summary.csv").iloc[0]
    assert row["accuracy"] == 1.0
    assert pd.isna(row["latency_p50_s"])  # cache hits never count as latency
    assert row["cache_hits"] == 4
    assert not any(r.cache_hit for r in read_records(first.run_dir / "records.jsonl"))


def test_refresh_and_no_cache(tmp_path, evalset_dir, fake_server):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    do_run(cfg, tmp_path)
    res = do_run(cfg, tmp_path, refresh=True)
    assert len(fake_server.requests) == 8
    assert not any(r.cache_hit for r in read_records(res.run_dir / "records.jsonl"))
    res = do_run(cfg, tmp_path, use_cache=False)
    assert len(fake_server.requests) == 12


def test_two_processes_share_the_cache_safely(tmp_path):
    ev = big_evalset(tmp_path, 80)
    with FakeOpenAIServer(lambda b: (time.sleep(0.005), answer_by_number(b))[1], models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, ev, srv.base_url, run={"concurrency": 8, "max_tokens": 16})
        env = {**os.environ, "HARNESS_CACHE_DIR": str(tmp_path / "shared-cache")}
        procs = [subprocess.Popen([*HARNESS_RUN, str(cfg), "--no-progress",
                                   "--out", str(tmp_path / f"run{k}")], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for k in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        for k in range(2):
            recs = read_records(tmp_path / f"run{k}" / "records.jsonl")
            assert len(recs) == 80 and len({r.key for r in recs}) == 80
            assert all(r.correct for r in recs)
        # a third run finds every answer in the shared cache
        n_before = len(srv.requests)
        third = subprocess.run([*HARNESS_RUN, str(cfg), "--no-progress", "--out",
                                str(tmp_path / "run3")], cwd=REPO, env=env, capture_output=True, timeout=120)
        assert third.returncode == 0, third.stderr
        assert len(srv.requests) == n_before
        assert all(r.cache_hit for r in read_records(tmp_path / "run3" / "records.jsonl"))


# -- resume ----------------------------------------------------------------------------------------

def test_resume_after_sigkill_has_exactly_one_record_per_key(tmp_path):
    ev = big_evalset(tmp_path, 60)
    with FakeOpenAIServer(lambda b: (time.sleep(0.04), answer_by_number(b))[1], models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, ev, srv.base_url, run={"concurrency": 4, "max_tokens": 16, "repeats": 2},
                          variants=[{"name": "a", "kind": "baseline", "model": "small"},
                                    {"name": "b", "kind": "fine_tuned", "model": "small"}])
        out = tmp_path / "run"
        env = {**os.environ, "HARNESS_CACHE_DIR": str(tmp_path / "c")}
        proc = subprocess.Popen([*HARNESS_RUN, str(cfg), "--no-progress", "--out", str(out)],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        records = out / "records.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline:
            if records.exists() and records.read_text().count("\n") >= 40:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        partial = read_records(records)
        assert 40 <= len(partial) < 240, "the run must be killed mid-way"
        assert json.loads((out / "manifest.json").read_text())["status"] == "running"
        res = subprocess.run([*HARNESS_RUN, "--resume", str(out), "--no-progress"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
    recs = read_records(records)
    keys = Counter(r.key for r in recs)
    assert len(recs) == 2 * 60 * 2
    assert set(keys.values()) == {1}
    assert {r.key for r in partial} <= set(keys)
    assert json.loads((out / "manifest.json").read_text())["status"] == "completed"


def test_resume_repairs_a_torn_last_line(tmp_path, evalset_dir, fake_server):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    res = do_run(cfg, tmp_path, use_cache=False)
    lines = (res.run_dir / "records.jsonl").read_text().splitlines(keepends=True)
    (res.run_dir / "records.jsonl").write_text("".join(lines[:2]) + lines[2][:30])
    again = run(None, RunOptions(resume=res.run_dir, progress=False, use_cache=False))
    recs = read_records(again.run_dir / "records.jsonl")
    assert sorted(r.item_id for r in recs) == ["t1", "t2", "t3", "t4"]
    assert len(fake_server.requests) == 4 + 2


# -- faults ----------------------------------------------------------------------------------------

FAULTS = ["rate_limit", "server_500", "server_503", "timeout", "reset", "malformed", "empty_choices", "length",
          "ok", "always_500"]


def fault_handler():
    seen: Counter = Counter()
    lock = threading.Lock()

    def handler(body):
        text = last_user_text(body)
        i = int(text.split("question number ")[1].split()[0])
        kind = FAULTS[i % len(FAULTS)]
        with lock:
            seen[i] += 1
            attempt = seen[i]
        good = answer_by_number(body)
        if kind == "rate_limit" and attempt == 1:
            return Reply(status=429, headers={"Retry-After": "0.2"})
        if kind == "server_500" and attempt == 1:
            return Reply(status=500)
        if kind == "server_503" and attempt <= 2:
            return Reply(status=503)
        if kind == "timeout" and attempt == 1:
            return Reply(text=good.text, delay_s=1.5)
        if kind == "reset" and attempt == 1:
            return Reply(reset=True)
        if kind == "malformed":
            return Reply(raw_body=b'{"id": "x", "choices": [ {"mess')
        if kind == "empty_choices":
            return Reply(empty_choices=True)
        if kind == "length":
            return Reply(text='{"intent": "ref', finish_reason="length")
        if kind == "always_500":
            return Reply(status=500)
        return good

    return handler, seen


def test_faults_are_retried_or_recorded(tmp_path):
    ev = big_evalset(tmp_path, 40)
    handler, seen = fault_handler()
    with FakeOpenAIServer(handler, models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, ev, srv.base_url, run={"concurrency": 8, "max_tokens": 16},
                          models={"small": {"provider": "openai-compatible", "base_url": srv.base_url,
                                            "model": "gpt-4o-mini", "timeout_s": 0.5, "max_retries": 3}})
        res = do_run(cfg, tmp_path)
    assert res.status == "completed"
    recs = {int(r.item_id[1:]): r for r in read_records(res.run_dir / "records.jsonl")}
    assert len(recs) == 40
    for i, r in recs.items():
        kind = FAULTS[i % len(FAULTS)]
        if kind in ("rate_limit", "server_500", "server_503", "timeout", "reset", "ok"):
            assert r.error is None and r.correct, (kind, r.error)
        expected_attempts = {"rate_limit": 2, "server_500": 2, "server_503": 3, "timeout": 2, "reset": 2, "ok": 1}
        if kind in expected_attempts:
            assert r.attempts == expected_attempts[kind], kind
    kinds = Counter(r.error_kind for r in recs.values() if r.error)
    assert kinds == {"bad_response": 8, "server_error": 4}
    # a truncated answer is an answer: scored (format-invalid, wrong) with its reason, never an error
    truncated = [r for i, r in recs.items() if FAULTS[i % 10] == "length"]
    assert len(truncated) == 4 and all(r.error is None and r.answer_issue.startswith("truncated") for r in truncated)
    assert all(not r.format_valid and not r.correct for r in truncated)
    assert all(recs[i].attempts == 4 for i in recs if FAULTS[i % 10] == "always_500")
    assert all(seen[i] == 1 for i in recs if FAULTS[i % 10] in ("malformed", "empty_choices", "length"))
    row = pd.read_csv(res.run_dir / "summary.csv").iloc[0]
    assert row["errors"] == 12 and row["error_rate"] == pytest.approx(0.3) and row["truncated"] == 4
    # every item in the denominator: 24 right of 40 asked; 24 of the 28 answered
    assert row["accuracy"] == pytest.approx(0.6) and row["accuracy_answered"] == pytest.approx(24 / 28)
    assert row["format_valid"] == pytest.approx(0.6)
    assert row["status"] == "incomplete: 12 of 40 unanswered"


def test_max_error_rate_stops_early_and_keeps_records(tmp_path):
    ev = big_evalset(tmp_path, 200)
    # 422: a refused request that is recorded as an error (400 and the other permanent errors stop the run)
    with FakeOpenAIServer(lambda b: Reply(status=422), models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, ev, srv.base_url, run={"concurrency": 2, "max_tokens": 16})
        res = do_run(cfg, tmp_path, max_error_rate=0.5)
    assert res.status == "stopped_early" and "error rate" in res.message
    recs = read_records(res.run_dir / "records.jsonl")
    assert 20 <= len(recs) < 200 and all(r.error_kind == "client_error" for r in recs)
    assert json.loads((res.run_dir / "manifest.json").read_text())["status"] == "stopped_early"
    assert (res.run_dir / "summary.csv").exists()


# -- secrets ---------------------------------------------------------------------------------------

def test_canary_api_key_never_written(tmp_path, evalset_dir, monkeypatch, capfd):
    canary = "sk-canary-5f1e2d3c4b5a69788796a5b4c3d2e1f0"
    header_canary = "gw-canary-0a1b2c3d4e5f60718293a4b5c6d7e8f9"  # a gateway key, from {env: NAME}
    literal_canary = "lit-canary-9f8e7d6c5b4a3928"  # a header value written into the config itself
    monkeypatch.setenv("CANARY_API_KEY", canary)
    monkeypatch.setenv("CANARY_GATEWAY_KEY", header_canary)
    auth_seen, gateway_seen, literal_seen = [], [], []

    def handler(body):
        # A hostile server that echoes the key and the gateway headers back in an error message.
        headers = srv.current_headers()
        auth = headers.get("authorization", "")
        auth_seen.append(auth)
        gateway_seen.append(headers.get("x-gateway-key", ""))
        literal_seen.append(headers.get("x-route-secret", ""))
        if "stole" in last_user_text(body):
            echo = f"bad key {auth}; gateway {headers.get('x-gateway-key')}; route {headers.get('x-route-secret')}"
            return Reply(status=422, raw_body=json.dumps({"error": {"message": echo}}).encode())
        return right_answer(body)

    srv = FakeOpenAIServer(handler, models=["gpt-4o-mini"]).start()
    try:
        cfg = make_config(tmp_path, evalset_dir, srv.base_url,
                          models={"small": {"provider": "openai-compatible", "base_url": srv.base_url,
                                            "model": "gpt-4o-mini", "api_key_env": "CANARY_API_KEY",
                                            "headers": {"X-Gateway-Key": {"env": "CANARY_GATEWAY_KEY"},
                                                        "X-Route-Secret": literal_canary}}})
        from harness.cli import main

        assert main(["run", str(cfg), "--results-dir", str(tmp_path / "results")]) == 0
    finally:
        srv.stop()
    assert any(canary in a for a in auth_seen)  # the key was really sent
    assert set(gateway_seen) == {header_canary} and set(literal_seen) == {literal_canary}  # so were the headers
    out, err = capfd.readouterr()
    for secret in (canary, header_canary, literal_canary):
        assert secret not in out and secret not in err
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "evalsets" not in p.parts and p != cfg]
    assert any(p.name == "records.jsonl" for p in written)
    for p in written:
        for secret in (canary, header_canary, literal_canary):
            assert secret.encode() not in p.read_bytes(), (p, secret)
    recs = read_records(next(p for p in written if p.name == "records.jsonl"))
    assert any(r.error and "***" in r.error for r in recs)


# -- leakage ---------------------------------------------------------------------------------------

def test_leakage_found_by_validate_and_warned_by_run(tmp_path, evalset_dir, fake_server, capsys):
    from harness.cli import main

    with (evalset_dir / "train.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "leak1", "input": {"text": "Where is my NEW card?"},
                             "expected": {"intent": "card_arrival", "urgent": False}}) + "\n")
        fh.write(json.dumps({"id": "leak2", "input": {"text": "my card has not arrived after two weeks"},
                             "expected": {"intent": "card_arrival", "urgent": True}}) + "\n")
    (evalset_dir / "docs" / "faq.md").write_text("FAQ. Q: I want my money back for the order! A: ask the merchant.")
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    assert main(["validate", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "1 test item(s) identical to train (t1~leak1)" in out
    assert "near-duplicates of train (t4~leak2)" in out
    assert "identical to docs (t3~faq)" in out
    assert main(["run", str(cfg), "--no-progress", "--results-dir", str(tmp_path / "r")]) == 0
    assert "warning: leakage" in capsys.readouterr().err


def test_allow_unpriced_runs_with_unknown_cost(tmp_path, evalset_dir, fake_server):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    cfg.write_text(cfg.read_text().replace("model: gpt-4o-mini", "model: fake-model"))
    res = do_run(cfg, tmp_path, allow_unpriced=True)
    row = pd.read_csv(res.run_dir / "summary.csv").iloc[0]
    assert row["accuracy"] == 1.0 and pd.isna(row["cost_per_request_usd"])
    assert "no price known" in (res.run_dir / "summary.md").read_text()


# -- permanent errors, harness bugs (issue 17) --------------------------------------------------------------

QUOTA = {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                   "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}


def test_out_of_quota_stops_the_run_keeps_the_answers_and_resume_continues(tmp_path, monkeypatch, capsys):
    from harness.cli import main

    monkeypatch.setenv("QUOTA_TEST_KEY", "sk-quota-canary-0123456789")
    out_of_credit = {"on": True}
    asked = Counter()

    def handler(body):
        asked["n"] += 1
        if out_of_credit["on"] and asked["n"] > 5:
            return Reply(status=429, raw_body=json.dumps(QUOTA).encode())
        return answer_by_number(body)

    ev = big_evalset(tmp_path, 12)
    with FakeOpenAIServer(handler, models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, ev, srv.base_url, run={"concurrency": 1, "max_tokens": 16},
                          models={"small": {"provider": "openai-compatible", "base_url": srv.base_url,
                                            "model": "gpt-4o-mini", "api_key_env": "QUOTA_TEST_KEY",
                                            "max_retries": 4}})
        out = tmp_path / "run"
        code = main(["run", str(cfg), "--no-progress", "--no-cache", "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and asked["n"] == 6  # the 429 insufficient_quota was not retried
        line = next(x for x in err.splitlines() if x.startswith("error: "))
        assert line.startswith("error: models.small (gpt-4o-mini): the account is out of quota")
        assert "add credit or check the plan and billing of the API key in QUOTA_TEST_KEY" in line
        assert f"harness run --resume {out}" in line and "Traceback" not in err
        assert len(read_records(out / "records.jsonl")) == 5
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "failed" and "out of quota" in manifest["message"]
        out_of_credit["on"] = False
        assert main(["run", "--resume", str(out), "--no-progress", "--no-cache"]) == 0
    recs = read_records(out / "records.jsonl")
    assert len(recs) == 12 and len({r.key for r in recs}) == 12 and all(r.error is None for r in recs)
    assert asked["n"] == 6 + 7


@pytest.mark.parametrize("status, says", [
    (401, "the endpoint refused the credentials (HTTP 401: "),
    (403, "the credentials have no access to this model (HTTP 403: "),
    (404, "the endpoint does not know this model (HTTP 404: "),
    (400, "the request was refused (HTTP 400: maximum context length exceeded)"),
])
def test_permanent_errors_stop_the_run_naming_the_model(tmp_path, capsys, status, says):
    from harness.cli import main

    def handler(body):
        if "question number 3 " in last_user_text(body):
            return Reply(status=status, raw_body=json.dumps({"error": {"message": "maximum context length exceeded"
                                                                       if status == 400 else "no"}}).encode())
        return answer_by_number(body)

    ev = big_evalset(tmp_path, 8)
    with FakeOpenAIServer(handler, models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, ev, srv.base_url, run={"concurrency": 1, "max_tokens": 16},
                          models={"small": {"provider": "openai-compatible", "base_url": srv.base_url,
                                            "model": "gpt-4o-mini", "max_retries": 3}})
        code = main(["run", str(cfg), "--no-progress", "--no-cache", "--out", str(tmp_path / "run")])
        assert len(srv.requests) == 4  # q000..q002 answered, q003 refused once, nothing after it
    err = capsys.readouterr().err
    assert code == 2
    line = next(x for x in err.splitlines() if x.startswith("error: "))
    assert line.startswith("error: models.small (gpt-4o-mini): ") and says in line
    assert ("variant baseline, item q003" if status == 400 else "variant baseline") in line
    assert [r.item_id for r in read_records(tmp_path / "run" / "records.jsonl")] == ["q000", "q001", "q002"]


def test_a_bug_in_the_harness_is_raised_not_recorded(tmp_path, monkeypatch):
    from harness.models.client import ModelClient

    def broken(*args, **kwargs):
        raise RuntimeError("bug in the response parser")

    monkeypatch.setattr(ModelClient, "_to_completion", broken)
    ev = big_evalset(tmp_path, 4)
    with FakeOpenAIServer(answer_by_number, models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, ev, srv.base_url, run={"concurrency": 1, "max_tokens": 16})
        with pytest.raises(RuntimeError, match="bug in the response parser"):
            do_run(cfg, tmp_path, use_cache=False)
    run_dir = next((tmp_path / "results").iterdir())
    assert read_records(run_dir / "records.jsonl") == []
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "bug in the response parser" in manifest["message"]
