"""The typed, versioned manifest: an older manifest is migrated as it is read, keys this harness does not know
survive a read and a write, sections are written only when they apply, and a manifest that cannot be read is
one line naming the file and the field."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.rundir import SCHEMA_VERSION, Manifest, RunFolder
from harness.rundir.manifest import Selection

# A manifest as the first harness wrote it (commit 8a04440, with `leakage` from 664cb70): no schema_version,
# no `selection` (it took the first `limit` items), no `scoring` (exact match was all there was).
V1_MANIFEST = {
    "run_id": "old-run", "name": "old", "config_path": "configs/old.yaml",
    "evalset": {"name": "big", "path": "/gone/big", "content_hash": "ab" * 32, "test_items": 12, "train_items": 0,
                "docs": 3},
    "harness_version": "0.1.0", "git_revision": None, "python": "3.11.7", "platform": "Linux", "started_at":
    "2026-11-22T08:00:00+00:00", "limit": 5, "selected_variants": ["baseline"],
    "schema": {"type": "object", "properties": {"intent": {"type": "string"}}}, "label_fields": {"intent": ["a"]},
    "status": "completed", "leakage": [],
    "rag": {"index_dir": "/cache/chroma", "chunks": 3, "reused": False, "build_s": 0.2, "docs": 3},
    "variants": {"baseline": {
        "kind": "baseline", "model": "small", "model_id": "gpt-4o-mini", "provider": "openai-compatible",
        "structured_output": "json_schema", "system_role": True,
        "price": {"input_per_1m": 0.15, "cached_input_per_1m": 0.075, "output_per_1m": 0.6,
                  "training_per_1m": None, "basis": "table", "source": "prices.yaml"},
        "price_per_hour": None, "skipped": None, "settings": {"name": "baseline", "kind": "baseline"}}},
    "calls": {"this_session": 5, "errors_this_session": 0},
    "message": None, "finished_at": "2026-11-22T08:01:00+00:00",
}


def test_a_version_1_manifest_is_migrated_as_it_is_read():
    m = Manifest.model_validate(json.loads(json.dumps(V1_MANIFEST)))
    assert m.schema_version == SCHEMA_VERSION == 2
    # how a version-1 run chose and scored its items, said in today's terms
    assert m.selection == Selection(limit=5, method="first", items=5) and m.selection.item_ids is None
    assert (m.scoring.primary, m.scoring.free_text, m.scoring.scorers) == ("exact", False, [])
    assert m.variant("baseline").price.basis == "table" and m.variant("baseline").price.as_of is None
    assert m.variant("missing").kind is None and m.skipped == {}
    # written again (a resumed run), nothing of the old manifest is lost and the version comes first
    written = m.to_json()
    assert list(written)[0] == "schema_version"
    assert {k: v for k, v in written.items() if k not in ("schema_version", "selection", "scoring")} == V1_MANIFEST
    assert Manifest.model_validate(written) == m  # migrating is done once


@pytest.mark.parametrize(("limit", "test_items", "items"), [(None, 12, 12), (20, 12, 12), (5, None, None)])
def test_a_version_1_selection_covers_the_first_items(limit, test_items, items):
    m = Manifest.model_validate({"limit": limit, "evalset": {"test_items": test_items}})
    assert m.selection == Selection(limit=limit, method="first", items=items)


def test_keys_this_harness_does_not_know_survive_a_read_and_a_write():
    data = {"schema_version": 2, "run_id": "r", "status": "completed", "selection": {"method": "all", "items": 3},
            "from_a_later_harness": {"x": [1, 2]},
            "variants": {"v": {"kind": "baseline", "price": {"basis": "table", "per_image": 0.01}, "new_key": 1}},
            "scoring": {"primary": "f1", "free_text": True, "scorers": [{"name": "f1", "scorer": "f1", "field": "x",
                                                                         "describe": "F1 over x"}]}}
    m = Manifest.model_validate(data)
    assert m.to_json() == data
    assert m.scoring.scorers[0].identity() == {"name": "f1", "scorer": "f1", "field": "x"}


def test_sections_are_written_only_when_they_apply():
    m = Manifest.model_validate({"schema_version": 2, "run_id": "r", "shard": {"index": 1, "count": 2}})
    m.timings["prepare_s"] = 0.5  # changed in place, as the planner does
    m.price_warnings.append("a table price from 2026-01-15")
    m.shard = None  # a merged run is no shard
    m.message = None  # a finished run says it had no message
    written = m.to_json()
    assert "shard" not in written and "judge" not in written and "merged_from" not in written
    assert written["timings"] == {"prepare_s": 0.5} and written["price_warnings"] == ["a table price from 2026-01-15"]
    assert "message" in written and written["message"] is None


@pytest.mark.parametrize(("manifest", "says"), [
    ({"schema_version": 99}, "manifest.json: schema_version 99 is newer than this harness reads (2); upgrade the "
                             "harness"),
    ({"schema_version": 2, "variants": {"a": {"price": "cheap"}}}, "manifest.json: variants.a.price: Input should be"),
    ({"schema_version": 2, "shard": {"shard": "1/2"}}, "manifest.json: shard.index: Field required"),
    (["not", "an", "object"], "manifest.json: not a manifest (a JSON object)"),
])
def test_a_manifest_that_cannot_be_read_is_one_line_naming_file_and_field(tmp_path, capsys, manifest, says):
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(HarnessError) as err:
        RunFolder.open(run)
    assert says in str(err.value) and "\n" not in str(err.value)
    assert main(["report", str(run)]) == 2
    out = capsys.readouterr().err
    assert out.startswith(f"error: {run / 'manifest.json'}: ") and says in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1
