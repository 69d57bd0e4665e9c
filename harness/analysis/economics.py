"""What the variants cost, what a fine-tune costs to train, when it pays back, and the decision in words.

Every number here comes from the run folder (records, manifest, resolved config) or a named price
table; nothing is assumed silently. Where a number cannot be measured the result says why instead of
showing a plausible-looking zero.

Methods (also stated in the report):
- API models: cost per request is the mean of the records' token costs (price table or config price).
- Self-hosted models with `price_per_hour`: the server's busy time is the union of the in-flight
  intervals [started_at, started_at + latency_s] of its answered, non-cached calls in this run (all
  variants on that model together, so concurrent calls are not double-counted); busy time x price per
  hour is split over those calls in proportion to their latency (a long RAG prompt costs more than a
  short zero-shot one). A cached answer is costed at the latency measured when it was answered, so a warm
  re-run costs what the cold run did. Without `price_per_hour` the cost is unknown, with the reason.
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

import numpy as np
import pandas as pd

from harness.analysis.stats import PairedResult, paired_compare
from harness.records import Record
from harness.report.format import as_float, p_value, pct, pp, usd

# -- running cost ----------------------------------------------------------------------------------------


def busy_seconds(starts: np.ndarray, ends: np.ndarray) -> float:
    """Length of the union of [start, end] intervals: wall-clock time the server had work in flight."""
    if starts.size == 0:
        return 0.0
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    run_end = np.maximum.accumulate(e)
    # A new block starts where an interval begins after everything before it has ended.
    new_block = np.empty(s.size, dtype=bool)
    new_block[0] = True
    new_block[1:] = s[1:] > run_end[:-1]
    block_id = np.cumsum(new_block) - 1
    block_start = s[new_block]
    block_end = np.zeros(block_start.size)
    np.maximum.at(block_end, block_id, e)
    return float((block_end - block_start).sum())


@dataclass
class SelfHosted:
    cost_per_request: float | None
    note: str
    throughput_rps: float | None = None


def self_hosted_costs(frame: pd.DataFrame, variants: dict[str, dict[str, Any]],
                      models: dict[str, Any]) -> dict[str, SelfHosted]:
    """Cost per request for variants whose price basis is self-hosted (see the module docstring).

    A cached answer costs what it cost when it was answered: its record keeps the latency measured then, so
    a warm re-run reports the same cost as the cold one instead of $0. Unknown stays unknown (None)."""
    out: dict[str, SelfHosted] = {}
    by_model: dict[str, list[str]] = {}
    for name, info in variants.items():
        if (info.get("price") or {}).get("basis") == "self-hosted" and not info.get("skipped"):
            by_model.setdefault(str(info.get("model")), []).append(name)
    for model, names in by_model.items():
        pph = variants[names[0]].get("price_per_hour")
        if pph is None:
            pph = (models.get(model) or {}).get("price_per_hour")
        if pph is None:
            for n in names:
                out[n] = SelfHosted(None, f"self-hosted ({model}): no price_per_hour in the model config, so "
                                          f"cost is unknown; set models.{model}.price_per_hour to cost it")
            continue
        out.update(_hosted_model_costs(frame, names, model, float(pph)))
    return out


def _hosted_model_costs(frame: pd.DataFrame, names: list[str], model: str, pph: float) -> dict[str, SelfHosted]:
    timed = frame[frame["variant"].isin(names) & frame["answered"] & frame["latency_s"].notna()]
    live = timed[~timed["cache_hit"] & timed["started_at"].notna()]
    cached = timed[timed["cache_hit"]]
    if float(timed["latency_s"].sum()) <= 0:
        return {n: SelfHosted(None, f"self-hosted ({model}) at ${pph}/hour: no measured latency, cost unknown")
                for n in names}
    # Busy time of live calls is the union of their in-flight intervals (concurrent calls are not
    # double-counted); cached calls add their measured latency scaled by the same overlap, or 1:1 when
    # every answer came from the cache (a serial server, as llama.cpp's is).
    live_lat = float(live["latency_s"].sum())
    if live_lat > 0:
        starts = live["started_at"].to_numpy(dtype=float)
        overlap = busy_seconds(starts, starts + live["latency_s"].to_numpy(dtype=float)) / live_lat
    else:
        overlap = 1.0
    total_lat = float(timed["latency_s"].sum())
    busy = overlap * total_lat
    dollars = pph * busy / 3600
    how = (f"self-hosted ({model}) at ${pph}/hour x {busy:.1f} s busy time measured when answered, split by "
           f"latency over {len(timed)} calls" + (f" ({len(cached)} from the cache)" if len(cached) else ""))
    out = {}
    for n in names:
        mine = timed[timed["variant"] == n]
        if mine.empty:
            out[n] = SelfHosted(None, f"self-hosted ({model}): no answered calls to measure; cost unknown")
            continue
        share = float(mine["latency_s"].sum()) / total_lat
        rps = len(mine) / (busy * share) if busy * share > 0 else None
        out[n] = SelfHosted(dollars * share / len(mine), how, rps)
    return out


def apply_costs(df: pd.DataFrame, frame: pd.DataFrame, manifest: dict[str, Any],
                config: dict[str, Any] | None) -> pd.DataFrame:
    """Fill cost per request / per 1,000 / per correct answer / per month (at `monthly_requests`) and a
    cost_note saying how each was obtained."""
    config = config or {}
    variants = manifest.get("variants") or {}
    hosted = self_hosted_costs(frame, variants, config.get("models") or {})
    monthly = config.get("monthly_requests")
    notes: list[str | None] = []
    rps: list[float | None] = []
    for i, row in df.iterrows():
        name = row["variant"]
        info = variants.get(name, {})
        price = info.get("price") or {}
        note: str | None = None
        tput: float | None = None
        if str(row.get("status", "ok")).startswith("skipped") or not as_float(row.get("answered")):
            notes.append("no answered calls")
            rps.append(None)
            continue
        if name in hosted:
            h = hosted[name]
            df.at[i, "cost_per_request_usd"] = h.cost_per_request
            note, tput = h.note, h.throughput_rps
        elif price.get("basis") in (None, "unknown"):
            note = f"no price known for {row.get('model_id')}; add it to a pricing file or set price: on the model"
        else:
            note = f"token prices: {price.get('basis')} ({price.get('source')})"
        cpr = as_float(df.at[i, "cost_per_request_usd"])
        # total cost (answered calls were billed) over correct answers (of every item asked)
        n_correct = (as_float(row.get("accuracy")) or 0) * (as_float(row.get("n")) or 0)
        spent = cpr * (as_float(row.get("answered")) or 0) if cpr is not None else None
        df.at[i, "cost_per_1k_usd"] = cpr * 1000 if cpr is not None else None
        df.at[i, "cost_per_correct_usd"] = spent / n_correct if spent is not None and n_correct > 0.5 else None
        notes.append(note)
        rps.append(tput)
    df["cost_note"] = notes
    df["throughput_rps"] = rps
    df["monthly_requests"] = monthly
    df["monthly_cost_usd"] = [
        (as_float(c) * monthly if monthly is not None and as_float(c) is not None else None)
        for c in df["cost_per_request_usd"]
    ]
    return df


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


def _ft_variant(manifest: dict[str, Any], config: dict[str, Any]) -> str | None:
    variants = manifest.get("variants") or {}
    wanted = (config.get("finetune") or {}).get("variant")
    if wanted and wanted in variants:
        return wanted
    return next((n for n, v in variants.items() if v.get("kind") == "fine_tuned"), None)


def baseline_variant(manifest: dict[str, Any], present: list[str]) -> str | None:
    """The reference for paired comparisons: the first variant of kind baseline that has records, else
    the first variant with records."""
    variants = manifest.get("variants") or {}
    for name in present:
        if (variants.get(name) or {}).get("kind") == "baseline":
            return name
    return present[0] if present else None


def tokens_per_char(records: list[Record]) -> tuple[float | None, int]:
    chars = tokens = n = 0
    for r in records:
        if r.error is not None or r.usage is None or not r.usage.prompt_tokens:
            continue
        msgs = r.request.get("messages") or []
        c = sum(len(str(m.get("content") or "")) for m in msgs)
        if c:
            chars += c
            tokens += r.usage.prompt_tokens
            n += 1
    return (tokens / chars if chars else None), n


def _local_training_cost(est: TrainingEstimate, ft_info: dict[str, Any]) -> None:
    """A local LoRA costs the machine's time: measured training seconds x the model's price_per_hour, as
    recorded with the adapter. Without either the cost is unknown — never a plausible-looking $0."""
    adapter = ft_info.get("adapter") or {}
    secs, pph = as_float(adapter.get("train_seconds")), as_float(ft_info.get("price_per_hour"))
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


def estimate_training(manifest: dict[str, Any], config: dict[str, Any],
                      records: list[Record]) -> TrainingEstimate:
    from harness.models.pricing import PriceTable

    ft = config.get("finetune") or {}
    est = TrainingEstimate(epochs=int(ft.get("epochs") or 3), base_model=ft.get("base_model"))
    ev_info = manifest.get("evalset") or {}
    est.train_examples = ev_info.get("train_items")
    variants = manifest.get("variants") or {}
    ft_name = _ft_variant(manifest, config)
    ft_info = variants.get(ft_name or "", {})

    # Training price first: it decides whether token counting matters at all.
    price = ft_info.get("price") or {}
    if ft_info.get("provider") == "local":
        _local_training_cost(est, ft_info)
    elif price.get("training_per_1m") is not None:
        est.price_per_1m = float(price["training_per_1m"])
        est.price_source = f"price of {ft_info.get('model_id')} used in the run ({price.get('source')})"
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
    system_role = bool((variants.get(ft_name or calib_name or "", {}) or {}).get("system_role", True))
    ev_path = ev_info.get("path")
    if ratio is None:
        est.note = "no measured prompt tokens in this run to convert characters to tokens"
    elif not ev_path or not Path(ev_path).is_dir():
        est.note = f"eval set folder {ev_path} is gone, so the training examples cannot be rendered"
    else:
        from harness.data.evalset import load_evalset
        from harness.prompts.variants import render_training_example

        evalset = load_evalset(ev_path)
        train = list(evalset.train)
        if ft.get("max_train_items"):
            train = train[: int(ft["max_train_items"])]
        share = float(ft.get("validation_share") or 0.0)
        n_val = int(round(len(train) * share))
        used = train[: len(train) - n_val]
        est.train_examples = len(evalset.train)
        est.examples_used = len(used)
        est.training_chars = sum(len(m["content"]) for it in used
                                 for m in render_training_example(evalset, it, system_role=system_role))
        est.tokens_per_char = ratio
        est.calibration = (f"estimated from {n_prompts} measured prompts of variant {calib_name} "
                           f"({ratio:.3f} tokens per character)")
        est.tokens_per_epoch = ratio * est.training_chars
        est.billed_tokens = est.tokens_per_epoch * est.epochs if est.epochs is not None else None
        if evalset.content_hash != ev_info.get("content_hash"):
            est.note = "the eval set changed since this run; the estimate uses its current train split"
    if ft_info.get("provider") == "local":
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


def break_even(df: pd.DataFrame, ft_name: str | None, training: TrainingEstimate,
               monthly_requests: int | None) -> BreakEven:
    be = BreakEven(fine_tuned=ft_name)
    ok = _ok_rows(df).set_index("variant")
    if ft_name is None or ft_name not in ok.index:
        be.text = "No fine-tuned variant was measured in this run, so there is no break-even volume."
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


def analyse(manifest: dict[str, Any], config: dict[str, Any] | None, df: pd.DataFrame,
            items: pd.DataFrame, records: list[Record]) -> Economics:
    """Training cost, break-even and the plain-language decision summary, from measured facts only."""
    config = config or {}
    target = config.get("target_accuracy")
    monthly = config.get("monthly_requests")
    training = estimate_training(manifest, config, records)
    ok = _ok_rows(df)
    ft_name = _ft_variant(manifest, config)
    be = break_even(df, ft_name, training, monthly)
    eco = Economics(training, be, target_accuracy=target, monthly_requests=monthly)
    lines = eco.summary

    for _, row in ok.iterrows():
        status = str(row.get("status", ""))
        if status.startswith("incomplete"):
            lines.append(f"{row['variant']} is incomplete: accuracy {pct(as_float(row.get('accuracy')))} — "
                         f"{int(row['errors'])} of {int(row['n'])} calls unanswered (counted as not correct); "
                         f"re-ask them with `harness run --resume RUN_DIR --retry-errors`.")
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
        lines.append("No prompt-only variant (baseline, few-shot, RAG) was measured.")
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

    if ft_name is None or ft_name not in set(ok["variant"]):
        lines.append("No fine-tuned variant was measured in this run." if ft_name is None else
                     f"The fine-tuned variant {ft_name} was not measured "
                     f"({(manifest.get('variants') or {}).get(ft_name, {}).get('skipped') or 'no answered calls'}).")
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
                    f"{pp(pr.hi)}; McNemar p = {p_value(pr.p_value, sentence=True)}, {sig} at 5%).")
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
