"""The one formatting module: the exact strings the tables, the reports and `harness compare` show."""

import math

import pandas as pd
import pytest

from harness.report.format import (
    as_float,
    cell,
    interval,
    is_missing,
    p_label,
    p_value,
    pct,
    pp,
    unit_price,
    usd,
    value,
)


@pytest.mark.parametrize("x, table, trimmed, sentence", [
    (0.0, "$0", "$0", "$0"),
    (0.000019, "$0.000019", "$0.000019", "$0.000019"),
    (0.0000123456, "$0.000012", "$0.0000123456", "$0.000012"),
    (0.5, "$0.5000", "$0.5000", "$0.5000"),
    (1234.5, "$1,234.50", "$1,234.50", "$1,234.50"),
    (-0.5, "$-0.500000", "$-0.5", "$-0.5000"),  # precision by the signed value unless by_magnitude
])
def test_usd(x, table, trimmed, sentence):
    assert usd(x) == table
    assert usd(x, trim=True) == trimmed
    assert usd(x, by_magnitude=True) == sentence
    assert usd(None) == "-"


def test_shares_points_and_p_values():
    assert pct(0.4213) == "42.1%" and pct(0.4213, unit=False) == "42.1" and pct(0.8, digits=0) == "80%"
    assert pp(0.06) == "+6.0 pp" and pp(-0.2, digits=0) == "-20 pp"
    assert pp(0.08, signed=False) == "8.0 pp" and pp(0.08, signed=False, unit=False) == "8.0"
    assert p_value(0.0004) == "<0.001" and p_value(0.25) == "0.250" and p_value(0.50312, sentence=True) == "0.503"
    assert p_label(0.0004) == "p<0.001" and p_label(0.25) == "p=0.250"
    assert [f(None) for f in (pct, pp, p_value)] == ["-", "-", "-"]
    assert unit_price(3.0) == "$3" and unit_price(0.15) == "$0.15"


def test_intervals():
    assert interval(0.294, 0.558) == "(29.4–55.8)"
    assert interval(0.294, 0.558, unit=True) == "(29.4%–55.8%)"
    assert interval(0.28, 0.56, diff=True) == "[+28.0, +56.0]"
    assert interval(-0.26, 0.1, diff=True, unit=True) == "[-26.0 pp, +10.0 pp]"


def test_missing_values():
    for v in (None, float("nan"), pd.NA):
        assert is_missing(v) and value(v, "accuracy") == "-"
    assert not is_missing(0.0)
    assert as_float("0.5") == 0.5 and as_float("x") is None and as_float(math.nan) is None and as_float(None) is None


@pytest.mark.parametrize("col, v, text", [
    ("accuracy_p", 0.25, "0.250"), ("accuracy_diff", 0.06, "+6.0 pp"), ("paired_n", 50.0, "50"),
    ("monthly_requests", 50000, "50,000"), ("throughput_rps", 1.234, "1.23"), ("acc_team", 0.74, "74.0%"),
    ("mrr", 0.79, "0.790"), ("cost_per_correct_usd", 0.000093, "$0.000093"), ("latency_p50_s", 1.2435, "1.244"),
    ("prompt_tokens_mean", 338.94, "338.9"), ("epochs", 3.0, "3"), ("vs_variant", "baseline", "baseline"),
])
def test_value_by_column(col, v, text):
    assert value(v, col) == text


def test_cell_adds_intervals_and_p_value():
    row = {"accuracy": 0.42, "accuracy_lo": 0.294, "accuracy_hi": 0.558, "accuracy_diff": 0.42,
           "accuracy_diff_lo": 0.28, "accuracy_diff_hi": 0.56, "accuracy_p": 0.0001, "format_valid": 1.0,
           "format_valid_lo": None, "format_valid_hi": 1.0, "format_valid_diff": 0.06, "format_valid_diff_lo": 0.0,
           "format_valid_diff_hi": 0.14, "format_valid_p": 0.25}
    assert cell(row, "accuracy") == "42.0% (29.4–55.8)"
    assert cell(row, "format_valid") == "100.0%"  # an interval needs both ends
    assert cell(row, "accuracy_diff") == "+42.0 pp [+28.0, +56.0] p<0.001"
    assert cell(pd.Series(row), "format_valid_diff") == "+6.0 pp [+0.0, +14.0] p=0.250"
