"""What each summary column holds, declared where the columns are made, so the report formats a value by its
unit and never guesses it from a column name (a scorer named `tone_p` is a share, not a p-value).

Fixed columns are listed in COLUMN_UNITS. The columns made per task: each named scorer's `score_<name>` (a share
of 0..1), with `score_<name>_unknown` (a count) and, for an F1 scorer, `score_<name>_micro` (a share), as
harness.scoring.scorers.summarize writes them; per-field `acc_<field>` and `macro_f1_<field>` (shares). A
column nothing declares (one a later version adds) is shown as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Unit(Enum):
    TEXT = "text"  # shown as it is (a whole float without ".0")
    LABEL = "label"  # a name, shown exactly as it is
    COUNT = "count"  # a whole number: 50
    VOLUME = "volume"  # a whole number with thousands separators: 50,000
    PCT = "pct"  # a share of 0..1 (or a mean of 0..1 scores), as a percentage: 42.1%
    PP = "pp"  # a difference of shares, in percentage points: +6.0 pp
    P_VALUE = "p_value"  # <0.001, 0.250
    USD = "usd"  # US dollars
    SECONDS = "seconds"  # 1.244
    MEAN = "mean"  # a mean count (tokens per call): 338.9
    RATE = "rate"  # per second: 1.23
    FRACTION = "fraction"  # a 0..1 quantity that is not a share (mean reciprocal rank): 0.790


_SHARES = (
    "format_valid", "format_valid_lo", "format_valid_hi", "json_extractable", "accuracy", "accuracy_lo",
    "accuracy_hi", "accuracy_lenient", "accuracy_answered", "accuracy_exact", "accuracy_majority",
    "accuracy_repeat_std", "repeat_disagreement", "error_rate", "recall_at_k", "accuracy_ppi", "accuracy_ppi_lo",
    "accuracy_ppi_hi",
)
_POINTS = ("accuracy_diff", "accuracy_diff_lo", "accuracy_diff_hi", "format_valid_diff", "format_valid_diff_lo",
           "format_valid_diff_hi")
_COUNTS = (
    "n", "errors", "answered", "answer_issues", "truncated", "items", "repeats", "paired_n", "paired_unknown",
    "right_to_wrong", "wrong_to_right", "accuracy_unknown", "cost_unknown", "eval_calls", "eval_cost_unknown",
    "latency_n", "cache_hits", "refused", "empty_answers", "content_filtered", "unparseable", "not_asked",
    "comparisons", "paired_clusters", "ppi_labels", "accuracy_items", "unlabelled",
)
_DOLLARS = ("cost_per_request_usd", "cost_per_1k_usd", "cost_per_correct_usd", "monthly_cost_usd", "eval_cost_usd")

# Every fixed column of summary.csv (harness.analysis.summary, .costs and harness.scoring.scorers.summarize).
COLUMN_UNITS: dict[str, Unit] = {
    **{c: Unit.TEXT for c in ("variant", "kind", "model", "model_id", "status", "vs_variant", "price_basis",
                              "structured_output", "cost_note", "complete")},
    **{c: Unit.LABEL for c in ("primary", "accuracy_test")},
    **{c: Unit.PCT for c in _SHARES},
    **{c: Unit.PP for c in _POINTS},
    **{c: Unit.P_VALUE for c in ("accuracy_p", "format_valid_p", "accuracy_p_holm", "format_valid_p_holm")},
    **{c: Unit.COUNT for c in _COUNTS},
    **{c: Unit.USD for c in _DOLLARS},
    **{c: Unit.SECONDS for c in ("latency_p50_s", "latency_p95_s")},
    **{c: Unit.MEAN for c in ("prompt_tokens_mean", "completion_tokens_mean", "reasoning_tokens_mean")},
    "throughput_rps": Unit.RATE,
    "monthly_requests": Unit.VOLUME,
    "mrr": Unit.FRACTION,
}

# Agreement with a reference (harness.analysis.agreement).
COLUMN_UNITS.update({
    **{c: Unit.PCT for c in ("agreement", "agreement_lo", "agreement_hi")},
    **{c: Unit.PP for c in ("agreement_diff", "agreement_diff_lo", "agreement_diff_hi")},
    **{c: Unit.COUNT for c in ("agreement_items", "agreement_of_items", "agreement_no_reference",
                               "agreement_unknown", "agreement_paired_n")},
    **{c: Unit.TEXT for c in ("agreement_with", "agreement_run", "agreement_role", "agreement_vs", "labelled")},
    "agreement_p": Unit.P_VALUE, "agreement_test": Unit.LABEL,
})
# Per-field columns: one per field of the expected answer (agree_: of the reference's answer), each a share.
FIELD_PREFIXES = ("acc_", "macro_f1_", "agree_")


def scorer_names(columns: Iterable[str]) -> list[str]:
    """The named scorers of a summary table: each has `score_<name>` and `score_<name>_unknown`."""
    cols = list(columns)
    present = set(cols)
    return [c.removeprefix("score_") for c in cols if c.startswith("score_") and f"{c}_unknown" in present]


def column_units(columns: Iterable[str]) -> dict[str, Unit]:
    """The unit of every column of a summary table."""
    cols = list(columns)
    named: dict[str, Unit] = {}
    for name in scorer_names(cols):
        named[f"score_{name}"] = Unit.PCT
        named[f"score_{name}_unknown"] = Unit.COUNT
        named[f"score_{name}_micro"] = Unit.PCT
    out: dict[str, Unit] = {}
    for c in cols:
        if c in COLUMN_UNITS:
            out[c] = COLUMN_UNITS[c]
        elif c in named:
            out[c] = named[c]
        else:
            out[c] = Unit.PCT if c.startswith(FIELD_PREFIXES) else Unit.TEXT
    return out
