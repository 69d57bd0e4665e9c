"""The response cache: its key is the request actually sent, and a shared or broken cache never kills a run."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness.api import run
from harness.config import load_config
from harness.models.cache import ResponseCache
from harness.models.local import LocalServer
from harness.rundir import Manifest
from harness.rundir.folder import read_records
from harness.runner.plan import Plan
from harness.runner.runner import RunOptions
from tests.conftest import REPO, make_config, right_answer
from tests.fakes.openai_server import FakeOpenAIServer, Reply


def do_run(cfg, tmp_path, **kw):
    kw.setdefault("results_dir", tmp_path / "results")
    return run(cfg, RunOptions(progress=False, **kw))


def small_model(url: str, **extra) -> dict:
    return {"small": {"provider": "openai-compatible", "base_url": url, "model": "gpt-4o-mini",
                      "structured_output": "json_schema", **extra}}


def rows(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [k for (k,) in db.execute("SELECT key FROM responses")]


# -- point 5: the key is the request actually sent -------------------------------------------------------

def test_changing_extra_body_is_a_new_request(tmp_path, evalset_dir, fake_server):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url,
                      models=small_model(fake_server.base_url, extra_body={"top_p": 0.5}))
    do_run(cfg, tmp_path)
    assert len(fake_server.requests) == 4
    assert do_run(cfg, tmp_path) and len(fake_server.requests) == 4  # same body: answered from the cache
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url,
                      models=small_model(fake_server.base_url, extra_body={"top_p": 0.9}))
    res = do_run(cfg, tmp_path)
    assert len(fake_server.requests) == 8, "a different extra_body was answered from the cache"
    assert all(b["top_p"] == 0.9 for b in fake_server.requests[4:])
    assert not any(r.cache_hit for r in read_records(res.run_dir / "records.jsonl"))


def test_openai_provider_is_keyed_by_the_resolved_base_url(tmp_path, evalset_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    models = {"small": {"provider": "openai", "model": "gpt-4o-mini"}}
    with FakeOpenAIServer(right_answer, models=["gpt-4o-mini"]) as one, \
            FakeOpenAIServer(right_answer, models=["gpt-4o-mini"]) as two:
        cfg = make_config(tmp_path, evalset_dir, one.base_url, models=models)
        monkeypatch.setenv("OPENAI_BASE_URL", one.base_url)
        do_run(cfg, tmp_path)
        monkeypatch.setenv("OPENAI_BASE_URL", two.base_url)
        res = do_run(cfg, tmp_path)
        assert (len(one.requests), len(two.requests)) == (4, 4), "another endpoint's answers came from the cache"
    assert not any(r.cache_hit for r in read_records(res.run_dir / "records.jsonl"))


def test_each_repeat_sends_its_own_seed(tmp_path, evalset_dir, fake_server):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url,
                      run={"concurrency": 2, "temperature": 0.8, "max_tokens": 64, "seed": 7, "repeats": 3})
    res = do_run(cfg, tmp_path)
    recs = read_records(res.run_dir / "records.jsonl")
    assert {(r.repeat, r.request["seed"]) for r in recs} == {(0, 7), (1, 8), (2, 9)}
    assert sorted(b["seed"] for b in fake_server.requests) == [7] * 4 + [8] * 4 + [9] * 4
    again = do_run(cfg, tmp_path)  # each repeat's answer is cached under its own seed
    assert len(fake_server.requests) == 12
    assert all(r.cache_hit for r in read_records(again.run_dir / "records.jsonl"))


def local_plan(tmp_path, evalset_dir, gguf: Path, lora: Path | None = None):
    model = {"provider": "local", "gguf": str(gguf), **({"lora": str(lora)} if lora else {})}
    cfg = load_config(make_config(tmp_path, evalset_dir, "http://unused", models={"loc": model},
                                  variants=[{"name": "b", "kind": "baseline", "model": "loc"}]))
    return Plan(cfg, None, run_dir=tmp_path, config_path=None, manifest=Manifest()), cfg.variants[0]


def test_local_key_covers_files_runtime_and_server_settings(tmp_path, evalset_dir, monkeypatch):
    gguf, lora = tmp_path / "base.gguf", tmp_path / "adapter.gguf"
    gguf.write_bytes(b"GGUF" + bytes(64))
    lora.write_bytes(b"GGUF" + bytes(32))
    real_version = importlib.metadata.version

    def version_of(llama: str):
        return lambda name: llama if name == "llama-cpp-python" else real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", version_of("0.3.8"))
    plan, v = local_plan(tmp_path, evalset_dir, gguf, lora)
    key = plan.endpoint_id(v, None)
    assert key == local_plan(tmp_path, evalset_dir, gguf, lora)[0].endpoint_id(v, None)  # stable across runs

    monkeypatch.setattr(importlib.metadata, "version", version_of("0.3.9"))
    assert local_plan(tmp_path, evalset_dir, gguf, lora)[0].endpoint_id(v, None) != key, "llama-cpp-python release"
    monkeypatch.setattr(importlib.metadata, "version", version_of("0.3.8"))

    # the settings in the key are the ones the server is started with (one source for both)
    spec = plan.local_spec("loc")
    served = LocalServer([spec])._config(0)["models"][0]
    assert f"n_ctx={served['n_ctx']}" in key and f"chat_format={served['chat_format']}" in key
    for change in ({"n_ctx": served["n_ctx"] * 2}, {"chat_format": "chatml"}):
        plan.local_specs["loc"] = dataclasses.replace(spec, **change)
        assert plan.endpoint_id(v, None) != key, change
    plan.local_specs["loc"] = spec

    lora.write_bytes(b"GGUF" + bytes(48))  # a retrained adapter is a new model
    assert local_plan(tmp_path, evalset_dir, gguf, lora)[0].endpoint_id(v, None) != key
    assert local_plan(tmp_path, evalset_dir, gguf)[0].endpoint_id(v, None) != key  # no adapter


# -- point 6: a shared or broken cache never kills a run ---------------------------------------------------

SLOW_WRITER = """
import sys, threading, time
from pathlib import Path
from harness.models.cache import ResponseCache
cache = ResponseCache(Path(sys.argv[1]))
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
n = 0
while not stop.is_set() and n < 250:  # a slow run: an answer every 0.2 s, for up to 50 s
    cache.put(f"slow-{n}", {"text": "{}", "usage": None, "latency_s": 0.2, "finish_reason": "stop"})
    n += 1
    if n == 1:
        print("writing", flush=True)
    time.sleep(0.2)
cache.close()
print(n, flush=True)
"""


def test_two_processes_share_a_cache_while_one_writes_slowly(tmp_path, evalset_dir, fake_server):
    path = tmp_path / "shared" / "responses.sqlite"
    ResponseCache(path).close()
    slow = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(path)], cwd=REPO, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert slow.stdout.readline().strip() == "writing"
        time.sleep(0.5)
        cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
        t0 = time.monotonic()
        res = do_run(cfg, tmp_path, cache_path=path)
        took = time.monotonic() - t0
        out, err = slow.communicate(input="", timeout=60)  # EOF on stdin: the slow run finishes
    finally:
        if slow.poll() is None:
            slow.kill()
    assert res.status == "completed"
    assert took < 20, f"the run waited {took:.1f} s for the other run's write lock"
    assert slow.returncode == 0, err
    assert "Traceback" not in err and "locked" not in err
    written = int(out.strip())
    keys = rows(path)
    assert sum(k.startswith("slow-") for k in keys) == written
    assert sum(not k.startswith("slow-") for k in keys) == 4  # the fast run's answers are cached too
    again = do_run(cfg, tmp_path, cache_path=path)
    assert all(r.cache_hit for r in read_records(again.run_dir / "records.jsonl"))


def test_corrupt_cache_file_runs_uncached_with_one_warning(tmp_path, evalset_dir, fake_server, capsys):
    path = tmp_path / "responses.sqlite"
    path.write_bytes(b"this is not a database, just bytes " * 200)
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    capsys.readouterr()
    for _ in range(2):
        res = do_run(cfg, tmp_path, cache_path=path)
        assert res.status == "completed"
        recs = read_records(res.run_dir / "records.jsonl")
        assert len(recs) == 4 and all(r.correct and not r.cache_hit for r in recs)
        warnings = [line for line in capsys.readouterr().err.splitlines() if "response cache" in line]
        assert len(warnings) == 1, warnings
        assert str(path) in warnings[0]
    assert len(fake_server.requests) == 8


def test_cache_damaged_after_opening_degrades_to_misses(tmp_path, capsys):
    path = tmp_path / "responses.sqlite"
    cache = ResponseCache(path)
    cache.put("a", {"text": "x"})
    cache.commit()
    assert cache.get("a") == {"text": "x"}
    with sqlite3.connect(path) as db:  # another program breaks the table under us
        db.execute("DROP TABLE responses")
    assert cache.get("a") is None
    assert cache.get_many(["a", "b"]) == {}
    cache.put("b", {"text": "y"})
    cache.close()
    warnings = [line for line in capsys.readouterr().err.splitlines() if "response cache" in line]
    assert len(warnings) == 1, warnings


def test_a_locked_cache_gives_up_on_the_write_without_raising(tmp_path, capsys):
    path = tmp_path / "responses.sqlite"
    ResponseCache(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock for good
    try:
        cache = ResponseCache(path, timeout_s=0.2)
        for i in range(3):
            cache.put(f"k{i}", {"text": "x"})
        cache.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    warnings = [line for line in capsys.readouterr().err.splitlines() if "response cache" in line]
    assert len(warnings) == 1 and "locked" in warnings[0], warnings


def test_writes_commit_within_a_second_without_waiting_for_a_batch(tmp_path):
    path = tmp_path / "responses.sqlite"
    cache = ResponseCache(path)
    try:
        cache.put("only", {"text": "x"})
        deadline = time.monotonic() + 3
        while "only" not in rows(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "only" in rows(path), "a lone answer must be committed by time, not wait for a full batch"
    finally:
        cache.close()


def test_cache_calls_never_block_the_event_loop(tmp_path):
    path = tmp_path / "responses.sqlite"
    cache = ResponseCache(path)
    cache.put("seen", {"text": "x"})
    cache.commit()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # the file is locked for 1.5 s while the loop uses the cache
    release = threading.Timer(1.5, lambda: holder.execute("ROLLBACK"))

    async def main() -> float:
        worst, stop = 0.0, asyncio.Event()

        async def ticker():
            nonlocal worst
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                worst, last = max(worst, now - last), now

        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        for i in range(20):
            cache.put(f"k{i}", {"text": str(i)})
            await asyncio.sleep(0)
        getter = getattr(cache, "aget", None)
        if getter is not None:
            await getter("seen")
        await asyncio.sleep(0.2)
        stop.set()
        await tick
        return worst

    release.start()
    try:
        worst = asyncio.run(main())
    finally:
        release.join()
        holder.close()
    cache.close()
    assert worst < 0.75, f"the event loop stalled for {worst:.2f} s on the cache"
    assert {f"k{i}" for i in range(20)} <= set(rows(path))


# -- point 7 through the runner: no usage stays unknown, in the cache too --------------------------------

def test_missing_usage_stays_unknown_through_the_cache(tmp_path, evalset_dir):
    def no_usage(body):
        return dataclasses.replace(right_answer(body), usage=False)

    with FakeOpenAIServer(no_usage, models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, evalset_dir, srv.base_url)
        cold = do_run(cfg, tmp_path)
        warm = do_run(cfg, tmp_path)
        assert len(srv.requests) == 4
    for res, hit in ((cold, False), (warm, True)):
        recs = read_records(res.run_dir / "records.jsonl")
        assert len(recs) == 4
        assert all(r.cache_hit is hit and r.usage is None and r.cost_usd is None for r in recs)
        assert all(r.correct for r in recs)


def test_refusal_survives_the_cache(tmp_path, evalset_dir):
    with FakeOpenAIServer(lambda body: Reply(refusal="I can't help with that."), models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, evalset_dir, srv.base_url)
        do_run(cfg, tmp_path)
    path = tmp_path / "cache" / "responses.sqlite"
    with sqlite3.connect(path) as db:
        values = [json.loads(v) for (v,) in db.execute("SELECT value FROM responses")]
    assert len(values) == 4 and all(v["refusal"] == "I can't help with that." for v in values)
