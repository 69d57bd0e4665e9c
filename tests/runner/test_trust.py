"""Runs you can trust to finish (issue 11, point 9): a run that measured nothing fails, errored items can be
asked again, a garbled line costs that line only, and --limit takes a seeded, stratified sample."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import yaml

import harness
from harness.cli import main
from harness.data.evalset import load_evalset
from harness.rundir.folder import RunFolder, read_records
from harness.runner.runner import RunOptions
from tests.conftest import make_config, right_answer, write_jsonl
from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text


def do_run(cfg, tmp_path, **kw):
    kw.setdefault("results_dir", tmp_path / "results")
    return harness.run(cfg, RunOptions(progress=False, **kw))


# -- (a) every variant skipped ---------------------------------------------------------------------------

def unreachable_config(tmp_path, evalset_dir):
    return make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1",
                       variants=[{"name": "down", "kind": "baseline", "model": "small"},
                                 {"name": "also-down", "kind": "fine_tuned", "model": "small"}])


def test_run_where_every_variant_is_skipped_exits_1_with_the_reasons(tmp_path, evalset_dir, capsys):
    cfg = unreachable_config(tmp_path, evalset_dir)
    out = tmp_path / "run"
    code = main(["run", str(cfg), "--no-progress", "--no-cache", "--out", str(out)])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 1
    assert "nothing was run" in text
    assert "down" in text and "also-down" in text and "unreachable" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "nothing_run"
    assert "unreachable" in manifest["message"]


def test_api_reports_nothing_run(tmp_path, evalset_dir):
    res = do_run(unreachable_config(tmp_path, evalset_dir), tmp_path, use_cache=False)
    assert res.status == "nothing_run"
    assert set(res.skipped) == {"down", "also-down"}
    assert "nothing was run" in res.message
    assert harness.load_run(res.run_dir).status == "nothing_run"


# -- (b) --retry-errors ----------------------------------------------------------------------------------

def test_resume_retry_errors_asks_errored_items_again(tmp_path, evalset_dir, capsys):
    failing = {"on": True}

    def handler(body):
        if failing["on"] and "someone stole my card" in last_user_text(body):
            return Reply(status=500)
        return right_answer(body)

    with FakeOpenAIServer(handler, models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, evalset_dir, srv.base_url,
                          models={"small": {"provider": "openai-compatible", "base_url": srv.base_url,
                                            "model": "gpt-4o-mini", "max_retries": 0}})
        out = tmp_path / "run"
        assert main(["run", str(cfg), "--no-progress", "--out", str(out)]) == 0
        first = read_records(out / "records.jsonl")
        assert [r.item_id for r in first if r.error] == ["t2"]
        n_requests = len(srv.requests)

        # a plain --resume has nothing left to do: the errored item has a record
        assert main(["run", "--resume", str(out), "--no-progress"]) == 0
        assert len(srv.requests) == n_requests

        failing["on"] = False
        capsys.readouterr()
        assert main(["run", "--resume", str(out), "--no-progress", "--retry-errors"]) == 0
        assert "asking 1 errored item(s) again" in capsys.readouterr().err
        assert len(srv.requests) == n_requests + 1

    lines = (out / "records.jsonl").read_text().splitlines()
    assert len(lines) == 5  # append-only: the errored record stays in the file
    latest = RunFolder(out).latest_records()
    assert len(latest) == 4 and not any(r.error for r in latest)
    row = pd.read_csv(out / "summary.csv").set_index("variant").loc["baseline"]
    assert row["n"] == 4 and row["errors"] == 0 and row["accuracy"] == 1.0
    assert len(harness.load_run(out).records) == 4


def test_retry_errors_needs_resume(tmp_path, evalset_dir, capsys):
    cfg = make_config(tmp_path, evalset_dir, "http://127.0.0.1:9/v1")
    assert main(["run", str(cfg), "--retry-errors"]) == 2
    assert "--retry-errors" in capsys.readouterr().err


# -- (c) a garbled line in the middle ----------------------------------------------------------------------

def test_garbled_middle_line_loses_that_line_only(tmp_path, evalset_dir, fake_server, capsys):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    res = do_run(cfg, tmp_path, use_cache=False)
    path = res.run_dir / "records.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == 4
    # line 2 torn mid-write (no newline) and line 3 then appended onto it; line 4 a garbled line
    garbled = lines[0] + lines[1][:40] + lines[2] + "#\x00 not json\n" + lines[3]
    path.write_text(garbled)
    capsys.readouterr()
    recs = read_records(path)
    err = capsys.readouterr().err
    assert [r.item_id for r in recs] == [json.loads(x)["item_id"] for x in (lines[0], lines[2], lines[3])]
    assert f"{path}:2" in err and f"{path}:3" in err
    # repair keeps everything but the torn last line: nothing here is torn at the end
    recs = read_records(path, repair=True)
    assert len(recs) == 3 and path.read_text() == garbled

    lost = json.loads(lines[1])["item_id"]
    again = harness.run(None, RunOptions(resume=res.run_dir, progress=False, use_cache=False))
    assert again.status == "completed"
    assert len(fake_server.requests) == 4 + 1  # only the lost item is asked again
    assert fake_server.requests[-1]["messages"][-1]["content"].endswith(
        next(i["input"]["text"] for i in map(json.loads, (evalset_dir / "test.jsonl").read_text().splitlines())
             if i["id"] == lost))
    assert sorted(r.item_id for r in RunFolder(res.run_dir).latest_records()) == ["t1", "t2", "t3", "t4"]


def test_repair_cuts_only_a_torn_last_line(tmp_path, evalset_dir, fake_server):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    res = do_run(cfg, tmp_path, use_cache=False)
    path = res.run_dir / "records.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "garbage\n" + lines[1] + lines[2][:25])
    recs = read_records(path, repair=True)
    assert len(recs) == 2
    assert path.read_text() == lines[0] + "garbage\n" + lines[1]


# -- (d) --limit is a seeded, stratified sample ------------------------------------------------------------

TEAMS = ["network", "billing", "mobile"]


def labelled_evalset(tmp_path, n=60):
    """60 items: the first 30 all network, then 20 billing and 10 mobile, so the first N are one label."""
    d = tmp_path / "evalsets" / "teams"
    d.mkdir(parents=True)
    (d / "task.yaml").write_text(yaml.safe_dump({
        "instructions": "Route.", "input_template": "{text}",
        "output_schema": {"type": "object", "properties": {"team": {"type": "string", "enum": TEAMS}},
                          "required": ["team"]},
    }))
    teams = ["network"] * 30 + ["billing"] * 20 + ["mobile"] * 10
    write_jsonl(d / "test.jsonl", [{"id": f"q{i:03d}", "input": {"text": f"question number {i}"},
                                    "expected": {"team": t}} for i, t in enumerate(teams)])
    return d


def answer_team(body):
    i = int(last_user_text(body).split("question number ")[1].split()[0])
    team = "network" if i < 30 else "billing" if i < 50 else "mobile"
    return Reply(text=json.dumps({"team": team}), prompt_tokens=10, completion_tokens=3)


def test_limit_takes_a_seeded_stratified_sample_and_resume_keeps_it(tmp_path):
    ev = labelled_evalset(tmp_path)
    with FakeOpenAIServer(answer_team, models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, ev, srv.base_url, run={"concurrency": 2, "seed": 3, "limit": 12})
        res = do_run(cfg, tmp_path, use_cache=False)
        recs = read_records(res.run_dir / "records.jsonl")
        ids = sorted(r.item_id for r in recs)
        assert len(ids) == 12 and ids != [f"q{i:03d}" for i in range(12)]
        team_of = {i.id: i.expected["team"] for i in load_evalset(ev).test}
        assert Counter(team_of[i] for i in ids) == {"network": 6, "billing": 4, "mobile": 2}
        manifest = json.loads((res.run_dir / "manifest.json").read_text())
        sel = manifest["selection"]
        assert sel["limit"] == 12 and sel["seed"] == 3 and sel["method"] == "stratified by team"
        assert sel["item_ids"] == ids  # in test.jsonl order

        # the same seed gives the same items; another seed other items
        assert sorted(r.item_id for r in read_records(do_run(cfg, tmp_path, use_cache=False).run_dir
                                                      / "records.jsonl")) == ids
        cfg2 = make_config(tmp_path, ev, srv.base_url, run={"concurrency": 2, "seed": 4, "limit": 12})
        other = sorted(r.item_id for r in read_records(do_run(cfg2, tmp_path, use_cache=False).run_dir
                                                       / "records.jsonl"))
        assert other != ids

        # --resume reuses the recorded items
        path = res.run_dir / "records.jsonl"
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[:5]))
        n = len(srv.requests)
        again = harness.run(None, RunOptions(resume=res.run_dir, progress=False, use_cache=False))
        assert again.status == "completed" and len(srv.requests) == n + 7
        assert sorted(r.item_id for r in read_records(path)) == ids


def test_limit_without_labels_is_a_seeded_random_sample(tmp_path):
    d = tmp_path / "evalsets" / "free"
    d.mkdir(parents=True)
    (d / "task.yaml").write_text(yaml.safe_dump({
        "instructions": "Answer.", "input_template": "{text}",
        "output_schema": {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
    }))
    write_jsonl(d / "test.jsonl", [{"id": f"q{i:03d}", "input": {"text": f"question number {i}"},
                                    "expected": {"answer": str(i)}} for i in range(40)])
    with FakeOpenAIServer(lambda b: Reply(text='{"answer": "1"}', prompt_tokens=5, completion_tokens=2),
                          models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, d, srv.base_url)
        res = do_run(cfg, tmp_path, use_cache=False, limit=10)
    ids = [r.item_id for r in read_records(res.run_dir / "records.jsonl")]
    assert len(ids) == 10 and sorted(ids) != [f"q{i:03d}" for i in range(10)]
    sel = json.loads((res.run_dir / "manifest.json").read_text())["selection"]
    assert sel["method"] == "random" and sel["seed"] == 7 and sel["limit"] == 10


def test_a_whole_last_record_missing_only_its_newline_is_kept(tmp_path, evalset_dir, fake_server):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    res = do_run(cfg, tmp_path, use_cache=False)
    path = res.run_dir / "records.jsonl"
    text = path.read_text()
    path.write_text(text.rstrip("\n"))
    assert len(read_records(path)) == 4 and path.read_text() == text.rstrip("\n")
    assert len(read_records(path, repair=True)) == 4 and path.read_text() == text
