"""The run's settings sections: `run:`, `rag:`, `finetune:` and `judge:`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from harness.config._base import _Strict


class JudgeSettings(_Strict):
    """The model that grades answers for `scorer: judge` (one of `models:`). It answers at temperature 0, its
    calls go through the same client and response cache as the variants', and what it costs is reported as
    evaluation cost, apart from the variants' cost per request."""

    model: str
    max_tokens: int = Field(default=512, ge=16)


class StopWhen(_Strict):
    """`run.stop_when`: ask items in a seeded random order and stop once an anytime-valid paired test settles
    whether `compare[1]` is better or worse than `compare[0]`, or equivalent within `margin`
    (harness.runner.sequential)."""

    compare: list[str] = Field(min_length=2, max_length=2)  # [A, B]: is B better than A?
    margin: float = Field(default=0.05, gt=0, lt=1)  # equivalence: the difference lies within ±margin
    alpha: float = Field(default=0.05, gt=0, lt=0.5)  # the chance of a wrong better/worse verdict

    @model_validator(mode="after")
    def _two_names(self) -> StopWhen:
        if self.compare[0] == self.compare[1]:
            raise ValueError(f"compare: name two different variants, got {self.compare[0]!r} twice")
        return self


class RunSettings(_Strict):
    concurrency: int = Field(default=8, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    max_tokens: int = Field(default=128, ge=1)
    repeats: int = Field(default=1, ge=1)
    seed: int | None = 0
    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    limit: int | None = Field(default=None, ge=1)
    # sync: one HTTP call per request; batch: the whole run through the OpenAI Batch API (harness.runner.batch),
    # priced at the batch rates, polled every batch_poll_s seconds.
    mode: Literal["sync", "batch"] = "sync"
    batch_poll_s: float = Field(default=30.0, gt=0)
    # Train items that repeat or nearly repeat a test item are left out of the few-shot pool and the
    # fine-tuning data; true keeps them (the leakage warning still says so).
    keep_leaked: bool = False
    stop_when: StopWhen | None = None


class EmbeddingSettings(_Strict):
    """`rag.embedding`: embed through the embeddings endpoint of one of `models:` (openai, azure or
    openai-compatible) instead of the built-in MiniLM; queries go `batch_size` texts per request."""

    model: str = Field(min_length=1)
    batch_size: int = Field(default=64, ge=1, le=2048)


class RagSettings(_Strict):
    chunk_chars: int = Field(default=800, ge=50)
    chunk_overlap: int = Field(default=100, ge=0)
    index_dir: Path | None = None
    # A running Chroma server ("http://HOST:PORT", started with `chroma run`) instead of the embedded store in
    # index_dir: one index shared by every machine, built once per docs content hash.
    server: str | None = None
    # An existing Chroma collection to query instead of building one from docs/: on `server`, or in the
    # embedded store folder `path`. Its ids (or the metadata field doc_id_field, for a chunked collection) are
    # the document ids; its documents (or the metadata field text_field) the passages' text.
    collection: str | None = Field(default=None, min_length=1)
    path: Path | None = None
    doc_id_field: str | None = Field(default=None, min_length=1)
    text_field: str | None = Field(default=None, min_length=1)
    embedding: EmbeddingSettings | None = None

    @field_validator("server")
    @classmethod
    def _check_server(cls, value: str | None) -> str | None:
        if value is not None:
            chroma_server_address(value)  # raises ValueError with what is wrong
        return value

    @model_validator(mode="after")
    def _one_store(self) -> RagSettings:
        if self.server is not None and self.index_dir is not None:
            raise ValueError("give either server (a Chroma server) or index_dir (the embedded store), not both")
        if self.path is not None and (self.server is not None or self.index_dir is not None):
            raise ValueError("path is the embedded store holding an existing collection: give path or server, "
                             "and no index_dir (where the harness builds its own index)")
        if self.collection is None:
            for key in ("path", "doc_id_field", "text_field"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} reads an existing collection: set collection (its name) too")
        elif self.server is None and self.path is None:
            raise ValueError("collection: say where it is, with server (http://HOST:PORT) or path (a Chroma folder)")
        elif self.index_dir is not None:
            raise ValueError("collection is read where it is (server or path); index_dir is for an index the "
                             "harness builds: remove it")
        return self


def chroma_server_address(url: str) -> tuple[str, int, bool]:
    """(host, port, ssl) of a `rag.server` URL such as http://chroma.internal:8000; the port defaults to
    8000 (what `chroma run` listens on), or 443 for https."""
    parsed = urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"expected http://HOST:PORT (a Chroma server started with `chroma run`), got {url!r}")
    if parsed.path.strip("/") or parsed.query or parsed.fragment:
        raise ValueError(f"expected http://HOST:PORT with no path, got {url!r}")
    try:
        port = parsed.port
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    ssl = parsed.scheme == "https"
    return parsed.hostname, port or (443 if ssl else 8000), ssl


class FinetuneSettings(_Strict):
    """How `harness finetune` builds training data and trains; the prompts come from the fine-tuned
    variant's own renderer."""

    variant: str | None = None  # the fine_tuned variant to train for (default: the first one)
    output_dir: Path = Path("results/finetune")
    validation_share: float = Field(default=0.0, ge=0, lt=1)
    seed: int = 0
    # OpenAI jobs
    base_model: str = "gpt-4o-mini-2024-07-18"
    epochs: int = Field(default=3, ge=1)
    suffix: str | None = None
    # local LoRA: on the embedded model, or on this Hugging Face causal-LM folder (config.json, weights,
    # tokenizer with a chat template), written as a PEFT adapter folder that vLLM serves (harness.finetune.hf_lora)
    base_model_path: Path | None = None
    lora_rank: int = Field(default=8, ge=1)
    lora_alpha: float = Field(default=16, gt=0)
    learning_rate: float = Field(default=2e-4, gt=0)
    batch_size: int = Field(default=8, ge=1)
    local_epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, ge=1)
    max_train_items: int | None = Field(default=None, ge=1)
