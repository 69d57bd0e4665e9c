"""Missing and numeric values, read the same way by every stage: None, pandas' NA and NaN are missing; a value
that is not a number reads as None. A leaf module (it imports nothing from harness)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def is_missing(value: Any) -> bool:
    """None, pandas' NA or a float NaN: a cell with nothing to show."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def as_float(x: Any) -> float | None:
    """x as a float, or None where it is missing or not a number."""
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f
