"""The gate in words (harness.report.gate_text) from the numbers and facts harness.analysis.compare returns:
every rule has its text, every verdict its reason, every failure its message, and the API's GateReport gives
what `harness compare --json` prints."""

from __future__ import annotations

import json

import pytest

from harness.analysis.compare import (
    RULES,
    CompareResult,
    Failure,
    Incomplete,
    MetricDelta,
    ScoringChanged,
    Subset,
    VariantComparison,
    Verdict,
)
from harness.analysis.gate_runs import MissingVariant
from harness.report.gate_text import (
    RULE_TEXT,
    GateReport,
    failure_message,
    format_text,
    gate_dict,
    metric_reason,
    warning_text,
)


def metric(verdict: Verdict, worse: float | None = 0.05, **kw) -> MetricDelta:
    return MetricDelta("accuracy", 30, 0.9, 0.85, -0.05, -0.1, 0.0, 0.01, gated=True, rule="accuracy-drop",
                       verdict=verdict, worse=worse, test="McNemar", **kw)


def test_every_rule_has_its_text():
    assert tuple(RULE_TEXT) == RULES


@pytest.mark.parametrize("m, reason", [
    (metric(Verdict.SIGNIFICANT_DROP), "dropped 5.0 pp (more than 2.0 pp) and the drop is significant (McNemar "
                                       "p=0.01 < 0.05)"),
    (metric(Verdict.INSIGNIFICANT_DROP, p_bound=True, resamples=20000),
     "dropped 5.0 pp but not significantly (McNemar p < 1/20000 >= 0.05)"),
    (metric(Verdict.WITHIN_TOLERANCE, 0.01), "dropped 1.0 pp, within the 2.0 pp tolerance"),
    (metric(Verdict.BEYOND_TOLERANCE, 0.1, higher_is_worse=True), "rose 10.0 pp, more than the 2.0 pp tolerance"),
    (metric(Verdict.NO_DROP, None), "no drop"),
    (metric(Verdict.NO_WORSE, -0.1), "no worse"),
    (metric(Verdict.UNCOMPARED, None), ""),
    (metric(Verdict.NOTHING_PAIRED, None), "no item is in both runs: nothing was compared"),
    (metric(Verdict.NO_KNOWN_PAIR, None), "no item has a known primary score on both sides: accuracy cannot be "
                                          "compared"),
])
def test_metric_reasons(m, reason):
    assert metric_reason(m, 0.02, 0.05) == reason


def result(**kw) -> CompareResult:
    return CompareResult("a", "b", "h1", "h1", True, 0.02, 0.05, 0, 0, **kw)


def test_failure_messages_and_warnings():
    res = result()
    assert failure_message(Failure("incomplete", Incomplete("interrupted", None, "runs/b")), res) == (
        "the candidate run is not complete (status interrupted: it did not finish); finish it with "
        "`harness run --resume runs/b` and compare again")
    subset = Subset(2, 5, ["i3", "i4", "i5"], "it ran --limit 2")
    assert failure_message(Failure("subset", subset, "ft"), res) == (
        "the candidate asked 2 of the accepted run's 5 items (3 missing, e.g. i3, i4, i5); it ran --limit 2; compare a "
        "candidate that asked every item, or pass --allow-subset to compare the items both asked")
    gone = MissingVariant("ft", "skipped: no model file", False)
    assert failure_message(Failure("missing-variant", gone, "ft"), res).startswith(
        "variant ft has records in the accepted run but none in the candidate (skipped: no model file); fix")
    assert warning_text(MissingVariant("ft", "no records", True)).endswith("; allowed by --allow-missing-variant")
    changed = ScoringChanged(["judge model a -> b"])
    assert "scored differently (judge model a -> b), so" in failure_message(Failure("scoring-changed", changed), res)
    assert warning_text(ScoringChanged(["primary exact -> x"], allowed=True)).startswith(
        "the runs were scored differently (primary exact -> x); allowed by --allow-scoring-change")
    m = metric(Verdict.SIGNIFICANT_DROP, failed=True)
    assert failure_message(Failure("accuracy-drop", m, "ft"), res).startswith("accuracy dropped 5.0 pp (more than")


def test_gate_report_is_what_json_prints():
    m = metric(Verdict.SIGNIFICANT_DROP, failed=True)
    c = VariantComparison("ft", "ft", "m1", "m2", 30, 30, 0, 0, 1, 1, 0, 30, 0, 30, 0, 0, [m], [], [],
                          failures=[Failure("accuracy-drop", m, "ft")])
    res = result(comparisons=[c], warnings=[MissingVariant("base", "no records", True)])
    report = GateReport.of(res)
    assert isinstance(report, CompareResult) and report.to_dict() == gate_dict(res)
    d = json.loads(report.to_json())
    assert list(d["comparisons"][0]["metrics"][0]) == [
        "metric", "n", "accepted", "candidate", "diff", "lo", "hi", "p_value", "gated", "rule", "failed", "reason",
        "test", "p_bound", "p_adjusted", "comparisons"]
    assert d["failures"] == [{"rule": "accuracy-drop", "message": report.message(res.failures[0]), "variant": "ft"}]
    assert d["warnings"] == [warning_text(res.warnings[0])] and d["rules_fired"] == ["accuracy-drop"]
    assert d["exit_code"] == 1 and report.text() == format_text(res)
    assert report.text().endswith("result: FAIL (accuracy-drop in variant ft)")
