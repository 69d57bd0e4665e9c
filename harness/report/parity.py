"""Agreement with a reference in words and tables: its column beside accuracy, the paired comparison on it, the
count of items without a reference answer, and the parity sentences of the decision summary
("few_shot agrees with ft_prod on 91% [86%, 95%] of items at 40% of its cost"). The numbers are
harness.analysis.agreement's; the markdown and the HTML report print the same lines."""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.numbers import is_missing
from harness.report.format import pct

AGREEMENT_PAIRED_DISPLAY = [
    ("variant", "variant"), ("agreement_vs", "vs"), ("agreement_paired_n", "paired items"),
    ("agreement_diff", "Δ agreement [95% CI]"),
]


def reference_label(df: pd.DataFrame) -> str | None:
    """The reference's name as the tables say it (its run folder when it is a saved run's), or None."""
    if "agreement_with" not in df.columns:
        return None
    for _, row in df.iterrows():
        ref = row.get("agreement_with")
        if isinstance(ref, str):
            run = row.get("agreement_run")
            return f"{ref} of {run}" if isinstance(run, str) else ref
    return None


def with_agreement(df: pd.DataFrame, columns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`columns` with the agreement column after accuracy (and its unknowns), where the run has one."""
    ref = reference_label(df)
    if ref is None or "agreement" not in df.columns:
        return columns
    names = [c for c, _ in columns]
    at = names.index("accuracy_unknown") + 1 if "accuracy_unknown" in names else (
        names.index("accuracy") + 1 if "accuracy" in names else len(names))
    return [*columns[:at], ("agreement", f"agreement with {ref} (95% CI)"), *columns[at:]]


def _rows(df: pd.DataFrame, role: str) -> list[Any]:
    if "agreement_role" not in df.columns:
        return []
    ran = df[~df["status"].astype(str).str.startswith("skipped")]
    return [row for _, row in ran.iterrows() if row.get("agreement_role") == role]


def _count(row: Any, col: str) -> int:
    v = row.get(col)
    return 0 if is_missing(v) else int(v)


def agreement_notes(df: pd.DataFrame) -> list[str]:
    """Markdown bullet lines: on how many items each variant's agreement stands, how many had no reference answer
    (left out of agreement only), how many could not be told; and accuracy not measured where there are no labels."""
    ref = reference_label(df)
    notes = []
    for row in _rows(df, "candidate"):
        total, missing = _count(row, "agreement_of_items"), _count(row, "agreement_no_reference")
        text = f"- **{row['variant']}**: agreement with {ref} on {total - missing} of {total} items"
        if missing:
            text += (f"; {missing} without a reference answer (the reference failed or gave no usable answer: left "
                     "out of agreement, not of accuracy)")
        if _count(row, "agreement_unknown"):
            text += f"; {_count(row, 'agreement_unknown')} answers whose agreement the scorer could not tell"
        notes.append(text)
    if "labelled" in df.columns and not bool(df["labelled"].fillna(True).astype(bool).all()):
        notes.append("- accuracy not measured (no labels): the eval set's items have no `expected` answer, so the "
                     f"variants are compared by agreement with {ref or 'a reference'} instead")
    return notes


def agreement_section(df: pd.DataFrame, table: Any) -> list[str]:
    """## Agreement with REF: the notes, then the paired comparison on agreement (`table` renders rows)."""
    ref = reference_label(df)
    if ref is None:
        return []
    out = [f"## Agreement with {ref}", "", *agreement_notes(df), ""]
    paired = [r for r in _rows(df, "candidate") if not is_missing(r.get("agreement_paired_n"))]
    if paired:
        out += [table(pd.DataFrame(paired), AGREEMENT_PAIRED_DISPLAY), "",
                "Δ agreement is paired on the items both variants have a reference answer for, with the same "
                "bootstrap interval and McNemar / sign-flip test as accuracy.", ""]
    return out


def parity_lines(df: pd.DataFrame) -> list[str]:
    """One sentence per variant scored against the reference, most agreeing first: how often it agrees, with its
    interval, and what it costs per request against the reference (when both are priced in this run)."""
    ref = reference_label(df)
    refs = _rows(df, "reference")
    ref_cost = refs[0].get("cost_per_request_usd") if refs else None
    lines = []
    cands = [r for r in _rows(df, "candidate") if not is_missing(r.get("agreement"))]
    for row in sorted(cands, key=lambda r: -float(r["agreement"])):
        text = f"{row['variant']} agrees with {ref} on {pct(row['agreement'], digits=0)}"
        if not is_missing(row.get("agreement_lo")) and not is_missing(row.get("agreement_hi")):
            text += f" [{pct(row['agreement_lo'], digits=0)}, {pct(row['agreement_hi'], digits=0)}]"
        text += f" of {_count(row, 'agreement_items')} items"
        cost = row.get("cost_per_request_usd")
        if not is_missing(cost) and not is_missing(ref_cost) and float(ref_cost) > 0:
            text += f" at {float(cost) / float(ref_cost):.0%} of its cost"
        missing = _count(row, "agreement_no_reference")
        if missing:
            text += f" ({missing} without a reference answer)"
        lines.append(text + ".")
    return lines
