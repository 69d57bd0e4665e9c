"""Shards: one run split over N machines (a CI matrix), and the shard folders merged back into one run.

    harness run CONFIG --shard 2/8        the items whose id hashes to shard 2 of 8
    harness merge RUN_DIR... --out DIR    one run folder from the 8 shard folders

An item's shard is a pure function of its id: the first 8 bytes of sha256(id) as a big-endian integer, mod N,
plus 1. It depends on nothing else (not Python's salted hash(), not the order of the eval set, not the
machine), so every machine agrees on the split, and it is applied after the run's item selection (`--limit`,
`run.limit`), so the shards of a limited run are slices of the same items a single run would take.

Merging checks what would make the union differ from a single run of the same config: a different config or
eval set, shards of different splits, a shard given twice or missing, a shard that did not finish, records
that belong to another shard, and shards scored differently (another `--split`, `--reference` or declared
clusters); each is refused with one line naming the folders. The records are streamed
shard by shard into the new folder, whose manifest lists the shards it came from.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.records import EvalItem
from harness.rundir.folder import RECORDS, RunFolder
from harness.rundir.manifest import CallsInfo, Manifest, MergedFrom, MergedShard, ShardInfo

# Manifest entries that decide which items and variants a run covers; shards must agree on them.
SELECTION_KEYS = ("limit", "selection", "selected_variants")
# Manifest entries that decide how the records were scored (the split asked, the reference of agreement, the
# clusters of intervals); shards must agree on them, and the merged manifest keeps them.
SCORING_KEYS = ("split", "reference", "clusters")
# Statuses a shard must not have when merged: its records are not all there yet.
UNFINISHED = {"running": "did not finish", "interrupted": "was interrupted"}


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (both 1-based, as written on the command line: 2/8)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise HarnessError(f"--shard {self.index}/{self.count}: expected K/N with 1 <= K <= N")

    @classmethod
    def parse(cls, value: str | tuple[int, int] | Shard) -> Shard:
        """From "K/N", (K, N) or a Shard."""
        if isinstance(value, Shard):
            return value
        if isinstance(value, tuple):
            return cls(*value)
        k, sep, n = str(value).strip().partition("/")
        if not sep or not k.strip().isdigit() or not n.strip().isdigit():
            raise HarnessError(f"--shard {value}: expected K/N, e.g. 2/8 for the second of 8 shards")
        return cls(int(k), int(n))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def contains(self, item_id: str) -> bool:
        return shard_of(item_id, self.count) == self.index

    def select(self, items: Iterable[EvalItem]) -> list[EvalItem]:
        """This shard's items, in their order."""
        return [item for item in items if self.contains(item.id)]

    def to_manifest(self) -> ShardInfo:
        return ShardInfo(shard=str(self), index=self.index, count=self.count)


def shard_of(item_id: str, count: int) -> int:
    """The 1-based shard of ``count`` that an item id belongs to: sha256(id)[:8] as an integer, mod count, + 1."""
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


# --------------------------------------------------------------------------------------------- merging


@dataclass
class _ShardRun:
    """A shard's run folder, and which shard its manifest says it is."""

    folder: RunFolder
    config: dict[str, Any]
    shard: Shard

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def manifest(self) -> Manifest:
        return self.folder.manifest


@dataclass
class MergeResult:
    run_dir: Path
    status: str
    message: str | None
    records: int


def _load(path: Path) -> _ShardRun:
    folder = RunFolder.open(path)
    if not folder.config_path.exists():
        raise HarnessError(f"{path}: not a run folder (no config.json)")
    info = folder.manifest.shard
    if info is None:
        raise HarnessError(f"{path}: not a shard run (its manifest.json has no shard); "
                           f"merge the folders of `harness run CONFIG --shard K/N`")
    return _ShardRun(folder, folder.config_dict(), Shard(info.index, info.count))


def _first_difference(a: Any, b: Any, where: str = "") -> tuple[str, Any, Any] | None:
    """The first dotted key path at which two JSON values differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            path = f"{where}.{key}" if where else str(key)
            if key not in a or key not in b:
                return path, a.get(key, "(absent)"), b.get(key, "(absent)")
            found = _first_difference(a[key], b[key], path)
            if found:
                return found
        return None
    return None if a == b else (where or "(top level)", a, b)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def _scoring_entry(manifest: Manifest, key: str) -> Any:
    """A SCORING_KEYS entry as shards compare it: no split is the test split (a run older than the key), and a
    saved run's reference is its run id (its folder's path may differ from machine to machine)."""
    if key == "split":
        return manifest.split or "test"
    if key == "reference":
        ref = manifest.reference
        return None if ref is None else {"variant": ref.variant, "run_id": ref.run_id}
    return manifest.to_json().get(key)


def _check(runs: list[_ShardRun]) -> None:
    first = runs[0]
    for run in runs[1:]:
        if run.shard.count != first.shard.count:
            raise HarnessError(f"shards of different splits: {first.path} is shard {first.shard}, "
                               f"{run.path} is shard {run.shard}")
        # The eval set is compared by content hash below; its path may differ from machine to machine.
        diff = _first_difference({k: v for k, v in first.config.items() if k != "evalset"},
                                 {k: v for k, v in run.config.items() if k != "evalset"})
        if diff:
            key, a, b = diff
            raise HarnessError(f"config.json differs between shards: {key} is {_short(a)} in {first.path} "
                               f"but {_short(b)} in {run.path}; shards must run the same config")
        hash_a, hash_b = first.manifest.evalset.content_hash, run.manifest.evalset.content_hash
        if hash_a != hash_b:
            raise HarnessError(f"the eval set differs between shards: {first.path} ran content hash "
                               f"{str(hash_a)[:12]}, {run.path} ran {str(hash_b)[:12]}; run every shard on the "
                               f"same eval set")
        for key in SELECTION_KEYS:
            a, b = first.manifest.to_json().get(key), run.manifest.to_json().get(key)
            if a != b:
                raise HarnessError(f"shards selected different items or variants: {key} is {_short(a)} in "
                                   f"{first.path} but {_short(b)} in {run.path}")
        for key in SCORING_KEYS:
            a, b = _scoring_entry(first.manifest, key), _scoring_entry(run.manifest, key)
            if a != b:
                raise HarnessError(f"shards were scored differently: {key} is {_short(a)} in {first.path} but "
                                   f"{_short(b)} in {run.path}; run every shard with the same --split and "
                                   f"--reference, on the same task.yaml")

    count = first.shard.count
    by_index: dict[int, list[_ShardRun]] = {}
    for run in runs:
        by_index.setdefault(run.shard.index, []).append(run)
    twice = {k: rs for k, rs in sorted(by_index.items()) if len(rs) > 1}
    if twice:
        k, rs = next(iter(twice.items()))
        raise HarnessError(f"shard {k}/{count} given {len(rs)} times: {', '.join(str(r.path) for r in rs)}; "
                           f"give each shard's folder once")
    missing = [k for k in range(1, count + 1) if k not in by_index]
    if missing:
        raise HarnessError(f"missing shard(s) {', '.join(f'{k}/{count}' for k in missing)} "
                           f"(have {len(by_index)} of {count}); give every shard's run folder")

    for run in runs:
        status = run.manifest.status
        if status in UNFINISHED:
            raise HarnessError(f"shard {run.shard} ({run.path}) {UNFINISHED[status]}; finish it with "
                               f"`harness run --resume {run.path}`, then merge")
        if status in ("failed", "nothing_run"):
            why = " ".join((run.manifest.message or "see its manifest.json").split())
            what = "failed" if status == "failed" else "ran nothing"
            raise HarnessError(f"shard {run.shard} ({run.path}) {what} ({why}); run it again, then merge")

    names = {name for run in runs for name in run.manifest.variants}
    for name in sorted(names):
        skipped = {run.shard.index: run.manifest.variant(name).skipped for run in runs}
        if any(skipped.values()) and not all(skipped.values()):
            k = next(k for k, why in skipped.items() if why)
            ran = next(k for k, why in skipped.items() if not why)
            raise HarnessError(f"variant {name} was skipped in shard {k}/{count} ({skipped[k]}) but ran in "
                               f"shard {ran}/{count}; run shard {k}/{count} again where it can run")


def _merged_manifest(runs: list[_ShardRun], out: Path, n_records: list[int]) -> Manifest:
    manifest = runs[0].manifest.model_copy(deep=True)  # split, reference, clusters: the shards agree (_check)
    manifest.shard = None
    manifest.retried_errors = []  # per shard, below
    manifest.run_id = out.name
    started = [r.manifest.started_at for r in runs if r.manifest.started_at]
    finished = [r.manifest.finished_at for r in runs if r.manifest.finished_at]
    manifest.started_at = min(started) if started else None
    manifest.finished_at = max(finished) if finished else None
    early = [r for r in runs if r.manifest.status == "stopped_early"]
    manifest.status = "stopped_early" if early else "completed"
    manifest.message = "; ".join(f"shard {r.shard}: {r.manifest.message}" for r in early) if early else None
    calls = [r.manifest.calls for r in runs]
    manifest.calls = CallsInfo(
        this_session=sum(c.this_session or 0 for c in calls),
        errors_this_session=sum(c.errors_this_session or 0 for c in calls),
        seconds=max((c.seconds or 0 for c in calls), default=0),  # the shards ran side by side
    )
    for run in runs:  # a variant's entry from a shard that ran it (they agree on the settings)
        for name, info in run.manifest.variants.items():
            if manifest.variant(name).skipped and not info.skipped:
                manifest.variants[name] = info.model_copy(deep=True)
    manifest.merged_from = MergedFrom(count=runs[0].shard.count, shards=[MergedShard(
        shard=str(run.shard),
        run_dir=str(run.path),
        run_id=run.manifest.run_id,
        status=run.manifest.status,
        items=run.manifest.shard.items if run.manifest.shard else None,
        records=n,
        started_at=run.manifest.started_at,
        finished_at=run.manifest.finished_at,
        git_revision=run.manifest.git_revision,
        platform=run.manifest.platform,
        calls=run.manifest.calls.model_copy(deep=True) if "calls" in run.manifest.model_fields_set else None,
        retried_errors=run.manifest.retried_errors or None,
        rag=run.manifest.rag,
    ) for run, n in zip(runs, n_records, strict=True)])
    return manifest


def _copy_records(run: _ShardRun, out_fh: Any) -> int:
    """Append one shard's record lines to the merged file, checking each belongs to this shard.

    Lines are copied as they are, in their order: a key written twice in a shard (an item asked again with
    --retry-errors) stays so, and the later line counts in the merged run as in the shard. No key can come
    from two shards, since every record must belong to the shard it is in."""
    path = run.folder.records_path
    if not path.exists():
        return 0
    n = 0
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                raise HarnessError(f"{path}:{number}: the last record is cut off; finish the shard with "
                                   f"`harness run --resume {run.path}`, then merge")
            try:
                rec = json.loads(raw)
                key = (rec["variant"], rec["item_id"], int(rec.get("repeat") or 0))
            except (ValueError, KeyError, TypeError):
                raise HarnessError(f"{path}:{number}: not a record; the run folder is damaged") from None
            if not run.shard.contains(key[1]):
                raise HarnessError(f"{path}:{number}: item {key[1]} belongs to shard "
                                   f"{shard_of(key[1], run.shard.count)}/{run.shard.count}, not {run.shard}; "
                                   f"this folder is not the shard its manifest says")
            out_fh.write(raw)
            n += 1
    return n


def _merge_calibration(runs: list[_ShardRun], out: RunFolder) -> None:
    """The judge's grades of human-scored answers (harness.scoring.judge), one file per shard, each over its
    own items: concatenated."""
    parts = [run.folder.calibration_path for run in runs if run.folder.calibration_path.exists()]
    if parts:
        out.calibration_path.write_bytes(b"".join(p.read_bytes() for p in parts))


def merge_runs(run_dirs: Sequence[str | Path], out: str | Path) -> MergeResult:
    """Build one run folder at ``out`` from the folders of every shard of a run (config.json, manifest.json,
    records.jsonl; the tables and report are built from it afterwards, as for any run)."""
    out = Path(out)
    if not run_dirs:
        raise HarnessError("merge: give the run folders of the shards")
    runs = sorted((_load(Path(p)) for p in run_dirs), key=lambda r: r.shard.index)
    if out.exists() and any(out.iterdir()):
        raise HarnessError(f"{out}: already exists and is not empty; merge into a new --out folder")
    _check(runs)

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    merged = RunFolder(out)
    tmp = out / (RECORDS + ".tmp")
    try:
        with tmp.open("wb") as fh:
            counts = [_copy_records(run, fh) for run in runs]
        shutil.copyfile(runs[0].folder.config_path, merged.config_path)
        _merge_calibration(runs, merged)
        manifest = _merged_manifest(runs, out, counts)
        merged.write_manifest(manifest)
        tmp.replace(merged.records_path)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for path in (tmp, merged.config_path, merged.manifest_path, merged.calibration_path):
                path.unlink(missing_ok=True)
        raise
    return MergeResult(out, manifest.status or "completed", manifest.message, sum(counts))
