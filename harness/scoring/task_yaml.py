"""An eval set's `scoring:` and `primary:` (task.yaml, kept as written by harness.data.evalset) -> its bound
scorers, with errors that name task.yaml, the line and the key, as every other eval-set error does.

The eval set is read without importing the scorers; `harness run` and `harness validate` bind them here right
after loading it (TaskScoring.for_evalset), so a bad entry stops them before anything else happens."""

from __future__ import annotations

from typing import Any

from harness.config import read_yaml
from harness.errors import EvalSetError
from harness.scoring.base import ScorerSpec, TaskInfo
from harness.scoring.registry import EntryValidationError, ScoringError, build_scorers
from harness.yaml_errors import _yaml_line, format_loc

# The bound scorers of the last eval set asked for, kept while it is the same object (load_evalset keeps one
# per unchanged folder), so the runner, the preflight and the report share one set of bound scorers.
_BOUND: dict[int, tuple[Any, list[ScorerSpec]]] = {}


def scorers_of(evalset: Any) -> list[ScorerSpec]:
    """Validate and bind the eval set's `scoring:` list and check `primary:` (EvalSetError naming file:line)."""
    hit = _BOUND.get(id(evalset))
    if hit is not None and hit[0] is evalset:
        return hit[1]
    scorers = _bind(evalset)
    _BOUND.clear()
    _BOUND[id(evalset)] = (evalset, scorers)
    return scorers


def _bind(evalset: Any) -> list[ScorerSpec]:
    task_path = evalset.path / "task.yaml"
    entries, primary = evalset.task.scoring, evalset.task.primary
    node = None

    def line(loc: tuple[Any, ...]) -> Any:
        nonlocal node
        if node is None and task_path.exists():
            node = read_yaml(task_path, EvalSetError)[1]
        return _yaml_line(node, loc)

    try:
        scorers = build_scorers(entries, TaskInfo(evalset.path, evalset.schema))
    except ScoringError as exc:
        raise EvalSetError(f"{task_path}:{line(exc.loc)}: {format_loc(exc.loc)}: {exc}") from None
    except EntryValidationError as exc:
        err = exc.error.errors()[0]
        loc = exc.prefix + tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r} for scorer {exc.kind!r} (allowed: {', '.join(exc.allowed)})"
        elif err["type"] == "missing":
            msg = f"missing required key {loc[-1]!r}"
        raise EvalSetError(f"{task_path}:{line(loc)}: {format_loc(loc)}: {msg}") from None
    names = [s.name for s in scorers]
    if primary is not None and primary not in ("exact", "accuracy", *names):
        raise EvalSetError(f"{task_path}:{line(('primary',))}: primary: {primary!r} is not a scorer name (scoring: "
                           f"{', '.join(names) or 'none'}; or 'exact', the default exact / normalised match)")
    return scorers
