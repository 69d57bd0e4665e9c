"""Agreement with the reference in the summary table: the same statistics as accuracy (a Wilson interval over the
items, the paired bootstrap and McNemar / sign-flip test of harness.analysis.stats), read from each record's
`scores.agreement` (harness.scoring.reference) instead of its primary score.

Columns per variant (None where they do not apply; the reference's own row has `agreement_role` "reference"):
- `agreement` (+ `_lo`, `_hi`): mean agreement over the records with a reference answer (a call that got no
  answer counts 0), `agreement_items` the items in it, `agreement_no_reference` the items left out because the
  reference did not answer them, `agreement_unknown` the records whose agreement could not be told (a judge that
  failed); `agree_<field>` per field of the reference's answer;
- `agreement_vs`, `agreement_paired_n`, `agreement_diff` (+ `_lo`, `_hi`), `agreement_p`, `agreement_test`: the
  paired comparison on agreement against the baseline variant (or, when the baseline is the reference, the first
  variant with an agreement).
A variant whose items carry no expected answer has accuracy "not measured" (`labelled` False): its accuracy
columns are emptied rather than shown as 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.analysis import stats
from harness.errors import HarnessError
from harness.records import Record
from harness.scoring.labels import labelled
from harness.scoring.scorers import AGREEMENT

# Emptied for a variant none of whose items has an expected answer: accuracy is not measured, not 0.
ACCURACY_COLUMNS = (
    "accuracy", "accuracy_lo", "accuracy_hi", "accuracy_lenient", "accuracy_answered", "accuracy_exact",
    "accuracy_majority", "accuracy_repeat_std", "accuracy_unknown", "accuracy_diff", "accuracy_diff_lo",
    "accuracy_diff_hi", "accuracy_p", "accuracy_test", "right_to_wrong", "wrong_to_right", "cost_per_correct_usd",
    "paired_n", "paired_unknown",
)


def labelled_record(r: Record) -> bool:
    """Whether a record measures accuracy (harness.scoring.scorers.labelled)."""
    return labelled(r)


def label_counts(df: pd.DataFrame) -> tuple[int, int]:
    """(test items without an expected answer, test items) where only some have one (the summary's `unlabelled`
    and `accuracy_items`), else (0, 0)."""
    if "unlabelled" not in df.columns:
        return 0, 0
    rows = df[pd.to_numeric(df["unlabelled"], errors="coerce").fillna(0) > 0]
    if rows.empty:
        return 0, 0
    unlabelled, labelled_items = int(rows["unlabelled"].max()), int(rows["accuracy_items"].max())
    return unlabelled, unlabelled + labelled_items


def agreement_frame(records: list[Record]) -> pd.DataFrame:
    """One row per record scored against a reference answer: its agreement (NaN when unknown) in `correct`, so
    stats.item_outcomes and stats.paired_compare read it as they read accuracy. Records the reference did not
    answer are not rows (excluded from agreement only)."""
    rows = []
    for r in records:
        score = r.scores.get(AGREEMENT)
        if score is None or score.detail.get("reference_missing"):
            continue
        value = np.nan if score.value is None else float(score.value)
        rows.append((r.variant, r.item_id, r.repeat, value, bool(r.format_valid)))
    return pd.DataFrame(rows, columns=["variant", "item_id", "repeat", "correct", "format_valid"])


def _field_agreement(recs: list[Record]) -> dict[str, float]:
    """agree_<field>: the share of records (with a reference answer) whose field matches the reference's."""
    scored = [r.scores[AGREEMENT] for r in recs if AGREEMENT in r.scores
              and not r.scores[AGREEMENT].detail.get("reference_missing")]
    names = sorted({f for s in scored for f in (s.detail.get("fields") or {})})
    out: dict[str, float] = {}
    for f in names:
        hits = [bool((s.detail.get("fields") or {}).get(f)) for s in scored
                if f in (s.detail.get("fields") or {}) or s.value == 0.0 and "fields" not in s.detail]
        if hits:
            out[f"agree_{f}"] = sum(hits) / len(hits)
    return out


def _variant_row(recs: list[Record], items: pd.DataFrame, name: str) -> dict[str, Any]:
    scored = [r for r in recs if AGREEMENT in r.scores]
    if not scored:
        return {}
    first = scored[0].scores[AGREEMENT].detail
    included = [r for r in scored if not r.scores[AGREEMENT].detail.get("reference_missing")]
    values = [r.scores[AGREEMENT].value for r in included]
    known = [float(v) for v in values if v is not None]
    its = items.loc[name] if name in items.index.get_level_values(0) else items.iloc[0:0]
    n_items = int(its["correct_rate"].notna().sum()) if len(its) else 0
    mean = sum(known) / len(known) if known else None
    ci = stats.wilson(mean * n_items, n_items) if mean is not None and n_items else None
    all_items = {r.item_id for r in scored}
    row: dict[str, Any] = {
        "agreement_with": first.get("reference"), "agreement_run": first.get("run"),
        "agreement_role": "candidate", "agreement": mean,
        "agreement_lo": ci[0] if ci else None, "agreement_hi": ci[1] if ci else None,
        "agreement_items": len({r.item_id for r in included}), "agreement_of_items": len(all_items),
        "agreement_no_reference": len(all_items - {r.item_id for r in included}),
        "agreement_unknown": len(values) - len(known),
    }
    row.update(_field_agreement(scored))
    return row


def _paired(items: pd.DataFrame, vs: str, name: str) -> dict[str, Any]:
    pr = stats.paired_compare(items.loc[vs], items.loc[name], "correct")
    return {"agreement_vs": vs, "agreement_paired_n": pr.n, "agreement_diff": pr.diff, "agreement_diff_lo": pr.lo,
            "agreement_diff_hi": pr.hi, "agreement_p": pr.p_value, "agreement_test": pr.test if pr.n else None}


def agreement_rows(records: list[Record], order: list[str], reference: str | None,
                   baseline: str | None) -> dict[str, dict[str, Any]]:
    """{variant: its agreement columns} (see the module docstring); {} when no record has an agreement."""
    if not any(AGREEMENT in r.scores for r in records):
        return {}
    by_variant: dict[str, list[Record]] = {}
    for r in records:
        by_variant.setdefault(r.variant, []).append(r)
    items = stats.item_outcomes(agreement_frame(records))
    out = {name: _variant_row(by_variant.get(name, []), items, name) for name in order}
    with_items = set(items.index.get_level_values(0)) if len(items) else set()
    compared = [v for v in order if v in with_items]
    vs = baseline if baseline in with_items else (compared[0] if compared else None)
    for name in compared:
        if vs is not None and name != vs:
            out[name].update(_paired(items, vs, name))
    if reference is not None and reference in out and not out[reference]:
        label = next((r.scores[AGREEMENT].detail.get("reference") for r in records if AGREEMENT in r.scores), None)
        out[reference] = {"agreement_with": label, "agreement_role": "reference"}
    return out


def add_agreement(df: pd.DataFrame, records: list[Record], reference: str | None,
                  baseline: str | None) -> pd.DataFrame:
    """The summary table with the agreement columns, and accuracy emptied where the items have no labels."""
    df = df.copy()
    labelled = {r.variant for r in records if labelled_record(r)}
    unlabelled = {r.variant for r in records} - labelled
    if unlabelled:
        df["labelled"] = [v not in unlabelled for v in df["variant"]]
        for col in ACCURACY_COLUMNS:
            if col in df.columns:
                df[col] = df[col].astype(object)
                df.loc[~df["labelled"], col] = None
    rows = agreement_rows(records, [str(v) for v in df["variant"]], reference, baseline)
    if not rows:
        return df
    cols = list(dict.fromkeys(c for row in rows.values() for c in row))
    for col in cols:
        df[col] = [rows.get(str(v), {}).get(col) for v in df["variant"]]
    return df


# -- the gate ------------------------------------------------------------------------------------------------

METRICS = ("accuracy", "agreement", "ppi")


def gate_metric(metric: str | None, accepted: list[Record], candidate: list[Record]) -> str:
    """The metric `harness compare` gates on: the one asked for (--metric), else accuracy when the items carry
    expected answers and agreement when they do not."""
    if metric is not None and metric not in METRICS:
        raise HarnessError(f"--metric {metric}: gate on one of {', '.join(METRICS)}")
    chosen = metric or ("accuracy" if any(labelled_record(r) for r in candidate) else "agreement")
    if chosen == "agreement":
        for records, which in ((accepted, "accepted"), (candidate, "candidate")):
            if not any(AGREEMENT in r.scores for r in records):
                raise HarnessError(f"--metric agreement: the {which} run has no agreement scores; score it against a "
                                   "reference (`reference: VARIANT` in its config, or `harness report RUN_DIR "
                                   "--reference SAVED_RUN:VARIANT`)")
    return chosen


def gate_items(records: list[Record]) -> pd.DataFrame:
    """Per (variant, item) agreement, as stats.item_outcomes gives accuracy: what the gate pairs."""
    return stats.item_outcomes(agreement_frame(records))


def unknown_agreement(records: list[Record], variant: str) -> tuple[int, int]:
    """(answers whose agreement is unknown, answers with a reference answer) of a variant."""
    scored = [r.scores[AGREEMENT] for r in records if r.variant == variant and r.error is None
              and AGREEMENT in r.scores and not r.scores[AGREEMENT].detail.get("reference_missing")]
    return sum(1 for s in scored if s.value is None), len(scored)


def reference_of(records: list[Record]) -> str | None:
    """The reference the records were scored against ("ft_prod", or "ft_prod of RUN_DIR")."""
    for r in records:
        s = r.scores.get(AGREEMENT)
        if s is not None:
            run = s.detail.get("run_id") or s.detail.get("run")
            return str(s.detail.get("reference")) + (f" of run {run}" if run else "")
    return None


def gate_variants(accepted: list[Record], candidate: list[Record], picked: list[str], asked: str | None) -> list[str]:
    """The variants the gate compares on agreement: those scored against the reference in both runs (the
    reference itself has no agreement); --variant NAME must be one of them."""
    def scored(records: list[Record]) -> list[str]:
        return list(dict.fromkeys(r.variant for r in records if AGREEMENT in r.scores))

    a, c = scored(accepted), scored(candidate)
    both = [v for v in a if v in c]
    if asked is not None and asked not in a:
        raise HarnessError(f"--variant {asked}: it has no agreement with the reference in the accepted run (the "
                           f"reference itself has none); variants with agreement: {', '.join(a) or 'none'}")
    if asked is not None:
        return [asked] if asked in c else []
    chosen = [v for v in picked if v in both]
    return chosen or both
