"""The price table as `harness prices` prints it: per-1M-token prices, batch, fine-tuned, date and source."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from harness import clock
from harness.models.pricing import STALE_AFTER_DAYS, PriceTable, table_rows


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def print_prices(pricing: Path | None, today: dt.date | None, *, as_json: bool = False) -> int:
    """`harness prices`: the table, one row per model, with its dates and sources ('!' marks a stale price)."""
    table = PriceTable.load(pricing)
    rows = table_rows(table, today)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    head = ["model", "input", "cached", "output", "batch in/out", "fine-tuned in/cached/out", "training",
            "retires", "new fine-tunes until", "date", "source"]
    lines = []
    notes: dict[str, str] = {}  # lifecycle source -> its footnote mark
    for r in rows:
        ft = "-"
        if r["ft_input"] is not None:
            ft = "/".join(_money(r[k]) for k in ("ft_input", "ft_cached_input", "ft_output"))
        training = "-"
        if r["training_per_1m"] is not None:
            training = f"{_money(r['training_per_1m'])}/1M"
        elif r["training_per_hour"] is not None:
            training = f"{_money(r['training_per_hour'])}/hour"
        date = (r["as_of"] or "-") + (" !" if r["stale"] else "")
        if r["ft_as_of"] and r["ft_as_of"] != r["as_of"]:
            date += f" (ft {r['ft_as_of']}{' !' if r['ft_stale'] else ''})"
        batch = "-" if r["batch_input"] is None else f"{_money(r['batch_input'])}/{_money(r['batch_output'])}"
        source = " ".join((r["source"] or "-").split())
        if r["ft_source"]:
            source += " | fine-tuned: " + " ".join(r["ft_source"].split())
        retires, until = lifecycle_cells(r, notes, clock.today(today))
        lines.append([r["model"], _money(r["input"]), _money(r["cached_input"]), _money(r["output"]), batch, ft,
                      training, retires, until, date, source])
    widths = [max(len(x) for x in col) for col in zip(head, *lines, strict=False)]
    for line in [head, *lines]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=False)) + "  " + line[-1])
    print(f"\nUSD per 1M tokens ({', '.join(table.sources)}); batch is the Batch API price "
          f"({'listed, else ' if any(e.batch for e in table.entries.values()) else ''}"
          f"{_money(table.batch_discount)} x standard); '!' marks a price read more than {STALE_AFTER_DAYS} days "
          f"before {clock.today(today)}: check it before relying on it.")
    for source, mark in notes.items():
        print(f"{mark} {source}")
    stages = {(s["closes"], s["who"]) for r in rows for s in r["new_fine_tunes_stages"] if s["who"] != "everyone"}
    if stages:
        print("New fine-tuning jobs close earlier for some organisations: "
              + "; ".join(f"from {closes} for {who}" for closes, who in sorted(stages)) + ".")
    print(f"A fine-tuned model (ft:BASE:org::id) answers until its base model retires; '(retired)' and '(closed)' "
          f"are as of {clock.today(today)} (--today).")
    listed = [f"{snap} ({r['model']})" for r in rows for snap in r["snapshots"]]
    if listed:
        print(f"Dated snapshots priced as the row in brackets: {', '.join(listed)}; any other dated id is unpriced "
              f"until a pricing file lists it.")
    return 0


def lifecycle_cells(row: dict, notes: dict[str, str], today: dt.date) -> tuple[str, str]:
    """The `retires` and `new fine-tunes until` cells of a row, each with the footnote mark of its source."""
    def mark(source: str | None) -> str:
        if not source:
            return ""
        text = " ".join(source.split())
        return notes.setdefault(text, f"[{len(notes) + 1}]")

    retires = "-"
    if row["retires"]:
        past = dt.date.fromisoformat(row["retires"]) <= today
        retires = f"{row['retires']}{' (retired)' if past else ''} {mark(row['retires_source'])}"
    until = "-"
    if row["new_fine_tunes_until"]:
        closed = row["new_fine_tunes_open"] is False
        until = f"{row['new_fine_tunes_until']}{' (closed)' if closed else ''} {mark(row['new_fine_tunes_source'])}"
    return retires, until
