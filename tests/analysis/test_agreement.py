"""Agreement with a reference (issue 21, point 2): runs against the loopback server with scripted answers, so
every agreement figure is known exactly."""

import json

import pandas as pd
import pytest

from harness.analysis.compare import compare_runs
from harness.rundir import RunFolder
from tests.analysis.test_compare import FT_MODEL, LABELS, cli, do_run, make_evalset, scripted, two_variant_config
from tests.conftest import write_jsonl
from tests.fakes.openai_server import FakeOpenAIServer

N = 30


def unlabelled(tmp_path, name="nolabels"):
    """make_evalset's items with their `expected` removed: nothing to measure accuracy on."""
    ev = make_evalset(tmp_path, n_test=N, name=name)
    rows = [json.loads(line) for line in (ev / "test.jsonl").read_text().splitlines()]
    write_jsonl(ev / "test.jsonl", [{k: v for k, v in r.items() if k != "expected"} for r in rows])
    return ev


def run_with(tmp_path, ev, script, out, **extra):
    with FakeOpenAIServer(script, models=["gpt-4o-mini", FT_MODEL]) as srv:
        return do_run(two_variant_config(tmp_path, ev, srv.base_url, **extra), tmp_path, out)


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
