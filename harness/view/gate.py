"""The regression gate's verdict for the page: the same `harness compare` (accepted run -> viewed run), its rule,
each gated metric with its reason, and the items that made it fail.

The gate's result is read through its --json form (`gate_dict()`) and its text only, by key, so a renamed field
(baseline -> accepted) leaves the page working.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.view.data import ERROR, INVALID, RunData


def _first(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def _variant(c: dict[str, Any], side: str) -> str | None:
    """The comparison's variant on one side ('candidate' or 'accepted'), whatever the gate calls that side."""
    names = {"candidate": ("candidate_variant", "new_variant", "variant"),
             "accepted": ("accepted_variant", "baseline_variant", "old_variant", "variant")}[side]
    found = _first(c, *names)
    if found is None:
        found = next((v for k, v in c.items() if k.endswith("_variant") and isinstance(v, str)), None)
    return found


def _ids(changes: Any) -> list[str]:
    out = []
    for ch in changes or []:
        out.append(str(ch.get("item_id")) if isinstance(ch, dict) else str(ch))
    return out


def _failing_items(runs: list[RunData], ids: list[str], c: dict[str, Any], metric: str) -> list[str]:
    new, old = _variant(c, "candidate"), _variant(c, "accepted")
    if metric in ("format_valid", "error_rate"):
        bit = (INVALID | ERROR) if metric == "format_valid" else ERROR  # an unanswered call is not a valid format
        out = []
        for item_id in ids:
            now = runs[0].cells.get((str(new), item_id), {}).values()
            before = runs[1].cells.get((str(old), item_id), {}).values()
            if any(x.flags & bit for x in now) and not any(x.flags & bit for x in before):
                out.append(item_id)
        return out
    return _ids(_first(c, "right_to_wrong", "regressions"))


def _lines(result: Any) -> tuple[str, str]:
    """(the rule, the verdict line) as `harness compare` prints them."""
    from harness.report import gate_text

    try:
        text = gate_text.format_text(result)
    except Exception:  # noqa: BLE001 - the page still shows the metrics without the printed lines
        return "", ""
    lines = text.splitlines()
    fired = {f.rule for f in getattr(result, "failures", [])}
    rules = [x.strip() for x in gate_text.rule_lines(result)]
    rule = "; ".join(x for x in rules if x.split(":", 1)[0] in fired) or "; ".join(rules)
    verdict = next((x.removeprefix("result: ") for x in reversed(lines) if x.startswith("result: ")), "")
    return rule, verdict


def gate_summary(runs: list[RunData], ids: list[str], *, max_drop: float, alpha: float) -> dict[str, Any]:
    """The gate on runs [viewed, accepted]; `items` are positions in `ids`."""
    from harness.analysis.compare import compare_runs
    from harness.report.gate_text import gate_dict

    try:
        result = compare_runs(Path(runs[1].path), Path(runs[0].path), max_drop=max_drop, alpha=alpha)
    except HarnessError as exc:
        return {"ran": False, "failed": None, "verdict": f"the gate did not run: {exc}", "rule": "", "metrics": [],
                "items": [], "warnings": []}
    d = gate_dict(result)
    rule, verdict = _lines(result)
    failed = bool(d.get("failed", getattr(result, "failed", False)))
    metrics, failing = [], []
    for c in d.get("comparisons") or []:
        variant = _variant(c, "candidate")
        for m in c.get("metrics") or []:
            metrics.append({"variant": variant, "metric": m.get("metric"), "failed": bool(m.get("failed")),
                            "reason": m.get("reason") or "", "new": m.get("candidate"),
                            "old": _first(m, "accepted", "baseline"), "diff": m.get("diff"), "p": m.get("p_value")})
            if m.get("failed"):
                failing += _failing_items(runs, ids, c, str(m.get("metric")))
    incomplete = d.get("incomplete_reason") or ""
    index = {item_id: n for n, item_id in enumerate(ids)}
    return {"ran": True, "failed": failed, "exit_code": d.get("exit_code"),
            "verdict": verdict or ("FAIL" if failed else "ok"), "rule": rule, "incomplete": incomplete,
            "warnings": list(d.get("warnings") or []), "metrics": metrics,
            "items": sorted({index[i] for i in failing if i in index})}
