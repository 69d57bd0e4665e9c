"""`harness plan`: how many items each comparison needs, whether the eval set has them, and what a run of that
size would cost and take. No model is called."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness.clock import add_today_option
from harness.errors import HarnessError

PASS_FAIL_SCORERS = {"exact", "contains", "regex"}  # scorer families whose value is always 0 or 1


def add(sub: Any) -> None:
    p = sub.add_parser("plan", help="items needed to detect a difference, and what that run costs",
                       description="per comparison the report would make (each variant vs the baseline): the items "
                       "needed to detect the difference with the given power by the harness's paired test, whether "
                       "the eval set has them, and what that run would cost and take; no model is called")
    p.add_argument("config", type=Path, help="run config YAML")
    p.add_argument("--detect", required=True, metavar="PP", help="the difference to detect, e.g. 5pp")
    p.add_argument("--power", type=float, default=0.8, help="chance of detecting it (default 0.8)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the paired test (default 0.05)")
    p.add_argument("--from", dest="pilot", type=Path, metavar="RUN_DIR",
                   help="a pilot run of this config: its discordance / paired SD, tokens and latency")
    p.add_argument("--variants", help="comma-separated variants to plan for (default: all)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--save", type=Path, metavar="FILE",
                   help="also write the plan as JSON; a run folder holding it as plan.json shows it in its report")
    add_today_option(p)


def cmd(args: argparse.Namespace) -> int:
    from harness.analysis.power import check_level, parse_detect

    detect = parse_detect(args.detect)
    check_level("power", args.power)
    check_level("alpha", args.alpha)
    plan = build_plan(args.config, detect=detect, power=args.power, alpha=args.alpha, pilot=args.pilot,
                      only=args.variants, today=args.today)
    if args.save:
        args.save.write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(plan, indent=2) if args.json else "\n".join(plan_lines(plan)))
    return 0


def build_plan(config: Path, *, detect: float, power: float, alpha: float, pilot: Path | None = None,
               only: str | None = None, today: Any = None) -> dict[str, Any]:
    from harness.analysis import power as pw
    from harness.config import load_config
    from harness.data.evalset import load_evalset
    from harness.models.pricing import PriceTable
    from harness.rundir import RunFolder
    from harness.runner.estimate import call_estimates, pilot_calls, run_estimate
    from harness.runner.preflight import preflight

    cfg = load_config(config)
    ev = load_evalset(cfg.evalset)
    prices = PriceTable.load(cfg.pricing)
    found = preflight(cfg, ev, list(cfg.variants), prices, allow_unpriced=True, today=today, config_path=str(config))
    variants = _selected(cfg, only, found.skipped)
    baseline, pairs = _pairs(variants)
    records, items = _pilot(pilot, [v.name for v in variants]) if pilot else ([], None)
    if pilot and (was := RunFolder.open(pilot).manifest.evalset.content_hash) != ev.content_hash:
        found.warn(f"--from {pilot}: the pilot ran on another version of the eval set (hash {str(was)[:12]}, "
                   f"now {ev.content_hash[:12]}): its discordance, tokens and latency may not carry over")
    binary = _pass_fail(ev, cfg.run.repeats)
    plans = [pw.plan_pair(baseline, c, detect=detect, power=power, alpha=alpha, binary=binary,
                          evidence=pw.pilot_evidence(items, baseline, c) if items is not None else None,
                          pilot_name="pilot").as_dict() for c in pairs]
    needed = max(p["items_needed"] for p in plans)
    calls = call_estimates(cfg, ev, variants, prices, pilot_calls(records) if records else None,
                           pilot_name="pilot")
    return {
        "config": str(config), "detect": detect, "power": power, "alpha": alpha,
        "pilot": str(pilot) if pilot else None, "baseline": baseline, "comparisons": plans,
        "items_needed": needed, "evalset": str(ev.path), "test_items": len(ev.test), "repeats": cfg.run.repeats,
        "enough_items": needed <= len(ev.test), "mode": cfg.run.mode,
        "skipped": dict(found.skipped), "warnings": list(found.warnings),
        "judge_not_counted": cfg.judge is not None and any(s.is_async for s in _scorers(ev)),
        "calls": [c.as_dict() for c in calls], "run": run_estimate(cfg, calls, needed).as_dict(),
    }


def _selected(cfg: Any, only: str | None, skipped: dict[str, str]) -> list[Any]:
    names = [v.name for v in cfg.variants]
    wanted = [x.strip() for x in only.split(",") if x.strip()] if only else names
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise HarnessError(f"--variants: no variant {unknown[0]!r} in the config (variants: {', '.join(names)})")
    out = [cfg.variant(n) for n in wanted if n not in skipped]
    if len(out) < 2:
        raise HarnessError(f"plan needs two variants that would run to compare (have: {', '.join(wanted)}"
                           f"{'; skipped: ' + ', '.join(skipped) if skipped else ''}); add one or fix the skip")
    return out


def _pairs(variants: list[Any]) -> tuple[str, list[str]]:
    """The report's comparisons: the first variant of a paired-reference kind (baseline), else the first,
    against each of the others (harness.analysis.economics.baseline_variant)."""
    from harness import variant_kinds

    base = next((v.name for v in variants if variant_kinds.paired_reference(v.kind)), variants[0].name)
    return base, [v.name for v in variants if v.name != base]


def _scorers(ev: Any) -> list[Any]:
    from harness.scoring.task_yaml import scorers_of

    return scorers_of(ev)


def _pass_fail(ev: Any, repeats: int) -> bool:
    """Without a pilot: is the primary score 0/1 per item (the McNemar case)? Exact match, or a pass/fail
    scorer family, asked once per item; with repeats the per-item mean is graded (the sign-flip case)."""
    from harness.scoring.suite import TaskScoring

    scoring = TaskScoring.for_evalset(ev)
    if repeats > 1:
        return False
    family = next((s.scorer for s in scoring.scorers if s.name == scoring.primary), "exact")
    return family in PASS_FAIL_SCORERS


def _pilot(path: Path, needed: list[str]) -> tuple[list[Any], Any]:
    """The pilot's latest records and their per-item outcomes; one-line errors when it lacks a variant."""
    from harness.analysis import stats
    from harness.rundir import RunFolder

    folder = RunFolder.open(path)
    if not folder.has_records():
        raise HarnessError(f"--from {path}: the pilot run has no records; run it first (harness run CONFIG --limit 50)")
    records = folder.latest_records()
    have = list(dict.fromkeys(r.variant for r in records))
    missing = [n for n in needed if n not in have]
    if missing:
        raise HarnessError(f"--from {path}: the pilot has no records of variant {missing[0]!r} (it has: "
                           f"{', '.join(have)}); run the pilot with that variant, or plan only for the ones it has "
                           f"(--variants {','.join(n for n in needed if n in have)})")
    return records, stats.item_outcomes(stats.outcomes_frame(records))


# -- the table -----------------------------------------------------------------------------------------------

def plan_lines(plan: dict[str, Any]) -> list[str]:
    from harness.report.plan_text import plan_text

    return plan_text(plan)
