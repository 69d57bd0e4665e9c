"""What a fine-tune costs to train, when it pays back, and the decision in words.

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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.stats import TEST_NAMES, PairedResult, paired_compare
from harness.records import Record
from harness.report.format import as_float, p_value, pct, pp, usd
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
    return next((n for n, v in manifest.variants.items() if v.kind == "fine_tuned"), None)


def baseline_variant(manifest: Manifest, present: list[str]) -> str | None:
    """The reference for paired comparisons: the first variant of kind baseline that has records, else
    the first variant with records."""
    for name in present:
        if manifest.variant(name).kind == "baseline":
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

    ft = config.get("finetune") or {}
    est = TrainingEstimate(epochs=int(ft.get("epochs") or 3), base_model=ft.get("base_model"))
    ev_info = manifest.evalset
    est.train_examples = ev_info.train_items
    ft_name = _ft_variant(manifest, config)
    ft_info = manifest.variant(ft_name)

    # Training price first: it decides whether token counting matters at all.
    price = ft_info.price
    if ft_info.provider == "local":
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
        from harness.prompts.variants import prompt_of, render_training_example

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
        est.training_chars = sum(len(m["content"]) for it in used
                                 for m in render_training_example(evalset, it, system_role=system_role, prompt=prompt))
        est.tokens_per_char = ratio
        est.calibration = (f"estimated from {n_prompts} measured prompts of variant {calib_name} "
                           f"({ratio:.3f} tokens per character)")
        est.tokens_per_epoch = ratio * est.training_chars
        est.billed_tokens = est.tokens_per_epoch * est.epochs if est.epochs is not None else None
        if evalset.content_hash != ev_info.content_hash:
            est.note = "the eval set changed since this run; the estimate uses its current train split"
    if ft_info.provider == "local":
        est.billed_tokens = None  # no per-token bill: the cost is compute time, set above
    if est.price_per_1m is not None and est.cost_usd is None and est.billed_tokens is not None:
        est.cost_usd = est.billed_tokens * est.price_per_1m / 1_000_000
    return est


# -- break-even and the decision -------------------------------------------------------------------------


@dataclass
class BreakEven:
    fine_tuned: str | None = None
    reference: str | None = None
    saving_per_request: float | None = None
    requests: float | None = None
    months: float | None = None
    text: str = ""


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
        be.text = ("No fine-tuned variant was measured in this run, so there is no break-even volume."
                   if ft_name is None or ft_name not in set(_ok_rows(df)["variant"]) else
                   f"{ft_name} did not answer every selected item, so no break-even volume is claimed.")
        return be
    ft = ok.loc[ft_name]
    ft_acc, ft_cost = as_float(ft["accuracy"]), as_float(ft["cost_per_request_usd"])
    others = ok[ok["kind"] != "fine_tuned"].copy()
    others["acc"] = pd.to_numeric(others["accuracy"], errors="coerce")
    others["cpr"] = pd.to_numeric(others["cost_per_request_usd"], errors="coerce")
    if ft_acc is None or ft_cost is None:
        be.text = f"The cost or accuracy of {ft_name} is unknown, so no break-even volume can be computed."
        return be
    ref = others[(others["acc"] >= ft_acc) & others["cpr"].notna()].sort_values(["cpr", "acc"],
                                                                                ascending=[True, False])
    if ref.empty:
        cheapest = others[others["cpr"].notna()].sort_values("cpr")
        if cheapest.empty:
            be.text = f"{ft_name} is the most accurate option measured; no priced prompt-only variant to compare."
        else:
            name = str(cheapest.index[0])
            d = ft_cost - float(cheapest.iloc[0]["cpr"])
            be.reference = name
            be.text = (f"{ft_name} is the most accurate option measured, so there is no equally accurate cheaper "
                       f"variant to pay back against; per request it costs {usd(abs(d), by_magnitude=True)} "
                       f"{'more' if d > 0 else 'less'} than the cheapest variant ({name}).")
        return be
    name = str(ref.index[0])
    be.reference = name
    saving = float(ref.iloc[0]["cpr"]) - ft_cost
    be.saving_per_request = saving
    if saving <= 0:
        ref_cost, ft_text = usd(float(ref.iloc[0]["cpr"]), by_magnitude=True), usd(ft_cost, by_magnitude=True)
        be.text = (f"{ft_name} is not cheaper per request than {name} (at least as accurate, {ref_cost} vs "
                   f"{ft_text}), so the fine-tune never pays back its training on cost alone.")
        return be
    saves = f"{ft_name} saves {usd(saving, by_magnitude=True)} per request against {name}"
    if training.cost_usd is None:
        be.text = (f"{saves}, but the training cost is unknown ({training.price_source or training.note}), "
                   "so no break-even volume.")
        return be
    be.requests = training.cost_usd / saving
    if training.cost_usd == 0:
        be.text = (f"{saves} (the cheapest variant at least as accurate) and its training has no per-token price "
                   f"({training.price_source or training.note}), so it is cheaper from the first request.")
        return be
    be.text = (f"{saves} (the cheapest variant at least as accurate); training "
               f"({usd(training.cost_usd, by_magnitude=True)}) pays back after {be.requests:,.0f} requests")
    if monthly_requests:
        be.months = be.requests / monthly_requests
        when = (f"about {be.months:.1f} months" if be.months >= 1 else
                f"within the first month (about {be.months * 30.44:.2g} days)")
        be.text += f", {when} at {monthly_requests:,} requests a month"
    be.text += "."
    return be


@dataclass
class Economics:
    training: TrainingEstimate
    break_even: BreakEven
    best_prompt: str | None = None
    ft_vs_prompt: PairedResult | None = None
    target_accuracy: float | None = None
    monthly_requests: int | None = None
    summary: list[str] = field(default_factory=list)


def _incomplete_lines(df: pd.DataFrame, measured: pd.DataFrame) -> list[str]:
    """One sentence per incomplete variant: one not asked every selected item is left out of every comparison
    below; one with unanswered calls is compared, its unanswered calls counted as not correct."""
    lines = []
    for _, row in df.iterrows():
        status = str(row.get("status", ""))
        if not status.startswith("incomplete"):
            continue
        acc = pct(as_float(row.get("accuracy")))
        if _not_asked(row):
            asked = int(as_float(row.get("n")) or 0)
            covers = f"its accuracy ({acc}) covers only the {asked} calls asked" if asked else "nothing was measured"
            lines.append(f"{row['variant']} is {status}: {covers}, so it is left out of the comparisons below; "
                         "finish it with `harness run --resume RUN_DIR`.")
        elif row["variant"] in set(measured["variant"]):
            lines.append(f"{row['variant']} is incomplete: accuracy {acc} — {int(row['errors'])} of {int(row['n'])} "
                         "calls unanswered (counted as not correct); re-ask them with "
                         "`harness run --resume RUN_DIR --retry-errors`.")
    return lines


def _unknown_lines(manifest: Manifest, measured: pd.DataFrame) -> list[str]:
    """Where the primary score could not be told (a judge that failed): accuracy is over the known ones."""
    primary = manifest.scoring.primary
    lines = []
    for _, row in measured.iterrows():
        unknown = int(as_float(row.get("accuracy_unknown")) or 0)
        if unknown:
            n = int(as_float(row.get("n")) or 0)
            lines.append(f"{row['variant']}: the primary score ({primary}) is unknown for {unknown} of {n} answers "
                         f"(the scorer could not tell, e.g. a judge that failed); its accuracy is over the "
                         f"{n - unknown} known.")
    return lines


def _eq(p_text: str) -> str:
    return p_text if p_text.startswith("<") else f"= {p_text}"


def analyse(manifest: Manifest, config: dict[str, Any] | None, df: pd.DataFrame,
            items: pd.DataFrame, records: list[Record]) -> Economics:
    """Training cost, break-even and the plain-language decision summary, from measured facts only."""
    config = config or {}
    target = config.get("target_accuracy")
    monthly = config.get("monthly_requests")
    training = estimate_training(manifest, config, records)
    measured = _ok_rows(df)
    ok = _comparable_rows(df)
    ft_name = _ft_variant(manifest, config)
    be = break_even(df, ft_name, training, monthly)
    eco = Economics(training, be, target_accuracy=target, monthly_requests=monthly)
    lines = eco.summary
    lines += _incomplete_lines(df, measured)
    lines += _unknown_lines(manifest, measured)
    n_train = training.train_examples
    if n_train is None:
        lines.append("The number of training examples is not recorded in this run.")
    else:
        size = ("fewer than OpenAI's minimum of 10" if n_train < 10 else
                "fewer than the hundreds usually advised for fine-tuning" if n_train < 100 else
                "in the range usually advised for fine-tuning")
        lines.append(f"There are {n_train} training examples ({size}).")

    prompt_rows = ok[ok["kind"] != "fine_tuned"].copy()
    prompt_rows["acc"] = pd.to_numeric(prompt_rows["accuracy"], errors="coerce")
    prompt_rows = prompt_rows[prompt_rows["acc"].notna()]
    if prompt_rows.empty:
        left_out = any(_not_asked(r) for _, r in measured[measured["kind"] != "fine_tuned"].iterrows())
        lines.append("No complete prompt-only variant (baseline, few-shot, RAG) was measured." if left_out else
                     "No prompt-only variant (baseline, few-shot, RAG) was measured.")
    else:
        best = prompt_rows.sort_values("acc", ascending=False, kind="stable").iloc[0]
        eco.best_prompt = str(best["variant"])
        acc, lo, hi = float(best["acc"]), as_float(best.get("accuracy_lo")), as_float(best.get("accuracy_hi"))
        ci = f" (95% CI {pct(lo)}–{pct(hi)}, {int(best['items'])} items)" if lo is not None else ""
        s = f"The best prompt-only variant, {best['variant']}, reached {pct(acc)} accuracy{ci}"
        if target is None:
            s += "; no target_accuracy is set in the config, so whether prompting falls short is not judged."
        elif hi is not None and hi < target:
            s += f", significantly short of the {pct(target, digits=0)} target (the whole interval lies below it)."
        elif lo is not None and lo >= target:
            s += f", meeting the {pct(target, digits=0)} target (the whole interval lies at or above it)."
        else:
            s += (f"; against the {pct(target, digits=0)} target the interval includes it, so it does not fall significantly "
                  "short — more test items would narrow it.")
        lines.append(s)

    if ft_name is not None and ft_name in set(measured["variant"]) and ft_name not in set(ok["variant"]):
        lines.append(f"The fine-tuned variant {ft_name} did not answer every selected item, so it is not "
                     "compared with the prompt-only variants here.")
    elif ft_name is None or ft_name not in set(ok["variant"]):
        lines.append("No fine-tuned variant was measured in this run." if ft_name is None else
                     f"The fine-tuned variant {ft_name} was not measured "
                     f"({manifest.variant(ft_name).skipped or 'no answered calls'}).")
    elif eco.best_prompt is not None:
        idx = set(items.index.get_level_values(0)) if len(items) else set()
        if eco.best_prompt in idx and ft_name in idx:
            pr = paired_compare(items.loc[eco.best_prompt], items.loc[ft_name], "correct")
            eco.ft_vs_prompt = pr
            if pr.n and pr.diff is not None:
                verdict = ("gained" if pr.diff > 0 else "lost" if pr.diff < 0 else "changed by")
                sig = "significant" if pr.p_value is not None and pr.p_value < 0.05 else "not significant"
                lines.append(
                    f"Fine-tuning ({ft_name}) {verdict} {pp(abs(pr.diff), signed=False, unit=False)} percentage "
                    f"points of accuracy against {eco.best_prompt} on {pr.n} paired items (95% CI {pp(pr.lo)} to "
                    f"{pp(pr.hi)}; {TEST_NAMES.get(pr.test, pr.test)} "
                    f"p {_eq(p_value(pr.p_value, sentence=True, bound=pr.p_bound))}, {sig} at 5%).")
    cost = usd(training.cost_usd, by_magnitude=True)
    if training.cost_usd is not None and training.billed_tokens is not None:
        lines.append(f"Estimated training cost: {cost} ({training.billed_tokens:,.0f} billed "
                     f"tokens over {training.epochs} epochs; {training.calibration}).")
    elif training.cost_usd is not None:
        lines.append(f"Training cost counted as {cost}: {training.price_source}.")
    else:
        why = training.note or training.price_source or "unknown reason"
        lines.append(f"Training cost could not be estimated: {why}.")
    lines.append(be.text)
    return eco
