"""The eval set's content hash covers every file that defines the task (issue 11, point 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.data.evalset import content_hash, load_evalset
from tests.conftest import TASK


def with_schema_file(evalset_dir: Path, name: str) -> Path:
    (evalset_dir / name).write_text(json.dumps(TASK["output_schema"]))
    task = {**TASK, "output_schema": name}
    (evalset_dir / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return evalset_dir / name


def test_changing_a_schema_file_under_any_name_changes_the_hash(evalset_dir):
    schema_path = with_schema_file(evalset_dir, "answer-shape.json")
    before = load_evalset(evalset_dir).content_hash
    schema = json.loads(schema_path.read_text())
    schema["properties"]["urgent"]["description"] = "true when the customer needs help today"
    schema_path.write_text(json.dumps(schema))
    after = load_evalset(evalset_dir)
    assert after.schema["properties"]["urgent"]["description"].startswith("true when")
    assert after.content_hash != before


def test_schema_file_in_a_subfolder_and_its_local_refs_are_covered(evalset_dir):
    (evalset_dir / "schemas").mkdir()
    with_schema_file(evalset_dir, "schemas/shape.json")
    defs = evalset_dir / "schemas" / "defs.json"
    defs.write_text(json.dumps({"intent": {"type": "string"}}))
    schema = json.loads((evalset_dir / "schemas" / "shape.json").read_text())
    schema["$comment"] = "see defs.json"
    schema["properties"]["intent"]["$ref"] = "defs.json#/intent"
    (evalset_dir / "schemas" / "shape.json").write_text(json.dumps(schema))
    before = content_hash(evalset_dir)
    defs.write_text(json.dumps({"intent": {"type": "string", "minLength": 2}}))
    assert content_hash(evalset_dir) != before


@pytest.mark.parametrize("change", ["task", "test", "train", "doc", "new-doc"])
def test_every_defining_file_changes_the_hash(evalset_dir, change):
    before = content_hash(evalset_dir)
    if change == "task":
        (evalset_dir / "task.yaml").write_text((evalset_dir / "task.yaml").read_text() + "# note\n")
    elif change in ("test", "train"):
        p = evalset_dir / f"{change}.jsonl"
        p.write_text(p.read_text().replace("card", "Card", 1))
    elif change == "doc":
        (evalset_dir / "docs" / "delivery.md").write_text("Cards arrive in 3 days.")
    else:
        (evalset_dir / "docs" / "extra.md").write_text("A new page.")
    assert content_hash(evalset_dir) != before


def test_unrelated_files_do_not_change_the_hash(evalset_dir):
    before = content_hash(evalset_dir)
    (evalset_dir / "README.md").write_text("notes about this eval set")
    assert content_hash(evalset_dir) == before
