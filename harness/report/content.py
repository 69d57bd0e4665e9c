"""What the markdown and the HTML report both show: the columns of each table, the notes under them, the
fine-tuning facts and the method. markdown.py and html.py render it; neither imports the other."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.analysis import stats
from harness.analysis.units import Unit
from harness.numbers import is_missing
from harness.report.format import pct, unit_price, value
from harness.report.parity import with_agreement
from harness.report.service_text import interval_range
from harness.rundir.manifest import Manifest

if TYPE_CHECKING:
    from harness.analysis.economics import Economics

# (summary column, heading) per table.
DISPLAY = [
    ("variant", "variant"), ("model_id", "model"), ("n", "n"), ("errors", "errors"),
    ("format_valid", "format valid (95% CI)"), ("accuracy", "accuracy (95% CI)"),
    ("accuracy_ppi", "judge-corrected (PPI, 95% CI)"), ("accuracy_unknown", "primary unknown"),
    ("accuracy_diff", "Δ accuracy vs baseline [95% CI]"), ("cost_per_request_usd", "cost/request"),
    ("cost_per_correct_usd", "cost/correct"), ("latency_p50_s", "p50 s"), ("latency_p95_s", "p95 s"),
    ("prompt_tokens_mean", "prompt tok"), ("completion_tokens_mean", "compl tok"),
    ("reasoning_tokens_mean", "reasoning tok"),
]

# Shown only when some variant has them, so runs without reasoning models (or without unknown primary scores)
# keep their table.
OPTIONAL_DISPLAY = {"reasoning_tokens_mean", "accuracy_unknown", "accuracy_ppi"}


def display_columns(df: pd.DataFrame) -> list[tuple[str, str]]:
    """DISPLAY without the optional columns that are empty or zero in every row."""
    def has_values(col: str) -> bool:
        return col in df.columns and bool((pd.to_numeric(df[col], errors="coerce").fillna(0) > 0).any())

    return with_agreement(df, [(c, h) for c, h in DISPLAY if c not in OPTIONAL_DISPLAY or has_values(c)])

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
    "95% intervals for a variant's rates are Wilson score intervals over the distinct items asked; with repeats, or "
    "clusters declared in task.yaml (`cluster:`), the item (or its cluster) is the unit: a cluster-robust interval "
    "(Wilson's at the effective sample size, t with clusters - 1 degrees of freedom), never one that counts a "
    "record as independent evidence.",
    "Paired comparisons use every item both variants were asked: the difference has a paired-bootstrap 95% interval "
    f"({stats.BOOTSTRAP_SAMPLES} resamples of items, seed {stats.DEFAULT_SEED}) and an exact McNemar p-value "
    "(binomial test on the items that changed).",
    "With repeats > 1, each item's repeats are averaged, and the difference, its interval and the p-value are all "
    "measured on those per-item means (McNemar when every mean is 0 or 1, else the sign-flip test); the spread "
    "across repeats is shown.",
    "When task.yaml declares clusters (several items about one passage), paired differences get a cluster-robust "
    "t interval and a sign-flip test on each cluster's summed difference (marked \"clustered sign-flip\").",
    "When several variants are compared with the baseline, their p-values are Holm-adjusted over those "
    "comparisons (marked \"Holm\"; the raw p-values stay in summary.csv as accuracy_p and format_valid_p, the "
    "adjusted ones as accuracy_p_holm and format_valid_p_holm).",
    "Latency percentiles exclude cache hits.",
    "Accuracy is the task's primary score (task.yaml `primary:`, default exact / normalised match). For a graded "
    "(0..1) primary score it is the mean over the records whose score is known, its interval is the Wilson "
    "interval (conservative for a 0..1 mean), and its paired p-value comes from an exact sign-flip test on the "
    "per-item differences (10,000 seeded resamples above 20 changed items; marked \"sign-flip\") instead of "
    "McNemar, which applies to pass/fail scores only.",
    "Named scores (`score_<name>`) are means over the records whose score is known; a record without an answer, or "
    "with a truncated, empty or refused one, scores 0 on every score, and a score a scorer could not tell (a judge "
    "that failed) is unknown: left out of the mean and counted.",
    "Judge calls are evaluation cost, reported apart and never added to a variant's cost per request. A judge "
    "verdict cut off at the judge's max_tokens is asked once more with twice the budget before its score is "
    "unknown; unknown primary scores are counted in the \"primary unknown\" column.",
    "Where the primary score is a judge's and test items carry human scores (`human:`), the judge-corrected "
    "accuracy (PPI, prediction-powered inference) is the judge's mean on every answer plus the mean human-minus-"
    "judge difference on the human-scored answers, with variance var(judge)/N + var(human - judge)/n; shown beside "
    "the raw judge figure (accuracy_ppi in summary.csv).",
    "Per-field accuracy (acc_<field>) is the share right among the items whose expected answer has that field.",
    "A variant that was not asked every selected item (an interrupted run) is marked incomplete in every table and "
    "left out of the decision summary's comparisons.",
]


def primary_heading(manifest: Manifest) -> str:
    """The accuracy column's heading, naming the primary score when it is not the default."""
    primary = manifest.scoring.primary
    return "accuracy (95% CI)" if primary == "exact" else f"accuracy = {primary} (95% CI)"


def with_primary_heading(manifest: Manifest, columns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`columns` with the accuracy heading naming the primary score."""
    heading = primary_heading(manifest)
    return [(c, heading if c == "accuracy" else h) for c, h in columns]


def score_columns(manifest: Manifest, df: pd.DataFrame) -> list[tuple[str, str]]:
    """(column, heading) of every named score in the summary: its mean, then unknowns where there are any."""
    names = [s.name for s in manifest.scoring.scorers]
    names += [c.removeprefix("score_") for c in df.columns if c.startswith("score_")
              and not c.endswith(("_unknown", "_micro")) and c.removeprefix("score_") not in names]
    out: list[tuple[str, str]] = []
    for name in names:
        if f"score_{name}" not in df.columns:
            continue
        out.append((f"score_{name}", name))
        if f"score_{name}_micro" in df.columns:
            out.append((f"score_{name}_micro", f"{name} (micro)"))
        unknown = pd.to_numeric(df.get(f"score_{name}_unknown"), errors="coerce")
        if unknown is not None and bool((unknown.fillna(0) > 0).any()):
            out.append((f"score_{name}_unknown", f"{name} unknown"))
    if out and "eval_cost_usd" in df.columns:
        out.append(("eval_cost_usd", "evaluation cost (judge)"))
    return out


def score_lines(manifest: Manifest, df: pd.DataFrame) -> list[str]:
    """One markdown line per named scorer: what it measures, and its value for every variant that ran."""
    primary = manifest.scoring.primary
    lines = []
    ran = measured(df)
    for spec in manifest.scoring.scorers:
        name = spec.name
        col = f"score_{name}"
        if col not in ran.columns:
            continue
        parts = []
        for _, row in ran.iterrows():
            text = f"{row['variant']} {value(row.get(col), Unit.PCT)}"  # a named scorer's mean: a share
            unknown = row.get(f"{col}_unknown")
            if not is_missing(unknown) and int(unknown) > 0:
                text += f" ({int(unknown)} unknown)"
            parts.append(text)
        tag = " — primary" if name == primary else ""
        lines.append(f"- **{name}** ({spec.describe or spec.scorer}){tag}: " + ", ".join(parts))
    return lines


def judge_lines(manifest: Manifest, df: pd.DataFrame, agreement: list[dict[str, Any]]) -> list[str]:
    """The judge: which model, what grading cost (evaluation cost, apart from cost per request), and how well
    it agrees with people where items carry human scores."""
    judge = manifest.judge
    has_judge = any(s.scorer == "judge" for s in manifest.scoring.scorers)
    if not has_judge:
        return []
    if not judge:
        return ["- No judge model was configured (`judge: {model: NAME}` in the run config), so judge scores are "
                "unknown."]
    lines = [f"- Judge model: {judge.model} ({judge.model_id})"
             + (f" — unavailable: {judge.unavailable}; judge scores are unknown" if judge.unavailable else "")]
    if "eval_cost_usd" in df.columns:
        ran = measured(df)
        total = pd.to_numeric(ran["eval_cost_usd"], errors="coerce").sum(min_count=1)
        calls = pd.to_numeric(ran.get("eval_calls"), errors="coerce").sum(min_count=1)
        unknown = pd.to_numeric(ran.get("eval_cost_unknown"), errors="coerce").fillna(0).sum()
        cost = value(None if pd.isna(total) else float(total), Unit.USD)
        lines.append(f"- Evaluation cost (judge calls on the variants' answers): {cost} over "
                     f"{0 if pd.isna(calls) else int(calls)} calls"
                     + (f", {int(unknown)} of them without a known price" if unknown else "")
                     + "; not part of any variant's cost per request.")
    for a in agreement:
        kappa = "-" if a.get("kappa") is None else f"{a['kappa']:.2f}"
        lines.append(f"- Judge–human agreement for **{a['scorer']}**: {pct(a.get('agreement'))} exact agreement, "
                     f"Cohen's kappa {kappa}, on {a['graded']} human-scored answers"
                     + (f" ({a['unknown']} the judge could not grade)" if a.get("unknown") else "")
                     + (f"; calibration cost {value(a.get('eval_cost_usd'), Unit.USD)}"
                        if a.get("eval_cost_usd") is not None else ""))
    return lines


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of variants that ran (not skipped)."""
    return df[~df["status"].astype(str).str.startswith("skipped")]


def extra_columns(df: pd.DataFrame) -> list[str]:
    """Per-field accuracy and F1, and the retrieval metrics, where the run has them."""
    return [c for c in df.columns if c.startswith(("acc_", "macro_f1_", "agree_")) or c in ("recall_at_k", "mrr")]


def has_repeats(df: pd.DataFrame) -> bool:
    return bool((pd.to_numeric(df["repeats"], errors="coerce").fillna(1) > 1).any())


def variant_notes(manifest: Manifest, df: pd.DataFrame) -> list[str]:
    """Markdown bullet lines: skipped variants, how format validity was measured, missing prices,
    self-hosted costing, leakage warnings and the run's message."""
    notes = []
    for _, row in df.iterrows():
        status = str(row.get("status", ""))
        if status.startswith("skipped"):
            notes.append(f"- **{row['variant']}** {row['status']}")
        elif status.startswith("incomplete"):
            notes.append(_incomplete_note(row, status))
        line = bad_answers_line(row)
        if line:
            notes.append(f"- **{row['variant']}**: {line}")
    free_text = manifest.scoring.free_text
    if free_text:
        notes.append("- free-text task (no output_schema): the answer is the raw text, and format valid means a "
                     "non-empty answer")
    for name, info in manifest.variants.items():
        mode = info.structured_output
        if mode and not info.skipped and not free_text:
            how = "constrained decoding" if mode != "none" else "free generation"
            notes.append(f"- {name}: format validity measured under {how} (`{mode}`)")
        if info.price is not None and info.price.basis == "unknown":
            notes.append(f"- {name}: no price known for {info.model_id}; cost not reported")
    if "cost_note" in df.columns:
        for _, row in measured(df).iterrows():
            note = row.get("cost_note")
            if isinstance(note, str) and note.startswith("self-hosted"):
                cost = value(row.get("cost_per_request_usd"), Unit.USD)
                notes.append(f"- {row['variant']}: cost {cost}/request — {note}")
    calls = manifest.calls
    if calls.mode == "batch":
        ids = ", ".join(str(b.get("id")) for b in calls.batches or [])
        notes.append(f"- answered through the OpenAI Batch API ({ids}) and priced at its batch rates; a batch has "
                     f"no per-call latency, so p50/p95 are not reported")
    for line in manifest.leakage:
        notes.append(f"- leakage: {line}")
    if manifest.message:
        notes.append(f"- {manifest.message}")
    notes.extend(sequential_notes(manifest))
    return notes


def sequential_notes(manifest: Any) -> list[str]:
    """What `run.stop_when` decided, where the run's message does not already say it."""
    seq = manifest.sequential
    if seq is None:
        return []
    a, b = seq.compare
    if seq.verdict is None:
        return [f"- run.stop_when ({b} vs {a}): not settled after {seq.asked_items} of {seq.of_items} items; the "
                f"figures above are those of a fixed-size run"]
    if seq.continued:
        return [f"- run.stop_when: settled after {seq.settled_after} of {seq.of_items} items ({b} {seq.verdict} "
                f"vs {a}), then continued to every item with --resume"]
    return [f"- the run asked {seq.asked_items} of {seq.of_items} items: the items after the verdict were not asked "
            f"(not errors); `harness run --resume RUN_DIR` asks the rest"]


def _incomplete_note(row: Any, status: str) -> str:
    parts = []
    if _count(row, "not_asked"):
        parts.append("the run stopped before asking the rest (finish it with `harness run --resume RUN_DIR`); its "
                     "figures cover only the calls asked and it is not compared as if complete")
    if _count(row, "errors"):
        parts.append(f"those calls never got an answer ({_count(row, 'errors')} errors after retries) and count as "
                     "not correct")
    return f"- **{row['variant']}** is {status}: " + "; ".join(parts)


def _count(row: Any, col: str) -> int:
    v = row.get(col)
    return 0 if is_missing(v) else int(v)


def bad_answers_line(row: Any) -> str | None:
    """What went wrong with the answers a variant got, by cause, and what to change; None when nothing did.
    Each such answer is scored as format-invalid and wrong."""
    def n(col: str, one: str, many: str) -> str | None:
        k = _count(row, col)
        return None if not k else (one if k == 1 else many).format(k=k)

    parts = [p for p in (
        n("truncated", "1 answer hit max_tokens: raise run.max_tokens",
          "{k} answers hit max_tokens: raise run.max_tokens"),
        n("refused", "1 answer was a refusal", "{k} answers were refusals"),
        n("empty_answers", "1 answer was empty", "{k} answers were empty"),
        n("content_filtered", "1 answer was stopped by the provider's content filter",
          "{k} answers were stopped by the provider's content filter"),
        n("unparseable", "1 answer was not valid JSON for the schema",
          "{k} answers were not valid JSON for the schema"),
    ) if p]
    return "; ".join(parts) + " (each scored as format-invalid and wrong)" if parts else None


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
        ("break-even 95% interval", interval_range(be.interval) if be.interval is not None else None),
        ("break-even (months)", f"{be.months:.1f}" if be.months is not None else None),
        ("months it can still serve", f"{be.serves_months:.1f}" if be.serves_months is not None else None),
    ]
    return [(k, v) for k, v in facts if v is not None]


def split_note(m: Manifest) -> str | None:
    """What a train-split run is (`harness run --split train`): answers recorded as training targets, so its
    scores are no held-out evaluation. None for a test-split run."""
    if m.split != "train":
        return None
    n = m.selection.items if m.selection is not None and m.selection.items is not None else "?"
    return (f"TRAIN SPLIT: these are answers on {n} train items, recorded as training targets (harness finetune "
            f"export --from-run); they are not a held-out evaluation, and their scores say nothing about how a "
            f"model does on unseen items.")
