"""The regression gate: a candidate run against an accepted baseline run, item by item.

A gate on absolute thresholds flaps with noise; a gate on any drop flaps too. This one fails (exit 1) when:

- the candidate run is not complete (its manifest status is not `completed`);
- its error rate (calls that never got an answer) or its format-invalid rate is above the baseline's by more
  than the tolerance;
- its accuracy dropped by more than the tolerance *and* the drop is significant on the paired items (exact
  McNemar for a pass/fail score, the paired bootstrap for a graded 0..1 one).

"Accuracy" is the task's primary score (task.yaml `primary:`; default exact / normalised match): the gate
reads each record's `scores["primary"]`, so it works on whichever score the task made primary. Items whose
primary score is unknown (a judge that failed) on either side are left out of the pairing and counted.

Every item is in the comparison: an unanswered item counts as wrong, so failing can never pass the gate.
The items that went right -> wrong (graded: scored lower) are printed next to both outputs, so a failure is
readable.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis import stats
from harness.errors import HarnessError
from harness.records import Record
from harness.report.format import interval, p_value, pct, pp
from harness.runner.folder import load_run

RULE_TEXT = ("fail when the candidate run is not complete; when its error rate or format-invalid rate exceeds the "
             "baseline's by more than {tol}; or when accuracy ({primary}) drops by more than {tol} AND the drop is "
             "significant (p < {alpha:g}: exact McNemar for pass/fail scores, paired bootstrap for graded ones); "
             "unanswered items count as wrong")
TEST_NAMES = {"mcnemar": "McNemar", "bootstrap": "paired bootstrap"}
OUTPUT_CHARS = 200


@dataclass
class MetricDelta:
    metric: str
    n: int  # items in the comparison (paired items; for error_rate all items of each run)
    baseline: float | None
    candidate: float | None
    diff: float | None  # candidate - baseline
    lo: float | None
    hi: float | None
    p_value: float | None
    gated: bool
    failed: bool = False
    reason: str = ""


@dataclass
class ItemChange:
    item_id: str
    expected: Any
    baseline_output: str | None
    candidate_output: str | None
    baseline_score: float | None = None  # the item's primary score (mean over repeats)
    candidate_score: float | None = None


@dataclass
class VariantComparison:
    baseline_variant: str
    candidate_variant: str
    baseline_model_id: str | None
    candidate_model_id: str | None
    paired_items: int
    errored_in_candidate_only: int
    errored_in_baseline_only: int
    metrics: list[MetricDelta]
    right_to_wrong: list[ItemChange]
    wrong_to_right: list[ItemChange]
    failed: bool = False


@dataclass
class CompareResult:
    baseline_run: str
    candidate_run: str
    baseline_evalset_hash: str | None
    candidate_evalset_hash: str | None
    evalset_match: bool
    max_drop: float
    alpha: float
    items_only_in_baseline: int
    items_only_in_candidate: int
    comparisons: list[VariantComparison] = field(default_factory=list)
    candidate_status: str | None = None
    incomplete_reason: str = ""  # set when the candidate run is not complete: the gate fails on that alone
    primary: str = "exact"  # the score "accuracy" means (the candidate's task.yaml `primary:`)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.incomplete_reason) or any(c.failed for c in self.comparisons)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failed"] = self.failed
        d["exit_code"] = self.exit_code
        return d


@dataclass
class _Run:
    path: Path
    manifest: dict[str, Any]
    records: list[Record]
    items: pd.DataFrame
    first: dict[tuple[str, str], Record]  # (variant, item) -> stats.first_records

    def variants_with_answers(self) -> list[str]:
        present = set(self.items.index.get_level_values(0)) if len(self.items) else set()
        order = list(self.manifest.get("variants") or {}) + [r.variant for r in self.records]
        return [v for v in dict.fromkeys(order) if v in present]

    def kind(self, variant: str) -> str | None:
        return ((self.manifest.get("variants") or {}).get(variant) or {}).get("kind")

    def model_id(self, variant: str) -> str | None:
        info = (self.manifest.get("variants") or {}).get(variant) or {}
        if info.get("model_id"):
            return info["model_id"]
        return next((r.model_id for r in self.records if r.variant == variant), None)


def _load(path: Path) -> _Run:
    if not path.is_dir():
        raise HarnessError(f"{path}: run folder not found")
    manifest, records = load_run(path, compact=True)
    if not records:
        raise HarnessError(f"{path}: the run has no records (records.jsonl is missing or empty)")
    items = stats.item_outcomes(stats.outcomes_frame(records))
    return _Run(path, manifest, records, items, stats.first_records(records))


def _pick_variants(base: _Run, cand: _Run, variant: str | None) -> list[str]:
    b, c = base.variants_with_answers(), cand.variants_with_answers()
    if variant is not None:
        for run, names in ((base, b), (cand, c)):
            if variant not in names:
                skipped = ((run.manifest.get("variants") or {}).get(variant) or {}).get("skipped")
                why = f" (skipped: {skipped})" if skipped else ""
                raise HarnessError(f"--variant {variant}: no answered records in {run.path}{why}; "
                                   f"variants there: {', '.join(names) or 'none'}")
        return [variant]
    common = [v for v in c if v in b]
    fine_tuned = [v for v in common if cand.kind(v) == "fine_tuned" and base.kind(v) == "fine_tuned"]
    if fine_tuned:
        return fine_tuned
    if not common:
        raise HarnessError(f"no variant name is in both runs ({base.path}: {', '.join(b) or 'none'}; "
                           f"{cand.path}: {', '.join(c) or 'none'}); pick one that is with --variant")
    return common


def _output(rec: Record | None) -> str | None:
    if rec is None:
        return None
    text = rec.raw_text if rec.error is None else f"error ({rec.error_kind}): {rec.error}"
    text = text or ""
    return text if len(text) <= OUTPUT_CHARS else text[:OUTPUT_CHARS] + "…"


def _error_rate(run: _Run, variant: str) -> tuple[int, float | None]:
    recs = [r for r in run.records if r.variant == variant]
    return len(recs), (sum(1 for r in recs if r.error is not None) / len(recs) if recs else None)


def _accuracy_delta(pr: stats.PairedResult, max_drop: float, alpha: float) -> MetricDelta:
    md = MetricDelta("accuracy", pr.n, pr.baseline, pr.candidate, pr.diff, pr.lo, pr.hi, pr.p_value, gated=True)
    if pr.diff is None:
        return md
    drop = -pr.diff
    significant = pr.p_value is not None and pr.p_value < alpha
    test = TEST_NAMES.get(pr.test, pr.test)
    if drop > max_drop and significant:
        md.failed = True
        md.reason = (f"dropped {pp(drop, signed=False)} (more than {pp(max_drop, signed=False)}) and the "
                     f"drop is significant ({test} p={p_value(pr.p_value, sentence=True)} < {alpha:g})")
    elif drop > max_drop:
        md.reason = (f"dropped {pp(drop, signed=False)} but not significantly "
                     f"({test} p={p_value(pr.p_value, sentence=True)} >= {alpha:g})")
    elif drop > 0:
        md.reason = f"dropped {pp(drop, signed=False)}, within the {pp(max_drop, signed=False)} tolerance"
    else:
        md.reason = "no drop"
    return md


def _rate_delta(metric: str, n: int, base: float | None, cand: float | None, max_drop: float, *,
                lo: float | None = None, hi: float | None = None, p: float | None = None,
                higher_is_worse: bool) -> MetricDelta:
    """A rate gated on the tolerance alone: a candidate that fails or breaks format more often than the
    baseline by more than the tolerance is not accepted, significant or not."""
    diff = cand - base if base is not None and cand is not None else None
    md = MetricDelta(metric, n, base, cand, diff, lo, hi, p, gated=True)
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


def _unanswered_items(run: _Run, variant: str) -> set[str]:
    """Items none of whose repeats got an answer."""
    answered = {r.item_id for r in run.records if r.variant == variant and r.error is None}
    return {r.item_id for r in run.records if r.variant == variant} - answered


def compare_variant(base: _Run, cand: _Run, bname: str, cname: str, *, max_drop: float,
                    alpha: float) -> VariantComparison:
    bi, ci = base.items.loc[bname], cand.items.loc[cname]
    acc_pair = stats.paired_compare(bi, ci, "correct")
    fmt = stats.paired_compare(bi, ci, "format_valid")
    nb, eb = _error_rate(base, bname)
    nc, ec = _error_rate(cand, cname)
    metrics = [
        _accuracy_delta(acc_pair, max_drop, alpha),
        _rate_delta("format_valid", fmt.n, fmt.baseline, fmt.candidate, max_drop, lo=fmt.lo, hi=fmt.hi,
                    p=fmt.p_value, higher_is_worse=False),
        _rate_delta("error_rate", min(nb, nc), eb, ec, max_drop, higher_is_worse=True),
    ]
    cols = ["correct", "correct_rate"]
    joined = bi[cols].add_suffix("_b").join(ci[cols].add_suffix("_c"), how="inner").sort_index()
    joined = joined[joined["correct_rate_b"].notna() & joined["correct_rate_c"].notna()]
    graded = acc_pair.test == "bootstrap"
    changes: dict[str, list[ItemChange]] = {"r2w": [], "w2r": []}
    for item_id, row in joined.iterrows():
        sb, sc = float(row["correct_rate_b"]), float(row["correct_rate_c"])
        # pass/fail: the majority vote changed; graded: the item's score went down or up
        if (sb == sc) if graded else (row["correct_b"] == row["correct_c"]):
            continue
        rb, rc = base.first.get((bname, str(item_id))), cand.first.get((cname, str(item_id)))
        ch = ItemChange(str(item_id), (rb or rc).expected if (rb or rc) else None, _output(rb), _output(rc), sb, sc)
        changes["r2w" if ((sc < sb) if graded else row["correct_b"]) else "w2r"].append(ch)
    errored_b = _unanswered_items(base, bname)
    errored_c = _unanswered_items(cand, cname)
    return VariantComparison(
        bname, cname, base.model_id(bname), cand.model_id(cname), acc_pair.n,
        errored_in_candidate_only=len(errored_c - errored_b),
        errored_in_baseline_only=len(errored_b - errored_c),
        metrics=metrics, right_to_wrong=changes["r2w"], wrong_to_right=changes["w2r"],
        failed=any(m.failed for m in metrics),
    )


def compare_runs(baseline_dir: Path, candidate_dir: Path, *, variant: str | None = None, max_drop: float = 0.02,
                 alpha: float = 0.05, allow_different_evalset: bool = False) -> CompareResult:
    if not 0 <= max_drop <= 1:
        raise HarnessError(f"--max-drop {max_drop}: must be a share between 0 and 1 (0.02 = 2 percentage points)")
    if not 0 < alpha < 1:
        raise HarnessError(f"--alpha {alpha}: must be between 0 and 1 (e.g. 0.05)")
    base, cand = _load(Path(baseline_dir)), _load(Path(candidate_dir))
    hb = (base.manifest.get("evalset") or {}).get("content_hash")
    hc = (cand.manifest.get("evalset") or {}).get("content_hash")
    match = hb == hc and hb is not None
    if not match and not allow_different_evalset:
        raise HarnessError(f"eval sets differ ({baseline_dir}: {str(hb)[:12]}, {candidate_dir}: {str(hc)[:12]}); the "
                           "runs are not comparable — pass --allow-different-evalset to compare the items they "
                           "share by id")
    ids_b = {r.item_id for r in base.records}
    ids_c = {r.item_id for r in cand.records}
    result = CompareResult(str(baseline_dir), str(candidate_dir), hb, hc, match, max_drop, alpha,
                           len(ids_b - ids_c), len(ids_c - ids_b))
    result.primary = _primary(cand.manifest)
    if _primary(base.manifest) != result.primary:
        result.warnings.append(f"the runs' primary scores differ (baseline {_primary(base.manifest)}, candidate "
                               f"{result.primary}): accuracy means a different score on each side")
    result.candidate_status = cand.manifest.get("status")
    if result.candidate_status != "completed":
        why = cand.manifest.get("message") or "it did not finish"
        result.incomplete_reason = (f"the candidate run is not complete (status {result.candidate_status}: {why}); "
                                    f"finish it with `harness run --resume {candidate_dir}` and compare again")
    for name in _pick_variants(base, cand, variant):
        result.comparisons.append(compare_variant(base, cand, name, name, max_drop=max_drop, alpha=alpha))
    return result


def _primary(manifest: dict[str, Any]) -> str:
    return (manifest.get("scoring") or {}).get("primary") or "exact"


# -- output ------------------------------------------------------------------------------------------------

def format_text(result: CompareResult, show: int = 20) -> str:
    out = [f"baseline  {result.baseline_run} (eval set {str(result.baseline_evalset_hash)[:12]})",
           f"candidate {result.candidate_run} (eval set {str(result.candidate_evalset_hash)[:12]})",
           "rule: " + RULE_TEXT.format(tol=pp(result.max_drop, signed=False), alpha=result.alpha,
                                       primary=_primary_label(result.primary))]
    out += [f"warning: {w}" for w in result.warnings]
    if result.incomplete_reason:
        out.append(f"FAIL: {result.incomplete_reason}")
    if not result.evalset_match:
        out.append(f"warning: the eval sets differ; compared only items present in both "
                   f"({result.items_only_in_baseline} only in baseline, {result.items_only_in_candidate} only in "
                   "candidate)")
    for c in result.comparisons:
        out += ["", f"variant {c.candidate_variant}: {c.baseline_model_id} -> {c.candidate_model_id}, "
                    f"{c.paired_items} paired items"]
        if c.errored_in_candidate_only or c.errored_in_baseline_only:
            out.append(f"  unanswered (counted as wrong): {c.errored_in_candidate_only} items only in the "
                       f"candidate, {c.errored_in_baseline_only} only in the baseline")
        out.append(f"  {'metric':<13} {'baseline':>9} {'candidate':>9}  {'diff [95% CI]':<28} {'p':>7}  gate")
        for m in c.metrics:
            ci = f"{pp(m.diff)} {interval(m.lo, m.hi, diff=True, unit=True)}" if m.lo is not None else pp(m.diff)
            p = p_value(m.p_value)
            gate = ("FAIL: " if m.failed else "ok: ") + m.reason if m.gated else m.reason
            out.append(f"  {m.metric:<13} {pct(m.baseline):>9} {pct(m.candidate):>9}  {ci:<28} {p:>7}  {gate}")
        graded = any(ch.baseline_score not in (None, 0.0, 1.0) or ch.candidate_score not in (None, 0.0, 1.0)
                     for ch in c.right_to_wrong + c.wrong_to_right)
        titles = ("scored lower", "scored higher") if graded else ("right -> wrong", "wrong -> right")
        for title, changes in zip(titles, (c.right_to_wrong, c.wrong_to_right), strict=True):
            out.append(f"  {title} ({len(changes)}):")
            for ch in changes[:show]:
                scores = f"  score {ch.baseline_score:.2f} -> {ch.candidate_score:.2f}" if graded else ""
                out.append(f"    {ch.item_id}  expected {json.dumps(ch.expected, ensure_ascii=False)}{scores}")
                out.append(f"      baseline:  {_one_line(ch.baseline_output)}")
                out.append(f"      candidate: {_one_line(ch.candidate_output)}")
            if len(changes) > show:
                out.append(f"    ... and {len(changes) - show} more (use --json for all)")
    failed = [f"{c.candidate_variant} {m.metric}" for c in result.comparisons for m in c.metrics if m.failed]
    if result.incomplete_reason:
        failed.insert(0, f"candidate run {result.candidate_status}")
    out += ["", f"result: FAIL ({', '.join(failed)})" if failed else "result: ok (no significant drop beyond the "
                                                                       "tolerance)"]
    return "\n".join(out)


def _primary_label(primary: str) -> str:
    return "exact / normalised match" if primary == "exact" else f"primary score {primary!r}"


def _one_line(s: str | None) -> str:
    return "-" if s is None else s.replace("\r", "\\r").replace("\n", "\\n")


def to_json(result: CompareResult) -> str:
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str)
