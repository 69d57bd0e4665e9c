"""Sequential stop (`run.stop_when`): ask items in a seeded random order and stop once the answer is clear.

The question is one paired difference: is variant B better or worse than variant A, or equivalent within a
margin? Each item gives d = mean over repeats of B's primary score minus A's, in [-1, 1] (a call that never got an
answer scores 0, as in every table). After each item the monitor updates an anytime-valid confidence sequence
for the mean of d: an interval that holds the true mean difference at every item count at once with probability
at least 1 - alpha, however often it is looked at. The run stops at the first item count where it

- lies above 0: B is better than A,
- lies below 0: B is worse than A,
- lies inside (-margin, margin): the two are equivalent within the margin.

With no true difference, the first two verdicts are wrong, and the chance of ever giving either is at most alpha
(the sequence must exclude the true mean 0 for them). A fixed-n test looked at after every item has no such
guarantee: its false-verdict rate grows with every look.

The sequence is the predictable plug-in empirical-Bernstein one of Waudby-Smith and Ramdas ("Estimating means of
bounded random variables by betting", JRSS-B 2024, Theorem 2), on x = (d + 1) / 2 in [0, 1]. It adapts to the
variance of d, which is small when the two variants agree on most items (most d are 0), so it settles much sooner
than a bound that assumes the worst-case spread. Its running intersection is kept (still valid, never wider).

Items enter the sequence in the seeded order, not the order their calls finish: item k counts only once items
1..k all have every record. Calls that finish in an order that depends on their outcome (slow answers are long
answers) then cannot bias the verdict.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.records import EvalItem, Record

VERDICTS = ("better", "worse", "equivalent")
LAMBDA_CAP = 0.5  # the largest bet; the paper's suggested 1/2 or 3/4


def seeded_order(items: list[EvalItem], seed: int) -> list[EvalItem]:
    """The items in the random order the run asks them in: the same seed gives the same order, so a resumed run
    continues the same sequence."""
    out = list(items)
    random.Random(f"stop_when:{seed}").shuffle(out)
    return out


def eb_bounds(x: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The confidence sequence for the mean of x (values in [0, 1], along the last axis): (lower, upper) after
    each observation, running intersections included. Works on one sequence or a stack of them (rows), so a
    simulation of thousands of runs is one call."""
    x = np.asarray(x, dtype=float)
    t = np.arange(1, x.shape[-1] + 1, dtype=float)
    # mu_hat_t and sigma2_hat_t with their priors (1/2 and 1/4): the estimates after t observations
    mu_hat = (0.5 + np.cumsum(x, axis=-1)) / (t + 1)
    sigma2 = (0.25 + np.cumsum((x - mu_hat) ** 2, axis=-1)) / (t + 1)
    # each bet uses only what was known before its observation (predictable): the estimates at t - 1
    mu_prev = np.concatenate([np.full(x.shape[:-1] + (1,), 0.5), mu_hat[..., :-1]], axis=-1)
    sigma2_prev = np.concatenate([np.full(x.shape[:-1] + (1,), 0.25), sigma2[..., :-1]], axis=-1)
    log_term = math.log(2 / alpha)
    lam = np.minimum(np.sqrt(2 * log_term / (sigma2_prev * t * np.log1p(t))), LAMBDA_CAP)
    v = 4 * (x - mu_prev) ** 2
    psi = (-np.log1p(-lam) - lam) / 4
    sum_lam = np.cumsum(lam, axis=-1)
    center = np.cumsum(lam * x, axis=-1) / sum_lam
    width = (log_term + np.cumsum(v * psi, axis=-1)) / sum_lam
    lower = np.maximum.accumulate(np.clip(center - width, 0, 1), axis=-1)
    upper = np.minimum.accumulate(np.clip(center + width, 0, 1), axis=-1)
    return lower, upper


def difference_bounds(d: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The confidence sequence for the mean paired difference d in [-1, 1] (see eb_bounds)."""
    lo, hi = eb_bounds((np.asarray(d, dtype=float) + 1) / 2, alpha)
    return 2 * lo - 1, 2 * hi - 1


def verdict_of(lower: float, upper: float, margin: float) -> str | None:
    if lower > 0:
        return "better"
    if upper < 0:
        return "worse"
    if -margin < lower and upper < margin:
        return "equivalent"
    return None


def first_verdicts(d: np.ndarray, alpha: float, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """For a stack of simulated runs (rows of paired differences): the item count at which each run settles
    (0: never, within its items) and its verdict (index into VERDICTS, -1: none)."""
    lo, hi = difference_bounds(d, alpha)
    codes = np.full(lo.shape, -1)
    codes[(-margin < lo) & (hi < margin)] = 2
    codes[hi < 0] = 1
    codes[lo > 0] = 0
    settled = codes >= 0
    first = np.where(settled.any(axis=-1), settled.argmax(axis=-1), -1)
    rows = np.arange(codes.shape[0])
    verdict = np.where(first >= 0, codes[rows, np.maximum(first, 0)], -1)
    return first + 1, verdict


@dataclass
class Monitor:
    """Watches the records of the two compared variants as they are written and says when the run is settled."""

    a: str
    b: str
    margin: float
    alpha: float
    order: list[str]  # item ids in the seeded order
    repeats: int = 1
    _scores: dict[tuple[str, str], dict[int, float | None]] = field(default_factory=dict)
    _diffs: list[float] = field(default_factory=list)
    _next: int = 0  # the next item of `order` to enter the sequence
    unscored: int = 0  # items left out: a score that cannot be told (no expected answer, a failed judge)
    started: set[str] = field(default_factory=set)  # items with at least one record (or one call under way)
    verdict: str | None = None
    settled_after: int | None = None
    lower: float | None = None
    upper: float | None = None

    @property
    def settled(self) -> bool:
        return self.verdict is not None

    def observe(self, rec: Record) -> None:
        self.started.add(rec.item_id)
        if rec.variant not in (self.a, self.b) or self.settled:
            return
        # a call without an answer scores 0, as in every table; an answer whose score cannot be told (an item
        # without an expected answer, a judge that failed) is None, and its item is left out of the sequence
        score = 0.0 if rec.error is not None else None if rec.primary is None else float(rec.primary)
        self._scores.setdefault((rec.variant, rec.item_id), {})[rec.repeat] = score
        self._advance()

    def _advance(self) -> None:
        while self._next < len(self.order) and not self.settled:
            item = self.order[self._next]
            a, b = self._scores.get((self.a, item), {}), self._scores.get((self.b, item), {})
            if len(a) < self.repeats or len(b) < self.repeats:
                return
            self._next += 1
            if any(v is None for v in (*a.values(), *b.values())):
                self.unscored += 1
                continue
            self._diffs.append(float(np.mean(list(b.values())) - np.mean(list(a.values()))))
            lo, hi = difference_bounds(np.array(self._diffs), self.alpha)
            self.lower, self.upper = float(lo[-1]), float(hi[-1])
            self.verdict = verdict_of(self.lower, self.upper, self.margin)
            if self.verdict is not None:
                self.settled_after = self._next

    def wants(self, item_id: str) -> bool:
        """Whether a job of this item should still be called: every item before the verdict, and, after it,
        only the items already started (so every asked item has all its records)."""
        return not self.settled or item_id in self.started

    def sentence(self, of_items: int) -> str:
        """e.g. "stopped: settled after 212 of 500 items (few_shot better than baseline: ...)"."""
        lo, hi = self.lower, self.upper
        ci = (f"{self.b} - {self.a} in [{100 * lo:+.1f}, {100 * hi:+.1f}] pp at {1 - self.alpha:.0%} confidence, "
              f"an interval valid at any stopping point")
        what = {"better": f"{self.b} better than {self.a}", "worse": f"{self.b} worse than {self.a}",
                "equivalent": f"{self.b} equivalent to {self.a} within ±{100 * self.margin:.1f} pp"}[self.verdict or ""]
        left_out = f"; {self.unscored} item(s) without a score left out" if self.unscored else ""
        return f"stopped: settled after {self.settled_after} of {of_items} items ({what}; {ci}{left_out})"

    def describe(self, of_items: int, asked: int) -> dict[str, Any]:
        return {"compare": [self.a, self.b], "margin": self.margin, "alpha": self.alpha,
                "verdict": self.verdict, "settled_after": self.settled_after, "asked_items": asked,
                "of_items": of_items, "difference_low": self.lower, "difference_high": self.upper,
                "unscored_items": self.unscored}


def start(stop: Any, manifest: Any, items: list[EvalItem], earlier: list[Record], repeats: int,
          seed: int) -> tuple[list[EvalItem], Monitor | None]:
    """The items in the order to ask them and the monitor for a run with `run.stop_when` (`stop`), given the
    records an earlier session of it already wrote. A run that already settled and is resumed asks the rest of
    its items with no monitor: `--resume` continues a settled run to the full set."""
    ordered = seeded_order(items, seed)
    info = manifest.sequential
    if info is not None and info.verdict is not None:
        info.continued = True
        return ordered, None
    monitor = Monitor(stop.compare[0], stop.compare[1], stop.margin, stop.alpha, [i.id for i in ordered],
                      repeats)
    for rec in earlier:
        monitor.observe(rec)
    return ordered, monitor


def close(monitor: Monitor, manifest: Any, of_items: int) -> str | None:
    """Writes what the monitor saw into the manifest; the run's message when it settled."""
    from harness.rundir.manifest import SequentialInfo

    manifest.sequential = SequentialInfo(**monitor.describe(of_items, len(monitor.started)))
    return monitor.sentence(of_items) if monitor.settled else None
