"""Intervals and paired tests: exact values, determinism, and the repeats aggregation end to end."""

import itertools
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from harness.analysis.stats import (
    item_outcomes,
    mcnemar_exact,
    outcomes_frame,
    paired_bootstrap,
    paired_compare,
    repeat_spread,
    sign_flip_test,
    wilson,
)
from harness.analysis.units import Unit
from harness.api import run
from harness.records import Record, Usage
from harness.report.format import cell, p_value
from harness.runner.runner import RunOptions
from tests.analysis.test_compare import LABELS, item_number, make_evalset
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAIServer, Reply


def test_wilson_known_values():
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 10)[0] == 0.0 and wilson(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson(10, 10)[1] == 1.0 and wilson(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)
    assert wilson(0, 0) is None
    # symmetric
    a, b = wilson(3, 20), wilson(17, 20)
    assert a[0] == pytest.approx(1 - b[1]) and a[1] == pytest.approx(1 - b[0])


def _exact_two_sided(b: int, c: int) -> float:
    n, k = b + c, min(b, c)
    return float(min(Fraction(1), 2 * Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2**n)))


def test_mcnemar_exact_values():
    assert mcnemar_exact(1, 9) == pytest.approx(0.021484375, rel=1e-12)  # 2 * 11/1024
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(4, 5) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    for b, c in [(3, 17), (40, 61), (250, 310)]:
        assert mcnemar_exact(b, c) == pytest.approx(_exact_two_sided(b, c), rel=1e-12)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_mcnemar_log_space_matches_exact_for_large_samples():
    # n > 5000 takes the log-space path
    for b, c in [(2900, 3200), (3000, 3010)]:
        assert mcnemar_exact(b, c) == pytest.approx(_exact_two_sided(b, c), rel=1e-9)


def _brute_sign_flip(d: list[float]) -> float:
    nz = [x for x in d if x != 0]
    obs = abs(sum(nz))
    sums = [sum(s * x for s, x in zip(signs, nz, strict=True)) for signs in itertools.product((1, -1), repeat=len(nz))]
    return sum(abs(t) >= obs - 1e-9 for t in sums) / len(sums)


def test_sign_flip_exact_values():
    # the example: 4 of 50 items drop by 0.5 -> only the all-minus and all-plus patterns reach |-2|
    res = sign_flip_test([-0.5] * 4 + [0.0] * 46)
    assert res.exact and not res.bound and res.p_value == pytest.approx(0.125)
    assert sign_flip_test([0.0, 0.0]).p_value == 1.0 and sign_flip_test([]).p_value == 1.0
    assert sign_flip_test([-1, 1]).p_value == 1.0
    rng = np.random.default_rng(5)
    for _ in range(5):
        d = list(np.round(rng.choice([-1, -2 / 3, -1 / 3, 0, 1 / 3, 0.25], size=12), 6))
        assert sign_flip_test(d).p_value == pytest.approx(_brute_sign_flip(d))
    # on 0/1 values it is the exact McNemar test
    assert sign_flip_test([-1.0] * 7 + [1.0] * 2).p_value == pytest.approx(mcnemar_exact(7, 2))


def test_sign_flip_resamples_are_seeded_and_never_zero():
    d = [-1 / 3] * 30  # 2 of 3 repeats right on each of 30 items: exact p = 2 / 2^30
    res = sign_flip_test(d)
    assert not res.exact and res.resamples == 10_000 and res.bound and res.p_value == 1e-4
    assert p_value(res.p_value, sentence=True, bound=True) == "< 0.0001"
    rng = np.random.default_rng(2)
    d = list(rng.choice([-1, -0.5, 0, 0.5], size=22, p=[0.3, 0.2, 0.2, 0.3]))
    exact = sign_flip_test(d, exact_max=22).p_value
    approx = sign_flip_test(d, exact_max=0, n_resamples=20_000, seed=1)
    assert not approx.exact and approx.p_value == pytest.approx(exact, abs=0.01)
    assert sign_flip_test(d, exact_max=0, seed=1) == sign_flip_test(d, exact_max=0, seed=1)


def test_repeats_are_tested_on_per_item_means_not_majority_votes():
    """Right on 2 of 3 repeats of every item: the majority votes did not change (McNemar p = 1 on them),
    the per-item means dropped from 1 to 2/3 on all 12 items (exact sign-flip p = 2 / 2^12)."""
    recs = [_rec("a", f"i{k}", 0, True) for k in range(12)]
    recs += [_rec("b", f"i{k}", r, r != 1) for k in range(12) for r in range(3)]
    items = item_outcomes(outcomes_frame(recs))
    pr = paired_compare(items.loc["a"], items.loc["b"], "correct")
    assert pr.test == "sign-flip" and pr.diff == pytest.approx(-1 / 3)
    assert pr.p_value == pytest.approx(2 / 2 ** 12) and pr.right_to_wrong == 12


def test_report_cell_names_the_test_unless_mcnemar():
    row = {"accuracy_diff": -0.1, "accuracy_diff_lo": -0.2, "accuracy_diff_hi": 0.0, "accuracy_p": 0.125,
           "accuracy_test": "sign-flip"}
    assert cell(row, "accuracy_diff", Unit.PP) == "-10.0 pp [-20.0, +0.0] p=0.125 (sign-flip)"
    assert cell({**row, "accuracy_test": "mcnemar"}, "accuracy_diff", Unit.PP) == "-10.0 pp [-20.0, +0.0] p=0.125"


def test_paired_bootstrap_deterministic_and_covers_truth():
    base = np.array([1] * 100 + [0] * 100, dtype=float)
    cand = base.copy()
    cand[100:130] = 1  # 30 wrong -> right
    cand[:10] = 0  # 10 right -> wrong
    diff, lo, hi = paired_bootstrap(base, cand, seed=3)
    assert diff == pytest.approx(0.1)
    assert lo < 0.1 < hi
    assert paired_bootstrap(base, cand, seed=3) == (diff, lo, hi)
    assert paired_bootstrap(base, cand, seed=4) != (diff, lo, hi)
    # close to the normal approximation of a paired difference
    se = math.sqrt((0.15 + 0.05 - 0.1**2) / 200)
    assert lo == pytest.approx(0.1 - 1.96 * se, abs=0.012) and hi == pytest.approx(0.1 + 1.96 * se, abs=0.012)
    assert paired_bootstrap([], []) is None
    with pytest.raises(ValueError):
        paired_bootstrap([1, 0], [1])


def test_multinomial_bootstrap_equals_index_resampling():
    """The counts shortcut must give the same interval as resampling item indices."""
    rng = np.random.default_rng(11)
    base = rng.integers(0, 2, 300).astype(float)
    cand = np.where(rng.random(300) < 0.2, 1 - base, base)
    _, lo, hi = paired_bootstrap(base, cand, n_boot=20000, seed=1)
    idx = np.random.default_rng(2).integers(0, 300, (20000, 300))
    means = (cand - base)[idx].mean(axis=1)
    ref_lo, ref_hi = np.percentile(means, [2.5, 97.5])
    assert lo == pytest.approx(ref_lo, abs=0.005) and hi == pytest.approx(ref_hi, abs=0.005)


def _rec(variant, item, repeat, correct, *, error=False, fmt=True):
    return Record(item_id=item, variant=variant, model="m", model_id="m", repeat=repeat, request={},
                  raw_text=None if error else "{}", usage=None if error else Usage(prompt_tokens=10),
                  error="boom" if error else None, error_kind="server_error" if error else None,
                  scores={} if error else {"correct": correct, "format_valid": fmt})


def test_item_outcomes_majority_mean_and_errors():
    recs = [
        _rec("a", "i1", 0, True), _rec("a", "i1", 1, True), _rec("a", "i1", 2, False),  # 2/3 -> right
        _rec("a", "i2", 0, True), _rec("a", "i2", 1, False),  # tie (third errored) -> not right
        _rec("a", "i2", 2, False, error=True),
        _rec("a", "i3", 0, False, error=True), _rec("a", "i3", 1, False, error=True),  # never answered
        _rec("a", "i4", 0, False), _rec("a", "i4", 1, False), _rec("a", "i4", 2, False),
    ]
    frame = outcomes_frame(recs)
    items = item_outcomes(frame)
    a = items.loc["a"]
    assert list(a.index) == ["i1", "i2", "i3", "i4"]  # an item that never got an answer is in, as wrong
    assert a.loc["i1", "correct_rate"] == pytest.approx(2 / 3) and bool(a.loc["i1", "correct"])
    assert a.loc["i2", "correct_rate"] == pytest.approx(1 / 3) and not a.loc["i2", "correct"]
    assert a.loc["i2", "repeats"] == 3
    assert a.loc["i3", "correct_rate"] == 0 and not a.loc["i3", "correct"]
    spread = repeat_spread(frame, items, "a")
    assert spread.repeats == 3 and spread.items == 4
    assert spread.disagreement == pytest.approx(2 / 4)  # i1 and i2 disagree across repeats, i3 and i4 do not
    # per-round accuracy: round0 2/4, round1 1/4, round2 0/3
    assert spread.accuracy_std == pytest.approx(float(np.std([2 / 4, 1 / 4, 0.0], ddof=1)))
    assert spread.accuracy_majority == pytest.approx(1 / 4)


def test_paired_compare_counts_unanswered_items_as_wrong():
    recs = ([_rec("a", f"i{k}", 0, True) for k in range(10)]
            + [_rec("b", f"i{k}", 0, k >= 9) for k in range(9)] + [_rec("b", "i9", 0, False, error=True)])
    items = item_outcomes(outcomes_frame(recs))
    pr = paired_compare(items.loc["a"], items.loc["b"], "correct")
    assert pr.n == 10 and pr.right_to_wrong == 10 and pr.wrong_to_right == 0
    assert pr.diff == pytest.approx(-1.0) and pr.p_value == pytest.approx(2 / 1024)


def test_repeats_aggregated_in_summary(tmp_path):
    """repeats=3 through the real runner: item-level intervals and the spread across repeats in summary.csv."""
    ev = make_evalset(tmp_path, n_test=6)
    calls: dict[int, int] = {}

    def handler(body):
        i = item_number(body)
        calls[i] = calls.get(i, 0) + 1
        intent = LABELS[i % 3]
        if i == 0 and calls[i] == 2:  # item 0: right, wrong, right -> majority right, repeats disagree
            intent = LABELS[1]
        if i == 1:  # item 1 always wrong
            intent = LABELS[0]
        return Reply(text=f'{{"intent": "{intent}", "urgent": {str(i % 2 == 0).lower()}}}', prompt_tokens=10,
                     completion_tokens=5)

    with FakeOpenAIServer(handler, models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, ev, srv.base_url,
                          run={"concurrency": 1, "max_tokens": 64, "repeats": 3, "seed": 1})
        res = run(cfg, RunOptions(results_dir=tmp_path / "results", progress=False, use_cache=False))
    row = pd.read_csv(res.run_dir / "summary.csv").iloc[0]
    assert row["n"] == 18 and row["items"] == 6 and row["repeats"] == 3
    assert row["accuracy"] == pytest.approx(14 / 18)
    assert row["accuracy_majority"] == pytest.approx(5 / 6)
    assert row["repeat_disagreement"] == pytest.approx(1 / 6)
    per_round = [5 / 6, 4 / 6, 5 / 6]
    assert row["accuracy_repeat_std"] == pytest.approx(float(np.std(per_round, ddof=1)))
    # the interval's unit is the item (6 clusters of 3 records), not the record: per-item sums 2, 0, 3, 3, 3, 3;
    # clustered var = 6/5 * sum((S - 3p)^2) / 18^2, Wilson at n_eff = p(1-p)/var with z = t(0.975, 5 df)
    p = 14 / 18
    var = 6 / 5 * sum((s - 3 * p) ** 2 for s in (2, 0, 3, 3, 3, 3)) / 18**2
    n_eff, z = p * (1 - p) / var, 2.5705818366147395
    centre = (p + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
    half = z * math.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff**2)) / (1 + z * z / n_eff)
    assert row["accuracy_lo"] == pytest.approx(centre - half) and row["accuracy_hi"] == pytest.approx(centre + half)
    assert row["accuracy_hi"] - row["accuracy_lo"] > wilson(14, 18)[1] - wilson(14, 18)[0]  # wider than per record
    assert "## Repeats" in (res.run_dir / "report.md").read_text()
