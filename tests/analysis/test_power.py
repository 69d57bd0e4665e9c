"""Sample sizes: at the planned n, the harness's own paired tests detect the difference with the asked power.

Each check simulates 4,000 runs at the planned n (seeded), runs the test stats.py uses on every run and compares
the share with p < alpha with the asked power: the Monte Carlo standard error at 80% is 0.63 pp, so the 3 pp
tolerance fails a plan that is off, not an unlucky seed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.analysis.power import (
    connor_n,
    mcnemar_n,
    mcnemar_power,
    paired_n,
    parse_detect,
    pilot_evidence,
    plan_pair,
)
from harness.analysis.stats import mcnemar_exact, sign_flip_test
from harness.errors import HarnessError

RUNS = 4000


def _mcnemar_detected(n: int, delta: float, psi: float, alpha: float, seed: int) -> float:
    """Share of simulated runs of n paired 0/1 items in which stats.mcnemar_exact gives p < alpha."""
    rng = np.random.default_rng(seed)
    # per item: the baseline right and the candidate wrong (b), the other way round (c), or the same
    probs = [(psi - delta) / 2, (psi + delta) / 2, 1 - psi]
    counts = rng.multinomial(n, probs, size=RUNS)
    pairs, inverse = np.unique(counts[:, :2], axis=0, return_inverse=True)
    p = np.array([mcnemar_exact(int(b), int(c)) for b, c in pairs])  # the harness's test, once per distinct run
    return float((p[inverse.ravel()] < alpha).mean())


@pytest.mark.parametrize(("delta", "psi", "power", "alpha"), [
    (0.05, 0.30, 0.80, 0.05),  # the default assumption at 5 pp
    (0.10, 0.15, 0.80, 0.05),  # small n, where the exact test's conservatism shows
    (0.05, 0.12, 0.90, 0.01),
])
def test_mcnemar_plan_reaches_the_asked_power(delta: float, psi: float, power: float, alpha: float) -> None:
    n = mcnemar_n(delta, psi, power, alpha)
    detected = _mcnemar_detected(n, delta, psi, alpha, seed=1)
    assert abs(detected - power) <= 0.03, (n, detected)
    # and one item in ten fewer falls short: the plan is not padded
    assert mcnemar_power(int(n * 0.9), delta, psi, alpha) < power


def test_connor_formula_hand_computed() -> None:
    # (1.959964 * sqrt(.3) + 0.841621 * sqrt(.3 - .0025))^2 / .05^2 = 939.3 -> 940
    za, zb = 1.959963984540054, 0.8416212335729143
    expected = math.ceil(((za * math.sqrt(0.3) + zb * math.sqrt(0.2975)) / 0.05) ** 2)
    assert connor_n(0.05, 0.30) == expected == 940
    # the exact test needs a few more items than the asymptotic one
    assert mcnemar_n(0.05, 0.30) > 940


# Per-item differences of a graded score: means over three repeats, so multiples of 1/3.
GRADED = {
    "repeats": (np.array([-2, -1, 0, 1, 2, 3]) / 3, np.array([0.04, 0.14, 0.50, 0.20, 0.09, 0.03])),
    "wide": (np.array([-1.0, -0.5, 0.0, 0.5, 1.0]), np.array([0.12, 0.10, 0.38, 0.22, 0.18])),
}


@pytest.mark.parametrize("case", sorted(GRADED))
def test_sign_flip_plan_reaches_the_asked_power(case: str) -> None:
    values, probs = GRADED[case]
    delta = float(values @ probs)
    sd = float(math.sqrt(((values - delta) ** 2) @ probs))
    n = paired_n(delta, sd, 0.8, 0.05)
    rng = np.random.default_rng(2)
    # A run is summarised by how many items took each value: the sign-flip test depends on nothing else.
    counts = rng.multinomial(n, probs, size=RUNS)
    distinct, inverse = np.unique(counts, axis=0, return_inverse=True)
    # stats.sign_flip_test itself, with 2,000 resamples instead of 10,000 to keep the test fast (its p-value
    # then carries a Monte Carlo error of about 0.005 at p = 0.05, which moves the power by well under 1 pp)
    p = np.array([sign_flip_test(np.repeat(values, row), n_resamples=2000, seed=i).p_value
                  for i, row in enumerate(distinct)])
    detected = float((p[inverse.ravel()] < 0.05).mean())
    assert abs(detected - 0.8) <= 0.03, (case, n, delta, sd, detected)


def test_parse_detect() -> None:
    assert parse_detect("5pp") == pytest.approx(0.05)
    assert parse_detect("2.5%") == pytest.approx(0.025)
    for bad in ("0.05", "5", "0pp", "120pp", "five"):
        with pytest.raises(HarnessError, match="percentage points"):
            parse_detect(bad)


def _items(rows: dict[str, list[float]]) -> pd.DataFrame:
    frame = pd.DataFrame([(v, f"i{k}", x) for v, xs in rows.items() for k, x in enumerate(xs)],
                         columns=["variant", "item_id", "correct_rate"])
    return frame.set_index(["variant", "item_id"])


def test_pilot_evidence_and_the_plan_it_gives() -> None:
    items = _items({"base": [1, 1, 0, 0, 1, 0, 1, 1, 0, 1], "cand": [1, 0, 1, 1, 1, 0, 1, 1, 1, 1]})
    ev = pilot_evidence(items, "base", "cand")
    assert ev is not None and ev.binary and ev.items == 10
    assert ev.discordance == pytest.approx(0.4) and ev.diff == pytest.approx(0.2)
    plan = plan_pair("base", "cand", detect=0.05, power=0.8, alpha=0.05, binary=False, evidence=ev, pilot_name="p")
    assert plan.test == "McNemar (exact)" and plan.items_needed == mcnemar_n(0.05, 0.4)
    assert "40.0% of 10 items discordant" in plan.basis
    graded = _items({"base": [0.5, 1, 0], "cand": [1, 1, 0.5]})
    ev = pilot_evidence(graded, "base", "cand")
    assert ev is not None and not ev.binary and ev.sd == pytest.approx(np.std([0.5, 0, 0.5], ddof=1))
    assert pilot_evidence(graded, "base", "other") is None
    none = plan_pair("b", "c", detect=0.05, power=0.8, alpha=0.05, binary=True, evidence=None)
    assert none.discordance == pytest.approx(0.30) and "assumed" in none.basis


def test_a_pilot_without_spread_falls_back_to_the_assumption() -> None:
    flat = _items({"base": [0.5, 0.5, 1.0], "cand": [0.5, 0.5, 1.0]})
    ev = pilot_evidence(flat, "base", "cand")
    assert ev is not None and not ev.binary and ev.sd == 0
    plan = plan_pair("base", "cand", detect=0.05, power=0.8, alpha=0.05, binary=False, evidence=ev)
    assert "show no spread" in plan.basis and plan.items_needed == paired_n(0.05, math.sqrt(0.3 - 0.0025))


def test_a_pilot_discordance_below_twice_the_difference_is_raised_to_it() -> None:
    items = _items({"base": [1] * 20, "cand": [1] * 19 + [0]})  # 1 of 20 items discordant: 5%
    ev = pilot_evidence(items, "base", "cand")
    plan = plan_pair("base", "cand", detect=0.10, power=0.8, alpha=0.05, binary=True, evidence=ev)
    assert plan.discordance == pytest.approx(0.20) and plan.items_needed == mcnemar_n(0.10, 0.20)
    assert "5.0% of 20 items discordant (fewer than 2 x the difference asked, so 20% is used" in plan.basis
