"""What a fine-tune costs to train, when it pays back, and the facts the decision summary is written from
(harness.report.decision writes it in words).

Every number here comes from the run folder (records, manifest, resolved config) or a named price
table; nothing is assumed silently. Where a number cannot be measured the result says why instead of
showing a plausible-looking zero. Running cost per variant is harness.analysis.costs.

Methods (also stated in the report):
- Training tokens: the train split rendered with the fine-tuned variant's own renderer
  (`render_training_example`), counted in characters and converted to tokens with the
  tokens-per-character ratio measured on this run's prompts (sum of prompt_tokens / sum of prompt
  characters). Billed tokens = tokens x epochs.
- Break-even: training cost / (reference cost per request - fine-tuned cost per request), where the
  reference is the cheapest non-fine-tuned variant at least as accurate as the fine-tuned one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import pandas as pd

from harness import variant_kinds
from harness.analysis.agreement import label_counts, labelled_record
from harness.analysis.break_even_interval import BreakEvenInterval, break_even_interval, cost_intervals
from harness.analysis.service_life import ServiceLife, months_to_serve, service_lives
from harness.analysis.stats import PairedResult, paired_compare
from harness.numbers import as_float
from harness.records import Record
from harness.rundir.manifest import Manifest, VariantInfo

# -- training cost -------------------------------------------------------------------------------------


@dataclass
class TrainingEstimate:
    train_examples: int | None = None
    examples_used: int | None = None
    epochs: float | None = 3  # the epochs actually used where known (local LoRA: from its training record)
    base_model: str | None = None
    tokens_per_char: float | None = None
    calibration: str = ""  # "estimated from N measured prompts of variant X"
    training_chars: int | None = None
    tokens_per_epoch: float | None = None
    billed_tokens: float | None = None
    price_per_1m: float | None = None
    price_source: str = ""
    cost_usd: float | None = None
    note: str = ""
    steps: int | None = None  # optimiser steps actually run (local LoRA)
    train_seconds: float | None = None  # measured training time (local LoRA)


def _ft_variant(manifest: Manifest, config: dict[str, Any]) -> str | None:
    wanted = (config.get("finetune") or {}).get("variant")
    if wanted and wanted in manifest.variants:
        return wanted
    return next((n for n, v in manifest.variants.items() if variant_kinds.trains(v.kind)), None)


def baseline_variant(manifest: Manifest, present: list[str]) -> str | None:
    """The reference for paired comparisons: the first variant of kind baseline that has records, else
    the first variant with records."""
    for name in present:
        if variant_kinds.paired_reference(manifest.variant(name).kind):
            return name
    return present[0] if present else None


def tokens_per_char(records: list[Record]) -> tuple[float | None, int]:
    chars = tokens = n = 0
    for r in records:
        if r.error is not None or r.usage is None or not r.usage.prompt_tokens:
            continue
        req = r.request or {}
        # a compact record (harness.rundir.compact) keeps only the prompt's size
        c = req.get("prompt_chars") or sum(len(str(m.get("content") or "")) for m in req.get("messages") or [])
        if c:
            chars += c
            tokens += r.usage.prompt_tokens
            n += 1
    return (tokens / chars if chars else None), n


def _local_training_cost(est: TrainingEstimate, ft_info: VariantInfo) -> None:
    """A local LoRA costs the machine's time: measured training seconds x the model's price_per_hour, as
    recorded with the adapter. Without either the cost is unknown — never a plausible-looking $0."""
    adapter = ft_info.adapter or {}
    secs, pph = as_float(adapter.get("train_seconds")), as_float(ft_info.price_per_hour)
    est.steps = adapter.get("steps")
    est.epochs = adapter.get("epochs")
    if secs is None:
        est.price_source = ("local LoRA training: no training record beside the adapter (<adapter>.json), so its "
                            "time and cost are unknown; retrain with `harness finetune local`")
        return
    est.train_seconds = secs
    if pph is None:
        est.price_source = (f"local LoRA training took {secs / 60:.1f} min; set price_per_hour on the model "
                            "to cost it")
        return
    est.cost_usd = secs / 3600 * pph
    est.price_source = f"local LoRA training: {secs / 60:.1f} min measured x ${pph:g}/hour (price_per_hour)"


def estimate_training(manifest: Manifest, config: dict[str, Any],
                      records: list[Record]) -> TrainingEstimate:
    from harness.models.pricing import PriceTable
    from harness.models.providers import find_provider

    ft = config.get("finetune") or {}
    est = TrainingEstimate(epochs=int(ft.get("epochs") or 3), base_model=ft.get("base_model"))
    ev_info = manifest.evalset
    est.train_examples = ev_info.train_items
    ft_name = _ft_variant(manifest, config)
    ft_info = manifest.variant(ft_name)
    provider = find_provider(ft_info.provider)
    trained_locally = provider is not None and provider.fine_tune_with == "local"  # billed in compute time

    # Training price first: it decides whether token counting matters at all.
    price = ft_info.price
    if trained_locally:
        _local_training_cost(est, ft_info)
    elif price is not None and price.training_per_1m is not None:
        est.price_per_1m = float(price.training_per_1m)
        est.price_source = f"price of {ft_info.model_id} used in the run ({price.source})"
    elif est.base_model:
        override = Path(config["pricing"]) if config.get("pricing") and Path(config["pricing"]).exists() else None
        table = PriceTable.load(override)
        found = table.lookup(est.base_model)
        if found.training is None:
            found = table.lookup(f"ft:{est.base_model}:org::id")
        if found.training is not None:
            est.price_per_1m = found.training
            est.price_source = f"price table, training of {est.base_model} ({found.source})"
        elif found.training_per_hour is not None:
            est.price_source = (f"training of {est.base_model} is billed per hour (${found.training_per_hour:g}/hour, "
                                f"{found.source}), not per token: its cost cannot be estimated from the data")
        else:
            est.price_source = (f"no training price known for {est.base_model}; add `training:` under its "
                                "fine_tuned entry in a pricing file")

    # Token count: calibrate on the fine-tuned variant's prompts (same renderer), else the baseline's.
    present = list(dict.fromkeys(r.variant for r in records))
    calib_name = ft_name if ft_name in present else baseline_variant(manifest, present)
    calib = [r for r in records if r.variant == calib_name]
    ratio, n_prompts = tokens_per_char(calib)
    calib_info = manifest.variant(ft_name or calib_name)
    system_role = calib_info.system_role is not False
    ev_path = ev_info.path
    if ratio is None:
        est.note = "no measured prompt tokens in this run to convert characters to tokens"
    elif not ev_path or not Path(ev_path).is_dir():
        est.note = f"eval set folder {ev_path} is gone, so the training examples cannot be rendered"
    else:
        from harness.data.evalset import load_evalset
        from harness.prompts.variants import message_chars, prompt_of, render_training_example

        evalset = load_evalset(ev_path)
        train = list(evalset.train)
        if ft.get("max_train_items"):
            train = train[: int(ft["max_train_items"])]
        share = float(ft.get("validation_share") or 0.0)
        n_val = int(round(len(train) * share))
        used = train[: len(train) - n_val]
        est.train_examples = len(evalset.train)
        est.examples_used = len(used)
        prompt = prompt_of(calib_info.settings)
        est.training_chars = sum(message_chars(m) for it in used
                                 for m in render_training_example(evalset, it, system_role=system_role, prompt=prompt))
        est.tokens_per_char = ratio
        est.calibration = (f"estimated from {n_prompts} measured prompts of variant {calib_name} "
                           f"({ratio:.3f} tokens per character)")
        est.tokens_per_epoch = ratio * est.training_chars
        est.billed_tokens = est.tokens_per_epoch * est.epochs if est.epochs is not None else None
        if evalset.content_hash != ev_info.content_hash:
            est.note = "the eval set changed since this run; the estimate uses its current train split"
    if trained_locally:
        est.billed_tokens = None  # no per-token bill: the cost is compute time, set above
    if est.price_per_1m is not None and est.cost_usd is None and est.billed_tokens is not None:
        est.cost_usd = est.billed_tokens * est.price_per_1m / 1_000_000
    return est


# -- break-even and the decision -------------------------------------------------------------------------


class Payback(Enum):
    """Which break-even case a run is in; harness.report.decision says each in words."""

    NOT_MEASURED = "not-measured"  # no fine-tuned variant, or none with answered calls
    INCOMPLETE = "incomplete"  # the fine-tuned variant did not answer every selected item
    UNKNOWN = "unknown"  # its cost or accuracy is unknown
    NO_LABELS = "no-labels"  # no item has an expected answer: accuracy was not measured (agreement instead)
    MOST_ACCURATE_UNPRICED = "most-accurate-unpriced"  # nothing as accurate, no priced prompt-only variant
    MOST_ACCURATE = "most-accurate"  # nothing as accurate; `reference` is the cheapest variant
    NOT_CHEAPER = "not-cheaper"  # the cheapest variant as accurate costs no more per request
    TRAINING_UNKNOWN = "training-unknown"  # it saves per request, but the training cost is unknown
    FREE_TRAINING = "free-training"  # it saves per request and training has no per-token price
    PAYS_BACK = "pays-back"  # it saves per request and pays back after `requests`
    RETIRES_FIRST = "retires-first"  # it would pay back after `months`, but retires after `serves_months`


@dataclass
class BreakEven:
    fine_tuned: str | None = None
    reference: str | None = None
    saving_per_request: float | None = None
    requests: float | None = None
    months: float | None = None
    case: Payback = Payback.NOT_MEASURED
    fine_tuned_cost: float | None = None  # per request
    reference_cost: float | None = None  # per request
    serves_months: float | None = None  # months the fine-tune can still answer (harness.analysis.service_life)
    interval: BreakEvenInterval | None = None  # 95% interval of `requests` (harness.analysis.break_even_interval)


def _ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    if "answered" not in df.columns:  # no variant has records
        return df.iloc[0:0]
    ok = df[~df["status"].astype(str).str.startswith("skipped")]
    return ok[pd.to_numeric(ok["answered"], errors="coerce").fillna(0) > 0]


def _not_asked(row: Any) -> int:
    return int(as_float(row.get("not_asked")) or 0)


def _comparable_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The measured variants that were asked every selected item: only these are compared (best variant,
    break-even). One that was not (an interrupted run) answered an easier or harder subset, for all we know."""
    ok = _ok_rows(df)
    if "not_asked" not in ok.columns:
        return ok
    return ok[pd.to_numeric(ok["not_asked"], errors="coerce").fillna(0) == 0]


def break_even(df: pd.DataFrame, ft_name: str | None, training: TrainingEstimate,
               monthly_requests: int | None) -> BreakEven:
    be = BreakEven(fine_tuned=ft_name)
    ok = _comparable_rows(df).set_index("variant")
    if ft_name is None or ft_name not in ok.index:
        measured = ft_name is not None and ft_name in set(_ok_rows(df)["variant"])
        be.case = Payback.INCOMPLETE if measured else Payback.NOT_MEASURED
        return be
    ft = ok.loc[ft_name]
    ft_acc, ft_cost = as_float(ft["accuracy"]), as_float(ft["cost_per_request_usd"])
    be.fine_tuned_cost = ft_cost
    others = ok[~ok["kind"].map(variant_kinds.trains).astype(bool)].copy()
    others["acc"] = pd.to_numeric(others["accuracy"], errors="coerce")
    others["cpr"] = pd.to_numeric(others["cost_per_request_usd"], errors="coerce")
    if ft_acc is None or ft_cost is None:
        be.case = Payback.UNKNOWN
        return be
    ref = others[(others["acc"] >= ft_acc) & others["cpr"].notna()].sort_values(["cpr", "acc"],
                                                                                ascending=[True, False])
    if ref.empty:
        cheapest = others[others["cpr"].notna()].sort_values("cpr")
        if cheapest.empty:
            be.case = Payback.MOST_ACCURATE_UNPRICED
        else:
            be.case, be.reference = Payback.MOST_ACCURATE, str(cheapest.index[0])
            be.reference_cost = float(cheapest.iloc[0]["cpr"])
        return be
    be.reference = str(ref.index[0])
    be.reference_cost = float(ref.iloc[0]["cpr"])
    saving = be.reference_cost - ft_cost
    be.saving_per_request = saving
    if saving <= 0:
        be.case = Payback.NOT_CHEAPER
    elif training.cost_usd is None:
        be.case = Payback.TRAINING_UNKNOWN
    else:
        be.requests = training.cost_usd / saving
        if training.cost_usd == 0:
            be.case = Payback.FREE_TRAINING
        else:
            be.case = Payback.PAYS_BACK
            if monthly_requests:
                be.months = be.requests / monthly_requests
    return be


class FineTuned(Enum):
    """Where the fine-tuned variant stands against the prompt-only ones."""

    NONE = "none"  # the run has no fine-tuned variant
    NOT_MEASURED = "not-measured"  # skipped, or no answered calls (`Economics.fine_tuned_skipped` says why)
    INCOMPLETE = "incomplete"  # it did not answer every selected item: not compared
    MEASURED = "measured"  # compared with the best prompt-only variant where there is one (`ft_vs_prompt`)


@dataclass
class IncompleteVariant:
    """A variant that is incomplete: one not asked every selected item (`left_out`) is left out of every
    comparison; one with unanswered calls is compared, its unanswered calls counted as not correct."""

    variant: str
    status: str
    accuracy: float | None
    n: int  # calls asked
    errors: int  # calls unanswered
    left_out: bool


@dataclass
class UnknownScores:
    """A measured variant some of whose primary scores are unknown (a judge that failed)."""

    variant: str
    unknown: int
    n: int


@dataclass
class BestPrompt:
    """The most accurate complete prompt-only variant."""

    variant: str
    accuracy: float
    lo: float | None  # its Wilson 95% interval
    hi: float | None
    items: int | None


@dataclass
class Economics:
    training: TrainingEstimate
    break_even: BreakEven
    best_prompt: str | None = None
    ft_vs_prompt: PairedResult | None = None
    target_accuracy: float | None = None
    monthly_requests: int | None = None
    primary: str = "exact"
    fine_tuned: str | None = None
    fine_tuned_state: FineTuned = FineTuned.NONE
    fine_tuned_skipped: str | None = None
    best: BestPrompt | None = None
    prompt_only_left_out: bool = False  # no complete prompt-only variant, though an incomplete one ran
    incomplete: list[IncompleteVariant] = field(default_factory=list)
    unknown: list[UnknownScores] = field(default_factory=list)
    service: list[ServiceLife] = field(default_factory=list)  # each fine-tuned variant's remaining life
    cost_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)  # variant -> cost/request 95%
    labelled: bool = True  # False: no item has an expected answer, accuracy was not measured
    agreement_with: str | None = None  # the reference the variants are scored against, where there is one
    label_counts: tuple[int, int] = (0, 0)  # (test items without an expected answer, test items) where some are


def _incomplete(df: pd.DataFrame, measured: pd.DataFrame) -> list[IncompleteVariant]:
    out = []
    for _, row in df.iterrows():
        status = str(row.get("status", ""))
        if not status.startswith("incomplete"):
            continue
        left_out = bool(_not_asked(row))
        if left_out or row["variant"] in set(measured["variant"]):
            out.append(IncompleteVariant(str(row["variant"]), status, as_float(row.get("accuracy")),
                                         int(as_float(row.get("n")) or 0), int(as_float(row.get("errors")) or 0),
                                         left_out))
    return out


def _unknown(measured: pd.DataFrame, records: list[Record]) -> list[UnknownScores]:
    """Where the primary score could not be told (a judge that failed): accuracy is over the known ones, of the
    answers to items with an expected answer (the others have no primary score to tell)."""
    out = []
    for _, row in measured.iterrows():
        unknown = int(as_float(row.get("accuracy_unknown")) or 0)
        if unknown:
            n = (sum(1 for r in records if r.variant == row["variant"] and labelled_record(r))
                 if as_float(row.get("unlabelled")) else int(as_float(row.get("n")) or 0))
            out.append(UnknownScores(str(row["variant"]), unknown, n))
    return out


def _best_prompt(ok: pd.DataFrame) -> BestPrompt | None:
    prompt_rows = ok[~ok["kind"].map(variant_kinds.trains).astype(bool)].copy()
    prompt_rows["acc"] = pd.to_numeric(prompt_rows["accuracy"], errors="coerce")
    prompt_rows = prompt_rows[prompt_rows["acc"].notna()]
    if prompt_rows.empty:
        return None
    best = prompt_rows.sort_values("acc", ascending=False, kind="stable").iloc[0]
    lo, hi = as_float(best.get("accuracy_lo")), as_float(best.get("accuracy_hi"))
    items = as_float(best.get("accuracy_items")) or as_float(best.get("items"))  # accuracy_items: labelled ones
    return BestPrompt(str(best["variant"]), float(best["acc"]), lo, hi, int(items) if items is not None else None)


def _serve_and_interval(eco: Economics, manifest: Manifest, config: dict[str, Any], df: pd.DataFrame,
                        records: list[Record], today: dt.date | None) -> None:
    """The months each fine-tune can serve (the break-even counts only those) and the 95% intervals of the
    break-even and of each variant's cost per request (the monthly projection's)."""
    be = eco.break_even
    eco.service = service_lives(manifest, config, today)
    be.serves_months = months_to_serve(eco.service, be.fine_tuned)
    if (be.case is Payback.PAYS_BACK and be.months is not None and be.serves_months is not None
            and be.months > be.serves_months):
        be.case = Payback.RETIRES_FIRST
    eco.cost_intervals = cost_intervals(records, df)
    if be.reference is not None and be.case in (Payback.PAYS_BACK, Payback.NOT_CHEAPER, Payback.RETIRES_FIRST):
        prompt_only = [str(v) for v, k in zip(df["variant"], df["kind"], strict=False) if not variant_kinds.trains(k)]
        ok = _comparable_rows(df)
        candidates = [v for v in ok["variant"] if v in prompt_only]
        be.interval = break_even_interval(records, df, str(be.fine_tuned), candidates, eco.training.cost_usd,
                                          eco.monthly_requests)


def analyse(manifest: Manifest, config: dict[str, Any] | None, df: pd.DataFrame,
            items: pd.DataFrame, records: list[Record], today: dt.date | None = None) -> Economics:
    """Training cost, break-even and the facts of the decision summary, from measured facts only; `today`
    (harness.clock) dates how long a fine-tune can still serve."""
    config = config or {}
    monthly = config.get("monthly_requests")
    training = estimate_training(manifest, config, records)
    measured = _ok_rows(df)
    ok = _comparable_rows(df)
    ft_name = _ft_variant(manifest, config)
    eco = Economics(training, break_even(df, ft_name, training, monthly), target_accuracy=config.get("target_accuracy"),
                    monthly_requests=monthly, fine_tuned=ft_name)
    _serve_and_interval(eco, manifest, config, df, records, today)
    eco.primary = manifest.scoring.primary
    eco.labelled = "labelled" not in measured.columns or bool(measured["labelled"].fillna(True).astype(bool).any())
    eco.agreement_with = next((r for r in df.get("agreement_with", []) if isinstance(r, str)), None)
    if not eco.labelled and eco.break_even.case is Payback.UNKNOWN:
        eco.break_even.case = Payback.NO_LABELS
    eco.incomplete = _incomplete(df, measured)
    eco.unknown = _unknown(measured, records)
    eco.label_counts = label_counts(measured)
    eco.best = _best_prompt(ok)
    if eco.best is None:
        untrained = measured[~measured["kind"].map(variant_kinds.trains).astype(bool)]
        eco.prompt_only_left_out = any(_not_asked(r) for _, r in untrained.iterrows())
    else:
        eco.best_prompt = eco.best.variant
    if ft_name is not None and ft_name in set(measured["variant"]) and ft_name not in set(ok["variant"]):
        eco.fine_tuned_state = FineTuned.INCOMPLETE
    elif ft_name is None:
        eco.fine_tuned_state = FineTuned.NONE
    elif ft_name not in set(ok["variant"]):
        eco.fine_tuned_state = FineTuned.NOT_MEASURED
        eco.fine_tuned_skipped = manifest.variant(ft_name).skipped or None
    else:
        eco.fine_tuned_state = FineTuned.MEASURED
        idx = set(items.index.get_level_values(0)) if len(items) else set()
        if eco.best_prompt is not None and eco.best_prompt in idx and ft_name in idx:
            eco.ft_vs_prompt = paired_compare(items.loc[eco.best_prompt], items.loc[ft_name], "correct")
    return eco
