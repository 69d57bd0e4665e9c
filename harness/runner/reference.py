"""Agreement with a reference, applied to a run folder: where the reference answers come from (`reference:` in
the config, or `--reference RUN_DIR:VARIANT` naming a saved run), and the pass that scores every record against
them (harness.scoring.reference) once the answers are in. `harness run` makes it after its calls (the judge,
when the task has one, grades through the run's judge client); `harness report --reference` makes it on a
finished run folder (no calls: a judge scorer's agreement is then unknown). The records keep the score
(`scores.agreement`), the manifest which reference it was (`reference`), so the tables and the gate read it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.records import EvalItem, Record
from harness.rundir.folder import RunFolder, latest_records
from harness.rundir.manifest import Manifest, ReferenceInfo
from harness.scoring.reference import ReferenceAnswers, ReferenceSource, parse_reference, score_against
from harness.scoring.suite import TaskScoring


def resolve_source(config_reference: str | None, cli_reference: str | None,
                   variants: list[str] | None = None) -> ReferenceSource | None:
    """The reference of a run: `--reference RUN_DIR:VARIANT` (a saved run) over the config's `reference:`."""
    if cli_reference:
        folder, variant = parse_reference(cli_reference)
        run = RunFolder.open(folder)
        if not run.has_records():
            raise HarnessError(f"--reference {cli_reference}: {folder} has no records")
        return ReferenceSource(variant, str(Path(folder)), run.manifest.run_id)
    if config_reference is None:
        return None
    if variants is not None and config_reference not in variants:
        raise HarnessError(f"reference: {config_reference!r} is the yardstick of every other variant: include it "
                           f"in --variants (selected: {', '.join(variants)})")
    return ReferenceSource(config_reference)


def source_of(manifest: Manifest) -> ReferenceSource | None:
    """The reference a run folder was scored against, as its manifest recorded it."""
    ref = manifest.reference
    return None if ref is None else ReferenceSource(ref.variant, ref.run, ref.run_id)


def reference_records(source: ReferenceSource, own: list[Record]) -> ReferenceAnswers:
    """The reference's answers: this run's records of the variant, or the saved run's (its latest records)."""
    if source.run is None:
        return ReferenceAnswers(own, source)
    saved = RunFolder.open(source.run).latest_records()
    answers = ReferenceAnswers(saved, source)
    if not len(answers):
        names = sorted({r.variant for r in saved})
        raise HarnessError(f"--reference {source.run}:{source.variant}: no records of variant {source.variant!r} "
                           f"there (variants with records: {', '.join(names) or 'none'})")
    return answers


def rewrite_records(folder: RunFolder, records: list[Record]) -> None:
    """records.jsonl with every line kept, in its order, the scored ones updated; replaced atomically, so a kill
    mid-way leaves the file as it was."""
    path = folder.records_path
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        out.write("".join(r.model_dump_json() + "\n" for r in records))
    os.replace(tmp, path)


async def apply_reference(folder: RunFolder, manifest: Manifest, scoring: TaskScoring, items: dict[str, EvalItem],
                          source: ReferenceSource, runtime: Any = None) -> int:
    """Score every current record of the folder against the reference, keep the scores in records.jsonl and the
    reference in the manifest (the caller writes it). Returns how many records were scored."""
    everything = folder.records(repair=True)
    current = latest_records(everything)
    answers = reference_records(source, current)
    n = await score_against(scoring, current, items, answers, runtime)
    rewrite_records(folder, everything)
    manifest.reference = ReferenceInfo(variant=source.variant, run=source.run, run_id=source.run_id)
    return n


def evalset_items(manifest: Manifest) -> dict[str, EvalItem]:
    """The test items of the run's eval set (for the named scorers that read an item's input or metadata), when
    its folder is still readable; {} otherwise (the records carry the rest)."""
    path = Path(manifest.evalset.path or "") / "test.jsonl"
    out: dict[str, EvalItem] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = EvalItem.model_validate(json.loads(line)) if line.strip() else None
        except ValueError:
            continue
        if item is not None:
            out[item.id] = item
    return out


def score_run_folder(run_dir: Path, cli_reference: str) -> ReferenceSource:
    """`harness report RUN_DIR --reference SAVED_RUN:VARIANT`: score a finished run against a saved run's answers
    (no model calls; a judge's agreement is unknown) and record the reference in its manifest."""
    import asyncio

    from harness.data.evalset import load_evalset

    folder = RunFolder.open(run_dir)
    source = resolve_source(None, cli_reference)
    assert source is not None
    manifest = folder.manifest
    evalset = load_evalset(manifest.evalset.path or "")
    scoring = TaskScoring.for_evalset(evalset)
    asyncio.run(apply_reference(folder, manifest, scoring, {i.id: i for i in evalset.test}, source))
    folder.write_manifest(manifest)
    return source
