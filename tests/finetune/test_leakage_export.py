"""Leakage is acted on (issue 11, point 10): near-duplicates of test items stay out of the fine-tuning data
unless --keep-leaked (or run.keep_leaked) keeps them."""

from __future__ import annotations

import pytest
import yaml

from harness.cli import main
from harness.data.evalset import load_evalset
from harness.finetune.data import training_items
from tests.conftest import TASK, TEST_ITEMS, write_jsonl
from tests.finetune.test_export import FT_TRAIN, ft_config, read_lines


@pytest.fixture
def near_dup_evalset(tmp_path):
    """The export tests' eval set (ft-dup repeats t2 verbatim) plus ft-near, a near-duplicate of t4
    ("card has not arrived after two weeks"), not a verbatim repeat."""
    d = tmp_path / "evalsets" / "ft"
    d.mkdir(parents=True)
    (d / "task.yaml").write_text(yaml.safe_dump(TASK, sort_keys=False))
    write_jsonl(d / "test.jsonl", [{"id": i, "input": {"text": t}, "expected": {"intent": lab, "urgent": u}}
                                   for i, t, lab, u, _ in TEST_ITEMS])
    train = [*FT_TRAIN, ("ft-near", "my card has not arrived after two weeks", "card_arrival", True)]
    write_jsonl(d / "train.jsonl", [{"id": i, "input": {"text": t}, "expected": {"intent": lab, "urgent": u}}
                                    for i, t, lab, u in train])
    return d


def test_training_items_leave_out_near_duplicates(near_dup_evalset):
    ev = load_evalset(near_dup_evalset)
    split = training_items(ev, seed=0)
    ids = {i.id for i in split.train}
    assert "ft-near" not in ids and "ft-dup" not in ids
    assert split.leaked == {"ft-near": "t4"}
    kept = training_items(ev, seed=0, keep_leaked=True)
    assert "ft-near" in {i.id for i in kept.train}
    assert "ft-dup" not in {i.id for i in kept.train}  # a verbatim repeat never reaches a training file


def test_export_cli_leaves_them_out_and_keep_leaked_keeps_them(tmp_path, near_dup_evalset, capsys):
    cfg = ft_config(tmp_path, near_dup_evalset)
    out = tmp_path / "train.jsonl"
    assert main(["finetune", "export", str(cfg), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1 train item(s) that nearly repeat a test item" in text and "ft-near~t4" in text
    assert "--keep-leaked" in text
    assert not any("my card has not arrived" in m["content"] for row in read_lines(out) for m in row["messages"])

    assert main(["finetune", "export", str(cfg), "--out", str(out), "--keep-leaked"]) == 0
    text = capsys.readouterr().out
    assert "kept 1 train item(s) that nearly repeat a test item" in text
    assert any("my card has not arrived" in m["content"] for row in read_lines(out) for m in row["messages"])
