"""A report rebuilt from a run folder shows what the live one showed — after a clean run, a run killed mid-way,
a resumed run and merged shards — with unknown costs kept unknown (null), never $0, from record to table; and a
variant that was not asked every selected item is marked incomplete everywhere."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd

import harness
from harness.cli import main
from harness.rundir import Manifest
from harness.rundir.folder import read_records
from tests.conftest import REPO, make_config
from tests.fakes.openai_server import FakeOpenAIServer
from tests.runner.test_reliability import answer_by_number, big_evalset

OUTPUTS = ("summary.csv", "summary.md", "report.md", "report.html")
SELF_HOSTED = {"provider": "openai-compatible", "model": "fake-model", "price_per_hour": 3.6}


def self_hosted_config(tmp_path, ev, url, **run):
    cfg = make_config(tmp_path, ev, url, run={"concurrency": 2, "max_tokens": 16, "seed": 1, **run},
                      variants=[{"name": "a", "kind": "baseline", "model": "small"},
                                {"name": "b", "kind": "fine_tuned", "model": "small"}])
    text = cfg.read_text().replace("model: gpt-4o-mini", "model: fake-model\n    price_per_hour: 3.6")
    cfg.write_text(text)
    return cfg


def outputs(run_dir):
    return {name: (run_dir / name).read_bytes() for name in OUTPUTS}


def rebuilt(run_dir):
    for name in OUTPUTS:
        (run_dir / name).unlink(missing_ok=True)
    assert main(["report", str(run_dir)]) == 0
    return outputs(run_dir)


def test_self_hosted_records_keep_cost_null_and_the_rebuilt_report_is_the_live_one(tmp_path):
    ev = big_evalset(tmp_path, 12)
    with FakeOpenAIServer(answer_by_number, models=["fake-model"]) as srv:
        res = harness.run(self_hosted_config(tmp_path, ev, srv.base_url), out=tmp_path / "run", progress=False)
    recs = read_records(res.path / "records.jsonl")
    assert len(recs) == 24 and all(r.cost_usd is None for r in recs)  # no per-token price: unknown, not 0.0
    assert all('"cost_usd":null' in line for line in (res.path / "records.jsonl").read_text().splitlines())
    row = pd.read_csv(res.path / "summary.csv").set_index("variant").loc["a"]
    assert row["cost_per_request_usd"] > 0 and row["cost_unknown"] == 0  # costed from the measured busy time
    assert row["price_basis"] == "self-hosted" and bool(row["complete"]) and row["not_asked"] == 0
    live = outputs(res.path)
    assert rebuilt(res.path) == live


def test_a_run_killed_mid_way_is_reported_with_its_costs_and_marked_incomplete_then_resumed(tmp_path):
    ev = big_evalset(tmp_path, 60)
    with FakeOpenAIServer(lambda b: (time.sleep(0.03), answer_by_number(b))[1], models=["fake-model"]) as srv:
        cfg = self_hosted_config(tmp_path, ev, srv.base_url)
        out = tmp_path / "run"
        env = {**os.environ, "HARNESS_CACHE_DIR": str(tmp_path / "c")}
        proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(cfg), "--no-progress", "--out", str(out)],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        records = out / "records.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline and not (records.exists() and records.read_text().count("\n") >= 10):
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert json.loads((out / "manifest.json").read_text())["status"] == "running"
        assert main(["report", str(out)]) == 0
        killed = pd.read_csv(out / "summary.csv").set_index("variant")
        asked = {v: len([r for r in read_records(records) if r.variant == v]) for v in ("a", "b")}
        assert asked["a"] < 60, "the run must be killed mid-way"
        for v in ("a", "b"):
            assert killed.loc[v, "not_asked"] == 60 - asked[v] and not killed.loc[v, "complete"]
        # self-hosted cost from the measured busy time, as a live report would show it: never $0
        assert killed.loc["a", "cost_per_request_usd"] > 0
        note = f"incomplete: {60 - asked['a']} of 60 items not asked"
        assert killed.loc["a", "status"].startswith(note)
        for name in ("summary.md", "report.md", "report.html"):
            assert f"a ({note}" in (out / name).read_text()
        report = (out / "report.md").read_text()
        assert f"- a is {note}" in report and "left out of the comparisons below" in report
        assert "The best prompt-only variant, a," not in report  # never compared as if complete
        assert "No complete prompt-only variant" in report
        res = subprocess.run([sys.executable, "-m", "harness", "run", "--resume", str(out), "--no-progress"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
    live = outputs(out)
    done = pd.read_csv(out / "summary.csv").set_index("variant")
    assert done["complete"].all() and (done["not_asked"] == 0).all() and (done["cost_per_request_usd"] > 0).all()
    assert "items not asked" not in (out / "report.md").read_text()
    assert rebuilt(out) == live


def test_merged_shards_rebuild_the_same_report(tmp_path):
    ev = big_evalset(tmp_path, 12)
    with FakeOpenAIServer(answer_by_number, models=["fake-model"]) as srv:
        cfg = self_hosted_config(tmp_path, ev, srv.base_url)
        shards = [harness.run(cfg, out=tmp_path / f"s{k}", shard=f"{k}/2", progress=False) for k in (1, 2)]
    merged = harness.merge(*(s.path for s in shards), out=tmp_path / "merged")
    row = pd.read_csv(merged.path / "summary.csv").set_index("variant").loc["a"]
    assert row["n"] == 12 and bool(row["complete"]) and row["cost_per_request_usd"] > 0
    shard_row = pd.read_csv(shards[0].path / "summary.csv").set_index("variant").loc["a"]
    assert bool(shard_row["complete"])  # a shard is complete when it asked its own share of the items
    live = outputs(merged.path)
    assert rebuilt(merged.path) == live


def test_not_asked_counts_calls_with_repeats():
    from harness.analysis.summary import incomplete_note

    assert incomplete_note({"n": 75, "errors": 2, "not_asked": 45, "repeats": 2}) == (
        "incomplete: 45 of 120 calls (60 items x 2 repeats) not asked, 2 of 75 unanswered")
    assert incomplete_note({"n": 30, "errors": 0, "not_asked": 30, "repeats": 1}) == (
        "incomplete: 30 of 60 items not asked")


def _answered(variant, item, correct, model="m"):
    from harness.records import Record, Usage

    return Record(item_id=item, variant=variant, model=model, model_id=model, request={}, raw_text="x",
                  usage=Usage(prompt_tokens=10, completion_tokens=2), latency_s=0.1, cost_usd=0.001,
                  scores={"correct": correct, "format_valid": True, "primary": 1.0 if correct else 0.0})


def test_an_incomplete_fine_tuned_variant_is_not_compared_as_if_complete():
    from harness.analysis import economics, summary
    from harness.report.decision import decision_lines

    priced = {"basis": "table", "source": "t"}
    manifest = Manifest(selection={"items": 4}, selected_variants=["base", "ft"],
                        variants={"base": {"kind": "baseline", "model": "m", "price": priced},
                                  "ft": {"kind": "fine_tuned", "model": "m", "price": priced}})
    records = [_answered("base", f"i{k}", k < 2) for k in range(4)] + [_answered("ft", f"i{k}", True) for k in range(2)]
    analysis = summary.analyse(manifest, records, {"run": {"repeats": 1}})
    df = analysis.df.set_index("variant")
    assert df.loc["ft", "status"] == "incomplete: 2 of 4 items not asked" and df.loc["ft", "not_asked"] == 2
    assert bool(df.loc["base", "complete"]) and not bool(df.loc["ft", "complete"])
    eco = economics.analyse(manifest, {}, analysis.df, analysis.items, records)
    assert eco.fine_tuned_state is economics.FineTuned.INCOMPLETE and eco.ft_vs_prompt is None
    assert eco.break_even.case is economics.Payback.INCOMPLETE
    text = "\n".join(decision_lines(eco))
    assert "ft is incomplete: 2 of 4 items not asked: its accuracy (100.0%) covers only the 2 calls asked" in text
    assert "The fine-tuned variant ft did not answer every selected item, so it is not compared" in text
    assert "Fine-tuning (ft) gained" not in text  # no paired claim on half the items
    assert text.endswith("ft did not answer every selected item, so no break-even volume is claimed.")
