"""Sharded runs (`harness run --shard K/N`) and `harness merge`, against the loopback OpenAI-compatible server:
the union of the shards, merged, is the single run record for record, and its statistics are the single run's."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import harness
from harness.cli import main
from harness.errors import HarnessError
from harness.rundir.folder import latest_records, read_records
from harness.runner.shards import Shard, shard_of
from tests.conftest import DOCS, TASK, make_config, right_answer, write_jsonl
from tests.fakes.openai_server import FakeOpenAIServer, Reply, last_user_text

LABELS = ["card_arrival", "lost_card", "refund"]
N_ITEMS = 40
TIMING = {"latency_s", "wait_s", "started_at"}  # what differs between two runs of the same calls


def _item_number(text: str) -> int:
    return int(re.search(r"ticket (\d+)", text).group(1))  # type: ignore[union-attr]


def scripted(body: dict[str, Any]) -> Reply:
    """A deterministic answer per item and variant, right for some and wrong or malformed for others, so
    the variants differ and the paired statistics have something to compare."""
    text = last_user_text(body)
    i = _item_number(text.rsplit("---", 1)[-1])
    few_shot = sum(m["role"] == "assistant" for m in body["messages"]) > 0
    rag = "Reference documents:" in text
    label = LABELS[i % 3]
    if few_shot and i % 7 == 0:
        return Reply(text="I think it is a refund", prompt_tokens=120, completion_tokens=6)
    wrong = (i % 4 == 0) if rag else (i % 5 == 0) if few_shot else (i % 3 == 0 or i % 8 == 1)
    if wrong:
        label = LABELS[(i + 1) % 3]
    return Reply(text=json.dumps({"intent": label, "urgent": i % 2 == 0}),
                 prompt_tokens=100 + i, completion_tokens=10 + i % 4)


@pytest.fixture
def big_evalset(tmp_path: Path) -> Path:
    d = tmp_path / "evalsets" / "tickets"
    (d / "docs").mkdir(parents=True)
    (d / "task.yaml").write_text(yaml.safe_dump(TASK, sort_keys=False))
    write_jsonl(d / "test.jsonl", [
        {"id": f"ticket-{i:03d}", "input": {"text": f"ticket {i}: a question about my card"},
         "expected": {"intent": LABELS[i % 3], "urgent": i % 2 == 0}}
        for i in range(N_ITEMS)
    ])
    write_jsonl(d / "train.jsonl", [
        {"id": f"train-{i}", "input": {"text": f"example ticket {100 + i}"},
         "expected": {"intent": LABELS[i % 3], "urgent": False}}
        for i in range(9)
    ])
    for doc_id, text in DOCS.items():
        (d / "docs" / f"{doc_id}.md").write_text(text)
    return d


@pytest.fixture
def scripted_server():
    server = FakeOpenAIServer(scripted, models=["gpt-4o-mini"]).start()
    yield server
    server.stop()


VARIANTS = [
    {"name": "baseline", "kind": "baseline", "model": "small"},
    {"name": "few_shot", "kind": "few_shot", "model": "small", "shots": 3, "selection": "stratified"},
    {"name": "rag", "kind": "rag", "model": "small", "top_k": 2},
]


def _run(cfg: Path, out: Path, **kw: Any) -> harness.Run:
    return harness.run(cfg, out=out, progress=False, use_cache=False, **kw)


def _comparable(run_dir: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    recs = latest_records(read_records(run_dir / "records.jsonl"))
    out = {r.key: {k: v for k, v in r.model_dump(mode="json").items() if k not in TIMING} for r in recs}
    assert len(out) == len(recs)
    return out


def _summary(run_dir: Path) -> pd.DataFrame:
    df = pd.read_csv(run_dir / "summary.csv")
    return df[[c for c in df.columns if "latency" not in c]]


def test_eight_shards_merged_equal_a_single_run(tmp_path: Path, big_evalset: Path, scripted_server,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path, big_evalset, scripted_server.base_url, variants=VARIANTS,
                      run={"concurrency": 4, "temperature": 0, "max_tokens": 64, "seed": 7, "repeats": 2})
    single = _run(cfg, tmp_path / "single")
    assert single.status == "completed" and single.manifest.shard is None

    shard_dirs = []
    seen_items: set[str] = set()
    for k in range(1, 9):
        shard = _run(cfg, tmp_path / f"shard-{k}", shard=f"{k}/8")
        assert shard.status == "completed"
        info = shard.manifest.shard
        assert (info.shard, info.index, info.count, info.of_items) == (f"{k}/8", k, 8, N_ITEMS)
        items = {r.item_id for r in read_records(shard.path / "records.jsonl")}
        assert len(items) == info.items > 0
        # The slice, computed here from its definition: sha256 of the id, first 8 bytes, mod N == K - 1.
        for item_id in items:
            assert int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:8], "big") % 8 == k - 1
        assert not items & seen_items
        seen_items |= items
        shard_dirs.append(shard.path)
    assert len(seen_items) == N_ITEMS

    merged = harness.merge(*reversed(shard_dirs), out=tmp_path / "merged")  # any order of folders
    assert merged.status == "completed"
    assert _comparable(merged.path) == _comparable(single.path)
    assert len(_comparable(merged.path)) == N_ITEMS * len(VARIANTS) * 2

    # Statistics and the report are computed on the merged run: the single run's, timing aside.
    pd.testing.assert_frame_equal(_summary(merged.path), _summary(single.path))
    row = merged.summary.set_index("variant").loc["rag"]
    assert row["n"] == N_ITEMS * 2 and row["items"] == N_ITEMS and 0 < row["accuracy"] < 1
    assert merged.summary.set_index("variant").loc["few_shot", "format_valid"] < 1
    for name in ("report.md", "report.html", "summary.md"):
        assert (merged.path / name).exists()
    manifest = merged.manifest
    assert manifest.shard is None and manifest.run_id == "merged"
    assert "shard" not in json.loads((merged.path / "manifest.json").read_text())  # not written as null
    assert [s.shard for s in manifest.merged_from.shards] == [f"{k}/8" for k in range(1, 9)]
    assert sum(s.records for s in manifest.merged_from.shards) == N_ITEMS * len(VARIANTS) * 2
    assert manifest.evalset == single.manifest.evalset
    assert json.loads((merged.path / "config.json").read_text()) == json.loads((single.path / "config.json").read_text())
    # A merged run is a run like any other: the regression gate reads it.
    assert not harness.compare(single, merged).failed

    # The same through the command line.
    code = main(["merge", *map(str, shard_dirs), "--out", str(tmp_path / "merged-cli")])
    out = capsys.readouterr().out
    assert code == 0 and f"merged 8 shards ({N_ITEMS * len(VARIANTS) * 2} records)" in out
    assert _comparable(tmp_path / "merged-cli") == _comparable(single.path)


def test_shard_slices_the_selected_items_and_resumes_as_the_same_shard(
    tmp_path: Path, big_evalset: Path, scripted_server
) -> None:
    cfg = make_config(tmp_path, big_evalset, scripted_server.base_url)
    single = _run(cfg, tmp_path / "single", limit=12)
    wanted = {r.item_id for r in read_records(single.path / "records.jsonl")}
    assert len(wanted) == 12
    shards = [_run(cfg, tmp_path / f"s{k}", limit=12, shard=(k, 3)) for k in (1, 2, 3)]
    got = [{r.item_id for r in read_records(s.path / "records.jsonl")} for s in shards]
    assert set().union(*got) == wanted and sum(map(len, got)) == 12  # a slice of the limited selection
    assert all(s.manifest.shard.of_items == 12 for s in shards)

    # An interrupted shard resumes as the same shard: it asks only its own missing items.
    path = shards[0].path
    lines = (path / "records.jsonl").read_text().splitlines(keepends=True)
    (path / "records.jsonl").write_text("".join(lines[:1]))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (path / "manifest.json").write_text(json.dumps(manifest))
    resumed = harness.run(resume=path, progress=False, use_cache=False)
    assert resumed.status == "completed" and resumed.manifest.shard.shard == "1/3"
    assert {r.item_id for r in read_records(path / "records.jsonl")} == got[0]
    merged = harness.merge([s.path for s in shards], out=tmp_path / "merged")
    assert _comparable(merged.path) == _comparable(single.path)


def test_retried_errors_in_a_shard_count_once_in_the_merge(tmp_path: Path, evalset_dir: Path) -> None:
    failing = {"on": True}

    def flaky(body: dict[str, Any]) -> Reply:
        if failing["on"] and "stole" in last_user_text(body):  # item t2 fails until the retry
            return Reply(status=422, raw_body=b'{"error": {"message": "unprocessable"}}')
        return right_answer(body)

    with FakeOpenAIServer(flaky, models=["gpt-4o-mini"]) as server:
        cfg = make_config(tmp_path, evalset_dir, server.base_url)
        dirs = [_run(cfg, tmp_path / f"s{k}", shard=f"{k}/2").path for k in (1, 2)]
        t2_shard = dirs[shard_of("t2", 2) - 1]
        assert any(r.error for r in read_records(t2_shard / "records.jsonl"))
        failing["on"] = False
        harness.run(resume=t2_shard, retry_errors=True, progress=False, use_cache=False)
        assert len(read_records(t2_shard / "records.jsonl")) == len(latest_records(read_records(
            t2_shard / "records.jsonl"))) + 1  # the old error line stays; the new answer comes after it
        merged = harness.merge(*dirs, out=tmp_path / "merged")
        single = _run(cfg, tmp_path / "single")
    assert _comparable(merged.path) == _comparable(single.path)
    row = merged.summary.iloc[0]
    assert row["errors"] == 0 and row["n"] == 4 and row["accuracy"] == 1.0
    assert [s.retried_errors is not None for s in merged.manifest.merged_from.shards] == [
        d == t2_shard for d in dirs]


def test_empty_shards_run_and_merge(tmp_path: Path, evalset_dir: Path, fake_server) -> None:
    # 4 items over 8 shards: at least half the shards have nothing to do, and still finish and merge.
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    counts = [sum(shard_of(f"t{i}", 8) == k for i in range(1, 5)) for k in range(1, 9)]
    assert 0 in counts
    dirs = []
    for k in range(1, 9):
        shard = _run(cfg, tmp_path / f"s{k}", shard=f"{k}/8")
        assert shard.status == "completed" and shard.manifest.shard.items == counts[k - 1]
        dirs.append(shard.path)
    merged = harness.merge(*dirs, out=tmp_path / "merged")
    single = _run(cfg, tmp_path / "single")
    assert _comparable(merged.path) == _comparable(single.path)
    pd.testing.assert_frame_equal(_summary(merged.path), _summary(single.path))


# ----------------------------------------------------------------------------------------- refusals


def _merge_cli(capsys: pytest.CaptureFixture[str], *dirs: Path, out: Path) -> tuple[int, str]:
    code = main(["merge", *map(str, dirs), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return code, err


def test_merge_refuses_what_would_not_be_one_run(tmp_path: Path, evalset_dir: Path, fake_server,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    s1, s2 = (_run(cfg, tmp_path / f"s{k}", shard=f"{k}/2").path for k in (1, 2))
    out = tmp_path / "merged"

    code, err = _merge_cli(capsys, s1, out=out)
    assert code == 2 and err == "error: missing shard(s) 2/2 (have 1 of 2); give every shard's run folder"

    twin = tmp_path / "s1-copy"
    shutil.copytree(s1, twin)
    code, err = _merge_cli(capsys, s1, twin, s2, out=out)
    assert code == 2 and err == f"error: shard 1/2 given 2 times: {s1}, {twin}; give each shard's folder once"

    other_cfg = tmp_path / "other" / "config.yaml"
    other_cfg.parent.mkdir()
    data = yaml.safe_load(cfg.read_text())
    data["run"]["max_tokens"] = 32
    other_cfg.write_text(yaml.safe_dump(data))
    s2_other = _run(other_cfg, tmp_path / "s2-other", shard="2/2").path
    code, err = _merge_cli(capsys, s1, s2_other, out=out)
    assert code == 2 and err == (f"error: config.json differs between shards: run.max_tokens is 64 in {s1} but 32 "
                                 f"in {s2_other}; shards must run the same config")

    changed = tmp_path / "changed-evalset"
    shutil.copytree(evalset_dir, changed)
    test_jsonl = changed / "test.jsonl"
    test_jsonl.write_text(test_jsonl.read_text().replace("where is my new card", "where is my card"))
    data = yaml.safe_load(cfg.read_text())
    data["evalset"] = str(changed)
    changed_cfg = tmp_path / "changed.yaml"
    changed_cfg.write_text(yaml.safe_dump(data))
    s2_changed = _run(changed_cfg, tmp_path / "s2-changed", shard="2/2").path
    code, err = _merge_cli(capsys, s1, s2_changed, out=out)
    assert code == 2 and err.startswith("error: the eval set differs between shards: ")
    assert str(s1) in err and str(s2_changed) in err

    s1_of_4 = _run(cfg, tmp_path / "s1-of-4", shard="1/4").path
    code, err = _merge_cli(capsys, s1_of_4, s2, out=out)
    assert code == 2 and err == f"error: shards of different splits: {s1_of_4} is shard 1/4, {s2} is shard 2/2"

    whole = _run(cfg, tmp_path / "whole").path
    code, err = _merge_cli(capsys, s1, whole, out=out)
    assert code == 2 and err.startswith(f"error: {whole}: not a shard run")

    limited = _run(cfg, tmp_path / "s2-limited", shard="2/2", limit=2).path
    code, err = _merge_cli(capsys, s1, limited, out=out)
    assert code == 2 and err.startswith("error: shards selected different items or variants: limit is")

    interrupted = tmp_path / "s2-interrupted"
    shutil.copytree(s2, interrupted)
    manifest = json.loads((interrupted / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (interrupted / "manifest.json").write_text(json.dumps(manifest))
    code, err = _merge_cli(capsys, s1, interrupted, out=out)
    assert code == 2 and err == (f"error: shard 2/2 ({interrupted}) was interrupted; finish it with "
                                 f"`harness run --resume {interrupted}`, then merge")

    # A folder whose records are not the shard its manifest names (a copy mixed up by hand).
    mixed = tmp_path / "s2-mixed"
    shutil.copytree(s2, mixed)
    with (mixed / "records.jsonl").open("a") as fh:
        fh.write((s1 / "records.jsonl").read_text().splitlines(keepends=True)[0])
    code, err = _merge_cli(capsys, s1, mixed, out=out)
    assert code == 2 and re.fullmatch(
        rf"error: {re.escape(str(mixed))}/records\.jsonl:\d+: item t\d belongs to shard 1/2, not 2/2; "
        r"this folder is not the shard its manifest says", err)

    assert not out.exists()  # nothing written by a refused merge
    out.mkdir()
    (out / "note.txt").write_text("mine")
    code, err = _merge_cli(capsys, s1, s2, out=out)
    assert code == 2 and err == f"error: {out}: already exists and is not empty; merge into a new --out folder"
    assert (out / "note.txt").read_text() == "mine"

    code, _ = _merge_cli(capsys, s2, s1, out=tmp_path / "fine")
    assert code == 0


@pytest.mark.parametrize("value", ["0/8", "9/8", "3", "a/b", "2/0"])
def test_bad_shard_is_one_line_and_makes_no_run_folder(tmp_path: Path, evalset_dir: Path, fake_server,
                                                        capsys: pytest.CaptureFixture[str], value: str) -> None:
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url)
    code = main(["run", str(cfg), "--shard", value, "--results-dir", str(tmp_path / "results"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"error: --shard {value}: expected K/N") and "\n" not in err
    assert not (tmp_path / "results").exists()


def test_shard_of_is_stable_and_balanced() -> None:
    # Fixed values: a change of the function would silently split CI runs differently across versions.
    assert [shard_of(f"item-{i}", 8) for i in range(8)] == [3, 5, 7, 1, 7, 7, 7, 2]
    sizes = [sum(shard_of(f"item-{i}", 8) == k for i in range(8000)) for k in range(1, 9)]
    assert all(900 < n < 1100 for n in sizes)
    assert Shard.parse("2/8") == Shard.parse((2, 8)) == Shard(2, 8) and str(Shard(2, 8)) == "2/8"
    assert Shard.parse("1/1").select([]) == []
    with pytest.raises(HarnessError):
        Shard.parse("8/2")


def test_merge_keeps_split_reference_and_clusters_and_refuses_shards_scored_differently(
        tmp_path: Path, evalset_dir: Path, fake_server, capsys: pytest.CaptureFixture[str]) -> None:
    task = yaml.safe_load((evalset_dir / "task.yaml").read_text())
    (evalset_dir / "task.yaml").write_text(yaml.safe_dump({**task, "cluster": "metadata.passage"}, sort_keys=False))
    rows = [json.loads(line) for line in (evalset_dir / "test.jsonl").read_text().splitlines()]
    write_jsonl(evalset_dir / "test.jsonl", [{**r, "metadata": {"passage": r["expected_doc_ids"][0]}} for r in rows])
    cfg = make_config(tmp_path, evalset_dir, fake_server.base_url, reference="baseline",
                      variants=[{"name": "baseline", "kind": "baseline", "model": "small"},
                                {"name": "brief", "kind": "baseline", "model": "small", "system": "Be brief."}])
    s1, s2 = (_run(cfg, tmp_path / f"s{k}", shard=f"{k}/2").path for k in (1, 2))
    merged = harness.merge(s2, s1, out=tmp_path / "merged").manifest
    assert merged.split == "test" and merged.reference.variant == "baseline" and merged.reference.run is None
    assert merged.clusters.by == "metadata.passage"
    assert merged.clusters.items == {"t1": "delivery", "t2": "security", "t3": "refunds", "t4": "delivery"}
    assert "agreement with baseline" in (tmp_path / "merged" / "report.md").read_text()

    def altered(name: str, key: str, value: Any) -> Path:
        """Shard 2 as if run another way (scored against another reference, on another split, ...)."""
        copy = tmp_path / name
        shutil.copytree(s2, copy)
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest[key] = value
        (copy / "manifest.json").write_text(json.dumps(manifest))
        return copy

    saved_ref = {"variant": "baseline", "run": str(tmp_path / "prod"), "run_id": "prod"}
    for name, key, value, shown in [
            ("s2-ref", "reference", saved_ref, '{"variant": "baseline", "run_id": "prod"}'),
            ("s2-train", "split", "train", "train"),
            ("s2-clusters", "clusters", {"by": "metadata.doc", "items": {}}, '{"by": "metadata.doc", "items": {}}')]:
        other = altered(name, key, value)
        code, err = _merge_cli(capsys, s1, other, out=tmp_path / f"merged-{name}")
        assert code == 2 and err.startswith(f"error: shards were scored differently: {key} is "), err
        assert err.endswith(f"but {shown} in {other}; run every shard with the same --split and --reference, on "
                            "the same task.yaml"), err
        assert not (tmp_path / f"merged-{name}").exists()
