"""What the markdown and the HTML report both show: the columns of each table, the notes under them, the
fine-tuning facts and the method. markdown.py and html.py render it; neither imports the other."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.analysis import stats
from harness.report.format import unit_price, value

if TYPE_CHECKING:
    from harness.analysis.economics import Economics

# (summary column, heading) per table.
DISPLAY = [
    ("variant", "variant"), ("model_id", "model"), ("n", "n"), ("errors", "errors"),
    ("format_valid", "format valid (95% CI)"), ("accuracy", "accuracy (95% CI)"),
    ("accuracy_diff", "Δ accuracy vs baseline [95% CI]"), ("cost_per_request_usd", "cost/request"),
    ("cost_per_correct_usd", "cost/correct"), ("latency_p50_s", "p50 s"), ("latency_p95_s", "p95 s"),
    ("prompt_tokens_mean", "prompt tok"), ("completion_tokens_mean", "compl tok"),
    ("reasoning_tokens_mean", "reasoning tok"),
]

# Shown only when some variant has them, so runs without reasoning models keep their table.
OPTIONAL_DISPLAY = {"reasoning_tokens_mean"}


def display_columns(df: pd.DataFrame) -> list[tuple[str, str]]:
    """DISPLAY without the optional columns that are empty or zero in every row."""
    def has_values(col: str) -> bool:
        return col in df.columns and bool((pd.to_numeric(df[col], errors="coerce").fillna(0) > 0).any())

    return [(c, h) for c, h in DISPLAY if c not in OPTIONAL_DISPLAY or has_values(c)]

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

LATENCY_DISPLAY = [
    ("variant", "variant"), ("latency_p50_s", "p50 s"), ("latency_p95_s", "p95 s"), ("latency_n", "timed calls"),
    ("cache_hits", "cache hits (excluded)"),
]

METHOD_NOTES = [
    "Accuracy and format validity are shares of *every* item asked: a bad answer (truncated, empty, refused, "
    "unparseable) is scored as format-invalid and wrong, and a call that never got an answer (error) counts as "
    "not correct and marks the variant incomplete. `accuracy_answered` is the share among answered calls.",
    "95% intervals for a variant's rates are Wilson score intervals over the distinct items asked.",
    "Paired comparisons use every item both variants were asked: the difference has a paired-bootstrap 95% interval "
    f"({stats.BOOTSTRAP_SAMPLES} resamples of items, seed {stats.DEFAULT_SEED}) and an exact McNemar p-value "
    "(binomial test on the items that changed).",
    "With repeats > 1, each item's repeats are combined (mean for the interval, strict majority for McNemar) and "
    "the spread across repeats is shown.",
    "Latency percentiles exclude cache hits.",
]


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of variants that ran (not skipped)."""
    return df[~df["status"].astype(str).str.startswith("skipped")]


def extra_columns(df: pd.DataFrame) -> list[str]:
    """Per-field accuracy and F1, and the retrieval metrics, where the run has them."""
    return [c for c in df.columns if c.startswith(("acc_", "macro_f1_")) or c in ("recall_at_k", "mrr")]


def has_repeats(df: pd.DataFrame) -> bool:
    return bool((pd.to_numeric(df["repeats"], errors="coerce").fillna(1) > 1).any())


def variant_notes(manifest: dict[str, Any], df: pd.DataFrame) -> list[str]:
    """Markdown bullet lines: skipped variants, how format validity was measured, missing prices,
    self-hosted costing, leakage warnings and the run's message."""
    notes = []
    for _, row in df.iterrows():
        if str(row.get("status", "")).startswith("skipped"):
            notes.append(f"- **{row['variant']}** {row['status']}")
        elif str(row.get("status", "")).startswith("incomplete"):
            notes.append(f"- **{row['variant']}** is {row['status']}: those calls never got an answer "
                         f"({row.get('errors')} errors after retries) and count as not correct")
    for name, info in (manifest.get("variants") or {}).items():
        mode = info.get("structured_output")
        if mode and not info.get("skipped"):
            how = "constrained decoding" if mode != "none" else "free generation"
            notes.append(f"- {name}: format validity measured under {how} (`{mode}`)")
        price = info.get("price") or {}
        if price.get("basis") == "unknown":
            notes.append(f"- {name}: no price known for {info.get('model_id')}; cost not reported")
    if "cost_note" in df.columns:
        for _, row in measured(df).iterrows():
            note = row.get("cost_note")
            if isinstance(note, str) and note.startswith("self-hosted"):
                cost = value(row.get("cost_per_request_usd"), "cost_per_request_usd")
                notes.append(f"- {row['variant']}: cost {cost}/request — {note}")
    for line in manifest.get("leakage") or []:
        notes.append(f"- leakage: {line}")
    if manifest.get("message"):
        notes.append(f"- {manifest['message']}")
    return notes


def training_facts(eco: Economics, money: Callable[[float], str]) -> list[tuple[str, Any]]:
    """(label, value) rows of the fine-tuning economics table, unknown ones left out; `money` formats the
    estimated training cost."""
    t, be = eco.training, eco.break_even
    facts = [
        ("training examples", t.train_examples),
        ("examples used for training", t.examples_used),
        ("training tokens per epoch (est.)", f"{t.tokens_per_epoch:,.0f}" if t.tokens_per_epoch else None),
        ("epochs", f"{t.epochs:g}" if t.epochs is not None else None),
        ("optimiser steps", t.steps),
        ("measured training time", f"{t.train_seconds / 60:.1f} min" if t.train_seconds is not None else None),
        ("billed training tokens (est.)", f"{t.billed_tokens:,.0f}" if t.billed_tokens else None),
        ("training price per 1M tokens", unit_price(t.price_per_1m) if t.price_per_1m is not None else None),
        ("price source", t.price_source or None),
        ("estimated training cost", money(t.cost_usd) if t.cost_usd is not None else None),
        ("token method", t.calibration or None),
        ("note", t.note or None),
        ("break-even reference", be.reference),
        ("break-even volume (requests)", f"{be.requests:,.0f}" if be.requests is not None else None),
    ]
    return [(k, v) for k, v in facts if v is not None]
