"""task.yaml's `scoring:` and `primary:` end to end: a free-text eval set, a python scorer next to task.yaml,
errors that name the file and line, the content hash, and a run whose tables carry every score."""

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.api import run
from harness.cli import main
from harness.data.evalset import content_hash, load_evalset
from harness.errors import EvalSetError, HarnessError
from harness.rundir.folder import read_records
from harness.runner.runner import RunOptions
from harness.scoring.task_yaml import scorers_of
from tests.conftest import write_jsonl
from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text

ANSWERS = {  # what the fake model replies to each question
    "capital of France": "Paris.",
    "capital of Germany": "It is Munich!",
    "capital of Italy": "",  # an empty answer
    "capital of Japan": "tokyo",
}

SCORERS = textwrap.dedent('''
    def short(answer, expected, item):
        return len(answer) <= 6, f"{len(answer)} characters"

    def half(answer, expected, item):
        return 0.5

    def broken(answer, expected, item):
        raise ZeroDivisionError("oops")

    def wrong_type(answer, expected, item):
        return "yes"
''')


def free_text_set(root: Path, scoring: list | None = None, primary: str | None = None) -> Path:
    d = root / "evalsets" / "capitals"
    d.mkdir(parents=True)
    task = {"instructions": "Name the capital.", "input_template": "What is the {q}?"}
    if scoring is not None:
        task["scoring"] = scoring
    if primary is not None:
        task["primary"] = primary
    (d / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    (d / "myscorers.py").write_text(SCORERS)
    (d / "rubric.md").write_text("Pass when the answer names the right city.")
    write_jsonl(d / "test.jsonl", [
        {"id": "fr", "input": {"q": "capital of France"}, "expected": "Paris"},
        {"id": "de", "input": {"q": "capital of Germany"}, "expected": ["Berlin"]},
        {"id": "it", "input": {"q": "capital of Italy"}, "expected": "Rome"},
        {"id": "jp", "input": {"q": "capital of Japan"}, "expected": ["Tokyo", "Tōkyō"]},
    ])
    write_jsonl(d / "train.jsonl", [{"id": "es", "input": {"q": "capital of Spain"}, "expected": "Madrid"}])
    return d


def answer(body):
    text = last_user_text(body)
    for q, a in ANSWERS.items():
        if q in text:
            return Reply(text=a, prompt_tokens=20, completion_tokens=5)
    return Reply(text="Madrid", prompt_tokens=20, completion_tokens=5)


def config(tmp_path: Path, evalset: Path, url: str, **extra) -> Path:
    cfg = {"name": "ft", "evalset": str(evalset),
           "models": {"small": {"provider": "openai-compatible", "base_url": url, "model": "gpt-4o-mini"}},
           "variants": [{"name": "baseline", "kind": "baseline", "model": "small"}],
           "run": {"concurrency": 2, "max_tokens": 32, "seed": 1}, **extra}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_free_text_run_scores_every_named_scorer(tmp_path):
    ev = free_text_set(tmp_path, [
        {"name": "short", "scorer": "python", "function": "myscorers:short"},
        {"name": "calm", "scorer": "regex", "pattern": "!", "negate": True},
        {"name": "half", "scorer": "python", "function": "myscorers:half"},
    ], primary="short")
    with FakeOpenAIServer(answer, models=["gpt-4o-mini"]) as server:
        res = run(config(tmp_path, ev, server.base_url), RunOptions(results_dir=tmp_path / "r", progress=False))
        req = server.requests[0]
    assert "response_format" not in req  # nothing to constrain a free-text answer to
    assert req["messages"][0]["content"] == "Name the capital."  # no JSON-schema sentence
    recs = {r.item_id: r for r in read_records(res.run_dir / "records.jsonl")}
    assert recs["fr"].parsed == "Paris." and recs["fr"].correct  # normalised match
    assert not recs["de"].correct and recs["jp"].correct
    assert recs["it"].answer_issue == "empty answer" and recs["it"].format_valid is False
    assert recs["fr"].scores["short"].value == 1.0 and recs["fr"].scores["short"].explanation == "6 characters"
    assert recs["de"].scores["short"].value == 0.0 and recs["de"].scores["calm"].value == 0.0
    assert recs["it"].scores["short"].value == 0.0 and recs["it"].scores["calm"].value == 0.0  # empty: wrong everywhere
    assert recs["fr"].primary == 1.0
    df = pd.read_csv(res.run_dir / "summary.csv")
    row = df.iloc[0]
    # short: fr 1, de 0, it 0 (empty), jp 1 ("tokyo" is 5 characters)
    assert row["score_short"] == pytest.approx(0.5) and row["score_short_unknown"] == 0
    assert row["score_calm"] == pytest.approx(0.5)  # de has "!", it is empty
    assert row["score_half"] == pytest.approx((0.5 + 0.5 + 0 + 0.5) / 4)
    assert row["accuracy"] == pytest.approx(0.5) and row["primary"] == "short"
    assert row["accuracy_exact"] == pytest.approx(0.5)  # fr and jp match
    assert row["format_valid"] == pytest.approx(0.75) and pd.isna(row["json_extractable"])
    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    assert manifest["scoring"]["primary"] == "short" and manifest["scoring"]["free_text"] is True
    report = (res.run_dir / "report.md").read_text()
    assert "accuracy = short (95% CI)" in report
    assert "- **short** (python myscorers:short) — primary: baseline 50.0%" in report
    assert "- **calm** (does not match /!/): baseline 50.0%" in report
    assert "format valid means a non-empty answer" in report
    html = (res.run_dir / "report.html").read_text()
    assert 'id="scores"' in html and "accuracy = short" in html


def test_python_scorer_that_raises_names_scorer_and_item_and_exits_2(tmp_path, capsys):
    ev = free_text_set(tmp_path, [{"name": "boom", "scorer": "python", "function": "myscorers:broken"}])
    with FakeOpenAIServer(answer, models=["gpt-4o-mini"]) as server:
        cfg = config(tmp_path, ev, server.base_url)
        with pytest.raises(HarnessError, match=r"scorer 'boom' \(myscorers:broken\) on item '\w+' raised "
                                               r"ZeroDivisionError: oops"):
            run(cfg, RunOptions(results_dir=tmp_path / "r", progress=False, use_cache=False))
        assert main(["run", str(cfg), "--results-dir", str(tmp_path / "r2"), "--no-progress", "--no-cache"]) == 2
    assert "scorer 'boom'" in capsys.readouterr().err


def test_python_scorer_return_values(tmp_path):
    from harness.records import EvalItem
    from harness.scoring.base import ScoreContext, TaskInfo
    from harness.scoring.python_scorer import to_result
    from harness.scoring.registry import build_scorers

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(SCORERS)  # a dotted name resolves under the eval set folder
    ctx = ScoreContext(EvalItem(id="x1", input={}, expected="a"), "abc", "abc", True, True)
    half, wrong = build_scorers([{"name": "h", "scorer": "python", "function": "pkg.mod:half"},
                                 {"name": "w", "scorer": "python", "function": "pkg.mod:wrong_type"}],
                                TaskInfo(tmp_path, None))
    assert half.score(ctx).value == 0.5
    with pytest.raises(HarnessError, match=r"scorer 'w' \(pkg.mod:wrong_type\) on item 'x1' returned 'yes'"):
        wrong.score(ctx)
    assert to_result(True, "w").value == 1.0 and to_result(False, "w").value == 0.0
    assert (to_result((0.25, "a quarter"), "w").value, to_result((0.25, "a quarter"), "w").explanation) == (0.25, "a quarter")
    assert to_result(None, "w").value is None  # "cannot tell": unknown
    with pytest.raises(HarnessError, match="outside|return a bool"):
        to_result(1.5, "w")
    # a module importable by name (not next to task.yaml)
    (sc,) = build_scorers([{"name": "s", "scorer": "python", "function": "harness.data.text:match_key"}],
                          TaskInfo(tmp_path, None))
    assert sc._fn is not None


def test_task_yaml_errors_name_the_line(tmp_path):
    ev = free_text_set(tmp_path, [
        {"name": "ok", "scorer": "regex", "pattern": "x"},
        {"name": "amount", "scorer": "number", "tolerance": -1},
    ])
    with pytest.raises(EvalSetError, match=r"task.yaml:\d+: scoring\[1\].tolerance: .*greater than or equal to 0"):
        scorers_of(load_evalset(ev))
    (ev / "task.yaml").write_text(yaml.safe_dump({
        "instructions": "x", "input_template": "{q}",
        "scoring": [{"name": "r", "scorer": "regex", "pattern": "x", "patern": "y"}]}, sort_keys=False))
    with pytest.raises(EvalSetError, match=r"task.yaml:\d+: scoring\[0\].patern: unknown key 'patern' for scorer "
                                           r"'regex' \(allowed: .*pattern"):
        scorers_of(load_evalset(ev))
    (ev / "task.yaml").write_text(yaml.safe_dump({"instructions": "x", "input_template": "{q}", "primary": "voice"}))
    with pytest.raises(EvalSetError, match=r"task.yaml:\d+: primary: 'voice' is not a scorer name"):
        scorers_of(load_evalset(ev))
    (ev / "task.yaml").write_text(yaml.safe_dump({
        "instructions": "x", "input_template": "{q}",
        "scoring": [{"name": "p", "scorer": "python", "function": "nosuchmodule_xyz:f"}]}))
    with pytest.raises(EvalSetError, match=r"scoring\[0\]: scorer 'p' \(python\): cannot import 'nosuchmodule_xyz'"):
        scorers_of(load_evalset(ev))
    (ev / "task.yaml").write_text(yaml.safe_dump({
        "instructions": "x", "input_template": "{q}",
        "scoring": [{"name": "j", "scorer": "judge", "rubric": "missing.md"}]}))
    with pytest.raises(EvalSetError, match="rubric file not found"):
        scorers_of(load_evalset(ev))


def test_free_text_expected_must_be_text(tmp_path):
    ev = free_text_set(tmp_path)
    write_jsonl(ev / "test.jsonl", [{"id": "a", "input": {"q": "x"}, "expected": {"city": "Paris"}}])
    with pytest.raises(EvalSetError, match="expected must be a string or a list of acceptable strings"):
        load_evalset(ev)


def test_content_hash_covers_scorer_module_and_rubric(tmp_path):
    ev = free_text_set(tmp_path, [{"name": "short", "scorer": "python", "function": "myscorers:short"},
                                  {"name": "voice", "scorer": "judge", "rubric": "rubric.md"}])
    h0 = content_hash(ev)
    (ev / "myscorers.py").write_text(SCORERS + "\n# changed\n")
    h1 = content_hash(ev)
    (ev / "rubric.md").write_text("Pass only when the answer is one word.")
    h2 = content_hash(ev)
    assert len({h0, h1, h2}) == 3


def test_validate_lists_the_scores(tmp_path, capsys):
    ev = free_text_set(tmp_path, [{"name": "short", "scorer": "python", "function": "myscorers:short"},
                                  {"name": "voice", "scorer": "judge", "rubric": "rubric.md"}], primary="voice")
    assert main(["validate", str(config(tmp_path, ev, "http://127.0.0.1:9/v1"))]) == 0
    out = capsys.readouterr().out
    assert ("scoring  free text answers; primary voice; scorers: short (python myscorers:short), voice (LLM judge, "
            "rubric rubric.md, scale 0-1)") in out
    assert "judge    none configured: judge scores will be unknown" in out
