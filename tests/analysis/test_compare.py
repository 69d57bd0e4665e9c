"""The regression gate (`harness compare`): real runs against the loopback server, then the CLI."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.analysis.compare import compare_runs
from harness.analysis.gate_runs import GateRun, scoring_changes
from harness.api import run
from harness.cli import main
from harness.report.gate_text import format_text, metric_reason
from harness.rundir import Manifest
from harness.runner.runner import RunOptions
from tests.conftest import TASK, make_config, write_jsonl
from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text
from tests.scoring.test_judge import judged_config, judged_set
from tests.scoring.test_task_scoring import answer


def reason(m):
    """A gated metric's reason, as `harness compare` words it at the default tolerance and alpha."""
    return metric_reason(m, 0.02, 0.05)

LABELS = ["card_arrival", "lost_card", "refund"]
FT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::abc123"


def make_evalset(tmp_path, n_test=30, n_train=12, name="big"):
    """An eval set large enough for significance: item i's answer is a function of i."""
    d = tmp_path / "evalsets" / name
    d.mkdir(parents=True)
    (d / "task.yaml").write_text(yaml.safe_dump(TASK, sort_keys=False))
    write_jsonl(d / "test.jsonl", [
        {"id": f"q{i:03d}", "input": {"text": f"message number {i} please"},
         "expected": {"intent": LABELS[i % 3], "urgent": i % 2 == 0}} for i in range(n_test)])
    write_jsonl(d / "train.jsonl", [
        {"id": f"r{i:03d}", "input": {"text": f"training message {i}"},
         "expected": {"intent": LABELS[i % 3], "urgent": i % 2 == 1}} for i in range(n_train)])
    return d


def item_number(body):
    m = re.search(r"message number (\d+)", last_user_text(body))
    return int(m.group(1)) if m else 0


def scripted(wrong: dict[str, set[int]] | None = None, junk: dict[str, dict[int, str]] | None = None,
             errors: dict[str, set[int]] | None = None, prompt_tokens=100):
    """Per model id: the item numbers answered wrongly, answered with junk text, or failing with HTTP 500."""
    wrong, junk, errors = wrong or {}, junk or {}, errors or {}

    def handler(body):
        i, model = item_number(body), body["model"]
        if i in errors.get(model, set()):
            return Reply(status=500)
        if i in junk.get(model, {}):
            return Reply(text=junk[model][i], prompt_tokens=prompt_tokens, completion_tokens=10)
        intent = LABELS[i % 3]
        if i in wrong.get(model, set()):
            intent = LABELS[(i + 1) % 3]
        return Reply(text=json.dumps({"intent": intent, "urgent": i % 2 == 0}),
                     prompt_tokens=prompt_tokens, completion_tokens=10)

    return handler


def two_variant_config(tmp_path, ev, base_url, **extra):
    return make_config(
        tmp_path, ev, base_url,
        models={"small": {"provider": "openai-compatible", "base_url": base_url, "model": "gpt-4o-mini",
                          "max_retries": 0},
                "tuned": {"provider": "openai-compatible", "base_url": base_url, "model": FT_MODEL,
                          "max_retries": 0}},
        variants=[{"name": "baseline", "kind": "baseline", "model": "small"},
                  {"name": "ft", "kind": "fine_tuned", "model": "tuned"}], **extra)


def do_run(cfg, tmp_path, out):
    return run(cfg, RunOptions(results_dir=tmp_path / "results", out=tmp_path / out, progress=False,
                               use_cache=False))


def two_runs(tmp_path, base_script, cand_script, ev=None):
    ev = ev or make_evalset(tmp_path)
    with FakeOpenAIServer(base_script, models=["gpt-4o-mini", FT_MODEL]) as srv:
        a = do_run(two_variant_config(tmp_path, ev, srv.base_url), tmp_path, "accepted")
    with FakeOpenAIServer(cand_script, models=["gpt-4o-mini", FT_MODEL]) as srv:
        b = do_run(two_variant_config(tmp_path, ev, srv.base_url), tmp_path, "candidate")
    return a.run_dir, b.run_dir


def metric_line(out: str, metric: str) -> str:
    """The row of `metric` in the metrics table (not the rule list, which also says "accuracy")."""
    return next(line for line in out.splitlines() if line.strip().startswith(metric + " "))


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_significant_drop_fails_with_readable_diff(tmp_path, capsys):
    long_junk = "not json at all " * 30  # 480 chars: must be truncated in the listing
    accepted, candidate = two_runs(
        tmp_path, scripted(),
        scripted(wrong={FT_MODEL: {1, 2, 3, 4, 5, 6, 7}}, junk={FT_MODEL: {8: long_junk}}))
    code, out, err = cli(capsys, "compare", accepted, candidate)
    assert code == 1, out + err
    # default: the fine-tuned variant only
    assert "variant ft:" in out and "variant baseline:" not in out
    acc = metric_line(out, "accuracy")
    assert "100.0%" in acc and "73.3%" in acc and "-26.7 pp" in acc and "FAIL [accuracy-drop]" in acc
    # b=8, c=0 -> p = 2/256
    assert "0.008" in acc
    assert "right -> wrong (8):" in out and "wrong -> right (0):" in out
    assert "q001  expected" in out
    assert "      input:     Message: message number 1 please" in out  # the item's input beside the answers
    assert '      accepted:  {"intent": "lost_card", "urgent": false}' in out
    assert '      candidate: {"intent": "refund", "urgent": false}' in out
    junk_line = next(line for line in out.splitlines() if "candidate: not json" in line)
    assert junk_line.endswith("…") and len(junk_line.split("candidate: ")[1]) == 201
    # 1 junk answer of 30: 3.3 pp > 2 pp
    assert "result: FAIL (accuracy-drop in variant ft; format-valid in variant ft)" in out
    assert "paired on 30 of 30 items; repeats: accepted 1, candidate 1" in out


def test_drop_beyond_tolerance_but_not_significant_passes(tmp_path, capsys):
    accepted, candidate = two_runs(tmp_path, scripted(), scripted(wrong={FT_MODEL: {4, 9}}))
    code, out, _ = cli(capsys, "compare", accepted, candidate, "--max-drop", "0.02")
    assert code == 0
    acc = metric_line(out, "accuracy")
    assert "-6.7 pp" in acc and "0.500" in acc and "not significantly (McNemar p=0.5" in acc
    assert "result: ok" in out
    # a tolerance above the drop also passes, with the reason
    code, out, _ = cli(capsys, "compare", accepted, candidate, "--max-drop", "0.10")
    assert code == 0 and "within the 10.0 pp tolerance" in out
    # a looser alpha makes nothing significant here either (p = 0.5)
    assert cli(capsys, "compare", accepted, candidate, "--alpha", "0.4")[0] == 0


def test_improvement_and_json(tmp_path, capsys):
    accepted, candidate = two_runs(tmp_path, scripted(wrong={FT_MODEL: {0, 1, 2, 3, 4, 5}}), scripted())
    code, out, _ = cli(capsys, "compare", accepted, candidate, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["exit_code"] == 0 and data["evalset_match"] is True
    (c,) = data["comparisons"]
    assert c["candidate_variant"] == "ft" and c["paired_items"] == 30 and c["accepted_items"] == 30
    acc = next(m for m in c["metrics"] if m["metric"] == "accuracy")
    assert acc["diff"] == pytest.approx(0.2) and acc["p_value"] == pytest.approx(2 / 64)
    assert acc["lo"] <= 0.2 <= acc["hi"] and not acc["failed"]
    assert [ch["item_id"] for ch in c["wrong_to_right"]] == [f"q{i:03d}" for i in range(6)]
    ch = c["wrong_to_right"][0]
    assert json.loads(ch["accepted_output"])["intent"] == "lost_card"
    assert json.loads(ch["candidate_output"])["intent"] == "card_arrival"
    assert ch["expected"] == {"intent": "card_arrival", "urgent": True}


def test_variant_option_and_all_common_variants(tmp_path, capsys):
    accepted, candidate = two_runs(tmp_path, scripted(), scripted(wrong={"gpt-4o-mini": set(range(10))}))
    code, out, _ = cli(capsys, "compare", accepted, candidate, "--variant", "baseline")
    assert code == 1 and "variant baseline:" in out and "variant ft:" not in out
    code, out, _ = cli(capsys, "compare", accepted, candidate)  # ft only by default: unchanged
    assert code == 0
    code, _, err = cli(capsys, "compare", accepted, candidate, "--variant", "nope")
    assert code == 2 and "--variant nope" in err and len(err.strip().splitlines()) == 1


def test_unanswered_items_count_as_wrong_and_fail_the_gate(tmp_path):
    """A candidate whose calls fail must not pass the gate: every item is paired, unanswered ones as wrong."""
    accepted, candidate = two_runs(tmp_path, scripted(), scripted(errors={FT_MODEL: {0, 1, 2, 3, 4, 5, 6, 7}}))
    res = compare_runs(accepted, candidate)
    (c,) = res.comparisons
    assert c.paired_items == 30 and c.errored_in_candidate_only == 8
    err = next(m for m in c.metrics if m.metric == "error_rate")
    assert err.candidate == pytest.approx(8 / 30) and err.gated and err.failed
    assert "more than the 2.0 pp tolerance" in reason(err)
    acc = next(m for m in c.metrics if m.metric == "accuracy")
    assert acc.diff < 0 and acc.n == 30
    assert res.exit_code == 1
    text = format_text(res)
    assert "FAIL [error-rate]" in metric_line(text, "error_rate") and "unanswered (counted as wrong): 8" in text


def test_incomplete_candidate_fails_the_gate(tmp_path):
    accepted, candidate = two_runs(tmp_path, scripted(), scripted())
    manifest = json.loads((candidate / "manifest.json").read_text())
    manifest["status"], manifest["message"] = "interrupted", "interrupted; continue with: harness run --resume X"
    (candidate / "manifest.json").write_text(json.dumps(manifest))
    res = compare_runs(accepted, candidate)
    assert all(not c.failed for c in res.comparisons)  # the metrics alone would pass
    assert res.failed and res.exit_code == 1 and res.candidate_status == "interrupted"
    text = format_text(res)
    assert "FAIL [incomplete] the candidate run is not complete (status interrupted" in text
    assert text.endswith("result: FAIL (incomplete)")


def test_format_invalid_rate_beyond_tolerance_fails_without_significance(tmp_path):
    """Two more broken answers out of 30 (6.7 pp) is not significant by McNemar but is beyond 2 pp."""
    accepted, candidate = two_runs(tmp_path, scripted(), scripted(junk={FT_MODEL: {0: "no json", 1: "{"}}))
    res = compare_runs(accepted, candidate)
    (c,) = res.comparisons
    fmt = next(m for m in c.metrics if m.metric == "format_valid")
    assert fmt.failed and fmt.p_value > 0.05 and "more than the 2.0 pp tolerance" in reason(fmt)
    assert res.exit_code == 1 and [f.rule for f in res.failures] == ["format-valid"]


def test_different_evalset_refused_unless_allowed(tmp_path, capsys):
    ev1 = make_evalset(tmp_path, name="one")
    ev2 = make_evalset(tmp_path, n_test=31, name="two")
    with FakeOpenAIServer(scripted(), models=["gpt-4o-mini", FT_MODEL]) as srv:
        a = do_run(two_variant_config(tmp_path, ev1, srv.base_url), tmp_path, "a").run_dir
        b = do_run(two_variant_config(tmp_path, ev2, srv.base_url), tmp_path, "b").run_dir
    code, out, err = cli(capsys, "compare", a, b)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "eval sets differ" in err and "--allow-different-evalset" in err
    code, out, _ = cli(capsys, "compare", a, b, "--allow-different-evalset")  # b covers a's 30 items
    assert code == 0 and "warning: the eval sets differ" in out and "1 only in candidate" in out


def test_missing_run_folder_is_one_line_exit_2(tmp_path, capsys):
    code, _, err = cli(capsys, "compare", tmp_path / "nope", tmp_path / "nope2")
    assert code == 2 and "run folder not found" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    code, _, err = cli(capsys, "compare", tmp_path / "empty", tmp_path / "empty")
    assert code == 2 and "not a run folder" in err
    code, _, err = cli(capsys, "compare", tmp_path / "empty", tmp_path / "empty", "--max-drop", "5")
    assert code == 2 and "--max-drop" in err


# -- the rules that make the gate fail when it did not measure what it claims (issue 17) ---------------------

def last_line(out: str) -> str:
    return out.rstrip().splitlines()[-1]


def test_skipped_fine_tuned_variant_fails_missing_variant(tmp_path, capsys):
    """The candidate's fine-tuned model id lives in a file the CI checkout does not have: the variant is
    skipped, and the gate must not compare the baseline instead and pass."""
    ev = make_evalset(tmp_path)
    with FakeOpenAIServer(scripted(), models=["gpt-4o-mini", FT_MODEL]) as srv:
        accepted = do_run(two_variant_config(tmp_path, ev, srv.base_url), tmp_path, "accepted").run_dir
        cfg = two_variant_config(tmp_path, ev, srv.base_url)
        data = yaml.safe_load(cfg.read_text())
        data["models"]["tuned"].pop("model")
        data["models"]["tuned"]["model_file"] = str(tmp_path / "results" / "ft_model_id.txt")  # not there
        cfg.write_text(yaml.safe_dump(data, sort_keys=False))
        cand = do_run(cfg, tmp_path, "candidate")
    assert "ft" in cand.skipped
    code, out, _ = cli(capsys, "compare", accepted, cand.run_dir)
    assert code == 1
    assert ("FAIL [missing-variant] variant ft has records in the accepted run but none in the candidate "
            "(skipped: no fine-tuned model id in") in out
    assert last_line(out) == "result: FAIL (missing-variant in variant ft)"
    assert "variant baseline:" in out  # what both runs have is still shown
    code, out, _ = cli(capsys, "compare", accepted, cand.run_dir, "--allow-missing-variant", "ft")
    assert code == 0 and "allowed by --allow-missing-variant" in out
    assert cli(capsys, "compare", accepted, cand.run_dir, "--variant", "baseline")[0] == 0
    code, out, _ = cli(capsys, "compare", accepted, cand.run_dir, "--variant", "ft")
    assert code == 1 and last_line(out) == "result: FAIL (missing-variant in variant ft)"
    code, _, err = cli(capsys, "compare", accepted, cand.run_dir, "--allow-missing-variant", "fine-tuned")
    assert code == 2 and "--allow-missing-variant fine-tuned: the accepted run" in err


def test_right_on_two_of_three_repeats_fails_accuracy_drop(tmp_path, capsys):
    """100% -> 66.7% (right on repeats 0 and 2 of every item): every majority vote is still right, so a test
    on majority votes saw nothing; the sign-flip test on the per-item means does."""
    ev = make_evalset(tmp_path)
    right, wrong = scripted(), scripted(wrong={FT_MODEL: set(range(30))})

    def candidate(body):  # repeat r sends seed 7 + r: the fine-tuned model is wrong on repeat 1
        return wrong(body) if body.get("seed") == 8 else right(body)

    with FakeOpenAIServer(right, models=["gpt-4o-mini", FT_MODEL]) as srv:
        accepted = do_run(two_variant_config(tmp_path, ev, srv.base_url), tmp_path, "accepted").run_dir
    with FakeOpenAIServer(candidate, models=["gpt-4o-mini", FT_MODEL]) as srv:
        cfg = two_variant_config(tmp_path, ev, srv.base_url,
                                 run={"concurrency": 4, "temperature": 0, "max_tokens": 64, "seed": 7, "repeats": 3})
        cand = do_run(cfg, tmp_path, "candidate").run_dir
    code, out, _ = cli(capsys, "compare", accepted, cand)
    assert code == 1
    acc = metric_line(out, "accuracy")
    assert "100.0%" in acc and "66.7%" in acc and "-33.3 pp" in acc
    assert "FAIL [accuracy-drop]: dropped 33.3 pp" in acc and "(sign-flip p < 1/10000 < 0.05)" in acc
    assert "paired on 30 of 30 items; repeats: accepted 1, candidate 3" in out
    assert "scored lower (30):" in out and "score 1.00 -> 0.67" in out
    assert '      candidate: {"intent": "lost_card", "urgent": true}  (repeat 2 of 3)' in out  # the wrong one
    assert last_line(out) == "result: FAIL (accuracy-drop in variant ft)"
    data = json.loads(cli(capsys, "compare", accepted, cand, "--json")[1])
    m = data["comparisons"][0]["metrics"][0]
    assert (m["test"], m["p_bound"], m["p_value"]) == ("sign-flip", True, 1e-4)  # an upper bound, never 0


def test_one_shard_of_four_fails_subset(tmp_path, capsys):
    ev = make_evalset(tmp_path, n_test=60)
    with FakeOpenAIServer(scripted(), models=["gpt-4o-mini", FT_MODEL]) as srv:
        cfg = two_variant_config(tmp_path, ev, srv.base_url)
        accepted = do_run(cfg, tmp_path, "accepted").run_dir
        shard = run(cfg, RunOptions(out=tmp_path / "shard-1", progress=False, use_cache=False, shard="1/4"))
    assert shard.status == "completed"
    n = len({json.loads(line)["item_id"] for line in (shard.run_dir / "records.jsonl").read_text().splitlines()})
    assert 0 < n < 60
    code, out, _ = cli(capsys, "compare", accepted, shard.run_dir)
    assert code == 1
    assert f"paired on {n} of 60 items; repeats: accepted 1, candidate 1" in out
    assert (f"FAIL [subset] the candidate asked {n} of the accepted run's 60 items ({60 - n} missing, e.g. "
            in out) and "it is shard 1/4; merge the shards with harness merge" in out
    assert last_line(out) == "result: FAIL (subset in variant ft)"
    code, out, _ = cli(capsys, "compare", accepted, shard.run_dir, "--allow-subset")
    assert code == 0 and f"paired on {n} of 60 items" in out


def test_runs_are_accepted_and_candidate_never_baseline(tmp_path, capsys):
    """"baseline" is a variant name: the two runs are "accepted" and "candidate" in the text and the JSON."""
    accepted, candidate = two_runs(tmp_path, scripted(), scripted(wrong={"gpt-4o-mini": set(range(10))}))
    code, out, _ = cli(capsys, "compare", accepted, candidate, "--variant", "baseline")
    assert code == 1 and last_line(out) == "result: FAIL (accuracy-drop in variant baseline)"
    lines = out.splitlines()
    assert lines[0].startswith(f"accepted  {accepted} ") and lines[1].startswith(f"candidate {candidate} ")
    header = next(line for line in lines if line.strip().startswith("metric"))
    assert "accepted" in header and "baseline" not in header
    assert [line for line in lines if "baseline" in line and "variant baseline" not in line] == []
    assert "      input:     Message: message number 0 please" in out and "      accepted:  {" in out
    data = json.loads(cli(capsys, "compare", accepted, candidate, "--variant", "baseline", "--json")[1])

    def keys(x):
        if isinstance(x, dict):
            return set(x) | {k for v in x.values() for k in keys(v)}
        return {k for v in x for k in keys(v)} if isinstance(x, list) else set()

    assert [k for k in keys(data) if "baseline" in k] == []
    assert data["accepted_run"] == str(accepted) and data["rules_fired"] == ["accuracy-drop"]
    (failure,) = data["failures"]
    assert failure["rule"] == "accuracy-drop" and failure["variant"] == "baseline"
    assert data["comparisons"][0]["right_to_wrong"][0]["input"] == "Message: message number 0 please"


def judged_runs(tmp_path, accepted_verdict, candidate_verdict, candidate_judge="judge-1"):
    """Two runs of a free-text set whose primary score is an LLM judge's (tests.scoring.test_judge), every
    verdict of a run being `*_verdict` (a 1-5 score, or a Reply such as an HTTP 500)."""
    ev = judged_set(tmp_path)
    rows = [json.loads(x) for x in (ev / "test.jsonl").read_text().splitlines()]
    write_jsonl(ev / "test.jsonl", [r for r in rows if r["id"] != "it"])  # its empty answer is never judged
    out = []
    for name, verdict, judge in (("accepted", accepted_verdict, "judge-1"),
                                 ("candidate", candidate_verdict, candidate_judge)):
        def handle(body, verdict=verdict):
            if not body["model"].startswith("judge-"):
                return answer(body)
            if isinstance(verdict, Reply):
                return verdict
            return Reply(text=json.dumps({"reasoning": "ok", "score": verdict}), prompt_tokens=10,
                         completion_tokens=5)

        with FakeOpenAIServer(handle, models=["gpt-4o-mini", "judge-1", "judge-2"]) as srv:
            cfg = judged_config(tmp_path, ev, srv.base_url)
            data = yaml.safe_load(cfg.read_text())
            data["models"]["grader"]["model"] = judge
            cfg.write_text(yaml.safe_dump(data, sort_keys=False))
            res = run(cfg, RunOptions(out=tmp_path / name, progress=False, use_cache=False))
        assert res.status == "completed"
        out.append(res.run_dir)
    return out


def test_every_primary_score_unknown_fails_unknown_scores(tmp_path, capsys):
    """The judge failed on every answer of the candidate: nothing is known, so nothing may pass."""
    accepted, candidate = judged_runs(tmp_path, 5, Reply(status=500))
    code, out, _ = cli(capsys, "compare", accepted, candidate)
    assert code == 1
    assert "unknown primary scores: accepted 0 of 3 answers, candidate 3 of 3" in out
    assert "paired on 0 of 3 items" in out
    assert "FAIL [unknown-scores]: rose 100.0 pp" in metric_line(out, "unknown_rate")
    assert "FAIL [unknown-scores]: no item has a known primary score on both sides" in metric_line(out, "accuracy")
    assert last_line(out) == "result: FAIL (unknown-scores in variant baseline)"


def test_another_judge_model_fails_scoring_changed(tmp_path, capsys):
    accepted, candidate = judged_runs(tmp_path, 5, 5, candidate_judge="judge-2")
    code, out, _ = cli(capsys, "compare", accepted, candidate)
    assert code == 1  # the same verdicts: every metric would pass
    assert "FAIL [scoring-changed] the runs were scored differently (judge model judge-1 -> judge-2)" in out
    assert last_line(out) == "result: FAIL (scoring-changed)"
    code, out, _ = cli(capsys, "compare", accepted, candidate, "--allow-scoring-change")
    assert code == 0 and "warning: the runs were scored differently (judge model judge-1 -> judge-2)" in out


def test_scoring_changes_name_what_differs():
    def gate_run(scoring, judge=None):
        return GateRun(Path("x"), Manifest(scoring=scoring, judge=judge), [], pd.DataFrame(), {})

    a = gate_run({"primary": "credit", "scorers": [{"name": "credit", "scorer": "partial", "describe": "old words"}]})
    b = gate_run({"primary": "exact", "scorers": [{"name": "credit", "scorer": "partial", "describe": "new words"}]})
    assert scoring_changes(a, b) == ["primary credit -> exact"]  # a scorer's description is not its setting
    c = gate_run({"primary": "credit", "scorers": [{"name": "credit", "scorer": "partial", "field": "intent"}]})
    assert scoring_changes(a, c) == ["settings of scorer credit"]
    d = gate_run(a.manifest.scoring, judge={"model": "grader", "model_id": "gpt-4o", "used": True})
    assert scoring_changes(a, d) == ["judge model none -> gpt-4o"]
    assert scoring_changes(d, d) == []
