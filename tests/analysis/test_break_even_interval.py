"""The break-even's 95% interval (paired item bootstrap) against a hand computation, a case where it includes
"never pays back", the monthly projection's interval, and the break-even capped by the months a fine-tune serves."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness.analysis.break_even_interval import break_even_interval, cost_intervals
from harness.analysis.economics import Payback, TrainingEstimate, break_even
from harness.cli import main
from harness.records import Record, Usage
from harness.report.decision import break_even_text
from harness.report.service_text import interval_sentence
from tests.analysis.test_economics import decision_run


def _rec(variant, item, cost, correct=True):
    return Record(item_id=item, variant=variant, model="m", model_id="m", request={}, raw_text="{}",
                  usage=Usage(prompt_tokens=10), latency_s=0.1, scores={"correct": correct, "format_valid": True},
                  cost_usd=cost)


def _case(fs_costs, ft_costs=(0.001, 0.001), per_request=None):
    records = [_rec("fs", f"i{k}", c) for k, c in enumerate(fs_costs)]
    records += [_rec("ft", f"i{k}", c) for k, c in enumerate(ft_costs)]
    fs, ft = per_request or (sum(fs_costs) / 2, sum(ft_costs) / 2)
    df = pd.DataFrame([
        {"variant": "fs", "kind": "few_shot", "status": "ok", "answered": 2, "accuracy": 1.0,
         "cost_per_request_usd": fs},
        {"variant": "ft", "kind": "fine_tuned", "status": "ok", "answered": 2, "accuracy": 1.0,
         "cost_per_request_usd": ft}])
    return records, df


def test_interval_matches_a_hand_computation():
    """Two items, the reference saving $0.002 on one and $0.004 on the other. A resample of two items has mean
    saving 0.002 (both the first, probability 1/4), 0.003 (1/2) or 0.004 (1/4); each end holds more than 2.5%
    of the resamples, so the 95% interval is exactly $40 / 0.004 to $40 / 0.002 requests."""
    records, df = _case((0.003, 0.005))
    training = TrainingEstimate(cost_usd=40.0)
    be = break_even(df, "ft", training, 5000)
    assert be.case is Payback.PAYS_BACK and be.requests == pytest.approx(40 / 0.003)
    iv = break_even_interval(records, df, "ft", ["fs"], 40.0, 5000)
    assert iv.requests_lo == pytest.approx(10_000) and iv.requests_hi == pytest.approx(20_000)
    assert iv.months_lo == pytest.approx(2.0) and iv.months_hi == pytest.approx(4.0)
    assert not iv.includes_never and iv.never_share == 0 and iv.no_reference_share == 0
    be.interval = iv
    assert break_even_text(be, training, 5000).endswith(
        "The break-even's 95% interval (from 2,000 resamples of the test items, seed 0) is 10,000 to 20,000 "
        "requests (2.0 to 4.0 months).")


def test_interval_that_includes_never_pays_back():
    """The reference is dearer on one item and cheaper on the other: the point estimate pays back, but a
    resample of only the second item (a quarter of them) does not, so the interval runs to never."""
    records, df = _case((0.005, 0.0005))
    training = TrainingEstimate(cost_usd=40.0)
    be = break_even(df, "ft", training, None)
    assert be.case is Payback.PAYS_BACK and be.requests == pytest.approx(40 / 0.00175)
    be.interval = iv = break_even_interval(records, df, "ft", ["fs"], 40.0, None)
    assert iv.requests_lo == pytest.approx(10_000) and math.isinf(iv.requests_hi) and iv.includes_never
    assert iv.never_share == pytest.approx(0.25, abs=0.03) and iv.months_lo is None
    text = break_even_text(be, training, None)
    assert "is 10,000 requests to never: it" in text and 'it includes "never pays back"' in text
    assert "% of resamples the fine-tune was not cheaper per request than the reference" in text


def test_a_less_accurate_resample_has_no_reference_and_is_counted():
    records, df = _case((0.003, 0.005))
    records = [r if not (r.variant == "fs" and r.item_id == "i1") else _rec("fs", "i1", 0.005, correct=False)
               for r in records]
    iv = break_even_interval(records, df, "ft", ["fs"], 40.0, None)
    # fs is as accurate as ft only in resamples without its wrong item (both draws the first: a quarter)
    assert iv.no_reference_share == pytest.approx(0.75, abs=0.03)
    assert iv.requests_lo == iv.requests_hi == pytest.approx(20_000)


def test_monthly_projection_interval():
    records, df = _case((0.003, 0.005))
    out = cost_intervals(records, df)
    assert out["fs"] == (pytest.approx(0.003), pytest.approx(0.005)) and out["ft"] == (0.001, 0.001)


def test_break_even_counts_only_the_months_a_fine_tune_serves(tmp_path, capsys):
    res, _ = decision_run(tmp_path, monthly_requests=4)  # break-even ~39 requests: ~10 months
    # ft is a fine-tune of gpt-4o-mini-2024-07-18, which retires on 2027-01-14
    assert main(["report", str(res.run_dir), "--today", "2026-12-05"]) == 0
    summary = (res.run_dir / "report.md").read_text().split("## Decision summary")[1].split("## Results")[0]
    assert ("ft (ft:gpt-4o-mini-2024-07-18:acme::abc123) serves until 2027-01-14: 1 month left as of 2026-12-05 "
            "(its base model retires then; `harness prices` names the source); new fine-tuning jobs can be created "
            "until 2027-01-06 (already closed since 2026-05-07 for organisations that had never fine-tuned; since "
            "2026-07-02 for organisations without inference on a fine-tuned model in the past 60 days).") in summary
    assert "would pay back after" in summary and ", but ft retires before it pays back: needs " in summary
    assert "months, has 1 month." in summary
    report = (res.run_dir / "report.md").read_text()
    assert "| months it can still serve | 1.3 |" in report
    assert "| break-even 95% interval |" in report and "<th>break-even 95% interval</th>" in (
        res.run_dir / "report.html").read_text()
    assert main(["report", str(res.run_dir), "--today", "2027-01-10"]) == 0
    summary = (res.run_dir / "report.md").read_text().split("## Decision summary")[1].split("## Results")[0]
    assert ("serves until 2027-01-14: 4 days left as of 2027-01-10 (its base model retires then; `harness prices` "
            "names the source); new fine-tuning jobs closed since 2027-01-06, so it cannot be retrained.") in summary
    assert main(["report", str(res.run_dir), "--today", "2027-02-01"]) == 0
    summary = (res.run_dir / "report.md").read_text().split("## Decision summary")[1].split("## Results")[0]
    assert "stopped serving on 2027-01-14, when its base model gpt-4o-mini-2024-07-18 retired" in summary
    assert "needs " in summary and "has none." in summary
    # on the suite's day the fine-tune has years left: it pays back as before
    assert main(["report", str(res.run_dir)]) == 0
    summary = (res.run_dir / "report.md").read_text().split("## Decision summary")[1].split("## Results")[0]
    assert "retires before it pays back" not in summary and "serves until 2027-01-14: 14 months left" in summary


def test_self_hosted_variants_keep_their_cost_per_request():
    """Self-hosted variants have no per-call cost (they are costed from busy time): each keeps its cost per
    request in every resample. The demo's four variants are all self-hosted; this raised "assignment destination
    is read-only" on pandas' copy-on-write arrays."""
    records, df = _case((None, None), (None, None), per_request=(0.003, 0.001))
    iv = break_even_interval(records, df, "ft", ["fs"], 40.0, 5000)
    assert iv.requests_lo == pytest.approx(20_000) and iv.requests_hi == pytest.approx(20_000)
    assert iv.fixed_cost == ("ft", "fs")
    text = interval_sentence(iv)
    assert "is 20,000 requests in every resample (4.0 months)." in text
    assert text.endswith("ft, fs have no per-call cost (self-hosted, costed from busy time), so their costs per "
                         "request are held at the measured value.")
