"""One run folder, read the same way by every stage: a version-1 folder is reported and resumed on the items it
chose, a run killed mid-way stays readable (status running, the manifest written at its start, its records up
to the kill) by the report, the gate, the viewer and the Python API, and the manifest is replaced atomically."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest

import harness
from harness.analysis.gate_runs import load_gate_run
from harness.cli import main
from harness.errors import HarnessError
from harness.rundir import SCHEMA_VERSION, Manifest, RunFolder
from harness.view.data import RunData
from tests.conftest import REPO, make_config
from tests.fakes.openai_server import FakeOpenAIServer
from tests.rundir.test_manifest import V1_MANIFEST
from tests.runner.test_reliability import HARNESS_RUN, answer_by_number, big_evalset

# What a version-1 manifest had (tests/rundir/test_manifest.py V1_MANIFEST); the rest came later.
V1_KEYS = set(V1_MANIFEST) - {"rag"}
V1_VARIANT_KEYS = set(V1_MANIFEST["variants"]["baseline"])
V1_PRICE_KEYS = set(V1_MANIFEST["variants"]["baseline"]["price"])


def as_version_1(folder: RunFolder, limit: int, keep_items: set[str]) -> None:
    """Turn a run folder of today into one the first harness could have written: its manifest cut to the
    version-1 keys (no schema_version, selection or scoring) with `limit`, its records cut to `keep_items`."""
    m = json.loads(folder.manifest_path.read_text())
    old = {k: v for k, v in m.items() if k in V1_KEYS}
    old["limit"] = limit
    old["variants"] = {name: {k: v for k, v in info.items() if k in V1_VARIANT_KEYS}
                       for name, info in m["variants"].items()}
    for info in old["variants"].values():
        info["price"] = {k: v for k, v in info["price"].items() if k in V1_PRICE_KEYS}
    old["calls"] = {k: m["calls"][k] for k in ("this_session", "errors_this_session")}
    folder.manifest_path.write_text(json.dumps(old, indent=2))
    lines = folder.records_path.read_text().splitlines(keepends=True)
    folder.records_path.write_text("".join(line for line in lines if json.loads(line)["item_id"] in keep_items))


def test_a_version_1_run_folder_is_reported_and_resumed_on_its_first_items(tmp_path):
    ev = big_evalset(tmp_path, 12)
    with FakeOpenAIServer(answer_by_number, models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, ev, srv.base_url, run={"concurrency": 2, "max_tokens": 16})
        out = tmp_path / "run"
        harness.run(cfg, out=out, progress=False, no_cache=True)
        # killed after 3 of the first 5 items, by a harness from before selections and versions
        as_version_1(RunFolder(out), limit=5, keep_items={"q000", "q001", "q002"})
        assert "schema_version" not in json.loads((out / "manifest.json").read_text())

        m = RunFolder.open(out).manifest
        assert (m.schema_version, m.selection.method, m.selection.items, m.scoring.primary) == (2, "first", 5, "exact")
        assert main(["report", str(out)]) == 0
        row = pd.read_csv(out / "summary.csv").set_index("variant").loc["baseline"]
        assert (row["n"], row["not_asked"], row["status"]) == (3, 2, "incomplete: 2 of 5 items not asked")

        resumed = harness.run(resume=out, progress=False, no_cache=True)
    assert resumed.status == "completed"
    asked = [r.item_id for r in resumed.folder.records()]
    assert sorted(asked) == ["q000", "q001", "q002", "q003", "q004"]  # the first 5, as the old run chose
    on_disk = json.loads((out / "manifest.json").read_text())
    assert list(on_disk)[0] == "schema_version" and on_disk["schema_version"] == SCHEMA_VERSION
    assert on_disk["selection"] == {"limit": 5, "method": "first", "items": 5}
    row = resumed.summary.set_index("variant").loc["baseline"]
    assert (row["n"], row["not_asked"], row["status"]) == (5, 0, "ok")


def _killed_run(tmp_path):
    """A run SIGKILLed after 10 records, with a record torn by the kill at the end of records.jsonl."""
    ev = big_evalset(tmp_path, 60)
    with FakeOpenAIServer(lambda b: (time.sleep(0.03), answer_by_number(b))[1], models=["gpt-4o-mini"]) as srv:
        cfg = make_config(tmp_path, ev, srv.base_url, run={"concurrency": 2, "max_tokens": 16})
        out = tmp_path / "run"
        env = {**os.environ, "HARNESS_CACHE_DIR": str(tmp_path / "c")}
        proc = subprocess.Popen([*HARNESS_RUN, str(cfg), "--no-progress", "--no-cache", "--out", str(out)],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        records = out / "records.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline and not (records.exists() and records.read_text().count("\n") >= 10):
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    whole = records.read_bytes()
    whole = whole[: whole.rfind(b"\n") + 1]
    records.write_bytes(whole + whole.splitlines(keepends=True)[0][:70])  # a write torn by the kill
    return out, whole.count(b"\n")


def test_a_killed_run_is_read_alike_by_every_reader(tmp_path):
    out, n = _killed_run(tmp_path)
    assert 10 <= n < 60, "the run must be killed mid-way"
    folder = RunFolder.open(out)
    m = folder.manifest
    # the manifest written before the first call: running, unfinished, with its items and variants described
    assert (m.status, m.finished_at, m.message, m.schema_version) == ("running", None, None, SCHEMA_VERSION)
    assert m.started_at and m.selection.items == 60 and m.variant("baseline").model_id == "gpt-4o-mini"
    assert m.calls.this_session is None  # the calls had not finished
    full, compact = folder.latest_records(), folder.compact_records()
    assert len(full) == n and [r.key for r in full] == [r.key for r in compact]  # the torn line is left out

    assert harness.load_run(out).status == "running"
    assert harness.load_run(out).records.shape[0] == n
    assert load_gate_run(out).manifest == m
    view = RunData(out)
    assert view.manifest == m and view.records_path == folder.records_path and len(view.cells) == n
    assert main(["report", str(out)]) == 0
    row = pd.read_csv(folder.summary_csv).set_index("variant").loc["baseline"]
    assert row["not_asked"] == 60 - n and row["status"] == f"incomplete: {60 - n} of 60 items not asked"
    assert "status **running**" in folder.summary_md.read_text()


def test_the_manifest_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    folder = RunFolder.create(tmp_path / "run", {"name": "t"}, Manifest(run_id="run", status="running"))
    assert json.loads(folder.config_path.read_text()) == {"name": "t"}
    started = folder.manifest_path.read_bytes()
    assert json.loads(started)["status"] == "running"

    def crash(src, dst):
        raise OSError("killed")

    monkeypatch.setattr("harness.rundir.folder.os.replace", crash)
    with pytest.raises(OSError):
        folder.write_manifest(Manifest(run_id="run", status="completed"))
    assert folder.manifest_path.read_bytes() == started  # the manifest of the start, whole
    assert RunFolder.open(folder.path).manifest.status == "running"
    monkeypatch.undo()
    folder.write_manifest(Manifest(run_id="run", status="completed"))
    assert RunFolder.open(folder.path).manifest.status == "completed"
    assert sorted(p.name for p in folder.path.iterdir()) == ["config.json", "manifest.json"]


def test_open_says_what_is_not_a_run_folder(tmp_path):
    with pytest.raises(HarnessError, match="nope: run folder not found"):
        RunFolder.open(tmp_path / "nope")
    with pytest.raises(HarnessError, match=r"not a run folder \(no manifest.json\)"):
        RunFolder.open(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(HarnessError, match="manifest.json: not valid JSON .*; the run folder is damaged"):
        RunFolder.open(tmp_path)
