"""The decision summary's sentences about the statistics of a run with several comparisons or a judge-corrected
accuracy: the Holm-adjusted comparisons with the baseline, the PPI estimate beside the raw judge figure, and the
adjusted p-value of the fine-tune's comparison (harness.report.decision says it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from harness.analysis import stats
from harness.numbers import as_float
from harness.report.format import interval, p_value, pct, pp

if TYPE_CHECKING:
    from harness.analysis.economics import Economics

ALPHA = 0.05


def _compared(df: pd.DataFrame) -> pd.DataFrame:
    """The measured rows compared with the baseline that have an accuracy p-value."""
    if "accuracy_p" not in df.columns:
        return df.iloc[0:0]
    ran = df[~df["status"].astype(str).str.startswith("skipped")]
    return ran[pd.to_numeric(ran["accuracy_p"], errors="coerce").notna()]


def _p_text(p: float) -> str:
    text = p_value(p, sentence=True)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def holm_line(df: pd.DataFrame) -> str | None:
    """With several variants compared with the baseline: each one's difference and its Holm-adjusted p."""
    rows = _compared(df)
    if len(rows) < 2 or "accuracy_p_holm" not in rows.columns:
        return None
    parts = []
    for _, r in rows.iterrows():
        q = as_float(r.get("accuracy_p_holm"))
        if q is None:
            continue
        sig = "significant" if q < ALPHA else "not significant"
        parts.append(f"{r['variant']} {pp(as_float(r.get('accuracy_diff')))} ({_p_text(q)}, {sig})")
    base = rows.iloc[0]["vs_variant"]
    return (f"Against {base} on the same items, with p-values Holm-adjusted over the {len(rows)} comparisons: "
            + "; ".join(parts) + ". The raw p-values are in summary.csv (accuracy_p).")


def ppi_line(df: pd.DataFrame) -> str | None:
    """The judge-corrected accuracy beside the raw judge figure, for every variant that has one."""
    if "accuracy_ppi" not in df.columns:
        return None
    rows = df[pd.to_numeric(df["accuracy_ppi"], errors="coerce").notna()]
    if rows.empty:
        return None
    labels = int(as_float(rows.iloc[0].get("ppi_labels")) or 0)
    parts = [f"{r['variant']} {pct(as_float(r['accuracy_ppi']))} "
             f"{interval(as_float(r.get('accuracy_ppi_lo')), as_float(r.get('accuracy_ppi_hi')), unit=True)} "
             f"against the judge's {pct(as_float(r.get('accuracy')))}" for _, r in rows.iterrows()]
    return (f"Judge-corrected accuracy (prediction-powered, from {labels} human-scored answers the judge also "
            f"graded; 95% CI): " + "; ".join(parts) + ".")


def fine_tune_p(eco: Economics, df: pd.DataFrame) -> tuple[float | None, int]:
    """(the fine-tune's comparison p-value Holm-adjusted over every comparison this report makes, how many);
    (None, 1) when it is the only one. Its comparison is one of the baseline comparisons when the best
    prompt-only variant is the baseline, else one more."""
    pr = eco.ft_vs_prompt
    if pr is None or pr.p_value is None:
        return None, 1
    rows = _compared(df)
    raw = {str(r["variant"]): float(r["accuracy_p"]) for _, r in rows.iterrows()}
    same = not rows.empty and str(rows.iloc[0]["vs_variant"]) == eco.best_prompt and eco.fine_tuned in raw
    names = list(raw) if same else [*raw, "__ft__"]
    family = [raw[n] for n in raw] + ([] if same else [pr.p_value])
    if len(family) < 2:
        return None, 1
    adjusted = stats.holm(list(family))
    return adjusted[names.index(str(eco.fine_tuned) if same else "__ft__")], len(family)


def stats_lines(df: pd.DataFrame | None) -> list[str]:
    """The sentences this module adds to the decision summary (none for a run without either fact)."""
    if df is None:
        return []
    return [line for line in (holm_line(df), ppi_line(df)) if line]


def paired_note(df: pd.DataFrame) -> str | None:
    """Under the paired table: the declared clusters the comparison took as its unit, and the Holm adjustment
    when several variants are compared with the baseline."""
    rows = _compared(df)
    clusters = pd.to_numeric(rows.get("paired_clusters"), errors="coerce").max() if len(rows) else None
    parts = []
    if clusters is not None and not pd.isna(clusters):
        parts.append(f"The items fall in {int(clusters)} declared clusters (task.yaml `cluster:`), the unit of the "
                     "interval and the test (clustered sign-flip).")
    holm = _holm_note(rows)
    return " ".join(parts + ([holm] if holm else [])) or None


def _holm_note(rows: pd.DataFrame) -> str | None:
    if len(rows) < 2:
        return None
    return (f"{len(rows)} variants are compared with {rows.iloc[0]['vs_variant']}: the p-values shown are "
            "Holm-adjusted over those comparisons (marked \"Holm\"); the raw ones are in summary.csv (accuracy_p, "
            "format_valid_p) beside the adjusted ones (accuracy_p_holm, format_valid_p_holm).")
