"""Records -> per-variant summary table -> summary.csv / summary.md (rebuildable at any time)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import HarnessError
from harness.runner import read_records
from harness.scoring import summarize
from harness.types import Record

CORE_COLUMNS = [
    "variant", "kind", "model", "model_id", "status", "n", "errors", "format_valid", "json_extractable",
    "accuracy", "accuracy_lenient", "cost_per_request_usd", "cost_per_1k_usd", "cost_per_correct_usd",
    "latency_p50_s", "latency_p95_s", "prompt_tokens_mean", "completion_tokens_mean",
]


def load_run(run_dir: Path) -> tuple[dict[str, Any], list[Record]]:
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        raise HarnessError(f"{run_dir}: not a run folder (no manifest.json)")
    manifest = json.loads(manifest_path.read_text("utf-8"))
    return manifest, read_records(run_dir / "records.jsonl")


def summary_frame(manifest: dict[str, Any], records: list[Record]) -> pd.DataFrame:
    label_fields = manifest.get("label_fields") or {}
    by_variant: dict[str, list[Record]] = {}
    for r in records:
        by_variant.setdefault(r.variant, []).append(r)
    variants: dict[str, Any] = manifest.get("variants") or {}
    order = list(variants) + [v for v in by_variant if v not in variants]
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
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in CORE_COLUMNS:
        if col not in df.columns:
            df[col] = None
    rest = [c for c in df.columns if c not in CORE_COLUMNS]
    return df[CORE_COLUMNS + rest]


def _fmt(value: Any, col: str) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if col.startswith(("format_valid", "json_extractable", "accuracy", "acc_", "error_rate", "recall", "macro_f1")):
        return f"{value:.1%}"
    if col == "mrr":
        return f"{value:.3f}"
    if col.endswith("_usd"):
        return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"
    if col.endswith("_s"):
        return f"{value:.3f}"
    if col.endswith("_mean"):
        return f"{value:.1f}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


DISPLAY = [
    ("variant", "variant"), ("model_id", "model"), ("n", "n"), ("errors", "errors"),
    ("format_valid", "format valid"), ("accuracy", "accuracy"), ("cost_per_request_usd", "cost/request"),
    ("cost_per_correct_usd", "cost/correct"), ("latency_p50_s", "p50 s"), ("latency_p95_s", "p95 s"),
    ("prompt_tokens_mean", "prompt tok"), ("completion_tokens_mean", "compl tok"),
]


def markdown_table(df: pd.DataFrame, columns: list[tuple[str, str]] | None = None) -> str:
    columns = columns or DISPLAY
    present = [(c, h) for c, h in columns if c in df.columns]
    lines = ["| " + " | ".join(h for _, h in present) + " |", "|" + "|".join("---" for _ in present) + "|"]
    for _, row in df.iterrows():
        if str(row.get("status", "ok")).startswith("skipped"):
            cells = [str(row["variant"]), str(row.get("model_id") or "-")] + ["-"] * (len(present) - 2)
        else:
            cells = [_fmt(row[c], c) for c, _ in present]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


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
        elif price.get("basis") == "self-hosted":
            notes.append(f"- {name}: cost $0 — {price.get('source')}")
    extra = [c for c in df.columns if c.startswith(("acc_", "macro_f1_")) or c in ("recall_at_k", "mrr")]
    if extra:
        out += ["## Per field and retrieval", "", markdown_table(df, [("variant", "variant")] + [(c, c) for c in extra]), ""]
    if manifest.get("message"):
        notes.append(f"- {manifest['message']}")
    if notes:
        out += ["## Notes", "", *notes, ""]
    return "\n".join(out)


def write_summary(run_dir: Path) -> pd.DataFrame:
    manifest, records = load_run(run_dir)
    df = summary_frame(manifest, records)
    df.to_csv(run_dir / "summary.csv", index=False)
    (run_dir / "summary.md").write_text(summary_markdown(manifest, df), encoding="utf-8")
    return df
