"""Running cost per variant: token prices for API models, measured busy time for self-hosted ones.

Self-hosted models with `price_per_hour`: the server's busy time is the union of the in-flight intervals
[started_at, started_at + latency_s] of its answered calls (all variants on that model together, so
concurrent calls are not double-counted); busy time x price per hour is split over those calls in
proportion to their latency (a long RAG prompt costs more than a short zero-shot one). A cached answer is
costed at the latency measured when it was answered, so a warm re-run costs what the cold run did. Without
`price_per_hour` the cost is unknown, with the reason — never a plausible-looking $0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.numbers import as_float
from harness.rundir.manifest import Manifest, VariantInfo


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


def self_hosted_costs(frame: pd.DataFrame, variants: dict[str, VariantInfo],
                      models: dict[str, Any]) -> dict[str, SelfHosted]:
    """Cost per request for variants whose price basis is self-hosted (see the module docstring).

    A cached answer costs what it cost when it was answered: its record keeps the latency measured then, so
    a warm re-run reports the same cost as the cold one instead of $0. Unknown stays unknown (None)."""
    out: dict[str, SelfHosted] = {}
    by_model: dict[str, list[str]] = {}
    for name, info in variants.items():
        if info.price is not None and info.price.basis == "self-hosted" and not info.skipped:
            by_model.setdefault(str(info.model), []).append(name)
    for model, names in by_model.items():
        pph = variants[names[0]].price_per_hour
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


def apply_costs(df: pd.DataFrame, frame: pd.DataFrame, manifest: Manifest,
                config: dict[str, Any] | None) -> pd.DataFrame:
    """Fill cost per request / per 1,000 / per correct answer / per month (at `monthly_requests`) and a
    cost_note saying how each was obtained."""
    config = config or {}
    hosted = self_hosted_costs(frame, manifest.variants, config.get("models") or {})
    monthly = config.get("monthly_requests")
    notes: list[str | None] = []
    rps: list[float | None] = []
    for i, row in df.iterrows():
        name = row["variant"]
        price = manifest.variant(name).price
        note: str | None = None
        tput: float | None = None
        if str(row.get("status", "ok")).startswith("skipped") or not as_float(row.get("answered")):
            notes.append("no answered calls")
            rps.append(None)
            continue
        if name in hosted:
            h = hosted[name]
            # the records keep no per-call cost for a self-hosted model (None, never $0): the busy-time cost
            # replaces the summary's, and every answered call is then costed
            df.at[i, "cost_per_request_usd"] = h.cost_per_request
            if h.cost_per_request is not None and "cost_unknown" in df.columns:
                df.at[i, "cost_unknown"] = 0
            note, tput = h.note, h.throughput_rps
        elif price is None or price.basis in (None, "unknown"):
            note = f"no price known for {row.get('model_id')}; add it to a pricing file or set price: on the model"
        elif price.basis in ("per call", "reported"):  # an application under test (or a per-call price)
            note = f"cost per call: {price.source}"
        else:
            note = f"token prices: {price.basis} ({price.source})"
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
