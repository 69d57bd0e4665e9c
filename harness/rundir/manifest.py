"""manifest.json as one typed, versioned model: what a run was (config, eval set, items, variants, prices,
scoring), how it went (status, calls, timings) and where it came from (harness version, git revision, shards).

The runner writes it when the run folder is made (status `running`), again once the variants are planned, and
replaces it at the end (harness.rundir.folder.write_json: a temporary file, then os.replace), so a run killed
at any moment leaves the last whole manifest, never half of one. Every reader (the tables, the report, the
gate, merge, the viewer, the Python API) reads this model, never the raw JSON.

Versions. A manifest without `schema_version` was written before versions existed (version 1); version 2 is
the first with the key. `_migrate` brings an older manifest up to date as it is read (a before-validator), so
the readers know one shape only:
  1 -> 2: `scoring` (the default exact-match scoring, all there was before scorers), and `selection` (the
          first `limit` held-out items, which is how items were chosen before seeded selections).
A newer manifest than this harness knows is refused with one line, rather than read wrong.

Entries the readers use are typed; the rest of each entry is kept as it was written (extra="allow"), so a
manifest read and written again (resume, merge) loses nothing. On disk a key is written when it was given or
has a value: a run without shards has no `shard`, one without a judge no `judge`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

SCHEMA_VERSION = 2

# Statuses a run ends with (a folder whose manifest still says `running` was killed, or is being written).
STATUSES = ("running", "completed", "settled", "nothing_run", "stopped_early", "interrupted", "failed")
# A run that ended as meant: every selected item asked, or settled early by run.stop_when (by design).
FINISHED = ("completed", "settled")


class Entry(BaseModel):
    """A manifest entry: typed where it is read, every other key kept as written."""

    model_config = ConfigDict(extra="allow", validate_assignment=True, populate_by_name=True)
    # Keys written only when they have a value, even when set to None or emptied (a merged run's `shard`).
    _only_with_value: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        given = self.model_fields_set | set(self.__pydantic_extra__ or {})
        aliases = {name: f.alias or name for name, f in type(self).model_fields.items()}
        given = {aliases.get(name, name) for name in given} - self._only_with_value
        return {k: v for k, v in data.items() if k in given or v not in (None, [], {})}


class EvalsetInfo(Entry):
    name: str | None = None
    path: str | None = None
    content_hash: str | None = None
    test_items: int | None = None
    train_items: int | None = None
    docs: int | None = None


class Selection(Entry):
    """Which held-out items the run asks (harness.data.evalset.select_test_items); `item_ids` when sampled."""

    limit: int | None = None
    method: str | None = None
    seed: int | None = None
    items: int | None = None
    item_ids: list[str] | None = None


class ScorerInfo(Entry):
    """One named scorer: its name and kind, its settings (kept as written) and what it measures."""

    name: str
    scorer: str | None = None
    describe: str | None = None

    def identity(self) -> dict[str, Any]:
        """What decides its scores: every setting but the description."""
        return self.model_dump(mode="json", exclude={"describe"})


class ScoringInfo(Entry):
    """What each score column means (harness.scoring.suite.TaskScoring.describe)."""

    primary: str = "exact"  # the score `accuracy` is the mean of
    free_text: bool = False
    scorers: list[ScorerInfo] = Field(default_factory=list)

    @field_validator("primary", mode="before")
    @classmethod
    def _default_primary(cls, value: Any) -> Any:
        return value or "exact"


class Clusters(Entry):
    """The task's declared clusters (task.yaml `cluster: metadata.passage`): the field, and each test item's
    cluster, so intervals and paired tests can take the cluster as their unit when the report is rebuilt."""

    by: str
    items: dict[str, str] = Field(default_factory=dict)


class ShardInfo(Entry):
    shard: str | None = None
    index: int
    count: int
    items: int | None = None  # this shard's items, once known
    of_items: int | None = None  # the items the whole run selected


class PriceInfo(Entry):
    """A price as the run used it (harness.models.pricing.describe): USD per 1M tokens, or per hour."""

    input_per_1m: float | None = None
    cached_input_per_1m: float | None = None
    output_per_1m: float | None = None
    training_per_1m: float | None = None
    training_per_hour: float | None = None
    basis: str | None = None  # table | config | self-hosted | unknown
    source: str | None = None
    as_of: str | None = None
    batch: bool | None = None


class VariantInfo(Entry):
    """How a variant was answered and priced, or why it was skipped (harness.runner.plan.Plan.describe)."""

    kind: str | None = None
    model: str | None = None
    model_id: str | None = None
    provider: str | None = None
    structured_output: str | None = None
    system_role: bool | None = None
    price: PriceInfo | None = None
    price_per_hour: float | None = None
    adapter: dict[str, Any] | None = None  # a local LoRA's training record (time, steps, epochs)
    skipped: str | None = None
    settings: dict[str, Any] | None = None


class CallsInfo(Entry):
    """The calls of the last session (a resumed run counts its own)."""

    mode: str | None = None  # "batch" through the OpenAI Batch API
    prices: str | None = None
    this_session: int | None = None
    errors_this_session: int | None = None
    cached: int | None = None
    seconds: float | None = None
    client_wait_s: dict[str, float] | None = None
    prompt_stream_s: float | None = None
    batches: list[dict[str, Any]] | None = None


class JudgeInfo(Entry):
    model: str | None = None
    model_id: str | None = None
    used: bool = False
    unavailable: str | None = None
    price: PriceInfo | None = None


class SequentialInfo(Entry):
    """A run with `run.stop_when` (harness.runner.sequential): what it compared and where it settled."""

    compare: list[str]
    margin: float
    alpha: float
    verdict: str | None = None  # better | worse | equivalent; None: not settled (yet)
    settled_after: int | None = None  # the item count at which the verdict was reached
    asked_items: int | None = None  # items asked (settled_after plus those already under way then)
    of_items: int | None = None  # the items selected
    difference_low: float | None = None  # the anytime-valid interval of B - A when it settled
    difference_high: float | None = None
    continued: bool = False  # `--resume` asked the rest of the items after it settled
    unscored_items: int = 0  # items left out of the sequence: no expected answer, or a score that cannot be told

    @property
    def holds_selection(self) -> bool:
        """Whether the run asked only `asked_items` of the selected items, by design (settled, not continued)."""
        return self.verdict is not None and not self.continued and self.asked_items is not None


class ReferenceInfo(Entry):
    """The answers the variants were scored against for agreement (harness.scoring.reference): a variant of
    this run (`run` None) or of a saved run folder."""

    variant: str
    run: str | None = None
    run_id: str | None = None


class MergedShard(Entry):
    shard: str
    run_dir: str | None = None
    run_id: str | None = None
    status: str | None = None
    items: int | None = None
    records: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    git_revision: str | None = None
    platform: str | None = None
    calls: CallsInfo | None = None
    retried_errors: list[dict[str, Any]] | None = None
    rag: dict[str, Any] | None = None


class MergedFrom(Entry):
    count: int
    shards: list[MergedShard] = Field(default_factory=list)


class Manifest(Entry):
    """manifest.json. Field order is the order on disk."""

    _only_with_value = frozenset({"shard", "price_warnings", "rag", "judge", "merged_from", "retried_errors",
                                   "sequential", "reference", "clusters"})

    schema_version: int = SCHEMA_VERSION
    run_id: str | None = None
    name: str | None = None
    config_path: str | None = None
    evalset: EvalsetInfo = Field(default_factory=EvalsetInfo)
    harness_version: str | None = None
    git_revision: str | None = None
    python: str | None = None
    platform: str | None = None
    started_at: str | None = None
    limit: int | None = None
    selection: Selection | None = None
    # Which split the items came from: "train" for `harness run --split train` (answers recorded as training
    # targets, not a held-out evaluation); None in a run written before the key existed, which means "test".
    split: str | None = None
    selected_variants: list[str] | None = None
    output_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    label_fields: dict[str, list[Any]] = Field(default_factory=dict)
    scoring: ScoringInfo = Field(default_factory=ScoringInfo)
    clusters: Clusters | None = None
    status: str | None = None
    shard: ShardInfo | None = None
    sequential: SequentialInfo | None = None
    price_warnings: list[str] = Field(default_factory=list)
    leakage: list[str] = Field(default_factory=list)
    leakage_action: dict[str, Any] | None = None
    rag: dict[str, Any] | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    variants: dict[str, VariantInfo] = Field(default_factory=dict)
    calls: CallsInfo = Field(default_factory=CallsInfo)
    judge: JudgeInfo | None = None
    message: str | None = None
    finished_at: str | None = None
    merged_from: MergedFrom | None = None
    retried_errors: list[dict[str, Any]] = Field(default_factory=list)
    reference: ReferenceInfo | None = None

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, data: Any) -> Any:
        return migrate(data) if isinstance(data, dict) else data

    def variant(self, name: str | None) -> VariantInfo:
        """A variant's entry; an empty one for a variant the manifest does not describe (not planned)."""
        return self.variants.get(name or "") or VariantInfo()

    @property
    def skipped(self) -> dict[str, str]:
        """{variant: why it was skipped} for every skipped variant."""
        return {name: info.skipped for name, info in self.variants.items() if info.skipped}

    def to_json(self) -> dict[str, Any]:
        """The manifest as written to manifest.json."""
        return self.model_dump(mode="json", by_alias=True)


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """An older manifest brought up to SCHEMA_VERSION (see the module docstring); a current one is unchanged.
    Also runs on assignment to a field, where `data` holds the current values: already current."""
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"schema_version {version!r}: expected a whole number")
    if version > SCHEMA_VERSION:
        raise ValueError(f"schema_version {version} is newer than this harness reads ({SCHEMA_VERSION}); "
                         f"upgrade the harness to read this run folder")
    if version == SCHEMA_VERSION:
        return data
    data = dict(data)
    if version < 2:
        if data.get("scoring") is None:
            data["scoring"] = {"primary": "exact", "free_text": False, "scorers": []}
        if data.get("selection") is None:
            data["selection"] = _first_items(data)
    data["schema_version"] = SCHEMA_VERSION
    return data


def _first_items(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 run asked the first `limit` held-out items (all of them without a limit)."""
    limit = data.get("limit")
    test_items = (data.get("evalset") or {}).get("test_items") if isinstance(data.get("evalset"), dict) else None
    items = min(test_items, limit or test_items) if isinstance(test_items, int) else None
    return {"limit": limit, "method": "first", "items": items}
