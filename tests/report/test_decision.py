"""The decision summary and the break-even sentence are written by the report from the numbers the analysis
measured (harness.analysis.economics holds no sentence)."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.analysis.economics import (
    BestPrompt,
    BreakEven,
    Economics,
    FineTuned,
    IncompleteVariant,
    Payback,
    TrainingEstimate,
    UnknownScores,
    break_even,
)
from harness.analysis.stats import PairedResult
from harness.report.decision import break_even_text, decision_lines


def _table(rows):
    return pd.DataFrame([{"variant": v, "kind": k, "status": "ok", "answered": 100, "accuracy": a,
                          "cost_per_request_usd": c} for v, k, a, c in rows])


def test_break_even_sentences():
    training = TrainingEstimate(cost_usd=30.0)
    df = _table([("base", "baseline", 0.80, 0.002), ("fs", "few_shot", 0.90, 0.004), ("ft", "fine_tuned", 0.85, 0.001)])
    assert break_even_text(break_even(df, "ft", training, 5000), training, 5000) == (
        "ft saves $0.003000 per request against fs (the cheapest variant at least as accurate); training ($30.00) "
        "pays back after 10,000 requests, about 2.0 months at 5,000 requests a month.")
    pricier = _table([("fs", "few_shot", 0.90, 0.004), ("ft", "fine_tuned", 0.85, 0.005)])
    assert "never pays back" in break_even_text(break_even(pricier, "ft", training, None), training, None)
    best = _table([("base", "baseline", 0.80, 0.002), ("ft", "fine_tuned", 0.95, 0.003)])
    text = break_even_text(break_even(best, "ft", training, None), training, None)
    assert "most accurate option" in text and "$0.001000 more" in text
    assert break_even_text(BreakEven(), training, None).startswith("No fine-tuned variant")
    unpriced = TrainingEstimate(cost_usd=None, price_source="no training price known for x")
    be = BreakEven("ft", "fs", 0.003, case=Payback.TRAINING_UNKNOWN)
    assert break_even_text(be, unpriced, None) == (
        "ft saves $0.003000 per request against fs, but the training cost is unknown (no training price known for "
        "x), so no break-even volume.")


def test_decision_lines_from_the_facts():
    pr = PairedResult(metric="correct", n=30, baseline=0.9, candidate=0.8, diff=-0.1, lo=-0.2, hi=0.0, p_value=0.125,
                      right_to_wrong=4, wrong_to_right=1, test="mcnemar")
    eco = Economics(TrainingEstimate(train_examples=12, cost_usd=None, note="no measured prompt tokens"),
                    BreakEven("ft", case=Payback.UNKNOWN), best_prompt="big", ft_vs_prompt=pr, target_accuracy=0.95,
                    primary="voice", fine_tuned="ft", fine_tuned_state=FineTuned.MEASURED,
                    best=BestPrompt("big", 0.9, 0.74, 0.97, 30),
                    incomplete=[IncompleteVariant("half", "incomplete: 15 of 30 items not asked", 0.5, 15, 0, True)],
                    unknown=[UnknownScores("big", 2, 30)])
    assert decision_lines(eco) == [
        "half is incomplete: 15 of 30 items not asked: its accuracy (50.0%) covers only the 15 calls asked, so it is "
        "left out of the comparisons below; finish it with `harness run --resume RUN_DIR`.",
        "big: the primary score (voice) is unknown for 2 of 30 answers (the scorer could not tell, e.g. a judge that "
        "failed); its accuracy is over the 28 known.",
        "There are 12 training examples (fewer than the hundreds usually advised for fine-tuning).",
        "The best prompt-only variant, big, reached 90.0% accuracy (95% CI 74.0%–97.0%, 30 items); against the 95% "
        "target the interval includes it, so it does not fall significantly short — more test items would narrow it.",
        "Fine-tuning (ft) lost 10.0 percentage points of accuracy against big on 30 paired items (95% CI -20.0 pp to "
        "+0.0 pp; McNemar p = 0.125, not significant at 5%).",
        "Training cost could not be estimated: no measured prompt tokens.",
        "The cost or accuracy of ft is unknown, so no break-even volume can be computed.",
    ]


@pytest.mark.parametrize("state, skipped, line", [
    (FineTuned.NONE, None, "No fine-tuned variant was measured in this run."),
    (FineTuned.NOT_MEASURED, "skipped: no key", "The fine-tuned variant ft was not measured (skipped: no key)."),
    (FineTuned.NOT_MEASURED, None, "The fine-tuned variant ft was not measured (no answered calls)."),
    (FineTuned.INCOMPLETE, None, "The fine-tuned variant ft did not answer every selected item, so it is not "
                                 "compared with the prompt-only variants here."),
])
def test_fine_tuned_not_compared(state, skipped, line):
    eco = Economics(TrainingEstimate(), BreakEven(), fine_tuned="ft", fine_tuned_state=state,
                    fine_tuned_skipped=skipped)
    assert line in decision_lines(eco)
