"""Markdown: the summary tables (printed by the CLI, summary.md) and the stakeholder report (report.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.analysis.units import Unit, column_units
from harness.report.content import (
    COST_DISPLAY,
    LATENCY_DISPLAY,
    METHOD_NOTES,
    PAIRED_DISPLAY,
    REPEAT_DISPLAY,
    display_columns,
    extra_columns,
    has_repeats,
    judge_lines,
    measured,
    score_columns,
    score_lines,
    split_note,
    training_facts,
    variant_notes,
    with_primary_heading,
)
from harness.report.decision import break_even_text, decision_lines
from harness.report.format import cell, value
from harness.report.parity import agreement_section, parity_lines
from harness.report.service_text import projection_intervals
from harness.report.stats_text import paired_note
from harness.rundir.manifest import Manifest

if TYPE_CHECKING:
    from harness.analysis.economics import Economics
    from harness.analysis.summary import Analysis


def markdown_table(df: pd.DataFrame, columns: list[tuple[str, str]] | None = None) -> str:
    """A markdown table of summary rows; `columns` are (column, heading) pairs, by default DISPLAY.
    Columns the frame lacks are left out; a skipped variant shows its name and model only (each in its own
    column, "-" in every other)."""
    columns = columns or display_columns(df)
    present = [(c, h) for c, h in columns if c in df.columns]
    units = column_units(df.columns)
    lines = ["| " + " | ".join(h for _, h in present) + " |", "|" + "|".join("---" for _ in present) + "|"]
    for _, row in df.iterrows():
        if str(row.get("status", "ok")).startswith("skipped"):
            cells = [str(row.get(c) or "-") if c in ("variant", "model_id") else "-" for c, _ in present]
        else:
            cells = [cell(row, c, units[c]) for c, _ in present]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def _extra_table(df: pd.DataFrame, extra: list[str]) -> str:
    return markdown_table(df, [("variant", "variant")] + [(c, c) for c in extra])


def console_summary(manifest: Manifest, df: pd.DataFrame) -> str:
    """What `harness run` and `harness report` print: the results table and, where the task has named scorers,
    their table."""
    out = markdown_table(df, with_primary_heading(manifest, display_columns(df)))
    note = split_note(manifest)
    out = f"{note}\n\n{out}" if note else out
    cols = score_columns(manifest, df)
    if cols:
        out += "\n\n" + markdown_table(df, [("variant", "variant")] + cols)
    return out


def scores_section(manifest: Manifest, df: pd.DataFrame, agreement: list[dict[str, Any]] | None = None,
                   rows: pd.DataFrame | None = None) -> list[str]:
    """## Scores: a column and a line per named scorer, then the judge (its evaluation cost and its agreement
    with human scores)."""
    cols = score_columns(manifest, df)
    lines = score_lines(manifest, df)
    judge = judge_lines(manifest, df, agreement or [])
    if not (cols or judge):
        return []
    table = rows if rows is not None else df
    out = ["## Scores", ""]
    if cols:
        out += [markdown_table(table, [("variant", "variant")] + cols), "", *lines, ""]
    if judge:
        out += ["### Judge", "", *judge, ""]
    return out


def summary_markdown(manifest: Manifest, df: pd.DataFrame, agreement: list[dict[str, Any]] | None = None) -> str:
    """summary.md: the results table, the paired comparison, named scores, per-field scores and notes."""
    ev = manifest.evalset
    out = [
        f"# Run {manifest.run_id}",
        "",
        f"Eval set `{ev.name}` (hash `{str(ev.content_hash)[:12]}`), "
        f"status **{manifest.status}**, started {manifest.started_at}, "
        f"finished {manifest.finished_at}, harness {manifest.harness_version} "
        f"(git {manifest.git_revision or 'unknown'}).",
        "",
        *([f"**{note}**", ""] if (note := split_note(manifest)) else []),
        markdown_table(df, with_primary_heading(manifest, display_columns(df))),
        "",
    ]
    paired = measured(df)
    paired = paired[paired["paired_n"].notna()] if "paired_n" in paired.columns else paired.iloc[0:0]
    if len(paired):
        out += [f"## Paired comparison on the same items (vs {paired.iloc[0]['vs_variant']})", "",
                markdown_table(paired, PAIRED_DISPLAY), "",
                "Δ is the variant minus the reference, in percentage points, with a paired-bootstrap 95% interval "
                "and an exact McNemar p-value (a sign-flip one for a graded or repeated primary score, marked "
                "\"sign-flip\"), over every item (an unanswered item counts as not correct).", ""]
        note = paired_note(paired)
        out += [note, ""] if note else []
    out += agreement_section(df, markdown_table)
    out += scores_section(manifest, df, agreement)
    extra = extra_columns(df)
    if extra:
        out += ["## Per field and retrieval", "", _extra_table(df, extra), ""]
    notes = variant_notes(manifest, df)
    if notes:
        out += ["## Notes", "", *notes, ""]
    return "\n".join(out)


def report_markdown(analysis: Analysis, eco: Economics, plan: list[str] | None = None) -> str:
    """The stakeholder report as markdown, built from the same facts as the HTML; `plan`: the section
    harness.report.plan_text.plan_section made from the run folder's plan.json, if any."""
    m, df = analysis.manifest, analysis.df
    ev = m.evalset
    ran = measured(df)
    out = [
        f"# {m.name or 'Run'}: is fine-tuning worth it?",
        "",
        f"Run `{m.run_id}` on eval set `{ev.name}` ({ev.test_items} test items, "
        f"{ev.train_items} training examples; hash `{str(ev.content_hash)[:12]}`), "
        f"status **{m.status}**, finished {m.finished_at}, harness {m.harness_version} "
        f"(git {m.git_revision or 'unknown'}).",
        "",
        *([f"**{note}**", ""] if (note := split_note(m)) else []),
        "## Decision summary",
        "",
        *[f"- {line}" for line in parity_lines(df) + decision_lines(eco, analysis.df)],
        "",
        "## Results",
        "",
        markdown_table(df, with_primary_heading(m, display_columns(df))),
        "",
    ]
    paired = ran[ran["paired_n"].notna()]
    if len(paired):
        out += [f"## Paired comparison against {analysis.baseline}", "", markdown_table(paired, PAIRED_DISPLAY), ""]
        note = paired_note(paired)
        out += [note, ""] if note else []
    out += agreement_section(df, markdown_table)
    out += plan or []
    out += scores_section(m, df, analysis.agreement, ran)
    monthly = analysis.config.get("monthly_requests")
    out += _cost_section(ran, monthly, projection_intervals(eco, monthly))
    facts = training_facts(eco, lambda x: value(x, Unit.USD))
    out += ["## Fine-tuning economics", ""]
    out += ["| | |", "|---|---|"] + [f"| {k} | {str(v).replace('|', '/')} |" for k, v in facts]
    out += ["", break_even_text(eco.break_even, eco.training, eco.monthly_requests), ""]
    if "latency_n" in ran.columns:
        out += ["## Latency", "", markdown_table(ran, LATENCY_DISPLAY), ""]
    extra = extra_columns(df)
    if extra:
        out += ["## Per field and retrieval", "", _extra_table(ran, extra), ""]
    if has_repeats(ran):
        out += ["## Repeats", "", markdown_table(ran, REPEAT_DISPLAY), ""]
    notes = variant_notes(m, df)
    if notes:
        out += ["## Notes", "", *notes, ""]
    out += ["## Method", "", *[f"- {n}" for n in METHOD_NOTES], ""]
    return "\n".join(out)


def _cost_section(ran: pd.DataFrame, monthly: int | None, intervals: str | None = None) -> list[str]:
    out = ["## Cost", "", markdown_table(ran, COST_DISPLAY), ""]
    out.append(f"Monthly projection at {monthly:,} requests a month (`monthly_requests` in the config)."
               if monthly else "Set `monthly_requests` in the config for a monthly projection.")
    if intervals:
        out.append(intervals)
    out.append("")
    for _, row in ran.iterrows():
        if isinstance(row.get("cost_note"), str):
            out.append(f"- {row['variant']}: {row['cost_note']}")
    out.append("")
    return out
