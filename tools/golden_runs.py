"""The run folders `tools/golden.py make` writes: each scenario runs the current harness (`python -m harness`, a
subprocess, so the CLI flags are the real ones) against loopback fakes started here, with its own
HARNESS_CACHE_DIR so nothing is cached across runs.

Eval sets, handlers and configs come from the tests' own helpers (tests.conftest, tests.runner.test_shards,
tests.runner.test_reliability, tests.scoring.test_task_scoring / test_judge), so the golden runs exercise the
same shapes the tests do. Run folders land in OUT/<name>/; everything else (eval sets, configs, logs) in
OUT/_inputs/, which the run folders' manifests point at, so keep OUT in place for `render`.
"""

from __future__ import annotations

import json
import os
import signal
import socketserver
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import DOCS, TASK, make_config, write_jsonl
from tests.fakes.batch_server import FakeBatchServer
from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text
from tests.runner.test_reliability import FAULTS, answer_by_number, big_evalset, fault_handler
from tests.runner.test_shards import LABELS, VARIANTS, _item_number, scripted
from tests.scoring.test_judge import JUDGE_PRICE, Server
from tests.scoring.test_task_scoring import free_text_set

_handle_error = socketserver.BaseServer.handle_error


def _quiet_handle_error(self: socketserver.BaseServer, request: Any, client_address: Any) -> None:
    """The fakes' threads print a traceback when the client hangs up on an injected timeout; that is expected."""
    if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
        _handle_error(self, request, client_address)


socketserver.BaseServer.handle_error = _quiet_handle_error  # type: ignore[method-assign]

FT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::golden1"
N_TICKETS = 40
JSON_VARIANTS = [*VARIANTS, {"name": "fine_tuned", "kind": "fine_tuned", "model": "tuned"}]
RUN = {"concurrency": 4, "temperature": 0, "max_tokens": 64, "seed": 7}
# Which tickets the fine-tuned model gets wrong: the accepted run, a better and a clearly worse candidate
# (the worse one's misses include the accepted one's, so the drop is one-directional and significant).
FT_WRONG: dict[str, Callable[[int], bool]] = {
    "accepted": lambda i: i % 10 == 3,
    "better": lambda i: False,
    "worse": lambda i: i % 10 == 3 or i % 4 == 0,
}


# -- eval sets and handlers ----------------------------------------------------------------------------------

def tickets_evalset(root: Path) -> Path:
    """The 40-ticket JSON eval set of tests/runner/test_shards.py (a pytest fixture there, so not callable)."""
    d = root / "evalsets" / "tickets"
    (d / "docs").mkdir(parents=True)
    (d / "task.yaml").write_text(yaml.safe_dump(TASK, sort_keys=False))
    write_jsonl(d / "test.jsonl", [
        {"id": f"ticket-{i:03d}", "input": {"text": f"ticket {i}: a question about my card"},
         "expected": {"intent": LABELS[i % 3], "urgent": i % 2 == 0}} for i in range(N_TICKETS)])
    write_jsonl(d / "train.jsonl", [
        {"id": f"train-{i}", "input": {"text": f"example ticket {100 + i}"},
         "expected": {"intent": LABELS[i % 3], "urgent": False}} for i in range(9)])
    for doc_id, text in DOCS.items():
        (d / "docs" / f"{doc_id}.md").write_text(text)
    return d


def tickets_handler(quality: str = "accepted", *, wobble: bool = False, fail_baseline: frozenset[int] = frozenset(),
                    delay_s: float = 0.0) -> Callable[[dict[str, Any]], Reply]:
    """test_shards.scripted for baseline / few-shot / RAG, plus a fine-tuned model (FT_MODEL) right except on
    FT_WRONG[quality]. `wobble`: repeats (seed 7 + repeat) answer some tickets differently. `fail_baseline`:
    those tickets get HTTP 500 on the bare prompt (system + user)."""
    wrong = FT_WRONG[quality]

    def handle(body: dict[str, Any]) -> Reply:
        i = _item_number(last_user_text(body).rsplit("---", 1)[-1])
        if i in fail_baseline and len(body["messages"]) == 2 and not str(body.get("model")).startswith("ft:"):
            return Reply(status=500)
        if str(body.get("model")).startswith("ft:"):
            reply = Reply(text=json.dumps({"intent": LABELS[(i + wrong(i)) % 3], "urgent": i % 2 == 0}),
                          prompt_tokens=60 + i, completion_tokens=9)
        else:
            reply = scripted(body)
        repeat = int(body.get("seed") or 7) - 7
        if wobble and repeat and (i + repeat) % 6 == 0:
            reply = Reply(text=json.dumps({"intent": LABELS[(i + 2) % 3], "urgent": False}),
                          prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens)
        reply.delay_s = delay_s
        return reply

    return handle


def faulty_handler() -> Callable[[dict[str, Any]], Reply]:
    """test_reliability's faults (500, 503, timeout, reset, malformed body, empty choices, truncation, always
    500) plus bad answers on four of its "ok" items: prose, a refusal, an empty answer, invalid JSON. Its 429
    items answer at once: one 429 makes the rate limiter pace the rest of the run (about 110 s instead of 10)."""
    faults, _seen = fault_handler()
    bad = {8: Reply(text="It is probably a refund.", prompt_tokens=50, completion_tokens=7),
           18: Reply(refusal="I can't help with that.", prompt_tokens=50, completion_tokens=6),
           28: Reply(text="", prompt_tokens=50, completion_tokens=0),
           38: Reply(text='{intent: "refund"', prompt_tokens=50, completion_tokens=5)}

    def handle(body: dict[str, Any]) -> Reply:
        i = int(last_user_text(body).split("question number ")[1].split()[0])
        if FAULTS[i % len(FAULTS)] == "rate_limit":
            return answer_by_number(body)
        return bad.get(i) or faults(body)

    return handle


def judge_handler(verdicts: dict[str, Any]) -> Callable[[dict[str, Any]], Reply]:
    """test_judge.Server's handler (variants from test_task_scoring.answer, HTTP 500 for Peru; verdicts per
    answer), with a second judge model, judge-2, that grades as judge-1 does."""
    server = Server(verdicts)
    return lambda body: server.handle({**body, "model": "judge-1"} if body.get("model") == "judge-2" else body)


# -- running the harness -------------------------------------------------------------------------------------

class Maker:
    def __init__(self, out: Path):
        self.out = out
        self.inputs = out / "_inputs"
        self.log: list[dict[str, Any]] = []

    def config(self, name: str, evalset: Path, url: str, variants: list[dict[str, Any]] | None = None,
               **kw: Any) -> Path:
        d = self.inputs / "configs" / name
        d.mkdir(parents=True, exist_ok=True)
        cfg = make_config(d, evalset, url, variants, **kw)
        data = yaml.safe_load(cfg.read_text())
        data["name"] = name
        cfg.write_text(yaml.safe_dump(data, sort_keys=False))
        return cfg

    def harness(self, name: str, args: list[str], expect_rc: tuple[int, ...] = (0,)) -> None:
        """One `python -m harness ...` in OUT with a cache folder of its own; stdout/stderr kept in _inputs/logs."""
        logs = self.inputs / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"golden-cache-{name}-") as cache:
            env = {**os.environ, "HARNESS_CACHE_DIR": cache}
            proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=self.out, env=env,
                                  capture_output=True, text=True, timeout=600)
        took = time.monotonic() - t0
        (logs / f"{name}.log").write_text(f"$ harness {' '.join(args)}\n# exit {proc.returncode}\n{proc.stdout}"
                                          f"\n# stderr\n{proc.stderr}")
        self.log.append({"name": name, "args": args, "exit_code": proc.returncode, "seconds": round(took, 1)})
        print(f"  {name:<22} exit {proc.returncode}  {took:5.1f}s  harness {' '.join(args[:1])}", flush=True)
        if proc.returncode not in expect_rc:
            raise SystemExit(f"golden make: {name}: harness exited {proc.returncode} (expected {expect_rc}); "
                             f"see {logs / (name + '.log')}\n{proc.stderr[-2000:]}")

    def run(self, name: str, cfg: Path, *flags: str, expect_rc: tuple[int, ...] = (0,)) -> None:
        self.harness(name, ["run", str(cfg), "--no-progress", "--out", name, *flags], expect_rc)

    def killed_run(self, name: str, cfg: Path, after_records: int) -> None:
        """A run SIGKILLed once `after_records` records are on disk: its manifest stays `running`."""
        with tempfile.TemporaryDirectory(prefix=f"golden-cache-{name}-") as cache:
            env = {**os.environ, "HARNESS_CACHE_DIR": cache}
            t0 = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(cfg), "--no-progress", "--out", name],
                                    cwd=self.out, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            records = self.out / name / "records.jsonl"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                if records.exists() and records.read_bytes().count(b"\n") >= after_records:
                    break
                time.sleep(0.02)
            if proc.poll() is not None:
                raise SystemExit(f"golden make: {name}: the run ended (exit {proc.returncode}) before it was killed")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        n = records.read_bytes().count(b"\n")
        self.log.append({"name": name, "args": ["run", str(cfg), "(SIGKILL)"], "exit_code": -9,
                         "seconds": round(time.monotonic() - t0, 1), "records": n})
        print(f"  {name:<22} killed after {n} records", flush=True)


# -- the scenarios -------------------------------------------------------------------------------------------

def json_runs(m: Maker, tickets: Path) -> None:
    """The tickets task: four variants (baseline, few-shot, RAG, fine-tuned) and the runs the gate compares."""
    models = lambda url, tuned_url=None: {  # noqa: E731
        "small": {"provider": "openai-compatible", "base_url": url, "model": "gpt-4o-mini",
                  "structured_output": "json_schema"},
        "tuned": {"provider": "openai-compatible", "base_url": tuned_url or url, "model": FT_MODEL,
                  "structured_output": "json_schema"}}
    extra = {"target_accuracy": 0.8, "monthly_requests": 50000}
    served = ["gpt-4o-mini", FT_MODEL]
    for name, quality in (("json-variants", "accepted"), ("json-better", "better"), ("json-worse", "worse")):
        with FakeOpenAIServer(tickets_handler(quality), models=served) as srv:
            m.run(name, m.config(name, tickets, srv.base_url, JSON_VARIANTS, models=models(srv.base_url),
                                 run=RUN, **extra))
    with FakeOpenAIServer(tickets_handler(wobble=True), models=served) as srv:
        cfg = m.config("json-repeats", tickets, srv.base_url, JSON_VARIANTS, models=models(srv.base_url),
                       run={**RUN, "temperature": 0.7, "repeats": 3}, **extra)
        m.run("json-repeats", cfg)
    with FakeOpenAIServer(tickets_handler(), models=served) as srv:
        cfg = m.config("json-limit-20", tickets, srv.base_url, JSON_VARIANTS, models=models(srv.base_url), run=RUN)
        m.run("json-limit-20", cfg, "--limit", "20")
        # the fine-tuned model's endpoint is unreachable: that variant is skipped, the others run
        cfg = m.config("json-skipped", tickets, srv.base_url, JSON_VARIANTS,
                       models=models(srv.base_url, "http://127.0.0.1:9/v1"), run=RUN)
        m.run("json-skipped", cfg)
        cfg = m.config("json-shards", tickets, srv.base_url, JSON_VARIANTS, models=models(srv.base_url), run=RUN)
        m.run("json-shard-1", cfg, "--shard", "1/2")
        m.run("json-shard-2", cfg, "--shard", "2/2")
        m.harness("json-merged", ["merge", "json-shard-1", "json-shard-2", "--out", "json-merged"])
    with FakeOpenAIServer(tickets_handler(delay_s=0.05), models=served) as srv:
        cfg = m.config("json-killed", tickets, srv.base_url, JSON_VARIANTS, models=models(srv.base_url),
                       run={**RUN, "concurrency": 2})
        m.killed_run("json-killed", cfg, after_records=30)
    with FakeBatchServer(tickets_handler(fail_baseline=frozenset({5, 17})), models=served, turnaround_s=0.3) as srv:
        cfg = m.config("json-batch", tickets, srv.base_url, JSON_VARIANTS, models=models(srv.base_url),
                       run={**RUN, "mode": "batch", "batch_poll_s": 0.05})
        m.run("json-batch", cfg)


def priced_runs(m: Maker, tickets: Path) -> None:
    """A self-hosted model costed by price_per_hour, and a model with no known price (--allow-unpriced)."""
    with FakeOpenAIServer(tickets_handler(delay_s=0.01), models=["golden-llama-8b", "acme-unpriced-1"]) as srv:
        llama = {"provider": "openai-compatible", "base_url": srv.base_url, "model": "golden-llama-8b",
                 "structured_output": "json_object", "price_per_hour": 1.8}
        cfg = m.config("self-hosted", tickets, srv.base_url, VARIANTS, models={"small": llama},
                       run={**RUN, "concurrency": 2}, monthly_requests=20000)
        m.run("self-hosted", cfg)
        mystery = {"provider": "openai-compatible", "base_url": srv.base_url, "model": "acme-unpriced-1"}
        cfg = m.config("unpriced", tickets, srv.base_url, [VARIANTS[0], VARIANTS[2]], models={"small": mystery},
                       run=RUN)
        m.run("unpriced", cfg, "--allow-unpriced")


def fault_runs(m: Maker) -> None:
    """test_reliability's 40-question set: clean, then with injected faults and bad answers."""
    big = big_evalset(m.inputs, 40)
    for name, handler in (("faults-clean", answer_by_number), ("faults", faulty_handler())):
        with FakeOpenAIServer(handler, models=["gpt-4o-mini"]) as srv:
            cfg = m.config(name, big, srv.base_url, run={"concurrency": 8, "max_tokens": 16, "seed": 7},
                           models={"small": {"provider": "openai-compatible", "base_url": srv.base_url,
                                             "model": "gpt-4o-mini", "timeout_s": 0.5, "max_retries": 3}})
            m.run(name, cfg)


SCORING = [
    {"name": "voice", "scorer": "judge", "rubric": "rubric.md", "scale": [1, 5]},
    {"name": "calm", "scorer": "regex", "pattern": "!", "negate": True},
    {"name": "names_it", "scorer": "contains", "any": ["{expected}"]},
    {"name": "close", "scorer": "similarity", "threshold": 0.6},
    {"name": "short", "scorer": "python", "function": "myscorers:short"},
    {"name": "half", "scorer": "python", "function": "myscorers:half"},
]
UNUSABLE = Reply(text="Looks fine to me.", prompt_tokens=1000, completion_tokens=500)
VERDICTS: dict[str, dict[str, Any]] = {
    "free-text": {"Paris.": 5, "It is Munich!": Reply(status=500), "tokyo": UNUSABLE},
    "free-text-flaky": {"Paris.": Reply(status=500), "It is Munich!": Reply(status=500), "tokyo": UNUSABLE},
    "free-text-judge2": {"Paris.": 5, "It is Munich!": Reply(status=500), "tokyo": UNUSABLE},
}


def free_text_runs(m: Maker) -> None:
    """test_task_scoring's capitals (plus test_judge's Peru, whose variant call fails): named scorers (judge,
    regex, contains, similarity, python; a python scorer that raises stops the run, so none here) and an LLM judge that fails on some items."""
    ev = free_text_set(m.inputs, SCORING, primary="voice")
    rows = [json.loads(x) for x in (ev / "test.jsonl").read_text().splitlines()]
    write_jsonl(ev / "test.jsonl", rows + [{"id": "pe", "input": {"q": "capital of Peru"}, "expected": "Lima"}])
    for name, verdicts in VERDICTS.items():
        judge_id = "judge-2" if name.endswith("judge2") else "judge-1"
        with FakeOpenAIServer(judge_handler(verdicts), models=["gpt-4o-mini", "judge-1", "judge-2"]) as srv:
            models = {"small": {"provider": "openai-compatible", "base_url": srv.base_url, "model": "gpt-4o-mini",
                                "max_retries": 0},
                      "grader": {"provider": "openai-compatible", "base_url": srv.base_url, "model": judge_id,
                                 "price": JUDGE_PRICE, "max_retries": 0}}
            variants = [{"name": "baseline", "kind": "baseline", "model": "small"},
                        {"name": "few_shot", "kind": "few_shot", "model": "small", "shots": 1}]
            cfg = m.config(name, ev, srv.base_url, variants, models=models, judge={"model": "grader"},
                           run={"concurrency": 2, "max_tokens": 32, "seed": 1})
            m.run(name, cfg)


# (name, accepted, candidate, extra compare args, what the gate should say)
PAIRS = [
    ("pass-better", "json-variants", "json-better", [], "ok"),
    ("fail-accuracy-drop", "json-variants", "json-worse", [], "FAIL accuracy-drop"),
    ("pass-drop-tolerated", "json-variants", "json-worse", ["--max-drop", "0.5"], "ok"),
    ("fail-errors", "faults-clean", "faults", [], "FAIL error-rate, format-valid, accuracy-drop"),
    ("fail-incomplete", "json-variants", "json-killed", [], "FAIL incomplete (+ subset)"),
    ("fail-missing-variant", "json-variants", "json-skipped", [], "FAIL missing-variant"),
    ("pass-missing-allowed", "json-variants", "json-skipped", ["--allow-missing-variant", "fine_tuned"], "ok"),
    ("fail-subset", "json-variants", "json-limit-20", [], "FAIL subset"),
    ("pass-subset-allowed", "json-variants", "json-limit-20", ["--allow-subset", "--variant", "rag"], "ok"),
    ("repeats", "json-variants", "json-repeats", ["--show", "3"], "repeats 1 vs 3"),
    ("pass-merged", "json-variants", "json-merged", [], "ok"),
    ("fail-shard", "json-merged", "json-shard-2", [], "FAIL subset"),
    ("batch", "json-variants", "json-batch", ["--variant", "baseline"], "errors in the batch run"),
    ("fail-unknown-scores", "free-text", "free-text-flaky", [], "FAIL unknown-scores"),
    ("fail-scoring-changed", "free-text", "free-text-judge2", [], "FAIL scoring-changed"),
    ("pass-scoring-allowed", "free-text", "free-text-judge2", ["--allow-scoring-change"], "ok with a warning"),
    ("error-evalset", "json-variants", "free-text", [], "error: eval sets differ (exit 2)"),
    ("error-variant", "json-variants", "json-better", ["--variant", "nope"], "error: no such variant (exit 2)"),
]


def make(out: Path) -> dict[str, Any]:
    m = Maker(out)
    tickets = tickets_evalset(m.inputs)
    t0 = time.monotonic()
    json_runs(m, tickets)
    priced_runs(m, tickets)
    fault_runs(m)
    free_text_runs(m)
    pairs = [{"name": n, "accepted": a, "candidate": c, "args": args, "expect": expect}
             for n, a, c, args, expect in PAIRS]
    (out / "pairs.json").write_text(json.dumps(pairs, indent=2) + "\n")
    info = {"seconds": round(time.monotonic() - t0, 1), "steps": m.log}
    (m.inputs / "make.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
