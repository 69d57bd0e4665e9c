"""Judge-corrected accuracy: prediction-powered inference (Angelopoulos et al., "Prediction-powered inference",
Science 2023) when the primary score is an LLM judge and some test items carry human scores (`human:`).

The judge grades every answer of a variant (N of them); it also grades the answers people scored (n of them,
harness.scoring.judge.calibrate, kept in judge_human.jsonl). Where the judge is biased (too lenient, too harsh),
the human-minus-judge difference on those n answers measures the bias, and

    estimate = mean(judge on the N answers) + mean(human - judge on the n labelled answers)
    var      = var(judge on the N) / N + var(human - judge on the n) / n

(the first term cluster-robust when an item has repeats or the task declares clusters). The interval is
estimate +- z * sqrt(var), cut to 0..1. The raw judge figure stays beside it: this one trades the judge's bias
for the variance of n human labels.

What the labelled answers are: `human:` scores an item's reference answer (or the answer it names), not each
variant's own answer, so the correction is the same for every variant of a run graded by the same judge; it
moves the level (what a person would have scored) and widens the interval, and cancels in a comparison of two
variants graded by the same judge on the same labels. It matters across runs whose judge changed
(`harness compare --metric ppi`). A labelled answer the judge could not grade is left out of n and counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from harness.analysis import clusters as cl
from harness.rundir.manifest import Manifest


@dataclass(frozen=True)
class PPI:
    """A prediction-powered estimate of a mean score, with what it is made of."""

    estimate: float
    lo: float
    hi: float
    se: float
    judge_mean: float  # the raw judge figure on all answers
    rectifier: float  # mean(human - judge) on the labelled answers
    n_all: int  # judge scores of the variant's answers
    n_labelled: int  # labelled answers the judge graded
    labelled_unknown: int = 0  # labelled answers the judge could not grade (left out)


def ppi_mean(judge_all: Sequence[float] | np.ndarray, human: Sequence[float] | np.ndarray,
             judge_labelled: Sequence[float] | np.ndarray, *, clusters: Sequence[Any] | None = None,
             level: float = 0.95, labelled_unknown: int = 0) -> PPI | None:
    """The PPI estimate of the mean human score from judge scores on all answers and (human, judge) pairs on
    the labelled ones; None with fewer than two of either. `clusters` labels each of `judge_all` (its item, or
    the item's declared cluster); without it every value is its own unit."""
    y_all = np.asarray(judge_all, dtype=float)
    h, j = np.asarray(human, dtype=float), np.asarray(judge_labelled, dtype=float)
    if h.shape != j.shape:
        raise ValueError("human and judge_labelled must pair up")
    if y_all.size < 2 or h.size < 2:
        return None
    lay = cl.layout(clusters if clusters is not None else range(y_all.size))
    judge_mean, judge_se = cl.clustered_mean_se(y_all, lay)
    if not np.isfinite(judge_se):
        return None
    delta = h - j
    rectifier = float(delta.mean())
    se = math.sqrt(float(judge_se) ** 2 + float(delta.var(ddof=1)) / h.size)
    estimate = float(judge_mean) + rectifier
    z = float(sps.norm.ppf(1 - (1 - level) / 2))
    return PPI(estimate, max(0.0, estimate - z * se), min(1.0, estimate + z * se), se, float(judge_mean),
               rectifier, int(y_all.size), int(h.size), labelled_unknown)


def primary_judge(manifest: Manifest) -> tuple[str, float, float] | None:
    """(name, scale low, scale high) of the primary score when it is a judge scorer; else None."""
    for spec in manifest.scoring.scorers:
        if spec.name == manifest.scoring.primary and spec.scorer == "judge":
            scale = (spec.model_extra or {}).get("scale") or [0, 1]
            return spec.name, float(scale[0]), float(scale[1])
    return None


@dataclass(frozen=True)
class Labels:
    """The human-scored answers the judge graded, both scores on 0..1, keyed by (item id, answer)."""

    pairs: dict[tuple[str, str], tuple[float, float]]  # key -> (human, judge)
    unknown: int  # labelled answers the judge could not grade

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        vals = list(self.pairs.values())
        return np.array([h for h, _ in vals], dtype=float), np.array([j for _, j in vals], dtype=float)


def labels_of(rows: list[dict[str, Any]], manifest: Manifest) -> Labels | None:
    """The primary judge's calibration rows (judge_human.jsonl) as 0..1 pairs; None when the primary score is
    not a judge's or no person scored an answer."""
    judge = primary_judge(manifest)
    if judge is None:
        return None
    name, lo, hi = judge
    mine = [r for r in rows if r.get("scorer") == name and r.get("human") is not None]
    if not mine:
        return None
    pairs: dict[tuple[str, str], tuple[float, float]] = {}
    unknown = 0
    for r in mine:
        if r.get("judge_score") is None:
            unknown += 1
            continue
        pairs[(str(r.get("item_id")), str(r.get("answer")))] = ((float(r["human"]) - lo) / (hi - lo),
                                                                 float(r["judge_score"]))
    return Labels(pairs, unknown)


def variant_ppi(frame: Any, variant: str, labels: Labels | None) -> PPI | None:
    """A variant's PPI accuracy from its records' primary (judge) scores (stats.outcomes_frame) and the labels;
    the unit of the judge term is the item, or its declared cluster."""
    if labels is None:
        return None
    sub = frame[(frame["variant"] == variant) & frame["correct"].notna()]
    units = sub["cluster"] if "cluster" in sub.columns else sub["item_id"]
    h, j = labels.arrays()
    return ppi_mean(sub["correct"].to_numpy(dtype=float), h, j, clusters=units.astype(str).to_numpy(),
                    labelled_unknown=labels.unknown)


@dataclass(frozen=True)
class PPIDiff:
    """candidate - accepted, each a PPI estimate, paired on the items both asked; a two-sided z-test."""

    diff: float
    lo: float
    hi: float
    se: float
    p_value: float
    judge_diff: float  # the raw judge difference on the paired items
    rectifier_diff: float  # candidate's rectifier - accepted's
    n: int  # paired items
    labelled: tuple[int, int]  # (accepted, candidate) labelled answers


def ppi_difference(accepted: np.ndarray, candidate: np.ndarray, acc_labels: Labels, cand_labels: Labels, *,
                   clusters: Sequence[Any] | None = None, level: float = 0.95) -> PPIDiff | None:
    """The PPI estimate of the change in mean human score between two runs: per-item judge scores paired on
    the same items, plus the change of the rectifier. When both runs' judges graded the same labelled answers
    the rectifiers pair up too (var of the per-answer change / n), else they are independent."""
    a, c = np.asarray(accepted, dtype=float), np.asarray(candidate, dtype=float)
    ha, ja = acc_labels.arrays()
    hc, jc = cand_labels.arrays()
    if a.size < 2 or ha.size < 2 or hc.size < 2:
        return None
    lay = cl.layout(clusters if clusters is not None else range(a.size))
    judge_diff, judge_se = cl.clustered_mean_se(c - a, lay)
    if acc_labels.pairs.keys() == cand_labels.pairs.keys():
        keys = list(acc_labels.pairs)
        change = np.array([(cand_labels.pairs[k][0] - cand_labels.pairs[k][1])
                           - (acc_labels.pairs[k][0] - acc_labels.pairs[k][1]) for k in keys])
        rect_diff, rect_var = float(change.mean()), float(change.var(ddof=1)) / change.size
    else:
        rect_diff = float((hc - jc).mean() - (ha - ja).mean())
        rect_var = float((hc - jc).var(ddof=1)) / hc.size + float((ha - ja).var(ddof=1)) / ha.size
    se = math.sqrt(float(judge_se) ** 2 + rect_var)
    diff = float(judge_diff) + rect_diff
    z = float(sps.norm.ppf(1 - (1 - level) / 2))
    p = (1.0 if diff == 0 else 0.0) if se == 0 else float(2 * sps.norm.sf(abs(diff) / se))
    return PPIDiff(diff, diff - z * se, diff + z * se, se, p, float(judge_diff), rect_diff, int(a.size),
                   (int(ha.size), int(hc.size)))
