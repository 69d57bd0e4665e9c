"""The decision summary and the break-even sentence, in words, from the facts harness.analysis.economics
measured; the markdown and the HTML report print the same lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.analysis.economics import (
    BreakEven,
    Economics,
    FineTuned,
    IncompleteVariant,
    Payback,
    TrainingEstimate,
    UnknownScores,
)
from harness.analysis.stats import TEST_NAMES
from harness.report.format import p_value, pct, pp, usd
from harness.report.service_text import interval_sentence, months_text, service_line
from harness.report.stats_text import fine_tune_p, stats_lines

if TYPE_CHECKING:
    import pandas as pd


def _money(x: float | None) -> str:
    return usd(x, by_magnitude=True)


def break_even_text(be: BreakEven, training: TrainingEstimate, monthly_requests: int | None) -> str:
    """The break-even sentence, then its 95% interval where one was computed."""
    text = _break_even_point(be, training, monthly_requests)
    interval = interval_sentence(be.interval)
    return f"{text} {interval}" if interval else text


def _break_even_point(be: BreakEven, training: TrainingEstimate, monthly_requests: int | None) -> str:
    ft, ref = be.fine_tuned, be.reference
    if be.case is Payback.NOT_MEASURED:
        return "No fine-tuned variant was measured in this run, so there is no break-even volume."
    if be.case is Payback.INCOMPLETE:
        return f"{ft} did not answer every selected item, so no break-even volume is claimed."
    if be.case is Payback.UNKNOWN:
        return f"The cost or accuracy of {ft} is unknown, so no break-even volume can be computed."
    if be.case is Payback.NO_LABELS:
        return ("No break-even volume: it needs accuracy, which was not measured (no item has an `expected` "
                "answer); weigh each variant's cost per request against its agreement with the reference instead.")
    if be.case is Payback.MOST_ACCURATE_UNPRICED:
        return f"{ft} is the most accurate option measured; no priced prompt-only variant to compare."
    if be.case is Payback.MOST_ACCURATE:
        d = (be.fine_tuned_cost or 0.0) - (be.reference_cost or 0.0)
        return (f"{ft} is the most accurate option measured, so there is no equally accurate cheaper variant to "
                f"pay back against; per request it costs {_money(abs(d))} {'more' if d > 0 else 'less'} than the "
                f"cheapest variant ({ref}).")
    if be.case is Payback.NOT_CHEAPER:
        return (f"{ft} is not cheaper per request than {ref} (at least as accurate, {_money(be.reference_cost)} vs "
                f"{_money(be.fine_tuned_cost)}), so the fine-tune never pays back its training on cost alone.")
    saves = f"{ft} saves {_money(be.saving_per_request)} per request against {ref}"
    if be.case is Payback.TRAINING_UNKNOWN:
        return (f"{saves}, but the training cost is unknown ({training.price_source or training.note}), so no "
                "break-even volume.")
    if be.case is Payback.FREE_TRAINING:
        return (f"{saves} (the cheapest variant at least as accurate) and its training has no per-token price "
                f"({training.price_source or training.note}), so it is cheaper from the first request.")
    text = (f"{saves} (the cheapest variant at least as accurate); training ({_money(training.cost_usd)}) pays back "
            f"after {be.requests:,.0f} requests")
    if be.months is not None and monthly_requests:
        when = (f"about {be.months:.1f} months" if be.months >= 1 else
                f"within the first month (about {be.months * 30.44:.2g} days)")
        text += f", {when} at {monthly_requests:,} requests a month"
    if be.case is Payback.RETIRES_FIRST and be.months is not None and be.serves_months is not None:
        text = text.replace("pays back after", "would pay back after", 1)
        text += (f", but {ft} retires before it pays back: needs {months_text(be.months)}, has "
                 f"{months_text(be.serves_months) if be.serves_months > 0 else 'none'}")
    return text + "."


def _incomplete_line(v: IncompleteVariant, labelled: bool = True) -> str:
    acc = pct(v.accuracy)
    if v.left_out:
        measured = f"its accuracy ({acc}) covers" if labelled else "its scores cover"
        covers = f"{measured} only the {v.n} calls asked" if v.n else "nothing was measured"
        return (f"{v.variant} is {v.status}: {covers}, so it is left out of the comparisons below; finish it with "
                "`harness run --resume RUN_DIR`.")
    what = f"accuracy {acc} — " if labelled else ""
    counted = "not correct" if labelled else "not agreeing with the reference"
    return (f"{v.variant} is incomplete: {what}{v.errors} of {v.n} calls unanswered (counted as {counted}); "
            "re-ask them with `harness run --resume RUN_DIR --retry-errors`.")


def _unknown_line(u: UnknownScores, primary: str) -> str:
    return (f"{u.variant}: the primary score ({primary}) is unknown for {u.unknown} of {u.n} answers (the scorer "
            f"could not tell, e.g. a judge that failed); its accuracy is over the {u.n - u.unknown} known.")


def _labels_line(eco: Economics) -> str | None:
    """Where only some test items have an expected answer: once, what accuracy and agreement are over."""
    unlabelled, total = eco.label_counts
    if not eco.labelled or not 0 < unlabelled < total:
        return None
    ref = eco.agreement_with or "the reference"
    return (f"{unlabelled} of {total} test items have no expected answer: accuracy is over the {total - unlabelled} "
            f"labelled items; agreement with {ref} covers all of them.")


def _training_examples_line(n_train: int | None) -> str:
    if n_train is None:
        return "The number of training examples is not recorded in this run."
    size = ("fewer than OpenAI's minimum of 10" if n_train < 10 else
            "fewer than the hundreds usually advised for fine-tuning" if n_train < 100 else
            "in the range usually advised for fine-tuning")
    return f"There are {n_train} training examples ({size})."


def _prompt_line(eco: Economics) -> str:
    best, target = eco.best, eco.target_accuracy
    if not eco.labelled:
        ref = eco.agreement_with or "a reference"
        return ("Accuracy was not measured (no item has an `expected` answer), so no variant is judged on accuracy, "
                f"against target_accuracy or for a break-even: they are compared by agreement with {ref} (the "
                f"agreement lines above and the section \"Agreement with {ref}\").")
    if best is None:
        return ("No complete prompt-only variant (baseline, few-shot, RAG) was measured." if eco.prompt_only_left_out
                else "No prompt-only variant (baseline, few-shot, RAG) was measured.")
    lo, hi = best.lo, best.hi
    ci = f" (95% CI {pct(lo)}–{pct(hi)}, {best.items} items)" if lo is not None else ""
    s = f"The best prompt-only variant, {best.variant}, reached {pct(best.accuracy)} accuracy{ci}"
    if target is None:
        return s + "; no target_accuracy is set in the config, so whether prompting falls short is not judged."
    if hi is not None and hi < target:
        return s + f", significantly short of the {pct(target, digits=0)} target (the whole interval lies below it)."
    if lo is not None and lo >= target:
        return s + f", meeting the {pct(target, digits=0)} target (the whole interval lies at or above it)."
    return s + (f"; against the {pct(target, digits=0)} target the interval includes it, so it does not fall "
                "significantly short — more test items would narrow it.")


def _fine_tuned_line(eco: Economics, adjusted: tuple[float | None, int] = (None, 1)) -> str | None:
    ft = eco.fine_tuned
    if eco.fine_tuned_state is FineTuned.INCOMPLETE:
        return (f"The fine-tuned variant {ft} did not answer every selected item, so it is not compared with the "
                "prompt-only variants here.")
    if eco.fine_tuned_state is FineTuned.NONE:
        return "No fine-tuned variant was measured in this run."
    if eco.fine_tuned_state is FineTuned.NOT_MEASURED:
        return f"The fine-tuned variant {ft} was not measured ({eco.fine_tuned_skipped or 'no answered calls'})."
    pr = eco.ft_vs_prompt
    if pr is None or not pr.n or pr.diff is None:
        return None
    verdict = "gained" if pr.diff > 0 else "lost" if pr.diff < 0 else "changed by"
    q, family = adjusted  # several comparisons in the report: significance on the Holm-adjusted p
    gate_p = q if q is not None else pr.p_value
    sig = "significant" if gate_p is not None and gate_p < 0.05 else "not significant"
    p = p_value(pr.p_value, sentence=True, bound=pr.p_bound)
    holm = "" if q is None else f", Holm-adjusted over {family} comparisons p = {p_value(q, sentence=True)}"
    return (f"Fine-tuning ({ft}) {verdict} {pp(abs(pr.diff), signed=False, unit=False)} percentage points of "
            f"accuracy against {eco.best_prompt} on {pr.n} paired items (95% CI {pp(pr.lo)} to {pp(pr.hi)}; "
            f"{TEST_NAMES.get(pr.test, pr.test)} p {p if p.startswith('<') else f'= {p}'}{holm}, {sig} at 5%).")


def _training_cost_line(t: TrainingEstimate) -> str:
    cost = _money(t.cost_usd)
    if t.cost_usd is not None and t.billed_tokens is not None:
        return (f"Estimated training cost: {cost} ({t.billed_tokens:,.0f} billed tokens over {t.epochs} epochs; "
                f"{t.calibration}).")
    if t.cost_usd is not None:
        return f"Training cost counted as {cost}: {t.price_source}."
    return f"Training cost could not be estimated: {t.note or t.price_source or 'unknown reason'}."


def decision_lines(eco: Economics, df: pd.DataFrame | None = None) -> list[str]:
    """The decision summary, one sentence per fact: incomplete variants, unknown scores, the training data,
    the best prompt-only variant against the target, the fine-tune against it, the training cost, break-even.
    With the summary table `df`: the Holm-adjusted comparisons and the judge-corrected accuracy
    (harness.report.stats_text), and the fine-tune's significance on its adjusted p."""
    lines = [_incomplete_line(v, eco.labelled) for v in eco.incomplete]
    lines += [line for line in [_labels_line(eco)] if line is not None]
    lines += [_unknown_line(u, eco.primary) for u in eco.unknown]
    lines.append(_training_examples_line(eco.training.train_examples))
    lines.append(_prompt_line(eco))
    ft = _fine_tuned_line(eco, fine_tune_p(eco, df) if df is not None else (None, 1))
    if ft is not None:
        lines.append(ft)
    lines += [service_line(s) for s in eco.service]
    lines += stats_lines(df)
    lines.append(_training_cost_line(eco.training))
    lines.append(break_even_text(eco.break_even, eco.training, eco.monthly_requests))
    return lines
