"""The regression gate: a candidate run against the accepted run, item by item.

A gate on absolute thresholds flaps with noise; a gate on any drop flaps too; a gate that quietly compares
something else than it says passes what it never measured. This one fails (exit 1) when any rule of
RULES fires, and names the rule: the candidate run is incomplete, lacks a variant or items the accepted
run has, was scored differently, has more unknown scores, errors or format-invalid answers beyond the
tolerance, or its accuracy dropped beyond the tolerance *and* significantly.

"Accuracy" is the task's primary score (task.yaml `primary:`; default exact / normalised match), measured per
item as the mean over its repeats; the paired test runs on that same per-item quantity (stats.paired_compare).
Every item is in the comparison: an unanswered item counts as wrong, so failing can never pass the gate.
When several variants are compared, their accuracy-drop p-values are Holm-adjusted over the variants (one family)
and the rule uses the adjusted p. With `metric="ppi"` (`harness compare --metric ppi`) the accuracy-drop rule runs
on the judge-corrected (prediction-powered) difference instead (harness.analysis.ppi): for a judge-scored primary
score whose runs carry human-scored answers graded by the judge.

The two runs are "accepted" and "candidate" everywhere here ("baseline" is a variant name). The items that went
right -> wrong (graded or repeated: scored lower) are kept with their input and both outputs.

Everything here is numbers and typed facts; harness.report.gate_text words them: the rules, each failure's
message, each metric's reason, `harness compare`'s text and its --json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis import agreement, ppi, stats
from harness.analysis.gate_runs import (
    GateRun,
    MissingVariant,
    item_inputs,
    load_gate_run,
    pick_variants,
    scoring_changes,
)
from harness.errors import HarnessError
from harness.records import Record
from harness.rundir.folder import CALIBRATION_FILE
from harness.rundir.manifest import FINISHED
from harness.scoring.judge import read_calibration

# Every rule of the gate, in the order it is checked; the names appear in the FAIL lines and in --json
# (harness.report.gate_text.RULE_TEXT says what each checks).
RULES = ("incomplete", "missing-variant", "scoring-changed", "subset", "unknown-scores", "error-rate",
         "format-valid", "accuracy-drop", "agreement-drop")
OUTPUT_CHARS = 200
METRICS = ("accuracy", "agreement", "ppi")  # what the accuracy-drop rule is measured on (--metric)


class Verdict(Enum):
    """How a gated metric came out; with the metric's numbers it is the reason the gate gives for it."""

    UNCOMPARED = "uncompared"  # a rate one of the runs has no value for
    NOTHING_PAIRED = "nothing-paired"  # accuracy: no item is in both runs
    NO_KNOWN_PAIR = "no-known-pair"  # accuracy: no item has a known primary score on both sides
    SIGNIFICANT_DROP = "significant-drop"  # accuracy dropped beyond the tolerance and significantly: fails
    INSIGNIFICANT_DROP = "insignificant-drop"  # ... beyond the tolerance, not significantly: passes
    BEYOND_TOLERANCE = "beyond-tolerance"  # a rate worse by more than the tolerance: fails
    WITHIN_TOLERANCE = "within-tolerance"  # worse, within the tolerance
    NO_DROP = "no-drop"  # accuracy did not drop
    NO_WORSE = "no-worse"  # a rate is not worse


@dataclass
class Incomplete:
    """The candidate run did not finish (rule "incomplete")."""

    status: str | None
    message: str | None  # the manifest's message, if any
    run: str  # the candidate run folder, to resume


@dataclass
class Subset:
    """The candidate did not ask every item the accepted run asked (rule "subset")."""

    asked: int  # of the accepted run's items
    accepted_items: int
    missing: list[str]  # the item ids not asked, sorted
    selection: str  # how the candidate chose its items (a shard, a --limit sample), or ""


@dataclass
class ScoringChanged:
    """The runs were scored differently (rule "scoring-changed"); `allowed` by --allow-scoring-change."""

    changes: list[str]  # one phrase each ("judge model gpt-4o -> gpt-4o-mini")
    allowed: bool = False


@dataclass
class Failure:
    rule: str  # one of RULES
    facts: Incomplete | MissingVariant | ScoringChanged | Subset | MetricDelta  # what fired, for its message
    variant: str | None = None


@dataclass
class MetricDelta:
    metric: str
    n: int  # items in the comparison (paired items; for the rates every record of each run)
    accepted: float | None
    candidate: float | None
    diff: float | None  # candidate - accepted
    lo: float | None
    hi: float | None
    p_value: float | None  # with p_bound: an upper bound (no resample reached the observed difference)
    gated: bool
    rule: str
    failed: bool = False
    verdict: Verdict = Verdict.UNCOMPARED
    test: str | None = None  # the paired test behind p_value: "McNemar" or "sign-flip"
    p_bound: bool = False
    worse: float | None = None  # how much worse the candidate is (the drop, or the rise of a bad rate), a share
    higher_is_worse: bool = False  # an error rate, an unknown-score rate
    resamples: int = 0  # sign-flip resamples behind a bounded p-value
    p_adjusted: float | None = None  # Holm-adjusted over `comparisons` variants; the rule uses it when set
    comparisons: int = 1

    @property
    def p_gate(self) -> float | None:
        """The p-value the rule compares with alpha: the adjusted one when several variants are compared."""
        return self.p_adjusted if self.p_adjusted is not None else self.p_value


@dataclass
class ItemChange:
    item_id: str
    expected: Any
    input: str | None  # the item's input text (truncated), when its eval set folder is readable
    accepted_output: str | None
    candidate_output: str | None
    accepted_score: float | None = None  # the item's primary score (mean over repeats)
    candidate_score: float | None = None
    accepted_repeat: int | None = None  # the repeat shown: of the side that went down its lowest-scored one,
    candidate_repeat: int | None = None  # of the other its highest-scored one


@dataclass
class VariantComparison:
    accepted_variant: str
    candidate_variant: str
    accepted_model_id: str | None
    candidate_model_id: str | None
    accepted_items: int  # items the accepted run asked this variant
    paired_items: int  # of those, the items paired (asked by the candidate, known score on both sides)
    items_not_in_candidate: int
    items_only_in_candidate: int
    accepted_repeats: int
    candidate_repeats: int
    accepted_unknown: int  # answers whose primary score is unknown
    accepted_answers: int
    candidate_unknown: int
    candidate_answers: int
    errored_in_candidate_only: int
    errored_in_accepted_only: int
    metrics: list[MetricDelta]
    right_to_wrong: list[ItemChange]
    wrong_to_right: list[ItemChange]
    failures: list[Failure] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.failures)


@dataclass
class CompareResult:
    accepted_run: str
    candidate_run: str
    accepted_evalset_hash: str | None
    candidate_evalset_hash: str | None
    evalset_match: bool
    max_drop: float
    alpha: float
    items_only_in_accepted: int
    items_only_in_candidate: int
    comparisons: list[VariantComparison] = field(default_factory=list)
    candidate_status: str | None = None
    primary: str = "exact"  # the score "accuracy" means (the candidate's task.yaml `primary:`)
    metric: str = "accuracy"  # what the drop rule gates (--metric): accuracy, agreement with a reference, or ppi
    warnings: list[MissingVariant | ScoringChanged] = field(default_factory=list)  # rules allowed by a flag
    run_failures: list[Failure] = field(default_factory=list)  # rules about the runs, not one variant

    @property
    def failures(self) -> list[Failure]:
        return self.run_failures + [f for c in self.comparisons for f in c.failures]

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def _output(rec: Record | None) -> str | None:
    if rec is None:
        return None
    text = rec.raw_text if rec.error is None else f"error ({rec.error_kind}): {rec.error}"
    text = text or ""
    return text if len(text) <= OUTPUT_CHARS else text[:OUTPUT_CHARS] + "…"


def _error_rate(run: GateRun, variant: str) -> tuple[int, float | None]:
    recs = [r for r in run.records if r.variant == variant]
    return len(recs), (sum(1 for r in recs if r.error is not None) / len(recs) if recs else None)


def _accuracy_delta(pr: stats.PairedResult, max_drop: float, alpha: float, common: int, *,
                    p_adjusted: float | None = None, comparisons: int = 1) -> MetricDelta:
    test = stats.TEST_NAMES.get(pr.test, pr.test)
    md = MetricDelta("accuracy", pr.n, pr.baseline, pr.candidate, pr.diff, pr.lo, pr.hi, pr.p_value, gated=True,
                     rule="accuracy-drop", test=test if pr.n else None, p_bound=pr.p_bound, resamples=pr.resamples,
                     p_adjusted=p_adjusted if comparisons > 1 else None, comparisons=comparisons)
    return _judge_drop(md, max_drop, alpha, common)


def _judge_drop(md: MetricDelta, max_drop: float, alpha: float, common: int) -> MetricDelta:
    """The accuracy-drop rule on a measured difference: fails when it dropped beyond the tolerance and the
    (adjusted) p-value is below alpha."""
    if md.diff is None:
        md.failed = True
        md.rule, md.verdict = (("subset", Verdict.NOTHING_PAIRED) if not common else
                               ("unknown-scores", Verdict.NO_KNOWN_PAIR))
        return md
    md.worse = drop = -md.diff
    significant = md.p_gate is not None and md.p_gate < alpha
    if drop > max_drop and significant:
        md.failed, md.verdict = True, Verdict.SIGNIFICANT_DROP
    elif drop > max_drop:
        md.verdict = Verdict.INSIGNIFICANT_DROP
    else:
        md.verdict = Verdict.WITHIN_TOLERANCE if drop > 0 else Verdict.NO_DROP
    return md


def _rate_delta(metric: str, rule: str, n: int, acc: float | None, cand: float | None, max_drop: float, *,
                lo: float | None = None, hi: float | None = None, p: float | None = None,
                higher_is_worse: bool) -> MetricDelta:
    """A rate gated on the tolerance alone: a candidate that fails, breaks format or leaves scores unknown more
    often than the accepted run by more than the tolerance is not accepted, significant or not."""
    diff = cand - acc if acc is not None and cand is not None else None
    md = MetricDelta(metric, n, acc, cand, diff, lo, hi, p, gated=True, rule=rule, higher_is_worse=higher_is_worse)
    if diff is None:
        return md
    md.worse = worse = diff if higher_is_worse else -diff
    if worse > max_drop:
        md.failed, md.verdict = True, Verdict.BEYOND_TOLERANCE
    else:
        md.verdict = Verdict.WITHIN_TOLERANCE if worse > 0 else Verdict.NO_WORSE
    return md


def _unanswered_items(run: GateRun, variant: str) -> set[str]:
    """Items none of whose repeats got an answer."""
    answered = {r.item_id for r in run.records if r.variant == variant and r.error is None}
    return {r.item_id for r in run.records if r.variant == variant} - answered


def _changes(acc: GateRun, cand: GateRun, name: str, ai: pd.DataFrame,
             ci: pd.DataFrame) -> tuple[list[ItemChange], list[ItemChange]]:
    """Items whose per-item score (mean over repeats) went down / up, with their input and both outputs."""
    joined = ai[["correct_rate"]].add_suffix("_a").join(ci[["correct_rate"]].add_suffix("_c"), how="inner")
    joined = joined[joined["correct_rate_a"].notna() & joined["correct_rate_c"].notna()].sort_index()
    joined = joined[joined["correct_rate_a"] != joined["correct_rate_c"]]
    inputs = item_inputs([cand, acc], {str(i) for i in joined.index})
    down: list[ItemChange] = []
    up: list[ItemChange] = []
    for item_id, row in joined.iterrows():
        sa, sc = float(row["correct_rate_a"]), float(row["correct_rate_c"])
        ra = acc.shown(name, str(item_id), worst=sc > sa)
        rc = cand.shown(name, str(item_id), worst=sc < sa)
        expected = (ra or rc).expected if (ra or rc) else None
        ch = ItemChange(str(item_id), expected, inputs.get(str(item_id)), _output(ra), _output(rc), sa, sc,
                        ra.repeat if ra else None, rc.repeat if rc else None)
        (down if sc < sa else up).append(ch)
    return down, up


def _ppi_delta(ai: pd.DataFrame, ci: pd.DataFrame, labels: tuple[ppi.Labels, ppi.Labels]) -> MetricDelta:
    """The judge-corrected (PPI) accuracy difference on the items both runs scored (harness.analysis.ppi)."""
    joined = ai[["correct_rate"]].add_suffix("_a").join(ci[["correct_rate"]].add_suffix("_c"), how="inner")
    joined = joined[joined["correct_rate_a"].notna() & joined["correct_rate_c"].notna()]
    units = ai["cluster"].reindex(joined.index).astype(str).to_numpy() if "cluster" in ai.columns else None
    a, c = joined["correct_rate_a"].to_numpy(dtype=float), joined["correct_rate_c"].to_numpy(dtype=float)
    d = ppi.ppi_difference(a, c, labels[0], labels[1], clusters=units)
    md = MetricDelta("accuracy_ppi", len(joined), None, None, None, None, None, None, gated=True,
                     rule="accuracy-drop", test="PPI z-test")
    if d is not None:
        ha, ja = labels[0].arrays()
        hc, jc = labels[1].arrays()
        md.accepted, md.candidate = float(a.mean() + (ha - ja).mean()), float(c.mean() + (hc - jc).mean())
        md.diff, md.lo, md.hi, md.p_value = d.diff, d.lo, d.hi, d.p_value
    return md


def _gated_items(acc: GateRun, cand: GateRun, name: str, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both runs' per-item outcomes the drop rule reads: the primary score's, or agreement with the reference."""
    if metric == "agreement":  # the same paired test on each item's agreement with the reference
        return agreement.gate_items(acc.records).loc[name], agreement.gate_items(cand.records).loc[name]
    return acc.items.loc[name], cand.items.loc[name]


def _first_metric(acc: GateRun, cand: GateRun, name: str, max_drop: float, alpha: float,
                  labels: tuple[ppi.Labels, ppi.Labels] | None, p_adjusted: float | None,
                  comparisons: int, metric: str = "accuracy") -> MetricDelta:
    """The gated metric: the primary score's paired difference, its PPI correction (--metric ppi), or the
    agreement with the reference (--metric agreement, rule agreement-drop)."""
    ai, ci = _gated_items(acc, cand, name, metric)
    common = len(acc.item_ids(name) & cand.item_ids(name))
    if labels is None:
        md = _accuracy_delta(stats.paired_compare(ai, ci, "correct"), max_drop, alpha, common,
                             p_adjusted=p_adjusted, comparisons=comparisons)
        if metric == "agreement":
            md.metric, md.rule = "agreement", ("agreement-drop" if md.rule == "accuracy-drop" else md.rule)
        return md
    md = _ppi_delta(ai, ci, labels)
    md.p_adjusted, md.comparisons = (p_adjusted if comparisons > 1 else None), comparisons
    return _judge_drop(md, max_drop, alpha, common)


def compare_variant(acc: GateRun, cand: GateRun, name: str, *, max_drop: float, alpha: float,
                    allow_subset: bool = False, p_adjusted: float | None = None, comparisons: int = 1,
                    labels: tuple[ppi.Labels, ppi.Labels] | None = None,
                    metric: str = "accuracy") -> VariantComparison:
    """One variant of both runs. `p_adjusted`: its gated p-value Holm-adjusted over the `comparisons`
    variants compared; `labels`: both runs' human-scored answers, to gate on the PPI accuracy instead;
    `metric`: "agreement" gates on agreement with the reference."""
    ai, ci = acc.items.loc[name], cand.items.loc[name]
    ids_a, ids_c = acc.item_ids(name), cand.item_ids(name)
    fmt = stats.paired_compare(ai, ci, "format_valid")
    (na, ea), (nc, ec) = _error_rate(acc, name), _error_rate(cand, name)
    (ua, aa), (uc, ac) = acc.unknown(name), cand.unknown(name)
    if metric == "agreement":
        (ua, aa), (uc, ac) = agreement.unknown_agreement(acc.records, name), agreement.unknown_agreement(cand.records, name)
    ai, ci = _gated_items(acc, cand, name, metric)
    acc_pair = stats.paired_compare(ai, ci, "correct")
    metrics = [
        _first_metric(acc, cand, name, max_drop, alpha, labels, p_adjusted, comparisons, metric),
        _rate_delta("format_valid", "format-valid", fmt.n, fmt.baseline, fmt.candidate, max_drop, lo=fmt.lo,
                    hi=fmt.hi, p=fmt.p_value, higher_is_worse=False),
        _rate_delta("error_rate", "error-rate", min(na, nc), ea, ec, max_drop, higher_is_worse=True),
        _rate_delta("unknown_rate", "unknown-scores", min(aa, ac), ua / aa if aa else None,
                    uc / ac if ac else None, max_drop, higher_is_worse=True),
    ]
    failures = []
    missing = sorted(ids_a - ids_c)
    if missing and not allow_subset:
        failures.append(Failure("subset", Subset(len(ids_a) - len(missing), len(ids_a), missing,
                                                 cand.selection_note()), name))
    failures += [Failure(m.rule, m, name) for m in metrics if m.failed]
    down, up = _changes(acc, cand, name, ai, ci)
    errored_a, errored_c = _unanswered_items(acc, name), _unanswered_items(cand, name)
    return VariantComparison(
        name, name, acc.model_id(name), cand.model_id(name), len(ids_a), acc_pair.n, len(missing),
        len(ids_c - ids_a), acc.repeats(name), cand.repeats(name), ua, aa, uc, ac,
        errored_in_candidate_only=len(errored_c - errored_a), errored_in_accepted_only=len(errored_a - errored_c),
        metrics=metrics, right_to_wrong=down, wrong_to_right=up, failures=failures)


def _ppi_labels(acc: GateRun, cand: GateRun) -> tuple[ppi.Labels, ppi.Labels]:
    """Both runs' human-scored answers as their primary judge graded them; an error naming what is missing."""
    out = []
    for run in (acc, cand):
        if ppi.primary_judge(run.manifest) is None:
            raise HarnessError(f"--metric ppi: the primary score of {run.path} ({run.manifest.scoring.primary}) is "
                               "not a judge's; PPI corrects a judge-scored accuracy — drop --metric ppi")
        labels = ppi.labels_of(read_calibration(Path(run.path) / CALIBRATION_FILE), run.manifest)
        if labels is None or len(labels.pairs) < 2:
            raise HarnessError(f"--metric ppi: {run.path}/{CALIBRATION_FILE} has fewer than 2 human-scored answers "
                               "the judge graded; give test items `human:` scores and re-run, or drop --metric ppi")
        out.append(labels)
    return out[0], out[1]


def compare_runs(accepted_dir: Path, candidate_dir: Path, *, variant: str | None = None, max_drop: float = 0.02,
                 alpha: float = 0.05, allow_different_evalset: bool = False,
                 allow_missing_variant: str | list[str] | tuple[str, ...] = (), allow_subset: bool = False,
                 allow_scoring_change: bool = False, metric: str | None = None) -> CompareResult:
    if not 0 <= max_drop <= 1:
        raise HarnessError(f"--max-drop {max_drop}: must be a share between 0 and 1 (0.02 = 2 percentage points)")
    if not 0 < alpha < 1:
        raise HarnessError(f"--alpha {alpha}: must be between 0 and 1 (e.g. 0.05)")
    if metric is not None and metric not in METRICS:  # None: accuracy with labels, else agreement
        raise HarnessError(f"--metric {metric}: must be one of {', '.join(METRICS)}")
    if isinstance(allow_missing_variant, str):
        allow_missing_variant = [v.strip() for v in allow_missing_variant.split(",") if v.strip()]
    acc, cand = load_gate_run(Path(accepted_dir)), load_gate_run(Path(candidate_dir))
    ha, hc = acc.manifest.evalset.content_hash, cand.manifest.evalset.content_hash
    match = ha == hc and ha is not None
    if not match and not allow_different_evalset:
        raise HarnessError(f"eval sets differ ({accepted_dir}: {str(ha)[:12]}, {candidate_dir}: {str(hc)[:12]}); "
                           "the runs are not comparable — pass --allow-different-evalset to compare the items "
                           "they share by id")
    ids_a, ids_c = {r.item_id for r in acc.records}, {r.item_id for r in cand.records}
    result = CompareResult(str(accepted_dir), str(candidate_dir), ha, hc, match, max_drop, alpha,
                           len(ids_a - ids_c), len(ids_c - ids_a))
    result.primary = cand.scoring_identity()["primary"]
    result.metric = agreement.gate_metric(metric, acc.records, cand.records)  # type: ignore[arg-type]
    result.candidate_status = cand.manifest.status
    if result.candidate_status not in FINISHED:  # settled: items left out by design (the subset rule)
        why = cand.manifest.message or None
        result.run_failures.append(Failure("incomplete", Incomplete(result.candidate_status, why,
                                                                    str(candidate_dir))))
    names, missing = pick_variants(acc, cand, variant, list(allow_missing_variant))
    for m in missing:
        if m.allowed:
            result.warnings.append(m)
        else:
            result.run_failures.append(Failure("missing-variant", m, m.variant))
    changes = scoring_changes(acc, cand)
    if result.metric == "agreement":
        names = agreement.gate_variants(acc.records, cand.records, names, variant)  # type: ignore[arg-type]
        ref_a, ref_c = agreement.reference_of(acc.records), agreement.reference_of(cand.records)  # type: ignore[arg-type]
        if ref_a != ref_c:
            changes.append(f"reference {ref_a} -> {ref_c}")
    if changes and allow_scoring_change:
        result.warnings.append(ScoringChanged(changes, allowed=True))
    elif changes:
        result.run_failures.append(Failure("scoring-changed", ScoringChanged(changes)))
    metric = result.metric
    labels = _ppi_labels(acc, cand) if metric == "ppi" and names else None
    raw = [_first_metric(acc, cand, n, max_drop, alpha, labels, None, 1, metric).p_value for n in names]
    family = sum(1 for p in raw if p is not None)
    for name, q in zip(names, stats.holm(raw), strict=True):
        result.comparisons.append(compare_variant(acc, cand, name, max_drop=max_drop, alpha=alpha,
                                                  allow_subset=allow_subset, p_adjusted=q, comparisons=family,
                                                  labels=labels, metric=metric))
    return result
