"""Every number the reports and the compare output show, formatted in one place: money, percentages,
percentage points, p-values, intervals, and the table cell of any summary column, by the unit the analysis
declares for it (harness.analysis.units), never by its name.

The scalar formatters show None as "-"; `value` and `cell` also show NaN and pandas' NA as "-".
"""

from __future__ import annotations

from typing import Any

from harness.analysis.units import Unit
from harness.numbers import is_missing

MISSING = "-"
# How a table cell names the paired test behind a p-value (harness.analysis.stats.PairedResult.test); McNemar,
# the default, goes unnamed.
TEST_LABELS = {"sign-flip": "sign-flip", "cluster-sign-flip": "clustered sign-flip"}


def usd(x: float | None, *, trim: bool = False, by_magnitude: bool = False) -> str:
    """US dollars: $0, six decimals under a cent, four under a dollar, else cents with thousands separators.

    trim: under a cent, up to ten decimals without trailing zeros (HTML report: chart ticks, training cost).
    by_magnitude: choose the precision by |x| (sentences of the decision summary); by default by the signed
    value (tables).
    """
    if x is None:
        return MISSING
    if x == 0:
        return "$0"
    size = abs(x) if by_magnitude else x
    if size < 0.01:
        return "$" + f"{x:.10f}".rstrip("0").rstrip(".") if trim else f"${x:.6f}"
    return f"${x:.4f}" if size < 1 else f"${x:,.2f}"


def unit_price(x: float | None) -> str:
    """A price as a price table writes it, without trailing zeros: 3.0 -> "$3", 0.15 -> "$0.15"."""
    return MISSING if x is None else f"${x:g}"


def pct(x: float | None, *, digits: int = 1, unit: bool = True) -> str:
    """A share as a percentage: 0.4213 -> "42.1%" ("42.1" without the unit, as inside an interval)."""
    if x is None:
        return MISSING
    return f"{x:.{digits}%}" if unit else f"{x * 100:.{digits}f}"


def pp(x: float | None, *, digits: int = 1, signed: bool = True, unit: bool = True) -> str:
    """A difference of shares in percentage points: 0.06 -> "+6.0 pp"."""
    if x is None:
        return MISSING
    text = f"{x * 100:+.{digits}f}" if signed else f"{x * 100:.{digits}f}"
    return f"{text} pp" if unit else text


def p_value(x: float | None, *, sentence: bool = False, bound: bool = False) -> str:
    """A p-value for tables ("<0.001", "0.250"); sentence=True gives three significant digits ("0.503").
    bound: x is an upper bound (no resample reached the observed difference), said as "< x", never "p = 0"."""
    if x is None:
        return MISSING
    if sentence:
        return f"< {x:.3g}" if bound else "< 0.001" if x == 0 else f"{x:.3g}"
    return "<0.001" if x < 0.001 else f"<{x:.3f}" if bound else f"{x:.3f}"


def p_label(x: float | None) -> str:
    """"p<0.001" or "p=0.250" after a difference."""
    text = p_value(x)
    return f"p{text}" if text.startswith("<") else f"p={text}"


def interval(lo: float | None, hi: float | None, *, diff: bool = False, unit: bool = False) -> str:
    """A 95% interval: of a share "(29.4–55.8)", of a difference "[+28.0, +56.0]"; with unit=True the bounds
    carry "%" / " pp"."""
    if diff:
        return f"[{pp(lo, unit=unit)}, {pp(hi, unit=unit)}]"
    return f"({pct(lo, unit=unit)}–{pct(hi, unit=unit)})"


def value(v: Any, unit: Unit) -> str:
    """One value of a column that holds `unit`."""
    if is_missing(v):
        return MISSING
    if unit is Unit.P_VALUE:
        return p_value(v)
    if unit is Unit.PP:
        return pp(v)
    if unit is Unit.PCT:
        return pct(v)
    if unit is Unit.USD:
        return usd(v)
    if unit is Unit.COUNT:
        return str(int(v))
    if unit is Unit.VOLUME:
        return f"{int(v):,}"
    if unit is Unit.LABEL:
        return str(v)
    decimals = {Unit.SECONDS: 3, Unit.FRACTION: 3, Unit.RATE: 2, Unit.MEAN: 1}.get(unit)
    if decimals is not None:
        return f"{v:.{decimals}f}"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _is_false(v: Any) -> bool:
    return v is not None and not is_missing(v) and not bool(v)


def cell(row: Any, col: str, unit: Unit) -> str:
    """A table cell of column `col` (holding `unit`): rates carry their 95% interval, differences their interval
    and p-value, an incomplete variant its status."""
    v = row.get(col) if hasattr(row, "get") else row[col]
    text = value(v, unit)
    if col == "agreement" and is_missing(v) and row.get("agreement_role") == "reference":
        return "— (reference)"  # not 100%: the reference is not scored against itself
    if col == "accuracy" and is_missing(v) and _is_false(row.get("labelled")):
        return "not measured (no labels)"
    if is_missing(v):
        return text
    if col == "variant":
        status = row.get("status")
        if isinstance(status, str) and status.startswith("incomplete"):
            text += f" ({status})"
    elif col in ("accuracy", "format_valid", "agreement", "accuracy_ppi"):
        lo, hi = row.get(f"{col}_lo"), row.get(f"{col}_hi")
        if not is_missing(lo) and not is_missing(hi):
            text += " " + interval(lo, hi)
    elif col in ("accuracy_diff", "format_valid_diff", "agreement_diff"):
        lo, hi, p = row.get(f"{col}_lo"), row.get(f"{col}_hi"), row.get(col.replace("_diff", "_p"))
        family, holm = row.get("comparisons"), row.get(col.replace("_diff", "_p_holm"))
        several = not is_missing(family) and int(family) > 1 and not is_missing(holm)
        if not is_missing(lo) and not is_missing(hi):
            text += " " + interval(lo, hi, diff=True)
        if not is_missing(p):
            text += " " + p_label(holm if several else p)  # several variants vs one baseline: the adjusted p
            test = row.get(col.replace("_diff", "_test"))
            tags = [TEST_LABELS.get(test, test)] if col != "format_valid_diff" and isinstance(test, str) and (
                test != "mcnemar") else []  # sign-flip: per-item means over repeats, a graded score, clusters
            tags += ["Holm"] if several else []
            if tags:
                text += f" ({', '.join(tags)})"
    return text
