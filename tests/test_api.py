"""The public Python API: harness.run / load_run / compare, against a loopback OpenAI-compatible server."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import harness
from harness.analysis.compare import CompareResult
from harness.api import keyword_words
from harness.cli import main
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


def test_variants_as_on_the_command_line(tmp_path, evalset_dir, fake_server):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, variants=[
        {"name": "baseline", "kind": "baseline", "model": "small"},
        {"name": "few-shot", "kind": "few_shot", "model": "small", "shots": 2},
        {"name": "rag", "kind": "rag", "model": "small"},
    ])
    run = harness.run(cfg, limit=2, variants="baseline, few-shot", out=tmp_path / "r", progress=False)
    assert list(run.summary["variant"]) == ["baseline", "few-shot"]
    assert run.manifest.selected_variants == ["baseline", "few-shot"]
    with pytest.raises(TypeError, match="variants=3: give variant names as a list or a comma-separated string"):
        harness.run(cfg, variants=3)


def test_the_cli_flags_are_keywords(tmp_path, evalset_dir, fake_server, capsys, isolated_cache):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    harness.run(cfg, out=tmp_path / "shown")
    assert "running" in capsys.readouterr().err  # the progress bar, on by default
    assert (isolated_cache / "responses.sqlite").exists()
    (isolated_cache / "responses.sqlite").unlink()
    run = harness.run(cfg, out=tmp_path / "quiet", no_progress=True, no_cache=True, results_dir=tmp_path)
    assert run.status == "completed" and "running" not in capsys.readouterr().err
    assert not (isolated_cache / "responses.sqlite").exists()
    assert len(fake_server.requests) == 8  # no cache: asked again
    with pytest.raises(TypeError, match="give no_cache or use_cache, not both"):
        harness.run(cfg, no_cache=True, use_cache=True)
    assert harness.load_run(run_dir=run.path).status == "completed"
    assert harness.load_run(path=run.path).status == "completed"  # the earlier name


def test_api_errors_name_the_keyword_and_cli_errors_the_flag(tmp_path, evalset_dir, fake_server, capsys):
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    with pytest.raises(HarnessError, match=r"^limit=-5: give 1 or more items"):
        harness.run(cfg, limit=-5)
    with pytest.raises(HarnessError, match=r"^max_error_rate=2: must be a share between 0 and 1"):
        harness.run(cfg, max_error_rate=2)
    with pytest.raises(HarnessError, match=r"^variants: unknown variant\(s\) nope"):
        harness.run(cfg, variants="nope")
    with pytest.raises(HarnessError, match=r"^shard=9/2: expected K/N"):
        harness.run(cfg, shard="9/2")
    with pytest.raises(HarnessError, match=r"^retry_errors=True asks .* use it with resume=RUN_DIR$"):
        harness.run(cfg, retry_errors=True)
    run = harness.run(cfg, out=tmp_path / "r", no_progress=True)
    with pytest.raises(HarnessError, match=r"^max_drop=5: must be a share"):
        harness.compare(run, run, max_drop=5)
    with pytest.raises(HarnessError, match=r"^alpha=0: must be between 0 and 1"):
        harness.compare(run, run, alpha=0)
    capsys.readouterr()
    # The CLI, over the same calls, still names its flags.
    assert main(["compare", str(run.path), str(run.path), "--max-drop", "5"]) == 2
    assert "error: --max-drop 5.0: must be a share" in capsys.readouterr().err
    assert main(["run", str(cfg), "--variants", "nope"]) == 2
    assert "error: --variants: unknown variant(s) nope" in capsys.readouterr().err


def test_keyword_words_keeps_commands():
    assert keyword_words("--variant x: none; pass --allow-different-evalset, or run `harness run --resume d`") \
        == "variant=x: none; pass allow_different_evalset=True, or run `harness run --resume d`"
    assert keyword_words("use --resume results/r to continue it, or another --out") \
        == "use resume=results/r to continue it, or another out"
    assert keyword_words("pip install --force-reinstall gguf") == "pip install --force-reinstall gguf"
    assert keyword_words("unless --allow-missing-variant NAME allows it or --allow-subset") \
        == "unless allow_missing_variant=NAME allows it or allow_subset=True"
