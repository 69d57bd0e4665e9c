"""Load and validate an eval set folder: task.yaml, test.jsonl, train.jsonl, docs/."""

from __future__ import annotations

import json
import random
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.config import read_yaml, validation_message
from harness.data.conversation import (
    DEFAULT_FIELD,
    input_problem,
    query_text,
    transcript,
    turns_of,
    words_text,
)
from harness.data.hashing import content_hash
from harness.data.tool_spec import expected_problem, tool_validators
from harness.errors import EvalSetError, read_utf8, utf8_only
from harness.records import EvalItem
from harness.yaml_errors import format_loc, unknown_key_message


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    instructions: str = Field(min_length=1)
    # Optional when every item is a conversation (its turns are sent as they are).
    input_template: str | None = Field(default=None, min_length=1)
    # The input field holding an item's conversation (a message list); an item without a list there is rendered
    # through input_template (harness.data.conversation).
    messages_field: str = Field(default=DEFAULT_FIELD, min_length=1)
    # OpenAI function schemas sent with every request, and tool_choice (harness.data.tool_spec): expected
    # answers may then be tool calls, and the core checks score calls (harness.scoring.tool_calls).
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    # Without one the task is free text: the answer is the raw text (see harness.scoring.scorers.Scorer).
    output_schema: dict[str, Any] | str | None = None
    # Named scorers and which score is "accuracy" (default: exact / normalised match): raw entries here, checked and
    # bound by harness.scoring.task_yaml (an eval set is read without importing the scorers).
    scoring: list[Any] = Field(default_factory=list)
    primary: str | None = None
    # Items that are not independent (several questions about one passage): `metadata.<key>` or `input.<key>`,
    # whose value names the item's cluster; intervals and paired tests then take the cluster as their unit.
    cluster: str | None = None

    @field_validator("cluster")
    @classmethod
    def _cluster_path(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(metadata|input)\.[^.\s]+", value):
            raise ValueError(f"{value!r} must be metadata.<key> or input.<key>: the item field that names its "
                             "cluster, e.g. metadata.passage")
        return value


@dataclass
class KBDoc:
    id: str
    text: str


@dataclass
class EvalSet:
    name: str
    path: Path
    task: TaskSpec
    schema: dict[str, Any] | None  # None: a free-text task
    test: list[EvalItem]
    train: list[EvalItem]
    docs: list[KBDoc]
    content_hash: str
    label_fields: dict[str, list[Any]] = field(default_factory=dict)
    primary: str | None = None

    @property
    def scoring(self) -> list[Any]:
        """task.yaml's `scoring:` entries as written; harness.scoring.task_yaml.scorers_of binds them."""
        return self.task.scoring

    @property
    def free_text(self) -> bool:
        return self.schema is None

    @property
    def instructions(self) -> str:
        return self.task.instructions.strip()

    @property
    def tools(self) -> list[dict[str, Any]] | None:
        return self.task.tools

    def turns(self, item_input: dict[str, Any]) -> list[dict[str, str]] | None:
        """An item's conversation (its turns), or None when its input is rendered through input_template."""
        return turns_of(item_input, self.task.messages_field)

    def render_input(self, item: EvalItem) -> str:
        """The item's input as a reader sees it (a conversation as its transcript)."""
        turns = self.turns(item.input)
        if turns is not None:
            return transcript(turns)
        return render_template(self.task.input_template or "", item.input)

    def input_words(self, item: EvalItem) -> str:
        """What the held-out guard compares: the rendered input, a conversation's turns without role labels."""
        turns = self.turns(item.input)
        return words_text(turns) if turns is not None else self.render_input(item)

    def query_text(self, item: EvalItem) -> str:
        """What retrieval and similarity selection embed (a conversation: its last turn first, then the rest)."""
        turns = self.turns(item.input)
        return query_text(turns) if turns is not None else self.render_input(item)

    def clusters(self) -> dict[str, str] | None:
        """item id -> its cluster (task.yaml `cluster:`) for every test item; None when none is declared."""
        if self.task.cluster is None:
            return None
        return {item.id: str(cluster_value(item, self.task.cluster)) for item in self.test}

    def label_of(self, item: EvalItem) -> Any:
        """The value used to stratify few-shot examples: the first enum/boolean field of the answer."""
        if not self.label_fields or not isinstance(item.expected, dict):
            return json.dumps(item.expected, sort_keys=True)
        first = next(iter(self.label_fields))
        return item.expected.get(first)


def split_items(ev: EvalSet, split: str = "test") -> list[EvalItem]:
    """The items of a split: the held-out test items, or the train items (`harness run --split train` records a
    model's answers on them as training targets)."""
    return ev.train if split == "train" else ev.test


def cluster_value(item: EvalItem, path: str) -> Any:
    """The value of `metadata.<key>` / `input.<key>` on an item; None when it lacks the key."""
    where, key = path.split(".", 1)
    value = (item.metadata if where == "metadata" else item.input).get(key)
    return None if value is None else json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value



def select_test_items(ev: EvalSet, limit: int | None, seed: int,
                      split: str = "test") -> tuple[list[EvalItem], dict[str, Any]]:
    """The items a run asks (held-out ones unless `split` is "train"), and how they were chosen (the manifest's
    `selection`).

    With a limit below the split's size: a seeded random sample, stratified by the first label field
    when the schema has one (each label keeps its share, largest remainders rounded up), in the file's order.
    """
    test = split_items(ev, split)
    if not limit or limit >= len(test):
        return list(test), {"limit": limit, "method": "all", "items": len(test)}
    rng = random.Random(seed)
    position = {item.id: n for n, item in enumerate(test)}
    if ev.label_fields:
        groups: dict[str, list[EvalItem]] = {}
        for item in test:
            groups.setdefault(json.dumps(ev.label_of(item), sort_keys=True), []).append(item)
        labels = sorted(groups)
        exact = {lab: limit * len(groups[lab]) / len(test) for lab in labels}
        quota = {lab: int(exact[lab]) for lab in labels}
        tiebreak = {lab: rng.random() for lab in labels}
        for lab in sorted(labels, key=lambda x: (quota[x] - exact[x], tiebreak[x]))[: limit - sum(quota.values())]:
            quota[lab] += 1
        picked = [item for lab in labels for item in rng.sample(groups[lab], quota[lab])]
        method = f"stratified by {next(iter(ev.label_fields))}"
    else:
        picked = rng.sample(test, limit)
        method = "random"
    picked.sort(key=lambda item: position[item.id])
    return picked, {"limit": limit, "method": method, "seed": seed, "items": len(picked),
                    "item_ids": [item.id for item in picked]}


def template_fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def render_template(template: str, values: dict[str, Any]) -> str:
    return template.format_map(values)


def label_fields(schema: dict[str, Any]) -> dict[str, list[Any]]:
    """Fields whose answer is one of a fixed set (enums and booleans): these get per-class F1."""
    out: dict[str, list[Any]] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        if "enum" in prop:
            out[name] = list(prop["enum"])
        elif prop.get("type") == "boolean":
            out[name] = [True, False]
    return out


def _expected_valid(validator: Any, expected: Any, checked: dict[str, bool]) -> bool:
    """Expected answers repeat (labels), so each distinct one is validated once."""
    key = json.dumps(expected, sort_keys=True)
    if key not in checked:
        checked[key] = validator.is_valid(expected)
    return checked[key]


def _free_text_expected(expected: Any) -> bool:
    return isinstance(expected, str) or (isinstance(expected, list) and len(expected) > 0
                                         and all(isinstance(e, str) for e in expected))


def item_error(exc: ValidationError) -> str:
    """What is wrong with one line of a split, said once ("input: should be a JSON object", not "input: Input
    should be a valid dictionary"), with an unknown key's likely meaning."""
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a misspelling is the cause
    loc, msg = tuple(err["loc"]), err["msg"].replace("a valid dictionary", "a JSON object")
    if not loc:
        return "each line must be one JSON object with id, input and expected"
    if err["type"] == "extra_forbidden":
        msg = unknown_key_message(str(loc[-1]), list(EvalItem.model_fields) if len(loc) == 1 else [])
    elif err["type"] == "missing":
        msg = f"missing required key {loc[-1]!r}"
    else:
        return f"{format_loc(loc)}: {msg.removeprefix('Input ').removeprefix('Value error, ')}"
    return f"{format_loc(loc[:-1]) + ': ' if len(loc) > 1 else ''}{msg}"


def load_jsonl_items(path: Path, template_keys: list[str] | None, schema_validator: Any | None, *,
                     free_text: bool = False, messages_field: str = DEFAULT_FIELD,
                     tool_validators: dict[str, Any] | None = None) -> list[EvalItem]:
    items: list[EvalItem] = []
    seen: dict[str, int] = {}
    checked: dict[str, bool] = {}
    with utf8_only(path, EvalSetError), path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalSetError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            try:
                item = EvalItem.model_validate(raw)
            except ValidationError as exc:
                raise EvalSetError(f"{path}:{lineno}: {item_error(exc)}") from None
            if item.id in seen:
                raise EvalSetError(
                    f"{path}:{lineno}: duplicate id {item.id!r} (first seen on line {seen[item.id]}); ids must be unique"
                )
            seen[item.id] = lineno
            problem = input_problem(item.input, template_keys, messages_field)
            if problem:
                raise EvalSetError(f"{path}:{lineno}: {problem}")
            if tool_validators is not None and item.expected is not None:
                problem = expected_problem(item.expected, tool_validators)
                if problem:
                    raise EvalSetError(f"{path}:{lineno}: {problem}")
            elif free_text and item.expected is not None and not _free_text_expected(item.expected):
                raise EvalSetError(f"{path}:{lineno}: expected must be a string or a list of acceptable strings "
                                   f"(task.yaml has no output_schema, so answers are free text)")
            if schema_validator is not None and item.expected is not None \
                    and not _expected_valid(schema_validator, item.expected, checked):
                error = jsonschema.exceptions.best_match(schema_validator.iter_errors(item.expected))
                if error is not None:
                    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                    raise EvalSetError(
                        f"{path}:{lineno}: expected does not match task.yaml output_schema at {where}: {error.message}"
                    )
            items.append(item)
    return items


def load_docs(folder: Path) -> list[KBDoc]:
    docs: list[KBDoc] = []
    docs_dir = folder / "docs"
    if docs_dir.is_dir():
        for p in sorted(docs_dir.rglob("*")):
            if p.is_file() and p.suffix.lower() in (".md", ".txt", ".markdown"):
                docs.append(KBDoc(id=p.relative_to(docs_dir).with_suffix("").as_posix(), text=read_utf8(p, EvalSetError)))
    jl = folder / "docs.jsonl"
    if jl.exists():
        with utf8_only(jl, EvalSetError), jl.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                    docs.append(KBDoc(id=str(raw["id"]), text=str(raw["text"])))
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise EvalSetError(f"{jl}:{lineno}: each line needs {{\"id\": ..., \"text\": ...}}") from None
    ids = [d.id for d in docs]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise EvalSetError(f"{folder}: duplicate document ids: {', '.join(dup)}")
    return docs


_LOADED: dict[tuple[str, tuple[tuple[str, int, int], ...]], EvalSet] = {}


def _fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return tuple(sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))


def load_evalset(folder: str | Path) -> EvalSet:
    """Load and validate; a second load of an unchanged folder in the same process is free
    (the runner and the report both need it)."""
    folder = Path(folder)
    if folder.is_dir():
        key = (str(folder.resolve()), _fingerprint(folder))
        if key in _LOADED:
            return _LOADED[key]
        loaded = _load_evalset(folder)
        _LOADED.clear()
        _LOADED[key] = loaded
        return loaded
    return _load_evalset(folder)


def _load_evalset(folder: Path) -> EvalSet:
    task_path = folder / "task.yaml"
    if not folder.is_dir():
        raise EvalSetError(f"{folder}: eval set folder not found")
    data, node = read_yaml(task_path, EvalSetError)
    if not isinstance(data, dict):
        raise EvalSetError(f"{task_path}: expected a mapping with instructions, input_template, output_schema")
    try:
        task = TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise EvalSetError(validation_message(task_path, exc, node, TaskSpec)) from None
    schema, validator = _load_schema(folder, task_path, task.output_schema)
    try:
        keys = template_fields(task.input_template) if task.input_template is not None else None
    except ValueError as exc:
        raise EvalSetError(f"{task_path}: input_template: {exc} (use {{field}} placeholders; double braces for literal ones)") from None
    test_path = folder / "test.jsonl"
    if not test_path.exists():
        raise EvalSetError(f"{test_path}: file not found (the held-out split is required)")
    line_rules = {"free_text": schema is None, "messages_field": task.messages_field,
                  "tool_validators": tool_validators(task_path, task.tools, task.tool_choice)}
    test = load_jsonl_items(test_path, keys, validator, **line_rules)
    if not test:
        raise EvalSetError(f"{test_path}: no items")
    train_path = folder / "train.jsonl"
    train = load_jsonl_items(train_path, keys, validator, **line_rules) if train_path.exists() else []
    if task.cluster is not None:
        lacking = [i.id for i in test if cluster_value(i, task.cluster) is None]
        if lacking:
            raise EvalSetError(f"{test_path}: item {lacking[0]!r} has no {task.cluster} (task.yaml cluster: "
                               f"{task.cluster}){f' nor {len(lacking) - 1} more' if len(lacking) > 1 else ''}; "
                               "give every item one, or remove cluster: from task.yaml")
    clash = {i.id for i in test} & {i.id for i in train}
    if clash:
        raise EvalSetError(f"{folder}: ids in both test.jsonl and train.jsonl: {', '.join(sorted(clash)[:5])}")
    docs = load_docs(folder)
    doc_ids = {d.id for d in docs}
    if docs:
        for item in test:
            unknown = [d for d in item.expected_doc_ids or [] if d not in doc_ids]
            if unknown:
                raise EvalSetError(f"{test_path}: item {item.id!r} expected_doc_ids not in docs/: {', '.join(unknown)}")
    return EvalSet(
        name=folder.resolve().name,
        path=folder.resolve(),
        task=task,
        schema=schema,
        test=test,
        train=train,
        docs=docs,
        content_hash=content_hash(folder),
        label_fields=label_fields(schema) if schema is not None else {},
        primary=task.primary,
    )


def _load_schema(folder: Path, task_path: Path, schema: dict[str, Any] | str | None) -> tuple[Any, Any]:
    """(schema, validator); (None, None) for a free-text task."""
    if schema is None:
        return None, None
    if isinstance(schema, str):
        schema_path = folder / schema
        if not schema_path.exists():
            raise EvalSetError(f"{task_path}: output_schema: file not found: {schema_path}")
        try:
            schema = json.loads(read_utf8(schema_path, EvalSetError))
        except json.JSONDecodeError as exc:
            raise EvalSetError(f"{schema_path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise EvalSetError(f"{task_path}: output_schema is not a valid JSON Schema at {where}: {exc.message}") from None
    return schema, validator_cls(schema)
