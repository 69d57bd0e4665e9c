"""Records -> one summary row per variant: counts, rates with Wilson intervals, the paired comparison
against the baseline variant, repeat spread and costs. The tables and the report are built from this
(harness.report); everything here is rebuildable at any time from the run folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.analysis import clusters as cl
from harness.analysis import ppi, stats
from harness.analysis.agreement import add_agreement
from harness.analysis.costs import apply_costs
from harness.analysis.economics import baseline_variant
from harness.numbers import is_missing
from harness.records import Record
from harness.rundir.manifest import Manifest
from harness.scoring.scorers import summarize

CORE_COLUMNS = [
    "variant", "kind", "model", "model_id", "status", "n", "errors", "format_valid", "json_extractable",
    "accuracy", "accuracy_lenient", "cost_per_request_usd", "cost_per_1k_usd", "cost_per_correct_usd",
    "latency_p50_s", "latency_p95_s", "prompt_tokens_mean", "completion_tokens_mean",
    "reasoning_tokens_mean",
]

# Columns the statistics add (always present, so CI scripts can rely on them).
STATS_COLUMNS = [
    "items", "repeats", "format_valid_lo", "format_valid_hi", "accuracy_lo", "accuracy_hi",
    "accuracy_majority", "repeat_disagreement", "accuracy_repeat_std",
    "vs_variant", "paired_n", "accuracy_diff", "accuracy_diff_lo", "accuracy_diff_hi", "accuracy_p",
    "accuracy_p_holm", "right_to_wrong", "wrong_to_right", "format_valid_diff", "format_valid_diff_lo", "format_valid_diff_hi",
    "format_valid_p", "accuracy_test", "format_valid_p_holm", "comparisons",
]


# Where the primary score is a judge's and people scored some answers (harness.analysis.ppi): the judge-corrected
# accuracy beside the raw one. Present only then, so other runs' summary.csv keep their columns.
PPI_COLUMNS = ["accuracy_ppi", "accuracy_ppi_lo", "accuracy_ppi_hi", "ppi_labels"]

INT_COLUMNS = ["items", "repeats", "paired_n", "comparisons", "right_to_wrong", "wrong_to_right", "not_asked", "refused",
               "empty_answers", "content_filtered", "unparseable"]
# Last in summary.csv, so the columns before them keep their places: the bad answers by cause (see
# scoring.scorers.bad_answer_counts), whether the variant answered every selected item x repeat (not skipped,
# nothing unanswered, nothing left unasked), and how many selected calls it never made.
TRAILING_COLUMNS = ["refused", "empty_answers", "content_filtered", "unparseable", "complete", "not_asked"]
# Present only where some test items have no expected answer (harness.scoring.scorers.summarize): the items
# accuracy is over, and those scored by agreement with the reference alone.
LABEL_COUNT_COLUMNS = ["accuracy_items", "unlabelled"]


@dataclass
class Analysis:
    """Everything the tables and the report are built from, computed once."""

    manifest: Manifest
    config: dict[str, Any]
    records: list[Record]
    df: pd.DataFrame
    frame: pd.DataFrame  # one row per record (stats.outcomes_frame)
    items: pd.DataFrame  # one row per (variant, item) (stats.item_outcomes)
    baseline: str | None
    agreement: list[dict[str, Any]] = field(default_factory=list)  # judge–human agreement (scoring.judge)


def analyse(manifest: Manifest, records: list[Record], config: dict[str, Any] | None = None, *,
            calibration: list[dict[str, Any]] | None = None) -> Analysis:
    """`calibration`: the judge's grades of human-scored answers (judge_human.jsonl), for the judge-corrected
    (PPI) accuracy when the primary score is a judge's."""
    label_fields = manifest.label_fields
    by_variant: dict[str, list[Record]] = {}
    for r in records:
        by_variant.setdefault(r.variant, []).append(r)
    variants = manifest.variants
    # a variant selected but never planned (a run killed while planning) is a row too: nothing of it was asked
    selected = [v for v in manifest.selected_variants or [] if v not in variants]
    order = list(dict.fromkeys([*variants, *selected, *by_variant]))
    calls = selected_calls(manifest, config, records)
    frame = stats.outcomes_frame(records, manifest.clusters.items if manifest.clusters is not None else None)
    items = stats.item_outcomes(frame)
    labels = ppi.labels_of(calibration or [], manifest)
    with_items = set(items.index.get_level_values(0)) if len(items) else set()
    present = [v for v in order if v in with_items]
    base = baseline_variant(manifest, present)
    rows = []
    for name in order:
        info = manifest.variant(name)
        recs = by_variant.get(name, [])
        row: dict[str, Any] = {
            "variant": name,
            "kind": info.kind,
            "model": info.model or (recs[0].model if recs else None),
            "model_id": info.model_id or (recs[0].model_id if recs else None),
            "status": f"skipped: {info.skipped}" if info.skipped else "ok",
        }
        not_asked = None if info.skipped or calls is None else max(calls - len(recs), 0)
        if not info.skipped and (not_asked or any(r.error is not None for r in recs)):
            row["status"] = incomplete_note({"n": len(recs), "errors": sum(1 for r in recs if r.error is not None),
                                             "not_asked": not_asked, "repeats": _repeats(config, records)})
        if recs:
            expected = {r.item_id: r.expected for r in recs}
            row.update(summarize(recs, label_fields, expected, manifest.scoring.model_dump(mode="json")))
            row["price_basis"] = info.price.basis if info.price is not None else None
            row["structured_output"] = info.structured_output
            row.update(_interval_columns(row, frame, items, name))
            if base is not None and name != base and name in with_items:
                row.update(_paired_columns(items, base, name))
            row.update(_ppi_columns(frame, name, labels))
        row["complete"] = row["status"] == "ok"
        row["not_asked"] = not_asked
        rows.append(row)
    _holm_columns(rows)
    df = pd.DataFrame(rows)
    for col in CORE_COLUMNS + STATS_COLUMNS + TRAILING_COLUMNS:
        if col not in df.columns:
            df[col] = None
    df = apply_costs(df, frame, manifest, config)
    own_reference = manifest.reference.variant if manifest.reference and manifest.reference.run is None else None
    df = add_agreement(df, records, own_reference, base)
    # counts stay integers in summary.csv even where a row has none
    for col in INT_COLUMNS + [c for c in LABEL_COUNT_COLUMNS if c in df.columns]:
        df[col] = pd.array([None if is_missing(v) else int(v) for v in df[col]], dtype="Int64")
    rest = [c for c in df.columns if c not in CORE_COLUMNS and c not in TRAILING_COLUMNS]
    rest += TRAILING_COLUMNS
    return Analysis(manifest, config or {}, records, df[CORE_COLUMNS + rest], frame, items, base)


def incomplete_note(row: dict[str, Any]) -> str:
    """e.g. "incomplete: 30 of 60 items not asked" or "incomplete: 12 of 140 unanswered" — said wherever the
    variant's accuracy is shown. `n` counts the records (calls asked), `not_asked` the selected calls without one."""
    parts = []
    not_asked = row.get("not_asked") or 0
    if not_asked:
        total = row["n"] + not_asked
        what = "items" if (row.get("repeats") or 1) == 1 else f"calls ({total // row['repeats']} items x {row['repeats']} repeats)"
        parts.append(f"{not_asked} of {total} {what} not asked")
    if row.get("errors"):
        parts.append(f"{row['errors']} of {row['n']} unanswered")
    return "incomplete: " + ", ".join(parts)


def selected_calls(manifest: Manifest, config: dict[str, Any] | None, records: list[Record]) -> int | None:
    """How many calls each variant should make: the items the run selected (its shard's share, for a shard)
    times the repeats; None where the folder does not say (a shard killed before its item count was written).
    A run folder from before `selection` existed has one by migration (harness.rundir.manifest)."""
    if manifest.shard is not None:
        items = manifest.shard.items
    elif manifest.sequential is not None and manifest.sequential.holds_selection:
        items = manifest.sequential.asked_items  # settled: the items not asked were not meant to be
    else:
        items = manifest.selection.items if manifest.selection is not None else None
    return None if items is None else int(items) * _repeats(config, records)


def _repeats(config: dict[str, Any] | None, records: list[Record]) -> int:
    repeats = ((config or {}).get("run") or {}).get("repeats")
    if repeats is None:  # no config.json: the repeats the records show
        repeats = max((r.repeat for r in records), default=0) + 1
    return int(repeats)


def _interval_columns(row: dict[str, Any], frame: pd.DataFrame, items: pd.DataFrame, name: str) -> dict[str, Any]:
    """95% intervals whose unit is the item (or its declared cluster), never the record: repeats of one item are
    not independent evidence, so they must not narrow the interval. One record per item and no clusters: the
    Wilson interval over the items; with repeats or clusters: the cluster-robust one (harness.analysis.clusters),
    which is Wilson's at the effective sample size."""
    spread = stats.repeat_spread(frame, items, name)
    out: dict[str, Any] = {"items": spread.items, "repeats": spread.repeats,
                           "accuracy_majority": spread.accuracy_majority,
                           "repeat_disagreement": spread.disagreement, "accuracy_repeat_std": spread.accuracy_std}
    its = items.loc[name] if name in items.index.get_level_values(0) else items.iloc[0:0]
    known = int(its["correct_rate"].notna().sum()) if len(its) else 0
    sub = frame[frame["variant"] == name]
    units = (sub["cluster"] if "cluster" in sub.columns else sub["item_id"]).astype(str)
    clustered = cl.is_clustered(units.to_numpy())
    for metric, n, col in (("format_valid", spread.items, "format_valid"), ("accuracy", known, "correct")):
        p = row.get(metric)
        if clustered and p is not None:
            keep = sub[col].notna().to_numpy()
            ci = cl.share_interval(sub[col].to_numpy(dtype=float)[keep], units.to_numpy()[keep])
        else:
            # For a graded (0..1) primary this Wilson interval is conservative: a variable in 0..1 with mean p has
            # at most the variance p(1-p) of a pass/fail one.
            ci = stats.wilson(p * n, n) if p is not None and n else None
        out[f"{metric}_lo"], out[f"{metric}_hi"] = ci if ci else (None, None)
    return out


def _paired_columns(items: pd.DataFrame, base: str, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"vs_variant": base}
    acc = stats.paired_compare(items.loc[base], items.loc[name], "correct")
    fmt = stats.paired_compare(items.loc[base], items.loc[name], "format_valid")
    out["paired_n"] = acc.n
    out["accuracy_diff"], out["accuracy_diff_lo"], out["accuracy_diff_hi"] = acc.diff, acc.lo, acc.hi
    out["accuracy_p"] = acc.p_value
    out["accuracy_p_holm"] = None  # filled by _holm_columns once every variant is compared
    out["accuracy_test"] = acc.test
    if acc.clusters:
        out["paired_clusters"] = acc.clusters
    if acc.unknown:
        out["paired_unknown"] = acc.unknown
    out["right_to_wrong"], out["wrong_to_right"] = acc.right_to_wrong, acc.wrong_to_right
    out["format_valid_diff"], out["format_valid_diff_lo"], out["format_valid_diff_hi"] = fmt.diff, fmt.lo, fmt.hi
    out["format_valid_p"] = fmt.p_value
    out["format_valid_p_holm"] = None
    return out


def _holm_columns(rows: list[dict[str, Any]]) -> None:
    """Holm-adjusted p-values over the variants compared with the baseline (one family per metric); the raw
    p-value stays in its column. `comparisons`: how many tests the accuracy family holds."""
    compared = [r for r in rows if "accuracy_p" in r]
    for metric in ("accuracy", "format_valid"):
        adjusted = stats.holm([r.get(f"{metric}_p") for r in compared])
        for r, q in zip(compared, adjusted, strict=True):
            r[f"{metric}_p_holm"] = q
    family = sum(1 for r in compared if r.get("accuracy_p") is not None)
    for r in compared:
        r["comparisons"] = family


def _ppi_columns(frame: pd.DataFrame, name: str, labels: ppi.Labels | None) -> dict[str, Any]:
    est = ppi.variant_ppi(frame, name, labels)
    if est is None:
        return {}
    return {"accuracy_ppi": est.estimate, "accuracy_ppi_lo": est.lo, "accuracy_ppi_hi": est.hi,
            "ppi_labels": est.n_labelled}
