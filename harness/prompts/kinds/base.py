"""What every variant kind is: its parameters, how it renders an item, what it prepares before the first call.

A kind is two-phase, like an Inspect solver: what is expensive and shared (an example pool, an index) is declared
as a `Need` with a fingerprint, which the runner prepares once for every variant that declares the same one
before the first call; then the kind turns items into messages, through the one renderer
(harness.prompts.variants.render_prompt) that the fine-tuning export uses too. A kind that cannot run with what
exists (no docs, no train split) says why and how to fix it, and the variant is skipped while the others run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from harness.config import RagSettings, RunConfig, VariantConfig
from harness.data.evalset import EvalSet
from harness.prompts.variants import (
    BatchPreparer,
    EmbedFn,
    Prepared,
    PromptSpec,
    default_embed,
    prompt_of,
    query_texts,
    render_prompt,
)
from harness.records import EvalItem, Message
from harness.variant_kinds import kind_class

Resources = Mapping[str, Any]


@dataclass
class PrepareContext:
    """What a kind's preparation may use: the eval set, the run's settings, where reusable preparation is kept
    (cache_dir; the RAG index lives under it unless the config names its own place), and the manifest, which
    records what was prepared."""

    evalset: EvalSet
    seed: int = 0
    keep_leaked: bool = False
    rag: RagSettings = field(default_factory=RagSettings)
    cache_dir: Path | None = None
    progress: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)
    # rag.embedding's query embedder (harness.retrieval.queries.QueryEmbedder), built by the planner; None: MiniLM
    embedder: Any = None

    @classmethod
    def of_run(cls, cfg: RunConfig, evalset: EvalSet, **runner: Any) -> PrepareContext:
        return cls(evalset, seed=cfg.run.seed or 0, keep_leaked=cfg.run.keep_leaked, rag=cfg.rag, **runner)


@dataclass(frozen=True)
class Need:
    """Something prepared once before the first call. Variants whose needs have the same fingerprint share one
    (every few-shot variant of a run draws from one pool, every RAG variant asks one index); the kind finds it
    under `name` in the resources it is handed."""

    name: str
    fingerprint: str
    build: Callable[[PrepareContext], Any]


class VariantKind(BaseModel):
    """One kind of variant. Its fields are its parameters: the VariantConfig keys it reads, validated here when
    the config is loaded (VariantConfig asks through harness.variant_kinds)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # What the layers below ask by name (harness.variant_kinds.KindClass says what each means).
    name: ClassVar[str]
    trains: ClassVar[bool] = False
    renders_training_prompt: ClassVar[bool] = False
    shows_train_items: ClassVar[bool] = False  # its prompts show train items: the leakage check looks at them
    paired_reference: ClassVar[bool] = False

    _variant: VariantConfig | None = PrivateAttr(default=None)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        unknown = [k for k in cls.model_fields if k not in VariantConfig.model_fields]
        if unknown:
            raise TypeError(f"variant kind {cls.__name__}: {', '.join(unknown)} is not a variant key "
                            f"(harness.config.VariantConfig); a kind reads its parameters from there")

    # -- the config's questions --------------------------------------------------------------------------
    @classmethod
    def check_config(cls, variant: VariantConfig) -> None:
        """Raise ValueError("<field>: <what is wrong>") when the variant's parameters do not suit this kind."""
        try:
            cls.model_validate(_params(cls, variant))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            msg = "should be" + msg.removeprefix("Input should be") if msg.startswith("Input should be") else msg
            raise ValueError(f"{where}: {msg}" if where else msg) from None

    @classmethod
    def of(cls, variant: VariantConfig) -> Self:
        kind = cls.model_validate(_params(cls, variant))
        kind._variant = variant
        return kind

    @property
    def variant(self) -> VariantConfig:
        assert self._variant is not None, "build a kind with kind_of(variant)"
        return self._variant

    @property
    def prompt(self) -> PromptSpec | None:
        return prompt_of(self._variant)

    # -- before the first call ---------------------------------------------------------------------------
    def needs(self, ctx: PrepareContext) -> list[Need]:
        """What must be prepared once before the first call."""
        return []

    def skip_reason(self, ctx: PrepareContext) -> str | None:
        """Why this variant cannot run with what exists (and how to fix it), or None."""
        return None

    def shown_train_ids(self, ctx: PrepareContext) -> set[str]:
        """The train items its prompts may show the model (the leakage check reports them)."""
        return set()

    @property
    def streamed(self) -> bool:
        """Its prompts depend on each item's embedding, so the runner prepares them batch by batch while calls
        are in flight (batch_preparer)."""
        return False

    def embeds_own_queries(self, ctx: PrepareContext) -> bool:
        """A streamed kind that embeds each item's query itself (rag with rag.embedding): the stream's shared
        MiniLM vectors are not computed for it."""
        return False

    def embedded_texts(self, evalset: EvalSet) -> list[str]:
        """Texts a streamed kind embeds besides each item's query (the runner loads the embedding model up
        front when any is not in the vector cache yet)."""
        return []

    def build_needs(self, ctx: PrepareContext) -> dict[str, Any]:
        """Its resources, prepared now (the runner prepares them once for every variant instead)."""
        return {n.name: n.build(ctx) for n in self.needs(ctx)}

    # -- items into messages -----------------------------------------------------------------------------
    def render(self, evalset: EvalSet, item_input: dict[str, Any], *, system_role: bool,
               examples: Sequence[EvalItem] = (), passages: Sequence[Any] = ()) -> list[Message]:
        """An item's messages, with the variant's prompt overrides."""
        return render_prompt(evalset, item_input, examples=examples, passages=passages, system_role=system_role,
                             prompt=self.prompt)

    def prepare(self, ctx: PrepareContext, items: list[EvalItem], *, system_role: bool,
                resources: Resources | None = None, embed_fn: EmbedFn | None = None) -> dict[str, Prepared]:
        """Every item's messages, up front (a streamed kind runs its batch preparer over all of them).
        Resources not handed in are prepared here."""
        resources = self.build_needs(ctx) if resources is None else resources
        if self.streamed:
            run_batch = self.batch_preparer(ctx, system_role=system_role, resources=resources, embed_fn=embed_fn)
            return run_batch(items, (embed_fn or default_embed)(query_texts(ctx.evalset, items))) if items else {}
        return {i.id: Prepared(self.render(ctx.evalset, i.input, system_role=system_role)) for i in items}

    def batch_preparer(self, ctx: PrepareContext, *, system_role: bool, resources: Resources,
                       embed_fn: EmbedFn | None = None) -> BatchPreparer:
        """For a streamed kind: check what is fixed now (raising ValueError as prepare would) and return the
        function that prepares one batch of items from their query vectors (see query_texts)."""
        raise ValueError(f"{self.variant.name}: a {self.name} variant is prepared up front, not in batches")


def _params(cls: type[VariantKind], variant: VariantConfig) -> dict[str, Any]:
    return {k: getattr(variant, k) for k in cls.model_fields}


def kind_of(variant: VariantConfig) -> VariantKind:
    """The variant's kind, with its parameters (the registry's lookup error lists the valid kinds)."""
    cls: Any = kind_class(variant.kind)
    return cls.of(variant)
