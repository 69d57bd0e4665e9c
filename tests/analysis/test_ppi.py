"""Issue 22.4: the judge-corrected (prediction-powered) accuracy, by hand and through a run, the report and the
gate (`harness compare --metric ppi`)."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from harness.analysis.compare import compare_runs
from harness.analysis.ppi import Labels, ppi_difference, ppi_mean
from harness.api import run
from harness.errors import HarnessError
from harness.runner.runner import RunOptions
from tests.scoring.test_judge import HUMAN_VERDICTS, Server, human_labelled_set, judged_config, judged_set

Z = 1.959963984540054


def test_ppi_mean_by_hand():
    """Judge on 8 answers: mean 0.75, sum of squared deviations 0.3 -> var 0.3/7; labelled: human - judge =
    -0.2, -0.2, 0, -0.2 -> mean -0.15, var 0.03/3 = 0.01.

    estimate = 0.75 - 0.15 = 0.6; var = (0.3/7)/8 + 0.01/4 = 0.0078571...; se = 0.0886405.
    (ppi-python 0.2.3, ppi_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=0.05, lam=1) on these numbers gives
    0.44122477..0.75877523: the same formula with population variances (ddof=0); ours uses ddof=1.)"""
    judge = [0.8, 0.6, 1.0, 0.4, 0.8, 0.6, 1.0, 0.8]
    human, judged = [0.6, 0.4, 0.8, 0.6], [0.8, 0.6, 0.8, 0.8]
    r = ppi_mean(judge, human, judged)
    assert r is not None
    se = math.sqrt(0.3 / 7 / 8 + 0.01 / 4)
    assert r.estimate == pytest.approx(0.6) and r.judge_mean == pytest.approx(0.75)
    assert r.rectifier == pytest.approx(-0.15) and r.se == pytest.approx(se) and se == pytest.approx(0.0886405, abs=1e-7)
    assert (r.lo, r.hi) == pytest.approx((0.6 - Z * se, 0.6 + Z * se))
    assert (r.lo, r.hi) == pytest.approx((0.4262678, 0.7737322), abs=1e-7)
    # the ddof=0 variant of the same formula reproduces ppi-python's interval
    se0 = math.sqrt(np.var(judge) / 8 + np.var(np.subtract(human, judged)) / 4)
    assert (0.6 - Z * se0, 0.6 + Z * se0) == pytest.approx((0.44122477, 0.75877523), abs=1e-8)
    # repeats: the judge term's unit is the item (two records each), not the record
    clustered = ppi_mean(judge, human, judged, clusters=[0, 0, 1, 1, 2, 2, 3, 3])
    sums = np.array([1.4, 1.4, 1.6, 1.8])
    var_judge = 4 / 3 * ((sums - 2 * 0.75) ** 2).sum() / 64
    assert clustered is not None and clustered.se == pytest.approx(math.sqrt(var_judge + 0.01 / 4))
    assert ppi_mean(judge, [0.5], [0.5]) is None  # one label: no variance


def test_ppi_difference_by_hand():
    """Two runs on the same 4 items and the same 3 labelled answers; the candidate's judge is harsher."""
    acc = Labels({("a", "x"): (1.0, 1.0), ("b", "y"): (0.5, 1.0), ("c", "z"): (0.0, 0.0)}, 0)
    cand = Labels({("a", "x"): (1.0, 0.75), ("b", "y"): (0.5, 0.75), ("c", "z"): (0.0, 0.0)}, 0)
    a, c = np.array([1.0, 1.0, 0.5, 0.0]), np.array([0.75, 0.75, 0.5, 0.0])
    d = ppi_difference(a, c, acc, cand)
    assert d is not None
    # judge: per-item change -0.25, -0.25, 0, 0 -> mean -0.125, var (4 * 0.015625)/3 / 4
    # rectifier: per-answer change of (human - judge) +0.25, +0.25, 0 -> mean 1/6, var ((1/12)^2 * 2 + (1/6)^2)/2 / 3
    assert d.judge_diff == pytest.approx(-0.125) and d.rectifier_diff == pytest.approx(1 / 6)
    assert d.diff == pytest.approx(-0.125 + 1 / 6)
    se = math.sqrt(0.0625 / 3 / 4 + ((1 / 12) ** 2 * 2 + (1 / 6) ** 2) / 2 / 3)
    assert d.se == pytest.approx(se) and (d.lo, d.hi) == pytest.approx((d.diff - Z * se, d.diff + Z * se))
    assert d.p_value == pytest.approx(math.erfc(abs(d.diff) / se / math.sqrt(2)))


def _calibration(run_dir):
    return [json.loads(x) for x in (run_dir / "judge_human.jsonl").read_text().splitlines()]


def test_ppi_in_the_summary_report_and_gate(tmp_path):
    ev = human_labelled_set(tmp_path)
    with Server(HUMAN_VERDICTS).fake as fake:
        first = run(judged_config(tmp_path, ev, fake.base_url), RunOptions(results_dir=tmp_path / "a", progress=False))
    row = pd.read_csv(first.run_dir / "summary.csv").iloc[0]
    # labelled (human, judge) on the 1..5 scale: Kyoto (2, 1), Munich (1, 1), Paris (5, 5), Rome (3, 5), tokyo (4, 4)
    # -> on 0..1 human - judge = 0.25, 0, 0, -0.5, 0: mean -0.05
    assert row["ppi_labels"] == 5
    assert row["accuracy_ppi"] == pytest.approx(row["accuracy"] - 0.05)
    report = (first.run_dir / "report.md").read_text()
    assert "judge-corrected (PPI, 95% CI)" in report
    assert "Judge-corrected accuracy (prediction-powered, from 5 human-scored answers" in report
    assert "judge-corrected" in (first.run_dir / "report.html").read_text().lower()

    # a second run whose judge is harsher on the answers it scored 5: the raw judge accuracy drops, the
    # human-scored answers show the same harshness, and the PPI difference corrects for it
    harsh = {k: (4 if v == 5 else v) for k, v in HUMAN_VERDICTS.items()}
    with Server(harsh).fake as fake:
        second = run(judged_config(tmp_path, ev, fake.base_url),
                     RunOptions(results_dir=tmp_path / "b", progress=False, use_cache=False))
    plain = compare_runs(first.run_dir, second.run_dir)
    corrected = compare_runs(first.run_dir, second.run_dir, metric="ppi")
    raw, ppi_md = plain.comparisons[0].metrics[0], corrected.comparisons[0].metrics[0]
    assert raw.metric == "accuracy" and raw.diff < 0
    assert ppi_md.metric == "accuracy_ppi" and ppi_md.test == "PPI z-test" and corrected.metric == "ppi"

    def rect(rows):
        return np.mean([(r["human"] - 1) / 4 - r["judge_score"] for r in rows])

    assert ppi_md.diff == pytest.approx(raw.diff + rect(_calibration(second.run_dir)) - rect(_calibration(first.run_dir)))
    assert abs(ppi_md.diff) < abs(raw.diff)


def test_gate_on_ppi_needs_a_judge_and_labels(tmp_path):
    ev = judged_set(tmp_path)  # a judge-scored primary, but no item carries `human:`
    with Server(HUMAN_VERDICTS).fake as fake:
        a = run(judged_config(tmp_path, ev, fake.base_url), RunOptions(results_dir=tmp_path / "a", progress=False))
    with pytest.raises(HarnessError, match=r"--metric ppi: .*judge_human.jsonl has fewer than 2 human-scored"):
        compare_runs(a.run_dir, a.run_dir, metric="ppi")
    with pytest.raises(HarnessError, match="--metric nope: must be one of accuracy, agreement, ppi"):
        compare_runs(a.run_dir, a.run_dir, metric="nope")
