"""`scorer: python`: the user's own function, `function: "module:func"`.

    def short(answer, expected, item) -> bool | float | tuple[float, str]:
        return len(answer) < 400

`answer` is the task's answer (the raw text of a free-text task, the parsed JSON of a JSON task, None when it is
not format-valid), `expected` the item's expected answer, `item` the whole item (harness.records.EvalItem:
.id, .input, .expected, .metadata). A bool counts as 1/0, a float must lie in 0..1, a tuple adds the
explanation; None means "cannot tell" (unknown).

The module is looked up next to task.yaml first (`myscorers` -> `<evalset>/myscorers.py`, `pkg.mod` ->
`<evalset>/pkg/mod.py`), so an eval set carries its scorers with it (and the eval set's content hash covers the
file: harness.data.scorer_modules); otherwise it is imported by name from the Python path.

A user's scorer that raises or returns something else is a bug to fix, not a score: the run stops with exit
code 2 and a message naming the scorer, the function and the item (HarnessError).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import Field, PrivateAttr

from harness.data.scorer_modules import module_file
from harness.errors import HarnessError
from harness.records import Score
from harness.scoring.base import ScoreContext, ScorerSpec, TaskInfo


def _load_module(folder: Path, module: str) -> ModuleType:
    path = module_file(folder, module)
    if path is None:
        return importlib.import_module(module)
    # A name of its own per file, so two eval sets with a `scorers.py` each do not shadow each other.
    unique = "harness_user_scorer_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    if unique in sys.modules:
        return sys.modules[unique]
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[unique] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[unique]
        raise
    return mod


class Python(ScorerSpec):
    scorer: Literal["python"]
    function: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    _fn: Callable[..., Any] | None = PrivateAttr(default=None)
    _source: str | None = PrivateAttr(default=None)

    def bind(self, task: TaskInfo) -> None:
        module, func = self.function.split(":")
        try:
            mod = _load_module(task.folder, module)
        except Exception as exc:  # noqa: BLE001 - whatever the user's module raises, say where
            raise ValueError(f"cannot import {module!r} (looked for {task.folder / (module.replace('.', '/') + '.py')}"
                             f" and on the Python path): {type(exc).__name__}: {exc}") from None
        fn = getattr(mod, func, None)
        if not callable(fn):
            raise ValueError(f"{module!r} has no function {func!r}")
        self._fn = fn
        self._source = _source_hash(getattr(mod, "__file__", None))

    def score(self, ctx: ScoreContext) -> Score:
        assert self._fn is not None
        where = f"scorer {self.name!r} ({self.function}) on item {ctx.item.id!r}"
        answer = ctx.answer if (ctx.free_text or ctx.format_valid) else None
        try:
            out = self._fn(answer, ctx.expected, ctx.item)
        except Exception as exc:  # noqa: BLE001 - the user's code: name it, then stop
            raise HarnessError(f"{where} raised {type(exc).__name__}: {exc}") from exc
        return to_result(out, where)

    def describe(self) -> str:
        return f"python {self.function}"

    def code_version(self) -> str | None:
        """The user's code is its own version: the hash of its module's file (None without one)."""
        return self._source


def _source_hash(path: str | None) -> str | None:
    try:
        return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12] if path else None
    except OSError:
        return None


def to_result(out: Any, where: str) -> Score:
    """bool | float | (float, str) | None -> Score; anything else is the scorer's bug."""
    why = ""
    if isinstance(out, tuple):
        if len(out) != 2 or not isinstance(out[1], str):
            raise HarnessError(f"{where} returned {out!r}; a tuple must be (score, explanation)")
        out, why = out
    if out is None:
        return Score(None, why or "the scorer could not tell")
    if isinstance(out, bool):
        return Score(float(out), why)
    if isinstance(out, int | float) and math.isfinite(out) and 0 <= out <= 1:
        return Score(float(out), why)
    raise HarnessError(f"{where} returned {out!r}; return a bool, a number in 0..1, or (number, explanation)")
