"""Benchmark: the harness against a bare AsyncOpenAI loop on the same loopback server, as ratios.

    .venv/bin/python bench/run_bench.py [--quick] [--only a,b,c,d,e,f,g,h,i] [--out FILE]

Each figure is a ratio measured within one run, because absolute seconds on a shared 2-core machine are
noise. Prints one JSON object (and writes it with --out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.api import run  # noqa: E402
from harness.rundir.folder import read_records  # noqa: E402
from harness.runner.runner import RunOptions  # noqa: E402

LABELS = ["card_arrival", "lost_card", "refund", "exchange_rate"]


def start_server(delay_ms: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "fast_server.py"), "--delay-ms", str(delay_ms)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    return proc, url


def make_evalset(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "task.yaml").write_text(yaml.safe_dump({
        "instructions": "Classify the banking message.", "input_template": "{text}",
        "output_schema": {"type": "object", "properties": {"intent": {"type": "string", "enum": LABELS}},
                          "required": ["intent"], "additionalProperties": False},
    }))
    with (folder / "test.jsonl").open("w") as fh:
        for i in range(n):
            # 3 of 4 expected answers match the server's fixed answer: a known 75%.
            label = "card_arrival" if i % 4 else "refund"
            fh.write(json.dumps({"id": f"i{i:05d}", "input": {"text": f"message {i}: where is card {i * 13 % 997}?"},
                                 "expected": {"intent": label}}) + "\n")
    return folder


def make_config(folder: Path, evalset: Path, url: str, concurrency: int) -> Path:
    cfg = {
        "name": "bench",
        "evalset": str(evalset),
        "models": {"m": {"provider": "openai-compatible", "base_url": url, "model": "gpt-4o-mini",
                         "structured_output": "json_schema", "timeout_s": 60}},
        "variants": [{"name": "baseline", "kind": "baseline", "model": "m"}],
        "run": {"concurrency": concurrency, "temperature": 0, "max_tokens": 32},
    }
    path = folder / f"bench-{concurrency}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


async def bare_loop(url: str, n: int, concurrency: int) -> float:
    """The ceiling: the SDK alone, a semaphore and a JSON check; no records, no scoring."""
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
    sem = asyncio.Semaphore(concurrency)
    ok = 0

    async def one(i: int) -> None:
        nonlocal ok
        async with sem:
            r = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"message {i}"}], max_tokens=32,
                temperature=0)
            if json.loads(r.choices[0].message.content).get("intent"):
                ok += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    dt = time.perf_counter() - t0
    await client.close()
    assert ok == n
    return dt


def harness_run(cfg: Path, out: Path, *, use_cache: bool = False, cache_path: Path | None = None) -> tuple[float, Path]:
    t0 = time.perf_counter()
    res = run(cfg, RunOptions(out=out, progress=False, use_cache=use_cache, cache_path=cache_path))
    dt = time.perf_counter() - t0
    assert res.status == "completed", res.message
    return dt, res.run_dir


def calls_phase_s(run_dir: Path) -> float:
    """Time the runner spent answering items (cache lookups and model calls), without start-up
    (loading, leakage check, index) and the final report; the runner records it in the manifest."""
    return json.loads((run_dir / "manifest.json").read_text())["calls"]["seconds"]


def bench_throughput(tmp: Path, n: int, results: dict) -> None:
    proc, url = start_server(0)
    try:
        ev = make_evalset(tmp / f"ev-{n}", n)
        cfg = make_config(tmp, ev, url, 32)
        asyncio.run(bare_loop(url, 200, 32))  # warm up both sides
        bare = min(asyncio.run(bare_loop(url, n, 32)) for _ in range(2))
        times = []
        for k in range(2):
            dt, run_dir = harness_run(cfg, tmp / f"a-{k}")
            times.append(dt)
        harness_s = min(times)
        acc = sum(1 for r in read_records(run_dir / "records.jsonl") if r.correct) / n
        results["a_throughput_vs_bare"] = {
            "requests": n, "concurrency": 32, "bare_s": round(bare, 3), "harness_s": round(harness_s, 3),
            "harness_calls_phase_s": round(calls_phase_s(run_dir), 3),
            "ratio": round(bare / harness_s, 3), "target": ">= 0.8", "accuracy": acc,
        }
    finally:
        proc.kill()


def bench_latency_bound(tmp: Path, n: int, results: dict) -> None:
    proc, url = start_server(100)
    try:
        ev = make_evalset(tmp / f"ev-lat-{n}", n)
        cfg = make_config(tmp, ev, url, 16)
        bare = asyncio.run(bare_loop(url, n, 16))
        dt, run_dir = harness_run(cfg, tmp / "b")
        ideal = n * 0.1 / 16
        calls = calls_phase_s(run_dir)
        results["b_latency_bound"] = {
            "requests": n, "concurrency": 16, "server_delay_s": 0.1, "ideal_s": round(ideal, 3),
            "bare_s": round(bare, 3), "harness_calls_phase_s": round(calls, 3), "harness_total_s": round(dt, 3),
            "ratio": round(ideal / calls, 3), "ratio_including_startup_and_report": round(ideal / dt, 3),
            "bare_ratio": round(ideal / bare, 3), "target": ">= 0.9",
        }
    finally:
        proc.kill()


def bench_cache(tmp: Path, n: int, results: dict) -> None:
    proc, url = start_server(0)
    try:
        ev = make_evalset(tmp / f"ev-cache-{n}", n)
        cfg = make_config(tmp, ev, url, 32)
        cache = tmp / "cache.sqlite"
        cold, cold_dir = harness_run(cfg, tmp / "c-cold", use_cache=True, cache_path=cache)
        warm, run_dir = harness_run(cfg, tmp / "c-warm", use_cache=True, cache_path=cache)
        hits = sum(1 for r in read_records(run_dir / "records.jsonl") if r.cache_hit)
        cold_calls, warm_calls = calls_phase_s(cold_dir), calls_phase_s(run_dir)
        results["c_warm_cache"] = {
            "records": n, "cold_calls_s": round(cold_calls, 3), "warm_calls_s": round(warm_calls, 3),
            "cold_total_s": round(cold, 3), "warm_total_s": round(warm, 3), "cache_hits": hits,
            "ratio": round(warm_calls / cold_calls, 4), "ratio_total": round(warm / cold, 4), "target": "<= 0.05"}
    finally:
        proc.kill()


def bench_memory(tmp: Path, n: int, results: dict) -> None:
    proc, url = start_server(0)
    try:
        ev = make_evalset(tmp / f"ev-mem-{n}", n)
        cfg = make_config(tmp, ev, url, 32)
        peak_mb = child_run(cfg, tmp / "e")["peak_rss_mb"]
        results["e_peak_memory"] = {"items": n, "peak_rss_mb": round(peak_mb, 1), "target": "<= 400"}
    finally:
        proc.kill()


def bench_embedding(results: dict) -> None:
    script = REPO / "bench" / "embed_banking77.py"
    if not script.exists():
        results["d_embedding"] = {"skipped": "bench/embed_banking77.py missing"}
        return
    out = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        results["d_embedding"] = {"error": out.stderr.strip().splitlines()[-1:]}
        return
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["target"] = "build_s <= 60, reembedded_on_rebuild == 0"
    results["d_embedding"] = data


def bench_demo(tmp: Path, limit: int, results: dict) -> None:
    """Harness overhead on the real local model: calls-phase wall time vs the server's own time per call."""
    cfg = REPO / "configs" / "demo.yaml"
    t0 = time.perf_counter()
    res = run(cfg, RunOptions(out=tmp / "demo", progress=False, use_cache=False, limit=limit))
    total = time.perf_counter() - t0
    recs = [r for r in read_records(res.run_dir / "records.jsonl") if r.latency_s]
    server_s = sum(r.latency_s for r in recs)
    calls = calls_phase_s(res.run_dir)
    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    conc = yaml.safe_load(cfg.read_text())["run"]["concurrency"]
    results["f_demo_overhead"] = {
        "records": len(recs), "total_wall_s": round(total, 2), "calls_phase_s": round(calls, 2),
        "server_time_s": round(server_s, 2), "concurrency": conc,
        # llama.cpp's server answers one request at a time, so its own busy time is the sum of latencies.
        "overhead": round(calls / server_s - 1, 4), "target": "<= 0.05",
        "startup_and_index_s": round(total - calls, 2), "rag": manifest.get("rag"),
    }


# -- g. baseline, few-shot (similar) and RAG at the client's speed -------------------------------------------

_SUBJECTS = ["card", "transfer", "refund", "exchange rate", "top-up", "PIN", "account", "payment", "ATM withdrawal",
             "direct debit", "statement", "virtual card", "cash deposit", "wire", "cheque"]
_VERBS = ["has not arrived", "was declined", "is pending", "shows the wrong amount", "was charged twice",
          "failed at the shop", "is blocked", "disappeared from the app", "took too long", "was reversed"]
_TAILS = ["since Monday", "after I moved abroad", "while travelling in Spain", "on my new phone", "this morning",
          "for the third time", "although the balance is fine", "and support did not answer", "last week",
          "right after I updated the app"]


def _ticket(rng, i: int) -> str:
    return (f"My {rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_TAILS)}, reference {i}-{rng.randint(0, 9999)}"
            f"; what should I do about the {rng.choice(_SUBJECTS)}?")


def make_rag_evalset(folder: Path, n_test: int, n_train: int, n_docs: int, salt: int) -> Path:
    """Test items (new texts for each salt), a train pool and a knowledge base that stay the same."""
    import random

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "task.yaml").write_text(yaml.safe_dump({
        "instructions": "Classify the banking message.", "input_template": "{text}",
        "output_schema": {"type": "object", "properties": {"intent": {"type": "string", "enum": LABELS}},
                          "required": ["intent"], "additionalProperties": False},
    }))
    rng = random.Random(1000 + salt)
    with (folder / "test.jsonl").open("w") as fh:
        for i in range(n_test):
            fh.write(json.dumps({"id": f"t{i:05d}", "input": {"text": _ticket(rng, i)},
                                 "expected": {"intent": "card_arrival" if i % 4 else "refund"}}) + "\n")
    rng = random.Random(1)
    with (folder / "train.jsonl").open("w") as fh:
        for i in range(n_train):
            fh.write(json.dumps({"id": f"r{i:05d}", "input": {"text": _ticket(rng, 100000 + i)},
                                 "expected": {"intent": LABELS[i % len(LABELS)]}}) + "\n")
    docs = folder / "docs"
    docs.mkdir(exist_ok=True)
    for d in range(n_docs):
        paras = [f"{s.capitalize()} policy {d}.{k}: when a {s} {v}, the customer is told to wait two working days, "
                 f"then to contact support with the reference; fees are refunded when the bank is at fault."
                 for k, (s, v) in enumerate(zip(rng.sample(_SUBJECTS, 3), rng.sample(_VERBS, 3), strict=True))]
        (docs / f"doc{d:02d}.md").write_text("\n\n".join(paras))
    return folder


def make_variants_config(folder: Path, evalset: Path, url: str, concurrency: int, index_dir: Path) -> Path:
    cfg = {
        "name": "bench-variants", "evalset": str(evalset),
        "models": {"m": {"provider": "openai-compatible", "base_url": url, "model": "gpt-4o-mini",
                         "structured_output": "json_schema", "timeout_s": 60}},
        "variants": [{"name": "baseline", "kind": "baseline", "model": "m"},
                     {"name": "few-shot", "kind": "few_shot", "model": "m", "shots": 4, "selection": "similar"},
                     {"name": "rag", "kind": "rag", "model": "m", "top_k": 3}],
        "run": {"concurrency": concurrency, "temperature": 0, "max_tokens": 32, "keep_leaked": True},
        "rag": {"index_dir": str(index_dir)},
    }
    path = folder / f"variants-{evalset.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


async def replay_loop(url: str, requests: list[list[dict]], concurrency: int) -> float:
    """The bare client sending exactly the messages the harness sent (rendered for free, no retrieval)."""
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
    sem = asyncio.Semaphore(concurrency)

    async def one(messages: list[dict]) -> None:
        async with sem:
            r = await client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=32,
                                                     temperature=0)
            json.loads(r.choices[0].message.content)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(m) for m in requests))
    dt = time.perf_counter() - t0
    await client.close()
    return dt


def measured_s(run_dir: Path) -> float:
    """The run from the end of start-up to the last record: prompt preparation that blocks the calls (Plan.build)
    plus the calls phase, which includes retrieval and selection done while calls are in flight."""
    m = json.loads((run_dir / "manifest.json").read_text())
    return (m.get("timings") or {}).get("prepare_s", 0.0) + m["calls"]["seconds"]


def bench_variants(tmp: Path, n: int, results: dict, rounds: int = 3) -> None:
    import statistics

    proc, url = start_server(0)
    try:
        index_dir = tmp / "g-index"
        # Start-up outside the measurement: the index and the pool's embeddings (cached by text), the model.
        warm_ev = make_rag_evalset(tmp / "g-ev-warmup" / "ev", 20, 1000, 24, salt=999)
        harness_run(make_variants_config(tmp, warm_ev, url, 32, index_dir), tmp / "g-warmup", use_cache=False)
        rows = []
        for k in range(rounds):
            # New test texts each round, so their query embeddings are computed in the measured run.
            ev = make_rag_evalset(tmp / f"g-ev-{k}" / "ev", n, 1000, 24, salt=k)
            cfg = make_variants_config(tmp / f"g-ev-{k}", ev, url, 32, index_dir)
            total, run_dir = harness_run(cfg, tmp / f"g-{k}", use_cache=False)
            recs = read_records(run_dir / "records.jsonl")
            assert len(recs) == 3 * n and not any(r.error for r in recs)
            bare = asyncio.run(bare_loop(url, 3 * n, 32))
            replay = asyncio.run(replay_loop(url, [r.request["messages"] for r in recs], 32))
            cold = measured_s(run_dir)
            # The same items again: query embeddings now come from the cache by text.
            total_w, run_dir_w = harness_run(cfg, tmp / f"g-{k}-again", use_cache=False)
            warm = measured_s(run_dir_w)
            m = json.loads((run_dir / "manifest.json").read_text())
            rows.append({"bare_s": round(bare, 3), "bare_replay_s": round(replay, 3), "harness_s": round(cold, 3),
                         "harness_total_s": round(total, 3), "prompt_stream_s": m["calls"].get("prompt_stream_s"),
                         "harness_again_s": round(warm, 3), "ratio": round(bare / cold, 3),
                         "ratio_again": round(bare / warm, 3), "ratio_replay": round(replay / cold, 3),
                         "ratio_again_replay": round(replay / warm, 3)})
        results["g_variants_vs_bare"] = {
            "items": n, "variants": ["baseline", "few-shot (similar, 4 shots)", "rag (top 3)"], "requests": 3 * n,
            "concurrency": 32, "rounds": rows,
            "ratio": statistics.median(r["ratio"] for r in rows),
            "ratio_again": statistics.median(r["ratio_again"] for r in rows),
            "ratio_replay": statistics.median(r["ratio_replay"] for r in rows),
            "ratio_again_replay": statistics.median(r["ratio_again_replay"] for r in rows),
            "target": ">= 0.9",
            "note": "harness_s = prompt preparation before the first call + calls phase (retrieval and selection "
                    "included; start-up, the index and the pool's embeddings excluded); bare_s = figure a's "
                    "AsyncOpenAI loop, same number of requests; bare_replay_s = AsyncOpenAI sending the harness's "
                    "own messages; ratio: new items, so every query is embedded during the run; ratio_again: the "
                    "same items re-run, query embeddings from the cache by text",
        }
    finally:
        proc.kill()


# -- h. 100,000 items synchronously; i. 10,000 items through the Batch API --------------------------------------

# Peak memory is the process's own high-water mark (VmHWM). ru_maxrss is not: Linux carries the parent's
# peak over into a child started by vfork + exec, so a child of a large bench process would report the parent's.
PEAK_RSS_MB = """
def peak_rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

_CHILD_RUN = PEAK_RSS_MB + """
import json, sys, time
from pathlib import Path
from harness.api import run
t0 = time.perf_counter()
r = run(Path(sys.argv[1]), out=Path(sys.argv[2]), progress=False, use_cache=sys.argv[3] == "cache")
total = time.perf_counter() - t0
print(json.dumps({"status": r.status, "total_s": total, "peak_rss_mb": peak_rss_mb()}))
"""


def child_run(cfg: Path, out: Path, *, use_cache: bool = False) -> dict:
    """`harness.run` (calls, records, summary and report) in a fresh process, for its peak memory."""
    res = subprocess.run([sys.executable, "-c", _CHILD_RUN, str(cfg), str(out), "cache" if use_cache else "-"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    data = json.loads(res.stdout.strip().splitlines()[-1])
    assert data["status"] == "completed", data
    return data


def bench_scale(tmp: Path, n: int, results: dict) -> None:
    proc, url = start_server(0)
    try:
        ev = make_evalset(tmp / f"ev-scale-{n}", n)
        cfg = make_config(tmp, ev, url, 32)
        asyncio.run(bare_loop(url, 500, 32))  # warm up
        bare_before = asyncio.run(bare_loop(url, n, 32))
        child = child_run(cfg, tmp / "h")
        bare_after = asyncio.run(bare_loop(url, n, 32))
        bare = (bare_before + bare_after) / 2
        run_dir = tmp / "h"
        lines = sum(1 for _ in (run_dir / "records.jsonl").open("rb"))
        results["h_scale_100k"] = {
            "items": n, "concurrency": 32, "bare_s": round(bare, 1),
            "bare_runs_s": [round(bare_before, 1), round(bare_after, 1)],
            "harness_total_s": round(child["total_s"], 1), "harness_calls_phase_s": round(calls_phase_s(run_dir), 1),
            "ratio": round(bare / child["total_s"], 3), "ratio_calls_phase": round(bare / calls_phase_s(run_dir), 3),
            "peak_rss_mb": round(child["peak_rss_mb"], 1), "records_on_disk": lines,
            "records_mb": round((run_dir / "records.jsonl").stat().st_size / 1e6, 1),
            "target": "ratio >= 0.9, peak_rss_mb <= 500",
            "note": "harness_total_s includes start-up, the summary and report.md/report.html over all records; "
                    "bare_s is the mean of a bare AsyncOpenAI loop before and after the harness run",
        }
    finally:
        proc.kill()


def bench_batch(tmp: Path, n: int, results: dict, turnaround_s: float = 30.0, poll_s: float = 1.0) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.batch_server", "--turnaround-s", str(turnaround_s)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    try:
        ev = make_evalset(tmp / f"ev-batch-{n}", n)
        cfg = make_config(tmp, ev, url, 32)
        data = yaml.safe_load(cfg.read_text())
        data["run"].update(mode="batch", batch_poll_s=poll_s)
        cfg = tmp / "bench-batch.yaml"
        cfg.write_text(yaml.safe_dump(data))
        child = child_run(cfg, tmp / "i", use_cache=True)
        m = json.loads((tmp / "i" / "manifest.json").read_text())
        (batch,) = m["calls"]["batches"]
        recs = read_records(tmp / "i" / "records.jsonl")
        assert len(recs) == n and not any(r.error for r in recs), "every line answered"
        overhead = child["total_s"] - turnaround_s
        results["i_batch_10k"] = {
            "items": n, "server_turnaround_s": turnaround_s, "poll_s": poll_s, "batch_status": batch["status"],
            "harness_total_s": round(child["total_s"], 2), "calls_phase_s": m["calls"]["seconds"],
            "harness_overhead_s": round(overhead, 2),
            "turnaround_share": round(turnaround_s / child["total_s"], 3),
            "peak_rss_mb": round(child["peak_rss_mb"], 1),
            "target": "end-to-end time dominated by the server's turnaround",
            "note": "overhead = everything but the turnaround: start-up, writing and uploading the JSONL, polling "
                    "granularity, downloading and scoring the output, the cache, the summary and the report",
        }
    finally:
        proc.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke check")
    p.add_argument("--only", default="a,b,c,d,e,f,g,h,i")
    p.add_argument("--demo-limit", type=int, default=20)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    only = set(args.only.split(","))
    q = args.quick
    results: dict = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                     "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ["HARNESS_CACHE_DIR"] = str(tmp / "hcache")
        if "a" in only:
            bench_throughput(tmp, 500 if q else 2000, results)
        if "b" in only:
            bench_latency_bound(tmp, 160 if q else 800, results)
        if "c" in only:
            bench_cache(tmp, 1000 if q else 10000, results)
        if "e" in only:
            bench_memory(tmp, 1000 if q else 10000, results)
        if "g" in only:
            bench_variants(tmp, 200 if q else 667, results)
        if "h" in only:
            bench_scale(tmp, 5000 if q else 100_000, results)
        if "i" in only:
            bench_batch(tmp, 1000 if q else 10_000, results, turnaround_s=5.0 if q else 30.0)
        if "d" in only:
            bench_embedding(results)
        if "f" in only:
            os.environ.pop("HARNESS_CACHE_DIR")
            bench_demo(tmp, 4 if q else args.demo_limit, results)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
