"""Leakage is acted on (issue 11, point 10): train items that repeat or nearly repeat a test item are left out
of the few-shot pool in every selection mode, with the count printed; run.keep_leaked keeps them."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

import harness
from harness.cli import main
from harness.config import VariantConfig, load_config
from harness.data.evalset import load_evalset
from harness.prompts.kinds.base import PrepareContext, kind_of
from harness.rundir.folder import read_records
from harness.runner.runner import RunOptions
from tests.conftest import make_config

LEAKED = {"r-near", "r-exact"}


@pytest.fixture
def leaky_evalset(evalset_dir):
    """Two leaked train items in front of the pool: r-near is a near-duplicate of t4 (Jaccard 7/8),
    r-exact is t2 with other case and punctuation."""
    rows = [
        {"id": "r-near", "input": {"text": "my card has not arrived after two weeks"},
         "expected": {"intent": "card_arrival", "urgent": True}},
        {"id": "r-exact", "input": {"text": "Someone STOLE my card!"}, "expected": {"intent": "lost_card", "urgent": True}},
    ]
    train = evalset_dir / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows) + train.read_text())
    return evalset_dir


def fake_embed(texts, **_):
    """Bag of words hashed into 64 dimensions: near-identical texts are nearest neighbours."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().replace(":", " ").split():
            out[i, zlib.crc32(w.encode()) % 64] += 1
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def shots(ev, selection, n, *, keep_leaked=False):
    v = VariantConfig(name="fs", kind="few_shot", model="m", shots=n, selection=selection)
    prepared = kind_of(v).prepare(PrepareContext(ev, keep_leaked=keep_leaked), ev.test, system_role=True)
    return {item_id: set(p.shot_ids) for item_id, p in prepared.items()}


@pytest.mark.parametrize("selection", ["first", "stratified", "similar"])
def test_leaked_train_items_are_left_out_of_every_selection(leaky_evalset, monkeypatch, selection):
    monkeypatch.setattr("harness.retrieval.embeddings.embed", fake_embed)
    ev = load_evalset(leaky_evalset)
    n = len(ev.train) if selection == "stratified" else 2
    default = shots(ev, selection, n)
    assert all(not (ids & LEAKED) for ids in default.values()), default
    kept = shots(ev, selection, n, keep_leaked=True)
    assert set().union(*kept.values()) & LEAKED


def test_similar_selection_no_longer_shows_the_near_duplicate(leaky_evalset, monkeypatch):
    monkeypatch.setattr("harness.retrieval.embeddings.embed", fake_embed)
    ev = load_evalset(leaky_evalset)
    assert "r-near" in shots(ev, "similar", 1, keep_leaked=True)["t4"]
    assert "r-near" not in shots(ev, "similar", 1)["t4"]


def few_shot_config(tmp_path, evalset, base_url, **run):
    return make_config(tmp_path, evalset, base_url, run={"concurrency": 2, "seed": 0, **run},
                       variants=[{"name": "fs", "kind": "few_shot", "model": "small", "shots": 2,
                                  "selection": "first"}])


def test_run_leaves_leaked_items_out_and_says_so(tmp_path, leaky_evalset, fake_server, capsys):
    cfg = few_shot_config(tmp_path, leaky_evalset, fake_server.base_url)
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--no-progress", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "left 2 train item(s) out of the few-shot pool" in err and "run.keep_leaked: true" in err
    assert all(not set(r.shot_ids) & LEAKED for r in read_records(out / "records.jsonl"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["leakage_action"] == {"train_items": ["r-exact", "r-near"], "kept": False,
                                          "left_out_of": ["few-shot pool"]}


def test_keep_leaked_keeps_them(tmp_path, leaky_evalset, fake_server, capsys):
    cfg = few_shot_config(tmp_path, leaky_evalset, fake_server.base_url, keep_leaked=True)
    assert load_config(cfg).run.keep_leaked is True
    res = harness.run(cfg, RunOptions(results_dir=tmp_path / "results", progress=False))
    assert "kept 2 train item(s)" in capsys.readouterr().err
    assert {tuple(r.shot_ids) for r in read_records(res.run_dir / "records.jsonl")} == {("r-near", "r-exact")}
    assert res.manifest.leakage_action["kept"] is True
