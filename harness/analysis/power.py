"""How many items a paired comparison needs to detect a given difference, for the tests the harness runs.

The report compares each variant with the baseline on the same items (harness.analysis.stats.paired_compare):
the exact McNemar test when every per-item value is 0 or 1, else the sign-flip test on the per-item differences.
The sample sizes here are for those two tests, so a plan's n is the n at which *the harness's own* p-value falls
below alpha with the asked probability (tests/analysis/test_power.py checks this by simulation).

Pass/fail (McNemar). With discordance psi (the share of items on which the two variants disagree) and difference
delta (candidate minus baseline accuracy), Connor's approximation for the asymptotic McNemar test is

    n = ( z_{1-alpha/2} * sqrt(psi) + z_{power} * sqrt(psi - delta^2) )^2 / delta^2

(R. J. Connor, "Sample size for testing differences in proportions for the paired-sample design",
Biometrics 43(1), 1987, 207-211). The harness's test is the *exact* conditional one, which is a little
conservative, so Connor's n is only the starting point: the power of the exact test is then computed exactly,
summing over the number of discordant items D ~ Binomial(n, psi) the chance that the wrong->right count
b ~ Binomial(D, (psi + delta) / (2 psi)) lands in the exact test's rejection region (2 P(Bin(D, 1/2) <= min) <
alpha), and n is the smallest (by bisection) whose power reaches the target.

Graded (sign-flip). For large n the sign-flip test's statistic sum(d) is compared with its randomisation
distribution, whose variance is sum(d^2): a z-test whose null variance is E[d^2] = sd^2 + delta^2. The same
algebra as Connor's gives n = (q_{1-alpha/2} sqrt(sd^2 + delta^2) + q_{power} sd)^2 / delta^2, with q the
Student t quantiles on n - 1 degrees of freedom (iterated to a fixed point) as the small-sample correction.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from harness.errors import HarnessError

MAX_ITEMS = 10_000_000  # beyond this a plan is not worth computing: the difference is too small to detect
_DETECT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(pp|%)\s*$", re.IGNORECASE)

# Without a pilot run, the share of items on which two variants disagree is unknown. The assumption: twice the
# difference plus 20 pp (5 pp -> 30%). Variants of one task disagree on 10-30% of items in practice; a larger
# discordance needs more items, so this errs towards too many. A pilot (--from) replaces it with a measurement.
ASSUMED_EXTRA_DISCORDANCE = 0.20
# A pilot's discordance is used as measured, but never below twice the difference asked: at discordance psi = 2
# delta a quarter of the changed items still go against the better variant; below it the plan would rest on
# almost every change favouring one side (psi = delta: all of them), which a small pilot cannot show.
MIN_DISCORDANCE_PER_DIFF = 2.0


def parse_detect(text: str) -> float:
    """`5pp` or `5%` -> 0.05. Anything else is a one-line error: a bare 0.05 could mean 5 pp or 0.05 pp."""
    m = _DETECT.match(str(text))
    value = float(m.group(1)) / 100 if m else None
    if value is None or not 0 < value < 1:
        raise HarnessError(f"--detect {text}: give the difference to detect in percentage points between 0 and "
                           f"100, e.g. --detect 5pp")
    return value


def check_level(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise HarnessError(f"--{name} {value}: give a probability between 0 and 1 (e.g. 0.8 for power, 0.05 for alpha)")


def assumed_discordance(delta: float) -> float:
    return min(1.0, 2 * delta + ASSUMED_EXTRA_DISCORDANCE)


# -- pass/fail: the exact McNemar test ------------------------------------------------------------------------

def connor_n(delta: float, discordance: float, power: float = 0.8, alpha: float = 0.05) -> int:
    """Connor (1987): items for the asymptotic McNemar test (see the module docstring)."""
    delta, psi = abs(delta), max(discordance, abs(delta))
    za, zb = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    return max(1, math.ceil(((za * math.sqrt(psi) + zb * math.sqrt(max(psi - delta**2, 0.0))) / delta) ** 2))


def mcnemar_power(n: int, delta: float, discordance: float, alpha: float = 0.05) -> float:
    """The probability that stats.mcnemar_exact gives p < alpha on n paired items whose discordance is psi and
    whose accuracy difference is delta (either sign: the test is two-sided)."""
    delta, psi = abs(delta), max(discordance, abs(delta))
    d = np.arange(n + 1)
    p_d = sps.binom.pmf(d, n, psi)
    # Largest k with 2 * P(Bin(D, 1/2) <= k) < alpha: the rejection region is min(b, c) <= k.
    k = sps.binom.ppf(alpha / 2, d, 0.5)
    k = np.where(2 * sps.binom.cdf(k, d, 0.5) < alpha, k, k - 1)
    k = np.minimum(k, (d - 1) // 2)  # the two tails never overlap
    q = (psi + delta) / (2 * psi)  # share of discordant items going wrong -> right
    reject = np.where(k >= 0, sps.binom.cdf(k, d, q) + sps.binom.sf(d - k - 1, d, q), 0.0)
    return float(np.clip((p_d * reject).sum(), 0.0, 1.0))


def mcnemar_n(delta: float, discordance: float, power: float = 0.8, alpha: float = 0.05) -> int:
    """Smallest n (found by bisection from Connor's n) at which the exact McNemar test reaches `power`."""
    return _search(lambda n: mcnemar_power(n, delta, discordance, alpha), connor_n(delta, discordance, power, alpha),
                   power)


def _search(power_at: Any, start: int, target: float) -> int:
    lo, hi = max(1, start // 2), max(2, start)
    while power_at(hi) < target:
        lo, hi = hi, hi * 2
        if hi > MAX_ITEMS:
            raise HarnessError(f"more than {MAX_ITEMS:,} items would be needed: the difference is too small to "
                               f"detect; ask for a larger one (--detect)")
    if power_at(lo) >= target:
        lo = 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if power_at(mid) >= target else (mid, hi)
    return hi


# -- graded: the sign-flip test ----------------------------------------------------------------------------

def sign_flip_power(n: int, delta: float, sd: float, alpha: float = 0.05) -> float:
    """Approximate power of stats.sign_flip_test on n items whose differences have mean delta and standard
    deviation sd: a t-like test whose null variance is sd^2 + delta^2 (see the module docstring)."""
    if n < 2:
        return 0.0
    df = n - 1
    crit = sps.t.ppf(1 - alpha / 2, df) * math.sqrt(sd**2 + delta**2)
    shift = math.sqrt(n) * abs(delta)
    return float(sps.t.cdf((shift - crit) / sd, df) + sps.t.cdf((-shift - crit) / sd, df)) if sd > 0 else 1.0


def paired_n(delta: float, sd: float, power: float = 0.8, alpha: float = 0.05) -> int:
    """Items for the sign-flip test: the normal formula with t quantiles, iterated until n stops moving."""
    delta = abs(delta)
    if sd <= 0:
        return 2
    n = 2
    for _ in range(50):
        df = max(n - 1, 1)
        qa, qb = sps.t.ppf(1 - alpha / 2, df), sps.t.ppf(power, df)
        new = max(2, math.ceil(((qa * math.sqrt(sd**2 + delta**2) + qb * sd) / delta) ** 2))
        if new > MAX_ITEMS:
            raise HarnessError(f"more than {MAX_ITEMS:,} items would be needed: the difference is too small to "
                               f"detect; ask for a larger one (--detect)")
        if new == n:
            break
        n = new
    return n


# -- what a pilot run says about one pair ---------------------------------------------------------------------

@dataclass
class PairEvidence:
    """What the pilot's per-item values (item_outcomes' correct_rate, the quantity the tests use) say."""

    items: int  # items both variants were asked with a known score
    binary: bool  # every per-item value 0 or 1 on both sides: the McNemar case
    diff: float
    discordance: float  # share of items whose values differ
    sd: float  # standard deviation of the per-item differences (ddof 1)


def pilot_evidence(items: pd.DataFrame, baseline: str, candidate: str) -> PairEvidence | None:
    """From stats.item_outcomes of a pilot's records; None when the pair has no item in common."""
    present = set(items.index.get_level_values(0)) if len(items) else set()
    if baseline not in present or candidate not in present:
        return None
    a = items.loc[baseline][["correct_rate"]].add_suffix("_b").join(items.loc[candidate][["correct_rate"]],
                                                                    how="inner").dropna()
    if a.empty:
        return None
    b, c = a["correct_rate_b"].to_numpy(float), a["correct_rate"].to_numpy(float)
    d = c - b
    binary = bool(np.isin(b, (0.0, 1.0)).all() and np.isin(c, (0.0, 1.0)).all())
    sd = float(d.std(ddof=1)) if d.size > 1 else 0.0
    return PairEvidence(int(d.size), binary, float(d.mean()), float((np.abs(d) > 1e-12).mean()), sd)


@dataclass
class PairPlan:
    """One comparison the report would make, and the items it needs."""

    baseline: str
    candidate: str
    score: str  # "pass/fail" or "graded"
    test: str  # "McNemar (exact)" or "sign-flip"
    detect: float
    power: float
    alpha: float
    discordance: float | None  # pass/fail
    sd: float | None  # graded
    basis: str  # where discordance / sd come from: the pilot, or the stated assumption
    items_needed: int
    pilot_items: int | None = None
    pilot_diff: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_pair(baseline: str, candidate: str, *, detect: float, power: float, alpha: float, binary: bool,
              evidence: PairEvidence | None, pilot_name: str = "pilot") -> PairPlan:
    """The plan for one pair: from the pilot's evidence when there is some, else the stated assumption."""
    if evidence is not None:
        binary = evidence.binary
    psi = sd = None
    if evidence is None:
        psi = assumed_discordance(detect)
        basis = (f"assumed: no pilot run, discordance taken as 2 x difference + "
                 f"{ASSUMED_EXTRA_DISCORDANCE * 100:g} pp = {psi:.0%} of items (give --from PILOT_RUN to measure it)")
        if not binary:
            sd = math.sqrt(max(psi - detect**2, 0.0))
            basis = (f"assumed: no pilot run, paired SD {sd:.3f} as if {psi:.0%} of items changed by a whole point "
                     f"(give --from PILOT_RUN to measure it)")
    elif binary:
        psi = max(evidence.discordance, min(1.0, MIN_DISCORDANCE_PER_DIFF * detect))
        basis = f"{pilot_name}: {evidence.discordance:.1%} of {evidence.items} items discordant"
        if evidence.discordance < psi:
            basis += (f" (fewer than {MIN_DISCORDANCE_PER_DIFF:g} x the difference asked, so {psi:.0%} is used: "
                      f"a rarer discordance would mean almost every changed item favours one side)")
    elif evidence.sd > 0:
        sd = evidence.sd
        basis = f"{pilot_name}: paired SD {evidence.sd:.3f} over {evidence.items} items"
    else:  # no spread measured (one item, or none changed): it says nothing about the spread to expect
        psi = assumed_discordance(detect)
        sd = math.sqrt(max(psi - detect**2, 0.0))
        basis = (f"assumed: the {pilot_name}'s {evidence.items} items show no spread, so paired SD {sd:.3f} as if "
                 f"{psi:.0%} of items changed by a whole point")
    if binary:
        assert psi is not None
        n = mcnemar_n(detect, psi, power, alpha)
    else:
        assert sd is not None
        n = paired_n(detect, sd, power, alpha)
    return PairPlan(baseline, candidate, "pass/fail" if binary else "graded",
                    "McNemar (exact)" if binary else "sign-flip", detect, power, alpha,
                    psi if binary else None, None if binary else sd, basis, n,
                    evidence.items if evidence else None, evidence.diff if evidence else None)
