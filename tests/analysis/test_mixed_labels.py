"""An eval set where only some items have `expected` (issue 21, point 2): accuracy is over the labelled items,
the others are scored by agreement with the reference alone and are never "unknown scores" — not in the summary,
the decision summary, the paired comparison nor the gate. Runs against the loopback server with scripted answers."""

import json

import pandas as pd
import pytest

from harness.analysis.compare import compare_runs
from harness.analysis.stats import wilson
from tests.analysis.test_agreement import run_with
from tests.analysis.test_compare import FT_MODEL, make_evalset, scripted
from tests.conftest import write_jsonl

N = 12  # items q000..q011; the even ones have an expected answer, the odd ones not


def half_labelled(tmp_path, n=N):
    ev = make_evalset(tmp_path, n_test=n, name="half")
    rows = [json.loads(line) for line in (ev / "test.jsonl").read_text().splitlines()]
    write_jsonl(ev / "test.jsonl", [{k: v for k, v in r.items() if k != "expected" or i % 2 == 0}
                                    for i, r in enumerate(rows)])
    return ev


def summary(run_dir):
    return pd.read_csv(run_dir / "summary.csv").set_index("variant")


def decision(run_dir):
    md = (run_dir / "report.md").read_text()
    return md.split("## Decision summary", 1)[1].split("## Results", 1)[0]


# baseline: wrong on labelled item 2 and on unlabelled item 3, no answer on unlabelled item 5; ft (the reference)
# right everywhere
SCRIPT = dict(wrong={"gpt-4o-mini": {2, 3}}, errors={"gpt-4o-mini": {5}})
LABELS_LINE = ("- 6 of 12 test items have no expected answer: accuracy is over the 6 labelled items; agreement with "
               "ft covers all of them.")


def test_accuracy_interval_and_pairs_are_over_the_labelled_items(tmp_path):
    res = run_with(tmp_path, half_labelled(tmp_path), scripted(**SCRIPT), "run", reference="ft")
    df = summary(res.run_dir)
    base, ft = df.loc["baseline"], df.loc["ft"]
    # 5 of the 6 labelled items right; the unanswered unlabelled item 5 is not a wrong answer in accuracy
    assert base["accuracy"] == pytest.approx(5 / 6) and ft["accuracy"] == 1.0
    assert (base["accuracy_lo"], base["accuracy_hi"]) == pytest.approx(wilson(5, 6))
    assert (ft["accuracy_lo"], ft["accuracy_hi"]) == pytest.approx(wilson(6, 6))
    assert base["accuracy_lenient"] == pytest.approx(5 / 6)
    # the unlabelled items are counted apart, never as unknown scores
    for row in (base, ft):
        assert (row["accuracy_items"], row["unlabelled"], row["accuracy_unknown"]) == (6, 6, 0)
    # the paired comparison on accuracy pairs the 6 labelled items, none left out as unknown
    assert ft["paired_n"] == 6 and pd.isna(ft.get("paired_unknown"))
    assert ft["accuracy_diff"] == pytest.approx(1 / 6)
    # agreement covers every item: baseline differs from ft on 2 and 3 and did not answer 5
    assert base["agreement"] == pytest.approx(9 / 12) and base["agreement_items"] == 12
    assert "accuracy_items,unlabelled" in (res.run_dir / "summary.csv").read_text().splitlines()[0]


def test_decision_summary_says_once_what_accuracy_is_over(tmp_path):
    res = run_with(tmp_path, half_labelled(tmp_path), scripted(**SCRIPT), "run", reference="ft")
    text = decision(res.run_dir)
    assert text.count(LABELS_LINE) == 1
    assert "is unknown for" not in text  # no judge failed: nothing is unknown
    assert ("- The best prompt-only variant, baseline, reached 83.3% accuracy (95% CI 43.6%–97.0%, 6 items)"
            in text)
    assert "Fine-tuning (ft) gained 16.7 percentage points of accuracy against baseline on 6 paired items" in text
    html = (res.run_dir / "report.html").read_text()
    assert html.count(LABELS_LINE[2:]) == 1 and "is unknown for" not in html


def test_unknown_line_counts_only_labelled_answers_whose_score_is_unknown(tmp_path, capsys):
    """A labelled answer whose primary score could not be told (as a judge that failed leaves it) is the only
    unknown: 1 of baseline's 6 labelled answers, accuracy over the 5 known."""
    from tests.analysis.test_compare import cli

    res = run_with(tmp_path, half_labelled(tmp_path), scripted(**SCRIPT), "run", reference="ft")
    path = res.run_dir / "records.jsonl"
    lines = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec["variant"] == "baseline" and rec["item_id"] == "q004":
            rec["primary"] = None
        lines.append(json.dumps(rec))
    path.write_text("\n".join(lines) + "\n")
    code, _, err = cli(capsys, "report", res.run_dir)
    assert code == 0, err
    df = summary(res.run_dir)
    assert df.loc["baseline", "accuracy_unknown"] == 1 and df.loc["ft", "accuracy_unknown"] == 0
    assert df.loc["baseline", "accuracy"] == pytest.approx(4 / 5)
    text = decision(res.run_dir)
    assert ("- baseline: the primary score (exact) is unknown for 1 of 6 answers (the scorer could not tell, e.g. "
            "a judge that failed); its accuracy is over the 5 known.") in text
    assert "- ft: the primary score" not in text and LABELS_LINE in text


def test_repeats_majority_vote_is_over_the_labelled_items(tmp_path):
    res = run_with(tmp_path, half_labelled(tmp_path, n=6), scripted(), "run", reference="ft",
                   run={"concurrency": 4, "temperature": 0, "max_tokens": 64, "seed": 7, "repeats": 2})
    df = summary(res.run_dir)
    assert df.loc["ft", "accuracy"] == 1.0 and df.loc["ft", "accuracy_majority"] == 1.0
    assert (df.loc["ft", "accuracy_items"], df.loc["ft", "unlabelled"]) == (3, 3)


def test_gate_does_not_count_unlabelled_items_as_unknown_scores(tmp_path):
    """Both runs have the same unlabelled items; the candidate's fine-tune leaves labelled items 0 and 2
    unanswered. The unlabelled answers are no unknown scores, so the unknown-score rate cannot rise (it did: 6
    of 12 answers against 6 of 10, and the rule fired)."""
    ev = half_labelled(tmp_path)
    accepted = run_with(tmp_path, ev, scripted(), "accepted", reference="ft")
    candidate = run_with(tmp_path, ev, scripted(errors={FT_MODEL: {0, 2}}), "candidate", reference="ft")
    result = compare_runs(accepted.run_dir, candidate.run_dir)
    assert result.metric == "accuracy"
    c = result.comparisons[0]
    assert c.candidate_variant == "ft"
    assert (c.accepted_unknown, c.accepted_answers, c.candidate_unknown, c.candidate_answers) == (0, 6, 0, 4)
    unknown = next(m for m in c.metrics if m.metric == "unknown_rate")
    assert not unknown.failed and unknown.accepted == 0 and unknown.candidate == 0
    assert "unknown-scores" not in [f.rule for f in result.failures]
    assert "error-rate" in [f.rule for f in result.failures]  # the two unanswered calls are what fails
    acc = next(m for m in c.metrics if m.metric == "accuracy")
    assert acc.n == 6 and acc.candidate == pytest.approx(4 / 6)  # paired on the labelled items only
