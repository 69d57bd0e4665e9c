"""The regression gate in words: what each rule checks, each failure's message, each metric's reason, the text
`harness compare` prints and its --json, all from the numbers and facts harness.analysis.compare returns.

`GateReport` is the gate's result with its words (`to_dict()`, `text()`): what the Python API's
`harness.compare` returns."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from harness.analysis import stats
from harness.analysis.compare import (
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
from harness.report.format import interval, p_value, pct, pp

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
                     "resamples; on the clusters' summed differences when task.yaml declares `cluster:`); "
                     "unanswered items count as wrong; with several variants compared the p-values are "
                     "Holm-adjusted over them{ppi}",
    "agreement-drop": "agreement with the reference dropped by more than {tol} and the drop is significant (p < "
                      "{alpha:g}) by the same paired test as accuracy, on the items the reference answered "
                      "(`harness compare --metric agreement`; the default when the items have no expected answers)",
}


def metric_reason(m: MetricDelta, max_drop: float, alpha: float) -> str:
    """Why a gated metric passed or failed: "dropped 5.0 pp (more than 2.0 pp) and the drop is significant ..."."""
    worse, tol = pp(m.worse, signed=False), pp(max_drop, signed=False)
    what = "rose" if m.higher_is_worse else "dropped"
    p = f"p < 1/{m.resamples}" if m.p_bound else f"p={p_value(m.p_value, sentence=True)}"
    if m.p_adjusted is not None:
        p = f"{p}, Holm-adjusted over {m.comparisons} variants p={p_value(m.p_adjusted, sentence=True)}"
    return {
        Verdict.UNCOMPARED: "",
        Verdict.NOTHING_PAIRED: "no item is in both runs: nothing was compared",
        Verdict.NO_KNOWN_PAIR: "no item has a known primary score on both sides: accuracy cannot be compared",
        Verdict.SIGNIFICANT_DROP: f"dropped {worse} (more than {tol}) and the drop is significant ({m.test} {p} < "
                                  f"{alpha:g})",
        Verdict.INSIGNIFICANT_DROP: f"dropped {worse} but not significantly ({m.test} {p} >= {alpha:g})",
        Verdict.BEYOND_TOLERANCE: f"{what} {worse}, more than the {tol} tolerance",
        Verdict.WITHIN_TOLERANCE: f"{what} {worse}, within the {tol} tolerance",
        Verdict.NO_DROP: "no drop",
        Verdict.NO_WORSE: "no worse",
    }[m.verdict]


def _missing_text(m: MissingVariant) -> str:
    return f"variant {m.variant} has records in the accepted run but none in the candidate ({m.reason})"


def failure_message(f: Failure, result: CompareResult) -> str:
    """One failure as `FAIL [rule] ...` and --json's `message` say it: what happened and what to do."""
    x = f.facts
    if isinstance(x, Incomplete):
        return (f"the candidate run is not complete (status {x.status}: {x.message or 'it did not finish'}); finish "
                f"it with `harness run --resume {x.run}` and compare again")
    if isinstance(x, MissingVariant):
        return (f"{_missing_text(x)}; fix the candidate run, or pass --allow-missing-variant {x.variant} if it is "
                "meant to be gone")
    if isinstance(x, ScoringChanged):
        return (f"the runs were scored differently ({'; '.join(x.changes)}), so their accuracies measure different "
                "things; score both the same way, or pass --allow-scoring-change")
    if isinstance(x, Subset):
        note = f"; {x.selection}" if x.selection else ""
        return (f"the candidate asked {x.asked} of the accepted run's {x.accepted_items} items ({len(x.missing)} "
                f"missing, e.g. {', '.join(x.missing[:3])}){note}; compare a candidate that asked every item, or "
                "pass --allow-subset to compare the items both asked")
    return f"{x.metric} {metric_reason(x, result.max_drop, result.alpha)}"


def warning_text(w: MissingVariant | ScoringChanged) -> str:
    """A rule that fired but was allowed by its flag."""
    if isinstance(w, ScoringChanged):
        return (f"the runs were scored differently ({'; '.join(w.changes)}); allowed by --allow-scoring-change: "
                "accuracy may mean a different thing on each side")
    return f"{_missing_text(w)}; allowed by --allow-missing-variant"


# -- --json ------------------------------------------------------------------------------------------------

_METRIC_ONLY = ("worse", "higher_is_worse", "resamples")  # numbers behind the reason, not in --json


def _failure_dict(f: Failure, result: CompareResult) -> dict[str, Any]:
    return {"rule": f.rule, "message": failure_message(f, result), "variant": f.variant}


def _metric_dict(m: MetricDelta, result: CompareResult) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fl in fields(m):
        if fl.name == "verdict":
            out["reason"] = metric_reason(m, result.max_drop, result.alpha)
        elif fl.name not in _METRIC_ONLY:
            out[fl.name] = getattr(m, fl.name)
    return out


def _comparison_dict(c: VariantComparison, result: CompareResult) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fl in fields(c):
        v = getattr(c, fl.name)
        if fl.name == "metrics":
            out[fl.name] = [_metric_dict(m, result) for m in v]
        elif fl.name == "failures":
            out[fl.name] = [_failure_dict(f, result) for f in v]
        elif fl.name in ("right_to_wrong", "wrong_to_right"):
            out[fl.name] = [asdict(ch) for ch in v]
        else:
            out[fl.name] = v
    out["failed"] = c.failed
    return out


def gate_dict(result: CompareResult) -> dict[str, Any]:
    """What `harness compare --json` prints: every number, each failure with its message and the rules fired."""
    d: dict[str, Any] = {}
    for fl in fields(result):
        v = getattr(result, fl.name)
        if fl.name == "comparisons":
            d[fl.name] = [_comparison_dict(c, result) for c in v]
        elif fl.name == "warnings":
            d[fl.name] = [warning_text(w) for w in v]
        elif fl.name != "run_failures":
            d[fl.name] = v
    d["failures"] = [_failure_dict(f, result) for f in result.failures]
    d["rules_fired"] = list(dict.fromkeys(f.rule for f in result.failures))
    d["failed"] = result.failed
    d["exit_code"] = result.exit_code
    return d


def to_json(result: CompareResult) -> str:
    return json.dumps(gate_dict(result), indent=2, ensure_ascii=False, default=str)


# -- text --------------------------------------------------------------------------------------------------

def rule_lines(result: CompareResult) -> list[str]:
    tol = pp(result.max_drop, signed=False)
    ppi = ("; --metric ppi: on the judge-corrected (prediction-powered) accuracy, a z-test on its difference"
           if result.metric == "ppi" else "")
    return [f"  {name}: " + text.format(tol=tol, alpha=result.alpha, primary=_primary_label(result.primary), ppi=ppi)
            for name, text in RULE_TEXT.items()]


def format_text(result: CompareResult, show: int = 20) -> str:
    out = [f"accepted  {result.accepted_run} (eval set {str(result.accepted_evalset_hash)[:12]})",
           f"candidate {result.candidate_run} (eval set {str(result.candidate_evalset_hash)[:12]})",
           "rules (exit 1 when one fires):", *rule_lines(result)]
    out += [f"warning: {warning_text(w)}" for w in result.warnings]
    if not result.evalset_match:
        out.append(f"warning: the eval sets differ; compared only items present in both "
                   f"({result.items_only_in_accepted} only in accepted, {result.items_only_in_candidate} only in "
                   "candidate)")
    out += [f"FAIL [{f.rule}] {failure_message(f, result)}" for f in result.run_failures]
    for c in result.comparisons:
        out += ["", *_variant_lines(c, result, show)]
    failed = [f.rule + (f" in variant {f.variant}" if f.variant else "") for f in result.failures]
    out += ["", f"result: FAIL ({'; '.join(dict.fromkeys(failed))})" if failed else
            "result: ok (no rule fired)"]
    return "\n".join(out)


def _variant_lines(c: VariantComparison, result: CompareResult, show: int) -> list[str]:
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
    out += [f"  FAIL [{f.rule}] {failure_message(f, result)}" for f in c.failures if f.rule == "subset"]
    out.append(f"  {'metric':<13} {'accepted':>9} {'candidate':>9}  {'diff [95% CI]':<28} {'p':>7}  gate")
    if any(m.p_adjusted is not None for m in c.metrics):
        out.append(f"  (H: p Holm-adjusted over the {c.metrics[0].comparisons} variants compared)")
    for m in c.metrics:
        ci = f"{pp(m.diff)} {interval(m.lo, m.hi, diff=True, unit=True)}" if m.lo is not None else pp(m.diff)
        p = p_value(m.p_gate, bound=m.p_bound) + (" H" if m.p_adjusted is not None else "")
        gate = (f"FAIL [{m.rule}]: " if m.failed else "ok: ") + metric_reason(m, result.max_drop, result.alpha)
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


@dataclass
class GateReport(CompareResult):
    """The gate's result with its words: `to_dict()` is what `harness compare --json` prints, `text()` what it
    prints without --json, `message(failure)` one failure's message."""

    @classmethod
    def of(cls, result: CompareResult) -> GateReport:
        return cls(**{fl.name: getattr(result, fl.name) for fl in fields(result)})

    def to_dict(self) -> dict[str, Any]:
        return gate_dict(self)

    def to_json(self) -> str:
        return to_json(self)

    def text(self, show: int = 20) -> str:
        return format_text(self, show)

    def message(self, failure: Failure) -> str:
        return failure_message(failure, self)
