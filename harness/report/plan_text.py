"""`harness plan`'s output in words, and the plan's lines in a run's report, markdown and HTML (when the run
folder holds the plan as plan.json: `harness plan CONFIG --detect 5pp --save RUN_DIR/plan.json`)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from harness.report.format import pct, pp, usd
from harness.rundir.manifest import SequentialInfo

PLAN_FILE = "plan.json"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _spread(c: dict[str, Any]) -> str:
    if c["discordance"] is not None:
        return f"discordance {pct(c['discordance'])}"
    return f"paired SD {c['sd']:.3f}"


def plan_text(plan: dict[str, Any]) -> list[str]:
    """The readable plan: the comparisons, the eval set, the cost and the time."""
    pilot = f", pilot {plan['pilot']}" if plan["pilot"] else ", no pilot run"
    out = [f"plan     {plan['config']}: detect {pp(plan['detect'], signed=False, digits=1)} with power "
           f"{plan['power']:.0%} at alpha {plan['alpha']:g} (two-sided paired test, as the report){pilot}", ""]
    rows = [[f"{c['candidate']} vs {c['baseline']}", c["score"], c["test"], _spread(c), f"{c['items_needed']:,}"]
            for c in plan["comparisons"]]
    out += _table(["comparison", "score", "test", "from", "items needed"], rows)
    out += [f"  {c['candidate']} vs {c['baseline']}: {c['basis']}" for c in plan["comparisons"]]
    out.append("")
    out += _evalset_lines(plan)
    out.append("")
    out += _cost_lines(plan)
    out += [f"warning: {w}" for w in plan["warnings"]]
    out += [f"skipped: {name}: {why}" for name, why in plan["skipped"].items()]
    return out


def _evalset_lines(plan: dict[str, Any]) -> list[str]:
    n, have, repeats = plan["items_needed"], plan["test_items"], plan["repeats"]
    worst = max(plan["comparisons"], key=lambda c: c["items_needed"])
    per = f"{n:,} items" + (f" (x {repeats} repeats = {n * repeats:,} calls per variant; repeats are not items)"
                            if repeats > 1 else "")
    if plan["enough_items"]:
        return [f"evalset  {plan['evalset']}: {have:,} test items; the plan needs {per}: enough "
                f"(`harness run --limit {n}` asks that many)"]
    return [f"evalset  {plan['evalset']}: the eval set has only {have:,} test items; {worst['candidate']} vs "
            f"{worst['baseline']} needs {per}: add {n - have:,} items or ask for a larger difference"]


def _cost_lines(plan: dict[str, Any]) -> list[str]:
    run = plan["run"]
    rows = []
    for c in plan["calls"]:
        per_call = c["cost_per_call_usd"]
        rows.append([c["variant"], c["model_id"], f"{c['prompt_tokens']:,.0f}", f"{c['completion_tokens']:,.0f}",
                     usd(per_call) if per_call is not None else f"unknown ({c['price']['basis']})",
                     usd(per_call * run["items"] * run["repeats"]) if per_call is not None else "-"])
    out = [f"cost of the planned run ({run['items']:,} items x {run['repeats']} repeat(s), {run['calls']:,} calls"
           f"{', Batch API prices' if plan['mode'] == 'batch' else ''}):"]
    out += _table(["variant", "model", "prompt tok/call", "output tok/call", "per call", "cost"], rows)
    for c in plan["calls"]:
        hourly = (f"; {usd(c['price_per_hour'])}/hour x the pilot's mean latency per call"
                  if c["price"]["basis"] == "self-hosted" and c["cost_per_call_usd"] is not None else "")
        out.append(f"  {c['variant']}: prompt tokens from {c['prompt_basis']}; output tokens from "
                   f"{c['completion_basis']}; price: {c['price']['source']}{hourly}")
    total = usd(run["cost_usd"]) if run["cost_usd"] is not None else (
        f"unknown: no price for {', '.join(run['unpriced'])}")
    out.append(f"total    {total}" + (" (judge calls not counted)" if plan["judge_not_counted"] else ""))
    out.append(f"time     {_duration(run['seconds'])}: {run['time_basis']}")
    return out


def report_lines(plan: dict[str, Any], items_asked: int | None, sequential: SequentialInfo | None = None) -> list[str]:
    """The plan's lines in report.md: what it asked for, and whether this run asked enough items (a settled
    sequential run: the items it asked before it stopped, by design)."""
    lines = [f"Plan (plan.json): to detect {pp(plan['detect'], signed=False)} with power {plan['power']:.0%} at "
             f"alpha {plan['alpha']:g}:"]
    for c in plan["comparisons"]:
        lines.append(f"- {c['candidate']} vs {c['baseline']}: {c['items_needed']:,} items ({c['test']}; "
                     f"{c['basis']})")
    settled = sequential if sequential is not None and sequential.holds_selection else None
    if settled is not None:
        items_asked = settled.asked_items
    if items_asked is not None:
        lines.append(_asked_line(items_asked, plan["items_needed"], settled))
    return lines


def _asked_line(asked: int, needed: int, settled: SequentialInfo | None) -> str:
    """Whether the run asked the items the plan needs; a settled sequential run stopped short by design."""
    if settled is None:
        return f"- this run asked {asked:,} items: " + (
            "as many as the plan needs" if asked >= needed else
            f"fewer than the {needed:,} the plan needs, so a real difference of that size may not show as significant")
    stopped = (f"- this run asked {asked:,} of {settled.of_items or asked:,} items: it stopped by design once "
               f"run.stop_when settled ({settled.compare[1]} {settled.verdict} vs {settled.compare[0]} after "
               f"{settled.settled_after or asked:,} items); ")
    return stopped + ("as many as the plan needs" if asked >= needed else
                      f"fewer than the {needed:,} the plan sizes a fixed-size run at: the stop_when verdict holds "
                      "wherever it stopped (anytime-valid), but another comparison on these items may miss a real "
                      "difference of that size")


def plan_section(run_dir: Path, items_asked: int | None, sequential: SequentialInfo | None = None) -> list[str]:
    """report.md's "Plan" section when the run folder holds plan.json (`harness plan ... --save`), else none."""
    path = run_dir / PLAN_FILE
    if not path.is_file():
        return []
    try:
        plan = json.loads(path.read_text("utf-8"))
        lines = report_lines(plan, items_asked, sequential)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        lines = [f"{path} could not be read ({type(exc).__name__}); write it again with `harness plan CONFIG "
                 f"--detect 5pp --save {path}`"]
    return ["## Plan", "", *lines, ""]


def plan_html(section: list[str] | None) -> list[str]:
    """report.html's "Plan" section from report.md's lines (plan_section): the same words, escaped."""
    if not section:
        return []
    heading, *body = [line for line in section if line]
    items = "".join(f"<li>{html.escape(x.removeprefix('- '))}</li>" for x in body if x.startswith("- "))
    paragraphs = "".join(f"<p>{html.escape(x)}</p>" for x in body if not x.startswith("- "))
    return [f'<h2 id="plan">{html.escape(heading.removeprefix("## "))}</h2>{paragraphs}'
            + (f"<ul>{items}</ul>" if items else "")]
