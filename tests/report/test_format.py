"""The one formatting module: the exact strings the tables, the reports and `harness compare` show, each value by
the unit the analysis declares for its column (never by the column's name)."""

import math

import pandas as pd
import pytest

from harness.analysis.units import Unit, column_units
from harness.numbers import as_float, is_missing
from harness.report.format import (
    cell,
    interval,
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
        assert is_missing(v) and value(v, Unit.PCT) == "-"
    assert not is_missing(0.0)
    assert as_float("0.5") == 0.5 and as_float("x") is None and as_float(math.nan) is None and as_float(None) is None


@pytest.mark.parametrize("col, v, text", [
    ("accuracy_p", 0.25, "0.250"), ("accuracy_diff", 0.06, "+6.0 pp"), ("paired_n", 50.0, "50"),
    ("monthly_requests", 50000, "50,000"), ("throughput_rps", 1.234, "1.23"), ("acc_team", 0.74, "74.0%"),
    ("mrr", 0.79, "0.790"), ("cost_per_correct_usd", 0.000093, "$0.000093"), ("latency_p50_s", 1.2435, "1.244"),
    ("prompt_tokens_mean", 338.94, "338.9"), ("epochs", 3.0, "3"), ("vs_variant", "baseline", "baseline"),
    ("accuracy_test", "sign-flip", "sign-flip"), ("accuracy_unknown", 2.0, "2"), ("recall_at_k", 0.5, "50.0%"),
])
def test_value_by_declared_unit(col, v, text):
    assert value(v, column_units([col])[col]) == text


def test_a_scorer_or_field_named_like_a_unit_is_a_share():
    """`tone_p` is not a p-value and `diff_ok` not a difference: a named scorer's column is a share, whatever
    its name, as is a per-field accuracy; the scorer's unknowns stay a count."""
    row = {"variant": "a", "score_tone_p": 0.75, "score_tone_p_unknown": 1, "score_diff_ok": 0.75,
           "score_diff_ok_unknown": 0, "score_x_unknown": 0.5, "score_x_unknown_unknown": 0, "acc_tone_p": 0.5,
           "macro_f1_diff_s": 0.25}
    units = column_units(row)
    assert {c: cell(row, c, units[c]) for c in row} == {
        "variant": "a", "score_tone_p": "75.0%", "score_tone_p_unknown": "1", "score_diff_ok": "75.0%",
        "score_diff_ok_unknown": "0", "score_x_unknown": "50.0%", "score_x_unknown_unknown": "0",
        "acc_tone_p": "50.0%", "macro_f1_diff_s": "25.0%"}


def test_cell_adds_intervals_and_p_value():
    row = {"accuracy": 0.42, "accuracy_lo": 0.294, "accuracy_hi": 0.558, "accuracy_diff": 0.42,
           "accuracy_diff_lo": 0.28, "accuracy_diff_hi": 0.56, "accuracy_p": 0.0001, "format_valid": 1.0,
           "format_valid_lo": None, "format_valid_hi": 1.0, "format_valid_diff": 0.06, "format_valid_diff_lo": 0.0,
           "format_valid_diff_hi": 0.14, "format_valid_p": 0.25}
    assert cell(row, "accuracy", Unit.PCT) == "42.0% (29.4–55.8)"
    assert cell(row, "format_valid", Unit.PCT) == "100.0%"  # an interval needs both ends
    assert cell(row, "accuracy_diff", Unit.PP) == "+42.0 pp [+28.0, +56.0] p<0.001"
    assert cell(pd.Series(row), "format_valid_diff", Unit.PP) == "+6.0 pp [+0.0, +14.0] p=0.250"
