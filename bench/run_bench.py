"""Benchmark: the harness against a bare AsyncOpenAI loop on the same loopback server, as ratios.

    .venv/bin/python bench/run_bench.py [--quick] [--only a,b,c,e,f] [--out FILE]

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
from harness.runner.folder import read_records  # noqa: E402
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
        acc = sum(1 for r in read_records(run_dir / "records.jsonl") if r.scores.get("correct")) / n
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
        code = ("import resource,sys; from pathlib import Path; from harness.api import run; from harness.runner.runner import RunOptions; "
                f"r = run(Path({str(cfg)!r}), RunOptions(out=Path({str(tmp / 'e')!r}), progress=False, "
                "use_cache=False)); "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
        peak_mb = int(out.stdout.strip().splitlines()[-1]) / 1024
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke check")
    p.add_argument("--only", default="a,b,c,d,e,f")
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
