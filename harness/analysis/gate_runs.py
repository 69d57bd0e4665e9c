"""The two run folders the regression gate reads, and what it checks about them before any metric: which
variants to compare (and which went missing), which items each side asked, how each was scored, and the input
text of an item for the list of changed items.

Kept apart from harness.analysis.compare (the rules and the output) so each stays readable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from harness import variant_kinds
from harness.analysis import stats
from harness.data.conversation import DEFAULT_FIELD, transcript, turns_of
from harness.data.evalset import render_template
from harness.errors import HarnessError
from harness.records import Record
from harness.rundir import Manifest, RunFolder
from harness.scoring.labels import labelled_flags
from harness.scoring.scorers import primary_value

INPUT_CHARS = 160  # input text shown beside a changed item's answers


@dataclass
class GateRun:
    path: Path
    manifest: Manifest
    records: list[Record]
    items: pd.DataFrame  # stats.item_outcomes, indexed by (variant, item_id)
    by_item: dict[tuple[str, str], list[Record]]  # (variant, item) -> its records, in file order

    def variants_with_answers(self) -> list[str]:
        """Variants with at least one record (an errored call is a record: it counts as wrong, not missing)."""
        present = set(self.items.index.get_level_values(0)) if len(self.items) else set()
        order = list(self.manifest.variants) + [r.variant for r in self.records]
        return [v for v in dict.fromkeys(order) if v in present]

    def kind(self, variant: str) -> str | None:
        return self.manifest.variant(variant).kind

    def model_id(self, variant: str) -> str | None:
        if self.manifest.variant(variant).model_id:
            return self.manifest.variant(variant).model_id
        return next((r.model_id for r in self.records if r.variant == variant), None)

    def item_ids(self, variant: str) -> set[str]:
        return {str(i) for i in self.items.loc[variant].index} if variant in self.variants_with_answers() else set()

    def shown(self, variant: str, item_id: str, *, worst: bool) -> Record | None:
        """The record that stands for an item in the list of changed items: of its repeats, the one that
        scored lowest (worst=True: the side that went down) or highest, an unanswered repeat counting as 0 and
        an unknown score skipped; the lowest repeat among equals."""
        recs = self.by_item.get((variant, item_id), [])
        scored = [(primary_value(r), r.repeat, r) for r in recs]
        known = [(float(s) if worst else -float(s), rep, r) for s, rep, r in scored if s is not None]
        if not known:
            return recs[0] if recs else None
        return min(known, key=lambda t: t[:2])[2]

    def repeats(self, variant: str) -> int:
        return len({r.repeat for r in self.records if r.variant == variant})

    def unknown(self, variant: str) -> tuple[int, int]:
        """(answers whose primary score is unknown — a judge that failed —, answers), among the items with an
        expected answer: one without has no primary score to know (it is scored by agreement alone)."""
        recs = [r for r in self.records if r.variant == variant]
        answered = [r for r, measured in zip(recs, labelled_flags(recs), strict=True) if measured and r.error is None]
        return sum(1 for r in answered if primary_value(r) is None), len(answered)

    def why_missing(self, variant: str) -> str:
        """Why a variant has no records in this run, from its manifest."""
        info = self.manifest.variants.get(variant)
        selected = self.manifest.selected_variants
        if info is not None and info.skipped:
            return f"skipped: {info.skipped}"
        if info is not None:
            return "no records"
        if selected is not None and variant not in selected:
            return "not selected (harness run --variants) or not in its config: renamed or removed?"
        return "not in its config: renamed or removed?"

    def scoring_identity(self) -> dict[str, Any]:
        """What decides the scores: the primary score, the scorers' settings and the judge model (when a
        judge scorer was used). Two runs scored differently do not measure the same accuracy."""
        scoring, judge = self.manifest.scoring, self.manifest.judge
        judge_id = (judge.model_id or judge.model) if judge is not None and judge.used else None
        scorers = [s.identity() for s in scoring.scorers]
        return {"primary": scoring.primary, "scorers": scorers, "judge model": judge_id}

    def selection_note(self) -> str:
        """How this run chose its items, when it did not ask them all: a shard or a --limit sample."""
        shard = self.manifest.shard
        if shard is not None:
            return f"it is shard {shard.index}/{shard.count}; merge the shards with harness merge"
        if self.manifest.limit:
            return f"it ran --limit {self.manifest.limit}"
        return ""


def load_gate_run(path: Path) -> GateRun:
    folder = RunFolder.open(path)
    records = folder.compact_records()  # one small object per record, read line by line
    if not records:
        raise HarnessError(f"{path}: the run has no records (records.jsonl is missing or empty)")
    clusters = folder.manifest.clusters.items if folder.manifest.clusters is not None else None
    items = stats.item_outcomes(stats.outcomes_frame(records, clusters))  # type: ignore[arg-type]
    by_item: dict[tuple[str, str], list[Record]] = {}
    for r in records:
        by_item.setdefault((r.variant, r.item_id), []).append(r)
    return GateRun(path, folder.manifest, records, items, by_item)  # type: ignore[arg-type]


@dataclass
class MissingVariant:
    variant: str
    reason: str
    allowed: bool


def pick_variants(acc: GateRun, cand: GateRun, variant: str | None,
                  allow_missing: list[str]) -> tuple[list[str], list[MissingVariant]]:
    """The variants to compare, and the accepted run's variants the candidate has no records of.

    --variant NAME: that one alone (it must have records in the accepted run). Otherwise every variant of the
    accepted run must be in the candidate — a fine-tuned variant skipped for a missing model_file must not
    let the gate compare the baseline instead and pass — and the comparison is the fine-tuned variant when both
    runs have one, else every variant they share."""
    a, c = acc.variants_with_answers(), cand.variants_with_answers()
    for name in allow_missing:
        if name not in a:
            raise HarnessError(f"--allow-missing-variant {name}: the accepted run {acc.path} has no records of "
                               f"variant {name}; variants there: {', '.join(a) or 'none'}")
    if variant is not None:
        if variant not in a:
            raise HarnessError(f"--variant {variant}: no records in the accepted run {acc.path}"
                               f"{_skipped(acc, variant)}; variants there: {', '.join(a) or 'none'}")
        if variant not in c:
            return [], [MissingVariant(variant, cand.why_missing(variant), variant in allow_missing)]
        return [variant], []
    missing = [MissingVariant(v, cand.why_missing(v), v in allow_missing) for v in a if v not in c]
    common = [v for v in c if v in a]
    fine_tuned = [v for v in common if variant_kinds.trains(cand.kind(v)) and variant_kinds.trains(acc.kind(v))]
    if not common and all(m.allowed for m in missing):
        raise HarnessError(f"no variant name is in both runs ({acc.path}: {', '.join(a) or 'none'}; "
                           f"{cand.path}: {', '.join(c) or 'none'}); pick one that is with --variant")
    return fine_tuned or common, missing


def _skipped(run: GateRun, variant: str) -> str:
    skipped = run.manifest.variant(variant).skipped
    return f" (skipped: {skipped})" if skipped else ""


def scoring_changes(acc: GateRun, cand: GateRun) -> list[str]:
    """What differs in how the two runs were scored, one phrase each ("judge model gpt-4o -> gpt-4o-mini")."""
    a, c = acc.scoring_identity(), cand.scoring_identity()
    out = []
    for key in ("primary", "judge model"):
        if a[key] != c[key]:
            out.append(f"{key} {a[key] or 'none'} -> {c[key] or 'none'}")
    if a["scorers"] != c["scorers"]:
        names_a = [s.get("name") for s in a["scorers"]]
        names_c = [s.get("name") for s in c["scorers"]]
        changed = sorted({json.dumps(s, sort_keys=True) for s in a["scorers"]}
                         ^ {json.dumps(s, sort_keys=True) for s in c["scorers"]})
        names = sorted({str(json.loads(s).get("name")) for s in changed})
        out.append(f"scorers {', '.join(map(str, names_a)) or 'none'} -> {', '.join(map(str, names_c)) or 'none'}"
                   if names_a != names_c else f"settings of scorer {', '.join(names)}")
    return out


def item_inputs(runs: list[GateRun], ids: set[str]) -> dict[str, str]:
    """The input text of these items (task.yaml's input_template over test.jsonl's `input`), read from the eval
    set folder the candidate's manifest names, else the accepted run's; items it cannot find are left out."""
    found: dict[str, str] = {}
    for run in runs:
        folder = Path(run.manifest.evalset.path or "")
        todo = ids - set(found)
        if not todo or not (folder / "task.yaml").is_file() or not (folder / "test.jsonl").is_file():
            continue
        try:
            task = yaml.safe_load((folder / "task.yaml").read_text(encoding="utf-8")) or {}
            template, field = task.get("input_template"), task.get("messages_field") or DEFAULT_FIELD
            with (folder / "test.jsonl").open(encoding="utf-8") as f:
                for line in f:
                    item = json.loads(line) if line.strip() else {}
                    if str(item.get("id")) in todo:
                        turns = turns_of(item.get("input") or {}, field)  # a conversation: its transcript
                        found[str(item["id"])] = (transcript(turns) if turns is not None
                                                  else render_template(str(template), item.get("input") or {}))
        except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, yaml.YAMLError):
            continue  # the eval set moved or changed: the listing goes without inputs
    return {k: v if len(v) <= INPUT_CHARS else v[:INPUT_CHARS] + "…" for k, v in found.items()}
