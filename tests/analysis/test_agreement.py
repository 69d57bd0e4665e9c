"""Agreement with a reference (issue 21, point 2): runs against the loopback server with scripted answers, so
every agreement figure is known exactly."""

import json

import pandas as pd
import pytest
import yaml

from harness.analysis.compare import compare_runs
from harness.api import run
from harness.errors import HarnessError
from harness.rundir import RunFolder
from harness.runner.runner import RunOptions
from tests.analysis.test_compare import FT_MODEL, cli, do_run, make_evalset, scripted, two_variant_config
from tests.conftest import write_jsonl
from tests.fakes.openai_server import FakeOpenAIServer

N = 30


def unlabelled(tmp_path, name="nolabels"):
    """make_evalset's items with their `expected` removed: nothing to measure accuracy on."""
    ev = make_evalset(tmp_path, n_test=N, name=name)
    rows = [json.loads(line) for line in (ev / "test.jsonl").read_text().splitlines()]
    write_jsonl(ev / "test.jsonl", [{k: v for k, v in r.items() if k != "expected"} for r in rows])
    return ev


def run_with(tmp_path, ev, script, out, *, only_ft=False, **extra):
    with FakeOpenAIServer(script, models=["gpt-4o-mini", FT_MODEL]) as srv:
        path = two_variant_config(tmp_path, ev, srv.base_url, **extra)
        if only_ft:  # the production fine-tune alone, its answers kept as the yardstick of later runs
            cfg = yaml.safe_load(path.read_text())
            cfg["variants"] = cfg["variants"][1:]
            path.write_text(yaml.safe_dump(cfg))
        return do_run(path, tmp_path, out)


def summary(run_dir):
    return pd.read_csv(run_dir / "summary.csv").set_index("variant")


def test_reference_in_config_on_unlabelled_set(tmp_path):
    ev = unlabelled(tmp_path)
    # the baseline answers items 0..5 with another intent than the fine-tune (the reference): 24 of 30 agree
    res = run_with(tmp_path, ev, scripted(wrong={"gpt-4o-mini": set(range(6))}), "run", reference="ft")
    df = summary(res.run_dir)
    assert df.loc["baseline", "agreement"] == pytest.approx(24 / 30)
    assert df.loc["baseline", "agreement_items"] == 30
    assert df.loc["baseline", "agree_intent"] == pytest.approx(24 / 30)
    assert df.loc["baseline", "agree_urgent"] == 1.0
    assert pd.isna(df.loc["ft", "agreement"]) and df.loc["ft", "agreement_role"] == "reference"
    assert pd.isna(df.loc["baseline", "accuracy"])  # not measured, not 0
    lo, hi = df.loc["baseline", "agreement_lo"], df.loc["baseline", "agreement_hi"]
    assert lo < 0.8 < hi
    md = (res.run_dir / "report.md").read_text()
    assert "baseline agrees with ft on 80% [" in md
    assert "— (reference)" in md and "not measured (no labels)" in md
    manifest = RunFolder.open(res.run_dir).manifest
    assert manifest.reference is not None and manifest.reference.variant == "ft" and manifest.reference.run is None
    rec = next(r for r in RunFolder.open(res.run_dir).latest_records() if r.variant == "baseline")
    assert rec.scores["agreement"].detail["reference"] == "ft"


def test_labelled_and_reference_side_by_side_with_a_reference_error_excluded(tmp_path):
    ev = make_evalset(tmp_path, n_test=N)
    # truth: baseline wrong on 0..5; the reference (ft) wrong on 10, 11 and no answer (HTTP 500) on 7, 8
    script = scripted(wrong={"gpt-4o-mini": set(range(6)), FT_MODEL: {10, 11}}, errors={FT_MODEL: {7, 8}})
    res = run_with(tmp_path, ev, script, "run", reference="ft")
    df = summary(res.run_dir)
    assert df.loc["baseline", "accuracy"] == pytest.approx(24 / 30)  # every item: the reference's errors do not count
    assert df.loc["ft", "accuracy"] == pytest.approx(26 / 30)
    # agreement leaves out items 7 and 8 only; of the other 28 the two disagree on 0..5 and on 10, 11
    assert df.loc["baseline", "agreement"] == pytest.approx(20 / 28)
    assert (df.loc["baseline", "agreement_items"], df.loc["baseline", "agreement_no_reference"]) == (28, 2)
    rec = next(r for r in RunFolder.open(res.run_dir).latest_records() if r.variant == "baseline" and r.item_id == "q007")
    assert rec.scores["agreement"].value is None and rec.scores["agreement"].detail["reference_missing"]
    md = (res.run_dir / "summary.md").read_text()
    assert "agreement with ft on 28 of 30 items; 2 without a reference answer" in md
    header = next(line for line in md.splitlines() if line.startswith("| variant"))
    assert "accuracy (95% CI)" in header and "agreement with ft (95% CI)" in header


def test_task_scorer_decides_agreement_per_field(tmp_path):
    ev = unlabelled(tmp_path)
    task = yaml.safe_load((ev / "task.yaml").read_text())
    task.update(scoring=[{"name": "part", "scorer": "partial"}], primary="part")
    (ev / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    res = run_with(tmp_path, ev, scripted(wrong={"gpt-4o-mini": set(range(6))}), "run", reference="ft")
    df = summary(res.run_dir)
    # partial credit against the reference's answer: intent differs on 6 items, urgent agrees everywhere
    assert df.loc["baseline", "agreement"] == pytest.approx((24 + 6 * 0.5) / 30)
    assert df.loc["baseline", "agree_intent"] == pytest.approx(24 / 30)
    rec = next(r for r in RunFolder.open(res.run_dir).latest_records() if r.variant == "baseline" and r.item_id == "q000")
    detail = rec.scores["agreement"].detail
    assert detail["scores"] == {"part": 0.5} and detail["fields"] == {"intent": False, "urgent": True}


def test_reference_from_a_saved_run(tmp_path):
    ev = unlabelled(tmp_path)
    prod = run_with(tmp_path, ev, scripted(), "prod", only_ft=True, reference="ft")  # its own yardstick
    assert prod.status == "completed"
    with FakeOpenAIServer(scripted(wrong={"gpt-4o-mini": set(range(3))}), models=["gpt-4o-mini", FT_MODEL]) as srv:
        res = run(two_variant_config(tmp_path, ev, srv.base_url),
                  RunOptions(out=tmp_path / "new", progress=False, use_cache=False, reference=f"{prod.run_dir}:ft"))
    df = summary(res.run_dir)
    # a saved run's variant is no variant of this run: every variant here is scored, this run's ft included
    assert df.loc["baseline", "agreement"] == pytest.approx(27 / 30)
    assert df.loc["ft", "agreement"] == 1.0
    ref = RunFolder.open(res.run_dir).manifest.reference
    assert ref.variant == "ft" and ref.run == str(prod.run_dir) and ref.run_id == prod.run_dir.name


def test_report_scores_a_finished_run_against_a_saved_one(tmp_path, capsys):
    ev = make_evalset(tmp_path, n_test=N)
    prod = run_with(tmp_path, ev, scripted(wrong={FT_MODEL: {4}}), "prod", only_ft=True)
    plain = run_with(tmp_path, ev, scripted(wrong={"gpt-4o-mini": {1, 2}}), "plain")
    assert "agreement" not in summary(plain.run_dir).columns
    code, out, err = cli(capsys, "report", plain.run_dir, "--reference", f"{prod.run_dir}:ft")
    assert code == 0, err
    df = summary(plain.run_dir)
    assert df.loc["baseline", "agreement"] == pytest.approx(27 / 30)  # 1, 2 and 4 differ
    assert df.loc["baseline", "accuracy"] == pytest.approx(28 / 30)
    assert "agreement with ft of" in out
    assert RunFolder.open(plain.run_dir).manifest.reference.run == str(prod.run_dir)
    code, _, err = cli(capsys, "report", plain.run_dir, "--reference", f"{prod.run_dir}:nope")
    assert code == 2 and "no records of variant 'nope'" in err and "Traceback" not in err


def test_unlabelled_set_without_a_reference_says_what_to_do(tmp_path):
    ev = unlabelled(tmp_path)
    with pytest.raises(HarnessError, match="has no expected answer.*reference: VARIANT"):
        run_with(tmp_path, ev, scripted(), "run")


def test_gate_fails_on_an_agreement_drop(tmp_path, capsys):
    ev = unlabelled(tmp_path)
    accepted = run_with(tmp_path, ev, scripted(wrong={"gpt-4o-mini": {0}}), "accepted", reference="ft")
    candidate = run_with(tmp_path, ev, scripted(wrong={"gpt-4o-mini": set(range(12))}), "candidate", reference="ft")
    result = compare_runs(accepted.run_dir, candidate.run_dir)
    assert result.metric == "agreement"  # no expected answers: agreement is what there is to gate on
    drop = result.comparisons[0].metrics[0]
    assert (result.comparisons[0].candidate_variant, drop.metric) == ("baseline", "agreement")
    assert drop.accepted == pytest.approx(29 / 30) and drop.candidate == pytest.approx(18 / 30)
    assert [f.rule for f in result.failures] == ["agreement-drop"]
    code, out, _ = cli(capsys, "compare", accepted.run_dir, candidate.run_dir)
    assert code == 1 and "agreement-drop" in out
    # the same runs pass against themselves, and accuracy cannot be gated without labels
    assert compare_runs(accepted.run_dir, accepted.run_dir, metric="agreement").exit_code == 0


def _scored(variant, item, value, missing=False):
    from harness.records import Record, Score

    detail = {"reference": "ref", "run": None, **({"reference_missing": True} if missing else {})}
    return Record(item_id=item, variant=variant, model="m", model_id="m", request={}, raw_text="x",
                  format_valid=True, scores={"agreement": Score(None if missing else value, "", detail)})


def test_paired_comparison_runs_on_agreement():
    from harness.analysis.agreement import agreement_rows
    from harness.analysis.stats import mcnemar_exact

    items = [f"i{k}" for k in range(20)]
    records = [_scored("a", i, 1.0) for i in items]
    # b disagrees with the reference on 8 items where a agrees, and has no reference answer on i19
    records += [_scored("b", i, 0.0 if k < 8 else 1.0, missing=k == 19) for k, i in enumerate(items)]
    rows = agreement_rows(records, ["ref", "a", "b"], "ref", baseline="ref")
    assert rows["ref"]["agreement_role"] == "reference" and "agreement" not in rows["ref"]
    b = rows["b"]
    assert b["agreement_vs"] == "a" and b["agreement_paired_n"] == 19  # i19 left out of agreement only
    assert b["agreement"] == pytest.approx(11 / 19) and b["agreement_no_reference"] == 1
    assert b["agreement_diff"] == pytest.approx(-8 / 19) and b["agreement_diff_lo"] < b["agreement_diff_hi"] < 0
    assert b["agreement_p"] == pytest.approx(mcnemar_exact(8, 0)) and b["agreement_test"] == "mcnemar"


def test_decision_summary_without_labels_says_accuracy_was_not_measured(tmp_path):
    """No item has `expected`: the decision summary never talks of accuracy it did not measure ("accuracy -",
    "cost or accuracy unknown", "no prompt-only variant measured"); it says so and points to agreement."""
    ev = unlabelled(tmp_path)
    script = scripted(wrong={"gpt-4o-mini": set(range(6))}, errors={"gpt-4o-mini": {29}})
    res = run_with(tmp_path, ev, script, "run", reference="ft")
    md = (res.run_dir / "report.md").read_text()
    decision = md.split("## Decision summary", 1)[1].split("## Results", 1)[0]
    lines = [line for line in decision.splitlines() if line.startswith("- ")]
    assert any(line.startswith("- baseline agrees with ft on ") for line in lines)
    assert ("- Accuracy was not measured (no item has an `expected` answer), so no variant is judged on accuracy, "
            "against target_accuracy or for a break-even: they are compared by agreement with ft") in decision
    assert ("- baseline is incomplete: 1 of 30 calls unanswered (counted as not agreeing with the reference)"
            in decision)
    assert "- No break-even volume: it needs accuracy, which was not measured" in decision
    for wrong in ("accuracy -", "cost or accuracy", "No prompt-only variant", "reached"):
        assert wrong not in decision
    html = (res.run_dir / "report.html").read_text()
    assert "Accuracy was not measured (no item has an `expected` answer)" in html


def test_validate_says_what_run_says_about_missing_labels(tmp_path, capsys):
    """`harness validate` and `harness run` share the check: no reference is an error in both; with one, both
    say how many items are scored by agreement only."""
    ev = make_evalset(tmp_path, n_test=N)
    rows = [json.loads(line) for line in (ev / "test.jsonl").read_text().splitlines()]
    write_jsonl(ev / "test.jsonl", [{k: v for k, v in r.items() if k != "expected" or i >= 10}
                                    for i, r in enumerate(rows)])  # 10 of the 30 have no label
    bare = two_variant_config(tmp_path, ev, "http://127.0.0.1:9/v1")
    code, out, err = cli(capsys, "validate", bare)
    assert code == 2 and "ready:" not in out
    assert f"error: {ev / 'test.jsonl'}: item 'q000' has no expected answer (nor 9 others): add `expected`" in err
    with FakeOpenAIServer(scripted(), models=["gpt-4o-mini", FT_MODEL]) as srv:
        cfg = two_variant_config(tmp_path, ev, srv.base_url, reference="ft")
        code, out, err = cli(capsys, "validate", cfg)
        line = "note: 10 of 30 test items have no expected answer: scored by agreement with ft only"
        assert code == 0 and line in out.splitlines(), out + err
        code, out, err = cli(capsys, "run", cfg, "--out", tmp_path / "run", "--no-progress", "--no-cache")
    assert code == 0 and line in err.splitlines(), out + err
