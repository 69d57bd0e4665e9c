"""Statistics, the regression gate and the report on whichever score task.yaml makes `primary:` — a graded
0..1 score (sign-flip test) or a pass/fail one (McNemar)."""

import json

import pandas as pd
import pytest
import yaml

from harness.analysis import stats
from harness.analysis.compare import compare_runs
from harness.cli import main
from harness.records import Record
from harness.report.gate_text import format_text, metric_reason
from tests.analysis.test_compare import LABELS, do_run, item_number
from tests.conftest import TASK, make_config, write_jsonl
from tests.fakes.openai_server import FakeOpenAIServer, Reply


def reason(m):
    """A gated metric's reason, as `harness compare` words it at the default tolerance and alpha."""
    return metric_reason(m, 0.02, 0.05)


def rec(variant: str, item: str, primary, repeat: int = 0) -> Record:
    return Record(item_id=item, variant=variant, model="m", model_id="m", repeat=repeat, request={},
                  raw_text="x", scores={"format_valid": True, "correct": primary == 1.0, "primary": primary})


def test_graded_primary_uses_the_sign_flip_test():
    records = [rec("a", f"i{i}", 1.0) for i in range(10)] + [rec("b", f"i{i}", 0.5) for i in range(10)]
    items = stats.item_outcomes(stats.outcomes_frame(records))
    pr = stats.paired_compare(items.loc["a"], items.loc["b"])
    assert pr.test == "sign-flip" and pr.n == 10
    assert (pr.baseline, pr.candidate, pr.diff) == (1.0, 0.5, -0.5)
    assert (pr.lo, pr.hi) == (-0.5, -0.5)  # every item dropped by exactly 0.5
    # exact: of the 2^10 sign patterns only all-minus and all-plus reach |sum| = 5
    assert pr.p_value == pytest.approx(2 / 1024) and not pr.p_bound and pr.resamples == 0
    assert (pr.right_to_wrong, pr.wrong_to_right) == (10, 0)  # items that scored lower / higher


def test_pass_fail_named_primary_uses_mcnemar_and_unknowns_are_left_out():
    records = [rec("a", f"i{i}", 1.0) for i in range(12)]
    records += [rec("b", f"i{i}", 1.0 if i < 4 else 0.0) for i in range(10)]
    records += [rec("b", "i10", None), rec("b", "i11", None)]  # a judge that failed
    items = stats.item_outcomes(stats.outcomes_frame(records))
    pr = stats.paired_compare(items.loc["a"], items.loc["b"])
    assert pr.test == "mcnemar" and pr.n == 10 and pr.unknown == 2
    assert (pr.right_to_wrong, pr.wrong_to_right) == (6, 0)
    assert pr.p_value == pytest.approx(2 / 2 ** 6)  # exact McNemar: 2 * P(Bin(6, 1/2) <= 0)


def test_repeats_of_a_graded_score_disagree_when_they_differ():
    records = [rec("a", "i1", 0.5, 0), rec("a", "i1", 0.5, 1), rec("a", "i2", 0.25, 0), rec("a", "i2", 0.75, 1)]
    items = stats.item_outcomes(stats.outcomes_frame(records)).loc["a"]
    assert list(items["disagree"]) == [False, True]
    assert list(items["correct_rate"]) == [0.5, 0.5]


# -- the gate and the report on real runs ------------------------------------------------------------------------

def graded_evalset(tmp_path, scoring, primary, n=30):
    d = tmp_path / "evalsets" / "graded"
    d.mkdir(parents=True)
    (d / "task.yaml").write_text(yaml.safe_dump({**TASK, "scoring": scoring, "primary": primary}, sort_keys=False))
    write_jsonl(d / "test.jsonl", [
        {"id": f"q{i:03d}", "input": {"text": f"message number {i} please"},
         "expected": {"intent": LABELS[i % 3], "urgent": i % 2 == 0}} for i in range(n)])
    return d


def script(wrong_urgent: set[int] = frozenset(), wrong_intent: set[int] = frozenset()):
    def handler(body):
        i = item_number(body)
        intent = LABELS[(i + 1) % 3] if i in wrong_intent else LABELS[i % 3]
        urgent = (i % 2 == 0) != (i in wrong_urgent)
        return Reply(text=json.dumps({"intent": intent, "urgent": urgent}), prompt_tokens=100, completion_tokens=10)
    return handler


def runs(tmp_path, ev, base, cand):
    out = []
    for name, handler in (("accepted", base), ("candidate", cand)):
        with FakeOpenAIServer(handler, models=["gpt-4o-mini"]) as srv:
            out.append(do_run(make_config(tmp_path, ev, srv.base_url), tmp_path, name))
    return out


def test_gate_and_report_on_a_graded_primary(tmp_path):
    ev = graded_evalset(tmp_path, [{"name": "credit", "scorer": "partial"}], "credit")
    a, b = runs(tmp_path, ev, script(), script(wrong_urgent=set(range(20))))
    row = pd.read_csv(b.run_dir / "summary.csv").iloc[0]
    assert row["accuracy"] == pytest.approx((10 + 20 * 0.5) / 30) and row["score_credit"] == row["accuracy"]
    assert row["accuracy_exact"] == pytest.approx(10 / 30)
    result = compare_runs(a.run_dir, b.run_dir)
    acc = result.comparisons[0].metrics[0]
    assert result.failed and acc.failed and result.primary == "credit"
    assert acc.diff == pytest.approx(-20 * 0.5 / 30) and "sign-flip p=1.91e-06 < 0.05" in reason(acc)
    text = format_text(result)
    assert "accuracy (primary score 'credit')" in text and "scored lower (20):" in text
    assert "score 1.00 -> 0.50" in text
    assert main(["compare", str(a.run_dir), str(b.run_dir)]) == 1
    report = (b.run_dir / "report.md").read_text()
    assert "accuracy = credit (95% CI)" in report and "- **credit** (per-field partial credit) — primary" in report


def test_gate_tolerates_a_small_graded_drop(tmp_path):
    ev = graded_evalset(tmp_path, [{"name": "credit", "scorer": "partial"}], "credit")
    a, b = runs(tmp_path, ev, script(), script(wrong_urgent={3}))
    result = compare_runs(a.run_dir, b.run_dir)
    assert not result.failed  # a drop of 0.5/30 = 1.7 pp is inside the 2 pp tolerance
    assert "within the" in reason(result.comparisons[0].metrics[0])


def test_gate_on_a_pass_fail_named_primary_uses_mcnemar(tmp_path):
    ev = graded_evalset(tmp_path, [{"name": "intent_ok", "scorer": "exact", "field": "intent"}], "intent_ok")
    # the urgent flag is wrong everywhere in the candidate: exact match collapses, the primary does not care
    a, b = runs(tmp_path, ev, script(), script(wrong_urgent=set(range(30)), wrong_intent=set(range(10))))
    acc = compare_runs(a.run_dir, b.run_dir).comparisons[0].metrics[0]
    assert acc.diff == pytest.approx(-10 / 30) and acc.failed
    assert acc.p_value == pytest.approx(2 / 2 ** 10) and "McNemar p=" in reason(acc)
    row = pd.read_csv(b.run_dir / "summary.csv").iloc[0]
    assert row["accuracy"] == pytest.approx(20 / 30) and row["accuracy_exact"] == 0.0


def test_gate_passes_four_of_fifty_items_dropping_by_half(tmp_path):
    """4 of 50 items scoring 0.5 lower: a 4 pp drop that is noise (exact sign-flip p = 2/16 = 0.125); the
    percentile bootstrap called it significant (p = 0.044) and failed the gate."""
    ev = graded_evalset(tmp_path, [{"name": "credit", "scorer": "partial"}], "credit", n=50)
    a, b = runs(tmp_path, ev, script(), script(wrong_urgent={0, 1, 2, 3}))
    result = compare_runs(a.run_dir, b.run_dir)
    acc = result.comparisons[0].metrics[0]
    assert acc.diff == pytest.approx(-0.04) and acc.p_value == pytest.approx(0.125)
    assert not result.failed and "not significantly (sign-flip p=0.125 >= 0.05)" in reason(acc)
