"""The regression gate: a candidate run against the accepted run, item by item.

A gate on absolute thresholds flaps with noise; a gate on any drop flaps too; a gate that quietly compares
something else than it says passes what it never measured. This one fails (exit 1) when any rule of
RULE_TEXT fires, and names the rule: the candidate run is incomplete, lacks a variant or items the accepted
run has, was scored differently, has more unknown scores, errors or format-invalid answers beyond the
tolerance, or its accuracy dropped beyond the tolerance *and* significantly.

"Accuracy" is the task's primary score (task.yaml `primary:`; default exact / normalised match), measured per
item as the mean over its repeats; the paired test runs on that same per-item quantity (stats.paired_compare).
Every item is in the comparison: an unanswered item counts as wrong, so failing can never pass the gate.

The two runs are "accepted" and "candidate" everywhere here ("baseline" is a variant name). The items that went
right -> wrong (graded or repeated: scored lower) are printed with their input and both outputs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis import stats
from harness.analysis.gate_runs import GateRun, item_inputs, load_gate_run, pick_variants, scoring_changes
from harness.errors import HarnessError
from harness.records import Record
from harness.report.format import interval, p_value, pct, pp

# Every rule of the gate, in the order it is checked; the names appear in the FAIL lines and in --json.
RULE_TEXT = {
    "incomplete": "the candidate run is not complete (its manifest status is not `completed`)",
    "missing-variant": "a variant with records in the accepted run has none in the candidate (skipped, missing, "
                       "renamed), unless --variant picks another or --allow-missing-variant NAME allows it",
    "scoring-changed": "the primary score, the scorers or the judge model differ between the runs, unless "
                       "--allow-scoring-change",
    "subset": "the candidate did not ask every item the accepted run asked (a shard, another --limit sample, "
              "fewer items), unless --allow-subset; nothing paired always fails",
    "unknown-scores": "the share of answers whose primary score is unknown (a judge that failed) exceeds the "
                      "accepted run's by more than {tol}, or no item has a known score on both sides",
    "error-rate": "the share of calls that got no answer exceeds the accepted run's by more than {tol}",
    "format-valid": "the format-valid rate is below the accepted run's by more than {tol}",
    "accuracy-drop": "accuracy ({primary}) dropped by more than {tol} and the drop is significant (p < "
                     "{alpha:g}) by a paired test on the per-item means over repeats: exact McNemar "
                     "when every item's value is 0 or 1, else a sign-flip test (exact up to "
                     f"{stats.SIGN_FLIP_EXACT_MAX} changed items, else {stats.SIGN_FLIP_RESAMPLES} seeded "
                     "resamples); unanswered items count as wrong",
}
OUTPUT_CHARS = 200


@dataclass
class Failure:
    rule: str  # a key of RULE_TEXT
    message: str
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
    reason: str = ""
    test: str | None = None  # the paired test behind p_value: "McNemar" or "sign-flip"
    p_bound: bool = False


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
    warnings: list[str] = field(default_factory=list)
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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("run_failures")
        for c, dc in zip(self.comparisons, d["comparisons"], strict=True):
            dc["failed"] = c.failed
        d["failures"] = [asdict(f) for f in self.failures]
        d["rules_fired"] = list(dict.fromkeys(f.rule for f in self.failures))
        d["failed"] = self.failed
        d["exit_code"] = self.exit_code
        return d


def _output(rec: Record | None) -> str | None:
    if rec is None:
        return None
    text = rec.raw_text if rec.error is None else f"error ({rec.error_kind}): {rec.error}"
    text = text or ""
    return text if len(text) <= OUTPUT_CHARS else text[:OUTPUT_CHARS] + "…"


def _error_rate(run: GateRun, variant: str) -> tuple[int, float | None]:
    recs = [r for r in run.records if r.variant == variant]
    return len(recs), (sum(1 for r in recs if r.error is not None) / len(recs) if recs else None)


def _p_text(p: float | None, bound: bool, resamples: int) -> str:
    return f"p < 1/{resamples}" if bound else f"p={p_value(p, sentence=True)}"


def _accuracy_delta(pr: stats.PairedResult, max_drop: float, alpha: float, common: int) -> MetricDelta:
    test = stats.TEST_NAMES.get(pr.test, pr.test)
    md = MetricDelta("accuracy", pr.n, pr.baseline, pr.candidate, pr.diff, pr.lo, pr.hi, pr.p_value, gated=True,
                     rule="accuracy-drop", test=test if pr.n else None, p_bound=pr.p_bound)
    if pr.diff is None:
        md.failed = True
        md.rule, md.reason = (("subset", "no item is in both runs: nothing was compared") if not common else
                              ("unknown-scores", "no item has a known primary score on both sides: accuracy "
                                                 "cannot be compared"))
        return md
    drop = -pr.diff
    significant = pr.p_value is not None and pr.p_value < alpha
    p = _p_text(pr.p_value, pr.p_bound, pr.resamples)
    if drop > max_drop and significant:
        md.failed = True
        md.reason = (f"dropped {pp(drop, signed=False)} (more than {pp(max_drop, signed=False)}) and the "
                     f"drop is significant ({test} {p} < {alpha:g})")
    elif drop > max_drop:
        md.reason = f"dropped {pp(drop, signed=False)} but not significantly ({test} {p} >= {alpha:g})"
    elif drop > 0:
        md.reason = f"dropped {pp(drop, signed=False)}, within the {pp(max_drop, signed=False)} tolerance"
    else:
        md.reason = "no drop"
    return md


def _rate_delta(metric: str, rule: str, n: int, acc: float | None, cand: float | None, max_drop: float, *,
                lo: float | None = None, hi: float | None = None, p: float | None = None,
                higher_is_worse: bool) -> MetricDelta:
    """A rate gated on the tolerance alone: a candidate that fails, breaks format or leaves scores unknown more
    often than the accepted run by more than the tolerance is not accepted, significant or not."""
    diff = cand - acc if acc is not None and cand is not None else None
    md = MetricDelta(metric, n, acc, cand, diff, lo, hi, p, gated=True, rule=rule)
    if diff is None:
        return md
    worse = diff if higher_is_worse else -diff
    what = "rose" if higher_is_worse else "dropped"
    if worse > max_drop:
        md.failed = True
        md.reason = f"{what} {pp(worse, signed=False)}, more than the {pp(max_drop, signed=False)} tolerance"
    elif worse > 0:
        md.reason = f"{what} {pp(worse, signed=False)}, within the {pp(max_drop, signed=False)} tolerance"
    else:
        md.reason = "no worse"
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


def compare_variant(acc: GateRun, cand: GateRun, name: str, *, max_drop: float, alpha: float,
                    allow_subset: bool = False) -> VariantComparison:
    ai, ci = acc.items.loc[name], cand.items.loc[name]
    ids_a, ids_c = acc.item_ids(name), cand.item_ids(name)
    acc_pair = stats.paired_compare(ai, ci, "correct")
    fmt = stats.paired_compare(ai, ci, "format_valid")
    (na, ea), (nc, ec) = _error_rate(acc, name), _error_rate(cand, name)
    (ua, aa), (uc, ac) = acc.unknown(name), cand.unknown(name)
    metrics = [
        _accuracy_delta(acc_pair, max_drop, alpha, len(ids_a & ids_c)),
        _rate_delta("format_valid", "format-valid", fmt.n, fmt.baseline, fmt.candidate, max_drop, lo=fmt.lo,
                    hi=fmt.hi, p=fmt.p_value, higher_is_worse=False),
        _rate_delta("error_rate", "error-rate", min(na, nc), ea, ec, max_drop, higher_is_worse=True),
        _rate_delta("unknown_rate", "unknown-scores", min(aa, ac), ua / aa if aa else None,
                    uc / ac if ac else None, max_drop, higher_is_worse=True),
    ]
    failures = []
    missing = sorted(ids_a - ids_c)
    if missing and not allow_subset:
        note = cand.selection_note()
        failures.append(Failure("subset", (
            f"the candidate asked {len(ids_a) - len(missing)} of the accepted run's {len(ids_a)} items "
            f"({len(missing)} missing, e.g. {', '.join(missing[:3])}){'; ' + note if note else ''}; compare a "
            "candidate that asked every item, or pass --allow-subset to compare the items both asked"), name))
    failures += [Failure(m.rule, f"{m.metric} {m.reason}", name) for m in metrics if m.failed]
    down, up = _changes(acc, cand, name, ai, ci)
    errored_a, errored_c = _unanswered_items(acc, name), _unanswered_items(cand, name)
    return VariantComparison(
        name, name, acc.model_id(name), cand.model_id(name), len(ids_a), acc_pair.n, len(missing),
        len(ids_c - ids_a), acc.repeats(name), cand.repeats(name), ua, aa, uc, ac,
        errored_in_candidate_only=len(errored_c - errored_a), errored_in_accepted_only=len(errored_a - errored_c),
        metrics=metrics, right_to_wrong=down, wrong_to_right=up, failures=failures)


def compare_runs(accepted_dir: Path, candidate_dir: Path, *, variant: str | None = None, max_drop: float = 0.02,
                 alpha: float = 0.05, allow_different_evalset: bool = False,
                 allow_missing_variant: str | list[str] | tuple[str, ...] = (), allow_subset: bool = False,
                 allow_scoring_change: bool = False) -> CompareResult:
    if not 0 <= max_drop <= 1:
        raise HarnessError(f"--max-drop {max_drop}: must be a share between 0 and 1 (0.02 = 2 percentage points)")
    if not 0 < alpha < 1:
        raise HarnessError(f"--alpha {alpha}: must be between 0 and 1 (e.g. 0.05)")
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
    result.candidate_status = cand.manifest.status
    if result.candidate_status != "completed":
        why = cand.manifest.message or "it did not finish"
        result.run_failures.append(Failure("incomplete", (
            f"the candidate run is not complete (status {result.candidate_status}: {why}); finish it with "
            f"`harness run --resume {candidate_dir}` and compare again")))
    names, missing = pick_variants(acc, cand, variant, list(allow_missing_variant))
    for m in missing:
        text = f"variant {m.variant} has records in the accepted run but none in the candidate ({m.reason})"
        if m.allowed:
            result.warnings.append(f"{text}; allowed by --allow-missing-variant")
        else:
            result.run_failures.append(Failure("missing-variant", (
                f"{text}; fix the candidate run, or pass --allow-missing-variant {m.variant} if it is meant to "
                "be gone"), m.variant))
    changes = scoring_changes(acc, cand)
    if changes and allow_scoring_change:
        result.warnings.append(f"the runs were scored differently ({'; '.join(changes)}); allowed by "
                               "--allow-scoring-change: accuracy may mean a different thing on each side")
    elif changes:
        result.run_failures.append(Failure("scoring-changed", (
            f"the runs were scored differently ({'; '.join(changes)}), so their accuracies measure different "
            "things; score both the same way, or pass --allow-scoring-change")))
    for name in names:
        result.comparisons.append(compare_variant(acc, cand, name, max_drop=max_drop, alpha=alpha,
                                                  allow_subset=allow_subset))
    return result


# -- output ------------------------------------------------------------------------------------------------

def rule_lines(result: CompareResult) -> list[str]:
    tol = pp(result.max_drop, signed=False)
    return [f"  {name}: " + text.format(tol=tol, alpha=result.alpha, primary=_primary_label(result.primary))
            for name, text in RULE_TEXT.items()]


def format_text(result: CompareResult, show: int = 20) -> str:
    out = [f"accepted  {result.accepted_run} (eval set {str(result.accepted_evalset_hash)[:12]})",
           f"candidate {result.candidate_run} (eval set {str(result.candidate_evalset_hash)[:12]})",
           "rules (exit 1 when one fires):", *rule_lines(result)]
    out += [f"warning: {w}" for w in result.warnings]
    if not result.evalset_match:
        out.append(f"warning: the eval sets differ; compared only items present in both "
                   f"({result.items_only_in_accepted} only in accepted, {result.items_only_in_candidate} only in "
                   "candidate)")
    out += [f"FAIL [{f.rule}] {f.message}" for f in result.run_failures]
    for c in result.comparisons:
        out += ["", *_variant_lines(c, show)]
    failed = [f.rule + (f" in variant {f.variant}" if f.variant else "") for f in result.failures]
    out += ["", f"result: FAIL ({'; '.join(dict.fromkeys(failed))})" if failed else
            "result: ok (no rule fired)"]
    return "\n".join(out)


def _variant_lines(c: VariantComparison, show: int) -> list[str]:
    out = [f"variant {c.candidate_variant}: {c.accepted_model_id} -> {c.candidate_model_id}; paired on "
           f"{c.paired_items} of {c.accepted_items} items; repeats: accepted {c.accepted_repeats}, candidate "
           f"{c.candidate_repeats}",
           f"  unknown primary scores: accepted {c.accepted_unknown} of {c.accepted_answers} answers, candidate "
           f"{c.candidate_unknown} of {c.candidate_answers}"]
    if c.items_not_in_candidate or c.items_only_in_candidate:
        out.append(f"  items: {c.items_not_in_candidate} of the accepted run's not asked by the candidate, "
                   f"{c.items_only_in_candidate} only in the candidate (not compared)")
    if c.errored_in_candidate_only or c.errored_in_accepted_only:
        out.append(f"  unanswered (counted as wrong): {c.errored_in_candidate_only} items only in the "
                   f"candidate, {c.errored_in_accepted_only} only in the accepted run")
    out += [f"  FAIL [{f.rule}] {f.message}" for f in c.failures if f.rule == "subset"]
    out.append(f"  {'metric':<13} {'accepted':>9} {'candidate':>9}  {'diff [95% CI]':<28} {'p':>7}  gate")
    for m in c.metrics:
        ci = f"{pp(m.diff)} {interval(m.lo, m.hi, diff=True, unit=True)}" if m.lo is not None else pp(m.diff)
        p = p_value(m.p_value, bound=m.p_bound)
        gate = (f"FAIL [{m.rule}]: " if m.failed else "ok: ") + m.reason
        out.append(f"  {m.metric:<13} {pct(m.accepted):>9} {pct(m.candidate):>9}  {ci:<28} {p:>7}  {gate}")
    graded = any(s not in (None, 0.0, 1.0) for ch in c.right_to_wrong + c.wrong_to_right
                 for s in (ch.accepted_score, ch.candidate_score))
    titles = ("scored lower", "scored higher") if graded else ("right -> wrong", "wrong -> right")
    for title, changes in zip(titles, (c.right_to_wrong, c.wrong_to_right), strict=True):
        out.append(f"  {title} ({len(changes)}):")
        for ch in changes[:show]:
            scores = f"  score {ch.accepted_score:.2f} -> {ch.candidate_score:.2f}" if graded else ""
            out.append(f"    {ch.item_id}  expected {json.dumps(ch.expected, ensure_ascii=False)}{scores}")
            if ch.input is not None:
                out.append(f"      input:     {_one_line(ch.input)}")
            out.append(f"      accepted:  {_one_line(ch.accepted_output)}"
                       f"{_repeat(ch.accepted_repeat, c.accepted_repeats)}")
            out.append(f"      candidate: {_one_line(ch.candidate_output)}"
                       f"{_repeat(ch.candidate_repeat, c.candidate_repeats)}")
        if len(changes) > show:
            out.append(f"    ... and {len(changes) - show} more (use --json for all)")
    return out


def _repeat(shown: int | None, repeats: int) -> str:
    return f"  (repeat {shown + 1} of {repeats})" if shown is not None and repeats > 1 else ""


def _primary_label(primary: str) -> str:
    return "exact / normalised match" if primary == "exact" else f"primary score {primary!r}"


def _one_line(s: str | None) -> str:
    return "-" if s is None else s.replace("\r", "\\r").replace("\n", "\\n")


def to_json(result: CompareResult) -> str:
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str)
