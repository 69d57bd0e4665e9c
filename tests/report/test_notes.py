"""What the notes and rows of summary.md, report.md and report.html say about bad answers and skipped variants."""

import json
import re

import pandas as pd

import harness
from harness.cli import main
from harness.report.html import html_table
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text
from tests.runner.test_reliability import LABELS, big_evalset
from tests.scoring.test_task_scoring import answer, free_text_set

BAD_ANSWERS = ("4 answers hit max_tokens: raise run.max_tokens; 4 answers were refusals; 4 answers were empty; "
               "4 answers were not valid JSON for the schema (each scored as format-invalid and wrong)")


def bad_answers(body):
    i = int(last_user_text(body).split("question number ")[1].split()[0])
    kind = i % 5
    if kind == 0:
        return Reply(text='{"intent": "ref', finish_reason="length", prompt_tokens=50, completion_tokens=16)
    if kind == 1:
        return Reply(refusal="I can't help with that.", prompt_tokens=50, completion_tokens=5)
    if kind == 2:
        return Reply(text="", prompt_tokens=50, completion_tokens=1)
    if kind == 3:
        return Reply(text="It is about a refund.", prompt_tokens=50, completion_tokens=5)
    return Reply(text=json.dumps({"intent": LABELS[i % 3]}), prompt_tokens=50, completion_tokens=5)


def test_the_notes_name_the_bad_answers_and_what_to_do(tmp_path):
    ev = big_evalset(tmp_path, 20)
    with FakeOpenAIServer(bad_answers, models=["gpt-4o-mini"]) as srv:
        res = harness.run(make_config(tmp_path, ev, srv.base_url), out=tmp_path / "run", progress=False)
    row = pd.read_csv(res.path / "summary.csv").iloc[0]
    assert (row["truncated"], row["refused"], row["empty_answers"], row["unparseable"], row["content_filtered"]) == (
        4, 4, 4, 4, 0)
    assert row["accuracy"] == 0.2 and bool(row["complete"])
    for name in ("summary.md", "report.md"):
        assert f"- **baseline**: {BAD_ANSWERS}" in (res.path / name).read_text()
    assert f"<li>baseline: {BAD_ANSWERS}</li>" in (res.path / "report.html").read_text()


def test_a_skipped_variant_keeps_its_columns_in_the_per_scorer_table(tmp_path, capsys):
    ev = free_text_set(tmp_path, [{"name": "calm", "scorer": "regex", "pattern": "!", "negate": True},
                                  {"name": "short", "scorer": "regex", "pattern": "^.{0,8}$"}])
    with FakeOpenAIServer(answer, models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, ev, srv.base_url,
                          models={"small": {"provider": "openai-compatible", "base_url": srv.base_url,
                                            "model": "gpt-4o-mini"},
                                  "absent": {"provider": "openai-compatible", "base_url": srv.base_url,
                                             "model": "gpt-4o"}},
                          variants=[{"name": "baseline", "kind": "baseline", "model": "small"},
                                    {"name": "fine-tuned", "kind": "fine_tuned", "model": "absent"}])
        res = harness.run(cfg, out=tmp_path / "run", progress=False)
    assert main(["report", str(res.path)]) == 0
    printed = capsys.readouterr().out
    for text in (printed, (res.path / "summary.md").read_text()):
        lines = text.splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("| variant | calm | short |"))
        assert lines[at + 3] == "| fine-tuned | - | - |"  # the model's name never lands under a scorer
    assert "| fine-tuned | gpt-4o | - |" in printed  # the results table still names its model
    # the HTML tables: the skip reason spans the score columns, the name stays in its own
    df = pd.read_csv(res.path / "summary.csv")
    html = html_table(df, [("variant", "variant"), ("score_calm", "calm"), ("score_short", "short")], "t")
    row = re.search(r"<tr><td[^>]*>fine-tuned</td>(.*?)</tr>", html).group(1)
    assert row.startswith('<td class="skipped" colspan="2">skipped: model &#x27;gpt-4o&#x27; is not served')
