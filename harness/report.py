"""Records -> per-variant summary table -> summary.csv / summary.md, and the stakeholder report
(report.md / report.html). Everything here is rebuildable at any time from the run folder."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness import stats
from harness.errors import HarnessError
from harness.runner import read_records
from harness.scoring import summarize
from harness.types import Record

CORE_COLUMNS = [
    "variant", "kind", "model", "model_id", "status", "n", "errors", "format_valid", "json_extractable",
    "accuracy", "accuracy_lenient", "cost_per_request_usd", "cost_per_1k_usd", "cost_per_correct_usd",
    "latency_p50_s", "latency_p95_s", "prompt_tokens_mean", "completion_tokens_mean",
]

# Columns the statistics add (always present, so CI scripts can rely on them).
STATS_COLUMNS = [
    "items", "repeats", "format_valid_lo", "format_valid_hi", "accuracy_lo", "accuracy_hi",
    "accuracy_majority", "repeat_disagreement", "accuracy_repeat_std",
    "vs_variant", "paired_n", "accuracy_diff", "accuracy_diff_lo", "accuracy_diff_hi", "accuracy_p",
    "right_to_wrong", "wrong_to_right", "format_valid_diff", "format_valid_diff_lo", "format_valid_diff_hi",
    "format_valid_p",
]


INT_COLUMNS = ["items", "repeats", "paired_n", "right_to_wrong", "wrong_to_right"]


def load_run(run_dir: Path) -> tuple[dict[str, Any], list[Record]]:
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        raise HarnessError(f"{run_dir}: not a run folder (no manifest.json)")
    manifest = json.loads(manifest_path.read_text("utf-8"))
    return manifest, read_records(run_dir / "records.jsonl")


@dataclass
class Analysis:
    """Everything the tables and the report are built from, computed once."""

    manifest: dict[str, Any]
    config: dict[str, Any]
    records: list[Record]
    df: pd.DataFrame
    frame: pd.DataFrame  # one row per record (stats.outcomes_frame)
    items: pd.DataFrame  # one row per (variant, item) (stats.item_outcomes)
    baseline: str | None


def analyse(manifest: dict[str, Any], records: list[Record], config: dict[str, Any] | None = None) -> Analysis:
    from harness.economics import apply_costs, baseline_variant

    label_fields = manifest.get("label_fields") or {}
    by_variant: dict[str, list[Record]] = {}
    for r in records:
        by_variant.setdefault(r.variant, []).append(r)
    variants: dict[str, Any] = manifest.get("variants") or {}
    order = list(variants) + [v for v in by_variant if v not in variants]
    frame = stats.outcomes_frame(records)
    items = stats.item_outcomes(frame)
    with_items = set(items.index.get_level_values(0)) if len(items) else set()
    present = [v for v in order if v in with_items]
    base = baseline_variant(manifest, present)
    rows = []
    for name in order:
        info = variants.get(name, {})
        recs = by_variant.get(name, [])
        row: dict[str, Any] = {
            "variant": name,
            "kind": info.get("kind"),
            "model": info.get("model") or (recs[0].model if recs else None),
            "model_id": info.get("model_id") or (recs[0].model_id if recs else None),
            "status": f"skipped: {info['skipped']}" if info.get("skipped") else "ok",
        }
        if recs:
            expected = {r.item_id: r.expected for r in recs}
            row.update(summarize(recs, label_fields, expected))
            price = info.get("price") or {}
            row["price_basis"] = price.get("basis")
            row["structured_output"] = info.get("structured_output")
            row.update(_interval_columns(row, frame, items, name))
            if base is not None and name != base and name in with_items:
                row.update(_paired_columns(items, base, name))
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in CORE_COLUMNS + STATS_COLUMNS:
        if col not in df.columns:
            df[col] = None
    df = apply_costs(df, frame, manifest, config)
    for col in INT_COLUMNS:  # counts stay integers in summary.csv even where a row has none
        df[col] = pd.array([None if _isnull(v) else int(v) for v in df[col]], dtype="Int64")
    rest = [c for c in df.columns if c not in CORE_COLUMNS]
    return Analysis(manifest, config or {}, records, df[CORE_COLUMNS + rest], frame, items, base)


def _interval_columns(row: dict[str, Any], frame: pd.DataFrame, items: pd.DataFrame, name: str) -> dict[str, Any]:
    """Wilson intervals. The sample size is the number of distinct items answered, not records: repeats
    of one item are not independent evidence, so they must not narrow the interval."""
    spread = stats.repeat_spread(frame, items, name)
    out: dict[str, Any] = {"items": spread.items, "repeats": spread.repeats,
                           "accuracy_majority": spread.accuracy_majority,
                           "repeat_disagreement": spread.disagreement, "accuracy_repeat_std": spread.accuracy_std}
    for metric in ("format_valid", "accuracy"):
        p = row.get(metric)
        ci = stats.wilson(p * spread.items, spread.items) if p is not None and spread.items else None
        out[f"{metric}_lo"], out[f"{metric}_hi"] = ci if ci else (None, None)
    return out


def _paired_columns(items: pd.DataFrame, base: str, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"vs_variant": base}
    acc = stats.paired_compare(items.loc[base], items.loc[name], "correct")
    fmt = stats.paired_compare(items.loc[base], items.loc[name], "format_valid")
    out["paired_n"] = acc.n
    out["accuracy_diff"], out["accuracy_diff_lo"], out["accuracy_diff_hi"] = acc.diff, acc.lo, acc.hi
    out["accuracy_p"] = acc.p_value
    out["right_to_wrong"], out["wrong_to_right"] = acc.right_to_wrong, acc.wrong_to_right
    out["format_valid_diff"], out["format_valid_diff_lo"], out["format_valid_diff_hi"] = fmt.diff, fmt.lo, fmt.hi
    out["format_valid_p"] = fmt.p_value
    return out


def summary_frame(manifest: dict[str, Any], records: list[Record], config: dict[str, Any] | None = None) -> pd.DataFrame:
    return analyse(manifest, records, config).df


def _isnull(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _fmt(value: Any, col: str) -> str:
    if _isnull(value):
        return "-"
    if col.endswith("_p"):
        return "<0.001" if value < 0.001 else f"{value:.3f}"
    if "_diff" in col:
        return f"{value * 100:+.1f} pp"
    if col in ("items", "repeats", "paired_n", "right_to_wrong", "wrong_to_right", "n", "errors", "answered"):
        return str(int(value))
    if col == "monthly_requests":
        return f"{int(value):,}"
    if col == "throughput_rps":
        return f"{value:.2f}"
    if col.startswith(("format_valid", "json_extractable", "accuracy", "acc_", "error_rate", "recall", "macro_f1",
                       "repeat_disagreement")):
        return f"{value:.1%}"
    if col == "mrr":
        return f"{value:.3f}"
    if col.endswith("_usd"):
        if value == 0:
            return "$0"
        return f"${value:.6f}" if value < 0.01 else f"${value:.4f}" if value < 1 else f"${value:,.2f}"
    if col.endswith("_s"):
        return f"{value:.3f}"
    if col.endswith("_mean"):
        return f"{value:.1f}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cell(row: Any, col: str) -> str:
    """A table cell: rates carry their 95% interval, differences their interval and p-value."""
    value = row.get(col) if hasattr(row, "get") else row[col]
    text = _fmt(value, col)
    if _isnull(value):
        return text
    if col in ("accuracy", "format_valid"):
        lo, hi = row.get(f"{col}_lo"), row.get(f"{col}_hi")
        if not _isnull(lo) and not _isnull(hi):
            text += f" ({lo * 100:.1f}–{hi * 100:.1f})"
    elif col in ("accuracy_diff", "format_valid_diff"):
        lo, hi, p = row.get(f"{col}_lo"), row.get(f"{col}_hi"), row.get(col.replace("_diff", "_p"))
        if not _isnull(lo) and not _isnull(hi):
            text += f" [{lo * 100:+.1f}, {hi * 100:+.1f}]"
        if not _isnull(p):
            ptext = _fmt(p, "_p")
            text += f" p{ptext}" if ptext.startswith("<") else f" p={ptext}"
    return text


DISPLAY = [
    ("variant", "variant"), ("model_id", "model"), ("n", "n"), ("errors", "errors"),
    ("format_valid", "format valid (95% CI)"), ("accuracy", "accuracy (95% CI)"),
    ("accuracy_diff", "Δ accuracy vs baseline [95% CI]"), ("cost_per_request_usd", "cost/request"),
    ("cost_per_correct_usd", "cost/correct"), ("latency_p50_s", "p50 s"), ("latency_p95_s", "p95 s"),
    ("prompt_tokens_mean", "prompt tok"), ("completion_tokens_mean", "compl tok"),
]

PAIRED_DISPLAY = [
    ("variant", "variant"), ("vs_variant", "vs"), ("paired_n", "paired items"),
    ("accuracy_diff", "Δ accuracy [95% CI]"), ("right_to_wrong", "right→wrong"),
    ("wrong_to_right", "wrong→right"), ("format_valid_diff", "Δ format valid [95% CI]"),
]

COST_DISPLAY = [
    ("variant", "variant"), ("cost_per_request_usd", "cost/request"), ("cost_per_1k_usd", "cost/1,000"),
    ("cost_per_correct_usd", "cost/correct"), ("monthly_cost_usd", "per month"),
]

REPEAT_DISPLAY = [
    ("variant", "variant"), ("repeats", "repeats"), ("items", "items"), ("accuracy", "accuracy (pooled)"),
    ("accuracy_majority", "accuracy (majority)"), ("repeat_disagreement", "items whose repeats disagree"),
    ("accuracy_repeat_std", "std of accuracy across repeats"),
]


def markdown_table(df: pd.DataFrame, columns: list[tuple[str, str]] | None = None) -> str:
    columns = columns or DISPLAY
    present = [(c, h) for c, h in columns if c in df.columns]
    lines = ["| " + " | ".join(h for _, h in present) + " |", "|" + "|".join("---" for _ in present) + "|"]
    for _, row in df.iterrows():
        if str(row.get("status", "ok")).startswith("skipped"):
            cells = [str(row["variant"]), str(row.get("model_id") or "-")] + ["-"] * (len(present) - 2)
            cells = cells[: len(present)]
        else:
            cells = [cell(row, c) for c, _ in present]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def _measured(df: pd.DataFrame) -> pd.DataFrame:
    return df[~df["status"].astype(str).str.startswith("skipped")]


def variant_notes(manifest: dict[str, Any], df: pd.DataFrame) -> list[str]:
    notes = []
    for _, row in df.iterrows():
        if str(row.get("status", "")).startswith("skipped"):
            notes.append(f"- **{row['variant']}** {row['status']}")
    for name, info in (manifest.get("variants") or {}).items():
        mode = info.get("structured_output")
        if mode and not info.get("skipped"):
            how = "constrained decoding" if mode != "none" else "free generation"
            notes.append(f"- {name}: format validity measured under {how} (`{mode}`)")
        price = info.get("price") or {}
        if price.get("basis") == "unknown":
            notes.append(f"- {name}: no price known for {info.get('model_id')}; cost not reported")
    if "cost_note" in df.columns:
        for _, row in _measured(df).iterrows():
            note = row.get("cost_note")
            if isinstance(note, str) and note.startswith("self-hosted"):
                notes.append(f"- {row['variant']}: cost {_fmt(row.get('cost_per_request_usd'), '_usd')}/request — {note}")
    for line in manifest.get("leakage") or []:
        notes.append(f"- leakage: {line}")
    if manifest.get("message"):
        notes.append(f"- {manifest['message']}")
    return notes


def _extra_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith(("acc_", "macro_f1_")) or c in ("recall_at_k", "mrr")]


def summary_markdown(manifest: dict[str, Any], df: pd.DataFrame) -> str:
    ev = manifest.get("evalset", {})
    out = [
        f"# Run {manifest.get('run_id')}",
        "",
        f"Eval set `{ev.get('name')}` (hash `{str(ev.get('content_hash'))[:12]}`), "
        f"status **{manifest.get('status')}**, started {manifest.get('started_at')}, "
        f"finished {manifest.get('finished_at')}, harness {manifest.get('harness_version')} "
        f"(git {manifest.get('git_revision') or 'unknown'}).",
        "",
        markdown_table(df),
        "",
    ]
    paired = _measured(df)
    paired = paired[paired["paired_n"].notna()] if "paired_n" in paired.columns else paired.iloc[0:0]
    if len(paired):
        out += [f"## Paired comparison on the same items (vs {paired.iloc[0]['vs_variant']})", "",
                markdown_table(paired, PAIRED_DISPLAY), "",
                "Δ is the variant minus the reference, in percentage points, with a paired-bootstrap 95% interval "
                "and an exact McNemar p-value; errors are excluded (items answered by both).", ""]
    extra = _extra_columns(df)
    if extra:
        out += ["## Per field and retrieval", "", markdown_table(df, [("variant", "variant")] + [(c, c) for c in extra]), ""]
    notes = variant_notes(manifest, df)
    if notes:
        out += ["## Notes", "", *notes, ""]
    return "\n".join(out)


def load_config_dict(run_dir: Path) -> dict[str, Any]:
    p = run_dir / "config.json"
    return json.loads(p.read_text("utf-8")) if p.exists() else {}


def write_summary(run_dir: Path) -> pd.DataFrame:
    """summary.csv and summary.md, plus the stakeholder report (report.md, report.html), so that every
    run folder carries its readable report without an extra step."""
    manifest, records = load_run(run_dir)
    analysis = analyse(manifest, records, load_config_dict(run_dir))
    df = analysis.df
    df.to_csv(run_dir / "summary.csv", index=False)
    (run_dir / "summary.md").write_text(summary_markdown(manifest, df), encoding="utf-8")
    _write_reports(run_dir, analysis)
    return df


def write_report(run_dir: Path) -> tuple[Path, Path]:
    """report.md (for pasting into documents) and report.html (one self-contained file with charts)."""
    manifest, records = load_run(run_dir)
    return _write_reports(run_dir, analyse(manifest, records, load_config_dict(run_dir)))


def _write_reports(run_dir: Path, analysis: Analysis) -> tuple[Path, Path]:
    from harness.economics import analyse as analyse_economics
    from harness.htmlreport import render_html

    eco = analyse_economics(analysis.manifest, analysis.config, analysis.df, analysis.items, analysis.records)
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    md_path.write_text(report_markdown(analysis, eco), encoding="utf-8")
    html_path.write_text(render_html(analysis, eco), encoding="utf-8")
    return md_path, html_path


METHOD_NOTES = [
    "Accuracy and format validity are shares of *answered* calls; failed calls (errors) are counted apart, "
    "never as wrong answers.",
    "95% intervals for a variant's rates are Wilson score intervals over the distinct items answered.",
    "Paired comparisons use the items both variants answered: the difference has a paired-bootstrap 95% interval "
    f"({stats.BOOTSTRAP_SAMPLES} resamples of items, seed {stats.DEFAULT_SEED}) and an exact McNemar p-value "
    "(binomial test on the items that changed).",
    "With repeats > 1, each item's repeats are combined (mean for the interval, strict majority for McNemar) and "
    "the spread across repeats is shown.",
    "Latency percentiles exclude cache hits.",
]


def report_markdown(analysis: Analysis, eco: Any) -> str:
    """The stakeholder report as markdown, built from the same facts as the HTML."""
    m, df, cfg = analysis.manifest, analysis.df, analysis.config
    ev = m.get("evalset", {})
    measured = _measured(df)
    out = [
        f"# {m.get('name') or 'Run'}: is fine-tuning worth it?",
        "",
        f"Run `{m.get('run_id')}` on eval set `{ev.get('name')}` ({ev.get('test_items')} test items, "
        f"{ev.get('train_items')} training examples; hash `{str(ev.get('content_hash'))[:12]}`), "
        f"status **{m.get('status')}**, finished {m.get('finished_at')}, harness {m.get('harness_version')} "
        f"(git {m.get('git_revision') or 'unknown'}).",
        "",
        "## Decision summary",
        "",
        *[f"- {line}" for line in eco.summary],
        "",
        "## Results",
        "",
        markdown_table(df),
        "",
    ]
    paired = measured[measured["paired_n"].notna()]
    if len(paired):
        out += [f"## Paired comparison against {analysis.baseline}", "", markdown_table(paired, PAIRED_DISPLAY), ""]
    monthly = cfg.get("monthly_requests")
    out += ["## Cost", "", markdown_table(measured, COST_DISPLAY), ""]
    out.append(f"Monthly projection at {monthly:,} requests a month (`monthly_requests` in the config)."
               if monthly else "Set `monthly_requests` in the config for a monthly projection.")
    out.append("")
    for _, row in measured.iterrows():
        if isinstance(row.get("cost_note"), str):
            out.append(f"- {row['variant']}: {row['cost_note']}")
    out.append("")
    t, be = eco.training, eco.break_even
    out += ["## Fine-tuning economics", ""]
    facts = [
        ("training examples", t.train_examples),
        ("examples used for training", t.examples_used),
        ("training tokens per epoch (est.)", f"{t.tokens_per_epoch:,.0f}" if t.tokens_per_epoch else None),
        ("epochs", t.epochs),
        ("billed training tokens (est.)", f"{t.billed_tokens:,.0f}" if t.billed_tokens else None),
        ("training price per 1M tokens", f"${t.price_per_1m:g}" if t.price_per_1m is not None else None),
        ("price source", t.price_source or None),
        ("estimated training cost", _fmt(t.cost_usd, "_usd") if t.cost_usd is not None else None),
        ("token method", t.calibration or None),
        ("note", t.note or None),
        ("break-even reference", be.reference),
        ("break-even volume (requests)", f"{be.requests:,.0f}" if be.requests is not None else None),
    ]
    out += ["| | |", "|---|---|"] + [f"| {k} | {str(v).replace('|', '/')} |" for k, v in facts if v is not None]
    out += ["", be.text, ""]
    lat = measured[["variant", "latency_p50_s", "latency_p95_s", "latency_n", "cache_hits"]] \
        if "latency_n" in measured.columns else None
    if lat is not None:
        out += ["## Latency", "", markdown_table(lat, [("variant", "variant"), ("latency_p50_s", "p50 s"),
                                                       ("latency_p95_s", "p95 s"), ("latency_n", "timed calls"),
                                                       ("cache_hits", "cache hits (excluded)")]), ""]
    extra = _extra_columns(df)
    if extra:
        out += ["## Per field and retrieval", "", markdown_table(measured, [("variant", "variant")] + [(c, c) for c in extra]), ""]
    if (pd.to_numeric(measured["repeats"], errors="coerce").fillna(1) > 1).any():
        out += ["## Repeats", "", markdown_table(measured, REPEAT_DISPLAY), ""]
    notes = variant_notes(m, df)
    if notes:
        out += ["## Notes", "", *notes, ""]
    out += ["## Method", "", *[f"- {n}" for n in METHOD_NOTES], ""]
    return "\n".join(out)
