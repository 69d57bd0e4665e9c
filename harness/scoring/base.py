"""What every named scorer shares: the context it reads, the result it returns, its YAML form.

A named scorer is one entry of a task's `scoring:` list. It is a small pydantic model whose fields are its
configuration (unknown keys are rejected, so a typo in task.yaml fails loudly with its line), resolved by its
`scorer:` name against a registry built per call (harness.scoring.registry). It reads one `ScoreContext` (the
answer, the item) and returns one `harness.records.Score`: a value in 0..1, or None when it cannot tell
(unknown, which is not 0), with a short explanation — or a `ScoreError` when it failed (a judge call that
failed), which is never a score. The suite (harness.scoring.suite) stamps the scorer's family and version on it
and keeps it in `record.scores[name]` (`record.score_errors[name]`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from harness.records import EvalItem, Score, ScoreError

# The core scores' names, which the API's record table and the summary's columns use beside the named scores
# (and the aliases of the default scorer): a named scorer cannot take them, or a column would mean two things.
RESERVED_NAMES = frozenset({
    "json_parsed", "format_valid", "json_extractable", "correct", "correct_lenient", "fields", "recall_at_k", "mrr",
    "primary", "accuracy", "exact", "agreement",
})


@dataclass
class ScoreContext:
    """One answer as a scorer sees it.

    `answer` is what the task's answer is: the raw text of a free-text task, the parsed JSON of a JSON task
    (None when the text is not valid JSON). `format_valid` is the core score of the same name."""

    item: EvalItem
    raw_text: str
    answer: Any
    format_valid: bool
    free_text: bool
    input_text: str = ""  # the item's input as the task's input_template renders it (what the judge reads)

    @property
    def expected(self) -> Any:
        return self.item.expected


class TaskInfo:
    """What a scorer may check its configuration against when the task is loaded."""

    def __init__(self, folder: Path, schema: dict[str, Any] | None):
        self.folder = folder
        self.schema = schema

    @property
    def free_text(self) -> bool:
        return self.schema is None

    def field_schema(self, path: str) -> dict[str, Any] | None:
        """The JSON Schema of a dotted field path, or None where the schema does not say."""
        node: Any = self.schema or {}
        for part in path.split("."):
            props = node.get("properties") if isinstance(node, dict) else None
            if not isinstance(props, dict) or part not in props:
                return None
            node = props[part]
        return node if isinstance(node, dict) else None


class ScorerSpec(BaseModel):
    """The YAML form every scorer shares: `{name: ..., scorer: ...}` plus the scorer's own keys."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)
    scorer: str

    # Whether the scorer calls a model (the judge): the suite awaits it after the answer is in.
    is_async: ClassVar[bool] = False
    # The version of the scoring code, kept on every Score: raise it when the same answer would score differently.
    version: ClassVar[str | None] = "1"

    def bind(self, task: TaskInfo) -> None:
        """Check the configuration against the task and prepare (compile, import, read files). Raise
        ValueError with a sentence saying what to change."""

    def score(self, ctx: ScoreContext) -> Score | ScoreError:
        """The record's score in 0..1 (None: unknown) with a one-line explanation, or a ScoreError. Every scorer
        family in harness.scoring.builtin / judge / python_scorer defines it; the registry only builds those."""
        raise NotImplementedError(f"scorer {self.scorer!r} does not define score()")

    def zero(self, expected: Any, why: str) -> Score:
        """The score of a record without a usable answer (a truncated, empty or refused one): 0, since every
        record stays in the denominator."""
        return Score(0.0, why)

    def describe(self) -> str:
        """One phrase for the report: what this scorer measures."""
        return self.scorer

    def code_version(self) -> str | None:
        """What the Score's `version` says about the code that scored."""
        return self.version

    def stamp(self, result: Score | ScoreError) -> Score | ScoreError:
        """The result with this scorer's family and version on it, as the record keeps it."""
        return dataclasses.replace(result, scorer=self.scorer, version=self.code_version())


class FieldMixin(BaseModel):
    """`field:` picks one field of a JSON answer (dotted for nested objects); free-text tasks have none."""

    field: str | None = None

    def check_field(self, task: TaskInfo, *, required: bool = False) -> None:
        if self.field is None:
            if required and not task.free_text:
                raise ValueError("needs `field:` (the answer field to score)")
            if required and task.free_text:
                raise ValueError("applies to a field of a JSON answer; this task is free text (no output_schema)")
            return
        if task.free_text:
            raise ValueError("`field:` applies to JSON tasks; this task is free text (no output_schema), so the "
                         "scorer reads the whole answer: remove `field:`")
        if task.schema is not None and task.schema.get("properties") and task.field_schema(self.field) is None:
            known = ", ".join(sorted(task.schema.get("properties") or {}))
            raise ValueError(f"field {self.field!r} is not in output_schema (its fields: {known})")


_MISSING = object()


def get_path(value: Any, path: str) -> Any:
    """value[a][b] for "a.b"; _MISSING where a step is absent. A step into a list takes an index."""
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def missing(value: Any) -> bool:
    return value is _MISSING


def answer_field(ctx: ScoreContext, path: str) -> Any:
    """A field of the answer: _MISSING when the answer is not a valid JSON object or lacks it. Only
    format-valid answers are read, as for the core per-field scores: a format-invalid answer is wrong."""
    if not ctx.format_valid or not isinstance(ctx.answer, dict):
        return _MISSING
    return get_path(ctx.answer, path)


def expected_field(ctx: ScoreContext, path: str) -> Any:
    return get_path(ctx.expected, path)


def answer_text(ctx: ScoreContext, field_path: str | None) -> str | None:
    """The text a text scorer reads: the raw answer, or (with `field:`) that field of a valid JSON answer
    (non-strings as compact JSON). None where the field is absent."""
    if field_path is None:
        return ctx.raw_text
    value = answer_field(ctx, field_path)
    if missing(value) or value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# -- templates: "{expected.doc_title}" -----------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
TEMPLATE_ROOTS = ("expected", "input", "metadata", "id")


def check_template(template: str) -> None:
    """Reject a placeholder that names nothing an item has (e.g. "{expectd.title}"), at load time."""
    for m in _PLACEHOLDER.finditer(template):
        ref = m.group(1)
        if ref is None:
            continue
        root = ref.split(".", 1)[0]
        if root not in TEMPLATE_ROOTS:
            raise ValueError(f"{{{ref}}} in {template!r}: a placeholder names a value of the item: "
                             f"{', '.join('{' + r + '...}' for r in TEMPLATE_ROOTS)} (write {{{{ and }}}} for braces)")


def expand_template(template: str, item: EvalItem) -> list[str] | None:
    """The texts a template stands for on one item. A placeholder whose value is a list expands into one text
    per element (so `any: ["{metadata.facts}"]` means any of the item's facts); None when a placeholder names
    a value the item does not have (the score is then unknown, not 0)."""
    data = {"expected": item.expected, "input": item.input, "metadata": item.metadata, "id": item.id}
    texts = [""]
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        literal = template[pos:m.start()]
        pos = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            texts = [t + literal + token[0] for t in texts]
            continue
        value = get_path(data, m.group(1))
        if missing(value) or value is None:
            return None
        values = value if isinstance(value, list) else [value]
        parts = [v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values]
        texts = [t + literal + p for t in texts for p in parts]
    return [t + template[pos:] for t in texts]
