"""Sequential stop (`run.stop_when`, issue 22 point 2): the anytime-valid test's error rate and saving by
simulation, the monitor's seeded order, and a settled run end to end against the loopback server."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from harness.cli import main
from harness.config import load_config
from harness.errors import ConfigError
from harness.records import Record
from harness.rundir.folder import RunFolder, latest_records
from harness.runner.sequential import Monitor, difference_bounds, first_verdicts, seeded_order, verdict_of
from tests.conftest import TASK, make_config, write_jsonl
from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text

ALPHA = 0.05
Z = {0.05: 1.959964, 0.8: 0.841621}  # normal quantiles: two-sided alpha 0.05, power 0.8


def paired_runs(rng: np.random.Generator, runs: int, n: int, discordance: float, delta: float) -> np.ndarray:
    """Per item d = B - A for pass/fail scores: +1 with probability (disc + delta)/2, -1 with (disc - delta)/2."""
    up, down = (discordance + delta) / 2, (discordance - delta) / 2
    u = rng.random((runs, n))
    return np.where(u < up, 1.0, np.where(u < up + down, -1.0, 0.0))


def mcnemar_fixed_n(discordance: float, delta: float, alpha: float = ALPHA, power: float = 0.8) -> int:
    """The fixed-n plan for McNemar's test (Connor 1987): items needed to detect delta at this power."""
    za, zb = Z[alpha], Z[power]
    return math.ceil((za * math.sqrt(discordance) + zb * math.sqrt(discordance - delta ** 2)) ** 2 / delta ** 2)


def test_no_true_difference_gives_a_wrong_verdict_at_most_alpha_of_the_time() -> None:
    rng = np.random.default_rng(2026)
    for discordance in (0.1, 0.3):
        d = paired_runs(rng, 2000, 800, discordance, 0.0)
        settled_at, verdict = first_verdicts(d, ALPHA, margin=0.05)
        wrong = np.isin(verdict, (0, 1)).mean()  # "better" or "worse" when there is no difference
        assert wrong <= ALPHA, (discordance, wrong)
        # A fixed-n test looked at after every item is not valid under monitoring: it errs far more often
        n = np.arange(1, 801)
        s = np.cumsum(d, axis=1)
        discordant = np.maximum(np.cumsum(d != 0, axis=1), 1)
        naive_wrong = (np.abs(s) / np.sqrt(discordant) > Z[ALPHA])[:, 9:].any(axis=1).mean()
        assert naive_wrong > 3 * ALPHA, naive_wrong
        assert len(n) == d.shape[1]


def test_runs_that_stop_use_fewer_items_than_the_fixed_n_plan() -> None:
    """The plan asks for enough items to detect 5 pp; when the true difference is 10 pp the sequential run
    settles, on the right side, well before that many items."""
    rng = np.random.default_rng(7)
    discordance, planned_for, true_delta = 0.3, 0.05, 0.10
    fixed_n = mcnemar_fixed_n(discordance, planned_for)
    d = paired_runs(rng, 2000, fixed_n, discordance, true_delta)
    settled_at, verdict = first_verdicts(d, ALPHA, margin=0.02)
    stopped = settled_at > 0
    assert stopped.mean() > 0.9
    assert (verdict[stopped] == 0).mean() > 0.99  # better, as it truly is
    mean_used = settled_at[stopped].mean()
    saving = 1 - mean_used / fixed_n
    assert mean_used < fixed_n and saving > 0.4, (fixed_n, mean_used)
    print(f"fixed-n plan {fixed_n} items; settled runs used {mean_used:.0f} on average ({saving:.0%} fewer)")


def test_interval_holds_the_true_mean_at_every_look() -> None:
    rng = np.random.default_rng(3)
    d = paired_runs(rng, 1000, 400, 0.4, 0.1)
    lo, hi = difference_bounds(d, ALPHA)
    missed = ((lo > 0.1) | (hi < 0.1)).any(axis=1).mean()
    assert missed <= ALPHA
    assert np.all(np.diff(lo, axis=1) >= 0) and np.all(np.diff(hi, axis=1) <= 0)  # running intersection
    assert verdict_of(0.01, 0.2, 0.05) == "better" and verdict_of(-0.2, -0.01, 0.05) == "worse"
    assert verdict_of(-0.04, 0.04, 0.05) == "equivalent" and verdict_of(-0.1, 0.04, 0.05) is None


def _rec(item: str, variant: str, primary: float | None, error: str | None = None) -> Record:
    return Record(item_id=item, variant=variant, model="m", model_id="m", request={}, primary=primary,
                  error=error)


def test_monitor_counts_items_in_the_seeded_order_not_the_order_calls_finish() -> None:
    order = [f"i{k}" for k in range(30)]
    mon = Monitor("a", "b", margin=0.05, alpha=ALPHA, order=order)
    for item in order[1:]:  # everything but the first item: nothing can count yet
        mon.observe(_rec(item, "a", 0.0))
        mon.observe(_rec(item, "b", 1.0))
    assert mon.lower is None and not mon.settled
    mon.observe(_rec("i0", "a", 0.0))
    mon.observe(_rec("i0", "b", None, error="timeout"))  # an error scores 0, as in the tables
    assert mon.settled and mon.verdict == "better"
    assert mon.settled_after is not None and 1 < mon.settled_after <= 30
    assert not mon.wants("i99") and mon.wants("i3")
    assert seeded_order([_item(k) for k in range(10)], 5) == seeded_order([_item(k) for k in range(10)], 5)
    assert [i.id for i in seeded_order([_item(k) for k in range(10)], 5)] != [f"x{k}" for k in range(10)]


def test_items_whose_score_cannot_be_told_are_left_out_not_counted_as_wrong() -> None:
    order = [f"i{k}" for k in range(40)]
    mon = Monitor("a", "b", margin=0.05, alpha=ALPHA, order=order)
    for k, item in enumerate(order):
        unlabelled = k % 2 == 1  # no expected answer: both variants' primary scores are unknown
        mon.observe(_rec(item, "a", None if unlabelled else 1.0))
        mon.observe(_rec(item, "b", None if unlabelled else 1.0))
    assert len(mon._diffs) == 20 and mon.unscored == 20  # with 0 for the unknowns, b would tie a all the same
    mon2 = Monitor("a", "b", margin=0.05, alpha=ALPHA, order=order)
    for item in order:  # b answers but its score cannot be told; a is right: not "a better"
        mon2.observe(_rec(item, "a", 1.0))
        mon2.observe(_rec(item, "b", None))
    assert not mon2.settled and mon2.unscored == 40


def _item(k: int) -> Any:
    from harness.records import EvalItem

    return EvalItem(id=f"x{k}", input={"text": str(k)})


N_ITEMS = 120


def _answers(body: dict[str, Any]) -> Reply:
    """The few-shot variant is right on every item; the baseline is right on one item in four."""
    text = last_user_text(body)
    i = int(re.search(r"ticket (\d+)", text.rsplit("---", 1)[-1]).group(1))  # type: ignore[union-attr]
    few_shot = any(m["role"] == "assistant" for m in body["messages"])
    right = few_shot or i % 4 == 0
    label = "refund" if right else "lost_card"
    return Reply(text=json.dumps({"intent": label, "urgent": False}), prompt_tokens=50, completion_tokens=8)


@pytest.fixture
def tickets(tmp_path: Path) -> Path:
    d = tmp_path / "evalsets" / "tickets"
    d.mkdir(parents=True)
    (d / "task.yaml").write_text(yaml.safe_dump(TASK, sort_keys=False))
    write_jsonl(d / "test.jsonl", [{"id": f"ticket-{i:03d}", "input": {"text": f"ticket {i}: money back"},
                                    "expected": {"intent": "refund", "urgent": False}} for i in range(N_ITEMS)])
    write_jsonl(d / "train.jsonl", [{"id": f"train-{i}", "input": {"text": f"example {i}"},
                                     "expected": {"intent": "refund", "urgent": False}} for i in range(6)])
    return d


def _config(tmp_path: Path, evalset: Path, url: str, selection: str = "first", **run: Any) -> Path:
    variants = [{"name": "baseline", "kind": "baseline", "model": "small"},
                {"name": "few_shot", "kind": "few_shot", "model": "small", "shots": 2, "selection": selection}]
    path = make_config(tmp_path, evalset, url, variants)
    cfg = yaml.safe_load(path.read_text())
    cfg["run"].update(run)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.mark.parametrize("selection", ["first", "similar"])  # similar: prompts from the prompt stream
def test_a_settled_run_stops_early_and_resume_asks_the_rest(tmp_path: Path, tickets: Path, selection: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    stop = {"compare": ["baseline", "few_shot"], "margin": 0.05}
    with FakeOpenAIServer(_answers, models=["gpt-4o-mini"]) as server:
        cfg = _config(tmp_path, tickets, server.base_url, selection, stop_when=stop, concurrency=2)
        out = tmp_path / "run"
        assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
        printed = capsys.readouterr().out
        folder = RunFolder.open(out)
        m = folder.manifest
        assert m.status == "settled" and m.sequential is not None
        seq = m.sequential
        assert seq.verdict == "better" and seq.of_items == N_ITEMS
        assert seq.settled_after <= seq.asked_items < N_ITEMS
        assert re.search(rf"stopped: settled after {seq.settled_after} of {N_ITEMS} items \(few_shot better than "
                         r"baseline", printed)
        records = latest_records(folder.records())
        asked = {r.item_id for r in records}
        assert len(asked) == seq.asked_items and all(r.error is None for r in records)
        for variant in ("baseline", "few_shot"):  # every asked item has both variants' records
            assert {r.item_id for r in records if r.variant == variant} == asked
        summary = pd.read_csv(out / "summary.csv").set_index("variant")
        assert list(summary["status"]) == ["ok", "ok"]  # the items not asked are not a fault
        assert int(summary.loc["few_shot", "n"]) == seq.asked_items
        report = (out / "report.md").read_text()
        assert "stopped: settled after" in report and "items after the verdict were not asked" in report

        assert main(["run", "--resume", str(out), "--no-progress"]) == 0
        again = RunFolder.open(out)
        assert again.manifest.status == "completed" and again.manifest.sequential.continued
        assert len({r.item_id for r in latest_records(again.records())}) == N_ITEMS
        assert "then continued to every item" in (out / "report.md").read_text()


def test_no_difference_on_a_small_set_is_not_settled_and_runs_every_item(tmp_path: Path, tickets: Path) -> None:
    stop = {"compare": ["few_shot", "baseline"], "margin": 0.01}
    with FakeOpenAIServer(lambda b: Reply(text='{"intent": "refund", "urgent": false}'),
                          models=["gpt-4o-mini"]) as server:
        cfg = _config(tmp_path, tickets, server.base_url, stop_when=stop, limit=20)
        out = tmp_path / "run"
        assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
        m = RunFolder.open(out).manifest
        assert m.status == "completed" and m.sequential.verdict is None and m.sequential.asked_items == 20
        assert "not settled after 20 of 20 items" in (out / "report.md").read_text()


@pytest.mark.parametrize(("run", "message"), [
    ({"stop_when": {"compare": ["baseline", "nope"]}}, "run.stop_when.compare[1]: unknown variant 'nope'"),
    ({"stop_when": {"compare": ["baseline", "baseline"]}}, "name two different variants"),
    ({"mode": "batch", "stop_when": {"compare": ["baseline", "few_shot"]}}, "cannot stop early"),
])
def test_stop_when_config_errors(tmp_path: Path, tickets: Path, run: dict[str, Any], message: str) -> None:
    cfg = _config(tmp_path, tickets, "http://127.0.0.1:9/v1", **run)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(cfg)


def test_a_saved_plan_in_the_report_of_a_settled_run_counts_the_items_asked(
        tmp_path: Path, tickets: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The plan section compares the plan with the items the settled run asked (not the items selected), says
    it stopped by design, and is in report.html as in report.md."""
    stop = {"compare": ["baseline", "few_shot"], "margin": 0.05}
    with FakeOpenAIServer(_answers, models=["gpt-4o-mini"]) as server:
        cfg = _config(tmp_path, tickets, server.base_url, stop_when=stop, concurrency=2)
        out = tmp_path / "run"
        assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert main(["plan", str(cfg), "--detect", "5pp", "--save", str(out / "plan.json")]) == 0
    assert main(["report", str(out)]) == 0
    capsys.readouterr()
    seq = RunFolder.open(out).manifest.sequential
    needed = json.loads((out / "plan.json").read_text())["items_needed"]
    assert seq.holds_selection and seq.asked_items < N_ITEMS < needed
    line = (f"- this run asked {seq.asked_items} of {N_ITEMS} items: it stopped by design once run.stop_when "
            f"settled (few_shot better vs baseline after {seq.settled_after} items); fewer than the {needed:,} the "
            "plan sizes a fixed-size run at")
    md = (out / "report.md").read_text()
    assert "## Plan" in md and line in md and f"this run asked {N_ITEMS} items" not in md
    page = (out / "report.html").read_text()
    assert '<h2 id="plan">Plan</h2>' in page and f"<li>{line.removeprefix('- ')}" in page
    assert f"<li>few_shot vs baseline: {needed:,} items (" in page
