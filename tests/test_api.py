"""The public Python API: harness.run / load_run / compare, against a loopback OpenAI-compatible server."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import harness
from harness.analysis.compare import CompareResult
from harness.errors import HarnessError
from tests.conftest import make_config


def test_run_summary_records_and_compare(tmp_path, evalset_dir, fake_server):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, variants=[
        {"name": "baseline", "kind": "baseline", "model": "small"},
        {"name": "few-shot", "kind": "few_shot", "model": "small", "shots": 2},
    ])
    run = harness.run(cfg, limit=3, variants=["baseline"], out=tmp_path / "run1", progress=False)
    assert run.status == "completed" and run.path == tmp_path / "run1"
    # run.summary is summary.csv, cell for cell
    pd.testing.assert_frame_equal(run.summary, pd.read_csv(run.path / "summary.csv"))
    assert list(run.summary["variant"]) == ["baseline"]
    assert run.summary.loc[0, "n"] == 3 and run.summary.loc[0, "accuracy"] == 1.0
    recs = run.records
    assert len(recs) == 3 and set(recs["variant"]) == {"baseline"}
    assert {"item_id", "variant", "repeat", "raw_text", "correct", "cost_usd"} <= set(recs.columns)
    assert recs["correct"].all()
    assert json.loads(recs.iloc[0]["raw_text"]) == recs.iloc[0]["expected"]

    again = harness.load_run(tmp_path / "run1")
    assert again.status == "completed"
    pd.testing.assert_frame_equal(again.summary, run.summary)
    pd.testing.assert_frame_equal(again.records, run.records)

    other = harness.run(cfg, limit=3, variants=["baseline"], out=tmp_path / "run2", progress=False)
    result = harness.compare(again, other)
    assert isinstance(result, CompareResult)
    assert not result.failed and result.exit_code == 0
    assert harness.compare(str(again.path), other.path).to_dict()["exit_code"] == 0


def test_compare_speaks_of_the_accepted_and_the_candidate_run(tmp_path, evalset_dir, fake_server):
    """Keywords and JSON say accepted / candidate ("baseline" is a variant name); the gate's rules are named."""
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, variants=[
        {"name": "baseline", "kind": "baseline", "model": "small"},
        {"name": "few-shot", "kind": "few_shot", "model": "small", "shots": 2},
    ])
    accepted = harness.run(cfg, limit=3, variants=["baseline"], out=tmp_path / "a", progress=False)
    renamed = harness.run(cfg, limit=3, variants=["few-shot"], out=tmp_path / "b", progress=False)
    gate = harness.compare(accepted=accepted, candidate=renamed)
    assert gate.exit_code == 1 and [(f.rule, f.variant) for f in gate.failures] == [("missing-variant", "baseline")]
    d = gate.to_dict()
    assert d["accepted_run"] == str(accepted.path) and d["candidate_run"] == str(renamed.path)
    assert d["rules_fired"] == ["missing-variant"] and "baseline_run" not in d
    with pytest.raises(HarnessError, match="no variant name is in both runs"):
        harness.compare(accepted, renamed, allow_missing_variant="baseline")


def test_load_run_rebuilds_missing_tables(tmp_path, evalset_dir, fake_server):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    run = harness.run(cfg, out=tmp_path / "r", progress=False)
    (run.path / "summary.csv").unlink()
    assert harness.load_run(run.path).summary.loc[0, "n"] == 4
    assert (run.path / "summary.csv").exists()


def test_bad_input_is_a_harness_error(tmp_path):
    with pytest.raises(HarnessError, match="not a run folder"):
        harness.load_run(tmp_path)
    with pytest.raises(TypeError, match="unknown option"):
        harness.run("configs/demo.yaml", limitt=3)
